//! The sockets protocol: how a client uses TCP and UDP sockets of the
//! network service: the wire types and the service's [`check`]. The
//! service is `services/netstack`; native components use the client
//! library `kaal_client::socket`.
//!
//! # Channels: one set per client
//!
//! Each client has its own three channels to the service, named in the
//! manifest:
//!
//! - `socket.request`: a ring of [`Request`]s, client to service;
//! - `socket.completion`: a ring of [`Completion`]s, service to client;
//! - `socket.data`: a memory region both map, where the bytes sent and
//!   received are; a request names a range of it by offset and length.
//!
//! Nothing is shared between clients: a client that corrupts its rings or
//! its region harms only itself. Socket ids are indices into the client's
//! own table (0 up to the service's per-client limit), so a client cannot
//! even name another client's socket; an id it did not open is `EBADF`.
//!
//! # Non-blocking, with readiness
//!
//! No operation waits for the network. One that cannot make progress now
//! completes at once with [`Errno::EAGAIN`] (a `CONNECT` with
//! [`Errno::EINPROGRESS`]), as a POSIX socket in non-blocking mode does.
//! Every completion carries the socket's readiness afterwards
//! ([`events`]: readable, writable, hang-up, error: what `poll` reports).
//! A client that wants to wait sends `WATCH` with the events it cares
//! about; from then on the service posts a [`completion::EVENT`] completion
//! (with the `WATCH`'s tag) each time one of them becomes ready, and the
//! client waits on its notification. A `poll` over several sockets is the
//! client library's table of the last readiness seen per socket.
//!
//! Readiness is a state, not a count: the service keeps at most one event
//! pending per socket, merging later changes into it, so events never
//! overflow the completion ring. The service takes a request only when
//! the completion ring has room for its answer, so that ring never
//! overflows either; a client that does not read its completions stalls
//! only itself.
//!
//! # Data in batches
//!
//! A client fills several ranges of its region, puts one request per range
//! on the ring and signals once; the service serves every request it finds
//! and signals once. `SEND` copies out of the range at the time it is
//! served and may take fewer bytes than asked (the completion's `value`);
//! `RECV` copies in at most `len` bytes. The region's size is the
//! manifest's `bytes`.
//!
//! # Errors
//!
//! A completion's `status` is an [`Errno`], numbered as Linux numbers
//! errno (0 is success), so a POSIX layer passes it on unchanged.
//!
//! # The service trusts nothing
//!
//! [`check`] refuses an unknown operation (`ENOSYS`), a socket id beyond
//! the client's table (`EBADF`), a range outside the region or one that
//! wraps (`EFAULT`), an empty range, unknown flags or a port 0 where one
//! is needed (`EINVAL`). The service answers with that code and goes on
//! serving; the client's sockets and everyone else's are untouched.
//! Whether an id names an *open* socket of the right kind and state is the
//! service's table to say (`EBADF`, `ENOTCONN`, `EOPNOTSUPP`, ...).
//!
//! Addresses are IPv4, as 4 bytes in network order, with a port.
//!
//! # Restarts
//!
//! The service's first completion on every client's ring, before any
//! answer, is [`completion::RESTART`]: at a restart of the service it tells
//! the client that every socket it had is gone and that requests the old
//! service took will never be answered. A client that restarts sends
//! [`op::RESET`] first, which closes every socket its earlier life left
//! open.

pub mod client;
pub mod conns;

/// Slots of each socket ring (the manifest's `slots`; `slot_bytes = 64`).
pub const RING_SLOTS: usize = 64;

/// What a request asks.
pub mod op {
    /// A new socket: `flags` is [`super::kind::TCP`] or
    /// [`super::kind::UDP`]. The completion's `value` is its id.
    pub const OPEN: u32 = 1;
    /// Bind to `addr` (0.0.0.0 or the service's own) and `port` (0: any,
    /// for UDP).
    pub const BIND: u32 = 2;
    /// TCP: accept connections; `flags` is the backlog, which the service
    /// clamps to its own limit (0 counts as 1).
    pub const LISTEN: u32 = 3;
    /// TCP: take a pending connection of a listening socket. The
    /// completion's `value` is the new socket's id, `addr`/`port` the peer.
    pub const ACCEPT: u32 = 4;
    /// TCP: connect to `addr`:`port`. Completes with `EINPROGRESS`; the
    /// socket becomes writable once connected, or reports an error event
    /// (`ECONNREFUSED`, `ETIMEDOUT`, ...).
    pub const CONNECT: u32 = 5;
    /// TCP: send the range `offset`..`offset + len`; `value` is the bytes
    /// taken (at least 1), else `EAGAIN`.
    pub const SEND: u32 = 6;
    /// TCP: receive into the range; `value` is the bytes written, 0 when
    /// the peer has closed its half and all was read.
    pub const RECV: u32 = 7;
    /// UDP: the range as one datagram to `addr`:`port`.
    pub const SEND_TO: u32 = 8;
    /// UDP: one datagram into the range (the rest of a longer one is
    /// dropped); `addr`/`port` is its source.
    pub const RECV_FROM: u32 = 9;
    /// TCP: close the sending half (a FIN); `flags` must be
    /// [`super::SHUT_WR`].
    pub const SHUTDOWN: u32 = 10;
    /// Close the socket and free its id; `flags` [`super::CLOSE_RESET`]
    /// aborts a TCP connection with a reset instead of a FIN.
    pub const CLOSE: u32 = 11;
    /// Post [`super::completion::EVENT`]s when any of `flags` ([`super::events`])
    /// becomes ready; 0 stops them.
    pub const WATCH: u32 = 12;
    /// Close every socket of this client (with a reset); `value` is how
    /// many. A client library sends it when it starts, so that what a
    /// client left open before a restart of its own is freed.
    pub const RESET: u32 = 13;
    /// The service's counters ([`super::Stats`]) into the range (at most
    /// its size); `value` is the bytes written. Not a socket operation:
    /// `socket` is not read.
    pub const STATS: u32 = 14;
    /// Wake me at a time: `offset` is a deadline on the service's clock
    /// (TSC ticks on seL4; 0 cancels). Once it has passed, the service
    /// posts a [`super::completion::ALARM`] with this request's tag, so a
    /// client waiting for readiness until a deadline can sleep on its
    /// completion ring instead of looking again and again. One per client:
    /// a later `ALARM` replaces one not yet due. The reply comes at once.
    pub const ALARM: u32 = 15;
    /// The socket's local endpoint in the completion's `addr`/`port`
    /// (`getsockname`): a connection's is the address and port its peer
    /// reached, which a listener bound to 0.0.0.0 does not say; an
    /// unbound socket's is 0.0.0.0:0.
    pub const LOCAL: u32 = 16;
}

/// Socket kinds, the `flags` of [`op::OPEN`].
pub mod kind {
    pub const TCP: u32 = 1;
    pub const UDP: u32 = 2;
}

/// What a completion is (its `kind`).
pub mod completion {
    /// The answer to the request with its tag.
    pub const REPLY: u16 = 1;
    /// A readiness change of a watched socket, with the `WATCH`'s tag; its
    /// `status` is the socket's pending error, if any.
    pub const EVENT: u16 = 2;
    /// The service has (re)started: the client's socket table is empty,
    /// and requests taken before it will not be answered. The service's
    /// first completion on the ring.
    pub const RESTART: u16 = 3;
    /// The deadline of the client's [`op::ALARM`] (with its tag) has passed.
    pub const ALARM: u16 = 4;
}

/// Readiness bits: a completion's `events` and [`op::WATCH`]'s `flags`.
pub mod events {
    /// `RECV` would not say `EAGAIN`: data, the peer's FIN, a datagram, or
    /// (on a listener) a pending connection (`POLLIN`).
    pub const READABLE: u32 = 1;
    /// `SEND` would take bytes; a `CONNECT` has completed (`POLLOUT`).
    pub const WRITABLE: u32 = 2;
    /// The peer closed its sending half (`POLLHUP` / `POLLRDHUP`).
    pub const HANGUP: u32 = 4;
    /// The connection failed or was reset (`POLLERR`).
    pub const ERROR: u32 = 8;
    pub const ALL: u32 = READABLE | WRITABLE | HANGUP | ERROR;
}

/// [`op::SHUTDOWN`]'s `flags`: close the sending half.
pub const SHUT_WR: u32 = 1;
/// [`op::CLOSE`]'s `flags`: abort with a reset.
pub const CLOSE_RESET: u32 = 1;

/// A request, client to service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Request {
    /// Chosen by the client; returned in the completion.
    pub tag: u64,
    /// An [`op`].
    pub op: u32,
    /// The socket's id (not read by `OPEN`).
    pub socket: u32,
    /// The range in the data region, in bytes (`SEND`, `RECV`, `SEND_TO`,
    /// `RECV_FROM`).
    pub offset: u64,
    pub len: u32,
    /// Per operation: socket kind, backlog, `SHUT_WR`, `CLOSE_RESET`,
    /// watched events.
    pub flags: u32,
    /// IPv4 address, network order (`BIND`, `CONNECT`, `SEND_TO`).
    pub addr: [u8; 4],
    pub port: u16,
    pub _pad: u16,
}

/// A completion, service to client.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Completion {
    pub tag: u64,
    /// An [`Errno`] code; 0 is success.
    pub status: u32,
    pub socket: u32,
    /// Bytes moved, or a new socket's id (`OPEN`, `ACCEPT`).
    pub value: u64,
    /// The socket's readiness after the operation ([`events`]).
    pub events: u32,
    /// The peer (`ACCEPT`), a datagram's source (`RECV_FROM`) or the
    /// socket's own endpoint (`LOCAL`).
    pub addr: [u8; 4],
    pub port: u16,
    /// [`completion::REPLY`] or [`completion::EVENT`].
    pub kind: u16,
    pub _pad: u32,
}

/// The service's counters, as [`op::STATS`] writes them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Stats {
    /// Frames from the wire handed to the stack, and their bytes.
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Frames sent, and their bytes.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Frames dropped before the stack: malformed, or of a protocol it
    /// does not speak.
    pub malformed: u64,
    pub unsupported: u64,
    /// TSC ticks the service spent serving (not waiting).
    pub busy_ticks: u64,
    /// Connections accepted; pending ones their peers aborted first.
    pub accepted: u64,
    pub aborted_pending: u64,
    /// Requests refused by [`check`].
    pub refused: u64,
    /// Frames the stack made that the link had no room for (an answer to
    /// a frame received while the driver's ring was full).
    pub dropped_out: u64,
}

const _: () = assert!(core::mem::size_of::<Request>() == 40);
const _: () = assert!(core::mem::size_of::<Completion>() == 40);

impl Completion {
    /// The answer to `r`.
    pub fn reply(r: &Request, status: Result<u64, Errno>, events: u32) -> Completion {
        let (status, value) = match status {
            Ok(v) => (0, v),
            Err(e) => (e as u32, 0),
        };
        Completion {
            tag: r.tag,
            status,
            socket: r.socket,
            value,
            events,
            kind: completion::REPLY,
            ..Completion::default()
        }
    }

    /// The status as a result: `Ok(value)` or the error.
    pub fn result(&self) -> Result<u64, Option<Errno>> {
        match self.status {
            0 => Ok(self.value),
            c => Err(Errno::from_code(c)),
        }
    }
}

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// Why an operation failed: Linux's errno numbers, so that a POSIX
        /// layer passes them on as they are.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum Errno {
            $($(#[$doc])* $name = $code,)*
        }

        impl Errno {
            /// Every code, for tables and tests.
            pub const ALL: &'static [Errno] = &[$(Errno::$name,)*];

            /// The error of a completion's `status` (`None` for 0 and for
            /// codes this protocol does not have).
            pub fn from_code(code: u32) -> Option<Errno> {
                match code {
                    $($code => Some(Errno::$name),)*
                    _ => None,
                }
            }

            /// Its POSIX name, `"ECONNREFUSED"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Errno::$name => stringify!($name),)*
                }
            }
        }
    };
}

errnos! {
    /// An id that is not an open socket of this client.
    EBADF = 9,
    /// Nothing now: no data, no room, no pending connection.
    EAGAIN = 11,
    /// The range is not inside the data region.
    EFAULT = 14,
    /// A bad argument: empty range, unknown flags, port 0, wrong state.
    EINVAL = 22,
    /// The client's socket table is full.
    EMFILE = 24,
    /// Sending after `SHUTDOWN` or `CLOSE` of the sending half.
    EPIPE = 32,
    /// Not an operation of the protocol.
    ENOSYS = 38,
    /// A datagram larger than the service sends.
    EMSGSIZE = 90,
    /// The operation does not apply to this kind of socket.
    EOPNOTSUPP = 95,
    /// The port is bound already.
    EADDRINUSE = 98,
    /// Not an address of this machine.
    EADDRNOTAVAIL = 99,
    /// No route: the interface has no address yet.
    ENETUNREACH = 101,
    /// The peer reset the connection.
    ECONNRESET = 104,
    /// The service is out of socket buffers.
    ENOBUFS = 105,
    /// `CONNECT` on a connected socket.
    EISCONN = 106,
    /// `SEND`/`RECV` on a socket that is not connected.
    ENOTCONN = 107,
    /// The peer did not answer.
    ETIMEDOUT = 110,
    /// Nobody listens at the peer's port.
    ECONNREFUSED = 111,
    /// A `CONNECT` is under way.
    EALREADY = 114,
    /// The network service restarted: the socket is gone.
    ENETRESET = 102,
    /// Linux's code for a connection aborted before it was accepted. This
    /// service does not answer with it: a pending connection its peer
    /// aborts is dropped before `ACCEPT` can see it.
    ECONNABORTED = 103,
    /// `CONNECT` started; wait for writable or error.
    EINPROGRESS = 115,
}

/// A range of the data region that passed [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub offset: usize,
    pub len: usize,
}

/// An IPv4 address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: [u8; 4],
    pub port: u16,
}

/// A request that passed [`check`]; `socket` is below the client's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Open {
        tcp: bool,
    },
    Bind {
        socket: u32,
        at: Endpoint,
    },
    Listen {
        socket: u32,
        backlog: u32,
    },
    Accept {
        socket: u32,
    },
    Connect {
        socket: u32,
        to: Endpoint,
    },
    Send {
        socket: u32,
        range: Range,
    },
    Recv {
        socket: u32,
        range: Range,
    },
    SendTo {
        socket: u32,
        range: Range,
        to: Endpoint,
    },
    RecvFrom {
        socket: u32,
        range: Range,
    },
    Shutdown {
        socket: u32,
    },
    Close {
        socket: u32,
        reset: bool,
    },
    Watch {
        socket: u32,
        events: u32,
    },
    Reset,
    Stats {
        range: Range,
    },
    Alarm {
        at: u64,
    },
    Local {
        socket: u32,
    },
}

/// Checks a request from a client with a data region of `region` bytes
/// and a socket table of `max_sockets` entries.
pub fn check(r: &Request, region: u64, max_sockets: u32) -> Result<Checked, Errno> {
    let socket = || {
        if r.socket < max_sockets {
            Ok(r.socket)
        } else {
            Err(Errno::EBADF)
        }
    };
    let range = || {
        let end = r.offset.checked_add(u64::from(r.len));
        if end.is_none_or(|e| e > region) {
            return Err(Errno::EFAULT);
        }
        // Zero bytes would be a RECV that says "end of stream" falsely.
        if r.len == 0 {
            return Err(Errno::EINVAL);
        }
        let offset = usize::try_from(r.offset).map_err(|_| Errno::EFAULT)?;
        let len = usize::try_from(r.len).map_err(|_| Errno::EFAULT)?;
        Ok(Range { offset, len })
    };
    let peer = || {
        if r.port == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Endpoint {
            addr: r.addr,
            port: r.port,
        })
    };
    let flags = |allowed: u32| {
        if r.flags & !allowed == 0 {
            Ok(r.flags)
        } else {
            Err(Errno::EINVAL)
        }
    };
    Ok(match r.op {
        op::OPEN => match r.flags {
            kind::TCP => Checked::Open { tcp: true },
            kind::UDP => Checked::Open { tcp: false },
            _ => return Err(Errno::EINVAL),
        },
        op::BIND => Checked::Bind {
            socket: socket()?,
            at: Endpoint {
                addr: r.addr,
                port: r.port,
            },
        },
        op::LISTEN => Checked::Listen {
            socket: socket()?,
            backlog: r.flags.max(1),
        },
        op::ACCEPT => Checked::Accept { socket: socket()? },
        op::CONNECT => Checked::Connect {
            socket: socket()?,
            to: peer()?,
        },
        op::SEND => Checked::Send {
            socket: socket()?,
            range: range()?,
        },
        op::RECV => Checked::Recv {
            socket: socket()?,
            range: range()?,
        },
        op::SEND_TO => Checked::SendTo {
            socket: socket()?,
            range: range()?,
            to: peer()?,
        },
        op::RECV_FROM => Checked::RecvFrom {
            socket: socket()?,
            range: range()?,
        },
        op::SHUTDOWN => {
            let socket = socket()?;
            if r.flags != SHUT_WR {
                return Err(Errno::EINVAL);
            }
            Checked::Shutdown { socket }
        }
        op::CLOSE => Checked::Close {
            socket: socket()?,
            reset: flags(CLOSE_RESET)? == CLOSE_RESET,
        },
        op::WATCH => Checked::Watch {
            socket: socket()?,
            events: flags(events::ALL)?,
        },
        op::RESET => Checked::Reset,
        op::STATS => Checked::Stats { range: range()? },
        op::LOCAL => Checked::Local { socket: socket()? },
        op::ALARM => Checked::Alarm { at: r.offset },
        _ => return Err(Errno::ENOSYS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: u64 = 64 * 1024;
    const SOCKETS: u32 = 16;

    fn req(op: u32, socket: u32, offset: u64, len: u32) -> Request {
        Request {
            tag: 9,
            op,
            socket,
            offset,
            len,
            ..Request::default()
        }
    }

    fn checked(r: Request) -> Result<Checked, Errno> {
        check(&r, REGION, SOCKETS)
    }

    #[test]
    fn ranges_must_lie_in_the_region_and_not_be_empty() {
        assert_eq!(
            checked(req(op::SEND, 3, 4096, 1000)),
            Ok(Checked::Send {
                socket: 3,
                range: Range {
                    offset: 4096,
                    len: 1000
                }
            })
        );
        // The whole region, and its last byte.
        assert!(checked(req(op::RECV, 0, 0, REGION as u32)).is_ok());
        assert!(checked(req(op::RECV, 0, REGION - 1, 1)).is_ok());
        // One byte past the end, an offset past it, and one that wraps.
        assert_eq!(checked(req(op::RECV, 0, REGION - 1, 2)), Err(Errno::EFAULT));
        assert_eq!(checked(req(op::SEND, 0, REGION, 1)), Err(Errno::EFAULT));
        assert_eq!(
            checked(req(op::SEND, 0, u64::MAX - 10, 100)),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            checked(req(op::RECV_FROM, 0, u64::MAX, u32::MAX)),
            Err(Errno::EFAULT)
        );
        // Empty, where bytes are moved.
        for o in [op::SEND, op::RECV, op::RECV_FROM] {
            assert_eq!(checked(req(o, 0, 0, 0)), Err(Errno::EINVAL), "op {o}");
        }
        // Operations that move no bytes do not look at the range.
        assert_eq!(
            checked(req(op::ACCEPT, 1, u64::MAX, u32::MAX)),
            Ok(Checked::Accept { socket: 1 })
        );
    }

    #[test]
    fn bad_operations_ids_and_flags_are_refused() {
        assert_eq!(checked(req(0, 0, 0, 1)), Err(Errno::ENOSYS));
        assert_eq!(checked(req(op::LOCAL + 1, 0, 0, 1)), Err(Errno::ENOSYS));
        assert_eq!(
            checked(req(op::LOCAL, 3, 0, 0)),
            Ok(Checked::Local { socket: 3 })
        );
        assert_eq!(
            checked(req(op::ALARM, u32::MAX, 77, 0)),
            Ok(Checked::Alarm { at: 77 })
        );
        assert_eq!(checked(req(op::RESET, u32::MAX, 0, 0)), Ok(Checked::Reset));
        assert_eq!(checked(req(u32::MAX, 0, 0, 1)), Err(Errno::ENOSYS));
        // Ids beyond the client's table, whatever the operation.
        for o in [op::BIND, op::SEND, op::CLOSE, op::WATCH, op::LOCAL] {
            assert_eq!(checked(req(o, SOCKETS, 0, 1)), Err(Errno::EBADF));
            assert_eq!(checked(req(o, u32::MAX, 0, 1)), Err(Errno::EBADF));
        }
        // OPEN names no socket, only a kind.
        let open = |flags| {
            checked(Request {
                flags,
                ..req(op::OPEN, u32::MAX, 0, 0)
            })
        };
        assert_eq!(open(kind::TCP), Ok(Checked::Open { tcp: true }));
        assert_eq!(open(kind::UDP), Ok(Checked::Open { tcp: false }));
        assert_eq!(open(0), Err(Errno::EINVAL));
        assert_eq!(open(3), Err(Errno::EINVAL));
        let with = |o, flags| {
            checked(Request {
                flags,
                ..req(o, 2, 0, 0)
            })
        };
        assert_eq!(
            with(op::SHUTDOWN, SHUT_WR),
            Ok(Checked::Shutdown { socket: 2 })
        );
        assert_eq!(with(op::SHUTDOWN, 0), Err(Errno::EINVAL));
        assert_eq!(
            with(op::CLOSE, CLOSE_RESET),
            Ok(Checked::Close {
                socket: 2,
                reset: true
            })
        );
        assert_eq!(with(op::CLOSE, 2), Err(Errno::EINVAL));
        assert_eq!(
            with(op::WATCH, events::READABLE | events::ERROR),
            Ok(Checked::Watch {
                socket: 2,
                events: 9
            })
        );
        assert_eq!(with(op::WATCH, 16), Err(Errno::EINVAL));
        assert_eq!(
            with(op::LISTEN, 0),
            Ok(Checked::Listen {
                socket: 2,
                backlog: 1
            })
        );
    }

    #[test]
    fn peers_need_a_port() {
        let to = |port| Request {
            addr: [10, 0, 2, 2],
            port,
            ..req(op::CONNECT, 1, 0, 0)
        };
        assert_eq!(
            checked(to(7)),
            Ok(Checked::Connect {
                socket: 1,
                to: Endpoint {
                    addr: [10, 0, 2, 2],
                    port: 7
                }
            })
        );
        assert_eq!(checked(to(0)), Err(Errno::EINVAL));
        let send_to = Request {
            op: op::SEND_TO,
            len: 100,
            ..to(0)
        };
        assert_eq!(checked(send_to), Err(Errno::EINVAL));
        // Binding to port 0 asks for any port.
        assert!(checked(Request {
            op: op::BIND,
            ..to(0)
        })
        .is_ok());
    }

    #[test]
    fn errnos_are_linux_numbers_and_round_trip() {
        // Linux's values (asm-generic/errno-base.h, errno.h).
        let linux = [
            (Errno::EBADF, 9),
            (Errno::EAGAIN, 11),
            (Errno::EINVAL, 22),
            (Errno::EPIPE, 32),
            (Errno::EADDRINUSE, 98),
            (Errno::ECONNRESET, 104),
            (Errno::ENOBUFS, 105),
            (Errno::ENOTCONN, 107),
            (Errno::ECONNREFUSED, 111),
            (Errno::EINPROGRESS, 115),
        ];
        for (e, n) in linux {
            assert_eq!(e as u32, n, "{}", e.name());
        }
        for (i, e) in Errno::ALL.iter().enumerate() {
            assert_eq!(Errno::from_code(*e as u32), Some(*e));
            assert!(e.name().starts_with('E'));
            assert!(Errno::ALL[i + 1..].iter().all(|o| *o as u32 != *e as u32));
        }
        assert_eq!(Errno::ECONNREFUSED.name(), "ECONNREFUSED");
        // 0 is success, not an error; unknown codes are no error of ours.
        assert_eq!(Errno::from_code(0), None);
        assert_eq!(Errno::from_code(12), None);
    }

    #[test]
    fn completions_carry_the_result_and_readiness() {
        let r = req(op::RECV, 5, 0, 10);
        let ok = Completion::reply(&r, Ok(10), events::READABLE);
        assert_eq!((ok.tag, ok.socket, ok.kind), (9, 5, completion::REPLY));
        assert_eq!((ok.result(), ok.events), (Ok(10), events::READABLE));
        let again = Completion::reply(&r, Err(Errno::EAGAIN), 0);
        assert_eq!(again.result(), Err(Some(Errno::EAGAIN)));
        let garbage = Completion {
            status: 4242,
            ..again
        };
        assert_eq!(garbage.result(), Err(None));
    }
}
