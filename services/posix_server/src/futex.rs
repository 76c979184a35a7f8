//! `futex`: waits park the thread's call in the wait queue of its futex
//! word (`posix::futex`); a wake marks the threads it takes and their
//! calls answer 0 when they run again. A parked wait that runs again
//! without a wake looks at the word: changed, it ends with `EAGAIN` (a
//! spurious wake-up, which callers allow); its deadline past,
//! `ETIMEDOUT`; otherwise it waits on.

use kaal_rt::time::Instant;
use linux_raw_sys::general as g;
use posix::errno::Errno;
use posix::futex::MATCH_ANY;

use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
/// The command's bits (without FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME).
const CMD_MASK: u64 = 0x7f;
const FUTEX_CLOCK_REALTIME: u64 = 256;

impl Server {
    /// `futex(uaddr, op, val, timeout or val2, uaddr2, val3)`.
    pub(crate) fn futex(&mut self, pid: Pid, a: [u64; 6]) -> R {
        let [uaddr, op, val, timeout, uaddr2, val3] = a;
        let val = val as u32;
        match op & CMD_MASK {
            FUTEX_WAIT => self.futex_wait(pid, uaddr, val, timeout, MATCH_ANY, None),
            FUTEX_WAIT_BITSET => {
                let clock = if op & FUTEX_CLOCK_REALTIME != 0 {
                    g::CLOCK_REALTIME
                } else {
                    g::CLOCK_MONOTONIC
                };
                self.futex_wait(pid, uaddr, val, timeout, val3 as u32, Some(clock))
            }
            FUTEX_WAKE => self.futex_wake(pid, uaddr, val, MATCH_ANY),
            FUTEX_WAKE_BITSET => self.futex_wake(pid, uaddr, val, val3 as u32),
            cmd @ (FUTEX_REQUEUE | FUTEX_CMP_REQUEUE) => {
                aligned(uaddr)?;
                aligned(uaddr2)?;
                if cmd == FUTEX_CMP_REQUEUE && self.futex_word(pid, uaddr)? != val3 as u32 {
                    return Err(Errno::EAGAIN);
                }
                let key = |addr| (pid, addr);
                let (woken, moved) = self.futexes.requeue(
                    key(uaddr),
                    key(uaddr2),
                    val as usize,
                    timeout as u32 as usize,
                );
                let n = woken.len() + moved;
                self.mark_woken(&woken);
                Ok(n as u64)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    fn futex_word(&mut self, pid: Pid, uaddr: u64) -> Result<u32, Errno> {
        let mut b = [0u8; 4];
        self.user_read(pid, uaddr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// `FUTEX_WAIT` (relative timeout, `clock` None) and
    /// `FUTEX_WAIT_BITSET` (absolute, on `clock`).
    fn futex_wait(
        &mut self,
        pid: Pid,
        uaddr: u64,
        val: u32,
        timeout: u64,
        bitset: u32,
        clock: Option<u32>,
    ) -> R {
        aligned(uaddr)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let tid = p.tid;
        if core::mem::take(&mut p.futex_woken) {
            p.deadline = None;
            return Ok(0);
        }
        let waiting = self.futexes.is_waiting(tid);
        if waiting {
            let past = p
                .deadline
                .is_some_and(|d| Instant::now().ticks() >= d.ticks());
            if past {
                p.deadline = None;
                self.futexes.cancel(tid);
                return Err(Errno::ETIMEDOUT);
            }
        }
        match self.futex_word(pid, uaddr) {
            Ok(v) if v == val => {}
            other => {
                self.futexes.cancel(tid);
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.deadline = None;
                }
                return other.and(Err(Errno::EAGAIN));
            }
        }
        let deadline = if waiting {
            None
        } else {
            let deadline = match timeout {
                0 => None,
                ts => {
                    let nanos = self.user_timespec(pid, ts)?;
                    Some(self.wait_until(nanos, clock)?.ok_or(Errno::ETIMEDOUT)?)
                }
            };
            self.futexes.wait((pid, uaddr), tid, bitset);
            deadline
        };
        Err(self.wait(pid, deadline))
    }

    /// `FUTEX_WAKE`, `FUTEX_WAKE_BITSET`: wakes up to `n` waiters.
    fn futex_wake(&mut self, pid: Pid, uaddr: u64, n: u32, bitset: u32) -> R {
        aligned(uaddr)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(self.futex_wake_addr(pid, uaddr, n as usize, bitset) as u64)
    }

    /// Wakes up to `n` waiters of `uaddr` in `pid`; how many.
    pub fn futex_wake_addr(&mut self, pid: Pid, uaddr: u64, n: usize, bitset: u32) -> usize {
        let woken = self.futexes.wake((pid, uaddr), n, bitset);
        self.mark_woken(&woken);
        woken.len()
    }

    /// The woken threads' calls answer 0 when they run again, before the
    /// server next sleeps.
    fn mark_woken(&mut self, tids: &[Pid]) {
        for &tid in tids {
            let tgid = self.tgid_of(tid);
            match self.threads.get_mut(&tid).and_then(|t| t.parked.as_mut()) {
                Some(s) => s.futex_woken = true,
                None => {
                    if let Some(p) = self.procs.get_mut(&tgid).filter(|p| p.tid == tid) {
                        p.futex_woken = true;
                    }
                }
            }
            self.changed = true;
        }
    }

    /// A parked call of `pid`'s thread in force ended another way (a
    /// signal): it waits on no futex any more.
    pub fn futex_cancel(&mut self, pid: Pid) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.futex_woken = false;
            let tid = p.tid;
            self.futexes.cancel(tid);
        }
    }
}

/// A futex word is a 4-byte aligned `u32`.
fn aligned(uaddr: u64) -> Result<(), Errno> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
