//! A client of the network protocol, talking to QEMU's user network (its
//! DHCP server and gateway) through the driver; what it does depends on its
//! name:
//! - `dhcp`: sends a DHCP DISCOVER (again if no answer comes), parses the
//!   OFFER and prints the address offered and the server's;
//! - `hostile`: sends entries of length 0, beyond the largest frame, beyond
//!   the buffer and of an unknown kind, expects an error entry for each,
//!   then a DHCP exchange; then sends one more DISCOVER, corrupts the index
//!   of its `tx` ring and expects the OFFER to arrive all the same;
//! - `bench`: learns its address and the gateway's by DHCP, then times ARP
//!   requests to the gateway, which QEMU answers: one at a time
//!   (`net.echo_roundtrip`, ticks) and [`WINDOW`] in flight
//!   (`net.packets_per_sec`, replies per second of virtual time).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use kaal_protocols::net::{kind, Packet, Status, MAX_FRAME, RING_SLOTS};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env, RingRx, RingTx};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, UDP_HEADER_LEN,
};

/// How long to wait for an answer before asking again; QEMU answers in far
/// less.
const WAIT: Duration = Duration::from_secs(1);
/// The same in TSC ticks if the TSC's frequency is unknown (about a second
/// at the 1-3 GHz QEMU's TSC runs at).
const WAIT_TICKS: u64 = 2_000_000_000;
/// DISCOVERs sent before giving up.
const TRIES: usize = 4;
/// Frames that are not the awaited answer tolerated per wait.
const MAX_OTHER: usize = 64;

/// Benchmark: round trips timed one at a time, replies timed in the
/// pipelined run, and requests in flight there.
const ROUNDS: u64 = 200;
const PACKETS: u64 = 2000;
const WINDOW: u64 = 8;

type Error = &'static str;

struct Client {
    tx: RingTx<Packet, RING_SLOTS>,
    rx: RingRx<Packet, RING_SLOTS>,
    mac: EthernetAddress,
    token: u32,
    /// [`WAIT`] in TSC ticks.
    wait: u64,
}

impl Client {
    /// Takes the rings and waits for the driver's address entry.
    fn new(env: &Env) -> Result<Client, Error> {
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

    fn send_entry(&mut self, p: &Packet) -> Result<(), Error> {
        self.tx
            .send_all(core::slice::from_ref(p))
            .map_err(|_| "corrupt tx ring")
    }

    /// Sends `frame`; returns its token.
    fn send(&mut self, frame: &[u8]) -> Result<u32, Error> {
        self.token += 1;
        let p = Packet::frame(self.token, frame).ok_or("frame too long")?;
        self.send_entry(&p)?;
        Ok(self.token)
    }

    /// The next entry, waiting (by the ring protocol) until one comes.
    fn recv(&mut self) -> Result<Packet, Error> {
        let p = self.rx.recv().map_err(|_| "corrupt rx ring")?;
        self.rx.release();
        Ok(p)
    }

    /// The next entry, or `None` once the TSC passes `deadline`: the test
    /// systems have no timer driver to wake a sleeper, so this polls
    /// (yielding between looks).
    fn recv_until(&mut self, deadline: u64) -> Result<Option<Packet>, Error> {
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
fn frame(
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
fn discover(buf: &mut [u8; MAX_FRAME], mac: EthernetAddress, xid: u32) -> Result<&[u8], Error> {
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
fn offer(frame: &[u8], xid: u32) -> Option<(Ipv4Address, Ipv4Address)> {
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
fn await_offer(c: &mut Client, xid: u32) -> Result<Option<(Ipv4Address, Ipv4Address)>, Error> {
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
            _ => return Err("unexpected entry kind"),
        }
    }
    Err("too many frames that are not the OFFER")
}

/// Sends DISCOVERs for `xid` until an OFFER answers.
fn dhcp(c: &mut Client, xid: u32) -> Result<(Ipv4Address, Ipv4Address), Error> {
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

fn run_dhcp(c: &mut Client) -> Result<(), Error> {
    let (ip, server) = dhcp(c, 0x4b61_614c)?;
    println!("net_dhcp: offer of {ip} from {server}");
    Ok(())
}

fn hostile(c: &mut Client, env: &Env) -> Result<(), Error> {
    let mut good = [0u8; MAX_FRAME];
    let f = discover(&mut good, c.mac, 1)?;
    let good = Packet::frame(0, f).ok_or("frame")?;
    let bad = [
        (kind::FRAME, 0, Status::TooShort),
        (kind::FRAME, (MAX_FRAME + 1) as u16, Status::TooLong),
        (kind::FRAME, 3000, Status::TooLong),
        (0x77, good.len, Status::BadKind),
        (kind::TX_ERROR, good.len, Status::BadKind),
    ];
    for (i, &(k, len, want)) in (100u32..).zip(bad.iter()) {
        let mut p = good;
        (p.kind, p.len, p.token) = (k, len, i);
        c.send_entry(&p)?;
        let r = c.recv()?;
        let got = Status::from_code(r.status);
        if r.kind != kind::TX_ERROR || r.token != i || got != Some(want) {
            println!(
                "net: entry {i} (kind {k}, length {len}) answered by kind {} token {} {got:?}, expected {want:?}",
                r.kind, r.token
            );
            return Err("wrong answer to a bad entry");
        }
    }
    println!(
        "net_bad_descriptor: {} bad entries, {} errors",
        bad.len(),
        bad.len()
    );
    let (ip, server) = dhcp(c, 2)?;
    println!("net_bad_descriptor: then an offer of {ip} from {server}");

    // A DISCOVER, then garbage in the ring header's producer index (its
    // first word, kaal-ring's layout): the driver cuts the ring off, and
    // the OFFER still arrives on `rx`.
    let (tx_mem, _) = env.shared_memory("tx").map_err(|_| "no `tx` ring")?;
    let mut buf = [0u8; MAX_FRAME];
    c.send(discover(&mut buf, c.mac, 3)?)?;
    // SAFETY: the ring memory is mapped read-write here for the life of the
    // program, aligned for the header's atomics.
    let head = unsafe { &*(tx_mem as *const AtomicU32) };
    head.store(0x7fff_0000, Ordering::Release);
    c.tx.peer.0.signal();
    match await_offer(c, 3)? {
        Some((ip, _)) => {
            println!("net_bad_descriptor: offer of {ip} still delivered after the corrupt ring");
            Ok(())
        }
        None => Err("no OFFER after the corrupt ring"),
    }
}

/// An ARP request for `target` from `mac`/`ip`.
fn arp_request(
    buf: &mut [u8; MAX_FRAME],
    mac: EthernetAddress,
    ip: Ipv4Address,
    target: Ipv4Address,
) -> Result<&[u8], Error> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    frame(buf, eth, arp.buffer_len(), |p| {
        arp.emit(&mut ArpPacket::new_unchecked(p))
    })
}

/// Whether `frame` is `from`'s ARP reply to `to`.
fn is_arp_reply(frame: &[u8], from: Ipv4Address, to: Ipv4Address) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() != EthernetProtocol::Arp {
        return false;
    }
    let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
        return false;
    };
    matches!(
        ArpRepr::parse(&arp),
        Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) if source_protocol_addr == from && target_protocol_addr == to
    )
}

/// Waits for the next ARP reply (sleeping between entries: the answer
/// comes).
fn await_reply(c: &mut Client, from: Ipv4Address, to: Ipv4Address) -> Result<(), Error> {
    for _ in 0..MAX_OTHER {
        let p = c.recv()?;
        if p.kind != kind::FRAME {
            return Err("ARP request refused");
        }
        if is_arp_reply(p.bytes(), from, to) {
            return Ok(());
        }
    }
    Err("too many frames that are not ARP replies")
}

fn bench(c: &mut Client, clock: Clock) -> Result<(), Error> {
    let (ip, gateway) = dhcp(c, 0x6265_6e63)?;
    let mut buf = [0u8; MAX_FRAME];
    let req = Packet::frame(0, arp_request(&mut buf, c.mac, ip, gateway)?).ok_or("frame")?;
    for _ in 0..20 {
        c.send_entry(&req)?;
        await_reply(c, gateway, ip)?;
    }
    let t0 = rdtsc();
    for _ in 0..ROUNDS {
        c.send_entry(&req)?;
        await_reply(c, gateway, ip)?;
    }
    let roundtrip = (rdtsc() - t0) / ROUNDS;
    let t0 = rdtsc();
    let mut sent = 0;
    while sent < WINDOW {
        c.send_entry(&req)?;
        sent += 1;
    }
    for _ in 0..PACKETS {
        await_reply(c, gateway, ip)?;
        if sent < PACKETS {
            c.send_entry(&req)?;
            sent += 1;
        }
    }
    let ticks = rdtsc() - t0;
    let per_sec = clock.per_second(PACKETS, ticks);
    println!(
        "net_bench: {PACKETS} ARP replies from {gateway} in {ticks} ticks, {WINDOW} requests in flight"
    );
    println!("KAAL-BENCH net.packets_per_sec {per_sec} packets/s");
    println!("KAAL-BENCH net.echo_roundtrip {roundtrip} ticks");
    Ok(())
}

fn main(env: &Env) -> Result<(), Error> {
    let mut c = Client::new(env)?;
    match env.name() {
        "dhcp" => run_dhcp(&mut c),
        "hostile" => hostile(&mut c, env),
        "bench" => bench(&mut c, env.clock().ok_or("the TSC frequency is unknown")?),
        _ => Err("name me dhcp, hostile or bench"),
    }
}

kaal_rt::component!(main);
