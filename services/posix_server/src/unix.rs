//! AF_UNIX sockets between Linux processes: `socketpair`, named stream
//! sockets (`bind`, `listen`, `accept`, `connect`) and named datagram
//! sockets (`bind`, `sendto`, `connect`, `recvfrom`). A connection is
//! a `posix::unix::Stream` (two pipe buffers) shared by its two ends; each
//! end is an open file description like a pipe end (shared by `dup` and
//! `fork`), and dropping its last reference closes that end.
//!
//! Names: a path name is a real, empty file the VFS creates at `bind` (so
//! `EADDRINUSE` while it exists, `unlink` frees it, `connect` to a missing
//! one is `ENOENT`); the VFS has no socket inodes, so the server keeps the
//! listener by the file's (device, inode) and the file stats as a regular
//! file. An abstract name lives only in the server's table and goes with
//! its socket. A bound datagram socket receives into its own
//! `posix::unix::Datagrams`, which its name entry and the sockets
//! connected to it reach by weak references: its close makes their sends
//! `ECONNREFUSED`. A call that would wait parks and runs again at the next
//! change, as pipes do.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use kaal_client::file::flags as vfs_flags;
use linux_raw_sys::general as g;
use linux_raw_sys::net as n;
use posix::abi::{mode, Stat};
use posix::errno::Errno;
use posix::inet as pi;
use posix::unix::{new_unix, Datagrams, Stream, UnixAddr, SOCKADDR_UN_LEN};

use crate::files::{file_errno, open_ref, Object, OpenRef};
use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

/// Connections alive at once in all processes: each buffers up to
/// 128 KiB of the server's 16 MiB heap, so they are bounded as pipes are.
const MAX_STREAMS: usize = 32;
/// Bound datagram sockets alive at once (64 KiB of queue each).
const MAX_INBOXES: usize = 32;
/// The largest backlog a listener takes (it holds backlog + 1
/// connections unaccepted, as Linux).
const BACKLOG_MAX: usize = 128;
const AT_FDCWD: u64 = -100i64 as u64;

/// One end of a connection; dropping it closes that end.
#[derive(Debug)]
pub struct End {
    stream: Rc<RefCell<Stream>>,
    side: usize,
}

impl Drop for End {
    fn drop(&mut self) {
        if let Ok(mut s) = self.stream.try_borrow_mut() {
            s.close(self.side);
        }
    }
}

/// A bound socket's name entry: once listening, its connections not yet
/// accepted (the server end and the client's name).
#[derive(Debug, Default)]
pub struct Listener {
    name: UnixAddr,
    /// A datagram socket's name (Linux refuses the other type, `EPROTOTYPE`).
    dgram: bool,
    /// A datagram socket's: where datagrams sent to the name go.
    inbox: Option<Weak<RefCell<Datagrams>>>,
    listening: bool,
    backlog: usize,
    queue: VecDeque<(End, UnixAddr)>,
    /// Bumped per connection queued (epoll's edge-triggered reports).
    arrivals: u64,
}

/// What a name is found by: a socket file's (device, inode), or an
/// abstract name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Inode(u32, u64),
    Abstract(Vec<u8>),
}

/// The server's table of bound names and its count of connections.
#[derive(Default)]
pub struct Names {
    bound: BTreeMap<Key, Weak<RefCell<Listener>>>,
    streams: Vec<Weak<RefCell<Stream>>>,
    inboxes: Vec<Weak<RefCell<Datagrams>>>,
    /// The last identity given to a queue.
    inbox_ids: u64,
    autobind: u32,
}

impl Names {
    fn live(&self, key: &Key) -> Option<Rc<RefCell<Listener>>> {
        self.bound.get(key).and_then(Weak::upgrade)
    }

    /// A new connection (a datagram pair if `dgram`), `ENOBUFS` past
    /// [`MAX_STREAMS`].
    fn new_stream(&mut self, dgram: bool) -> Result<Rc<RefCell<Stream>>, Errno> {
        self.streams.retain(|w| w.strong_count() > 0);
        if self.streams.len() >= MAX_STREAMS {
            return Err(Errno::ENOBUFS);
        }
        let s = Rc::new(RefCell::new(if dgram {
            Stream::datagrams()
        } else {
            Stream::new()
        }));
        self.streams.push(Rc::downgrade(&s));
        Ok(s)
    }

    /// A bound datagram socket's queue, `ENOBUFS` past [`MAX_INBOXES`].
    fn new_inbox(&mut self) -> Result<Rc<RefCell<Datagrams>>, Errno> {
        self.inboxes.retain(|w| w.strong_count() > 0);
        if self.inboxes.len() >= MAX_INBOXES {
            return Err(Errno::ENOBUFS);
        }
        self.inbox_ids = self.inbox_ids.wrapping_add(1);
        let q = Rc::new(RefCell::new(Datagrams::inbox(self.inbox_ids)));
        self.inboxes.push(Rc::downgrade(&q));
        Ok(q)
    }
}

/// An AF_UNIX socket: a stream socket, an end of a datagram pair, or a
/// datagram socket (named, connected to a name, or neither).
#[derive(Debug, Default)]
pub struct Unix {
    dgram: bool,
    local: UnixAddr,
    peer: UnixAddr,
    /// Set by `bind`; `listen` makes it take connections.
    bound: Option<Rc<RefCell<Listener>>>,
    /// Set by `connect`, `accept` and `socketpair`.
    conn: Option<End>,
    /// A bound datagram socket's queue (not a pair end's: it reads its pair).
    inbox: Option<Rc<RefCell<Datagrams>>>,
    /// A datagram socket's `connect`: the named socket's queue.
    to: Option<Weak<RefCell<Datagrams>>>,
    /// The sender of the last datagram read and whether it was cut
    /// (`recvfrom`, `recvmsg`).
    from: UnixAddr,
    cut: bool,
    opts: pi::Options,
}

impl Unix {
    fn listener(&self) -> Option<&Rc<RefCell<Listener>>> {
        self.bound.as_ref().filter(|l| l.borrow().listening)
    }

    /// Poll bits and change counts, as Linux's `unix_poll`: a connection's
    /// end; a listener is readable with a connection waiting; a socket
    /// neither is `POLLOUT | POLLHUP`. A datagram socket, as
    /// `unix_dgram_poll`: readable with a message waiting, writable unless
    /// the socket it is connected to is full.
    pub fn state(&self) -> (u32, posix::events::Changes) {
        if self.dgram && self.conn.is_none() {
            return self.dgram_state();
        }
        if let Some(e) = &self.conn {
            let s = e.stream.borrow();
            return (s.poll(e.side), s.changes(e.side));
        }
        if let Some(l) = self.listener() {
            let l = l.borrow();
            let bits = if l.queue.is_empty() {
                0
            } else {
                g::POLLIN | g::POLLRDNORM
            };
            return (bits, (l.arrivals, 0));
        }
        (
            g::POLLOUT | g::POLLWRNORM | g::POLLWRBAND | g::POLLHUP,
            (0, 0),
        )
    }

    fn dgram_state(&self) -> (u32, posix::events::Changes) {
        let out = g::POLLOUT | g::POLLWRNORM | g::POLLWRBAND;
        let (mut bits, mut rd, mut wr) = (0, 0, 0);
        if let Some(q) = &self.inbox {
            let q = q.borrow();
            if !q.is_empty() {
                bits |= g::POLLIN | g::POLLRDNORM;
            }
            rd = q.changes().0;
        }
        match self.to.as_ref().and_then(Weak::upgrade) {
            Some(t) => {
                let t = t.borrow();
                if t.writable() {
                    bits |= out;
                }
                wr = t.changes().1;
            }
            // Not connected, or the peer gone: a send fails at once.
            None => bits |= out,
        }
        (bits, (rd, wr))
    }

    /// Sends `data` on the connection: a stream or pair's, or a datagram
    /// socket's `connect` (`ECONNREFUSED` once its peer is gone, as Linux
    /// drops it, then `ENOTCONN`).
    fn send(&mut self, data: &[u8]) -> Result<usize, Errno> {
        if let Some(e) = &self.conn {
            return e.stream.borrow_mut().write(e.side, data);
        }
        let Some(to) = &self.to else {
            return Err(Errno::ENOTCONN);
        };
        match to.upgrade() {
            Some(q) => {
                // Before the borrow: a socket may send to itself.
                let me = self.id();
                q.borrow_mut().send(me, self.local.clone(), data)
            }
            None => {
                // Disconnected: others may send here again.
                self.to = None;
                self.peer = UnixAddr::Unnamed;
                if let Some(q) = &self.inbox {
                    q.borrow_mut().only_from(None);
                }
                Err(Errno::ECONNREFUSED)
            }
        }
    }

    /// Its queue's identity, which a connected receiver checks.
    fn id(&self) -> Option<u64> {
        self.inbox.as_ref().map(|q| q.borrow().id())
    }

    /// Sets where sends go, and so whom this socket's queue takes.
    fn connect_to(&mut self, q: &Rc<RefCell<Datagrams>>, name: UnixAddr) {
        let peer = q.borrow().id();
        if let Some(mine) = &self.inbox {
            mine.borrow_mut().only_from(Some(peer));
        }
        self.to = Some(Rc::downgrade(q));
        self.peer = name;
    }

    /// Receives into `out`: from the connection, or a datagram socket's
    /// queue (an unbound one has none: it waits, as on Linux).
    fn recv(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        if let Some(e) = &self.conn {
            let mut s = e.stream.borrow_mut();
            let r = s.read(e.side, out);
            self.cut = s.truncated();
            self.from = UnixAddr::Unnamed;
            return r;
        }
        if !self.dgram {
            return Err(Errno::EINVAL);
        }
        let got = self.inbox.as_ref().and_then(|q| q.borrow_mut().pop(out));
        let (k, cut, from) = got.ok_or(Errno::EAGAIN)?;
        self.cut = cut;
        self.from = from;
        Ok(k)
    }

    /// Who sent what was read last: a datagram's sender, else the peer.
    fn source(&self) -> UnixAddr {
        if self.dgram {
            self.from.clone()
        } else {
            self.peer.clone()
        }
    }

    /// `struct stat` of a socket.
    pub fn stat(&self) -> Stat {
        let ino = match (&self.conn, &self.bound) {
            (Some(e), _) => Rc::as_ptr(&e.stream) as u64 ^ e.side as u64,
            (None, Some(l)) => Rc::as_ptr(l) as u64,
            _ => self as *const Unix as u64,
        };
        Stat {
            dev: 8,
            ino: ino & 0xffff_ffff,
            nlink: 1,
            mode: mode::S_IFSOCK | 0o777,
            blksize: 4096,
            ..Stat::default()
        }
    }
}

/// Runs `op` on the AF_UNIX socket of `f` and whether its description is
/// non-blocking (`ENOTSOCK` for another file).
fn with_unix<T>(f: &OpenRef, op: impl FnOnce(&mut Unix, bool) -> T) -> Result<T, Errno> {
    let mut open = f.borrow_mut();
    let nb = open.flags & g::O_NONBLOCK != 0;
    match &mut open.object {
        Object::Unix(u) => Ok(op(u, nb)),
        _ => Err(Errno::ENOTSOCK),
    }
}

/// The error of a send with an address on a stream socket: `EISCONN`
/// when connected, else `EOPNOTSUPP`, as Linux.
fn addressed(u: &Unix) -> Errno {
    if u.conn.is_some() {
        Errno::EISCONN
    } else {
        Errno::EOPNOTSUPP
    }
}

/// The flags `recv` on a Unix socket takes (`MSG_PEEK` is not kept).
const RECV_FLAGS: u32 = n::MSG_DONTWAIT | n::MSG_CMSG_CLOEXEC;

impl Server {
    /// `socket(AF_UNIX, type, protocol)`.
    pub(crate) fn unix_socket(&mut self, pid: Pid, ty: u64, protocol: u64) -> R {
        let want = new_unix(ty, protocol)?;
        let u = Unix {
            dgram: want.dgram,
            ..Unix::default()
        };
        self.add_unix(pid, u, want.nonblock, want.cloexec)
    }

    /// Socket call `nr` (arguments `a`) on `f`, an AF_UNIX socket.
    pub(crate) fn unix_call(&mut self, pid: Pid, f: &OpenRef, nr: u32, a: [u64; 6]) -> R {
        let [_, a1, a2, a3, a4, a5] = a;
        match nr {
            g::__NR_bind => self.unix_bind(pid, f, a1, a2),
            g::__NR_listen => self.unix_listen(f, a1),
            g::__NR_accept => self.unix_accept(pid, f, a1, a2, 0),
            g::__NR_accept4 => self.unix_accept(pid, f, a1, a2, a3),
            g::__NR_connect => self.unix_connect(pid, f, a1, a2),
            g::__NR_sendto => {
                let to = if a4 != 0 && a5 != 0 {
                    Some(self.user_unix_addr(pid, a4, a5)?)
                } else {
                    None
                };
                let data = self.user_bytes(pid, a1, a2)?;
                self.unix_send_to(pid, f, to, &data, a3 as u32)
            }
            g::__NR_recvfrom => {
                let got =
                    self.recv_to_user(pid, a1, a2, |s, out| s.unix_recv(pid, f, out, a3 as u32))?;
                if a4 != 0 && a5 != 0 {
                    let from = with_unix(f, |u, _| u.source())?;
                    self.put_from(pid, a4, a5, &from)?;
                }
                Ok(got)
            }
            g::__NR_sendmsg => self.unix_sendmsg(pid, f, a1, a2),
            g::__NR_recvmsg => self.unix_recvmsg(pid, f, a1, a2),
            g::__NR_shutdown => {
                let (rd, wr) = pi::shutdown_how(a1)?;
                // Linux shuts an unconnected socket too (nothing to see).
                with_unix(f, |u, _| {
                    if let Some(e) = &u.conn {
                        e.stream.borrow_mut().shutdown(e.side, rd, wr);
                    }
                })?;
                self.changed = true;
                Ok(0)
            }
            g::__NR_getsockname => {
                let name = with_unix(f, |u, _| u.local.clone())?;
                self.put_unix_addr(pid, a1, a2, &name)
            }
            g::__NR_getpeername => {
                let peer = with_unix(f, |u, _| {
                    (u.conn.is_some() || u.to.is_some()).then(|| u.peer.clone())
                })?;
                self.put_unix_addr(pid, a1, a2, &peer.ok_or(Errno::ENOTCONN)?)
            }
            g::__NR_setsockopt => {
                if a1 != u64::from(n::SOL_SOCKET) {
                    return Err(Errno::EOPNOTSUPP);
                }
                let v = self.user_int_opt(pid, a3, a4)?;
                with_unix(f, |u, _| u.opts.set(a1 as u32, a2 as u32, v))??;
                Ok(0)
            }
            g::__NR_getsockopt => {
                if a1 != u64::from(n::SOL_SOCKET) {
                    return Err(Errno::EOPNOTSUPP);
                }
                let (q, dgram) = with_unix(f, |u, _| (u.opts.get(a1 as u32, a2 as u32), u.dgram))?;
                let v = match q? {
                    pi::Query::Value(v) => v,
                    pi::Query::Type if dgram => n::SOCK_DGRAM as i32,
                    pi::Query::Type => n::SOCK_STREAM as i32,
                    // A reset is reported by the read it ends.
                    pi::Query::Error => 0,
                };
                self.put_int_opt(pid, a3, a4, v)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// A descriptor for a new socket (dropped, and so closed, when none is
    /// free).
    fn add_unix(&mut self, pid: Pid, u: Unix, nonblock: bool, cloexec: bool) -> R {
        let nb = if nonblock { g::O_NONBLOCK } else { 0 };
        let f = open_ref(Object::Unix(u), g::O_RDWR | nb);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.fds.insert(f, cloexec).map(u64::from)
    }

    /// Closes descriptor `fd` of `pid` (a call that made it failed).
    fn unmake(&mut self, pid: Pid, fd: u64) {
        let closed = self
            .procs
            .get_mut(&pid)
            .and_then(|p| p.fds.close(fd as u32).ok());
        if let Some(f) = closed {
            self.release(f);
        }
    }

    /// `socketpair(domain, type, protocol, sv)`.
    pub(crate) fn socketpair(
        &mut self,
        pid: Pid,
        domain: u64,
        ty: u64,
        protocol: u64,
        sv: u64,
    ) -> R {
        if domain == u64::from(n::AF_INET) || domain == u64::from(n::AF_INET6) {
            return Err(Errno::EOPNOTSUPP);
        }
        if domain != u64::from(n::AF_UNIX) {
            return Err(Errno::EAFNOSUPPORT);
        }
        let want = new_unix(ty, protocol)?;
        let stream = self.unix_names.new_stream(want.dgram)?;
        let end = |side| Unix {
            dgram: want.dgram,
            conn: Some(End {
                stream: stream.clone(),
                side,
            }),
            ..Unix::default()
        };
        let (u0, u1) = (end(0), end(1));
        let fd0 = self.add_unix(pid, u0, want.nonblock, want.cloexec)?;
        let fd1 = match self.add_unix(pid, u1, want.nonblock, want.cloexec) {
            Ok(fd) => fd,
            Err(e) => {
                self.unmake(pid, fd0);
                return Err(e);
            }
        };
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&(fd0 as u32).to_le_bytes());
        pair[4..].copy_from_slice(&(fd1 as u32).to_le_bytes());
        if let Err(e) = self.user_write(pid, sv, &pair) {
            self.unmake(pid, fd0);
            self.unmake(pid, fd1);
            return Err(e);
        }
        Ok(0)
    }

    /// The `struct sockaddr_un` of `len` bytes at `at`.
    fn user_unix_addr(&mut self, pid: Pid, at: u64, len: u64) -> Result<UnixAddr, Errno> {
        if !(2..=SOCKADDR_UN_LEN as u64).contains(&len) {
            return Err(Errno::EINVAL);
        }
        let mut b = alloc::vec![0u8; len as usize];
        self.user_read(pid, at, &mut b)?;
        UnixAddr::decode(&b)
    }

    /// Writes `a` to the buffer `at` whose room is at `len_at`, truncated
    /// to it, and its full length to `len_at`, as Linux.
    fn put_unix_addr(&mut self, pid: Pid, at: u64, len_at: u64, a: &UnixAddr) -> R {
        self.put_address(pid, at, len_at, &a.encode())?;
        Ok(0)
    }

    /// A received message's source (`recvfrom`, `recvmsg`): the peer's
    /// name, or length 0 when it has none, as Linux's `unix_copy_addr`.
    fn put_from(&mut self, pid: Pid, at: u64, len_at: u64, peer: &UnixAddr) -> R {
        if *peer == UnixAddr::Unnamed {
            self.user_write(pid, len_at, &0u32.to_le_bytes())?;
            return Ok(0);
        }
        self.put_unix_addr(pid, at, len_at, peer)
    }

    /// The absolute path of a path name.
    fn unix_path(&mut self, pid: Pid, path: &[u8]) -> Result<String, Errno> {
        let p = core::str::from_utf8(path).map_err(|_| Errno::EINVAL)?;
        self.resolve(pid, AT_FDCWD, p)
    }

    /// `bind`: a path name creates its file (`EADDRINUSE` if anything is
    /// there); the family alone binds a fresh abstract name (autobind).
    fn unix_bind(&mut self, pid: Pid, f: &OpenRef, at: u64, len: u64) -> R {
        let mut name = self.user_unix_addr(pid, at, len)?;
        if with_unix(f, |u, _| u.local != UnixAddr::Unnamed)? {
            // Linux makes the file first: an existing one is in use.
            if let UnixAddr::Path(p) = &name {
                let path = self.unix_path(pid, p)?;
                if self.files.lstat(&path).is_ok() {
                    return Err(Errno::EADDRINUSE);
                }
            }
            return Err(Errno::EINVAL);
        }
        self.unix_names.bound.retain(|_, w| w.strong_count() > 0);
        // Before the file: no file is left behind by ENOBUFS. A pair end
        // is named but takes no datagrams by its name.
        let inbox = if with_unix(f, |u, _| u.dgram && u.conn.is_none())? {
            Some(self.unix_names.new_inbox()?)
        } else {
            None
        };
        let key = match &name {
            UnixAddr::Path(p) => {
                let path = self.unix_path(pid, p)?;
                let umask = self.procs.get(&pid).map_or(0o022, |p| p.umask);
                let vfd = self
                    .files
                    .open(
                        &path,
                        vfs_flags::CREATE | vfs_flags::EXCLUSIVE,
                        0o777 & !umask,
                    )
                    .map_err(|e| match file_errno(e) {
                        Errno::EEXIST => Errno::EADDRINUSE,
                        e => e,
                    })?;
                let st = self.files.fstat(vfd);
                let _ = self.files.close(vfd);
                let st = st.map_err(file_errno)?;
                Key::Inode(st.dev, st.ino)
            }
            UnixAddr::Abstract(a) => {
                let key = Key::Abstract(a.clone());
                if self.unix_names.live(&key).is_some() {
                    return Err(Errno::EADDRINUSE);
                }
                key
            }
            UnixAddr::Unnamed => loop {
                let names = &mut self.unix_names;
                names.autobind = (names.autobind + 1) & 0xf_ffff;
                let a = alloc::format!("{:05x}", names.autobind).into_bytes();
                let key = Key::Abstract(a.clone());
                if names.live(&key).is_none() {
                    name = UnixAddr::Abstract(a);
                    break key;
                }
            },
        };
        let dgram = with_unix(f, |u, _| u.dgram)?;
        let l = Rc::new(RefCell::new(Listener {
            name: name.clone(),
            dgram,
            inbox: inbox.as_ref().map(Rc::downgrade),
            ..Listener::default()
        }));
        self.unix_names.bound.insert(key, Rc::downgrade(&l));
        with_unix(f, |u, _| {
            u.local = name;
            u.bound = Some(l);
            u.inbox = inbox;
            // Connected before it was bound: its peer's messages only.
            let peer = u.to.as_ref().and_then(Weak::upgrade);
            if let (Some(mine), Some(p)) = (&u.inbox, peer) {
                mine.borrow_mut().only_from(Some(p.borrow().id()));
            }
        })?;
        Ok(0)
    }

    /// `listen`: a bound, unconnected socket takes connections.
    fn unix_listen(&mut self, f: &OpenRef, backlog: u64) -> R {
        with_unix(f, |u, _| {
            if u.dgram {
                return Err(Errno::EOPNOTSUPP);
            }
            if u.conn.is_some() {
                return Err(Errno::EINVAL);
            }
            let l = u.bound.as_ref().ok_or(Errno::EINVAL)?;
            let mut l = l.borrow_mut();
            l.listening = true;
            l.backlog = usize::try_from((backlog as i32).max(0))
                .unwrap_or(0)
                .min(BACKLOG_MAX);
            Ok(())
        })??;
        // Connects parked on a full backlog may go on.
        self.changed = true;
        Ok(0)
    }

    /// `connect`: `ENOENT` without the file, `ECONNREFUSED` when nobody
    /// listens there; the connection is queued at the listener at once (a
    /// full backlog waits, or `EAGAIN`).
    fn unix_connect(&mut self, pid: Pid, f: &OpenRef, at: u64, len: u64) -> R {
        let name = self.user_unix_addr(pid, at, len)?;
        let (connected, listening, dgram, nb) = with_unix(f, |u, nb| {
            (u.conn.is_some(), u.listener().is_some(), u.dgram, nb)
        })?;
        if dgram && !connected {
            // A datagram socket's connect only sets where sends go (again
            // and again, as Linux).
            let q = self.dgram_target(pid, &name)?;
            with_unix(f, |u, _| u.connect_to(&q, name))?;
            return Ok(0);
        }
        if connected {
            return Err(Errno::EISCONN);
        }
        if listening {
            return Err(Errno::EINVAL);
        }
        let l = Some(self.unix_named(pid, &name, false)?)
            .filter(|l| l.borrow().listening)
            .ok_or(Errno::ECONNREFUSED)?;
        let full = {
            let l = l.borrow();
            l.queue.len() > l.backlog
        };
        if full {
            return Err(if nb {
                Errno::EAGAIN
            } else {
                self.wait(pid, None)
            });
        }
        let stream = self.unix_names.new_stream(false)?;
        let mine = with_unix(f, |u, _| u.local.clone())?;
        let server_end = End {
            stream: stream.clone(),
            side: 1,
        };
        let peer = {
            let mut l = l.borrow_mut();
            l.queue.push_back((server_end, mine));
            l.arrivals = l.arrivals.wrapping_add(1);
            l.name.clone()
        };
        with_unix(f, |u, _| {
            u.conn = Some(End { stream, side: 0 });
            u.peer = peer;
        })?;
        self.changed = true;
        Ok(0)
    }

    /// The name entry of a datagram (`dgram`) or stream socket bound at
    /// `name`: `ENOENT` without the file (and what else resolving the path
    /// gives), `ECONNREFUSED` when no socket is bound there; a socket of the
    /// other type is `EPROTOTYPE` at a path, and not found (`ECONNREFUSED`)
    /// by an abstract name, as Linux looks them up.
    fn unix_named(
        &mut self,
        pid: Pid,
        name: &UnixAddr,
        dgram: bool,
    ) -> Result<Rc<RefCell<Listener>>, Errno> {
        let key = match name {
            UnixAddr::Path(p) => {
                let path = self.unix_path(pid, p)?;
                let st = self.files.stat(&path).map_err(file_errno)?;
                Key::Inode(st.dev, st.ino)
            }
            UnixAddr::Abstract(a) => Key::Abstract(a.clone()),
            UnixAddr::Unnamed => return Err(Errno::EINVAL),
        };
        let l = self.unix_names.live(&key).ok_or(Errno::ECONNREFUSED)?;
        if l.borrow().dgram != dgram {
            return Err(match key {
                Key::Inode(..) => Errno::EPROTOTYPE,
                Key::Abstract(_) => Errno::ECONNREFUSED,
            });
        }
        Ok(l)
    }

    /// The queue of the datagram socket bound at `name` (`ECONNREFUSED` for
    /// a pair end's: it has none).
    fn dgram_target(&mut self, pid: Pid, name: &UnixAddr) -> Result<Rc<RefCell<Datagrams>>, Errno> {
        let l = self.unix_named(pid, name, true)?;
        let l = l.borrow();
        l.inbox
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or(Errno::ECONNREFUSED)
    }

    /// `accept4(fd, addr, addrlen, flags)`.
    fn unix_accept(&mut self, pid: Pid, f: &OpenRef, at: u64, len_at: u64, flags: u64) -> R {
        let known = u64::from(g::O_NONBLOCK | g::O_CLOEXEC);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let (got, nb) = with_unix(f, |u, nb| {
            if u.dgram {
                return Err(Errno::EOPNOTSUPP);
            }
            let l = u.listener().ok_or(Errno::EINVAL)?;
            let mut l = l.borrow_mut();
            Ok((
                l.queue
                    .pop_front()
                    .map(|(e, peer)| (e, peer, l.name.clone())),
                nb,
            ))
        })??;
        let Some((end, peer, local)) = got else {
            return Err(if nb {
                Errno::EAGAIN
            } else {
                self.wait(pid, None)
            });
        };
        let new = Unix {
            local,
            peer: peer.clone(),
            conn: Some(end),
            ..Unix::default()
        };
        let nonblock = flags & u64::from(g::O_NONBLOCK) != 0;
        let cloexec = flags & u64::from(g::O_CLOEXEC) != 0;
        let nfd = self.add_unix(pid, new, nonblock, cloexec)?;
        // Connects parked on the full backlog may go on.
        self.changed = true;
        if at != 0 && len_at != 0 {
            if let Err(e) = self.put_unix_addr(pid, at, len_at, &peer) {
                self.unmake(pid, nfd);
                return Err(e);
            }
        }
        Ok(nfd)
    }

    /// Sends `data` on the connection of `f` (`write`, `send`...).
    pub(crate) fn unix_send(&mut self, pid: Pid, f: &OpenRef, data: &[u8], flags: u32) -> R {
        self.unix_send_to(pid, f, None, data, flags)
    }

    /// Sends `data` on `f`: to the datagram socket named `to` if any (a
    /// stream's address is `EISCONN` or `EOPNOTSUPP`), else on its
    /// connection.
    fn unix_send_to(
        &mut self,
        pid: Pid,
        f: &OpenRef,
        to: Option<UnixAddr>,
        data: &[u8],
        flags: u32,
    ) -> R {
        if flags & !pi::SEND_FLAGS != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (r, nb) = match to {
            Some(name) => {
                if let Some(e) = with_unix(f, |u, _| (!u.dgram).then(|| addressed(u)))? {
                    return Err(e);
                }
                let q = self.dgram_target(pid, &name)?;
                with_unix(f, |u, nb| {
                    let me = u.id();
                    (q.borrow_mut().send(me, u.local.clone(), data), nb)
                })?
            }
            None => with_unix(f, |u, nb| (u.send(data), nb))?,
        };
        match r {
            Ok(k) => {
                self.changed = true;
                Ok(k as u64)
            }
            Err(Errno::EAGAIN) if !(nb || pi::dontwait(flags)) => Err(self.wait(pid, None)),
            Err(e) => {
                if pi::sigpipe(e, flags) {
                    self.signal(pid, g::SIGPIPE);
                }
                Err(e)
            }
        }
    }

    /// Receives into `out` from the connection of `f` (`read`, `recv`...).
    pub(crate) fn unix_recv(&mut self, pid: Pid, f: &OpenRef, out: &mut [u8], flags: u32) -> R {
        if flags & !RECV_FLAGS != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (r, dgram, nb) = with_unix(f, |u, nb| (u.recv(out), u.dgram, nb))?;
        match r {
            Ok(k) => {
                // A datagram read, even an empty one, makes room.
                if k > 0 || dgram {
                    self.changed = true;
                }
                Ok(k as u64)
            }
            Err(Errno::EAGAIN) if !(nb || pi::dontwait(flags)) => Err(self.wait(pid, None)),
            Err(e) => Err(e),
        }
    }

    /// `sendmsg`: the iovecs gathered into one send; ancillary data
    /// (`SCM_RIGHTS`, credentials) is refused with `EOPNOTSUPP`.
    fn unix_sendmsg(&mut self, pid: Pid, f: &OpenRef, msg: u64, flags: u64) -> R {
        let m = self.user_msghdr(pid, msg)?;
        if m.controllen != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let to = if m.name != 0 && m.namelen != 0 {
            Some(self.user_unix_addr(pid, m.name, u64::from(m.namelen))?)
        } else {
            None
        };
        let data = self.gather(pid, m.iov, m.iovlen)?;
        self.unix_send_to(pid, f, to, &data, flags as u32)
    }

    /// `recvmsg`: scattered into the iovecs; no ancillary data.
    fn unix_recvmsg(&mut self, pid: Pid, f: &OpenRef, msg: u64, flags: u64) -> R {
        let m = self.user_msghdr(pid, msg)?;
        let vecs = self.iovecs(pid, m.iov, m.iovlen)?;
        let mut out = crate::syscall::iov_buffer(&vecs);
        let got = self.unix_recv(pid, f, &mut out, flags as u32)?;
        self.scatter(pid, &vecs, out.get(..got as usize).unwrap_or(&[]))?;
        let from = with_unix(f, |u, _| u.source())?;
        if m.name != 0 {
            self.put_from(pid, m.name, msg + pi::MSGHDR_NAMELEN_AT, &from)?;
        } else {
            self.user_write(pid, msg + pi::MSGHDR_NAMELEN_AT, &0u32.to_le_bytes())?;
        }
        self.user_write(pid, msg + pi::MSGHDR_CONTROLLEN_AT, &0u64.to_le_bytes())?;
        let cut = with_unix(f, |u, _| u.cut)?;
        let flags = if cut { n::MSG_TRUNC } else { 0 };
        self.user_write(pid, msg + pi::MSGHDR_FLAGS_AT, &flags.to_le_bytes())?;
        Ok(got)
    }
}
