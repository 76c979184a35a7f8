//! The check every frame from the wire passes before smoltcp sees it, so
//! that a malformed frame is counted, not only dropped. smoltcp's own wire
//! parsers do the work; smoltcp then skips verifying the checksums again
//! ([`checksums`]).

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv4Packet, IpAddress, IpProtocol,
    Ipv4Packet, TcpPacket, UdpPacket,
};

/// The largest UDP payload sent: an Ethernet frame's 1500 bytes less the
/// IPv4 and UDP headers (the stack does not fragment).
pub const MAX_UDP_PAYLOAD: usize = 1500 - 20 - 8;

/// What a frame from the wire is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed ARP or IPv4 carrying TCP, UDP or ICMP: for smoltcp.
    Good,
    /// Lengths that do not add up, a bad checksum, a header that does not
    /// parse.
    Malformed,
    /// Well-formed, but nothing this stack speaks (IPv6, other IP
    /// protocols, IPv4 fragments).
    Unsupported,
}

/// Checks a frame received from the network.
pub fn check(frame: &[u8]) -> Verdict {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Verdict::Malformed;
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            match ArpPacket::new_checked(eth.payload()).map(|p| ArpRepr::parse(&p)) {
                Ok(Ok(_)) => Verdict::Good,
                _ => Verdict::Malformed,
            }
        }
        EthernetProtocol::Ipv4 => ipv4(eth.payload()),
        _ => Verdict::Unsupported,
    }
}

fn ipv4(packet: &[u8]) -> Verdict {
    let Ok(ip) = Ipv4Packet::new_checked(packet) else {
        return Verdict::Malformed;
    };
    if !ip.verify_checksum() {
        return Verdict::Malformed;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Verdict::Unsupported;
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    let payload = ip.payload();
    let good = match ip.next_header() {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(payload).is_ok_and(|t| t.verify_checksum(&src, &dst))
        }
        // A zero UDP checksum means none was computed (IPv4 allows it).
        IpProtocol::Udp => UdpPacket::new_checked(payload)
            .is_ok_and(|u| u.checksum() == 0 || u.verify_checksum(&src, &dst)),
        IpProtocol::Icmp => Icmpv4Packet::new_checked(payload).is_ok_and(|p| p.verify_checksum()),
        _ => return Verdict::Unsupported,
    };
    if good {
        Verdict::Good
    } else {
        Verdict::Malformed
    }
}

/// The checksum work left to smoltcp: computing them on what it sends;
/// [`check`] verified what it receives.
pub fn checksums() -> ChecksumCapabilities {
    let mut c = ChecksumCapabilities::ignored();
    c.ipv4 = Checksum::Tx;
    c.udp = Checksum::Tx;
    c.tcp = Checksum::Tx;
    c.icmpv4 = Checksum::Tx;
    c
}
