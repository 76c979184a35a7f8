//! Job control: a stop signal stops a process until `SIGCONT` (or
//! `SIGKILL`), and its parent hears of both through `wait4` (`WUNTRACED`,
//! `WCONTINUED`) and `SIGCHLD` (unless `SA_NOCLDSTOP`). A stopped process
//! does not run: a running thread is suspended, the answer of a call it
//! was given is held, a parked call is not run again until it continues.

use alloc::vec::Vec;

use kaal_sel4::CPtr;
use linux_raw_sys::general as g;
use posix::regs::Regs;
use posix::signal::{wait, CLD_CONTINUED, CLD_STOPPED};

use crate::deliver::Taken;
use crate::process::Pid;
use crate::Server;

/// How a stopped process goes on when it continues.
pub enum Stopped {
    /// Its thread was running: suspended, resumed.
    Running,
    /// A call of its has its answer: held, with the slot of the reply
    /// capability, and sent when it continues.
    Answered(Regs, CPtr),
    /// It was parked in a call (`Process::blocked`): the call runs again
    /// when it continues, as Linux restarts it.
    Parked,
}

impl Stopped {
    /// The reply capability's slot a held answer keeps.
    pub fn held_slot(self) -> Option<CPtr> {
        match self {
            Stopped::Answered(_, slot) => Some(slot),
            Stopped::Running | Stopped::Parked => None,
        }
    }
}

impl Server {
    /// Stops `pid` for `sig`; `how` says how it goes on later.
    pub fn stop(&mut self, pid: Pid, sig: u32, how: Stopped) {
        let Some(p) = self.procs.get_mut(&pid) else {
            if let Some(slot) = how.held_slot() {
                let _ = self.broker.free_slot(slot);
            }
            return;
        };
        p.stopped = Some(how);
        p.report = Some(wait::stopped(sig) as i32);
        let ppid = p.ppid;
        self.pause_threads(pid, true);
        self.tell_parent(ppid, pid, CLD_STOPPED, sig);
    }

    /// `SIGCONT` or `SIGKILL` was sent to `pid`: if it is stopped, it goes
    /// on as it stopped (`continued`: by `SIGCONT`, which its parent hears
    /// of; a `SIGKILL` ends it next).
    pub fn cont(&mut self, pid: Pid, continued: bool) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let Some(how) = p.stopped.take() else {
            return;
        };
        let ppid = p.ppid;
        if continued {
            p.report = Some(wait::CONTINUED as i32);
        }
        let tcb = p.tcb;
        self.pause_threads(pid, false);
        match how {
            Stopped::Running => {
                let _ = tcb.resume();
            }
            // Parked calls run again before the server next sleeps.
            Stopped::Parked => self.changed = true,
            Stopped::Answered(mut regs, slot) => {
                // Signals that came while it was stopped are taken first.
                match self.deliver(pid, &mut regs) {
                    Taken::Go => {
                        Server::reply_saved(slot, &regs);
                        let _ = self.broker.free_slot(slot);
                    }
                    Taken::Stop(sig) => {
                        self.stop(pid, sig, Stopped::Answered(regs, slot));
                        return;
                    }
                    Taken::Gone => {
                        let _ = self.broker.free_slot(slot);
                        return;
                    }
                }
            }
        }
        if continued {
            self.tell_parent(ppid, pid, CLD_CONTINUED, g::SIGCONT);
        }
        // Signals that came while it was stopped are taken now (a held
        // answer took them above).
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        if p.zombie.is_none() && p.stopped.is_none() && p.signals.has_deliverable() {
            if p.blocked.is_some() {
                self.interrupt(pid);
            } else if self.current != Some(pid) {
                self.deliver_running(pid);
            }
        }
    }

    /// The live members of process group `pgid`.
    pub fn group(&self, pgid: Pid) -> Vec<Pid> {
        self.procs
            .values()
            .filter(|m| m.pgid == pgid && m.zombie.is_none())
            .map(|m| m.pid)
            .collect()
    }

    /// Whether process group `pgid` is orphaned: no live member has a
    /// parent in the same session but another group (a shell that could
    /// continue it). Its background reads of the tty fail instead of
    /// stopping it.
    pub fn orphaned(&self, pgid: Pid) -> bool {
        !self
            .procs
            .values()
            .filter(|m| m.pgid == pgid && m.zombie.is_none())
            .any(|m| {
                self.procs
                    .get(&m.ppid)
                    .is_some_and(|p| p.zombie.is_none() && p.pgid != pgid && p.sid == m.sid)
            })
    }

    /// Groups an ending process may have orphaned: one that is orphaned now
    /// and has a stopped member gets SIGHUP, then SIGCONT (POSIX), so no
    /// job stays stopped with nobody left to continue it.
    pub fn hang_up_orphans(&mut self, groups: &[Pid]) {
        for (i, &pgid) in groups.iter().enumerate() {
            if groups.get(..i).is_some_and(|seen| seen.contains(&pgid)) {
                continue;
            }
            let members = self.group(pgid);
            let stopped = members
                .iter()
                .any(|m| self.procs.get(m).is_some_and(|m| m.stopped.is_some()));
            if !stopped || !self.orphaned(pgid) {
                continue;
            }
            for &m in &members {
                self.signal(m, g::SIGHUP);
            }
            for &m in &members {
                self.signal(m, g::SIGCONT);
            }
        }
    }

    /// A child stopped or continued: a parked `wait4` of the parent looks
    /// again, then `SIGCHLD` comes unless the parent set `SA_NOCLDSTOP`.
    fn tell_parent(&mut self, ppid: Pid, child: Pid, code: i32, sig: u32) {
        let Some(parent) = self.procs.get(&ppid).filter(|p| p.zombie.is_none()) else {
            return;
        };
        let notify = parent.signals.notifies_stop();
        if parent.blocked.is_some() {
            self.retry(ppid);
        }
        if notify {
            self.send_child_signal(ppid, child, code, sig as i32);
        }
        self.changed = true;
    }
}
