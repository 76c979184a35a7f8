//! Sending signals and the calls that wait for them: `kill` and friends,
//! `rt_sigsuspend`, `rt_sigtimedwait`. What a process then does with a
//! signal is `deliver`'s; stopping and continuing is `jobs`'.

use alloc::vec::Vec;

use linux_raw_sys::general as g;
use posix::errno::Errno;

use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

impl Server {
    /// `kill`, `tkill` and `tgkill`: to a process, the caller's group
    /// (0), another group (-pgid), or every process but pid 1 and the
    /// caller (-1). Signal 0 checks that a target exists.
    pub(crate) fn kill(&mut self, pid: Pid, target: i64, sig: u64) -> R {
        if sig > 64 {
            return Err(Errno::EINVAL);
        }
        let me = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let my_pgid = me.pgid;
        let targets: Vec<Pid> = self
            .procs
            .values()
            .filter(|p| p.zombie.is_none())
            .filter(|p| match target {
                0 => p.pgid == my_pgid,
                -1 => p.pid != 1 && p.pid != pid,
                t if t < -1 => i64::from(p.pgid) == -t,
                t => i64::from(p.pid) == t,
            })
            .map(|p| p.pid)
            .collect();
        if targets.is_empty() {
            return Err(Errno::ESRCH);
        }
        if sig == 0 {
            return Ok(0);
        }
        for t in targets {
            self.signal_from(t, sig as u32, pid);
        }
        Ok(0)
    }

    /// `rt_sigsuspend`: the mask given until a signal is taken (a
    /// handler's frame keeps the old one for its return), then `EINTR`.
    pub(crate) fn sigsuspend(&mut self, pid: Pid, set: u64, size: u64) -> R {
        if size != 8 {
            return Err(Errno::EINVAL);
        }
        let mask = self.user_u64(pid, set)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.signals.suspend(mask);
        if p.signals.has_deliverable() {
            return Err(Errno::EINTR);
        }
        Err(self.wait(pid, None))
    }

    /// Sends `sig` to process `pid` from process `from` (0: the
    /// server, e.g. for the tty); a process parked in a call or running
    /// takes it now, the one whose call is being answered on its return.
    pub fn signal(&mut self, pid: Pid, sig: u32) {
        self.signal_from(pid, sig, 0);
    }

    pub fn signal_from(&mut self, pid: Pid, sig: u32, from: Pid) {
        let info = if from == 0 {
            posix::signal::SigInfo::kernel(sig)
        } else {
            posix::signal::SigInfo::user(sig, from, 0)
        };
        self.send_info(pid, info);
    }

    /// SIGCHLD to `parent`: child `child` ended (`code`, wait `status`).
    pub fn send_child_signal(&mut self, parent: Pid, child: Pid, code: i32, status: i32) {
        let st = if code == posix::signal::CLD_EXITED {
            (status >> 8) & 0xff
        } else {
            status & 0x7f
        };
        let info = posix::signal::SigInfo::child(code, child, 0, st);
        self.send_info(parent, info);
    }

    fn send_info(&mut self, pid: Pid, info: posix::signal::SigInfo) {
        self.send_info_to(pid, None, info);
    }

    /// Sends `info` to process `pid`, or to its thread `tid` alone (into
    /// that thread's own pending set).
    pub fn send_info_to(&mut self, pid: Pid, tid: Option<Pid>, info: posix::signal::SigInfo) {
        let serving = self.current == Some(pid);
        match tid {
            None => self.steer_signal(pid, info.signo),
            Some(t) if !serving && !self.is_stopped(pid) => {
                self.install(t);
            }
            Some(_) => {}
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.zombie.is_some() {
            return;
        }
        // The target thread's state when it is not the one in force.
        let parked = match tid {
            Some(t) if t != p.tid => {
                let Some(s) = self.threads.get_mut(&t).and_then(|t| t.parked.as_mut()) else {
                    return;
                };
                Some(s)
            }
            _ => None,
        };
        // pid 1 takes only the signals it handles or blocks (to wait for
        // them), as Linux's init and a container's first process do;
        // faults still end it (they do not come this way).
        let blocked = parked
            .as_ref()
            .map_or(p.signals.blocked(), |s| s.mask.blocked());
        if pid == 1
            && p.signals.action(info.signo).handler == posix::signal::SIG_DFL
            && blocked & posix::signal::bit(info.signo) == 0
        {
            return;
        }
        let sent = match (parked, tid) {
            (Some(s), _) => p.signals.send_to(&mut s.mask, info),
            (None, Some(_)) => p.signals.send_thread(info),
            (None, None) => p.signals.send(info),
        };
        // A call waiting for a signal (`rt_sigtimedwait`) looks again; a
        // thread other than the one in force takes its signal after the
        // call being answered (`deliver_threads`).
        let threaded = self.threads.contains_key(&p.tid);
        if sent.pending && (p.blocked.is_some() || threaded) {
            self.changed = true;
        }
        if sent.resume && p.stopped.is_some() {
            // Its other threads take theirs too (`deliver_threads`).
            self.changed |= threaded;
            self.cont(pid, info.signo == g::SIGCONT);
        }
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        // A stopped process takes its signals when it goes on.
        if !sent.pending
            || !p.signals.has_deliverable()
            || self.current == Some(pid)
            || p.zombie.is_some()
            || p.stopped.is_some()
        {
            return;
        }
        if p.blocked.is_some() {
            self.interrupt(pid);
        } else {
            self.deliver_running(pid);
        }
    }

    /// `rt_sigtimedwait(set, info, timeout, size)`: takes a pending signal
    /// of `set` (blocked, as callers make them), or waits for one until
    /// the timeout (`EAGAIN`); a handled signal outside `set` ends the
    /// wait with `EINTR`.
    pub(crate) fn sigtimedwait(&mut self, pid: Pid, set: u64, info: u64, ts: u64, size: u64) -> R {
        if size != 8 {
            return Err(Errno::EINVAL);
        }
        let set = self.user_u64(pid, set)?;
        let timeout = self.timespec_timeout(pid, ts)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if let Some(taken) = p.signals.take_from(set) {
            p.deadline = None;
            if info != 0 {
                self.user_write(pid, info, &taken.encode())?;
            }
            return Ok(u64::from(taken.signo));
        }
        match self.none_ready(pid, timeout) {
            // Time is up.
            Ok(()) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }

    /// Runs `op` with the process's signal state and its memory.
    pub(crate) fn with_signals<T>(
        &mut self,
        pid: Pid,
        op: impl FnOnce(&mut posix::signal::Signals, &mut dyn posix::signal::UserMem) -> T,
    ) -> Result<T, Errno> {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let mut mem = crate::space::Mem {
            space: &mut p.space,
            broker: &mut self.broker,
        };
        Ok(op(&mut p.signals, &mut mem))
    }
}
