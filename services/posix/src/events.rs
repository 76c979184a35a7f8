//! Event objects of Linux's event loops, as pure logic: the `eventfd`
//! counter, `timerfd` expiry arithmetic and the epoll interest list with
//! its level-triggered, edge-triggered and one-shot decisions. The server
//! gives them the time (nanoseconds of the timer's clock) and each
//! object's readiness.

use alloc::vec::Vec;

use linux_raw_sys::general as g;

use crate::errno::Errno;

/// `eventfd2` flags: `EFD_SEMAPHORE`; `EFD_CLOEXEC` and `EFD_NONBLOCK` are
/// `O_CLOEXEC` and `O_NONBLOCK`.
pub const EFD_SEMAPHORE: u32 = 1;
pub const EFD_CLOEXEC: u32 = g::O_CLOEXEC;
pub const EFD_NONBLOCK: u32 = g::O_NONBLOCK;
/// How often an object changed for its readers and for its writers:
/// an edge-triggered interest reports again when the side it asks for
/// moved (Linux wakes epoll with the events a change concerns).
pub type Changes = (u64, u64);

/// Events that concern the read side and the write side.
const READ_SIDE: u32 = g::EPOLLIN | g::EPOLLRDNORM | g::EPOLLRDBAND | g::EPOLLPRI | g::EPOLLRDHUP;
const WRITE_SIDE: u32 = g::EPOLLOUT | g::EPOLLWRNORM | g::EPOLLWRBAND;

/// `timerfd_create` flags, likewise `O_CLOEXEC` and `O_NONBLOCK`.
pub const TFD_CLOEXEC: u32 = g::O_CLOEXEC;
pub const TFD_NONBLOCK: u32 = g::O_NONBLOCK;
/// `timerfd_settime` flags.
pub const TFD_TIMER_ABSTIME: u32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

/// The largest value an eventfd counter holds (`u64::MAX - 1`).
pub const EVENTFD_MAX: u64 = u64::MAX - 1;

/// An eventfd's counter.
#[derive(Debug, Clone, Default)]
pub struct EventFd {
    count: u64,
    semaphore: bool,
    /// Writes (they wake readers) and reads (they wake writers).
    writes: u64,
    reads: u64,
}

impl EventFd {
    pub fn new(initial: u32, semaphore: bool) -> EventFd {
        EventFd {
            count: u64::from(initial),
            semaphore,
            writes: 0,
            reads: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `read`: the counter (and it becomes 0), or 1 (and it goes down by
    /// one) in semaphore mode; `EAGAIN` while it is 0.
    pub fn read(&mut self) -> Result<u64, Errno> {
        if self.count == 0 {
            return Err(Errno::EAGAIN);
        }
        let v = if self.semaphore { 1 } else { self.count };
        self.count -= v;
        self.reads = self.reads.wrapping_add(1);
        Ok(v)
    }

    /// `write` of `v`: added to the counter; `EINVAL` for `u64::MAX`,
    /// `EAGAIN` while the sum would pass [`EVENTFD_MAX`].
    pub fn write(&mut self, v: u64) -> Result<(), Errno> {
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        if v > EVENTFD_MAX - self.count {
            return Err(Errno::EAGAIN);
        }
        self.count += v;
        self.writes = self.writes.wrapping_add(1);
        Ok(())
    }

    /// Poll bits: readable while the counter is above 0, writable while
    /// 1 more would fit.
    pub fn poll(&self) -> u32 {
        let mut bits = 0;
        if self.count > 0 {
            bits |= g::POLLIN | g::POLLRDNORM;
        }
        if self.count < EVENTFD_MAX {
            bits |= g::POLLOUT | g::POLLWRNORM;
        }
        bits
    }

    /// What moved for readers (writes) and for writers (reads), for
    /// edge-triggered interests.
    pub fn changes(&self) -> Changes {
        (self.writes, self.reads)
    }
}

/// A timerfd's state, in nanoseconds of monotonic time.
#[derive(Debug, Clone, Default)]
pub struct TimerFd {
    /// The next expiry, when armed.
    next: Option<u64>,
    /// 0: one-shot.
    interval: u64,
    /// Expirations not yet read.
    ticks: u64,
    /// Expiries seen: only they wake a timerfd's waiters.
    expiries: u64,
}

impl TimerFd {
    pub fn new() -> TimerFd {
        TimerFd::default()
    }

    /// Counts the expirations up to `now`.
    pub fn update(&mut self, now: u64) {
        let Some(at) = self.next else {
            return;
        };
        if now < at {
            return;
        }
        match (now - at).checked_div(self.interval) {
            None => {
                self.ticks = self.ticks.saturating_add(1);
                self.next = None;
            }
            Some(more) => {
                self.ticks = self.ticks.saturating_add(more).saturating_add(1);
                let step = more.saturating_add(1).saturating_mul(self.interval);
                self.next = Some(at.saturating_add(step));
            }
        }
        self.expiries = self.expiries.wrapping_add(1);
    }

    /// `timerfd_settime` at `now`: `value` is the first expiry, absolute
    /// (already in monotonic time) or relative to `now`; 0 disarms. The
    /// count of expirations not read starts over. Returns the old setting
    /// as [`TimerFd::get`] gives it.
    pub fn set(&mut self, now: u64, value: u64, interval: u64, absolute: bool) -> (u64, u64) {
        self.update(now);
        let old = self.get(now);
        self.ticks = 0;
        self.interval = interval;
        self.next = match value {
            0 => None,
            // An absolute time already past expires at the next look.
            v if absolute => Some(v),
            v => Some(now.saturating_add(v)),
        };
        old
    }

    /// `timerfd_gettime`: the time to the next expiry (0: disarmed) and
    /// the interval.
    pub fn get(&self, now: u64) -> (u64, u64) {
        // A one-shot expiry already past reads 0 as disarmed; an interval
        // timer's next is after `now` once updated.
        let left = self.next.map_or(0, |at| at.saturating_sub(now).max(1));
        (left, self.interval)
    }

    /// The next expiry after `update`, for the server's timer.
    pub fn next(&self) -> Option<u64> {
        self.next
    }

    /// `read` at `now`: the expirations since the last read; `EAGAIN`
    /// when there are none yet.
    pub fn read(&mut self, now: u64) -> Result<u64, Errno> {
        self.update(now);
        if self.ticks == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(core::mem::take(&mut self.ticks))
    }

    /// Poll bits at `now` (after `update`): readable once it expired.
    pub fn poll(&self) -> u32 {
        if self.ticks > 0 {
            g::POLLIN | g::POLLRDNORM
        } else {
            0
        }
    }

    pub fn changes(&self) -> Changes {
        (self.expiries, self.expiries)
    }
}

/// Event bits an interest may ask for (`EPOLLEXCLUSIVE` and `EPOLLWAKEUP`
/// are taken and have no effect here).
const ASKABLE: u32 = g::EPOLLIN
    | g::EPOLLPRI
    | g::EPOLLOUT
    | g::EPOLLERR
    | g::EPOLLHUP
    | g::EPOLLRDNORM
    | g::EPOLLRDBAND
    | g::EPOLLWRNORM
    | g::EPOLLWRBAND
    | g::EPOLLMSG
    | g::EPOLLRDHUP;

/// One interest: what it asks for, its user data, and what it last
/// reported (edge-triggered) or that it fired (one-shot).
#[derive(Debug, Clone)]
pub struct Interest {
    pub events: u32,
    pub data: u64,
    /// The object's changes (of the sides asked for) and bits at the
    /// last report.
    seen: Option<(Changes, u32)>,
    disabled: bool,
}

impl Interest {
    pub fn new(events: u32, data: u64) -> Interest {
        Interest {
            events,
            data,
            seen: None,
            disabled: false,
        }
    }

    /// The bits a wait would report for an object whose readiness is
    /// `ready` after `changes` changes, without taking them. Errors and
    /// hang-ups are reported whether asked for or not.
    pub fn check(&self, ready: u32, changes: Changes) -> u32 {
        if self.disabled {
            return 0;
        }
        let bits = ready & ((self.events & ASKABLE) | g::EPOLLERR | g::EPOLLHUP);
        if bits == 0 {
            return 0;
        }
        if self.events & g::EPOLLET != 0 && self.seen == Some((self.side(changes), bits)) {
            return 0;
        }
        bits
    }

    /// The changes of the sides this interest asks for.
    fn side(&self, (r, w): Changes) -> Changes {
        let r = if self.events & READ_SIDE != 0 { r } else { 0 };
        let w = if self.events & WRITE_SIDE != 0 { w } else { 0 };
        (r, w)
    }

    /// A wait takes the report: an edge-triggered interest stays quiet
    /// until the object changes, a one-shot one until `EPOLL_CTL_MOD`.
    pub fn report(&mut self, ready: u32, changes: Changes) -> u32 {
        let bits = self.check(ready, changes);
        if bits != 0 {
            self.seen = Some((self.side(changes), bits));
            if self.events & g::EPOLLONESHOT != 0 {
                self.disabled = true;
            }
        }
        bits
    }
}

/// One entry of the interest list: the descriptor number it was added
/// with, the description's identity (`key`) and what the server keeps of
/// it (`target`).
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub fd: i32,
    pub key: usize,
    pub target: T,
    pub interest: Interest,
}

/// The most interests one epoll holds (the server's memory bound; Linux's
/// is `max_user_watches`).
pub const MAX_INTERESTS: usize = 4096;

/// An epoll instance's interest list.
#[derive(Debug, Clone)]
pub struct InterestList<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for InterestList<T> {
    fn default() -> Self {
        InterestList {
            entries: Vec::new(),
        }
    }
}

impl<T> InterestList<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry<T>> {
        self.entries.iter()
    }

    fn find(&self, fd: i32, key: usize) -> Option<usize> {
        self.entries.iter().position(|e| e.fd == fd && e.key == key)
    }

    /// The events word `epoll_ctl` was given is valid for `op`.
    fn check_events(events: u32, modify: bool) -> Result<(), Errno> {
        // EPOLLEXCLUSIVE may only come with ADD, and not with ONESHOT.
        if events & g::EPOLLEXCLUSIVE != 0 && (modify || events & g::EPOLLONESHOT != 0) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// `EPOLL_CTL_ADD`: `EEXIST` when descriptor `fd` of that description
    /// is in already, `ENOSPC` beyond [`MAX_INTERESTS`].
    pub fn add(
        &mut self,
        fd: i32,
        key: usize,
        target: T,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        Self::check_events(events, false)?;
        if self.find(fd, key).is_some() {
            return Err(Errno::EEXIST);
        }
        if self.entries.len() >= MAX_INTERESTS {
            return Err(Errno::ENOSPC);
        }
        self.entries.push(Entry {
            fd,
            key,
            target,
            interest: Interest::new(events, data),
        });
        Ok(())
    }

    /// `EPOLL_CTL_MOD`: new events and data; a disabled one-shot interest
    /// is armed again. An interest added with `EPOLLEXCLUSIVE` cannot be
    /// modified.
    pub fn modify(&mut self, fd: i32, key: usize, events: u32, data: u64) -> Result<(), Errno> {
        Self::check_events(events, true)?;
        let i = self.find(fd, key).ok_or(Errno::ENOENT)?;
        let e = self.entries.get_mut(i).ok_or(Errno::ENOENT)?;
        if e.interest.events & g::EPOLLEXCLUSIVE != 0 {
            return Err(Errno::EINVAL);
        }
        e.interest = Interest::new(events, data);
        Ok(())
    }

    /// `EPOLL_CTL_DEL`.
    pub fn delete(&mut self, fd: i32, key: usize) -> Result<(), Errno> {
        let i = self.find(fd, key).ok_or(Errno::ENOENT)?;
        self.entries.remove(i);
        Ok(())
    }

    /// Forgets the entries whose description is gone (`alive` false).
    pub fn prune(&mut self, mut alive: impl FnMut(&T) -> bool) {
        self.entries.retain(|e| alive(&e.target));
    }

    /// True if a wait would report something now; `state` gives an
    /// object's readiness and change count (`None`: gone).
    pub fn any_ready(&self, mut state: impl FnMut(&T) -> Option<(u32, Changes)>) -> bool {
        self.entries.iter().any(|e| {
            state(&e.target).is_some_and(|(ready, changes)| e.interest.check(ready, changes) != 0)
        })
    }

    /// A wait: at most `max` reports (bits, data), taken; entries whose
    /// description is gone are dropped, and those reported go to the end
    /// so that a full answer does not starve the others.
    pub fn wait(
        &mut self,
        max: usize,
        mut state: impl FnMut(&T) -> Option<(u32, Changes)>,
    ) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(self.entries.len());
        let mut reported = Vec::new();
        for mut e in self.entries.drain(..) {
            let Some((ready, changes)) = state(&e.target) else {
                continue;
            };
            if out.len() < max {
                let bits = e.interest.report(ready, changes);
                if bits != 0 {
                    out.push((bits, e.interest.data));
                    reported.push(e);
                    continue;
                }
            }
            kept.push(e);
        }
        kept.append(&mut reported);
        self.entries = kept;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IN: u32 = g::EPOLLIN;

    #[test]
    fn eventfd_counter_and_semaphore() {
        let mut e = EventFd::new(0, false);
        assert_eq!(e.read(), Err(Errno::EAGAIN));
        e.write(3).unwrap();
        e.write(4).unwrap();
        assert_eq!(e.read(), Ok(7));
        assert_eq!(e.read(), Err(Errno::EAGAIN));
        let mut s = EventFd::new(2, true);
        assert_eq!(s.read(), Ok(1));
        assert_eq!(s.read(), Ok(1));
        assert_eq!(s.read(), Err(Errno::EAGAIN));
    }

    #[test]
    fn eventfd_overflow_blocks_and_max_is_invalid() {
        let mut e = EventFd::new(0, false);
        assert_eq!(e.write(u64::MAX), Err(Errno::EINVAL));
        e.write(EVENTFD_MAX).unwrap();
        assert_eq!(e.poll() & g::POLLOUT, 0);
        assert_eq!(e.write(1), Err(Errno::EAGAIN));
        e.write(0).unwrap();
        assert_eq!(e.read(), Ok(EVENTFD_MAX));
        assert_ne!(e.poll() & g::POLLOUT, 0);
    }

    proptest! {
        #[test]
        fn eventfd_sum_is_kept(writes in proptest::collection::vec(0u64..1 << 40, 0..20)) {
            let mut e = EventFd::new(0, false);
            for &w in &writes {
                e.write(w).unwrap();
            }
            let sum: u64 = writes.iter().sum();
            prop_assert_eq!(e.read().unwrap_or(0), sum);
        }

        #[test]
        fn timer_ticks_count_every_period(
            start in 1u64..1_000_000, interval in 1u64..1_000_000, looks in proptest::collection::vec(0u64..5_000_000, 1..10)
        ) {
            let mut t = TimerFd::new();
            t.set(0, start, interval, false);
            let mut total = 0;
            let mut now = 0;
            for l in looks {
                now += l;
                total += t.read(now).unwrap_or(0);
            }
            let want = if now < start { 0 } else { 1 + (now - start) / interval };
            prop_assert_eq!(total, want);
            prop_assert!(t.next().is_some_and(|n| n > now));
        }
    }

    #[test]
    fn timer_one_shot_and_gettime() {
        let mut t = TimerFd::new();
        assert_eq!(t.get(0), (0, 0));
        assert_eq!(t.set(100, 50, 0, false), (0, 0));
        assert_eq!(t.get(120), (30, 0));
        assert_eq!(t.read(149), Err(Errno::EAGAIN));
        assert_eq!(t.read(150), Ok(1));
        assert_eq!(t.read(1000), Err(Errno::EAGAIN));
        assert_eq!(t.get(1000), (0, 0));
        // Absolute, already past: expires at once.
        t.set(1000, 10, 0, true);
        assert_eq!(t.read(1000), Ok(1));
        // Setting again forgets what was not read, and returns the old.
        t.set(1000, 5, 7, false);
        assert_eq!(t.set(1010, 0, 0, false), (2, 7));
        assert_eq!(t.read(2000), Err(Errno::EAGAIN));
    }

    #[test]
    fn level_edge_and_oneshot() {
        let mut lt: InterestList<()> = InterestList::new();
        lt.add(3, 1, (), IN, 7).unwrap();
        assert_eq!(lt.wait(8, |_| Some((IN, (1, 1)))), vec![(IN, 7)]);
        assert_eq!(lt.wait(8, |_| Some((IN, (1, 1)))), vec![(IN, 7)]);

        let mut et: InterestList<()> = InterestList::new();
        et.add(3, 1, (), IN | g::EPOLLET, 8).unwrap();
        assert_eq!(et.wait(8, |_| Some((IN, (1, 1)))).len(), 1);
        assert!(et.wait(8, |_| Some((IN, (1, 1)))).is_empty());
        assert!(!et.any_ready(|_| Some((IN, (1, 1)))));
        // A change of the write side alone is no new input.
        assert!(et.wait(8, |_| Some((IN, (1, 5)))).is_empty());
        assert_eq!(et.wait(8, |_| Some((IN, (2, 2)))).len(), 1);

        let mut os: InterestList<()> = InterestList::new();
        os.add(3, 1, (), IN | g::EPOLLONESHOT, 9).unwrap();
        assert_eq!(os.wait(8, |_| Some((IN, (1, 1)))).len(), 1);
        assert!(os.wait(8, |_| Some((IN, (2, 2)))).is_empty());
        os.modify(3, 1, IN | g::EPOLLONESHOT, 10).unwrap();
        assert_eq!(os.wait(8, |_| Some((IN, (2, 2)))), vec![(IN, 10)]);
    }

    #[test]
    fn ctl_errors_and_hangups() {
        let mut l: InterestList<()> = InterestList::new();
        l.add(3, 1, (), g::EPOLLOUT, 0).unwrap();
        assert_eq!(l.add(3, 1, (), IN, 0), Err(Errno::EEXIST));
        // Another descriptor of the same description is another interest.
        l.add(4, 1, (), IN, 0).unwrap();
        assert_eq!(l.modify(5, 1, IN, 0), Err(Errno::ENOENT));
        assert_eq!(l.delete(5, 1), Err(Errno::ENOENT));
        assert_eq!(
            l.add(6, 2, (), IN | g::EPOLLEXCLUSIVE | g::EPOLLONESHOT, 0),
            Err(Errno::EINVAL)
        );
        // Hang-ups are reported unasked.
        assert_eq!(
            l.wait(1, |_| Some((g::EPOLLHUP, (0, 0)))),
            vec![(g::EPOLLHUP, 0)]
        );
        l.delete(3, 1).unwrap();
        assert_eq!(l.len(), 1);
        // A gone description is dropped.
        assert!(l.wait(8, |_| None).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn a_full_answer_rotates() {
        let mut l: InterestList<()> = InterestList::new();
        for fd in 0..3 {
            l.add(fd, fd as usize, (), IN, fd as u64).unwrap();
        }
        assert_eq!(l.wait(2, |_| Some((IN, (0, 0)))), vec![(IN, 0), (IN, 1)]);
        assert_eq!(l.wait(2, |_| Some((IN, (0, 0)))), vec![(IN, 2), (IN, 0)]);
    }
}
