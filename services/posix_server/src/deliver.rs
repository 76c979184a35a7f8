//! Signal delivery: a process takes its pending signals when a system call
//! of its returns, when it is parked in one (the call ends with `EINTR`,
//! or runs again after the handler with `SA_RESTART`), or at once when it
//! is running (its thread is stopped, the frame pushed, and it goes on in
//! the handler). A stop signal stops it (`jobs`). The decisions and the
//! frame are `posix::signal`'s.

use kaal_sel4::cap::UserContext;
use posix::regs::Regs;
use posix::signal::{self, Delivery};

use crate::jobs::Stopped;
use crate::process::Pid;
use crate::syscall::Outcome;
use crate::Server;

/// What taking a process's signals left of it.
pub enum Taken {
    /// It goes on with the registers (a handler's frame, maybe).
    Go,
    /// A stop signal came: it stops with the registers, the signals after
    /// it still pending.
    Stop(u32),
    /// It ended.
    Gone,
}

impl Server {
    /// A call of `pid` is answered with `regs`: first its deliverable
    /// signals are taken (a handler's frame changes the registers, a
    /// fatal one ends the process, a stop holds the answer).
    pub fn after_call(&mut self, pid: Pid, mut regs: Regs) -> Outcome {
        match self.deliver(pid, &mut regs) {
            Taken::Go => Outcome::Done(regs),
            Taken::Stop(sig) => Outcome::Stopped(regs, sig),
            Taken::Gone => Outcome::Gone,
        }
    }

    /// Takes the deliverable signals of `pid` into `regs`, up to a stop.
    pub fn deliver(&mut self, pid: Pid, regs: &mut Regs) -> Taken {
        loop {
            let Some(p) = self.procs.get_mut(&pid) else {
                return Taken::Gone;
            };
            if p.zombie.is_some() {
                return Taken::Gone;
            }
            let Some(d) = p.signals.next_deliverable() else {
                // A `rt_sigsuspend` whose signal ran no handler ends here.
                p.signals.restore_saved_mask();
                return Taken::Go;
            };
            // Linux's init ends or stops only by a fault: a signal it
            // blocked and later unblocked with its default action is
            // dropped then.
            let d = match d {
                Delivery::Terminate { sig, .. } | Delivery::Stop { sig }
                    if pid == 1 && !signal::is_fault(sig) =>
                {
                    Delivery::Ignore { sig }
                }
                d => d,
            };
            match d {
                Delivery::Terminate { sig, core } => {
                    self.end(pid, signal::wait::signaled(sig, core) as i32);
                    return Taken::Gone;
                }
                Delivery::Stop { sig } => return Taken::Stop(sig),
                Delivery::Continue | Delivery::Ignore { .. } => {}
                Delivery::Handle { sig, action, info } => {
                    let mut mem = crate::space::Mem {
                        space: &mut p.space,
                        broker: &mut self.broker,
                    };
                    if signal::push_frame(regs, sig, &action, &info, &mut mem, &mut p.signals)
                        .is_err()
                    {
                        p.signals.force_sigsegv(sig);
                    }
                }
            }
        }
    }

    /// A signal came for `pid` while it is parked in a call: the call ends
    /// (`EINTR`, or it runs again after the handler when the action asks
    /// for `SA_RESTART`) and the answer carries the handler's frame. A
    /// stop leaves the call parked, to run again when the process goes on.
    pub fn interrupt(&mut self, pid: Pid) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        // A vfork parent waits for its child whatever comes but SIGKILL;
        // the signal is taken when its call is answered.
        if p.vfork_child.is_some()
            && p.signals.pending() & signal::bit(crate::process::SIGKILL) == 0
        {
            return;
        }
        if p.blocked.is_some() && p.signals.next_stops() {
            if let Some(Delivery::Stop { sig }) = p.signals.next_deliverable() {
                self.stop(pid, sig, Stopped::Parked);
            }
            return;
        }
        let Some((mut regs, slot)) = p.blocked.take() else {
            return;
        };
        p.deadline = None;
        self.futex_cancel(pid);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let kind = signal::restart_kind(regs.rax);
        let restart = signal::restarts(kind, p.signals.next_pending_action().as_ref());
        if !restart {
            regs.finish(posix::errno::Errno::EINTR.ret());
        }
        match self.deliver(pid, &mut regs) {
            Taken::Go => {
                Server::reply_saved(slot, &regs);
                let _ = self.broker.free_slot(slot);
            }
            Taken::Stop(sig) => self.stop(pid, sig, Stopped::Answered(regs, slot)),
            Taken::Gone => {
                let _ = self.broker.free_slot(slot);
            }
        }
    }

    /// A signal came for `pid` while it runs: its thread is stopped, the
    /// frame pushed on its registers, and it goes on in the handler (or
    /// stays suspended for a stop).
    pub fn deliver_running(&mut self, pid: Pid) {
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        let tcb = p.tcb;
        let Ok(ctx) = tcb.read_registers(true) else {
            return;
        };
        let mut regs = Regs {
            rax: ctx.rax,
            rbx: ctx.rbx,
            rcx: ctx.rcx,
            rdx: ctx.rdx,
            rsi: ctx.rsi,
            rdi: ctx.rdi,
            rbp: ctx.rbp,
            r8: ctx.r8,
            r9: ctx.r9,
            r10: ctx.r10,
            r11: ctx.r11,
            r12: ctx.r12,
            r13: ctx.r13,
            r14: ctx.r14,
            r15: ctx.r15,
            rip: ctx.rip,
            rsp: ctx.rsp,
            rflags: ctx.rflags,
        };
        let taken = self.deliver(pid, &mut regs);
        if let Taken::Gone = taken {
            return;
        }
        let new = UserContext {
            rip: regs.rip,
            rsp: regs.rsp,
            rflags: regs.rflags,
            rax: regs.rax,
            rbx: regs.rbx,
            rcx: regs.rcx,
            rdx: regs.rdx,
            rsi: regs.rsi,
            rdi: regs.rdi,
            rbp: regs.rbp,
            r8: regs.r8,
            r9: regs.r9,
            r10: regs.r10,
            r11: regs.r11,
            r12: regs.r12,
            r13: regs.r13,
            r14: regs.r14,
            r15: regs.r15,
            tls_base: ctx.tls_base,
        };
        let resume = matches!(taken, Taken::Go);
        // SAFETY: the thread runs in its own address space.
        let _ = unsafe { tcb.write_registers(resume, &new) };
        if let Taken::Stop(sig) = taken {
            self.stop(pid, sig, Stopped::Running);
        }
    }
}
