//! AF_UNIX sockets as Linux programs see them (`net/unix/af_unix.c`):
//! `struct sockaddr_un`, `socket`'s arguments, and a connection's state.
//! A stream connection is a pair of [`Pipe`]s, one per direction, plus each
//! end's shutdown bits and pending error; a datagram pair queues whole
//! messages instead, in the [`Datagrams`] a named datagram socket receives
//! into (each message with its sender's name). The process server keeps the names,
//! listeners and descriptors (`services/posix_server/src/unix.rs`). Like
//! the pipe, nothing here blocks: `WouldBlock` asks the server to park a
//! blocking caller.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use linux_raw_sys::general as g;
use linux_raw_sys::net as n;

use crate::errno::Errno;
use crate::pipe::{Pipe, PipeError, PIPE_BUF};

/// `offsetof(struct sockaddr_un, sun_path)`.
pub const SUN_PATH_AT: usize = 2;
/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = 110;

/// A socket's name.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnixAddr {
    /// No name (a socketpair end, an unbound or accepted client).
    #[default]
    Unnamed,
    /// A file system path, as the program gave it (no NUL).
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// Reads the `struct sockaddr_un` of `len` bytes a process passed
    /// (`bytes` holds them): `EINVAL` for a length out of range or another
    /// family; exactly the family is [`UnixAddr::Unnamed`] (`bind`
    /// autobinds it). A path ends at its first NUL, as Linux reads it.
    pub fn decode(bytes: &[u8]) -> Result<UnixAddr, Errno> {
        if bytes.len() < SUN_PATH_AT || bytes.len() > SOCKADDR_UN_LEN {
            return Err(Errno::EINVAL);
        }
        let family = bytes.first().copied().unwrap_or(0) as u16
            | (bytes.get(1).copied().unwrap_or(0) as u16) << 8;
        if u32::from(family) != n::AF_UNIX {
            return Err(Errno::EINVAL);
        }
        let path = bytes.get(SUN_PATH_AT..).unwrap_or(&[]);
        Ok(match path.split_first() {
            None => UnixAddr::Unnamed,
            Some((0, name)) => UnixAddr::Abstract(name.to_vec()),
            Some(_) => {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                UnixAddr::Path(path.get(..end).unwrap_or(&[]).to_vec())
            }
        })
    }

    /// The `struct sockaddr_un` a call reports, as long as Linux says it
    /// is: the family alone when unnamed, a path with its NUL, an abstract
    /// name with its leading NUL.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from((n::AF_UNIX as u16).to_le_bytes());
        match self {
            UnixAddr::Unnamed => {}
            UnixAddr::Path(p) => {
                out.extend_from_slice(p);
                out.push(0);
            }
            UnixAddr::Abstract(a) => {
                out.push(0);
                out.extend_from_slice(a);
            }
        }
        out.truncate(SOCKADDR_UN_LEN);
        out
    }
}

/// What `socket(AF_UNIX, type, protocol)` or `socketpair` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewUnix {
    /// `SOCK_DGRAM` (else `SOCK_STREAM`).
    pub dgram: bool,
    pub nonblock: bool,
    pub cloexec: bool,
}

/// Checks the type and protocol of an AF_UNIX socket as Linux does:
/// unknown flags `EINVAL`, a protocol other than 0 or `PF_UNIX`
/// `EPROTONOSUPPORT`; `SOCK_SEQPACKET` is not implemented
/// (`ESOCKTNOSUPPORT`).
pub fn new_unix(ty: u64, protocol: u64) -> Result<NewUnix, Errno> {
    let flags = u64::from(g::O_NONBLOCK | g::O_CLOEXEC);
    if protocol != 0 && protocol != u64::from(n::AF_UNIX) {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let dgram = match u32::try_from(ty & !flags).map_err(|_| Errno::EINVAL)? {
        n::SOCK_STREAM => false,
        n::SOCK_DGRAM => true,
        n::SOCK_SEQPACKET => return Err(Errno::ESOCKTNOSUPPORT),
        _ => return Err(Errno::EINVAL),
    };
    Ok(NewUnix {
        dgram,
        nonblock: ty & u64::from(g::O_NONBLOCK) != 0,
        cloexec: ty & u64::from(g::O_CLOEXEC) != 0,
    })
}

/// One end's view: Linux's `sk_shutdown` bits and `sk_err`.
#[derive(Clone, Copy, Debug, Default)]
struct EndState {
    open: bool,
    rd_shut: bool,
    wr_shut: bool,
    /// `ECONNRESET` when the peer closed with bytes it never read.
    error: Option<Errno>,
    /// Bumped by shutdowns and closes that change what this end sees
    /// (epoll's edge-triggered reports).
    events: u64,
    /// A datagram send found the peer closed (`ECONNREFUSED` once, then
    /// `ENOTCONN`, as Linux drops the peer).
    refused: bool,
}

/// Bytes a datagram queue holds (Linux's limit is the sender's 208 KiB
/// buffer); a larger message is `EMSGSIZE`.
pub const DGRAM_CAPACITY: usize = 64 * 1024;
/// What each message costs beyond its bytes, which bounds how many empty
/// ones fit.
const DGRAM_COST: usize = 64;
/// Messages a named socket's queue holds: Linux's `max_dgram_qlen` (10),
/// which lets one more in (`skb_queue_len > max`).
pub const DGRAM_QLEN: usize = 11;

/// Whole messages in order, each with its sender's name: one direction
/// of a datagram pair, or what a named datagram socket receives.
#[derive(Clone, Debug)]
pub struct Datagrams {
    queue: VecDeque<(UnixAddr, Vec<u8>)>,
    bytes: usize,
    /// At most this many messages wait.
    max: usize,
    /// A named socket's queue's identity, and the only sender it takes
    /// (Linux: a connected datagram socket receives from its peer only).
    id: u64,
    only: Option<u64>,
    /// Messages in and out (epoll's edge-triggered reports).
    ins: u64,
    outs: u64,
}

impl Default for Datagrams {
    fn default() -> Self {
        Datagrams {
            queue: VecDeque::new(),
            bytes: 0,
            max: usize::MAX,
            id: 0,
            only: None,
            ins: 0,
            outs: 0,
        }
    }
}

impl Datagrams {
    /// A named socket's queue, `id` telling it from the others: bounded
    /// in bytes and, as Linux's, in messages ([`DGRAM_QLEN`]), which a
    /// pair's is not.
    pub fn inbox(id: u64) -> Datagrams {
        Datagrams {
            max: DGRAM_QLEN,
            id,
            ..Datagrams::default()
        }
    }

    /// The identity given to [`Datagrams::inbox`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Takes messages only from the socket whose queue is `peer` (its
    /// owner connected there), or from anyone.
    pub fn only_from(&mut self, peer: Option<u64>) {
        self.only = peer;
    }

    /// [`Datagrams::push`] by the socket whose queue is `sender` (none if
    /// unbound): `EPERM` if this one takes another's only, as Linux's
    /// `unix_may_send`.
    pub fn send(
        &mut self,
        sender: Option<u64>,
        from: UnixAddr,
        data: &[u8],
    ) -> Result<usize, Errno> {
        if self.only.is_some() && self.only != sender {
            return Err(Errno::EPERM);
        }
        self.push(from, data)
    }

    fn room(&self) -> usize {
        DGRAM_CAPACITY.saturating_sub(self.bytes)
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a `PIPE_BUF` message would be taken now (`POLLOUT`).
    pub fn writable(&self) -> bool {
        self.room() >= PIPE_BUF && self.queue.len() < self.max
    }

    /// (messages in, messages out): epoll's edge-triggered reports.
    pub fn changes(&self) -> (u64, u64) {
        (self.ins, self.outs)
    }

    /// Queues `data` from `from`, whole or not at all: `EMSGSIZE` past
    /// [`DGRAM_CAPACITY`], `EAGAIN` when full (a blocking sender waits).
    pub fn push(&mut self, from: UnixAddr, data: &[u8]) -> Result<usize, Errno> {
        if data.len() > DGRAM_CAPACITY {
            return Err(Errno::EMSGSIZE);
        }
        let cost = data.len() + DGRAM_COST;
        if (self.room() < cost && !self.queue.is_empty()) || self.queue.len() >= self.max {
            return Err(Errno::EAGAIN);
        }
        self.queue.push_back((from, data.to_vec()));
        self.bytes = self.bytes.saturating_add(cost);
        self.ins = self.ins.wrapping_add(1);
        Ok(data.len())
    }

    /// The next message into `buf`, cut to it (the rest is lost): its
    /// length read, whether it was cut, its sender.
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<(usize, bool, UnixAddr)> {
        let (from, msg) = self.queue.pop_front()?;
        self.bytes = self.bytes.saturating_sub(msg.len() + DGRAM_COST);
        self.outs = self.outs.wrapping_add(1);
        let k = msg.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..k), msg.get(..k)) {
            dst.copy_from_slice(src);
        }
        Some((k, msg.len() > buf.len(), from))
    }
}

/// A connected pair of stream sockets, ends 0 and 1.
#[derive(Clone, Debug)]
pub struct Stream {
    /// `dirs[i]`: what end `i` writes and end `1 - i` reads.
    dirs: [Pipe; 2],
    ends: [EndState; 2],
    /// A datagram pair's directions, indexed as `dirs` (which it then
    /// leaves unused).
    dgrams: Option<[Datagrams; 2]>,
    /// The last datagram read was longer than the buffer (`MSG_TRUNC`).
    truncated: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

fn other(end: usize) -> usize {
    usize::from(end == 0)
}

impl Stream {
    /// Both ends open, nothing sent.
    pub fn new() -> Stream {
        let open = EndState {
            open: true,
            ..EndState::default()
        };
        Stream {
            dirs: [Pipe::new(), Pipe::new()],
            ends: [open, open],
            dgrams: None,
            truncated: false,
        }
    }

    /// A connected datagram pair (`socketpair(AF_UNIX, SOCK_DGRAM)`).
    pub fn datagrams() -> Stream {
        Stream {
            dgrams: Some(Default::default()),
            ..Stream::new()
        }
    }

    /// Whether this is a datagram pair.
    pub fn is_datagram(&self) -> bool {
        self.dgrams.is_some()
    }

    /// Whether the last datagram read was cut to the buffer.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn dgram(&mut self, dir: usize) -> Option<&mut Datagrams> {
        self.dgrams.as_mut().and_then(|d| d.get_mut(dir))
    }

    /// `read` of a datagram pair: one whole message, cut to `buf` (the
    /// rest is lost); an empty message reads as 0 bytes, and the peer's
    /// close is no end of file (Linux).
    fn read_datagram(&mut self, end: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        let rd_shut = self.end(end).rd_shut;
        let Some(q) = self.dgram(other(end)) else {
            return Err(Errno::EBADF);
        };
        let Some((k, cut, _)) = q.pop(buf) else {
            return if rd_shut { Ok(0) } else { Err(Errno::EAGAIN) };
        };
        self.truncated = cut;
        Ok(k)
    }

    /// `write` of a datagram pair: the whole message or nothing.
    fn write_datagram(&mut self, end: usize, data: &[u8]) -> Result<usize, Errno> {
        let me = self.end(end);
        let peer = self.end(other(end));
        if me.wr_shut || peer.rd_shut {
            return Err(Errno::EPIPE);
        }
        if !peer.open {
            let s = self.end_mut(end).ok_or(Errno::EBADF)?;
            let first = !core::mem::replace(&mut s.refused, true);
            return Err(if first {
                Errno::ECONNREFUSED
            } else {
                Errno::ENOTCONN
            });
        }
        let q = self.dgram(end).ok_or(Errno::EBADF)?;
        q.push(UnixAddr::Unnamed, data)
    }

    fn end(&self, end: usize) -> EndState {
        self.ends.get(end).copied().unwrap_or_default()
    }

    fn end_mut(&mut self, end: usize) -> Option<&mut EndState> {
        self.ends.get_mut(end)
    }

    /// `read`/`recv` on `end`: the bytes waiting first, then a pending
    /// error (once), then 0 once the reading half is shut (by this end, or
    /// the peer's `SHUT_WR` or close); else `EAGAIN` (park a blocking
    /// caller).
    pub fn read(&mut self, end: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.is_datagram() {
            return self.read_datagram(end, buf);
        }
        let me = self.end(end);
        let Some(dir) = self.dirs.get_mut(other(end)) else {
            return Err(Errno::EBADF);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        match dir.read(buf) {
            Ok(k) if k > 0 => Ok(k),
            // Empty: the peer's writer gone (EOF) or not (would block).
            r => {
                if let Some(e) = self.end_mut(end).and_then(|s| s.error.take()) {
                    return Err(e);
                }
                if me.rd_shut || r.is_ok() {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                }
            }
        }
    }

    /// `write`/`send` on `end`: `EPIPE` once this end's writing half is
    /// shut or the peer's reading half is (the server adds SIGPIPE unless
    /// `MSG_NOSIGNAL`); else the pipe's answer: a partial count, or
    /// `EAGAIN` without room.
    pub fn write(&mut self, end: usize, data: &[u8]) -> Result<usize, Errno> {
        if self.is_datagram() {
            return self.write_datagram(end, data);
        }
        if self.end(end).wr_shut {
            return Err(Errno::EPIPE);
        }
        let dir = self.dirs.get_mut(end).ok_or(Errno::EBADF)?;
        match dir.write(data) {
            Ok(k) => Ok(k),
            Err(PipeError::BrokenPipe) => Err(Errno::EPIPE),
            Err(PipeError::WouldBlock) => Err(Errno::EAGAIN),
        }
    }

    /// `shutdown(end, how)`: this end's halves, and for a stream the
    /// peer's opposite ones (Linux: `SHUT_WR` here is `RCV_SHUTDOWN`
    /// there).
    pub fn shutdown(&mut self, end: usize, rd: bool, wr: bool) {
        let peer = other(end);
        let me = self.end(end);
        if self.is_datagram() {
            if let Some(s) = self.end_mut(end) {
                s.rd_shut |= rd;
                s.wr_shut |= wr;
                s.events = s.events.wrapping_add(1);
            }
            return;
        }
        if wr && !me.wr_shut {
            if let Some(d) = self.dirs.get_mut(end) {
                d.close_writer();
            }
        }
        if rd && !me.rd_shut {
            if let Some(d) = self.dirs.get_mut(peer) {
                d.close_reader();
            }
        }
        if let Some(s) = self.end_mut(end) {
            s.rd_shut |= rd;
            s.wr_shut |= wr;
            s.events = s.events.wrapping_add(1);
        }
        if let Some(s) = self.end_mut(peer) {
            s.wr_shut |= rd;
            s.rd_shut |= wr;
            s.events = s.events.wrapping_add(1);
        }
    }

    /// The last descriptor of `end` closed: the peer sees both halves shut
    /// (EOF after the bytes sent, `EPIPE`), and `ECONNRESET` first if this
    /// end left bytes unread, as Linux's `unix_release_sock`.
    pub fn close(&mut self, end: usize) {
        if !self.end(end).open {
            return;
        }
        if self.is_datagram() {
            // The messages it would have read go; the peer sees no hang-up.
            if let Some(q) = self.dgram(other(end)) {
                *q = Datagrams::default();
            }
            if let Some(s) = self.end_mut(end) {
                s.open = false;
            }
            if let Some(s) = self.end_mut(other(end)) {
                s.events = s.events.wrapping_add(1);
            }
            return;
        }
        let unread = self.dirs.get(other(end)).is_some_and(|d| !d.is_empty());
        self.shutdown(end, true, true);
        if let Some(s) = self.end_mut(end) {
            s.open = false;
        }
        if unread {
            if let Some(s) = self.end_mut(other(end)) {
                s.error = Some(Errno::ECONNRESET);
            }
        }
    }

    /// Whether `end`'s peer has closed.
    pub fn peer_closed(&self, end: usize) -> bool {
        !self.end(other(end)).open
    }

    /// Bytes waiting for `end` (`FIONREAD`).
    pub fn pending(&self, end: usize) -> usize {
        match &self.dgrams {
            Some(d) => d.get(other(end)).map_or(0, |q| q.bytes),
            None => self.dirs.get(other(end)).map_or(0, Pipe::len),
        }
    }

    /// Free bytes in what `end` writes.
    fn room(&self, end: usize) -> usize {
        match &self.dgrams {
            Some(d) => d.get(end).map_or(0, Datagrams::room),
            None => self.dirs.get(end).map_or(0, Pipe::room),
        }
    }

    /// `poll` events of `end`, as Linux's `unix_poll`: `POLLERR` for a
    /// pending error, `POLLHUP` when both halves are shut, `POLLRDHUP` and
    /// `POLLIN` when the reading half is, `POLLIN` for bytes, `POLLOUT`
    /// when a `PIPE_BUF` write fits (or the peer is gone: the write then
    /// fails at once).
    pub fn poll(&self, end: usize) -> u32 {
        let me = self.end(end);
        let mut mask = 0;
        if me.error.is_some() {
            mask |= g::POLLERR;
        }
        if me.rd_shut && me.wr_shut {
            mask |= g::POLLHUP;
        }
        if me.rd_shut {
            mask |= g::POLLRDHUP | g::POLLIN | g::POLLRDNORM;
        }
        if self.pending(end) > 0 {
            mask |= g::POLLIN | g::POLLRDNORM;
        }
        if self.room(end) >= PIPE_BUF || self.peer_closed(end) {
            mask |= g::POLLOUT | g::POLLWRNORM | g::POLLWRBAND;
        }
        mask
    }

    /// (read side, write side) change counts of `end`, for epoll's
    /// edge-triggered reports: bytes in or a shutdown; room made or a
    /// shutdown.
    pub fn changes(&self, end: usize) -> (u64, u64) {
        let ev = self.end(end).events;
        if let Some(d) = &self.dgrams {
            let rd = d.get(other(end)).map_or(0, |q| q.changes().0);
            let wr = d.get(end).map_or(0, |q| q.changes().1);
            return (rd.wrapping_add(ev), wr.wrapping_add(ev));
        }
        let rd = self.dirs.get(other(end)).map_or(0, Pipe::reader_changes);
        let wr = self.dirs.get(end).map_or(0, Pipe::writer_changes);
        (rd.wrapping_add(ev), wr.wrapping_add(ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn addr(path: &[u8]) -> Vec<u8> {
        let mut b = vec![1u8, 0];
        b.extend_from_slice(path);
        b
    }

    #[test]
    fn addresses_decode_as_linux_reads_them() {
        assert_eq!(UnixAddr::decode(&addr(b"")), Ok(UnixAddr::Unnamed));
        assert_eq!(
            UnixAddr::decode(&addr(b"/tmp/s\0junk")),
            Ok(UnixAddr::Path(b"/tmp/s".to_vec()))
        );
        assert_eq!(
            UnixAddr::decode(&addr(b"\0hidden")),
            Ok(UnixAddr::Abstract(b"hidden".to_vec()))
        );
        assert_eq!(UnixAddr::decode(&[1]), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::decode(&[2, 0, b'x']), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::decode(&[1u8; 111]), Err(Errno::EINVAL));
        // The full 108 bytes without a NUL are a path of 108.
        let long = addr(&[b'a'; 108]);
        assert_eq!(UnixAddr::decode(&long), Ok(UnixAddr::Path(vec![b'a'; 108])));
    }

    #[test]
    fn addresses_encode_with_linux_lengths() {
        assert_eq!(UnixAddr::Unnamed.encode(), vec![1, 0]);
        assert_eq!(UnixAddr::Path(b"/s".to_vec()).encode(), addr(b"/s\0"));
        assert_eq!(UnixAddr::Abstract(b"a".to_vec()).encode(), addr(b"\0a"));
        for a in [
            UnixAddr::Path(b"/tmp/x".to_vec()),
            UnixAddr::Abstract(b"y".to_vec()),
        ] {
            assert_eq!(UnixAddr::decode(&a.encode()), Ok(a));
        }
    }

    #[test]
    fn socket_arguments() {
        let s = u64::from(n::SOCK_STREAM);
        let nb = u64::from(g::O_NONBLOCK);
        let ce = u64::from(g::O_CLOEXEC);
        assert_eq!(
            new_unix(s | nb | ce, 0),
            Ok(NewUnix {
                dgram: false,
                nonblock: true,
                cloexec: true
            })
        );
        assert!(new_unix(s, 1).is_ok());
        assert_eq!(new_unix(s, 6), Err(Errno::EPROTONOSUPPORT));
        assert!(new_unix(u64::from(n::SOCK_DGRAM), 0).is_ok_and(|w| w.dgram));
        assert_eq!(
            new_unix(u64::from(n::SOCK_SEQPACKET), 0),
            Err(Errno::ESOCKTNOSUPPORT)
        );
        assert_eq!(new_unix(s | 0x10_0000, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn both_ways_in_order() {
        let mut s = Stream::new();
        assert_eq!(s.write(0, b"ping"), Ok(4));
        assert_eq!(s.write(1, b"pong!"), Ok(5));
        let mut b = [0u8; 8];
        assert_eq!(s.read(1, &mut b), Ok(4));
        assert_eq!(&b[..4], b"ping");
        assert_eq!(s.read(1, &mut b), Err(Errno::EAGAIN));
        assert_eq!(s.read(0, &mut b), Ok(5));
        assert_eq!(&b[..5], b"pong!");
        assert_eq!(s.poll(0), g::POLLOUT | g::POLLWRNORM | g::POLLWRBAND);
    }

    #[test]
    fn a_full_buffer_would_block_and_polls_so() {
        let mut s = Stream::new();
        let big = vec![7u8; 1 << 20];
        let k = s.write(0, &big).unwrap();
        assert!(k < big.len());
        assert_eq!(s.write(0, b"x"), Err(Errno::EAGAIN));
        assert_eq!(s.poll(0) & g::POLLOUT, 0);
        assert_ne!(s.poll(1) & g::POLLIN, 0);
        assert_eq!(s.pending(1), k);
    }

    #[test]
    fn shut_wr_gives_the_peer_eof_after_the_data() {
        let mut s = Stream::new();
        s.write(0, b"last").unwrap();
        let before = s.changes(1);
        s.shutdown(0, false, true);
        assert_ne!(s.changes(1), before);
        assert_eq!(s.write(0, b"x"), Err(Errno::EPIPE));
        let mut b = [0u8; 8];
        assert_eq!(s.read(1, &mut b), Ok(4));
        assert_eq!(s.read(1, &mut b), Ok(0));
        assert_ne!(s.poll(1) & g::POLLRDHUP, 0);
        assert_eq!(s.poll(1) & g::POLLHUP, 0);
        // The other direction still works.
        assert_eq!(s.write(1, b"back"), Ok(4));
        assert_eq!(s.read(0, &mut b), Ok(4));
    }

    #[test]
    fn shut_rd_breaks_the_peers_writes() {
        let mut s = Stream::new();
        s.write(1, b"kept").unwrap();
        s.shutdown(0, true, false);
        assert_eq!(s.write(1, b"x"), Err(Errno::EPIPE));
        let mut b = [0u8; 8];
        assert_eq!(s.read(0, &mut b), Ok(4));
        assert_eq!(s.read(0, &mut b), Ok(0));
    }

    #[test]
    fn close_hangs_up_and_resets_when_bytes_were_left() {
        let mut s = Stream::new();
        s.write(0, b"unread").unwrap();
        s.write(1, b"bye").unwrap();
        s.close(1);
        assert!(s.peer_closed(0));
        let p = s.poll(0);
        assert_ne!(p & g::POLLHUP, 0);
        assert_ne!(p & g::POLLERR, 0);
        assert_ne!(p & g::POLLIN, 0);
        let mut b = [0u8; 8];
        assert_eq!(s.read(0, &mut b), Ok(3));
        assert_eq!(s.read(0, &mut b), Err(Errno::ECONNRESET));
        assert_eq!(s.read(0, &mut b), Ok(0));
        assert_eq!(s.write(0, b"x"), Err(Errno::EPIPE));
        // A clean close is no error.
        let mut s = Stream::new();
        s.close(0);
        assert_eq!(s.read(1, &mut b), Ok(0));
        assert_eq!(s.poll(1) & g::POLLERR, 0);
    }

    #[test]
    fn datagrams_keep_their_boundaries() {
        let mut s = Stream::datagrams();
        assert_eq!(s.write(0, b"one"), Ok(3));
        assert_eq!(s.write(0, b""), Ok(0));
        assert_eq!(s.write(0, b"three"), Ok(5));
        let mut b = [0u8; 4];
        assert_eq!(s.read(1, &mut b), Ok(3));
        assert!(!s.truncated());
        assert_ne!(s.poll(1) & g::POLLIN, 0);
        assert_eq!(s.read(1, &mut b), Ok(0));
        assert_eq!(s.read(1, &mut b), Ok(4));
        assert!(s.truncated());
        assert_eq!(&b, b"thre");
        assert_eq!(s.read(1, &mut b), Err(Errno::EAGAIN));
        assert_eq!(
            s.write(1, &vec![0u8; DGRAM_CAPACITY + 1]),
            Err(Errno::EMSGSIZE)
        );
    }

    #[test]
    fn datagrams_fill_and_the_peers_close_is_refusal() {
        let mut s = Stream::datagrams();
        let mut sent = 0;
        while s.write(0, &[1u8; 1000]).is_ok() {
            sent += 1;
        }
        assert!(sent > 10 && sent < 100);
        assert_eq!(s.poll(0) & g::POLLOUT, 0);
        s.close(1);
        assert_eq!(s.write(0, b"x"), Err(Errno::ECONNREFUSED));
        assert_eq!(s.write(0, b"x"), Err(Errno::ENOTCONN));
        // No end of file for a datagram socket.
        let mut b = [0u8; 4];
        assert_eq!(s.read(0, &mut b), Err(Errno::EAGAIN));
        assert_eq!(s.poll(0) & (g::POLLHUP | g::POLLIN), 0);
        s.shutdown(0, true, false);
        assert_eq!(s.read(0, &mut b), Ok(0));
    }

    #[test]
    fn an_inbox_keeps_senders_and_bounds_its_queue() {
        let mut q = Datagrams::inbox(1);
        let me = UnixAddr::Path(b"/tmp/me".to_vec());
        assert!(q.writable() && q.is_empty());
        assert_eq!(q.push(me.clone(), b"hello"), Ok(5));
        assert_eq!(q.push(UnixAddr::Unnamed, b""), Ok(0));
        assert_eq!(q.changes(), (2, 0));
        let mut b = [0u8; 3];
        assert_eq!(q.pop(&mut b), Some((3, true, me)));
        assert_eq!(&b, b"hel");
        assert_eq!(q.pop(&mut b), Some((0, false, UnixAddr::Unnamed)));
        assert_eq!(q.pop(&mut b), None);
        assert_eq!(q.changes(), (2, 2));
        // Linux's max_dgram_qlen: 11 small messages, then EAGAIN.
        for _ in 0..DGRAM_QLEN {
            assert_eq!(q.push(UnixAddr::Unnamed, b"x"), Ok(1));
        }
        assert!(!q.writable());
        assert_eq!(q.push(UnixAddr::Unnamed, b"x"), Err(Errno::EAGAIN));
        assert!(q.pop(&mut b).is_some());
        assert!(q.writable());
        // Bytes bound it too; a message beyond the capacity never fits.
        let mut q = Datagrams::inbox(1);
        assert_eq!(q.push(UnixAddr::Unnamed, &vec![1u8; 40_000]), Ok(40_000));
        assert_eq!(
            q.push(UnixAddr::Unnamed, &vec![1u8; 40_000]),
            Err(Errno::EAGAIN)
        );
        assert_eq!(
            q.push(UnixAddr::Unnamed, &vec![1u8; DGRAM_CAPACITY + 1]),
            Err(Errno::EMSGSIZE)
        );
        // A connected receiver takes its peer's messages only.
        let mut q = Datagrams::inbox(1);
        assert_eq!(q.id(), 1);
        q.only_from(Some(7));
        assert_eq!(q.send(None, UnixAddr::Unnamed, b"x"), Err(Errno::EPERM));
        assert_eq!(q.send(Some(8), UnixAddr::Unnamed, b"x"), Err(Errno::EPERM));
        assert_eq!(q.send(Some(7), UnixAddr::Unnamed, b"x"), Ok(1));
        q.only_from(None);
        assert_eq!(q.send(None, UnixAddr::Unnamed, b"x"), Ok(1));
        // One message as large as the capacity fits an empty queue.
        let mut q = Datagrams::inbox(1);
        assert!(q
            .push(UnixAddr::Unnamed, &vec![1u8; DGRAM_CAPACITY])
            .is_ok());
    }
}
