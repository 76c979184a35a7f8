//! Waiting for descriptors: `poll`, `ppoll`, `select` and `pselect6` ask
//! each descriptor the same question (readable, writable, hung up) and
//! share one way of waiting: parked until something changes, a signal
//! comes or the timeout passes. `ppoll` and `pselect6` wait with the mask
//! they are given, as `rt_sigsuspend` does.

use core::time::Duration;

use kaal_rt::time::Instant;
use linux_raw_sys::general as g;
use posix::abi;
use posix::errno::Errno;
use posix::fdset::{bytes_for, FdSet};

use crate::files::Object;
use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

const POLLIN: u16 = g::POLLIN as u16;
const POLLOUT: u16 = g::POLLOUT as u16;
const POLLERR: u16 = g::POLLERR as u16;
const POLLHUP: u16 = g::POLLHUP as u16;
const POLLNVAL: u16 = g::POLLNVAL as u16;

/// What `select` counts as ready in each of its three sets.
const SELECT_READ: u16 = POLLIN | POLLHUP | POLLERR;
const SELECT_WRITE: u16 = POLLOUT | POLLERR;
/// Exceptional conditions (`POLLPRI`): no object of ours has any.
const SELECT_EXCEPT: u16 = g::POLLPRI as u16;

impl Server {
    /// The poll bits of descriptor `fd` of `pid` now; `POLLNVAL` when it
    /// is not open. Files and devices are always ready.
    fn readiness(&self, pid: Pid, fd: u64) -> u16 {
        match self.file(pid, fd) {
            Err(_) => POLLNVAL,
            Ok(f) => match &f.borrow().object {
                Object::Vfs { .. }
                | Object::Null
                | Object::Zero
                | Object::Random
                | Object::Generated { .. } => POLLIN | POLLOUT,
                other => self.object_state(other, 0).0 as u16,
            },
        }
    }

    /// Nothing was ready: `Ok` when the time is up (the call answers 0),
    /// `EINTR` when a signal the mask in force lets through is pending,
    /// else the call parks until something changes or its deadline
    /// (`timeout` `None`: no deadline).
    pub(crate) fn none_ready(&mut self, pid: Pid, timeout: Option<Duration>) -> Result<(), Errno> {
        let deadline = match self.procs.get(&pid).and_then(|p| p.deadline) {
            Some(d) => Some(d),
            None => match timeout {
                Some(t) if t.is_zero() => return Ok(()),
                Some(t) => Some(self.clock.after(Instant::now(), t)),
                None => None,
            },
        };
        if deadline.is_some_and(|d| Instant::now().ticks() >= d.ticks()) {
            self.end_wait(pid);
            return Ok(());
        }
        if self
            .procs
            .get(&pid)
            .is_some_and(|p| p.signals.has_deliverable())
        {
            self.end_wait(pid);
            return Err(Errno::EINTR);
        }
        Err(self.wait(pid, deadline))
    }

    /// The call answers: a deadline of an earlier run is forgotten.
    pub(crate) fn end_wait(&mut self, pid: Pid) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.deadline = None;
        }
    }

    /// The signal mask of `ppoll` and `pselect6` (`set` 0: none), in force
    /// until the call ends (see `deliver`, which restores the old one).
    pub(crate) fn wait_mask(&mut self, pid: Pid, set: u64, size: u64) -> Result<(), Errno> {
        if set == 0 {
            return Ok(());
        }
        if size != 8 {
            return Err(Errno::EINVAL);
        }
        let mask = self.user_u64(pid, set)?;
        self.procs
            .get_mut(&pid)
            .ok_or(Errno::ESRCH)?
            .signals
            .suspend(mask);
        Ok(())
    }

    /// A `struct timespec` timeout (`at` 0: none).
    pub(crate) fn timespec_timeout(
        &mut self,
        pid: Pid,
        at: u64,
    ) -> Result<Option<Duration>, Errno> {
        if at == 0 {
            return Ok(None);
        }
        let nanos = self.user_timespec(pid, at)?;
        Ok(Some(Duration::from_nanos(nanos)))
    }

    /// `poll`: `timeout_ms` negative waits without end.
    pub(crate) fn poll(&mut self, pid: Pid, fds: u64, n: u64, timeout_ms: i64) -> R {
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        self.poll_fds(pid, fds, n, timeout)
    }

    /// `ppoll(fds, n, timeout, sigmask, sigsetsize)`.
    pub(crate) fn ppoll(&mut self, pid: Pid, fds: u64, n: u64, ts: u64, set: u64, size: u64) -> R {
        let timeout = self.timespec_timeout(pid, ts)?;
        self.wait_mask(pid, set, size)?;
        let r = self.poll_fds(pid, fds, n, timeout);
        self.end_mask(pid, &r);
        r
    }

    /// A call with a wait mask answers: unless a signal interrupted it
    /// (its handler's frame then keeps the old mask), the old mask comes
    /// back before any signal is taken, as Linux restores it first. A call
    /// that parks keeps the wait mask.
    pub(crate) fn end_mask(&mut self, pid: Pid, r: &R) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let parks = *r == Err(Errno::EAGAIN) && p.wait_now;
        if !parks && *r != Err(Errno::EINTR) {
            p.signals.restore_saved_mask();
        }
    }

    fn poll_fds(&mut self, pid: Pid, fds: u64, n: u64, timeout: Option<Duration>) -> R {
        if n > u64::from(posix::fd::FD_MAX) {
            return Err(Errno::EINVAL);
        }
        self.console.poll_input_only();
        self.inet_drain();
        let mut ready = 0u64;
        let mut entries = alloc::vec![0u8; (n * 8) as usize];
        self.user_read(pid, fds, &mut entries)?;
        for e in entries.chunks_exact_mut(8) {
            let word = |at: usize| e.get(at).copied().unwrap_or(0);
            let fd = i32::from_le_bytes([word(0), word(1), word(2), word(3)]);
            let events = u16::from_le_bytes([word(4), word(5)]);
            // A negative descriptor is skipped; errors and hang-ups are
            // reported whether asked for or not.
            let revents = match u64::try_from(fd) {
                Err(_) => 0,
                Ok(fd) => self.readiness(pid, fd) & (events | POLLERR | POLLHUP | POLLNVAL),
            };
            if let Some(r) = e.get_mut(6..8) {
                r.copy_from_slice(&revents.to_le_bytes());
            }
            if revents != 0 {
                ready += 1;
            }
        }
        if ready == 0 {
            self.none_ready(pid, timeout)?;
        }
        self.end_wait(pid);
        self.user_write(pid, fds, &entries)?;
        Ok(ready)
    }

    /// `select(n, readfds, writefds, exceptfds, timeval)`, and with
    /// `timespec` the timeout of `pselect6`. The remaining time is not
    /// written back (Linux's `select` does; portable programs do not rely
    /// on it).
    pub(crate) fn select(
        &mut self,
        pid: Pid,
        n: u64,
        sets: [u64; 3],
        tv: u64,
        timespec: bool,
    ) -> R {
        let timeout = if timespec {
            self.timespec_timeout(pid, tv)?
        } else if tv == 0 {
            None
        } else {
            let mut b = [0u8; 16];
            self.user_read(pid, tv, &mut b)?;
            Some(Duration::from_nanos(
                abi::read_timeval(&b).ok_or(Errno::EINVAL)?,
            ))
        };
        // Negative is refused; more than the table holds is cut to it, as
        // Linux does.
        let n = u32::try_from(n as i32)
            .map_err(|_| Errno::EINVAL)?
            .min(posix::fd::FD_MAX);
        let mut asked: [Option<FdSet>; 3] = [None, None, None];
        for (slot, &at) in asked.iter_mut().zip(sets.iter()) {
            if at != 0 {
                let mut b = alloc::vec![0u8; bytes_for(n)];
                self.user_read(pid, at, &mut b)?;
                *slot = Some(FdSet::from_bytes(n, &b).ok_or(Errno::EINVAL)?);
            }
        }
        self.console.poll_input_only();
        self.inet_drain();
        let mut found: [FdSet; 3] = [
            FdSet::empty(n).ok_or(Errno::EINVAL)?,
            FdSet::empty(n).ok_or(Errno::EINVAL)?,
            FdSet::empty(n).ok_or(Errno::EINVAL)?,
        ];
        for fd in 0..n {
            let wanted: [bool; 3] = core::array::from_fn(|i| {
                asked
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.contains(fd))
            });
            if !wanted.contains(&true) {
                continue;
            }
            let bits = self.readiness(pid, u64::from(fd));
            if bits & POLLNVAL != 0 {
                return Err(Errno::EBADF);
            }
            for ((set, want), mask) in
                found
                    .iter_mut()
                    .zip(wanted)
                    .zip([SELECT_READ, SELECT_WRITE, SELECT_EXCEPT])
            {
                if want && bits & mask != 0 {
                    set.insert(fd);
                }
            }
        }
        let ready: usize = found.iter().map(FdSet::len).sum();
        if ready == 0 {
            self.none_ready(pid, timeout)?;
        }
        self.end_wait(pid);
        for (set, &at) in found.iter().zip(sets.iter()) {
            if at != 0 {
                self.user_write(pid, at, &set.to_bytes())?;
            }
        }
        Ok(ready as u64)
    }

    /// `pselect6(n, readfds, writefds, exceptfds, timespec, sig)`: `sig`
    /// points to the mask's address and size.
    pub(crate) fn pselect6(&mut self, pid: Pid, n: u64, sets: [u64; 3], ts: u64, sig: u64) -> R {
        if sig != 0 {
            let mut b = [0u8; 16];
            self.user_read(pid, sig, &mut b)?;
            let (set, size) = b.split_at(8);
            let word = |w: &[u8]| w.try_into().map(u64::from_le_bytes).unwrap_or(0);
            self.wait_mask(pid, word(set), word(size))?;
        }
        let r = self.select(pid, n, sets, ts, true);
        self.end_mask(pid, &r);
        r
    }
}
