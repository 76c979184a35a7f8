//! `alarm`, `setitimer` and `getitimer` (`ITIMER_REAL`): a process's
//! real-time timer, which sends it SIGALRM when it expires (and again every
//! interval). The server's timer driver wakes it at the earliest expiry.

use alloc::vec::Vec;
use core::time::Duration;

use kaal_rt::time::Instant;
use linux_raw_sys::general as g;
use posix::abi;
use posix::errno::Errno;

use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

/// `struct itimerval`: the interval, then the value, each a `timeval`.
const ITIMERVAL: usize = 32;
/// The shortest interval: a shorter one would keep the server waking.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

fn timeval(d: Duration) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&d.as_secs().to_le_bytes());
    b[8..].copy_from_slice(&u64::from(d.subsec_micros()).to_le_bytes());
    b
}

impl Server {
    /// The time left of `pid`'s timer, and its interval.
    fn itimer_left(&self, pid: Pid) -> (Duration, Duration) {
        match self.procs.get(&pid).and_then(|p| p.itimer) {
            Some((at, every)) => {
                let now = Instant::now();
                (self.clock.duration(at.ticks_since(now)), every)
            }
            None => (Duration::ZERO, Duration::ZERO),
        }
    }

    fn set_itimer(&mut self, pid: Pid, value: Duration, every: Duration) -> Result<(), Errno> {
        let at = (!value.is_zero()).then(|| self.clock.after(Instant::now(), value));
        let every = if every.is_zero() {
            every
        } else {
            every.max(MIN_INTERVAL)
        };
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.itimer = at.map(|at| (at, every));
        self.arm_timer();
        Ok(())
    }

    /// `alarm(secs)`: the seconds left of the timer before (rounded, at
    /// least 1 when any was left); 0 cancels it.
    pub(crate) fn alarm(&mut self, pid: Pid, secs: u64) -> R {
        let (left, _) = self.itimer_left(pid);
        let secs = secs.min(u64::from(u32::MAX));
        self.set_itimer(pid, Duration::from_secs(secs), Duration::ZERO)?;
        let rounded = left.as_secs() + u64::from(left.subsec_micros() >= 500_000);
        Ok(if left.is_zero() { 0 } else { rounded.max(1) })
    }

    /// `setitimer(which, new, old)`: `ITIMER_REAL` only (`EINVAL` for the
    /// CPU-time timers, which KaaL does not count).
    pub(crate) fn setitimer(&mut self, pid: Pid, which: u64, new: u64, old: u64) -> R {
        if which as u32 != g::ITIMER_REAL {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; ITIMERVAL];
        if new != 0 {
            self.user_read(pid, new, &mut b)?;
        }
        let half = |b: &[u8]| -> Result<Duration, Errno> {
            let t: [u8; 16] = b.try_into().map_err(|_| Errno::EINVAL)?;
            abi::read_timeval(&t)
                .map(Duration::from_nanos)
                .ok_or(Errno::EINVAL)
        };
        let every = half(b.get(..16).unwrap_or(&[]))?;
        let value = half(b.get(16..).unwrap_or(&[]))?;
        if old != 0 {
            self.getitimer(pid, which, old)?;
        }
        self.set_itimer(pid, value, every)?;
        Ok(0)
    }

    /// `getitimer(which, cur)`.
    pub(crate) fn getitimer(&mut self, pid: Pid, which: u64, cur: u64) -> R {
        if which as u32 != g::ITIMER_REAL {
            return Err(Errno::EINVAL);
        }
        let (left, every) = self.itimer_left(pid);
        let mut b = [0u8; ITIMERVAL];
        b[..16].copy_from_slice(&timeval(every));
        b[16..].copy_from_slice(&timeval(left));
        self.user_write(pid, cur, &b)?;
        Ok(0)
    }

    /// The earliest expiry of any process's timer.
    pub(crate) fn next_alarm(&self) -> Option<Instant> {
        self.procs
            .values()
            .filter(|p| p.zombie.is_none())
            .filter_map(|p| p.itimer.map(|(at, _)| at))
            .min()
    }

    /// SIGALRM to every process whose timer expired; an interval timer
    /// runs again from its expiry.
    pub(crate) fn fire_alarms(&mut self) {
        let now = Instant::now();
        let due: Vec<Pid> = self
            .procs
            .values()
            .filter(|p| p.zombie.is_none())
            .filter(|p| p.itimer.is_some_and(|(at, _)| now.ticks() >= at.ticks()))
            .map(|p| p.pid)
            .collect();
        for pid in due {
            let clock = self.clock;
            if let Some(p) = self.procs.get_mut(&pid) {
                p.itimer = p.itimer.and_then(|(at, every)| {
                    // Expiries missed while late are not sent twice.
                    (!every.is_zero()).then(|| {
                        let next = clock.after(at, every);
                        let next = if next.ticks() <= now.ticks() {
                            clock.after(now, every)
                        } else {
                            next
                        };
                        (next, every)
                    })
                });
            }
            self.signal(pid, g::SIGALRM);
        }
    }
}
