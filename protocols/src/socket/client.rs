//! The client side of the sockets protocol, without the channels: the
//! socket table, the readiness seen per socket, tag matching and the
//! handling of service restarts, over a [`Transport`] that moves requests,
//! completions and bytes. `kaal_client::socket` puts it on the rings and
//! region of a component; the tests here put it on a scripted service.
//!
//! One request is in flight at a time: a call sends its request, then
//! takes completions (recording every `EVENT` on the way) until its own
//! `REPLY` comes, so the request ring never fills and the call's bytes
//! always lie at offset 0 of the data region. Replies with another tag
//! (answers of a service that has restarted since) are dropped.
//!
//! A `RESTART` makes every socket of the client dead at once: a handle
//! carries the epoch (number of restarts seen) it was opened in, and a
//! call on a handle of an earlier epoch fails with `ENETRESET`, as does
//! the call that was waiting when the `RESTART` came. The next call sends
//! `RESET` first, which closes whatever the old service's requests, still
//! in the ring when the new one started, may have opened.

use super::{completion, events, kind, op, Completion, Endpoint, Errno, Request, Stats};
use super::{CLOSE_RESET, SHUT_WR};

/// Sockets the client tracks; an id the service gives beyond it is closed
/// again and the call fails with `EMFILE`.
pub const MAX_SOCKETS: usize = 64;

/// Completions taken while waiting for one reply before the service is
/// judged broken: at most one event per socket may come between.
const MAX_OTHER: usize = 4 * MAX_SOCKETS + 16;

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketError {
    /// The service's answer; `ENETRESET` when the service restarted and
    /// the socket is gone.
    Errno(Errno),
    /// A ring shared with the service is corrupt, or an answer broke the
    /// protocol (an unknown status, more bytes than asked).
    Broken,
    /// The manifest binds no such channel (the local name).
    NotGranted(&'static str),
}

impl SocketError {
    /// The POSIX name of the error, or what went wrong.
    pub fn name(self) -> &'static str {
        match self {
            SocketError::Errno(e) => e.name(),
            SocketError::Broken => "a broken socket service or ring",
            SocketError::NotGranted(_) => "a socket channel not granted",
        }
    }

    /// The errno, if the service said one.
    pub fn errno(self) -> Option<Errno> {
        match self {
            SocketError::Errno(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Errno> for SocketError {
    fn from(e: Errno) -> Self {
        SocketError::Errno(e)
    }
}

impl PartialEq<Errno> for SocketError {
    fn eq(&self, e: &Errno) -> bool {
        *self == SocketError::Errno(*e)
    }
}

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SocketError::NotGranted(local) => write!(f, "{} (`{local}`)", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

/// A result of a socket call.
pub type Result<T> = core::result::Result<T, SocketError>;

/// What moves requests, completions and bytes between the client and the
/// service. Its errors are [`SocketError::Broken`]: a corrupt ring or
/// bytes out of the region.
pub trait Transport {
    /// Puts `r` on the request ring and signals the service.
    fn send(&mut self, r: &Request) -> Result<()>;
    /// The next completion, if one is there; does not wait.
    fn try_recv(&mut self) -> Result<Option<Completion>>;
    /// Waits for the service's next signal: sleeps (by the ring's
    /// protocol) when `until` is `None` (the client asked the service for
    /// an alarm when it has a deadline), else gives up the processor once
    /// and returns (a service without alarms).
    fn wait(&mut self, until: Option<u64>) -> Result<()>;
    /// The clock deadlines are read against (TSC ticks on seL4).
    fn now(&self) -> u64;
    /// The data region's size.
    fn region_len(&self) -> u64;
    fn write(&mut self, offset: u64, src: &[u8]) -> Result<()>;
    fn read(&mut self, offset: u64, dst: &mut [u8]) -> Result<()>;
}

/// A socket of this client: its id in the service's table for it, and the
/// epoch it was opened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Socket {
    id: u32,
    epoch: u32,
}

impl Socket {
    /// Its id in the service's table.
    pub fn id(self) -> u32 {
        self.id
    }
}

/// One entry of [`Sockets::poll`]: the events asked, and those ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollFd {
    pub socket: Socket,
    /// [`events`] bits; `ERROR` is always reported. `HANGUP` only when
    /// asked: the peer's FIN makes a socket `READABLE` too (`recv` says 0),
    /// and a bit reported whether asked or not would make a loop that
    /// waits for something else spin.
    pub events: u32,
    pub revents: u32,
}

impl PollFd {
    pub fn new(socket: Socket, events: u32) -> PollFd {
        PollFd {
            socket,
            events,
            revents: 0,
        }
    }
}

/// What the client knows of one id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    open: bool,
    /// The readiness of the last reply or event for it.
    events: u32,
    /// The pending error of the last event, until taken.
    error: Option<Errno>,
    /// The events the service watches for it, and the WATCH's tag.
    watched: u32,
    watch_tag: u64,
    /// Reports that found a side ready (read, write), for an
    /// edge-triggered waiter (epoll's `EPOLLET`): Linux wakes one at every
    /// arrival of data or room, so a program may stop at a short read and
    /// wait for the next edge; here the service posts an event only when a
    /// bit rises, so a reply that still finds data (or room) counts too.
    changes: (u64, u64),
}

/// The readiness bits of each side, as `poll` reports them.
const READ_SIDE: u32 = events::READABLE | events::HANGUP | events::ERROR;
const WRITE_SIDE: u32 = events::WRITABLE | events::HANGUP | events::ERROR;

/// The sides a reply to `op` counts a change of: a receive or accept
/// only the read side, a send only the write side (else every read would
/// wake a writer's edge-triggered waiter too); a posted event both.
fn sides(op: u32) -> u32 {
    match op {
        op::RECV | op::RECV_FROM | op::ACCEPT => READ_SIDE,
        op::SEND | op::SEND_TO => WRITE_SIDE,
        _ => READ_SIDE | WRITE_SIDE,
    }
}

impl Slot {
    /// Takes a readiness report (a reply's or an event's), which counts a
    /// change of a side of `sides` it finds ready.
    fn report(&mut self, events: u32, sides: u32) {
        let counted = events & sides;
        if counted & READ_SIDE != 0 {
            self.changes.0 = self.changes.0.wrapping_add(1);
        }
        if counted & WRITE_SIDE != 0 {
            self.changes.1 = self.changes.1.wrapping_add(1);
        }
        self.events = events;
    }
}

/// The client's sockets over transport `T`.
#[derive(Debug)]
pub struct Sockets<T> {
    t: T,
    table: [Slot; MAX_SOCKETS],
    /// `RESTART`s seen.
    epoch: u32,
    /// A `RESTART` came: send `RESET` before the next request.
    reset_due: bool,
    tag: u64,
    /// Completions dropped: stale tags, unknown kinds or sockets.
    dropped: u64,
    /// Events taken (every call takes those that come before its reply).
    noted: u64,
    /// The service's `ALARM` asked, not yet come: its tag and deadline.
    alarm: Option<(u64, u64)>,
    /// The service refused `ALARM`: deadlines are waited for by looking
    /// again and again.
    no_alarms: bool,
}

impl<T: Transport> Sockets<T> {
    /// The client over `t`: sends `RESET` and waits for its answer, so
    /// that nothing an earlier life of this client opened stays open.
    pub fn new(t: T) -> Result<Sockets<T>> {
        let mut s = Sockets {
            t,
            table: [Slot::default(); MAX_SOCKETS],
            epoch: 0,
            reset_due: false,
            tag: 0,
            dropped: 0,
            noted: 0,
            alarm: None,
            no_alarms: false,
        };
        s.reset()?;
        Ok(s)
    }

    /// The transport, for tests that send what this library would not.
    pub fn transport(&mut self) -> &mut T {
        &mut self.t
    }

    /// `RESTART`s seen since this client started (the service's first one
    /// included, when it came after this client's first `RESET`).
    pub fn restarts(&self) -> u32 {
        self.epoch
    }

    /// Completions dropped as stale or unknown.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Readiness events taken so far, by calls or [`Sockets::poll`]: a
    /// client that waits for several things learns that one came while
    /// it was calling about another.
    pub fn events_noted(&self) -> u64 {
        self.noted
    }

    /// Sends `RESET` until one is answered. A `RESTART` on the way may
    /// mean the service that took it is gone, so another follows; the
    /// answer to either will do.
    fn reset(&mut self) -> Result<u64> {
        let first = self.tag + 1;
        self.submit(&Request {
            op: op::RESET,
            ..Request::default()
        })?;
        let mut other = 0;
        loop {
            let c = self.next(None)?.ok_or(SocketError::Broken)?;
            match c.kind {
                completion::REPLY if (first..=self.tag).contains(&c.tag) => {
                    self.reset_due = false;
                    return reply_result(&c);
                }
                completion::RESTART => {
                    other += 1;
                    if other > MAX_OTHER {
                        return Err(SocketError::Broken);
                    }
                    self.restarted();
                    self.submit(&Request {
                        op: op::RESET,
                        ..Request::default()
                    })?;
                }
                _ => {
                    other += 1;
                    if other > MAX_OTHER {
                        return Err(SocketError::Broken);
                    }
                }
            }
        }
    }

    fn restarted(&mut self) {
        self.table = [Slot::default(); MAX_SOCKETS];
        self.alarm = None;
        self.epoch = self.epoch.wrapping_add(1);
        self.reset_due = true;
    }

    /// Sends `r` with the next tag; its tag.
    fn submit(&mut self, r: &Request) -> Result<u64> {
        self.tag += 1;
        let r = Request {
            tag: self.tag,
            ..*r
        };
        self.t.send(&r)?;
        Ok(self.tag)
    }

    /// The next completion, waiting for one (up to `until`); events and
    /// replies are not looked at here.
    fn next(&mut self, until: Option<u64>) -> Result<Option<Completion>> {
        loop {
            if let Some(c) = self.t.try_recv()? {
                if self.alarm_news(&c) {
                    continue;
                }
                return Ok(Some(c));
            }
            if until.is_some_and(|u| self.t.now() >= u) {
                return Ok(None);
            }
            match until {
                // The service's alarm wakes the sleep at the deadline.
                Some(u) if !self.no_alarms => {
                    if self.alarm.is_none_or(|(_, at)| at != u) {
                        // Its reply may say the service has no alarms.
                        self.arm(u)?;
                        continue;
                    }
                    self.t.wait(None)?;
                }
                _ => self.t.wait(until)?,
            }
        }
    }

    /// Asks the service for an `ALARM` at `at`, unless that one is asked.
    fn arm(&mut self, at: u64) -> Result<()> {
        let tag = self.submit(&Request {
            op: op::ALARM,
            offset: at,
            ..Request::default()
        })?;
        self.alarm = Some((tag, at));
        Ok(())
    }

    /// Whether `c` is about the alarm (its reply or its coming), which is
    /// this library's business, not its caller's.
    fn alarm_news(&mut self, c: &Completion) -> bool {
        let Some((tag, _)) = self.alarm else {
            return c.kind == completion::ALARM;
        };
        match c.kind {
            completion::ALARM if c.tag == tag => self.alarm = None,
            completion::ALARM => {}
            completion::REPLY if c.tag == tag => {
                if c.status != 0 {
                    // A service without alarms: look again and again.
                    self.no_alarms = true;
                    self.alarm = None;
                }
            }
            _ => return false,
        }
        true
    }

    /// Records an event or a restart; `false` for anything else (a reply).
    fn note(&mut self, c: &Completion) -> bool {
        match c.kind {
            completion::EVENT => {
                self.noted = self.noted.wrapping_add(1);
                match self.slot_mut(c.socket) {
                    Some(s) if s.open && s.watched != 0 && s.watch_tag == c.tag => {
                        s.report(c.events, READ_SIDE | WRITE_SIDE);
                        if let Some(e) = Errno::from_code(c.status) {
                            s.error = Some(e);
                        }
                    }
                    _ => self.dropped += 1,
                }
                true
            }
            completion::RESTART => {
                self.restarted();
                true
            }
            completion::REPLY => false,
            _ => {
                self.dropped += 1;
                true
            }
        }
    }

    /// Takes every completion there is now, without waiting.
    fn drain(&mut self) -> Result<()> {
        while let Some(c) = self.t.try_recv()? {
            if self.alarm_news(&c) {
                continue;
            }
            if !self.note(&c) {
                // A reply when none is due: stale.
                self.dropped += 1;
            }
        }
        Ok(())
    }

    fn slot_mut(&mut self, id: u32) -> Option<&mut Slot> {
        self.table.get_mut(usize::try_from(id).ok()?)
    }

    fn slot(&self, id: u32) -> Option<&Slot> {
        self.table.get(usize::try_from(id).ok()?)
    }

    /// `s` if it is open in this epoch: `ENETRESET` for a socket of an
    /// earlier one, `EBADF` for one closed.
    fn check(&self, s: Socket) -> Result<u32> {
        if s.epoch != self.epoch {
            return Err(Errno::ENETRESET.into());
        }
        match self.slot(s.id) {
            Some(slot) if slot.open => Ok(s.id),
            _ => Err(Errno::EBADF.into()),
        }
    }

    /// Sends `r` and waits for its reply, recording events on the way;
    /// the reply (of any status) and records its readiness.
    fn call(&mut self, r: Request) -> Result<Completion> {
        if self.reset_due {
            self.reset()?;
        }
        let epoch = self.epoch;
        let tag = self.submit(&r)?;
        let mut other = 0;
        loop {
            let c = self.next(None)?.ok_or(SocketError::Broken)?;
            if self.note(&c) {
                if self.epoch != epoch {
                    // The request may be lost with the old service.
                    return Err(Errno::ENETRESET.into());
                }
                continue;
            }
            if c.tag != tag {
                self.dropped += 1;
                other += 1;
                if other > MAX_OTHER {
                    return Err(SocketError::Broken);
                }
                continue;
            }
            if r.op != op::OPEN && r.op != op::RESET {
                if c.socket != r.socket {
                    return Err(SocketError::Broken);
                }
                if let Some(s) = self.slot_mut(r.socket) {
                    s.report(c.events, sides(r.op));
                }
            }
            return Ok(c);
        }
    }

    /// [`Sockets::call`] with the status as the result: the value.
    fn call_ok(&mut self, r: Request) -> Result<u64> {
        let c = self.call(r)?;
        reply_result(&c)
    }

    fn on(&self, s: Socket, op: u32) -> Result<Request> {
        Ok(Request {
            op,
            socket: self.check(s)?,
            ..Request::default()
        })
    }

    /// Takes the new id `value` of an `OPEN` or `ACCEPT` into the table.
    fn adopt(&mut self, value: u64, events: u32) -> Result<Socket> {
        let epoch = self.epoch;
        let id = u32::try_from(value).map_err(|_| SocketError::Broken)?;
        match self.slot_mut(id) {
            Some(s) if !s.open => {
                *s = Slot {
                    open: true,
                    events,
                    ..Slot::default()
                };
                Ok(Socket { id, epoch })
            }
            // The service says an id is new that is open here: it is
            // not keeping its table.
            Some(_) => Err(SocketError::Broken),
            None => {
                // Beyond what is tracked here: give it back.
                self.call(Request {
                    op: op::CLOSE,
                    socket: id,
                    flags: CLOSE_RESET,
                    ..Request::default()
                })?;
                Err(Errno::EMFILE.into())
            }
        }
    }

    fn open(&mut self, kind: u32) -> Result<Socket> {
        let c = self.call(Request {
            op: op::OPEN,
            flags: kind,
            ..Request::default()
        })?;
        let id = reply_result(&c)?;
        self.adopt(id, c.events)
    }

    /// A new TCP socket.
    pub fn tcp(&mut self) -> Result<Socket> {
        self.open(kind::TCP)
    }

    /// A new UDP socket.
    pub fn udp(&mut self) -> Result<Socket> {
        self.open(kind::UDP)
    }

    /// Binds `s` to `addr` (0.0.0.0 for any of the service's) and `port`.
    pub fn bind(&mut self, s: Socket, addr: [u8; 4], port: u16) -> Result<()> {
        let r = Request {
            addr,
            port,
            ..self.on(s, op::BIND)?
        };
        self.call_ok(r).map(drop)
    }

    /// Makes TCP socket `s` accept connections, at most `backlog` pending.
    pub fn listen(&mut self, s: Socket, backlog: u32) -> Result<()> {
        let r = Request {
            flags: backlog,
            ..self.on(s, op::LISTEN)?
        };
        self.call_ok(r).map(drop)
    }

    /// A pending connection of listening socket `s`, and its peer;
    /// `EAGAIN` if none.
    pub fn accept(&mut self, s: Socket) -> Result<(Socket, Endpoint)> {
        let c = self.call(self.on(s, op::ACCEPT)?)?;
        let id = reply_result(&c)?;
        let peer = Endpoint {
            addr: c.addr,
            port: c.port,
        };
        // The reply's readiness is the listener's; the new socket's comes
        // with its first reply or event.
        Ok((self.adopt(id, 0)?, peer))
    }

    /// The local endpoint of `s` (`LOCAL`): a connection's is the address
    /// and port its peer reached.
    pub fn local(&mut self, s: Socket) -> Result<Endpoint> {
        let c = self.call(self.on(s, op::LOCAL)?)?;
        reply_result(&c)?;
        Ok(Endpoint {
            addr: c.addr,
            port: c.port,
        })
    }

    /// Starts connecting TCP socket `s` to `addr`:`port`; the service's
    /// answer is `EINPROGRESS` (the socket becomes writable when
    /// connected, or reports an error).
    pub fn connect(&mut self, s: Socket, addr: [u8; 4], port: u16) -> Result<()> {
        let r = Request {
            addr,
            port,
            ..self.on(s, op::CONNECT)?
        };
        self.call_ok(r).map(drop)
    }

    /// Connects and waits until connected, failed (the error the service
    /// reported, `ECONNREFUSED` if it said none) or past `until`
    /// (`ETIMEDOUT`).
    pub fn connect_wait(
        &mut self,
        s: Socket,
        addr: [u8; 4],
        port: u16,
        until: Option<u64>,
    ) -> Result<()> {
        match self.connect(s, addr, port) {
            Ok(()) => return Ok(()),
            Err(e) if e == Errno::EINPROGRESS => {}
            Err(e) => return Err(e),
        }
        let mut fd = PollFd::new(s, events::WRITABLE);
        loop {
            if self.poll(core::slice::from_mut(&mut fd), until)? == 0 {
                return Err(Errno::ETIMEDOUT.into());
            }
            let ready = fd.revents;
            if ready & events::ERROR != 0 {
                let e = self.take_error(s).unwrap_or(Errno::ECONNREFUSED);
                return Err(e.into());
            }
            if ready & events::WRITABLE != 0 {
                return Ok(());
            }
        }
    }

    /// Sends from `data` as much as the service takes now (at most the
    /// data region); the bytes taken, `EAGAIN` if none.
    pub fn send(&mut self, s: Socket, data: &[u8]) -> Result<usize> {
        let r = self.on(s, op::SEND)?;
        let piece = self.piece(data.len());
        let Some(data) = data.get(..piece).filter(|d| !d.is_empty()) else {
            return Ok(0);
        };
        self.t.write(0, data)?;
        let n = self.call_ok(Request {
            len: piece as u32,
            ..r
        })?;
        taken(n, piece)
    }

    /// Sends all of `data`, waiting (until `until`) while the service has
    /// no room: `ETIMEDOUT` past it.
    pub fn send_all(&mut self, s: Socket, data: &[u8], until: Option<u64>) -> Result<()> {
        let mut done = 0;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            match self.send(s, rest) {
                Ok(n) => done += n,
                Err(e) if e == Errno::EAGAIN => {
                    self.wait_for(s, events::WRITABLE, until)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Receives into `buf` what there is (at most the data region); 0 when
    /// the peer closed its half and all was read, `EAGAIN` if nothing now.
    pub fn recv(&mut self, s: Socket, buf: &mut [u8]) -> Result<usize> {
        let r = self.on(s, op::RECV)?;
        let piece = self.piece(buf.len());
        if piece == 0 {
            return Err(Errno::EINVAL.into());
        }
        let n = self.call_ok(Request {
            len: piece as u32,
            ..r
        })?;
        let n = taken(n, piece)?;
        let dst = buf.get_mut(..n).ok_or(SocketError::Broken)?;
        self.t.read(0, dst)?;
        Ok(n)
    }

    /// Sends `data` as one datagram of UDP socket `s` to `to`; the bytes
    /// sent.
    pub fn send_to(&mut self, s: Socket, data: &[u8], to: Endpoint) -> Result<usize> {
        let r = self.on(s, op::SEND_TO)?;
        if data.len() > self.piece(data.len()) {
            return Err(Errno::EMSGSIZE.into());
        }
        if data.is_empty() {
            return Err(Errno::EINVAL.into());
        }
        self.t.write(0, data)?;
        let n = self.call_ok(Request {
            len: data.len() as u32,
            addr: to.addr,
            port: to.port,
            ..r
        })?;
        taken(n, data.len())
    }

    /// One datagram of UDP socket `s` into `buf` (the rest of a longer one
    /// is dropped) and its source; `EAGAIN` if none.
    pub fn recv_from(&mut self, s: Socket, buf: &mut [u8]) -> Result<(usize, Endpoint)> {
        let r = self.on(s, op::RECV_FROM)?;
        let piece = self.piece(buf.len());
        if piece == 0 {
            return Err(Errno::EINVAL.into());
        }
        let c = self.call(Request {
            len: piece as u32,
            ..r
        })?;
        let n = taken(reply_result(&c)?, piece)?;
        let dst = buf.get_mut(..n).ok_or(SocketError::Broken)?;
        self.t.read(0, dst)?;
        Ok((
            n,
            Endpoint {
                addr: c.addr,
                port: c.port,
            },
        ))
    }

    /// Closes the sending half of TCP socket `s` (a FIN).
    pub fn shutdown(&mut self, s: Socket) -> Result<()> {
        let r = Request {
            flags: SHUT_WR,
            ..self.on(s, op::SHUTDOWN)?
        };
        self.call_ok(r).map(drop)
    }

    fn close_with(&mut self, s: Socket, flags: u32) -> Result<()> {
        if s.epoch != self.epoch {
            // Gone with the service already.
            return Ok(());
        }
        let r = Request {
            flags,
            ..self.on(s, op::CLOSE)?
        };
        let answer = self.call(r);
        // The id is free here whatever the service says: it names no
        // socket of ours any more.
        if s.epoch == self.epoch {
            if let Some(slot) = self.slot_mut(s.id) {
                *slot = Slot::default();
            }
        }
        match answer {
            Err(e) if e == Errno::ENETRESET => Ok(()),
            a => reply_result(&a?).map(drop),
        }
    }

    /// Closes `s` (a FIN for a connection) and frees its id. A socket the
    /// service lost in a restart closes without error.
    pub fn close(&mut self, s: Socket) -> Result<()> {
        self.close_with(s, 0)
    }

    /// Closes `s` with a reset.
    pub fn abort(&mut self, s: Socket) -> Result<()> {
        self.close_with(s, CLOSE_RESET)
    }

    /// Asks for an event whenever one of `events` of `s` becomes ready (0:
    /// none). [`Sockets::poll`] does this itself.
    pub fn watch(&mut self, s: Socket, watched: u32) -> Result<()> {
        let r = Request {
            flags: watched,
            ..self.on(s, op::WATCH)?
        };
        let c = self.call(r)?;
        reply_result(&c)?;
        if let Some(slot) = self.slot_mut(s.id) {
            slot.watched = watched;
            slot.watch_tag = c.tag;
        }
        Ok(())
    }

    /// The service's counters (`STATS`), through offset 0 of the region.
    pub fn stats(&mut self) -> Result<Stats> {
        let len = core::mem::size_of::<Stats>();
        if self.piece(len) < len {
            return Err(Errno::EINVAL.into());
        }
        // An id beyond the table: the reply's readiness belongs to no socket.
        let n = self.call_ok(Request {
            op: op::STATS,
            socket: u32::MAX,
            len: len as u32,
            ..Request::default()
        })?;
        let n = taken(n, len)?;
        let mut stats = Stats::default();
        let dst = bytemuck::bytes_of_mut(&mut stats)
            .get_mut(..n)
            .ok_or(SocketError::Broken)?;
        self.t.read(0, dst)?;
        Ok(stats)
    }

    /// The readiness last seen for `s` (0 for a socket that is not open).
    pub fn readiness(&self, s: Socket) -> u32 {
        match self.check(s) {
            Ok(id) => self.slot(id).map_or(0, |slot| slot.events),
            Err(_) => 0,
        }
    }

    /// How often each side of `s` (read, write) became ready again: see
    /// [`Slot::changes`].
    pub fn changes(&self, s: Socket) -> (u64, u64) {
        match self.check(s) {
            Ok(id) => self.slot(id).map_or((0, 0), |slot| slot.changes),
            Err(_) => (0, 0),
        }
    }

    /// The error an event reported for `s`, once.
    pub fn take_error(&mut self, s: Socket) -> Option<Errno> {
        let id = self.check(s).ok()?;
        self.slot_mut(id)?.error.take()
    }

    /// Waits until one of `events` of `s` (or an error) is ready; `ETIMEDOUT` past `until`.
    pub fn wait_for(&mut self, s: Socket, events: u32, until: Option<u64>) -> Result<u32> {
        let mut fd = PollFd::new(s, events);
        if self.poll(core::slice::from_mut(&mut fd), until)? == 0 {
            return Err(Errno::ETIMEDOUT.into());
        }
        Ok(fd.revents)
    }

    /// Waits until a socket of `fds` is ready for what it asks (always
    /// including `ERROR`) or `until` (a [`Transport::now`]
    /// reading) passes; sets each `revents` and returns how many are
    /// ready (0: the deadline passed). A closed socket reports `ERROR`;
    /// one the service lost in a restart makes the whole call fail with
    /// `ENETRESET`. Readiness is what the last reply or event said; the
    /// service is asked to watch what is asked, and the wait sleeps on
    /// the completion ring, woken at a deadline by the service's `ALARM`
    /// (or, from a service without alarms, yields until it).
    pub fn poll(&mut self, fds: &mut [PollFd], until: Option<u64>) -> Result<usize> {
        self.drain()?;
        for fd in fds.iter() {
            let Ok(id) = self.check(fd.socket) else {
                continue;
            };
            let want = wanted(fd.events);
            let watched = self.slot(id).map_or(0, |s| s.watched);
            if watched & want == want {
                continue;
            }
            match self.watch(fd.socket, watched | want) {
                Ok(()) => {}
                Err(SocketError::Errno(e)) if e != Errno::ENETRESET => {
                    // This socket's trouble, not the poll's: it reports
                    // an error, so the caller closes it.
                    if let Some(slot) = self.slot_mut(id) {
                        slot.events |= events::ERROR;
                        slot.error = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        loop {
            let mut ready = 0;
            for fd in fds.iter_mut() {
                fd.revents = match self.check(fd.socket) {
                    Ok(id) => {
                        let now = self.slot(id).map_or(0, |s| s.events);
                        now & wanted(fd.events)
                    }
                    Err(e) if e == Errno::ENETRESET => return Err(e),
                    Err(_) => events::ERROR,
                };
                if fd.revents != 0 {
                    ready += 1;
                }
            }
            if ready > 0 {
                return Ok(ready);
            }
            match self.next(until)? {
                None => return Ok(0),
                Some(c) => {
                    if !self.note(&c) {
                        self.dropped += 1;
                    }
                }
            }
            self.drain()?;
        }
    }

    /// Bytes one call moves of `want`: no more than the region holds.
    fn piece(&self, want: usize) -> usize {
        let region = usize::try_from(self.t.region_len()).unwrap_or(usize::MAX);
        want.min(region).min(u32::MAX as usize)
    }
}

/// The events a poll of `asked` reports.
fn wanted(asked: u32) -> u32 {
    (asked & events::ALL) | events::ERROR
}

/// A reply's status as a result.
fn reply_result(c: &Completion) -> Result<u64> {
    match c.result() {
        Ok(v) => Ok(v),
        Err(Some(e)) => Err(e.into()),
        Err(None) => Err(SocketError::Broken),
    }
}

/// The bytes a reply says it moved, if no more than asked.
fn taken(n: u64, asked: usize) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= asked)
        .ok_or(SocketError::Broken)
}

#[cfg(test)]
mod tests;
