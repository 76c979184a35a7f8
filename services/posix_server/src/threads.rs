//! Threads: a process made by `clone(CLONE_THREAD)` runs several seL4
//! threads in one VSpace. Each has its own TCB, whose fault endpoint's
//! badge is its tid. The thread whose fault is being served is "in force":
//! its state (TCB, parked call, deadline, TLS base, `clear_tid`, blocked
//! mask, own pending signals...) lives in the `Process`, so every call
//! works on it as on a single-threaded process; the other threads' states
//! wait in `Server::threads`. A single-threaded process has no entry there.

use kaal_rt::time::Instant;
use kaal_sel4::cap::{CNode, Cap, Tcb, UserContext};
use kaal_sel4::CPtr;
use posix::errno::Errno;
use posix::regs::Regs;
use posix::signal::{Candidate, ThreadMask};

use crate::process::{Pid, Process};
use crate::syscall::Outcome;
use crate::Server;

/// A thread's own state while another thread of its process is in force.
pub struct ThreadState {
    pub tcb: Tcb,
    pub cnode: CNode,
    pub blocked: Option<(Regs, CPtr)>,
    pub deadline: Option<Instant>,
    pub wait_now: bool,
    pub fs_base: u64,
    pub clear_tid: u64,
    pub futex_woken: bool,
    pub mask: ThreadMask,
}

/// A thread of a process with more than one: its process, and its state
/// unless it is the one in force.
pub struct Thread {
    pub tgid: Pid,
    pub parked: Option<ThreadState>,
}

/// Most threads (beyond each process's first) at once.
const MAX_THREADS: usize = 256;

const CLONE_VM: u64 = linux_raw_sys::general::CLONE_VM as u64;
const CLONE_SIGHAND: u64 = linux_raw_sys::general::CLONE_SIGHAND as u64;
const CLONE_SETTLS: u64 = linux_raw_sys::general::CLONE_SETTLS as u64;
const CLONE_PARENT_SETTID: u64 = linux_raw_sys::general::CLONE_PARENT_SETTID as u64;
const CLONE_CHILD_CLEARTID: u64 = linux_raw_sys::general::CLONE_CHILD_CLEARTID as u64;
const CLONE_CHILD_SETTID: u64 = linux_raw_sys::general::CLONE_CHILD_SETTID as u64;

impl Process {
    /// Puts `t` in force and leaves the state that was in `t`.
    fn swap_thread(&mut self, t: &mut ThreadState) {
        core::mem::swap(&mut self.tcb, &mut t.tcb);
        core::mem::swap(&mut self.cnode, &mut t.cnode);
        core::mem::swap(&mut self.blocked, &mut t.blocked);
        core::mem::swap(&mut self.deadline, &mut t.deadline);
        core::mem::swap(&mut self.wait_now, &mut t.wait_now);
        core::mem::swap(&mut self.fs_base, &mut t.fs_base);
        core::mem::swap(&mut self.clear_tid, &mut t.clear_tid);
        core::mem::swap(&mut self.futex_woken, &mut t.futex_woken);
        self.signals.swap_thread(&mut t.mask);
    }
}

impl Server {
    /// The process of thread `tid`.
    pub fn tgid_of(&self, tid: Pid) -> Pid {
        self.threads.get(&tid).map_or(tid, |t| t.tgid)
    }

    /// The thread in force in process `pid`.
    pub fn tid_of(&self, pid: Pid) -> Pid {
        self.procs.get(&pid).map_or(pid, |p| p.tid)
    }

    /// Puts thread `tid` in force in its process; returns the process, or
    /// None when there is no such thread.
    pub fn install(&mut self, tid: Pid) -> Option<Pid> {
        let Some(t) = self.threads.get_mut(&tid) else {
            return self.procs.get(&tid).filter(|p| p.tid == tid).map(|_| tid);
        };
        let tgid = t.tgid;
        let p = self.procs.get_mut(&tgid)?;
        if p.tid == tid {
            return Some(tgid);
        }
        let mut state = t.parked.take()?;
        p.swap_thread(&mut state);
        let old = core::mem::replace(&mut p.tid, tid);
        match self.threads.get_mut(&old) {
            Some(o) => o.parked = Some(state),
            // The one in force had no entry: a bug; give its objects back.
            None => self.free_state(state),
        }
        Some(tgid)
    }

    fn free_state(&mut self, s: ThreadState) {
        let _ = self.broker.free(s.tcb.cptr());
        let _ = self.broker.free(s.cnode.cptr());
        if let Some((_, slot)) = s.blocked {
            let _ = self.broker.free_slot(slot);
        }
    }

    /// `clone` with `CLONE_THREAD` (pthread_create): a new thread in the
    /// caller's address space on `stack`, with TLS base `tls` under
    /// `CLONE_SETTLS`; returns its tid.
    #[allow(clippy::too_many_arguments)]
    pub fn clone_thread(
        &mut self,
        pid: Pid,
        regs: &Regs,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
    ) -> Result<Pid, Errno> {
        // Threads share memory and signal actions: Linux asks for both.
        if flags & (CLONE_VM | CLONE_SIGHAND) != CLONE_VM | CLONE_SIGHAND {
            return Err(Errno::EINVAL);
        }
        if self.threads.len() >= MAX_THREADS {
            return Err(Errno::EAGAIN);
        }
        let tid = self.next_pid;
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let vspace = p.space.vspace;
        let tls_base = if flags & CLONE_SETTLS != 0 {
            tls
        } else {
            p.fs_base
        };
        let mask = ThreadMask::inherit(&p.signals);
        let mut r = *regs;
        r.finish(0);
        let ctx = UserContext {
            rip: r.rip,
            rsp: if stack != 0 { stack } else { r.rsp },
            rflags: r.rflags,
            rax: 0,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            tls_base,
        };
        let (cnode, tcb) = self.make_tcb(tid, vspace, &ctx)?;
        self.next_pid += 1;
        let tid_bytes = tid.to_le_bytes();
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = self.user_write(pid, ptid, &tid_bytes);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = self.user_write(pid, ctid, &tid_bytes);
        }
        // The process's first other thread: the one in force gets its
        // entry too.
        let in_force = self.tid_of(pid);
        self.threads.entry(in_force).or_insert(Thread {
            tgid: pid,
            parked: None,
        });
        self.threads.insert(
            tid,
            Thread {
                tgid: pid,
                parked: Some(ThreadState {
                    tcb,
                    cnode,
                    blocked: None,
                    deadline: None,
                    wait_now: false,
                    fs_base: tls_base,
                    clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                        ctid
                    } else {
                        0
                    },
                    futex_woken: false,
                    mask,
                }),
            },
        );
        let _ = tcb.resume();
        Ok(tid)
    }

    /// `exit` of the thread in force of `pid`: with other threads left it
    /// alone ends (its `clear_tid` zeroed and woken, as `pthread_join`
    /// waits on it), else the process ends with `status`.
    pub fn exit_thread(&mut self, pid: Pid, status: i32) -> Outcome {
        let others = self
            .threads
            .values()
            .filter(|t| t.tgid == pid && t.parked.is_some())
            .count();
        if others == 0 {
            self.end(pid, status);
            return Outcome::Gone;
        }
        let Some(p) = self.procs.get(&pid) else {
            return Outcome::Gone;
        };
        let (tid, clear) = (p.tid, p.clear_tid);
        if clear != 0 && self.user_write(pid, clear, &0u32.to_le_bytes()).is_ok() {
            self.futex_wake_addr(pid, clear, 1, posix::futex::MATCH_ANY);
        }
        self.futexes.cancel(tid);
        self.threads.remove(&tid);
        // Its own pending signals go with it; the process's may be for
        // another thread to take now (`deliver_threads`).
        if self
            .procs
            .get(&pid)
            .is_some_and(|p| p.signals.shared_pending() != 0)
        {
            self.changed = true;
        }
        // Another thread takes its place in force.
        let next = self
            .threads
            .iter()
            .find(|(_, t)| t.tgid == pid && t.parked.is_some())
            .map(|(&n, _)| n);
        let (Some(next), Some(p)) = (next, self.procs.get_mut(&pid)) else {
            return Outcome::Gone;
        };
        let Some(mut state) = self.threads.get_mut(&next).and_then(|t| t.parked.take()) else {
            return Outcome::Gone;
        };
        p.swap_thread(&mut state);
        p.tid = next;
        // `state` now holds the ended thread's objects.
        self.free_state(state);
        if others == 1 {
            // One thread again: no entries.
            self.threads.remove(&next);
        }
        Outcome::Gone
    }

    /// Ends every thread of `pid` but the one in force (the process ends
    /// or execs): their TCBs, CSpaces and parked calls go, and the
    /// process's futex queues.
    pub fn end_threads(&mut self, pid: Pid) {
        let tids: alloc::vec::Vec<Pid> = self
            .threads
            .iter()
            .filter(|(_, t)| t.tgid == pid)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in tids {
            if let Some(state) = self.threads.remove(&tid).and_then(|t| t.parked) {
                let _ = state.tcb.suspend();
                self.free_state(state);
            }
        }
        self.futexes.drop_space(pid);
    }

    /// Every parked call of a thread not in force: (tid, its deadline).
    pub fn parked_threads(&self) -> impl Iterator<Item = (Pid, Option<Instant>)> + '_ {
        self.threads.iter().filter_map(|(&tid, t)| {
            let s = t.parked.as_ref()?;
            s.blocked.as_ref().map(|_| (tid, s.deadline))
        })
    }

    /// Runs the parked calls of threads not in force again (not of a
    /// stopped process: its thread in force stays as it stopped).
    pub fn retry_threads(&mut self) {
        let tids: alloc::vec::Vec<Pid> = self
            .parked_threads()
            .map(|(t, _)| t)
            .filter(|t| !self.is_stopped(self.tgid_of(*t)))
            .collect();
        for tid in tids {
            if let Some(pid) = self.install(tid) {
                self.retry(pid);
            }
        }
    }

    /// A process-directed signal `sig` for `pid` goes to a thread that
    /// can take it (`posix::signal::pick_thread`: the main thread, the one
    /// in force, the others): that thread is put in force. While a call of
    /// the process is being served its thread must stay: the signal waits
    /// in the process's set and `deliver_threads` hands it on after the
    /// answer (`send_info_to` asks for that).
    pub fn steer_signal(&mut self, pid: Pid, sig: u32) {
        if self.is_stopped(pid) {
            return;
        }
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        let shared = p.signals.shared_pending();
        let in_force = Candidate {
            tid: p.tid,
            blocked: p.signals.blocked(),
            busy: p.signals.has_deliverable(),
        };
        let mut candidates = alloc::vec::Vec::new();
        let others = self.threads.iter().filter_map(|(&tid, t)| {
            let s = t.parked.as_ref().filter(|_| t.tgid == pid)?;
            Some(Candidate {
                tid,
                blocked: s.mask.blocked(),
                busy: s.mask.has_deliverable(shared),
            })
        });
        // The main thread first, as Linux's `kill` aims at it.
        for c in core::iter::once(in_force).chain(others) {
            if c.tid == pid {
                candidates.insert(0, c);
            } else {
                candidates.push(c);
            }
        }
        let Some(tid) = posix::signal::pick_thread(sig, &candidates) else {
            return;
        };
        if tid != in_force.tid && self.current != Some(pid) {
            self.install(tid);
        }
    }

    /// `tkill(tid, sig)` and `tgkill(tgid, tid, sig)`: the signal goes to
    /// thread `tid` alone, into its own pending set (`ESRCH` for no such
    /// thread, or one of another process than `tgid`; signal 0 only
    /// checks).
    pub fn tkill(&mut self, pid: Pid, tgid: Option<Pid>, tid: Pid, sig: u64) -> Result<u64, Errno> {
        let positive = |n: Pid| n != 0 && i32::try_from(n).is_ok();
        if !positive(tid) || !tgid.is_none_or(positive) || sig > 64 {
            return Err(Errno::EINVAL);
        }
        let owner = self.tgid_of(tid);
        let p = self
            .procs
            .get(&owner)
            .filter(|p| p.zombie.is_none())
            .ok_or(Errno::ESRCH)?;
        let live = p.tid == tid || self.threads.get(&tid).is_some_and(|t| t.parked.is_some());
        if tgid.is_some_and(|g| g != owner) || !live {
            return Err(Errno::ESRCH);
        }
        if sig != 0 {
            let info = posix::signal::SigInfo::tkill(sig as u32, pid, 0);
            self.send_info_to(owner, Some(tid), info);
        }
        Ok(0)
    }

    /// After a signal came or a thread ended: every thread not in force
    /// that has a signal to act on (its own, or the process's) is put in
    /// force and takes it, its parked call ended (`EINTR`, or restarted)
    /// or its running code interrupted for the handler. Runs between
    /// calls, never while one is being answered.
    pub fn deliver_threads(&mut self) {
        let tids: alloc::vec::Vec<Pid> = self
            .threads
            .iter()
            .filter_map(|(&tid, t)| {
                let s = t.parked.as_ref()?;
                let p = self.procs.get(&t.tgid)?;
                let ready = p.zombie.is_none()
                    && p.stopped.is_none()
                    && s.mask.has_deliverable(p.signals.shared_pending());
                ready.then_some(tid)
            })
            .collect();
        for tid in tids {
            let Some(pid) = self.install(tid) else {
                continue;
            };
            // An earlier thread may have taken the process's signal.
            let Some(p) = self.procs.get(&pid) else {
                continue;
            };
            if p.zombie.is_some() || p.stopped.is_some() || !p.signals.has_deliverable() {
                continue;
            }
            if p.blocked.is_some() {
                self.interrupt(pid);
            } else {
                self.deliver_running(pid);
            }
        }
    }

    /// After `rt_sigaction` made a signal ignored: the other threads' own
    /// pending instances go too (the one in force's went with the call).
    pub fn drop_ignored(&mut self, pid: Pid) {
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        for t in self.threads.values_mut().filter(|t| t.tgid == pid) {
            if let Some(s) = t.parked.as_mut() {
                p.signals.drop_ignored(&mut s.mask);
            }
        }
    }

    pub(crate) fn is_stopped(&self, pid: Pid) -> bool {
        self.procs.get(&pid).is_some_and(|p| p.stopped.is_some())
    }

    /// Job control: the threads of `pid` neither in force nor parked in a
    /// call are suspended when it stops (`stop`) and resumed when it
    /// continues; parked ones stay parked (suspending would cancel their
    /// reply), and a thread suspended as it faulted faults again on resume.
    pub fn pause_threads(&mut self, pid: Pid, stop: bool) {
        for t in self.threads.values().filter(|t| t.tgid == pid) {
            if let Some(s) = t.parked.as_ref().filter(|s| s.blocked.is_none()) {
                let _ = if stop {
                    s.tcb.suspend()
                } else {
                    s.tcb.resume()
                };
            }
        }
    }

    /// `set_tid_address`: the thread in force's `clear_tid`; its tid.
    pub fn set_tid_address(&mut self, pid: Pid, addr: u64) -> Result<u64, Errno> {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.clear_tid = addr;
        Ok(u64::from(p.tid))
    }
}
