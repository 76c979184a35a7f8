//! AF_INET sockets of Linux processes on the network service's sockets
//! (the manifest's `sock_req`, `sock_cpl`, `sock_data`). Every socket is
//! a socket of the service, watched for every event from its start, so
//! the last readiness the service reported is always at hand (for
//! `poll`, `select` and the parked calls) and every change wakes the
//! server's loop through the completion ring's notification. A call that
//! would wait on a blocking socket parks like a pipe read and runs again
//! at the next wake-up. The Linux shapes (addresses, options, flags) are
//! `posix::inet`, host-tested.

use kaal_client::socket::{events, Endpoint, Socket, SocketError, Sockets};
use linux_raw_sys::general as g;
use posix::abi::{mode, Stat};
use posix::errno::Errno;
use posix::inet::{self as pi, Kind, Options, Query, SockAddr};

use crate::files::{open_ref, Object, OpenRef};
use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

/// Most pending connections a listener asks the service for (its limit).
const BACKLOG_MAX: u64 = 16;
/// Ports given to sockets bound to port 0 (Linux's default range).
const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

/// The server's client of the network service.
pub struct Inet {
    pub net: Sockets,
    next_port: u16,
    /// The service's events taken when parked calls last ran again.
    events_seen: u64,
}

impl Inet {
    pub fn new(net: Sockets) -> Inet {
        Inet {
            net,
            next_port: *EPHEMERAL.start(),
            events_seen: 0,
        }
    }

    /// The next ephemeral port; the service refuses one in use
    /// (`EADDRINUSE`), and the caller tries the next.
    fn ephemeral(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= *EPHEMERAL.end() {
            *EPHEMERAL.start()
        } else {
            p + 1
        };
        p
    }
}

/// Where a socket is in its life, as far as Linux's calls care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Fresh,
    Listening,
    Connecting,
    Connected,
}

/// An AF_INET socket: its socket in the service and what Linux reports of
/// it that the service does not keep.
#[derive(Clone, Copy, Debug)]
pub struct Sock {
    pub s: Socket,
    pub kind: Kind,
    pub state: State,
    pub local: Option<SockAddr>,
    pub peer: Option<SockAddr>,
    pub opts: Options,
    /// The error `SO_ERROR` reports next (a failed non-blocking connect).
    pub error: Option<Errno>,
    pub rd_shut: bool,
    pub wr_shut: bool,
}

impl Sock {
    fn new(s: Socket, kind: Kind) -> Sock {
        Sock {
            s,
            kind,
            state: State::Fresh,
            local: None,
            peer: None,
            opts: Options::default(),
            error: None,
            rd_shut: false,
            wr_shut: false,
        }
    }
}

/// The Linux errno of a failed call to the service: its codes are
/// Linux's; a broken ring or service is `EIO`.
fn errno(e: SocketError) -> Errno {
    match e {
        SocketError::Errno(e) => Errno(e as u32),
        SocketError::Broken | SocketError::NotGranted(_) => Errno::EIO,
    }
}

fn endpoint(a: SockAddr) -> Endpoint {
    Endpoint {
        addr: a.addr,
        port: a.port,
    }
}

/// `struct stat` of a socket.
pub fn sock_stat(sock: &Sock) -> Stat {
    Stat {
        dev: 8,
        ino: u64::from(sock.s.id()) + 1,
        nlink: 1,
        mode: mode::S_IFSOCK | 0o777,
        blksize: 4096,
        ..Stat::default()
    }
}

/// The socket of `f` and whether its description is non-blocking.
fn sock_of(f: &OpenRef) -> Result<(Sock, bool), Errno> {
    let open = f.borrow();
    match &open.object {
        Object::Socket(s) => Ok((*s, open.flags & g::O_NONBLOCK != 0)),
        _ => Err(Errno::ENOTSOCK),
    }
}

fn put(f: &OpenRef, sock: Sock) {
    if let Object::Socket(s) = &mut f.borrow_mut().object {
        *s = sock;
    }
}

impl Server {
    fn net(&mut self) -> Result<&mut Inet, Errno> {
        self.inet.as_deref_mut().ok_or(Errno::EAFNOSUPPORT)
    }

    /// Takes the service's completions (readiness events) now; the
    /// parked calls run again next (`wake`).
    pub fn inet_drain(&mut self) {
        if let Some(i) = self.inet.as_mut() {
            if let Err(e) = i.net.drain() {
                kaal_rt::println!("posix: the network service: {e}");
            }
            i.events_seen = i.net.events_noted();
        }
    }

    /// Whether a socket call took events since parked calls last ran
    /// again: their notification is consumed with them, so without this a
    /// call parked on that socket (another thread's `epoll_wait`, another
    /// process's `read`) would sleep on.
    pub fn inet_news(&self) -> bool {
        self.inet
            .as_ref()
            .is_some_and(|i| i.net.events_noted() != i.events_seen)
    }

    /// The last closing of a socket: the service closes it (a FIN after
    /// what is still to be sent).
    pub fn inet_close(&mut self, sock: &Sock) {
        if let Some(i) = self.inet.as_mut() {
            let _ = i.net.close(sock.s);
        }
    }

    /// The poll bits of a socket, from the readiness the service last
    /// reported.
    pub fn inet_poll(&self, sock: &Sock) -> u16 {
        let Some(i) = self.inet.as_ref() else {
            return g::POLLERR as u16;
        };
        let r = i.net.readiness(sock.s);
        let mut bits = 0u16;
        if r & events::READABLE != 0 || sock.rd_shut {
            bits |= g::POLLIN as u16;
        }
        // A socket not yet connected is not writable (the service may say
        // it has room).
        let sendable = match (sock.kind, sock.state) {
            (Kind::Stream, State::Connected | State::Connecting) => true,
            (Kind::Stream, _) => false,
            (Kind::Dgram, _) => true,
        };
        if r & events::WRITABLE != 0 && sendable {
            bits |= g::POLLOUT as u16;
        }
        if r & events::HANGUP != 0 {
            bits |= (g::POLLHUP | g::POLLIN) as u16;
        }
        if r & events::ERROR != 0 || sock.error.is_some() {
            bits |= g::POLLERR as u16;
        }
        bits
    }

    /// The socket's change counters, for `EPOLLET`.
    pub fn inet_changes(&self, sock: &Sock) -> (u64, u64) {
        self.inet.as_ref().map_or((0, 0), |i| i.net.changes(sock.s))
    }

    /// `socket(domain, type, protocol)`.
    pub(crate) fn socket(&mut self, pid: Pid, domain: u64, ty: u64, protocol: u64) -> R {
        let want = pi::new_socket(domain, ty, protocol)?;
        let net = &mut self.net()?.net;
        let s = match want.kind {
            Kind::Stream => net.tcp(),
            Kind::Dgram => net.udp(),
        }
        .map_err(errno)?;
        if let Err(e) = net.watch(s, events::ALL) {
            let _ = net.abort(s);
            return Err(errno(e));
        }
        let nb = if want.nonblock { g::O_NONBLOCK } else { 0 };
        self.add_sock(pid, Sock::new(s, want.kind), nb, want.cloexec)
    }

    /// A descriptor for a new socket; the service's socket is closed if
    /// none is free.
    fn add_sock(&mut self, pid: Pid, sock: Sock, nb: u32, cloexec: bool) -> R {
        let f = open_ref(Object::Socket(sock), g::O_RDWR | nb);
        let r = match self.procs.get_mut(&pid) {
            Some(p) => p.fds.insert(f.clone(), cloexec).map(u64::from),
            None => Err(Errno::ESRCH),
        };
        if r.is_err() {
            self.release(f);
        }
        r
    }

    /// The address a process passed (`len` bytes at `at`).
    fn user_sockaddr(&mut self, pid: Pid, at: u64, len: u64) -> Result<SockAddr, Errno> {
        if !(2..=128).contains(&len) {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; pi::SOCKADDR_IN_LEN];
        let n = (len as usize).min(b.len());
        self.user_read(pid, at, b.get_mut(..n).ok_or(Errno::EINVAL)?)?;
        SockAddr::decode(b.get(..n).ok_or(Errno::EINVAL)?)
    }

    /// Writes `a` to a process's address buffer `at` whose length is at
    /// `len_at` (both 0: not asked).
    fn put_sockaddr(&mut self, pid: Pid, at: u64, len_at: u64, a: SockAddr) -> Result<(), Errno> {
        if at == 0 || len_at == 0 {
            return Ok(());
        }
        self.put_address(pid, at, len_at, &a.encode())
    }

    /// Writes the encoded address `enc` to the buffer `at`, cut to the room
    /// the word at `len_at` gives (`EINVAL` if negative), and its whole
    /// length to that word, as Linux does for every family.
    pub(crate) fn put_address(
        &mut self,
        pid: Pid,
        at: u64,
        len_at: u64,
        enc: &[u8],
    ) -> Result<(), Errno> {
        let mut l = [0u8; 4];
        self.user_read(pid, len_at, &mut l)?;
        let room = u32::from_le_bytes(l);
        if (room as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let n = (room as usize).min(enc.len());
        self.user_write(pid, at, enc.get(..n).unwrap_or(&[]))?;
        let full = u32::try_from(enc.len()).map_err(|_| Errno::EINVAL)?;
        self.user_write(pid, len_at, &full.to_le_bytes())
    }

    /// Binds `sock` at the service to `a`, an ephemeral port for port 0.
    fn bind_to(&mut self, sock: &mut Sock, a: SockAddr) -> Result<(), Errno> {
        let inet = self.net()?;
        if a.port != 0 {
            inet.net.bind(sock.s, a.addr, a.port).map_err(errno)?;
            sock.local = Some(a);
            return Ok(());
        }
        for _ in 0..64 {
            let port = inet.ephemeral();
            match inet.net.bind(sock.s, a.addr, port) {
                Ok(()) => {
                    sock.local = Some(SockAddr { port, ..a });
                    return Ok(());
                }
                Err(e) if e == kaal_client::socket::Errno::EADDRINUSE => {}
                Err(e) => return Err(errno(e)),
            }
        }
        Err(Errno::EADDRINUSE)
    }

    fn bind(&mut self, pid: Pid, f: &OpenRef, at: u64, len: u64) -> R {
        let (mut sock, _) = sock_of(f)?;
        let a = self.user_sockaddr(pid, at, len)?;
        if sock.local.is_some() || sock.state != State::Fresh {
            return Err(Errno::EINVAL);
        }
        self.bind_to(&mut sock, a)?;
        put(f, sock);
        Ok(0)
    }

    fn listen(&mut self, f: &OpenRef, backlog: u64) -> R {
        let (mut sock, _) = sock_of(f)?;
        if sock.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        match sock.state {
            // A second listen only changes the backlog.
            State::Listening => return Ok(0),
            State::Fresh => {}
            _ => return Err(Errno::EINVAL),
        }
        if sock.local.is_none() {
            self.bind_to(&mut sock, SockAddr::default())?;
        }
        let backlog = (backlog as i32).clamp(1, BACKLOG_MAX as i32) as u32;
        self.net()?.net.listen(sock.s, backlog).map_err(errno)?;
        sock.state = State::Listening;
        put(f, sock);
        Ok(0)
    }

    /// `accept4(fd, addr, addrlen, flags)` (`accept`: flags 0).
    fn accept4(&mut self, pid: Pid, f: &OpenRef, at: u64, len_at: u64, flags: u64) -> R {
        let (sock, nb) = sock_of(f)?;
        let known = u64::from(g::O_NONBLOCK | g::O_CLOEXEC);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        if sock.state != State::Listening {
            return Err(Errno::EINVAL);
        }
        let inet = self.net()?;
        let (s, peer) = match inet.net.accept(sock.s) {
            Ok(got) => got,
            Err(e) if e == kaal_client::socket::Errno::EAGAIN => {
                return Err(self.would_wait(pid, nb));
            }
            Err(e) => return Err(errno(e)),
        };
        if let Err(e) = inet.net.watch(s, events::ALL) {
            let _ = inet.net.abort(s);
            return Err(errno(e));
        }
        let peer = SockAddr {
            addr: peer.addr,
            port: peer.port,
        };
        let new = Sock {
            state: State::Connected,
            local: sock.local,
            peer: Some(peer),
            opts: sock.opts,
            ..Sock::new(s, Kind::Stream)
        };
        let nb = if flags & u64::from(g::O_NONBLOCK) != 0 {
            g::O_NONBLOCK
        } else {
            0
        };
        let n = self.add_sock(pid, new, nb, flags & u64::from(g::O_CLOEXEC) != 0)?;
        if let Err(e) = self.put_sockaddr(pid, at, len_at, peer) {
            // Linux would have the descriptor; a bad buffer still fails
            // the call, so the socket goes.
            if let Some(p) = self.procs.get_mut(&pid) {
                if let Ok(f) = p.fds.close(n as u32) {
                    self.release(f);
                }
            }
            return Err(e);
        }
        Ok(n)
    }

    /// `EAGAIN` for a non-blocking socket, else the call parks.
    fn would_wait(&mut self, pid: Pid, nonblock: bool) -> Errno {
        if nonblock {
            Errno::EAGAIN
        } else {
            self.wait(pid, None)
        }
    }

    /// A connect under way: connected, failed (its error) or still going.
    /// A stream socket's data calls go on once it is connected: a connect
    /// still under way waits (or `EAGAIN`), no connection is `ENOTCONN`.
    fn connected(&mut self, pid: Pid, sock: &mut Sock, nb: bool) -> Result<(), Errno> {
        match sock.state {
            State::Connected => Ok(()),
            State::Connecting => {
                if self.connect_progress(sock)? {
                    Ok(())
                } else {
                    Err(self.would_wait(pid, nb))
                }
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn connect_progress(&mut self, sock: &mut Sock) -> Result<bool, Errno> {
        let inet = self.net()?;
        let r = inet.net.readiness(sock.s);
        if r & events::ERROR != 0 {
            let e = inet
                .net
                .take_error(sock.s)
                .map_or(Errno::ECONNREFUSED, |e| Errno(e as u32));
            sock.state = State::Fresh;
            sock.peer = None;
            return Err(e);
        }
        if r & events::WRITABLE != 0 {
            sock.state = State::Connected;
            return Ok(true);
        }
        Ok(false)
    }

    fn connect(&mut self, pid: Pid, f: &OpenRef, at: u64, len: u64) -> R {
        let (mut sock, nb) = sock_of(f)?;
        let a = self.user_sockaddr(pid, at, len)?;
        if sock.kind == Kind::Dgram {
            if sock.local.is_none() {
                self.bind_to(&mut sock, SockAddr::default())?;
            }
            sock.peer = Some(a);
            put(f, sock);
            return Ok(0);
        }
        let r = match sock.state {
            State::Listening => Err(Errno::EINVAL),
            State::Connected => Err(Errno::EISCONN),
            State::Connecting => match self.connect_progress(&mut sock) {
                Ok(true) => Ok(0),
                Ok(false) if nb => Err(Errno::EALREADY),
                Ok(false) => Err(self.wait(pid, None)),
                Err(e) => Err(e),
            },
            State::Fresh => {
                let started = self.net()?.net.connect(sock.s, a.addr, a.port);
                match started {
                    Ok(()) => {
                        sock.state = State::Connected;
                        sock.peer = Some(a);
                        Ok(0)
                    }
                    Err(e) if e == kaal_client::socket::Errno::EINPROGRESS => {
                        sock.state = State::Connecting;
                        sock.peer = Some(a);
                        if nb {
                            Err(Errno::EINPROGRESS)
                        } else {
                            Err(self.wait(pid, None))
                        }
                    }
                    Err(e) => Err(errno(e)),
                }
            }
        };
        put(f, sock);
        r
    }

    /// Sends `data` on the socket of `f` (to `to` for a datagram, else its
    /// peer); `flags` are `send`'s.
    pub(crate) fn sock_send(
        &mut self,
        pid: Pid,
        f: &OpenRef,
        data: &[u8],
        to: Option<SockAddr>,
        flags: u32,
    ) -> R {
        let (mut sock, nb) = sock_of(f)?;
        if flags & !pi::SEND_FLAGS != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let nb = nb || pi::dontwait(flags);
        let r = self.send_on(pid, &mut sock, data, to, nb);
        put(f, sock);
        match r {
            Err(e) if pi::sigpipe(e, flags) => {
                self.signal(pid, g::SIGPIPE);
                Err(e)
            }
            r => r,
        }
    }

    fn send_on(
        &mut self,
        pid: Pid,
        sock: &mut Sock,
        data: &[u8],
        to: Option<SockAddr>,
        nb: bool,
    ) -> R {
        match sock.kind {
            Kind::Stream => {
                if sock.wr_shut {
                    return Err(Errno::EPIPE);
                }
                self.connected(pid, sock, nb)?;
                if data.is_empty() {
                    return Ok(0);
                }
                let r = self.net()?.net.send(sock.s, data);
                self.sent(pid, nb, r)
            }
            Kind::Dgram => {
                let to = to.or(sock.peer).ok_or(Errno::EDESTADDRREQ)?;
                if sock.local.is_none() {
                    self.bind_to(sock, SockAddr::default())?;
                }
                let r = self.net()?.net.send_to(sock.s, data, endpoint(to));
                self.sent(pid, nb, r)
            }
        }
    }

    /// A send's answer: the bytes taken, or a wait when the service had
    /// no room.
    fn sent(
        &mut self,
        pid: Pid,
        nb: bool,
        r: Result<usize, kaal_client::socket::SocketError>,
    ) -> Result<u64, Errno> {
        match r {
            Ok(n) => Ok(n as u64),
            Err(e) if e == kaal_client::socket::Errno::EAGAIN => Err(self.would_wait(pid, nb)),
            Err(e) => Err(errno(e)),
        }
    }

    /// Receives into `out` from the socket of `f`; the bytes and, for a
    /// datagram, its source.
    pub(crate) fn sock_recv(
        &mut self,
        pid: Pid,
        f: &OpenRef,
        out: &mut [u8],
        flags: u32,
    ) -> Result<(u64, Option<SockAddr>), Errno> {
        let (mut sock, nb) = sock_of(f)?;
        if flags & !pi::RECV_FLAGS != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let nb = nb || pi::dontwait(flags);
        let r = self.recv_on(pid, &mut sock, out, nb);
        put(f, sock);
        r
    }

    fn recv_on(
        &mut self,
        pid: Pid,
        sock: &mut Sock,
        out: &mut [u8],
        nb: bool,
    ) -> Result<(u64, Option<SockAddr>), Errno> {
        match sock.kind {
            Kind::Stream => {
                self.connected(pid, sock, nb)?;
                if sock.rd_shut || out.is_empty() {
                    return Ok((0, None));
                }
                match self.net()?.net.recv(sock.s, out) {
                    Ok(n) => Ok((n as u64, None)),
                    Err(e) if e == kaal_client::socket::Errno::EAGAIN => {
                        Err(self.would_wait(pid, nb))
                    }
                    Err(e) => Err(errno(e)),
                }
            }
            Kind::Dgram => {
                if sock.local.is_none() {
                    self.bind_to(sock, SockAddr::default())?;
                }
                if out.is_empty() {
                    return Ok((0, None));
                }
                match self.net()?.net.recv_from(sock.s, out) {
                    Ok((n, from)) => Ok((
                        n as u64,
                        Some(SockAddr {
                            addr: from.addr,
                            port: from.port,
                        }),
                    )),
                    Err(e) if e == kaal_client::socket::Errno::EAGAIN => {
                        Err(self.would_wait(pid, nb))
                    }
                    Err(e) => Err(errno(e)),
                }
            }
        }
    }

    /// `sendto(fd, buf, len, flags, addr, addrlen)`.
    fn sendto(&mut self, pid: Pid, f: &OpenRef, a: [u64; 6]) -> R {
        let [_, buf, len, flags, at, alen] = a;
        sock_of(f)?;
        let to = if at != 0 {
            Some(self.user_sockaddr(pid, at, alen)?)
        } else {
            None
        };
        let data = self.user_bytes(pid, buf, len)?;
        self.sock_send(pid, f, &data, to, flags as u32)
    }

    /// `recvfrom(fd, buf, len, flags, addr, addrlen)`.
    fn recvfrom(&mut self, pid: Pid, f: &OpenRef, a: [u64; 6]) -> R {
        let [_, buf, len, flags, at, len_at] = a;
        sock_of(f)?;
        let mut from = None;
        let n = self.recv_to_user(pid, buf, len, |s, out| {
            let (n, src) = s.sock_recv(pid, f, out, flags as u32)?;
            from = src;
            Ok(n)
        })?;
        if let Some(from) = from {
            self.put_sockaddr(pid, at, len_at, from)?;
        }
        Ok(n)
    }

    pub(crate) fn user_msghdr(&mut self, pid: Pid, at: u64) -> Result<pi::MsgHdr, Errno> {
        let mut b = [0u8; pi::MSGHDR_LEN];
        self.user_read(pid, at, &mut b)?;
        Ok(pi::MsgHdr::decode(&b))
    }

    /// `sendmsg(fd, msg, flags)`: the iovecs gathered into one send.
    fn sendmsg(&mut self, pid: Pid, f: &OpenRef, msg: u64, flags: u64) -> R {
        sock_of(f)?;
        let m = self.user_msghdr(pid, msg)?;
        if m.controllen != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let to = if m.name != 0 && m.namelen != 0 {
            Some(self.user_sockaddr(pid, m.name, u64::from(m.namelen))?)
        } else {
            None
        };
        let data = self.gather(pid, m.iov, m.iovlen)?;
        self.sock_send(pid, f, &data, to, flags as u32)
    }

    /// `recvmsg(fd, msg, flags)`: scattered into the iovecs; no ancillary
    /// data.
    fn recvmsg(&mut self, pid: Pid, f: &OpenRef, msg: u64, flags: u64) -> R {
        sock_of(f)?;
        let m = self.user_msghdr(pid, msg)?;
        let vecs = self.iovecs(pid, m.iov, m.iovlen)?;
        let mut out = crate::syscall::iov_buffer(&vecs);
        let (n, from) = self.sock_recv(pid, f, &mut out, flags as u32)?;
        self.scatter(pid, &vecs, out.get(..n as usize).unwrap_or(&[]))?;
        match from {
            Some(from) if m.name != 0 => {
                let enc = from.encode();
                self.user_write(pid, m.name, pi::truncated(&enc, m.namelen))?;
                self.user_write(
                    pid,
                    msg + pi::MSGHDR_NAMELEN_AT,
                    &(pi::SOCKADDR_IN_LEN as u32).to_le_bytes(),
                )?;
            }
            _ => self.user_write(pid, msg + pi::MSGHDR_NAMELEN_AT, &0u32.to_le_bytes())?,
        }
        self.user_write(pid, msg + pi::MSGHDR_CONTROLLEN_AT, &0u64.to_le_bytes())?;
        self.user_write(pid, msg + pi::MSGHDR_FLAGS_AT, &0u32.to_le_bytes())?;
        Ok(n)
    }

    fn shutdown(&mut self, f: &OpenRef, how: u64) -> R {
        let (mut sock, _) = sock_of(f)?;
        let (rd, wr) = pi::shutdown_how(how)?;
        if sock.kind == Kind::Stream && sock.state != State::Connected {
            return Err(Errno::ENOTCONN);
        }
        if wr && !sock.wr_shut && sock.kind == Kind::Stream {
            self.net()?.net.shutdown(sock.s).map_err(errno)?;
        }
        sock.rd_shut |= rd;
        sock.wr_shut |= wr;
        put(f, sock);
        self.changed = true;
        Ok(0)
    }

    fn getsockname(&mut self, pid: Pid, f: &OpenRef, at: u64, len_at: u64) -> R {
        let (sock, _) = sock_of(f)?;
        // A connection's end is the service's to say: an accepted one's is
        // the address its peer reached (its listener's may be 0.0.0.0),
        // a connected one's the port the service chose.
        let local = match (sock.kind, sock.state) {
            (Kind::Stream, State::Connected | State::Connecting) => {
                let e = self.net()?.net.local(sock.s).map_err(errno)?;
                SockAddr {
                    addr: e.addr,
                    port: e.port,
                }
            }
            _ => sock.local.unwrap_or_default(),
        };
        self.put_sockaddr(pid, at, len_at, local)?;
        Ok(0)
    }

    fn getpeername(&mut self, pid: Pid, f: &OpenRef, at: u64, len_at: u64) -> R {
        let (sock, _) = sock_of(f)?;
        let peer = match (sock.kind, sock.state) {
            (Kind::Stream, State::Connected) | (Kind::Dgram, _) => sock.peer,
            _ => None,
        };
        self.put_sockaddr(pid, at, len_at, peer.ok_or(Errno::ENOTCONN)?)?;
        Ok(0)
    }

    fn setsockopt(&mut self, pid: Pid, f: &OpenRef, a: [u64; 6]) -> R {
        let [_, level, name, at, len, _] = a;
        let (mut sock, _) = sock_of(f)?;
        let v = self.user_int_opt(pid, at, len)?;
        sock.opts.set(level as u32, name as u32, v)?;
        put(f, sock);
        Ok(0)
    }

    fn getsockopt(&mut self, pid: Pid, f: &OpenRef, a: [u64; 6]) -> R {
        let [_, level, name, at, len_at, _] = a;
        let (mut sock, _) = sock_of(f)?;
        let v = match sock.opts.get(level as u32, name as u32)? {
            Query::Value(v) => v,
            Query::Type => sock.kind.so_type(),
            Query::Error => {
                let e = match sock.error.take() {
                    Some(e) => Some(e),
                    // A completed connect is left for the next `connect`
                    // to see (it returns 0, then `EISCONN`, as Linux's).
                    None if sock.state == State::Connecting => {
                        let mut probe = sock;
                        let e = self.connect_progress(&mut probe).err();
                        if e.is_some() {
                            sock = probe;
                        }
                        e
                    }
                    None => None,
                };
                put(f, sock);
                e.map_or(0, |e| e.0 as i32)
            }
        };
        self.put_int_opt(pid, at, len_at, v)
    }

    /// An `int` option value a program passes to `setsockopt` (`len`
    /// bytes at `at`), for every family.
    pub(crate) fn user_int_opt(&mut self, pid: Pid, at: u64, len: u64) -> Result<i32, Errno> {
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 4];
        self.user_read(pid, at, &mut b)?;
        pi::int_value(&b)
    }

    /// Gives `getsockopt` an `int` option value: cut to the room the
    /// word at `len_at` gives (`EINVAL` if negative), as Linux for every
    /// family.
    pub(crate) fn put_int_opt(&mut self, pid: Pid, at: u64, len_at: u64, v: i32) -> R {
        let mut l = [0u8; 4];
        self.user_read(pid, len_at, &mut l)?;
        let room = u32::from_le_bytes(l);
        if (room as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let n = (room as usize).min(4);
        self.user_write(pid, at, v.to_le_bytes().get(..n).unwrap_or(&[]))?;
        self.user_write(pid, len_at, &(n as u32).to_le_bytes())?;
        Ok(0)
    }

    /// Socket call `nr` (arguments `a`) on `f`, any file but an AF_UNIX
    /// socket (`ENOTSOCK` for one that is no socket).
    pub(crate) fn inet_call(&mut self, pid: Pid, f: &OpenRef, nr: u32, a: [u64; 6]) -> R {
        let [_, a1, a2, a3, ..] = a;
        match nr {
            g::__NR_bind => self.bind(pid, f, a1, a2),
            g::__NR_listen => self.listen(f, a1),
            g::__NR_accept => self.accept4(pid, f, a1, a2, 0),
            g::__NR_accept4 => self.accept4(pid, f, a1, a2, a3),
            g::__NR_connect => self.connect(pid, f, a1, a2),
            g::__NR_sendto => self.sendto(pid, f, a),
            g::__NR_recvfrom => self.recvfrom(pid, f, a),
            g::__NR_sendmsg => self.sendmsg(pid, f, a1, a2),
            g::__NR_recvmsg => self.recvmsg(pid, f, a1, a2),
            g::__NR_shutdown => self.shutdown(f, a1),
            g::__NR_getsockname => self.getsockname(pid, f, a1, a2),
            g::__NR_getpeername => self.getpeername(pid, f, a1, a2),
            g::__NR_setsockopt => self.setsockopt(pid, f, a),
            g::__NR_getsockopt => self.getsockopt(pid, f, a),
            _ => Err(Errno::ENOSYS),
        }
    }
}
