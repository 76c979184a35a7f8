//! A client of the network protocol, talking to QEMU's user network (its
//! DHCP server and gateway) through the driver, on the DHCP client library
//! of `tests/rawnet`; what it does depends on its name:
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

use kaal_protocols::net::{kind, Packet, Status, MAX_FRAME};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};
use kaal_test_rawnet::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address,
};
use kaal_test_rawnet::{await_offer, dhcp, discover, frame, Client, Error, MAX_OTHER};

/// Benchmark: round trips timed one at a time, replies timed in the
/// pipelined run, and requests in flight there.
const ROUNDS: u64 = 200;
const PACKETS: u64 = 2000;
const WINDOW: u64 = 8;

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
        "hostile" => hostile(&mut c, env),
        "bench" => bench(&mut c, env.clock().ok_or("the TSC frequency is unknown")?),
        _ => Err("name me hostile or bench"),
    }
}

kaal_rt::component!(main);
