//! AF_INET sockets as Linux programs see them: `struct sockaddr_in`,
//! `socket`'s domain and type, the socket options kept per socket, and
//! which errors raise SIGPIPE. The process server puts these on the
//! network service's sockets (`services/posix_server/src/inet.rs`).

use linux_raw_sys::general as g;
use linux_raw_sys::net as n;

use crate::errno::Errno;

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `IPPROTO_TCP` (an enum in linux-raw-sys).
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u32 = 17;
/// `IPPROTO_IP`: options of that level are accepted and ignored.
pub const IPPROTO_IP: u32 = 0;

/// An IPv4 address and port, as the network service names them (address
/// bytes in network order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockAddr {
    pub addr: [u8; 4],
    pub port: u16,
}

impl SockAddr {
    /// Reads a `struct sockaddr_in` a process passed (`bytes` is what its
    /// length said, at most [`SOCKADDR_IN_LEN`] read): `EAFNOSUPPORT` for
    /// another family, `EINVAL` when too short.
    pub fn decode(bytes: &[u8]) -> Result<SockAddr, Errno> {
        let family: [u8; 2] = bytes
            .get(..2)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        if u32::from(u16::from_le_bytes(family)) != n::AF_INET {
            return Err(Errno::EAFNOSUPPORT);
        }
        let b: [u8; SOCKADDR_IN_LEN] = bytes
            .get(..SOCKADDR_IN_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        let [_, _, p0, p1, a0, a1, a2, a3, ..] = b;
        Ok(SockAddr {
            addr: [a0, a1, a2, a3],
            port: u16::from_be_bytes([p0, p1]),
        })
    }

    /// The `struct sockaddr_in` of this address.
    pub fn encode(self) -> [u8; SOCKADDR_IN_LEN] {
        let [f0, f1] = (n::AF_INET as u16).to_le_bytes();
        let [p0, p1] = self.port.to_be_bytes();
        let [a0, a1, a2, a3] = self.addr;
        [f0, f1, p0, p1, a0, a1, a2, a3, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    /// 0.0.0.0: any of the machine's addresses.
    pub fn is_any(self) -> bool {
        self.addr == [0; 4]
    }
}

/// The bytes of an address a call returns into a buffer of `room` bytes
/// (Linux truncates and still reports the full length).
pub fn truncated(encoded: &[u8; SOCKADDR_IN_LEN], room: u32) -> &[u8] {
    let n = (room as usize).min(SOCKADDR_IN_LEN);
    encoded.get(..n).unwrap_or(&[])
}

/// A socket's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Dgram,
}

impl Kind {
    /// Its `SO_TYPE`.
    pub fn so_type(self) -> i32 {
        match self {
            Kind::Stream => n::SOCK_STREAM as i32,
            Kind::Dgram => n::SOCK_DGRAM as i32,
        }
    }
}

/// What `socket(domain, type, protocol)` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewSocket {
    pub kind: Kind,
    pub nonblock: bool,
    pub cloexec: bool,
}

/// Checks `socket`'s arguments as Linux does: another family is
/// `EAFNOSUPPORT`, another type `EINVAL` (unknown flags) or
/// `ESOCKTNOSUPPORT`-like `EPROTONOSUPPORT` for a protocol that does not
/// fit the type.
pub fn new_socket(domain: u64, ty: u64, protocol: u64) -> Result<NewSocket, Errno> {
    if domain != u64::from(n::AF_INET) {
        return Err(Errno::EAFNOSUPPORT);
    }
    let flags = u64::from(g::O_NONBLOCK | g::O_CLOEXEC);
    let base = ty & !flags;
    let kind = match u32::try_from(base).map_err(|_| Errno::EINVAL)? {
        n::SOCK_STREAM => Kind::Stream,
        n::SOCK_DGRAM => Kind::Dgram,
        _ => return Err(Errno::EINVAL),
    };
    let fits = match kind {
        Kind::Stream => protocol == 0 || protocol == u64::from(IPPROTO_TCP),
        Kind::Dgram => protocol == 0 || protocol == u64::from(IPPROTO_UDP),
    };
    if !fits {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(NewSocket {
        kind,
        nonblock: ty & u64::from(g::O_NONBLOCK) != 0,
        cloexec: ty & u64::from(g::O_CLOEXEC) != 0,
    })
}

/// The options a socket keeps: accepted, reported back, and (but for the
/// buffer sizes, which the service fixes) not otherwise acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub reuseaddr: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub broadcast: bool,
    pub rcvbuf: i32,
    pub sndbuf: i32,
}

impl Default for Options {
    fn default() -> Self {
        // The network service's buffers (services/netstack_server/README.md).
        Options {
            reuseaddr: false,
            keepalive: false,
            nodelay: false,
            broadcast: false,
            rcvbuf: 64 * 1024,
            sndbuf: 32 * 1024,
        }
    }
}

/// An option the socket answers itself rather than from [`Options`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `SO_ERROR`: the pending error, cleared.
    Error,
    /// `SO_TYPE`.
    Type,
    /// A value of [`Options`].
    Value(i32),
}

/// The `int` an option call passes (`optlen` at least 4).
pub fn int_value(bytes: &[u8]) -> Result<i32, Errno> {
    let b: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(Errno::EINVAL)?;
    Ok(i32::from_le_bytes(b))
}

impl Options {
    /// `setsockopt(level, name)` with `value`: `ENOPROTOOPT` for an
    /// option not kept. Linux doubles the buffer sizes it is given.
    pub fn set(&mut self, level: u32, name: u32, value: i32) -> Result<(), Errno> {
        let on = value != 0;
        match (level, name) {
            (n::SOL_SOCKET, n::SO_REUSEADDR) => self.reuseaddr = on,
            (n::SOL_SOCKET, n::SO_REUSEPORT) => {}
            (n::SOL_SOCKET, n::SO_KEEPALIVE) => self.keepalive = on,
            (n::SOL_SOCKET, n::SO_BROADCAST) => self.broadcast = on,
            (n::SOL_SOCKET, n::SO_RCVBUF) => self.rcvbuf = value.clamp(1152, i32::MAX / 2) * 2,
            (n::SOL_SOCKET, n::SO_SNDBUF) => self.sndbuf = value.clamp(2304, i32::MAX / 2) * 2,
            (IPPROTO_TCP, n::TCP_NODELAY) => self.nodelay = on,
            // TOS, TTL and the like: accepted, the service sets its own.
            (IPPROTO_IP, _) => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// What `getsockopt(level, name)` reports.
    pub fn get(&self, level: u32, name: u32) -> Result<Query, Errno> {
        Ok(match (level, name) {
            (n::SOL_SOCKET, n::SO_ERROR) => Query::Error,
            (n::SOL_SOCKET, n::SO_TYPE) => Query::Type,
            (n::SOL_SOCKET, n::SO_REUSEADDR) => Query::Value(i32::from(self.reuseaddr)),
            (n::SOL_SOCKET, n::SO_REUSEPORT) => Query::Value(0),
            (n::SOL_SOCKET, n::SO_KEEPALIVE) => Query::Value(i32::from(self.keepalive)),
            (n::SOL_SOCKET, n::SO_BROADCAST) => Query::Value(i32::from(self.broadcast)),
            (n::SOL_SOCKET, n::SO_RCVBUF) => Query::Value(self.rcvbuf),
            (n::SOL_SOCKET, n::SO_SNDBUF) => Query::Value(self.sndbuf),
            (IPPROTO_TCP, n::TCP_NODELAY) => Query::Value(i32::from(self.nodelay)),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}

/// `send` flags this layer understands; others are `EOPNOTSUPP`.
pub const SEND_FLAGS: u32 = n::MSG_NOSIGNAL | n::MSG_DONTWAIT;
/// `recv` flags this layer understands (`MSG_PEEK` is not: the service
/// cannot give bytes back).
pub const RECV_FLAGS: u32 = n::MSG_DONTWAIT;

/// Whether a failed send raises SIGPIPE: `EPIPE` without `MSG_NOSIGNAL`.
pub fn sigpipe(e: Errno, flags: u32) -> bool {
    e == Errno::EPIPE && flags & n::MSG_NOSIGNAL == 0
}

/// Whether a call with `flags` must not wait.
pub fn dontwait(flags: u32) -> bool {
    flags & n::MSG_DONTWAIT != 0
}

/// `shutdown`'s `how`: (reading half, writing half) closed.
pub fn shutdown_how(how: u64) -> Result<(bool, bool), Errno> {
    match u32::try_from(how).map_err(|_| Errno::EINVAL)? {
        n::SHUT_RD => Ok((true, false)),
        n::SHUT_WR => Ok((false, true)),
        n::SHUT_RDWR => Ok((true, true)),
        _ => Err(Errno::EINVAL),
    }
}

/// The fields of a `struct msghdr` this layer uses: the address and its
/// length, the iovec array and its count. Ancillary data is refused
/// (`EOPNOTSUPP`) when sent and reported empty when received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    pub name: u64,
    pub namelen: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

/// `sizeof(struct msghdr)` on x86_64.
pub const MSGHDR_LEN: usize = 56;
/// Offset of `msg_flags`, written on receive.
pub const MSGHDR_FLAGS_AT: u64 = 48;
/// Offset of `msg_controllen`, zeroed on receive.
pub const MSGHDR_CONTROLLEN_AT: u64 = 40;
/// Offset of `msg_namelen`, updated on receive.
pub const MSGHDR_NAMELEN_AT: u64 = 8;

impl MsgHdr {
    pub fn decode(b: &[u8; MSGHDR_LEN]) -> MsgHdr {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            if let Some(src) = b.get(at..at + 8) {
                w.copy_from_slice(src);
            }
            u64::from_le_bytes(w)
        };
        MsgHdr {
            name: word(0),
            namelen: word(8) as u32,
            iov: word(16),
            iovlen: word(24),
            control: word(32),
            controllen: word(40),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips_in_network_order() {
        let a = SockAddr {
            addr: [10, 0, 2, 15],
            port: 8000,
        };
        let b = a.encode();
        assert_eq!(&b[..8], &[2, 0, 0x1f, 0x40, 10, 0, 2, 15]);
        assert_eq!(SockAddr::decode(&b), Ok(a));
        assert!(SockAddr::default().is_any());
    }

    #[test]
    fn other_families_and_short_addresses_are_refused() {
        let mut b = SockAddr::default().encode();
        b[0] = n::AF_INET6 as u8;
        assert_eq!(SockAddr::decode(&b), Err(Errno::EAFNOSUPPORT));
        let b = SockAddr::default().encode();
        assert_eq!(SockAddr::decode(&b[..8]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::decode(&[]), Err(Errno::EINVAL));
        assert_eq!(truncated(&b, 4).len(), 4);
        assert_eq!(truncated(&b, 100).len(), 16);
    }

    #[test]
    fn socket_arguments() {
        let inet = u64::from(n::AF_INET);
        let s = new_socket(
            inet,
            u64::from(n::SOCK_STREAM | g::O_NONBLOCK | g::O_CLOEXEC),
            0,
        );
        assert_eq!(
            s,
            Ok(NewSocket {
                kind: Kind::Stream,
                nonblock: true,
                cloexec: true
            })
        );
        assert_eq!(
            new_socket(inet, u64::from(n::SOCK_DGRAM), 17).map(|s| s.kind),
            Ok(Kind::Dgram)
        );
        assert_eq!(
            new_socket(u64::from(n::AF_INET6), 1, 0),
            Err(Errno::EAFNOSUPPORT)
        );
        assert_eq!(
            new_socket(u64::from(n::AF_UNIX), 1, 0),
            Err(Errno::EAFNOSUPPORT)
        );
        assert_eq!(new_socket(inet, 3, 0), Err(Errno::EINVAL));
        assert_eq!(new_socket(inet, 1, 17), Err(Errno::EPROTONOSUPPORT));
        assert_eq!(new_socket(inet, u64::MAX, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn options_are_kept_and_reported() {
        let mut o = Options::default();
        o.set(n::SOL_SOCKET, n::SO_REUSEADDR, 1).unwrap();
        o.set(IPPROTO_TCP, n::TCP_NODELAY, 1).unwrap();
        o.set(n::SOL_SOCKET, n::SO_KEEPALIVE, 5).unwrap();
        o.set(n::SOL_SOCKET, n::SO_RCVBUF, 4096).unwrap();
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_REUSEADDR), Ok(Query::Value(1)));
        assert_eq!(o.get(IPPROTO_TCP, n::TCP_NODELAY), Ok(Query::Value(1)));
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_KEEPALIVE), Ok(Query::Value(1)));
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_RCVBUF), Ok(Query::Value(8192)));
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_ERROR), Ok(Query::Error));
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_TYPE), Ok(Query::Type));
        assert_eq!(o.set(99, 1, 1), Err(Errno::ENOPROTOOPT));
        assert_eq!(o.get(n::SOL_SOCKET, 999), Err(Errno::ENOPROTOOPT));
        o.set(n::SOL_SOCKET, n::SO_SNDBUF, -5).unwrap();
        assert_eq!(o.get(n::SOL_SOCKET, n::SO_SNDBUF), Ok(Query::Value(4608)));
        assert_eq!(int_value(&[1, 0]), Err(Errno::EINVAL));
        assert_eq!(int_value(&7i32.to_le_bytes()), Ok(7));
    }

    #[test]
    fn sigpipe_shutdown_and_msghdr() {
        assert!(sigpipe(Errno::EPIPE, 0));
        assert!(!sigpipe(Errno::EPIPE, n::MSG_NOSIGNAL));
        assert!(!sigpipe(Errno::ECONNREFUSED, 0));
        assert!(dontwait(n::MSG_DONTWAIT));
        assert_eq!(shutdown_how(1), Ok((false, true)));
        assert_eq!(shutdown_how(2), Ok((true, true)));
        assert_eq!(shutdown_how(3), Err(Errno::EINVAL));
        let mut b = [0u8; MSGHDR_LEN];
        b[0] = 0x10;
        b[8] = 16;
        b[16] = 0x20;
        b[24] = 2;
        let m = MsgHdr::decode(&b);
        assert_eq!((m.name, m.namelen, m.iov, m.iovlen), (0x10, 16, 0x20, 2));
    }
}
