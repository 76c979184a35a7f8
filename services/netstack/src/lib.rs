//! The network stack: smoltcp's TCP/IP (ARP, IPv4, ICMP echo replies, UDP,
//! TCP, DHCPv4) behind the sockets protocol (`kaal_protocols::socket`),
//! as a host-tested library; `services/netstack_server` is the component
//! that runs it over the network driver's rings.
//!
//! [`Stack`] owns the interface and every socket. Each client has its own
//! table of socket ids ([`Config::sockets`]) and its own share of the
//! socket buffer memory ([`Config::budget`] divided among the clients):
//! a client that opens sockets without end gets `ENOBUFS` once its share
//! is spent, and the others' connections and shares are untouched.
//!
//! smoltcp has no listen backlog: a listening socket is the connection it
//! accepts. A `LISTEN` with backlog `b` therefore keeps `b` smoltcp sockets
//! listening on the port; a connection established on one of them waits
//! there for `ACCEPT`, which moves it to a new id and listens again with a
//! fresh socket. A flood of connection attempts fills at most those `b`
//! sockets; the rest are refused by smoltcp with a reset.
//!
//! Frames from the wire are checked before smoltcp sees them ([`wire`]):
//! a malformed one (bad lengths, checksums, an unknown protocol) is
//! dropped and counted in [`Stats`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod link;
mod table;
pub mod wire;

pub use link::{Link, MAX_FRAME};

#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;

use kaal_protocols::socket::{
    self, completion, events, Checked, Completion, Endpoint, Errno, Range, Request,
};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
    Ipv4Cidr,
};

use table::{Entry, ListenAt, Listener, Phase, Tcp, Udp, What};

/// How the stack is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Socket ids per client.
    pub sockets: u32,
    /// Bytes of a TCP socket's receive and send buffers.
    pub tcp_rx: usize,
    pub tcp_tx: usize,
    /// Datagrams and payload bytes a UDP socket buffers each way.
    pub udp_packets: usize,
    pub udp_bytes: usize,
    /// Socket buffer bytes for all clients together; each client may hold
    /// its share, `budget / clients`.
    pub budget: usize,
    /// The largest backlog a `LISTEN` gets.
    pub max_backlog: u32,
    /// How long a `CONNECT` waits for the peer's answer.
    pub connect_timeout: Duration,
    /// How long a closed connection may linger unacknowledged (its buffers
    /// still charged to the client) before it is aborted.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sockets: 32,
            tcp_rx: 64 * 1024,
            tcp_tx: 32 * 1024,
            udp_packets: 32,
            udp_bytes: 32 * 1024,
            budget: 4 << 20,
            max_backlog: 16,
            connect_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(30),
        }
    }
}

impl Config {
    fn tcp_cost(&self) -> usize {
        self.tcp_rx + self.tcp_tx
    }

    fn udp_cost(&self) -> usize {
        2 * self.udp_bytes
    }
}

/// Where the interface's address comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// DHCP (smoltcp's DHCPv4 client; renewals kept).
    Dhcp,
    /// A fixed address and gateway (host tests).
    Static {
        address: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
    },
}

/// What the stack has counted: the protocol's counters (`STATS`).
pub use kaal_protocols::socket::Stats;

/// A client's data region: the service reads `SEND` data from it and
/// writes `RECV` data into it. Ranges come checked against [`Region::len`].
pub trait Region {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes from `offset`.
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfRegion>;
    /// Copies `src` to `offset`.
    fn write(&mut self, offset: usize, src: &[u8]) -> Result<(), OutOfRegion>;
}

/// A range that is not inside a [`Region`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRegion;

/// A change of the interface's address, for the service to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressEvent {
    Configured {
        address: Ipv4Cidr,
        router: Option<Ipv4Address>,
        server: Ipv4Address,
    },
    Lost,
}

/// A connection closed by its client but not yet done with its peer.
struct Orphan {
    client: usize,
    handle: SocketHandle,
    charge: usize,
    since: Instant,
}

struct Client {
    table: Vec<Option<Entry>>,
    /// Its `ALARM`: the tag and the deadline (the service's clock).
    alarm: Option<(u64, u64)>,
    /// Buffer bytes its sockets and orphans hold.
    charged: usize,
}

/// The stack: the interface, every socket, and each client's table.
pub struct Stack {
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    clients: Vec<Client>,
    orphans: Vec<Orphan>,
    cfg: Config,
    share: usize,
    address: Option<Ipv4Address>,
    next_port: u16,
    pub stats: Stats,
}

/// How long a listening socket holds a connection whose handshake does not
/// complete, or one that is complete but quiet and not accepted: then it
/// is reset and the socket listens again.
const HALF_OPEN: Duration = Duration::from_secs(10);

/// The first ephemeral port (IANA's range).
const EPHEMERAL: u16 = 49152;

impl Stack {
    /// A stack on `device` with hardware address `mac` for `clients`
    /// clients; `seed` seeds TCP's initial sequence numbers.
    pub fn new<L: Link>(
        cfg: Config,
        clients: usize,
        mac: [u8; 6],
        addressing: Addressing,
        link: &mut L,
        now: Instant,
        seed: u64,
    ) -> Stack {
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        ic.random_seed = seed;
        let mut stats = Stats::default();
        let mut device = link::Device {
            link,
            stats: &mut stats,
        };
        let mut iface = Interface::new(ic, &mut device, now);
        let mut sockets = SocketSet::new(Vec::new());
        let mut address = None;
        let dhcp = match addressing {
            Addressing::Dhcp => Some(sockets.add(dhcpv4::Socket::new())),
            Addressing::Static {
                address: a,
                gateway,
            } => {
                iface.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(a));
                });
                if let Some(g) = gateway {
                    let _ = iface.routes_mut().add_default_ipv4_route(g);
                }
                address = Some(a.address());
                None
            }
        };
        let clients = clients.max(1);
        Stack {
            iface,
            sockets,
            dhcp,
            clients: (0..clients)
                .map(|_| Client {
                    table: (0..cfg.sockets).map(|_| None).collect(),
                    alarm: None,
                    charged: 0,
                })
                .collect(),
            orphans: Vec::new(),
            share: cfg.budget / clients,
            cfg,
            address,
            next_port: EPHEMERAL.wrapping_add((seed % 16384) as u16),
            stats,
        }
    }

    /// The interface's address, once it has one.
    pub fn address(&self) -> Option<Ipv4Address> {
        self.address
    }

    /// Buffer bytes client `c` holds.
    pub fn charged(&self, c: usize) -> usize {
        self.clients.get(c).map_or(0, |c| c.charged)
    }

    /// Sockets smoltcp holds (every client's, listeners' spares, orphans).
    pub fn socket_count(&self) -> usize {
        self.sockets.iter().count()
    }

    /// Lets smoltcp take frames from and give frames to `device`, then
    /// brings the tables up to date; `Some` when the address changed.
    pub fn poll<L: Link>(&mut self, now: Instant, link: &mut L) -> Option<AddressEvent> {
        let mut device = link::Device {
            link,
            stats: &mut self.stats,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
        let event = self.poll_dhcp();
        self.maintain(now);
        event
    }

    /// When smoltcp next needs [`Stack::poll`] without a frame or a
    /// request arriving (retransmits, delayed ACKs, DHCP renewals).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }

    fn poll_dhcp(&mut self) -> Option<AddressEvent> {
        let h = self.dhcp?;
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(h).poll()? {
            dhcpv4::Event::Configured(c) => Some((c.address, c.router, c.server.address)),
            // smoltcp says so at its start too: nothing was lost then.
            dhcpv4::Event::Deconfigured if self.address.is_none() => return None,
            dhcpv4::Event::Deconfigured => None,
        };
        self.iface.update_ip_addrs(|addrs| addrs.clear());
        self.iface.routes_mut().remove_default_ipv4_route();
        Some(match event {
            Some((address, router, server)) => {
                self.iface.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(address));
                });
                if let Some(r) = router {
                    let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                }
                self.address = Some(address.address());
                AddressEvent::Configured {
                    address,
                    router,
                    server,
                }
            }
            None => {
                self.address = None;
                AddressEvent::Lost
            }
        })
    }

    /// Serves one request of client `c` whose data region is `region`.
    pub fn request(
        &mut self,
        c: usize,
        r: &Request,
        region: &mut dyn Region,
        now: Instant,
    ) -> Completion {
        let checked = match socket::check(r, region.len(), self.cfg.sockets) {
            Ok(x) => x,
            Err(e) => {
                self.stats.refused += 1;
                // The client takes a reply's readiness as the socket's:
                // a refusal must not make it forget what it knew.
                let names_socket = !matches!(
                    r.op,
                    socket::op::OPEN | socket::op::RESET | socket::op::STATS | socket::op::ALARM
                );
                let ready = if names_socket {
                    self.observe(c, r.socket)
                } else {
                    0
                };
                return Completion::reply(r, Err(e), ready);
            }
        };
        let result = self.serve(c, checked, r.tag, region, now);
        let (status, peer) = match result {
            Ok((v, peer)) => (Ok(v), peer),
            Err(e) => (Err(e), None),
        };
        // The readiness of the socket named (for OPEN: the new one), which
        // the client now knows. ACCEPT's is the listener's: the client
        // learns the new connection's when it watches it.
        let id = match (checked, status) {
            (Checked::Open { .. }, Ok(v)) => u32::try_from(v).ok(),
            (
                Checked::Open { .. }
                | Checked::Reset
                | Checked::Stats { .. }
                | Checked::Alarm { .. },
                _,
            ) => None,
            _ => Some(r.socket),
        };
        let ready = id.map_or(0, |id| self.observe(c, id));
        let mut done = Completion::reply(r, status, ready);
        if let Some(p) = peer {
            done.addr = p.addr;
            done.port = p.port;
        }
        done
    }

    fn serve(
        &mut self,
        c: usize,
        req: Checked,
        tag: u64,
        region: &mut dyn Region,
        now: Instant,
    ) -> Result<(u64, Option<Endpoint>), Errno> {
        if c >= self.clients.len() {
            return Err(Errno::EBADF);
        }
        let v = |x: u64| Ok((x, None));
        match req {
            Checked::Open { tcp } => {
                let what = if tcp {
                    What::Tcp(Tcp::fresh())
                } else {
                    What::Udp(Udp { handle: None })
                };
                v(u64::from(self.insert(c, Entry::new(what))?))
            }
            Checked::Bind { socket, at } => self.bind(c, socket, at).and_then(|()| v(0)),
            Checked::Listen { socket, backlog } => {
                self.listen(c, socket, backlog).and_then(|()| v(0))
            }
            Checked::Accept { socket } => self.accept(c, socket),
            Checked::Local { socket } => Ok((0, Some(self.local(c, socket)?))),
            Checked::Connect { socket, to } => self.connect(c, socket, to, now).and_then(|()| v(0)),
            Checked::Send { socket, range } => self
                .send(c, socket, range, region)
                .and_then(|n| v(n as u64)),
            Checked::Recv { socket, range } => self
                .recv(c, socket, range, region)
                .and_then(|n| v(n as u64)),
            Checked::SendTo { socket, range, to } => self
                .send_to(c, socket, range, to, region)
                .and_then(|n| v(n as u64)),
            Checked::RecvFrom { socket, range } => {
                let (n, from) = self.recv_from(c, socket, range, region)?;
                Ok((n as u64, Some(from)))
            }
            Checked::Shutdown { socket } => self.shutdown(c, socket).and_then(|()| v(0)),
            Checked::Close { socket, reset } => {
                self.close(c, socket, reset, now).and_then(|()| v(0))
            }
            Checked::Watch { socket, events } => {
                let e = self.entry(c, socket)?;
                e.watch = events;
                e.watch_tag = tag;
                // The reply carries the readiness now; events follow
                // changes from there.
                v(0)
            }
            Checked::Reset => v(self.reset(c, now)),
            Checked::Alarm { at } => {
                let cl = self.clients.get_mut(c).ok_or(Errno::EBADF)?;
                cl.alarm = (at != 0).then_some((tag, at));
                v(0)
            }
            Checked::Stats { range } => {
                let bytes = bytemuck::bytes_of(&self.stats);
                let n = bytes.len().min(range.len);
                region
                    .write(range.offset, bytes.get(..n).unwrap_or_default())
                    .map_err(|_| Errno::EFAULT)?;
                v(n as u64)
            }
        }
    }

    /// Closes every socket of client `c` with a reset (its restart, or a
    /// corrupt ring that cut it off); how many.
    pub fn reset(&mut self, c: usize, now: Instant) -> u64 {
        if let Some(cl) = self.clients.get_mut(c) {
            cl.alarm = None;
        }
        let ids = self.clients.get(c).map_or(0, |cl| cl.table.len());
        let mut n = 0;
        for id in 0..ids as u32 {
            if self.close(c, id, true, now).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// The `ALARM` completion of client `c`, once its deadline is not after
    /// `now` (the service's clock); it is then no longer asked.
    pub fn alarm_due(&mut self, c: usize, now: u64) -> Option<Completion> {
        let cl = self.clients.get_mut(c)?;
        let (tag, _) = cl.alarm.filter(|(_, at)| *at <= now)?;
        cl.alarm = None;
        Some(Completion {
            tag,
            kind: completion::ALARM,
            ..Completion::default()
        })
    }

    /// The earliest client alarm after `now`, if any.
    pub fn next_alarm(&self, now: u64) -> Option<u64> {
        self.clients
            .iter()
            .filter_map(|cl| cl.alarm.map(|(_, at)| at))
            .filter(|at| *at > now)
            .min()
    }

    /// The next readiness event client `c` asked for, if any: a watched
    /// bit that became ready since the client last learned the socket's
    /// readiness. At most one per socket is ever due, so a client that
    /// does not read its events costs nothing but its own ring.
    pub fn next_event(&mut self, c: usize) -> Option<Completion> {
        let n = self.clients.get(c)?.table.len();
        for id in 0..n as u32 {
            let Some(e) = self
                .clients
                .get(c)
                .and_then(|cl| cl.table.get(id as usize))
                .and_then(Option::as_ref)
            else {
                continue;
            };
            if e.watch == 0 {
                continue;
            }
            let (ready, error) = self.readiness(e);
            if ready & e.watch & !e.seen == 0 {
                continue;
            }
            let tag = e.watch_tag;
            if let Ok(e) = self.entry(c, id) {
                e.seen = ready;
            }
            return Some(Completion {
                tag,
                status: error.map_or(0, |e| e as u32),
                socket: id,
                events: ready,
                kind: completion::EVENT,
                ..Completion::default()
            });
        }
        None
    }

    /// The readiness of socket `id` of client `c`, now known to the client.
    fn observe(&mut self, c: usize, id: u32) -> u32 {
        let Some(e) = self
            .clients
            .get(c)
            .and_then(|cl| cl.table.get(id as usize))
            .and_then(Option::as_ref)
        else {
            return 0;
        };
        let (ready, _) = self.readiness(e);
        if let Ok(e) = self.entry(c, id) {
            e.seen = ready;
        }
        ready
    }

    fn readiness(&self, e: &Entry) -> (u32, Option<Errno>) {
        match &e.what {
            What::Tcp(t) => {
                let Some(h) = t.handle else {
                    return (0, None);
                };
                (t.readiness(self.sockets.get::<tcp::Socket>(h)), t.error)
            }
            What::Listener(l) => {
                let pending = l
                    .slots
                    .iter()
                    .any(|h| table::is_pending(self.sockets.get::<tcp::Socket>(*h)));
                (if pending { events::READABLE } else { 0 }, None)
            }
            What::Udp(u) => {
                let Some(h) = u.handle else {
                    return (events::WRITABLE, None);
                };
                let s = self.sockets.get::<udp::Socket>(h);
                let mut r = 0;
                if s.can_recv() {
                    r |= events::READABLE;
                }
                if s.can_send() {
                    r |= events::WRITABLE;
                }
                (r, None)
            }
        }
    }

    fn entry(&mut self, c: usize, id: u32) -> Result<&mut Entry, Errno> {
        self.clients
            .get_mut(c)
            .and_then(|cl| cl.table.get_mut(id as usize))
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)
    }

    fn insert(&mut self, c: usize, e: Entry) -> Result<u32, Errno> {
        let cl = self.clients.get_mut(c).ok_or(Errno::EBADF)?;
        let (id, slot) = cl
            .table
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(Errno::EMFILE)?;
        *slot = Some(e);
        Ok(id as u32)
    }

    /// Charges `bytes` of buffers to client `c`, within its share.
    fn charge(&mut self, c: usize, bytes: usize) -> Result<(), Errno> {
        let share = self.share;
        let cl = self.clients.get_mut(c).ok_or(Errno::EBADF)?;
        if cl.charged.saturating_add(bytes) > share {
            return Err(Errno::ENOBUFS);
        }
        cl.charged += bytes;
        Ok(())
    }

    fn uncharge(&mut self, c: usize, bytes: usize) {
        if let Some(cl) = self.clients.get_mut(c) {
            cl.charged = cl.charged.saturating_sub(bytes);
        }
    }

    fn new_tcp(&mut self, c: usize) -> Result<SocketHandle, Errno> {
        self.charge(c, self.cfg.tcp_cost())?;
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.cfg.tcp_rx]),
            tcp::SocketBuffer::new(vec![0; self.cfg.tcp_tx]),
        );
        s.set_nagle_enabled(false);
        Ok(self.sockets.add(s))
    }

    fn new_udp(&mut self, c: usize) -> Result<SocketHandle, Errno> {
        self.charge(c, self.cfg.udp_cost())?;
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; self.cfg.udp_packets],
                vec![0; self.cfg.udp_bytes],
            )
        };
        Ok(self.sockets.add(udp::Socket::new(buffer(), buffer())))
    }

    fn our_address(&self, addr: [u8; 4]) -> Result<Option<Ipv4Address>, Errno> {
        let a = Ipv4Address::from(addr);
        if a.is_unspecified() {
            return Ok(None);
        }
        if Some(a) == self.address {
            return Ok(Some(a));
        }
        Err(Errno::EADDRNOTAVAIL)
    }

    /// Whether a TCP (or UDP) port is bound by any client: a listener, a
    /// socket bound and not yet connected, a bound UDP socket. Connections
    /// do not hold their port: a listener may take the port of connections
    /// it accepted before (as with Linux's `SO_REUSEADDR`).
    fn port_in_use(&self, tcp: bool, port: u16) -> bool {
        self.clients
            .iter()
            .flat_map(|cl| cl.table.iter().flatten())
            .any(|e| match &e.what {
                What::Tcp(t) if tcp => t.handle.is_none() && t.bound.is_some_and(|b| b.1 == port),
                What::Listener(l) if tcp => l.at.port == port,
                What::Udp(u) if !tcp => u
                    .handle
                    .is_some_and(|h| self.sockets.get::<udp::Socket>(h).endpoint().port == port),
                _ => false,
            })
    }

    /// Whether any smoltcp TCP socket (connections, lingering ones
    /// included) uses `port` locally.
    fn port_busy(&self, port: u16) -> bool {
        self.sockets.iter().any(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(t) => t.local_endpoint().is_some_and(|e| e.port == port),
            _ => false,
        })
    }

    fn ephemeral(&mut self, tcp: bool) -> Result<u16, Errno> {
        for _ in 0..=(u16::MAX - EPHEMERAL) {
            let p = self.next_port;
            self.next_port = if p >= u16::MAX - 1 { EPHEMERAL } else { p + 1 };
            if p >= EPHEMERAL && !self.port_in_use(tcp, p) && !(tcp && self.port_busy(p)) {
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    fn bind(&mut self, c: usize, id: u32, at: Endpoint) -> Result<(), Errno> {
        let addr = self.our_address(at.addr)?;
        let tcp = match &self.entry(c, id)?.what {
            What::Tcp(t) if t.handle.is_none() && t.bound.is_none() => true,
            What::Udp(u) if u.handle.is_none() => false,
            _ => return Err(Errno::EINVAL),
        };
        let port = match at.port {
            0 => self.ephemeral(tcp)?,
            p if self.port_in_use(tcp, p) => return Err(Errno::EADDRINUSE),
            p => p,
        };
        if tcp {
            if let What::Tcp(t) = &mut self.entry(c, id)?.what {
                t.bound = Some((addr, port));
            }
            return Ok(());
        }
        let h = self.new_udp(c)?;
        let endpoint = IpListenEndpoint {
            addr: addr.map(IpAddress::Ipv4),
            port,
        };
        if self
            .sockets
            .get_mut::<udp::Socket>(h)
            .bind(endpoint)
            .is_err()
        {
            self.sockets.remove(h);
            self.uncharge(c, self.cfg.udp_cost());
            return Err(Errno::EINVAL);
        }
        self.entry(c, id)?.what = What::Udp(Udp { handle: Some(h) });
        Ok(())
    }

    fn listen(&mut self, c: usize, id: u32, backlog: u32) -> Result<(), Errno> {
        let (addr, port) = match &self.entry(c, id)?.what {
            What::Tcp(t) if t.handle.is_none() => t.bound.ok_or(Errno::EINVAL)?,
            What::Listener(_) => return Ok(()),
            What::Udp(_) => return Err(Errno::EOPNOTSUPP),
            What::Tcp(_) => return Err(Errno::EINVAL),
        };
        let at = ListenAt { addr, port };
        // At least one listening socket, or the LISTEN fails.
        let h = self.listening_socket(c, at)?;
        let backlog = backlog.clamp(1, self.cfg.max_backlog);
        let e = self.entry(c, id)?;
        e.what = What::Listener(Listener {
            at,
            backlog,
            slots: vec![h],
        });
        self.refill(c, id);
        Ok(())
    }

    fn listening_socket(&mut self, c: usize, at: ListenAt) -> Result<SocketHandle, Errno> {
        let h = self.new_tcp(c)?;
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        // A half-open connection (its handshake never completed) gives
        // the socket back after this long instead of holding a slot.
        s.set_timeout(Some(HALF_OPEN));
        if s.listen(at.endpoint()).is_err() {
            self.sockets.remove(h);
            self.uncharge(c, self.cfg.tcp_cost());
            return Err(Errno::EINVAL);
        }
        Ok(h)
    }

    /// Tops a listener's sockets up to its backlog, as its share allows.
    fn refill(&mut self, c: usize, id: u32) {
        loop {
            let at = match self.entry(c, id).map(|e| &e.what) {
                Ok(What::Listener(l)) if (l.slots.len() as u32) < l.backlog => l.at,
                _ => return,
            };
            let Ok(h) = self.listening_socket(c, at) else {
                return;
            };
            if let Ok(Entry {
                what: What::Listener(l),
                ..
            }) = self.entry(c, id)
            {
                l.slots.push(h);
            }
        }
    }

    /// The local endpoint of socket `id` (`LOCAL`): a connection's own,
    /// else where it is bound (0.0.0.0 for any address, port 0 unbound).
    fn local(&mut self, c: usize, id: u32) -> Result<Endpoint, Errno> {
        let at = |addr: Option<Ipv4Address>, port: u16| Endpoint {
            addr: addr.map_or([0; 4], |a| a.octets()),
            port,
        };
        let (handle, bound, listen) = match &self.entry(c, id)?.what {
            What::Tcp(t) => (t.handle, Some(t.bound), None),
            What::Listener(l) => (None, None, Some(l.at)),
            What::Udp(u) => (u.handle, None, None),
        };
        Ok(match (bound, listen) {
            (Some(bound), _) => {
                let own = handle.and_then(|h| self.sockets.get::<tcp::Socket>(h).local_endpoint());
                match (own, bound) {
                    (Some(e), _) => {
                        let IpAddress::Ipv4(a) = e.addr;
                        at(Some(a), e.port)
                    }
                    (None, Some((addr, port))) => at(addr, port),
                    (None, None) => at(None, 0),
                }
            }
            (None, Some(l)) => at(l.addr, l.port),
            (None, None) => match handle {
                Some(h) => {
                    let e = self.sockets.get::<udp::Socket>(h).endpoint();
                    let addr = e.addr.map(|IpAddress::Ipv4(a)| a);
                    at(addr, e.port)
                }
                None => at(None, 0),
            },
        })
    }

    fn accept(&mut self, c: usize, id: u32) -> Result<(u64, Option<Endpoint>), Errno> {
        let slots = match &self.entry(c, id)?.what {
            What::Listener(l) => l.slots.clone(),
            What::Udp(_) => return Err(Errno::EOPNOTSUPP),
            What::Tcp(_) => return Err(Errno::EINVAL),
        };
        let Some(h) = slots
            .iter()
            .copied()
            .find(|h| table::is_pending(self.sockets.get::<tcp::Socket>(*h)))
        else {
            return Err(Errno::EAGAIN);
        };
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        // Established: no timeout but the peer's (as without one).
        s.set_timeout(None);
        let peer = s.remote_endpoint().map(|e| {
            let IpAddress::Ipv4(a) = e.addr;
            Endpoint {
                addr: a.octets(),
                port: e.port,
            }
        });
        let local = s.local_endpoint();
        let mut t = Tcp::fresh();
        t.handle = Some(h);
        t.phase = Phase::Connected;
        t.bound = local.map(|e| (None, e.port));
        let new = self.insert(c, Entry::new(What::Tcp(t)))?;
        if let What::Listener(l) = &mut self.entry(c, id)?.what {
            l.slots.retain(|x| *x != h);
        }
        self.stats.accepted += 1;
        self.refill(c, id);
        Ok((u64::from(new), peer))
    }

    fn connect(&mut self, c: usize, id: u32, to: Endpoint, now: Instant) -> Result<(), Errno> {
        let bound = match &self.entry(c, id)?.what {
            What::Tcp(t) => match (t.handle, t.phase) {
                (None, _) => t.bound,
                (Some(_), Phase::Connecting { .. }) => return Err(Errno::EALREADY),
                (Some(_), _) => return Err(Errno::EISCONN),
            },
            What::Listener(_) => return Err(Errno::EISCONN),
            What::Udp(_) => return Err(Errno::EOPNOTSUPP),
        };
        if self.address.is_none() {
            return Err(Errno::ENETUNREACH);
        }
        let port = match bound {
            Some((_, p)) => p,
            None => self.ephemeral(true)?,
        };
        let h = self.new_tcp(c)?;
        let remote = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(to.addr)), to.port);
        let local = IpListenEndpoint {
            addr: bound.and_then(|b| b.0).map(IpAddress::Ipv4),
            port,
        };
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.set_timeout(Some(self.cfg.connect_timeout));
        if s.connect(cx, remote, local).is_err() {
            self.sockets.remove(h);
            self.uncharge(c, self.cfg.tcp_cost());
            return Err(Errno::ENETUNREACH);
        }
        if let What::Tcp(t) = &mut self.entry(c, id)?.what {
            t.handle = Some(h);
            t.bound = Some((None, port));
            t.phase = Phase::Connecting { since: now };
        }
        Err(Errno::EINPROGRESS)
    }

    fn tcp_of(&mut self, c: usize, id: u32) -> Result<(SocketHandle, Tcp), Errno> {
        match &self.entry(c, id)?.what {
            What::Tcp(t) => Ok((t.handle.ok_or(Errno::ENOTCONN)?, *t)),
            What::Listener(_) => Err(Errno::ENOTCONN),
            What::Udp(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    fn send(
        &mut self,
        c: usize,
        id: u32,
        range: Range,
        region: &mut dyn Region,
    ) -> Result<usize, Errno> {
        let (h, t) = self.tcp_of(c, id)?;
        if let Some(e) = t.error {
            return Err(e);
        }
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        match t.phase {
            Phase::Connecting { .. } => return Err(Errno::EAGAIN),
            Phase::ShutWr => return Err(Errno::EPIPE),
            _ if !s.may_send() => return Err(Errno::EPIPE),
            _ => {}
        }
        let mut bad = false;
        let n = s
            .send(|buf| {
                let n = buf.len().min(range.len);
                let dst = buf.get_mut(..n).unwrap_or_default();
                bad = region.read(range.offset, dst).is_err();
                let n = if bad { 0 } else { n };
                (n, n)
            })
            .map_err(|_| Errno::EPIPE)?;
        if bad {
            return Err(Errno::EFAULT);
        }
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n)
    }

    fn recv(
        &mut self,
        c: usize,
        id: u32,
        range: Range,
        region: &mut dyn Region,
    ) -> Result<usize, Errno> {
        let (h, t) = self.tcp_of(c, id)?;
        if let Phase::Connecting { .. } = t.phase {
            return if let Some(e) = t.error {
                Err(e)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        if s.can_recv() {
            let mut bad = false;
            let n = s
                .recv(|buf| {
                    let n = buf.len().min(range.len);
                    let src = buf.get(..n).unwrap_or_default();
                    bad = region.write(range.offset, src).is_err();
                    (if bad { 0 } else { n }, n)
                })
                .map_err(|_| Errno::ENOTCONN)?;
            if bad {
                return Err(Errno::EFAULT);
            }
            return Ok(n);
        }
        if let Some(e) = t.error {
            return Err(e);
        }
        if !s.may_recv() {
            return Ok(0);
        }
        Err(Errno::EAGAIN)
    }

    fn send_to(
        &mut self,
        c: usize,
        id: u32,
        range: Range,
        to: Endpoint,
        region: &mut dyn Region,
    ) -> Result<usize, Errno> {
        let handle = match &self.entry(c, id)?.what {
            What::Udp(u) => u.handle,
            _ => return Err(Errno::EOPNOTSUPP),
        };
        if self.address.is_none() {
            return Err(Errno::ENETUNREACH);
        }
        let h = match handle {
            Some(h) => h,
            None => {
                self.bind(
                    c,
                    id,
                    Endpoint {
                        addr: [0; 4],
                        port: 0,
                    },
                )?;
                match &self.entry(c, id)?.what {
                    What::Udp(Udp { handle: Some(h) }) => *h,
                    _ => return Err(Errno::EINVAL),
                }
            }
        };
        let s = self.sockets.get_mut::<udp::Socket>(h);
        if range.len > s.payload_send_capacity() || range.len > wire::MAX_UDP_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        let remote = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(to.addr)), to.port);
        let buf = s.send(range.len, remote).map_err(|e| match e {
            udp::SendError::BufferFull => Errno::EAGAIN,
            udp::SendError::Unaddressable => Errno::EINVAL,
        })?;
        if region.read(range.offset, buf).is_err() {
            // The datagram is queued already; it goes out zeroed.
            buf.fill(0);
            return Err(Errno::EFAULT);
        }
        Ok(range.len)
    }

    fn recv_from(
        &mut self,
        c: usize,
        id: u32,
        range: Range,
        region: &mut dyn Region,
    ) -> Result<(usize, Endpoint), Errno> {
        let h = match &self.entry(c, id)?.what {
            What::Udp(Udp { handle: Some(h) }) => *h,
            What::Udp(_) => return Err(Errno::EAGAIN),
            _ => return Err(Errno::EOPNOTSUPP),
        };
        let s = self.sockets.get_mut::<udp::Socket>(h);
        let (data, meta) = s.recv().map_err(|_| Errno::EAGAIN)?;
        let n = data.len().min(range.len);
        region
            .write(range.offset, data.get(..n).unwrap_or_default())
            .map_err(|_| Errno::EFAULT)?;
        let IpAddress::Ipv4(a) = meta.endpoint.addr;
        Ok((
            n,
            Endpoint {
                addr: a.octets(),
                port: meta.endpoint.port,
            },
        ))
    }

    fn shutdown(&mut self, c: usize, id: u32) -> Result<(), Errno> {
        let (h, t) = self.tcp_of(c, id)?;
        if let Phase::Connecting { .. } = t.phase {
            return Err(Errno::ENOTCONN);
        }
        self.sockets.get_mut::<tcp::Socket>(h).close();
        if let What::Tcp(t) = &mut self.entry(c, id)?.what {
            t.phase = Phase::ShutWr;
        }
        Ok(())
    }

    fn close(&mut self, c: usize, id: u32, reset: bool, now: Instant) -> Result<(), Errno> {
        let e = self
            .clients
            .get_mut(c)
            .and_then(|cl| cl.table.get_mut(id as usize))
            .and_then(Option::take)
            .ok_or(Errno::EBADF)?;
        match e.what {
            What::Tcp(Tcp {
                handle: Some(h), ..
            }) => self.orphan(c, h, reset, now),
            What::Tcp(_) => {}
            What::Listener(l) => {
                for h in l.slots {
                    self.orphan(c, h, true, now);
                }
            }
            What::Udp(Udp { handle: Some(h) }) => {
                self.sockets.remove(h);
                self.uncharge(c, self.cfg.udp_cost());
            }
            What::Udp(_) => {}
        }
        Ok(())
    }

    /// Closes a TCP socket the client let go; it lingers, charged to the
    /// client, until its peer is done with it.
    fn orphan(&mut self, c: usize, h: SocketHandle, reset: bool, now: Instant) {
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        if reset {
            s.abort();
        } else {
            s.close();
        }
        self.orphans.push(Orphan {
            client: c,
            handle: h,
            charge: self.cfg.tcp_cost(),
            since: now,
        });
    }

    /// After smoltcp ran: connections that completed or failed, listeners'
    /// pending connections their peers aborted, and orphans that are done.
    fn maintain(&mut self, now: Instant) {
        let timeout = self.cfg.connect_timeout;
        let mut short = Vec::new();
        for (c, cl) in self.clients.iter_mut().enumerate() {
            for (id, e) in cl.table.iter_mut().enumerate() {
                match e.as_mut().map(|e| &mut e.what) {
                    Some(What::Tcp(t)) => {
                        if let Some(h) = t.handle {
                            t.update(self.sockets.get::<tcp::Socket>(h), now, timeout);
                        }
                    }
                    Some(What::Listener(l)) => {
                        for h in &l.slots {
                            let s = self.sockets.get_mut::<tcp::Socket>(*h);
                            match s.state() {
                                // Reset or given up before ACCEPT; once its
                                // own reset went out (no endpoint left), it
                                // listens again.
                                tcp::State::Closed if s.remote_endpoint().is_none() => {
                                    self.stats.aborted_pending += 1;
                                    let _ = s.listen(l.at.endpoint());
                                }
                                _ => {}
                            }
                        }
                        if (l.slots.len() as u32) < l.backlog {
                            short.push((c, id as u32));
                        }
                    }
                    _ => {}
                }
            }
        }
        for (c, id) in short {
            self.refill(c, id);
        }
        let linger = self.cfg.linger;
        let mut i = 0;
        while let Some(o) = self.orphans.get(i) {
            let (c, h, charge, since) = (o.client, o.handle, o.charge, o.since);
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            // A reset still to be sent keeps a closed socket's endpoint;
            // one that cannot go out (no neighbour answers) is given up
            // after the linger time, like every other orphan after twice it.
            let age = now - since;
            let done = match s.state() {
                tcp::State::Closed => s.remote_endpoint().is_none() || age > linger,
                tcp::State::TimeWait => true,
                _ => age > linger + linger,
            };
            if done {
                self.sockets.remove(h);
                self.uncharge(c, charge);
                self.orphans.swap_remove(i);
                continue;
            }
            if age > linger {
                s.abort();
            }
            i += 1;
        }
    }
}
