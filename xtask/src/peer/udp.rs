//! `udp_echo`: datagrams to the guest's UDP echo port, each of which must
//! come back equal.

use std::io;
use std::net::UdpSocket;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kaal_test_patterns::net::{fill, HOST_SEED};

use super::stream::{local, timed_out};
use super::{Peer, Proto};

/// Datagrams sent.
const DATAGRAMS: u64 = 100;
/// The largest: what fits an Ethernet frame's 1500 bytes after the IPv4
/// and UDP headers.
const LARGEST: u64 = 1472;
/// Sends of a datagram after the first, when its echo does not come.
const RETRIES: u32 = 3;

/// Datagram `i`: sizes spread over 1..=1472, each from its own place in
/// the host stream.
fn datagram(i: u64) -> Vec<u8> {
    let len = 1 + i * (LARGEST - 1) / (DATAGRAMS - 1);
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or_default()];
    fill(HOST_SEED, i * 4096, &mut bytes);
    bytes
}

/// Where two datagrams first differ, for messages.
fn difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(at) => format!("{} bytes, differing at byte {at}", got.len()),
        None => format!("{} bytes, expected {}", got.len(), want.len()),
    }
}

pub fn udp_echo(peer: &mut Peer) -> Result<()> {
    let port = peer.ports.host(Proto::Udp, 7)?;
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket on 127.0.0.1")?;
    socket
        .connect(local(port))
        .with_context(|| format!("connecting the UDP socket to 127.0.0.1:{port}"))?;
    socket
        .set_read_timeout(Some(peer.limits.datagram))
        .context("setting the UDP socket's time limit")?;
    let sent: Vec<Vec<u8>> = (0..DATAGRAMS).map(datagram).collect();
    let mut buf = vec![0u8; 2048];
    let (mut retries, mut late) = (0u32, 0u32);
    let started = Instant::now();
    for (i, want) in sent.iter().enumerate() {
        let mut tries = 0;
        socket
            .send(want)
            .with_context(|| format!("sending datagram {i} ({} bytes)", want.len()))?;
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let got = buf.get(..n).context("datagram")?;
                    if got == want.as_slice() {
                        break;
                    }
                    // A late echo of an earlier datagram that was sent again.
                    if sent.get(..i).is_some_and(|s| s.iter().any(|d| d == got)) {
                        late += 1;
                        continue;
                    }
                    bail!(
                        "datagram {i} ({} bytes) came back as {}",
                        want.len(),
                        difference(got, want)
                    );
                }
                Err(e) if timed_out(&e) => {
                    peer.go_on("waiting for a datagram's echo")?;
                    if tries == RETRIES {
                        bail!(
                            "datagram {i} ({} bytes) never came back: sent {} times, {} ms apart",
                            want.len(),
                            RETRIES + 1,
                            peer.limits.datagram.as_millis()
                        );
                    }
                    tries += 1;
                    retries += 1;
                    socket
                        .send(want)
                        .with_context(|| format!("sending datagram {i} again"))?;
                }
                // A signal to the harness (a child ending) is no answer.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Linux reports an ICMP port unreachable on a connected socket so.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    bail!("datagram {i}: 127.0.0.1:{port} refused it (nobody listens)")
                }
                Err(e) => return Err(e).with_context(|| format!("receiving datagram {i}")),
            }
        }
    }
    peer.log.line(format!(
        "udp_echo: {DATAGRAMS} datagrams of 1..={LARGEST} bytes echoed equal in {} ms; {retries} retries, {late} late duplicates",
        started.elapsed().as_millis()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::peer;
    use super::super::Ports;
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    /// A fake UDP echo server; `answer` says what to send back for the
    /// n-th datagram it got (none: drop it).
    struct FakeUdp {
        port: u16,
        stop: Arc<AtomicBool>,
    }

    impl FakeUdp {
        fn new(answer: fn(u32, &[u8]) -> Option<Vec<u8>>) -> Result<FakeUdp> {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            let port = s.local_addr()?.port();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut n = 0;
                while !stopped.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = s.recv_from(&mut buf) {
                        if let Some(reply) = answer(n, &buf[..len]) {
                            let _ = s.send_to(&reply, from);
                        }
                        n += 1;
                    }
                }
            });
            Ok(FakeUdp { port, stop })
        }

        fn ports(&self) -> Ports {
            Ports::with(&[(Proto::Udp, 7, self.port)])
        }
    }

    impl Drop for FakeUdp {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn datagrams_spread_over_the_sizes_and_differ() {
        let all: Vec<Vec<u8>> = (0..DATAGRAMS).map(datagram).collect();
        assert_eq!(all.first().map(Vec::len), Some(1));
        assert_eq!(all.last().map(Vec::len), Some(1472));
        for (i, d) in all.iter().enumerate() {
            assert!(all[..i].iter().all(|e| e != d), "datagram {i} repeats");
        }
    }

    #[test]
    fn udp_echo_passes_and_counts_retries() -> Result<()> {
        let fake = FakeUdp::new(|_, d| Some(d.to_vec()))?;
        let mut p = peer(fake.ports());
        udp_echo(&mut p)?;
        assert!(p.log.lines[0].ends_with("0 retries, 0 late duplicates"));
        // Drops the 5th and 10th datagram it gets: two retries.
        let lossy = FakeUdp::new(|n, d| (n != 5 && n != 10).then(|| d.to_vec()))?;
        let mut p = peer(lossy.ports());
        udp_echo(&mut p)?;
        assert!(p.log.lines[0].contains("; 2 retries"), "{:?}", p.log.lines);
        Ok(())
    }

    #[test]
    fn udp_echo_fails_on_a_changed_or_lost_datagram() -> Result<()> {
        let changed = FakeUdp::new(|n, d| {
            let mut d = d.to_vec();
            if n == 42 {
                if let Some(b) = d.last_mut() {
                    *b ^= 1;
                }
            }
            Some(d)
        })?;
        let err = udp_echo(&mut peer(changed.ports()))
            .err()
            .map(|e| format!("{e:#}"));
        let len = datagram(42).len();
        assert_eq!(
            err,
            Some(format!(
                "datagram 42 ({len} bytes) came back as {len} bytes, differing at byte {}",
                len - 1
            ))
        );
        let lost = FakeUdp::new(|n, d| (n < 3).then(|| d.to_vec()))?;
        let err = udp_echo(&mut peer(lost.ports()))
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("datagram 3 (45 bytes) never came back: sent 4 times, 300 ms apart")
        );
        Ok(())
    }
}
