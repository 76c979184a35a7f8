//! The check every frame from the wire passes before smoltcp sees it, so
//! that a malformed frame is counted, not only dropped. smoltcp's own wire
//! parsers do the work, except for the TCP and UDP checksums, which run
//! over every byte received and are summed here 8 bytes at a time
//! ([`sum`]); smoltcp then skips verifying the checksums again
//! ([`checksums`]).

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet,
    TcpPacket, UdpPacket,
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
    let payload = ip.payload();
    let good = match ip.next_header() {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(payload).is_ok()
                && transport_sum_ok(&ip, IpProtocol::Tcp, payload)
        }
        // A zero UDP checksum means none was computed (IPv4 allows it).
        // The UDP checksum covers the datagram's own length (new_checked
        // found it within the payload).
        IpProtocol::Udp => UdpPacket::new_checked(payload).is_ok_and(|u| {
            u.checksum() == 0
                || payload
                    .get(..usize::from(u.len()))
                    .is_some_and(|d| transport_sum_ok(&ip, IpProtocol::Udp, d))
        }),
        IpProtocol::Icmp => Icmpv4Packet::new_checked(payload).is_ok_and(|p| p.verify_checksum()),
        _ => return Verdict::Unsupported,
    };
    if good {
        Verdict::Good
    } else {
        Verdict::Malformed
    }
}

/// Whether the TCP or UDP checksum of `payload`, carried by `ip`, holds:
/// the pseudo header and the payload summed together come to all ones.
/// smoltcp's own check sums 16-bit words; this one sums 8 bytes at a time,
/// since it runs over every byte received (the stack's ticks per KiB
/// before and after are in docs/benchmarks.md, "Cheaper frames").
fn transport_sum_ok(ip: &Ipv4Packet<&[u8]>, protocol: IpProtocol, payload: &[u8]) -> bool {
    let Ok(len) = u16::try_from(payload.len()) else {
        return false;
    };
    let ([a, b, c, d], [e, f, g, h]) = (ip.src_addr().octets(), ip.dst_addr().octets());
    let [l0, l1] = len.to_be_bytes();
    let pseudo = [a, b, c, d, e, f, g, h, 0, protocol.into(), l0, l1];
    // The pseudo header's length is even, so the payload's words line up.
    fold(sum(payload, sum(&pseudo, 0))) == 0xffff
}

/// Adds `data` to the one's-complement sum `acc` (RFC 1071) in 8-byte
/// words of native order, the carries added back; a sum of 64-bit words
/// folds to the same 16-bit sum as one of 16-bit words (2^16 - 1 divides
/// 2^64 - 1), in the same byte order. A final odd byte is padded with a
/// zero after it, as in the 16-bit sum.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let (words, rest) = data.as_chunks::<8>();
    for w in words {
        let (s, carry) = acc.overflowing_add(u64::from_ne_bytes(*w));
        acc = s + u64::from(carry);
    }
    let mut tail = [0u8; 8];
    if let Some(t) = tail.get_mut(..rest.len()) {
        t.copy_from_slice(rest);
    }
    let (s, carry) = acc.overflowing_add(u64::from_ne_bytes(tail));
    s + u64::from(carry)
}

/// A [`sum`] folded to 16 bits (still in the words' byte order: all ones,
/// the value a good checksum gives, reads the same in both).
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc >> 32) + (acc & 0xffff_ffff);
    acc = (acc >> 32) + (acc & 0xffff_ffff);
    acc = (acc >> 16) + (acc & 0xffff);
    acc = (acc >> 16) + (acc & 0xffff);
    acc = (acc >> 16) + (acc & 0xffff);
    u16::try_from(acc).unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Repr};

    proptest! {
        /// The 8-byte sum says what smoltcp's 16-bit one says, on good
        /// checksums, on one byte changed after, and on random ones.
        #[test]
        fn the_sum_agrees_with_smoltcps(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            body in proptest::collection::vec(any::<u8>(), 20..1481),
            udp in any::<bool>(),
            fill in any::<bool>(),
            flip in any::<(usize, u8)>(),
        ) {
            let protocol = if udp { IpProtocol::Udp } else { IpProtocol::Tcp };
            let repr = Ipv4Repr {
                src_addr: Ipv4Address::from(src),
                dst_addr: Ipv4Address::from(dst),
                next_header: protocol,
                payload_len: body.len(),
                hop_limit: 64,
            };
            let mut buf = vec![0u8; repr.buffer_len() + body.len()];
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut ip, &ChecksumCapabilities::default());
            ip.payload_mut().copy_from_slice(&body);
            let (s, d) = (IpAddress::Ipv4(repr.src_addr), IpAddress::Ipv4(repr.dst_addr));
            if udp {
                UdpPacket::new_unchecked(ip.payload_mut()).set_len(body.len() as u16);
            }
            if fill {
                if udp {
                    UdpPacket::new_unchecked(ip.payload_mut()).fill_checksum(&s, &d);
                } else {
                    TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(&s, &d);
                }
            }
            let mut frames = vec![buf.clone()];
            if fill && flip.1 != 0 {
                let mut changed = buf.clone();
                let mut at = flip.0 % body.len();
                if udp && (4..6).contains(&at) {
                    // Not UDP's length: smoltcp's unchecked packet would
                    // slice by it (`check` refuses such a length first).
                    at += 2;
                }
                changed[20 + at] ^= flip.1;
                frames.push(changed);
            }
            for (i, f) in frames.iter().enumerate() {
                let ip = Ipv4Packet::new_checked(&f[..]).unwrap();
                let theirs = if udp {
                    UdpPacket::new_unchecked(ip.payload()).verify_checksum(&s, &d)
                } else {
                    TcpPacket::new_unchecked(ip.payload()).verify_checksum(&s, &d)
                };
                prop_assert_eq!(transport_sum_ok(&ip, protocol, ip.payload()), theirs);
                if fill {
                    prop_assert_eq!(theirs, i == 0);
                }
            }
        }
    }
}
