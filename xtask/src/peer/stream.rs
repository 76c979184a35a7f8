//! TCP streams of the test patterns: sending and checking them, the echo
//! peers (`tcp_echo`, `syn_flood`) and the benchmark helpers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kaal_test_patterns::net::{fill, HOST_SEED};

use super::{Limits, Peer};

/// Bytes per read or write.
const CHUNK: usize = 16 * 1024;

/// tcp_echo: bytes echoed on one connection.
const BIG_ECHO: u64 = 1 << 20;
/// tcp_echo: connections at once, and bytes each echoes.
const PARALLEL: u64 = 16;
/// Bytes that prove a connection open end to end before the parallel echo.
const PROBE: u64 = 1024;
const PARALLEL_BYTES: u64 = 64 * 1024;

/// syn_flood: at most this many connection attempts, this many open at once.
const FLOOD_ATTEMPTS: u32 = 2000;
const FLOOD_OPEN: u32 = 200;
/// syn_flood: bytes echoed before and after.
const KEEPER_BYTES: u64 = 4096;
/// syn_flood: bytes the keeper echoes every half second during the flood.
const KEEPER_PING: u64 = 64;

/// The address of a forward on this machine.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connection to 127.0.0.1:`port`, its reads and writes limited to `io`.
pub fn connect(port: u16, io: Duration) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&local(port), io)
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    limit(&s, io)?;
    Ok(s)
}

/// Sets the read and write limits of `s`.
pub fn limit(s: &TcpStream, io: Duration) -> Result<()> {
    s.set_read_timeout(Some(io))
        .and_then(|()| s.set_write_timeout(Some(io)))
        .and_then(|()| s.set_nodelay(true))
        .context("setting the connection's time limits")
}

/// Whether `err` is a read or write that ran out of time.
pub fn timed_out(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether `err` is the other side resetting or aborting the connection.
pub fn reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// Writes `len` bytes of stream `seed` from `offset` on.
pub fn send_stream(to: &mut impl Write, seed: u64, offset: u64, len: u64) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0;
    while sent < len {
        let n = usize::try_from((len - sent).min(CHUNK as u64))?;
        let chunk = buf.get_mut(..n).context("chunk")?;
        fill(seed, offset + sent, chunk);
        to.write_all(chunk)
            .with_context(|| format!("sending after {sent} of {len} bytes"))?;
        sent += n as u64;
    }
    to.flush().context("sending")
}

/// Reads exactly `len` bytes that must be stream `seed` from `offset` on;
/// `what` names them in errors.
pub fn expect_stream(
    from: &mut impl Read,
    seed: u64,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    let mut got = 0;
    while got < len {
        let room = usize::try_from((len - got).min(CHUNK as u64))?;
        let n = match from.read(buf.get_mut(..room).context("chunk")?) {
            Ok(0) => bail!("{what} ended after {got} of {len} bytes"),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => {
                bail!("{what}: nothing came for the time limit after {got} of {len} bytes")
            }
            Err(e) if reset(&e) => bail!("{what} was reset after {got} of {len} bytes"),
            Err(e) => return Err(e).with_context(|| format!("{what}: after {got} of {len} bytes")),
        };
        let (have, should) = (
            buf.get(..n).context("read")?,
            want.get_mut(..n).context("read")?,
        );
        fill(seed, offset + got, should);
        if let Some(i) = have.iter().zip(should.iter()).position(|(a, b)| a != b) {
            let (a, b) = (
                have.get(i).copied().unwrap_or_default(),
                should.get(i).copied().unwrap_or_default(),
            );
            bail!(
                "{what}: byte {} is {a:#04x}, expected {b:#04x} (stream offset {})",
                got + i as u64,
                offset + got + i as u64
            );
        }
        got += n as u64;
    }
    Ok(())
}

/// Sends `len` bytes of the host stream from `offset` on one connection
/// while a second thread reads the echo back, which must be byte-exact.
pub fn echo(port: u16, offset: u64, len: u64, io: Duration) -> Result<()> {
    let s = connect(port, io)?;
    echo_on(&s, offset, len)
}

/// [`echo`] on an open connection.
fn echo_on(s: &TcpStream, offset: u64, len: u64) -> Result<()> {
    let mut reader = s.try_clone().context("cloning the connection")?;
    thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut w = s;
            send_stream(&mut w, HOST_SEED, offset, len)
        });
        let got = expect_stream(&mut reader, HOST_SEED, offset, len, "the echo");
        if got.is_err() {
            // Unblocks a writer stuck on a full window.
            let _ = reader.shutdown(Shutdown::Both);
        }
        let sent = writer
            .join()
            .map_err(|_| anyhow!("the sending thread panicked"))?;
        got?;
        sent
    })
}

/// `tcp_echo`: 1 MiB on one connection, then 16 connections at once.
pub fn tcp_echo(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(7)?;
    let io = peer.limits.io;
    let started = Instant::now();
    echo(port, 0, BIG_ECHO, io).with_context(|| format!("echoing {BIG_ECHO} bytes"))?;
    peer.log.line(format!(
        "tcp_echo: {BIG_ECHO} bytes echoed byte-exact through 127.0.0.1:{port} in {} ms",
        started.elapsed().as_millis()
    ));
    concurrent(peer, "tcp_echo", port, PARALLEL_BYTES)
}

/// [`parallel_echo`] of [`PARALLEL`] connections of `each` bytes, judged
/// and logged as program `name`.
fn concurrent(peer: &mut Peer, name: &str, port: u16, each: u64) -> Result<()> {
    let started = Instant::now();
    let (results, again) = parallel_echo(port, peer.limits.io, PARALLEL, each)?;
    if again > 0 {
        peer.log.line(format!(
            "{name}: {again} connection attempts were reset before they reached the guest, and made again"
        ));
    }
    let failed: Vec<String> = results
        .iter()
        .zip(0u64..)
        .filter_map(|(r, i)| {
            r.as_ref()
                .err()
                .map(|e| format!("connection {i} (stream offset {}): {e:#}", i * each))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {PARALLEL} concurrent connections failed: {}",
            failed.len(),
            failed.join("; ")
        );
    }
    peer.log.line(format!(
        "{name}: {PARALLEL} connections open at once echoed {each} bytes each byte-exact in {} ms",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// Opens `n` connections and has them echo `each` bytes at once (connection
/// `i` from stream offset `i * each`); each one's result and the number of
/// attempts made again.
fn parallel_echo(port: u16, io: Duration, n: u64, each: u64) -> Result<(Vec<Result<()>>, u32)> {
    // Slirp's listening socket for a forward has a backlog of 1: a burst
    // of connects can be reset on the host before it reaches the guest. So
    // the connections open one after another, each proven end to end by
    // the echo of its first bytes (an attempt reset before that is made
    // again), and then all carry their data at once.
    let mut conns = Vec::new();
    let mut again = 0;
    for i in 0..n {
        let offset = i * each;
        let mut tries = 0;
        let s = loop {
            let opened = connect(port, io).and_then(|s| echo_on(&s, offset, PROBE).map(|()| s));
            match opened {
                Ok(s) => break s,
                Err(e) if tries < 3 && e.chain().any(|c| c.to_string().contains("after 0 of")) => {
                    tries += 1;
                    again += 1;
                }
                Err(e) => return Err(e).with_context(|| format!("opening connection {i} of {n}")),
            }
        };
        conns.push((s, offset));
    }
    let results: Vec<Result<()>> = thread::scope(|scope| {
        let handles: Vec<_> = conns
            .iter()
            .map(|(s, offset)| scope.spawn(move || echo_on(s, offset + PROBE, each - PROBE)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("its thread panicked")))
            })
            .collect()
    });
    Ok((results, again))
}

/// `tokio_echo`: 16 connections at once echo 1 MiB each (tokio's
/// multi-threaded runtime on the POSIX layer).
pub fn tokio_echo(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(7)?;
    concurrent(peer, "tokio_echo", port, BIG_ECHO)
}

/// How the flood's attempts went.
#[derive(Debug, Default)]
struct Flood {
    attempts: AtomicU32,
    connected: AtomicU32,
    refused: AtomicU32,
    timed_out: AtomicU32,
    other: AtomicU32,
}

/// `syn_flood`: an echo on a keeper connection, a bounded flood of
/// connection attempts while the keeper goes on echoing, then echoes on the
/// keeper and on a fresh connection.
pub fn syn_flood(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(7)?;
    let io = peer.limits.io;
    let keeper = connect(port, io).context("the keeper connection")?;
    echo_on(&keeper, 0, KEEPER_BYTES).context("the keeper's echo before the flood")?;
    peer.log.line(format!(
        "syn_flood: keeper connection echoed {KEEPER_BYTES} bytes"
    ));
    let flood = Flood::default();
    let started = Instant::now();
    let deadline = started + peer.limits.flood;
    let cancel = &peer.cancel;
    // The keeper goes on being served while the flood runs: a short echo
    // every half second, its bytes going on from where the last one ended.
    let flooding = AtomicBool::new(true);
    let keeper_result = thread::scope(|scope| {
        let keeper_thread = scope.spawn(|| -> Result<(u64, u32)> {
            let mut offset = KEEPER_BYTES;
            let mut rounds = 0;
            while flooding.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(500));
                echo_on(&keeper, offset, KEEPER_PING).with_context(|| {
                    format!("the keeper's echo {} during the flood", rounds + 1)
                })?;
                offset += KEEPER_PING;
                rounds += 1;
            }
            Ok((offset, rounds))
        });
        let workers: Vec<_> = (0..FLOOD_OPEN)
            .map(|_| {
                scope.spawn(|| loop {
                    let now = Instant::now();
                    if now >= deadline || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let claimed =
                        flood
                            .attempts
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                (n < FLOOD_ATTEMPTS).then_some(n + 1)
                            });
                    if claimed.is_err() {
                        break;
                    }
                    let wait = (deadline - now).min(Duration::from_secs(1));
                    let counter = match TcpStream::connect_timeout(&local(port), wait) {
                        // Closed at once: the point is the handshakes.
                        Ok(_) => &flood.connected,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => &flood.refused,
                        Err(e) if timed_out(&e) => &flood.timed_out,
                        Err(_) => &flood.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        flooding.store(false, Ordering::Relaxed);
        keeper_thread
            .join()
            .map_err(|_| anyhow!("the keeper's thread panicked"))?
    });
    let n = |c: &AtomicU32| c.load(Ordering::Relaxed);
    peer.log.line(format!(
        "syn_flood: {} attempts in {} ms (at most {FLOOD_OPEN} open): {} connected, {} refused, {} timed out, {} other errors",
        n(&flood.attempts),
        started.elapsed().as_millis(),
        n(&flood.connected),
        n(&flood.refused),
        n(&flood.timed_out),
        n(&flood.other)
    ));
    let (offset, rounds) = keeper_result?;
    peer.log.line(format!(
        "syn_flood: the keeper echoed {KEEPER_PING} bytes {rounds} times during the flood"
    ));
    echo_on(&keeper, offset, KEEPER_BYTES)
        .context("the keeper connection's echo after the flood")?;
    echo(port, 2 * KEEPER_BYTES, KEEPER_BYTES, io)
        .context("a fresh connection's echo after the flood")?;
    peer.log.line(format!(
        "syn_flood: after the flood the keeper and a fresh connection echoed {KEEPER_BYTES} bytes each"
    ));
    Ok(())
}

/// Time limit of each read and write of the benchmark helpers.
const BENCH_IO: Duration = Limits::GUEST.io;

/// Sends `bytes` of the host stream to a guest sink at 127.0.0.1:`host_port`,
/// half-closes, and waits for the sink to close in turn (it reads to end of
/// file, then closes): the time from connecting to that close.
pub fn tcp_send(host_port: u16, bytes: u64) -> Result<Duration> {
    let started = Instant::now();
    let mut s = connect(host_port, BENCH_IO)?;
    send_stream(&mut s, HOST_SEED, 0, bytes)?;
    s.shutdown(Shutdown::Write).context("half-closing")?;
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("waiting for the sink to close"),
        }
    }
}

/// Reads `bytes` from a guest source at 127.0.0.1:`host_port` (any content):
/// the time from connecting to the last byte.
#[allow(dead_code)] // the source is asked for its length first (peer::bench)
pub fn tcp_recv(host_port: u16, bytes: u64) -> Result<Duration> {
    let started = Instant::now();
    let mut s = connect(host_port, BENCH_IO)?;
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < bytes {
        let room = usize::try_from((bytes - got).min(CHUNK as u64))?;
        match s.read(buf.get_mut(..room).context("chunk")?) {
            Ok(0) => bail!("the source closed after {got} of {bytes} bytes"),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("after {got} of {bytes} bytes")),
        }
    }
    Ok(started.elapsed())
}

#[cfg(test)]
pub mod tests {
    use super::super::{Log, Ports, Proto};
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Short limits for fakes on this machine.
    pub const FAST: Limits = Limits {
        io: Duration::from_secs(10),
        accept: Duration::from_secs(10),
        reaccept: Duration::from_secs(10),
        datagram: Duration::from_millis(300),
        flood: Duration::from_secs(5),
    };

    /// A peer for the fake guest listening on `ports`.
    pub fn peer(ports: Ports) -> Peer {
        Peer {
            ports,
            limits: FAST,
            cancel: Arc::new(AtomicBool::new(false)),
            log: Log::default(),
        }
    }

    /// A fake guest server on 127.0.0.1: accepts connections until dropped,
    /// each served by `serve` on its own thread.
    pub struct Fake {
        pub port: u16,
        stop: Arc<AtomicBool>,
    }

    impl Fake {
        pub fn tcp(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Result<Fake> {
            let serve = Arc::new(serve);
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            thread::spawn(move || {
                for s in listener.incoming() {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    // Like a guest stack: no Nagle delay between a reply's pieces.
                    let _ = s.set_nodelay(true);
                    let serve = Arc::clone(&serve);
                    thread::spawn(move || serve(s));
                }
            });
            Ok(Fake { port, stop })
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            // Wakes the accepting thread, which then sees the flag.
            let _ = TcpStream::connect_timeout(&local(self.port), Duration::from_secs(1));
        }
    }

    /// Echoes what it reads, changing byte `flip` (counted from the
    /// connection's start) if asked.
    fn echo_flipping(mut s: TcpStream, flip: Option<u64>) {
        let mut buf = [0u8; 4096];
        let mut at = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            let chunk = &mut buf[..n];
            if let Some(f) = flip.filter(|f| (at..at + n as u64).contains(f)) {
                chunk[(f - at) as usize] ^= 0x20;
            }
            at += n as u64;
            if s.write_all(chunk).is_err() {
                break;
            }
        }
    }

    pub fn echo_server(s: TcpStream) {
        echo_flipping(s, None);
    }

    fn tcp7(port: u16) -> Ports {
        Ports::with(&[(Proto::Tcp, 7, port)])
    }

    #[test]
    fn tcp_echo_passes_against_an_echo_server() -> Result<()> {
        let fake = Fake::tcp(echo_server)?;
        let mut p = peer(tcp7(fake.port));
        tcp_echo(&mut p)?;
        assert!(
            p.log.lines[0].starts_with("tcp_echo: 1048576 bytes echoed byte-exact"),
            "{:?}",
            p.log.lines
        );
        assert!(p.log.lines[1]
            .starts_with("tcp_echo: 16 connections open at once echoed 65536 bytes each"));
        Ok(())
    }

    #[test]
    fn a_flipped_byte_fails_tcp_echo_and_says_where() -> Result<()> {
        let fake = Fake::tcp(|s| echo_flipping(s, Some(300_000)))?;
        let err = tcp_echo(&mut peer(tcp7(fake.port)))
            .err()
            .map(|e| format!("{e:#}"));
        let want = format!(
            "echoing 1048576 bytes: the echo: byte 300000 is {:#04x}, expected {:#04x}",
            kaal_test_patterns::net::byte(HOST_SEED, 300_000) ^ 0x20,
            kaal_test_patterns::net::byte(HOST_SEED, 300_000)
        );
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with(&want)),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn an_echo_cut_short_says_how_much_came() -> Result<()> {
        // Echoes 1000 bytes, then closes.
        let fake = Fake::tcp(|mut s| {
            let mut buf = [0u8; 1000];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(&buf);
            }
        })?;
        let err = echo(fake.port, 0, 5000, FAST.io)
            .err()
            .map(|e| format!("{e:#}"));
        // Closing with unread bytes makes a reset, which may come first.
        assert!(
            err.as_deref()
                .is_some_and(|e| e == "the echo ended after 1000 of 5000 bytes"
                    || e == "the echo was reset after 1000 of 5000 bytes"),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn syn_flood_counts_its_attempts_and_echoes_after() -> Result<()> {
        let fake = Fake::tcp(echo_server)?;
        let mut p = peer(tcp7(fake.port));
        syn_flood(&mut p)?;
        let flood = &p.log.lines[1];
        assert!(flood.starts_with("syn_flood: 2000 attempts"), "{flood}");
        assert!(flood.contains("connected"), "{flood}");
        assert!(p.log.lines[2].contains("times during the flood"));
        assert!(p.log.lines[3].contains("the keeper and a fresh connection echoed 4096"));
        Ok(())
    }

    #[test]
    fn syn_flood_fails_when_the_keeper_breaks() -> Result<()> {
        // The 4097th byte of each connection comes back wrong: the keeper's
        // echo after the flood.
        let fake = Fake::tcp(|s| echo_flipping(s, Some(4096)))?;
        let err = syn_flood(&mut peer(tcp7(fake.port)))
            .err()
            .map(|e| format!("{e:#}"));
        // The first echo after byte 4096 breaks: during the flood, or
        // after it when the flood ended before the keeper's first turn.
        assert!(
            err.as_deref().is_some_and(|e| e
                .starts_with("the keeper's echo 1 during the flood: the echo: byte 0 is")
                || e.starts_with(
                    "the keeper connection's echo after the flood: the echo: byte 0 is"
                )),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn bench_helpers_time_a_sink_and_a_source() -> Result<()> {
        // A sink that checks what it reads, then closes.
        let sink = Fake::tcp(|mut s| {
            let _ = expect_stream(&mut s, HOST_SEED, 0, 3 << 20, "sunk");
            let mut rest = [0u8; 1];
            let _ = s.read(&mut rest);
        })?;
        assert!(tcp_send(sink.port, 3 << 20)? > Duration::ZERO);
        let source = Fake::tcp(|mut s| {
            let _ = send_stream(&mut s, HOST_SEED, 0, 2 << 20);
        })?;
        assert!(tcp_recv(source.port, 2 << 20)? > Duration::ZERO);
        let err = tcp_recv(source.port, 3 << 20)
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("the source closed after 2097152 of 3145728 bytes")
        );
        Ok(())
    }
}
