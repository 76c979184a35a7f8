//! A DHCP client over the network protocol (`kaal_protocols::net`), on the
//! rings `tx` and `rx` a network driver serves: it sends DISCOVERs until an
//! OFFER answers and reports the address offered. The frames are built and
//! parsed with smoltcp's wire module (no_std, no allocation).
//!
//! Test-only: components use the TCP/IP service (`services/netstack`);
//! this client of the raw frame protocol is what the driver's tests build
//! on.
#![no_std]

use kaal_protocols::net::{kind, Packet, Status, MAX_FRAME, RING_SLOTS};
use kaal_rt::{println, rdtsc, Env, RingRx, RingTx};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT, UDP_HEADER_LEN,
};

pub use smoltcp::wire;

use core::time::Duration;

/// How long to wait for an answer before asking again; QEMU answers in far
/// less.
const WAIT: Duration = Duration::from_secs(1);
/// The same in TSC ticks if the TSC's frequency is unknown (about a second
/// at the 1-3 GHz QEMU's TSC runs at).
const WAIT_TICKS: u64 = 2_000_000_000;
/// DISCOVERs sent before giving up.
const TRIES: usize = 4;
/// Frames that are not the awaited answer tolerated per wait.
pub const MAX_OTHER: usize = 64;

pub type Error = &'static str;

pub struct Client {
    pub tx: RingTx<Packet, RING_SLOTS>,
    pub rx: RingRx<Packet, RING_SLOTS>,
    pub mac: EthernetAddress,
    pub token: u32,
    /// [`WAIT`] in TSC ticks.
    pub wait: u64,
}

impl Client {
    /// Takes the rings and waits for the driver's address entry.
    pub fn new(env: &Env) -> Result<Client, Error> {
        let mut rx: RingRx<Packet, RING_SLOTS> = env.ring_rx("rx").map_err(|_| "no `rx` ring")?;
        let first = rx.recv().map_err(|_| "corrupt rx ring")?;
        rx.release();
        let mac = match first.bytes() {
            [a, b, c, d, e, f] if first.kind == kind::ADDRESS => [*a, *b, *c, *d, *e, *f],
            _ => return Err("the driver's first entry is not its address"),
        };
        Ok(Client {
            tx: env.ring_tx("tx").map_err(|_| "no `tx` ring")?,
            rx,
            mac: EthernetAddress(mac),
            token: 0,
            wait: env.clock().map_or(WAIT_TICKS, |c| c.ticks(WAIT)),
        })
    }

    pub fn send_entry(&mut self, p: &Packet) -> Result<(), Error> {
        self.tx
            .send_all(core::slice::from_ref(p))
            .map_err(|_| "corrupt tx ring")
    }

    /// Sends `frame`; returns its token.
    pub fn send(&mut self, frame: &[u8]) -> Result<u32, Error> {
        self.token += 1;
        let p = Packet::frame(self.token, frame).ok_or("frame too long")?;
        self.send_entry(&p)?;
        Ok(self.token)
    }

    /// The next entry, waiting (by the ring protocol) until one comes.
    pub fn recv(&mut self) -> Result<Packet, Error> {
        let p = self.rx.recv().map_err(|_| "corrupt rx ring")?;
        self.rx.release();
        Ok(p)
    }

    /// The next entry, or `None` once the TSC passes `deadline`: the test
    /// systems have no timer driver to wake a sleeper, so this polls
    /// (yielding between looks).
    pub fn recv_until(&mut self, deadline: u64) -> Result<Option<Packet>, Error> {
        loop {
            if let Some(p) = self.rx.ring.pop().map_err(|_| "corrupt rx ring")? {
                self.rx.release();
                return Ok(Some(p));
            }
            if rdtsc() > deadline {
                return Ok(None);
            }
            kaal_sel4::ipc::yield_now();
        }
    }
}

/// Builds a frame in `buf`: Ethernet header, then `emit` fills the payload
/// of `len` bytes; returns the frame.
pub fn frame(
    buf: &mut [u8; MAX_FRAME],
    eth: EthernetRepr,
    len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Result<&[u8], Error> {
    let out = buf
        .get_mut(..eth.buffer_len() + len)
        .ok_or("frame too long")?;
    let mut f = EthernetFrame::new_unchecked(&mut *out);
    eth.emit(&mut f);
    emit(f.payload_mut());
    Ok(out)
}

/// A DHCP DISCOVER from `mac` with transaction id `xid`.
pub fn discover(buf: &mut [u8; MAX_FRAME], mac: EthernetAddress, xid: u32) -> Result<&[u8], Error> {
    let dhcp = DhcpRepr {
        message_type: DhcpMessageType::Discover,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: mac,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: true,
        requested_ip: None,
        client_identifier: Some(mac),
        server_identifier: None,
        parameter_request_list: Some(&[1, 3, 6]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let (src, dst) = (Ipv4Address::UNSPECIFIED, Ipv4Address::BROADCAST);
    let udp_len = UDP_HEADER_LEN + dhcp.buffer_len();
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Ipv4,
    };
    let caps = ChecksumCapabilities::default();
    let mut emitted = Err("DHCP message does not fit");
    let f = frame(buf, eth, ip.buffer_len() + udp_len, |payload| {
        let mut p = Ipv4Packet::new_unchecked(payload);
        ip.emit(&mut p, &caps);
        let udp = UdpRepr {
            src_port: DHCP_CLIENT_PORT,
            dst_port: DHCP_SERVER_PORT,
        };
        let mut u = UdpPacket::new_unchecked(p.payload_mut());
        let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
        udp.emit(
            &mut u,
            &s,
            &d,
            dhcp.buffer_len(),
            |d| {
                emitted = dhcp
                    .emit(&mut DhcpPacket::new_unchecked(d))
                    .map_err(|_| "DHCP message does not fit");
            },
            &caps,
        );
    })?;
    emitted.map(|()| f)
}

/// The address offered and the server's, if `frame` is a DHCP OFFER for
/// transaction `xid` (checksums checked).
pub fn offer(frame: &[u8], xid: u32) -> Option<(Ipv4Address, Ipv4Address)> {
    let caps = ChecksumCapabilities::default();
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ipr = Ipv4Repr::parse(&ip, &caps).ok()?;
    if ipr.next_header != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    let (s, d) = (IpAddress::Ipv4(ipr.src_addr), IpAddress::Ipv4(ipr.dst_addr));
    let ur = UdpRepr::parse(&udp, &s, &d, &caps).ok()?;
    if ur.dst_port != DHCP_CLIENT_PORT {
        return None;
    }
    let payload = udp.payload();
    let dp = DhcpPacket::new_checked(payload).ok()?;
    let r = DhcpRepr::parse(&dp).ok()?;
    let ours = r.message_type == DhcpMessageType::Offer && r.transaction_id == xid;
    ours.then_some((r.your_ip, r.server_identifier?))
}

/// Waits for the OFFER of `xid`; `None` past the deadline. An error entry
/// is an error.
pub fn await_offer(c: &mut Client, xid: u32) -> Result<Option<(Ipv4Address, Ipv4Address)>, Error> {
    let deadline = rdtsc().saturating_add(c.wait);
    for _ in 0..MAX_OTHER {
        let Some(p) = c.recv_until(deadline)? else {
            return Ok(None);
        };
        match p.kind {
            kind::FRAME => {
                if let Some(o) = offer(p.bytes(), xid) {
                    return Ok(Some(o));
                }
            }
            kind::TX_ERROR => {
                println!("net: DISCOVER refused: {:?}", Status::from_code(p.status));
                return Err("DISCOVER refused");
            }
            // The driver restarted and announced its address again: the
            // DISCOVER may be lost with it, and the next one goes out.
            kind::ADDRESS => return Ok(None),
            _ => return Err("unexpected entry kind"),
        }
    }
    Err("too many frames that are not the OFFER")
}

/// Sends DISCOVERs for `xid` until an OFFER answers.
pub fn dhcp(c: &mut Client, xid: u32) -> Result<(Ipv4Address, Ipv4Address), Error> {
    let mut buf = [0u8; MAX_FRAME];
    for attempt in 1..=TRIES {
        let f = discover(&mut buf, c.mac, xid)?;
        c.send(f)?;
        if let Some(o) = await_offer(c, xid)? {
            return Ok(o);
        }
        println!("net: no OFFER after DISCOVER {attempt} of {TRIES}");
    }
    Err("no DHCP OFFER")
}
