//! Signal delivery: a process takes its pending signals when a system call
//! of its returns, when it is parked in one (the call ends with `EINTR`,
//! or runs again after the handler with `SA_RESTART`), or at once when it
//! is running (its thread is stopped, the frame pushed, and it goes on in
//! the handler). The decisions and the frame are `posix::signal`'s.

use kaal_sel4::cap::UserContext;
use posix::regs::Regs;
use posix::signal::{self, Delivery};

use crate::process::Pid;
use crate::syscall::Outcome;
use crate::Server;

impl Server {
    /// A call of `pid` is answered with `regs`: first its deliverable
    /// signals are taken (a handler's frame changes the registers, a
    /// fatal one ends the process).
    pub fn after_call(&mut self, pid: Pid, mut regs: Regs) -> Outcome {
        if self.deliver(pid, &mut regs) {
            Outcome::Done(regs)
        } else {
            Outcome::Gone
        }
    }

    /// Takes every deliverable signal of `pid` into `regs`; false when the
    /// process ended.
    pub fn deliver(&mut self, pid: Pid, regs: &mut Regs) -> bool {
        loop {
            let Some(p) = self.procs.get_mut(&pid) else {
                return false;
            };
            if p.zombie.is_some() {
                return false;
            }
            let Some(d) = p.signals.next_deliverable() else {
                // A `rt_sigsuspend` whose signal ran no handler ends here.
                p.signals.restore_saved_mask();
                return true;
            };
            match d {
                Delivery::Terminate { sig, core } => {
                    self.end(pid, signal::wait::signaled(sig, core) as i32);
                    return false;
                }
                // Stopping is not implemented yet: a stop signal is taken
                // and the process goes on (docs/posix.md).
                Delivery::Stop { .. } | Delivery::Continue | Delivery::Ignore { .. } => {}
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
    /// for `SA_RESTART`) and the answer carries the handler's frame.
    pub fn interrupt(&mut self, pid: Pid) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        // A vfork parent waits for its child whatever comes; the signal is
        // taken when its call is answered.
        if p.vfork_child.is_some() {
            return;
        }
        let Some((mut regs, slot)) = p.blocked.take() else {
            return;
        };
        p.deadline = None;
        let restart = p
            .signals
            .next_pending_action()
            .is_some_and(|a| signal::restarts(signal::Restart::Sys, Some(&a)));
        if !restart {
            regs.finish(posix::errno::Errno::EINTR.ret());
        }
        if self.deliver(pid, &mut regs) {
            Server::reply_saved(slot, &regs);
        }
        let _ = self.broker.free_slot(slot);
    }

    /// A signal came for `pid` while it runs: its thread is stopped, the
    /// frame pushed on its registers, and it goes on in the handler.
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
        if !self.deliver(pid, &mut regs) {
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
        // SAFETY: the thread runs in its own address space.
        let _ = unsafe { tcb.write_registers(true, &new) };
    }
}
