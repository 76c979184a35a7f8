//! Event loops: `eventfd`, `timerfd` and `epoll` over the server's open
//! file descriptions. The counters, expiry arithmetic and interest-list
//! decisions are `posix::events`; here they meet descriptors, user memory,
//! the clock and parking. A timerfd's expiry wakes the server through
//! `arm_timer` ([`Server::timerfd_next`]), and parked calls then look again.

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use kaal_rt::time::Instant;
use linux_raw_sys::general as g;
use posix::abi;
use posix::errno::Errno;
use posix::events::{self as ev, EventFd, InterestList, TimerFd};
use posix::fd::fd_number;

use crate::files::{open_ref, Object, Open, OpenRef};
use crate::process::Pid;
use crate::syscall::EPOCH_NS;
use crate::Server;

type R = Result<u64, Errno>;

pub type EventRef = Rc<RefCell<EventFd>>;
pub type TimerRef = Rc<RefCell<TimerFd>>;
/// An epoll's interests hold their descriptions weakly: closing the last
/// descriptor of one removes it, as on Linux.
pub type Interests = InterestList<Weak<RefCell<Open>>>;
pub type EpollRef = Rc<RefCell<Interests>>;

/// Epolls inside epolls: deeper nesting is `ELOOP` (Linux's
/// `EP_MAX_NESTS`), and readiness looks no deeper.
const MAX_NESTS: u32 = 4;
/// Bytes of one `struct epoll_event` (packed on x86_64).
const EVENT_BYTES: usize = 12;
/// Most events one wait returns (the answer is built in the server's heap).
const MAX_EVENTS: usize = 1024;
/// Interests in all epolls together (Linux's `max_user_watches`): each
/// takes the server's heap.
const MAX_WATCHES: usize = 8192;

/// The identity of an open file description.
fn key_of(f: &OpenRef) -> usize {
    Rc::as_ptr(f) as usize
}

/// The epoll of an open description, if it is one.
fn epoll_of(f: &OpenRef) -> Option<EpollRef> {
    match &f.try_borrow().ok()?.object {
        Object::Epoll(e) => Some(e.clone()),
        _ => None,
    }
}

/// How many epolls deep `from` nests (1: it watches no epoll), or `None`
/// when `to` is `from` or inside it, or the nesting goes past
/// [`MAX_NESTS`]: both checks of `EPOLL_CTL_ADD` in one walk.
fn depth_without(from: &EpollRef, to: &EpollRef, depth: u32) -> Option<u32> {
    if Rc::ptr_eq(from, to) || depth > MAX_NESTS {
        return None;
    }
    let list = from.try_borrow().ok()?;
    let mut deepest = depth;
    for e in list.entries() {
        if let Some(inner) = e.target.upgrade().and_then(|o| epoll_of(&o)) {
            deepest = deepest.max(depth_without(&inner, to, depth + 1)?);
        }
    }
    Some(deepest)
}

/// Every epoll made: their interests together are bounded.
#[derive(Default)]
pub struct Epolls {
    list: Vec<Weak<RefCell<Interests>>>,
    /// At least the interests in all epolls: an `EPOLL_CTL_ADD` adds one,
    /// and they are counted only when it reaches [`MAX_WATCHES`].
    bound: usize,
}

impl Server {
    /// The readiness and change count of an object (poll bits, which
    /// epoll shares); `depth` bounds nested epolls.
    pub(crate) fn object_state(&self, object: &Object, depth: u32) -> (u32, ev::Changes) {
        const ALWAYS: u32 = g::POLLIN | g::POLLOUT | g::POLLRDNORM | g::POLLWRNORM;
        match object {
            Object::Tty => (self.console.tty.poll(), (0, 0)),
            Object::PipeRead(p) => {
                let p = p.borrow();
                (p.poll_reader(), (p.reader_changes(), p.reader_changes()))
            }
            Object::PipeWrite(p) => {
                let p = p.borrow();
                (p.poll_writer(), (p.writer_changes(), p.writer_changes()))
            }
            Object::EventFd(e) => (e.borrow().poll(), e.borrow().changes()),
            Object::TimerFd(t, _) => {
                let mut t = t.borrow_mut();
                t.update(self.uptime_ns());
                (t.poll(), t.changes())
            }
            Object::Epoll(e) => {
                let ready = depth < MAX_NESTS
                    && e.try_borrow()
                        .is_ok_and(|l| l.any_ready(|w| self.weak_state(w, depth + 1)));
                (if ready { g::POLLIN | g::POLLRDNORM } else { 0 }, (0, 0))
            }
            Object::Socket(s) => (u32::from(self.inet_poll(s)), self.inet_changes(s)),
            Object::Unix(u) => u.state(),
            _ => (ALWAYS, (0, 0)),
        }
    }

    fn weak_state(&self, w: &Weak<RefCell<Open>>, depth: u32) -> Option<(u32, ev::Changes)> {
        let o = w.upgrade()?;
        // Gone is `None`; a description in use elsewhere is not ready.
        let state = match o.try_borrow() {
            Ok(open) => self.object_state(&open.object, depth),
            Err(_) => (0, (0, 0)),
        };
        Some(state)
    }

    /// The earliest expiry of an armed timerfd, for the server's timer;
    /// timerfds no descriptor holds any more are forgotten.
    pub(crate) fn timerfd_next(&mut self) -> Option<Instant> {
        let now = self.uptime_ns();
        self.timerfds.retain(|w| w.strong_count() > 0);
        let next = self
            .timerfds
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|t| {
                let mut t = t.try_borrow_mut().ok()?;
                t.update(now);
                t.next()
            })
            .min()?;
        // One tick more: the conversion to ticks rounds down.
        let ticks = self.clock.ticks(Duration::from_nanos(next));
        Some(Instant::from_ticks(ticks.saturating_add(1)))
    }

    /// Room for one more interest: when the bound says none, the
    /// interests are counted (those of closed descriptions forgotten).
    fn watch_room(&mut self) -> Result<(), Errno> {
        let epolls = &mut self.epolls;
        if epolls.bound < MAX_WATCHES {
            return Ok(());
        }
        epolls.list.retain(|w| w.strong_count() > 0);
        epolls.bound = epolls
            .list
            .iter()
            .filter_map(Weak::upgrade)
            .map(|e| match e.try_borrow_mut() {
                Ok(mut l) => {
                    l.prune(|w| w.strong_count() > 0);
                    l.len()
                }
                Err(_) => 0,
            })
            .sum();
        if epolls.bound >= MAX_WATCHES {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// Installs a new description; `cloexec` for the descriptor.
    fn new_fd(&mut self, pid: Pid, object: Object, flags: u32, cloexec: bool) -> R {
        let f = open_ref(object, flags);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let n = p.fds.insert(f.clone(), cloexec);
        match n {
            Ok(n) => Ok(u64::from(n)),
            Err(e) => {
                self.release(f);
                Err(e)
            }
        }
    }

    // ---- eventfd -----------------------------------------------------------

    /// `eventfd2(initval, flags)` (and `eventfd`, flags 0).
    pub(crate) fn eventfd2(&mut self, pid: Pid, initval: u64, flags: u64) -> R {
        let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
        if flags & !(ev::EFD_SEMAPHORE | ev::EFD_CLOEXEC | ev::EFD_NONBLOCK) != 0 {
            return Err(Errno::EINVAL);
        }
        let e = EventFd::new(initval as u32, flags & ev::EFD_SEMAPHORE != 0);
        let object = Object::EventFd(Rc::new(RefCell::new(e)));
        let oflags = g::O_RDWR | (flags & ev::EFD_NONBLOCK);
        self.new_fd(pid, object, oflags, flags & ev::EFD_CLOEXEC != 0)
    }

    /// `read` of an eventfd or a timerfd: 8 bytes, the counter or the
    /// expirations; waits while there is none (unless `O_NONBLOCK`).
    pub(crate) fn event_read(&mut self, pid: Pid, f: &OpenRef, out: &mut [u8]) -> R {
        let open = f.borrow();
        let nonblock = open.flags & g::O_NONBLOCK != 0;
        let r = match &open.object {
            Object::EventFd(e) => {
                if out.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                e.borrow_mut().read()
            }
            Object::TimerFd(t, _) => {
                if out.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                t.borrow_mut().read(self.uptime_ns())
            }
            _ => Err(Errno::EINVAL),
        };
        drop(open);
        match r {
            Ok(v) => {
                if let Some(dst) = out.get_mut(..8) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
                // Writers parked on a full eventfd may go on.
                self.changed = true;
                Ok(8)
            }
            Err(Errno::EAGAIN) if !nonblock => Err(self.wait(pid, None)),
            Err(e) => Err(e),
        }
    }

    /// `write` of an eventfd: adds an 8-byte value; waits while it would
    /// overflow (unless `O_NONBLOCK`). Timerfds and epolls are `EINVAL`.
    pub(crate) fn event_write(&mut self, pid: Pid, f: &OpenRef, data: &[u8]) -> R {
        let open = f.borrow();
        let nonblock = open.flags & g::O_NONBLOCK != 0;
        let Object::EventFd(e) = &open.object else {
            return Err(Errno::EINVAL);
        };
        let v = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(Errno::EINVAL)?;
        let r = e.borrow_mut().write(v);
        drop(open);
        match r {
            Ok(()) => {
                self.changed = true;
                Ok(8)
            }
            Err(Errno::EAGAIN) if !nonblock => Err(self.wait(pid, None)),
            Err(e) => Err(e),
        }
    }

    // ---- timerfd -----------------------------------------------------------

    /// `timerfd_create(clockid, flags)`.
    pub(crate) fn timerfd_create(&mut self, pid: Pid, clock: u64, flags: u64) -> R {
        match clock as u32 {
            g::CLOCK_REALTIME | g::CLOCK_MONOTONIC | g::CLOCK_BOOTTIME => {}
            _ => return Err(Errno::EINVAL),
        }
        let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
        if flags & !(ev::TFD_CLOEXEC | ev::TFD_NONBLOCK) != 0 {
            return Err(Errno::EINVAL);
        }
        if self.timer.is_none() {
            // Without a timer nothing would wake a reader.
            return Err(Errno::ENODEV);
        }
        let t: TimerRef = Rc::new(RefCell::new(TimerFd::new()));
        // Closed timerfds leave the list here too, so it stays as long as
        // the timerfds open.
        self.timerfds.retain(|w| w.strong_count() > 0);
        self.timerfds.push(Rc::downgrade(&t));
        let realtime = clock as u32 == g::CLOCK_REALTIME;
        let object = Object::TimerFd(t, realtime);
        let oflags = g::O_RDWR | (flags & ev::TFD_NONBLOCK);
        self.new_fd(pid, object, oflags, flags & ev::TFD_CLOEXEC != 0)
    }

    fn timerfd(&self, pid: Pid, fd: u64) -> Result<(TimerRef, bool), Errno> {
        let f = self.file(pid, fd)?;
        let open = f.borrow();
        match &open.object {
            Object::TimerFd(t, realtime) => Ok((t.clone(), *realtime)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `timerfd_settime(fd, flags, new, old)`.
    pub(crate) fn timerfd_settime(
        &mut self,
        pid: Pid,
        fd: u64,
        flags: u64,
        new: u64,
        old: u64,
    ) -> R {
        let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
        if flags & !(ev::TFD_TIMER_ABSTIME | ev::TFD_TIMER_CANCEL_ON_SET) != 0 {
            return Err(Errno::EINVAL);
        }
        let (t, realtime) = self.timerfd(pid, fd)?;
        let mut iv = [0u8; 16];
        let mut val = [0u8; 16];
        self.user_read(pid, new, &mut iv)?;
        self.user_read(pid, new.checked_add(16).ok_or(Errno::EFAULT)?, &mut val)?;
        let interval = abi::read_timespec(&iv).ok_or(Errno::EINVAL)?;
        let mut value = abi::read_timespec(&val).ok_or(Errno::EINVAL)?;
        let absolute = flags & ev::TFD_TIMER_ABSTIME != 0;
        if absolute && realtime && value != 0 {
            value = value.saturating_sub(EPOCH_NS).max(1);
        }
        let now = self.uptime_ns();
        let (left, was) = t.borrow_mut().set(now, value, interval, absolute);
        if old != 0 {
            self.user_write(pid, old, &itimerspec(left, was))?;
        }
        // Waiters look again (and the server's timer is asked anew).
        self.changed = true;
        Ok(0)
    }

    /// `timerfd_gettime(fd, cur)`.
    pub(crate) fn timerfd_gettime(&mut self, pid: Pid, fd: u64, cur: u64) -> R {
        let (t, _) = self.timerfd(pid, fd)?;
        let now = self.uptime_ns();
        let (left, interval) = {
            let mut t = t.borrow_mut();
            t.update(now);
            t.get(now)
        };
        self.user_write(pid, cur, &itimerspec(left, interval))?;
        Ok(0)
    }

    // ---- epoll -------------------------------------------------------------

    /// `epoll_create1(flags)`; `epoll_create(size)` is `size` > 0 and no
    /// flags.
    pub(crate) fn epoll_create1(&mut self, pid: Pid, flags: u64) -> R {
        if flags & !u64::from(g::EPOLL_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let ep: EpollRef = Rc::new(RefCell::new(InterestList::new()));
        self.epolls.list.retain(|w| w.strong_count() > 0);
        self.epolls.list.push(Rc::downgrade(&ep));
        self.new_fd(pid, Object::Epoll(ep), g::O_RDWR, flags != 0)
    }

    pub(crate) fn epoll_create(&mut self, pid: Pid, size: u64) -> R {
        if size as i32 <= 0 {
            return Err(Errno::EINVAL);
        }
        self.epoll_create1(pid, 0)
    }

    /// `epoll_ctl(epfd, op, fd, event)`.
    pub(crate) fn epoll_ctl(&mut self, pid: Pid, epfd: u64, op: u64, fd: u64, event: u64) -> R {
        let ef = self.file(pid, epfd)?;
        let tf = self.file(pid, fd)?;
        let fdn = i32::try_from(fd_number(fd)?).map_err(|_| Errno::EBADF)?;
        let (events, data) = if op as u32 == g::EPOLL_CTL_DEL {
            (0, 0)
        } else {
            let mut b = [0u8; EVENT_BYTES];
            self.user_read(pid, event, &mut b)?;
            let (e, d) = b.split_at(4);
            let word = |w: &[u8]| w.try_into().map(u32::from_le_bytes).unwrap_or(0);
            let data = d.try_into().map(u64::from_le_bytes).unwrap_or(0);
            (word(e), data)
        };
        // Regular files and directories (and /dev/null, /dev/zero) have no
        // poll: Linux refuses them.
        if matches!(
            tf.borrow().object,
            Object::Vfs { .. } | Object::Null | Object::Zero
        ) {
            return Err(Errno::EPERM);
        }
        let ep = epoll_of(&ef).ok_or(Errno::EINVAL)?;
        if Rc::ptr_eq(&ef, &tf) {
            return Err(Errno::EINVAL);
        }
        let key = key_of(&tf);
        match op as u32 {
            g::EPOLL_CTL_ADD => {
                if let Some(inner) = epoll_of(&tf) {
                    // Watching an epoll that watches this one (at any
                    // depth) would loop; too deep a nesting is refused too.
                    if depth_without(&inner, &ep, 1).is_none_or(|d| d >= MAX_NESTS) {
                        return Err(Errno::ELOOP);
                    }
                }
                self.watch_room()?;
                let mut list = ep.try_borrow_mut().map_err(|_| Errno::EINVAL)?;
                // Interests of closed descriptions go first: they take no
                // room, and a new description may have a closed one's key.
                list.prune(|w| w.strong_count() > 0);
                list.add(fdn, key, Rc::downgrade(&tf), events, data)?;
                drop(list);
                self.epolls.bound += 1;
            }
            g::EPOLL_CTL_MOD => ep
                .try_borrow_mut()
                .map_err(|_| Errno::EINVAL)?
                .modify(fdn, key, events, data)?,
            g::EPOLL_CTL_DEL => ep
                .try_borrow_mut()
                .map_err(|_| Errno::EINVAL)?
                .delete(fdn, key)?,
            _ => return Err(Errno::EINVAL),
        }
        // A parked wait of this epoll looks again.
        self.changed = true;
        Ok(0)
    }

    /// `epoll_wait(epfd, events, maxevents, timeout_ms)`.
    pub(crate) fn epoll_wait(&mut self, pid: Pid, epfd: u64, at: u64, max: u64, ms: u64) -> R {
        let timeout = u64::try_from(ms as i32).ok().map(Duration::from_millis);
        self.epoll_events(pid, epfd, at, max, timeout)
    }

    /// `epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask, size)`:
    /// the mask is in force while it waits, as `ppoll`'s.
    pub(crate) fn epoll_pwait(&mut self, pid: Pid, a: [u64; 6]) -> R {
        let timeout = u64::try_from(a[3] as i32).ok().map(Duration::from_millis);
        self.wait_mask(pid, a[4], a[5])?;
        let r = self.epoll_events(pid, a[0], a[1], a[2], timeout);
        self.end_mask(pid, &r);
        r
    }

    /// `epoll_pwait2`: `epoll_pwait` with a `struct timespec` timeout.
    pub(crate) fn epoll_pwait2(&mut self, pid: Pid, a: [u64; 6]) -> R {
        let timeout = self.timespec_timeout(pid, a[3])?;
        self.wait_mask(pid, a[4], a[5])?;
        let r = self.epoll_events(pid, a[0], a[1], a[2], timeout);
        self.end_mask(pid, &r);
        r
    }

    fn epoll_events(
        &mut self,
        pid: Pid,
        epfd: u64,
        at: u64,
        max: u64,
        timeout: Option<Duration>,
    ) -> R {
        let max = max as i32;
        if max <= 0 || max as usize > i32::MAX as usize / EVENT_BYTES {
            return Err(Errno::EINVAL);
        }
        let max = (max as usize).min(MAX_EVENTS);
        let ep = epoll_of(&self.file(pid, epfd)?).ok_or(Errno::EINVAL)?;
        self.console.poll_input_only();
        let got = {
            let mut list = ep.try_borrow_mut().map_err(|_| Errno::EINVAL)?;
            list.wait(max, |w| self.weak_state(w, 1))
        };
        if got.is_empty() {
            self.none_ready(pid, timeout)?;
            self.end_wait(pid);
            return Ok(0);
        }
        self.end_wait(pid);
        let mut out = alloc::vec![0u8; got.len() * EVENT_BYTES];
        for (chunk, (bits, data)) in out.chunks_exact_mut(EVENT_BYTES).zip(got.iter()) {
            let (e, d) = chunk.split_at_mut(4);
            e.copy_from_slice(&bits.to_le_bytes());
            d.copy_from_slice(&data.to_le_bytes());
        }
        self.user_write(pid, at, &out)?;
        Ok(got.len() as u64)
    }
}

/// A `struct itimerspec`: the interval, then the value.
fn itimerspec(value: u64, interval: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    let (i, v) = b.split_at_mut(16);
    i.copy_from_slice(&abi::timespec(interval));
    v.copy_from_slice(&abi::timespec(value));
    b
}
