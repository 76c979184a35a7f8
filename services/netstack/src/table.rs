//! A client's socket table: what each id is, and its readiness.

use kaal_protocols::socket::{events, Errno};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpListenEndpoint, Ipv4Address};

use alloc::vec::Vec;

/// One id of a client's table.
pub(crate) struct Entry {
    pub what: What,
    /// Watched events ([`events`]); 0: none.
    pub watch: u32,
    /// The tag of the `WATCH`, which its events carry.
    pub watch_tag: u64,
    /// The readiness the client last learned (from a reply or an event).
    pub seen: u32,
}

impl Entry {
    pub fn new(what: What) -> Entry {
        Entry {
            what,
            watch: 0,
            watch_tag: 0,
            seen: 0,
        }
    }
}

pub(crate) enum What {
    Tcp(Tcp),
    Listener(Listener),
    Udp(Udp),
}

/// Where a listener listens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenAt {
    pub addr: Option<Ipv4Address>,
    pub port: u16,
}

impl ListenAt {
    pub fn endpoint(self) -> IpListenEndpoint {
        IpListenEndpoint {
            addr: self.addr.map(IpAddress::Ipv4),
            port: self.port,
        }
    }
}

pub(crate) struct Listener {
    pub at: ListenAt,
    pub backlog: u32,
    /// smoltcp sockets listening, or holding a connection for `ACCEPT`.
    pub slots: Vec<SocketHandle>,
}

pub(crate) struct Udp {
    /// Bound (buffers allocated) or not yet.
    pub handle: Option<SocketHandle>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opened, perhaps bound; no connection.
    Fresh,
    Connecting {
        since: Instant,
    },
    Connected,
    /// Its sending half closed by `SHUTDOWN`.
    ShutWr,
}

/// A TCP socket that is not listening.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tcp {
    pub handle: Option<SocketHandle>,
    /// The address (`None`: any) and port it is bound to.
    pub bound: Option<(Option<Ipv4Address>, u16)>,
    pub phase: Phase,
    /// Why the connection failed, once it has.
    pub error: Option<Errno>,
    /// The peer closed its sending half: a later close is no reset.
    pub peer_fin: bool,
}

impl Tcp {
    pub fn fresh() -> Tcp {
        Tcp {
            handle: None,
            bound: None,
            phase: Phase::Fresh,
            error: None,
            peer_fin: false,
        }
    }

    /// Follows the smoltcp socket's state after a poll.
    pub fn update(&mut self, s: &tcp::Socket, now: Instant, timeout: Duration) {
        use tcp::State::*;
        let state = s.state();
        if matches!(state, CloseWait | LastAck | Closing | TimeWait) {
            self.peer_fin = true;
        }
        if self.error.is_some() {
            return;
        }
        match self.phase {
            Phase::Fresh => {}
            Phase::Connecting { since } => match state {
                SynSent | SynReceived => {}
                Closed => {
                    // smoltcp gives up after the socket's timeout; a reset
                    // to the SYN closes it sooner.
                    self.error = Some(if now - since >= timeout {
                        Errno::ETIMEDOUT
                    } else {
                        Errno::ECONNREFUSED
                    });
                }
                _ => self.phase = Phase::Connected,
            },
            Phase::Connected | Phase::ShutWr => {
                if state == Closed && !self.peer_fin {
                    self.error = Some(Errno::ECONNRESET);
                }
            }
        }
    }

    /// What `poll` would report for it ([`events`]).
    pub fn readiness(&self, s: &tcp::Socket) -> u32 {
        if self.error.is_some() {
            return events::READABLE | events::WRITABLE | events::HANGUP | events::ERROR;
        }
        if matches!(self.phase, Phase::Fresh | Phase::Connecting { .. }) {
            return 0;
        }
        let mut r = 0;
        if s.can_recv() || !s.may_recv() {
            r |= events::READABLE;
        }
        if !s.may_recv() {
            r |= events::HANGUP;
        }
        if s.can_send() {
            r |= events::WRITABLE;
        }
        r
    }
}

/// Whether a listener's socket holds a connection to accept.
pub(crate) fn is_pending(s: &tcp::Socket) -> bool {
    matches!(s.state(), tcp::State::Established | tcp::State::CloseWait)
}
