//! Peers the guest connects to: `guest_connect` and `restart`. The harness
//! listens on 127.0.0.1, tells the guest the port through the forwarded
//! control port, and the guest connects to 10.0.2.2 at that port (slirp
//! maps it to the host's 127.0.0.1).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kaal_test_patterns::net::{fill, EXCHANGE_BYTES, GUEST_SEED, HOST_SEED};

use super::stream::{self, connect, expect_stream, limit, send_stream};
use super::Peer;

/// The guest's control port: it reads one line, the host port to connect to.
pub const CONTROL_PORT: u16 = 9000;

/// restart: the first stream must bring at least this much before the
/// guest's network service is killed.
const RESTART_MIN_BYTES: u64 = 256 * 1024;

/// How often a listener or a quiet stream is looked at.
const POLL: Duration = Duration::from_millis(20);

/// A non-blocking listener on 127.0.0.1:`port` (0: any free port).
pub(super) fn listen(port: u16) -> Result<TcpListener> {
    let l = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    l.set_nonblocking(true)
        .context("making the listener non-blocking")?;
    Ok(l)
}

/// Listens on 127.0.0.1 and sends the port, as the line `P\n`, to the
/// guest's control port.
fn announce(peer: &mut Peer, program: &str) -> Result<TcpListener> {
    let listener = listen(0)?;
    let port = listener.local_addr()?.port();
    let control = peer.tcp(CONTROL_PORT)?;
    let mut s = connect(control, peer.limits.io).context("the control connection")?;
    s.write_all(format!("{port}\n").as_bytes())
        .context("writing the control line")?;
    // A clean close: the guest reads the line, then end of file.
    let _ = s.shutdown(Shutdown::Both);
    peer.log.line(format!(
        "{program}: listening on 127.0.0.1:{port}; sent \"{port}\\n\" to guest port {CONTROL_PORT} (host port {control})"
    ));
    Ok(listener)
}

/// The guest's connection, if one is waiting.
fn try_accept(listener: &TcpListener, io: Duration) -> Result<Option<TcpStream>> {
    match listener.accept() {
        Ok((s, _)) => {
            s.set_nonblocking(false)
                .context("making the connection blocking")?;
            limit(&s, io)?;
            Ok(Some(s))
        }
        Err(e) if stream::timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e).context("accepting the guest's connection"),
    }
}

/// Waits up to `within` for the guest's connection to `listener`.
pub(super) fn accept(
    peer: &Peer,
    listener: &TcpListener,
    within: Duration,
    what: &str,
) -> Result<TcpStream> {
    let port = listener.local_addr()?.port();
    let started = Instant::now();
    loop {
        if let Some(s) = try_accept(listener, peer.limits.io)? {
            return Ok(s);
        }
        peer.go_on(&format!("waiting for {what}"))?;
        if started.elapsed() >= within {
            bail!(
                "the guest did not connect to 127.0.0.1:{port} (10.0.2.2:{port} in the guest) within {}s ({what})",
                within.as_secs()
            );
        }
        thread::sleep(POLL);
    }
}

/// The exchange of guest_connect on the guest's connection: exactly
/// EXCHANGE_BYTES of the guest stream up to its end of file, then as many
/// of the host stream back.
fn exchange(peer: &mut Peer, mut s: TcpStream, program: &str) -> Result<()> {
    let from = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    expect_stream(&mut s, GUEST_SEED, 0, EXCHANGE_BYTES, "the guest's stream")?;
    // Then its end: a byte more is as wrong as a byte less.
    let mut more = [0u8; 1];
    match s.read(&mut more) {
        Ok(0) => {}
        Ok(_) => bail!("the guest's stream goes on past {EXCHANGE_BYTES} bytes"),
        Err(e) if stream::timed_out(&e) => bail!(
            "the guest sent {EXCHANGE_BYTES} bytes but did not close its side (no end of file)"
        ),
        Err(e) => return Err(e).context("waiting for the end of the guest's stream"),
    }
    send_stream(&mut s, HOST_SEED, 0, EXCHANGE_BYTES).context("sending the host's stream")?;
    s.shutdown(Shutdown::Write)
        .context("closing after the host's stream")?;
    peer.log.line(format!(
        "{program}: the guest connected from {from}; received {EXCHANGE_BYTES} bytes of the guest stream, byte-exact, then end of file; sent {EXCHANGE_BYTES} bytes of the host stream"
    ));
    Ok(())
}

/// `guest_connect`.
pub fn guest_connect(peer: &mut Peer) -> Result<()> {
    let listener = announce(peer, "guest_connect")?;
    let s = accept(
        peer,
        &listener,
        peer.limits.accept,
        "the guest's connection",
    )?;
    exchange(peer, s, "guest_connect")
}

/// How restart's first stream ended.
enum End {
    Eof,
    Reset,
    /// Still open when the guest connected again: this is the second one.
    Superseded(TcpStream),
}

/// `restart`: a first stream the guest sends until its network service is
/// killed, then the exchange of guest_connect on a second connection.
pub fn restart(peer: &mut Peer) -> Result<()> {
    let listener = announce(peer, "restart")?;
    let mut first = accept(
        peer,
        &listener,
        peer.limits.accept,
        "the first stream's connection",
    )?;
    // Short reads: between them the listener is looked at, since the first
    // connection may stay open (nobody left to close it) when the second comes.
    first
        .set_read_timeout(Some(POLL))
        .context("setting the first stream's poll")?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut want = vec![0u8; 16 * 1024];
    let mut got = 0u64;
    let mut quiet_since = Instant::now();
    let end = loop {
        match first.read(&mut buf) {
            Ok(0) => break End::Eof,
            Ok(n) => {
                let (have, should) = (
                    buf.get(..n).context("read")?,
                    want.get_mut(..n).context("read")?,
                );
                fill(GUEST_SEED, got, should);
                if let Some(i) = have.iter().zip(should.iter()).position(|(a, b)| a != b) {
                    bail!(
                        "the first stream's byte {} is {:#04x}, expected {:#04x}",
                        got + i as u64,
                        have.get(i).copied().unwrap_or_default(),
                        should.get(i).copied().unwrap_or_default()
                    );
                }
                got += n as u64;
                quiet_since = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if stream::reset(&e) => break End::Reset,
            Err(e) if stream::timed_out(&e) => {
                if let Some(second) = try_accept(&listener, peer.limits.io)? {
                    break End::Superseded(second);
                }
                peer.go_on("reading the first stream")?;
                if quiet_since.elapsed() >= peer.limits.reaccept {
                    bail!(
                        "the first stream stalled: nothing for {}s after {got} bytes, and no second connection",
                        peer.limits.reaccept.as_secs()
                    );
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("the first stream, after {got} bytes"))
            }
        }
    };
    let how = match &end {
        End::Eof => "end of file",
        End::Reset => "a reset",
        End::Superseded(_) => "still open when the second connection came",
    };
    peer.log.line(format!(
        "restart: the first stream brought {got} bytes, byte-exact; it ended with {how}"
    ));
    if got < RESTART_MIN_BYTES {
        bail!(
            "the first stream ended ({how}) after {got} bytes, expected at least {RESTART_MIN_BYTES} before the service was killed"
        );
    }
    drop(first);
    let second = match end {
        End::Superseded(s) => s,
        End::Eof | End::Reset => accept(
            peer,
            &listener,
            peer.limits.reaccept,
            "the second connection, after the restart",
        )?,
    };
    exchange(peer, second, "restart")
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::{peer, Fake};
    use super::super::{Ports, Proto};
    use super::*;
    use std::io::BufRead;

    /// The control port's side of a fake guest: the port in the line.
    fn read_control(s: TcpStream) -> Option<u16> {
        let mut line = String::new();
        io::BufReader::new(s).read_line(&mut line).ok()?;
        line.trim_end().parse().ok()
    }

    /// Connects back to the harness at `port`.
    fn connect_back(port: u16) -> Option<TcpStream> {
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        Some(s)
    }

    /// The guest side of the exchange, `spoil` changing what it sends.
    fn guest_exchange(mut s: TcpStream, len: u64, spoil: Option<u64>) {
        let mut bytes = vec![0u8; len as usize];
        fill(GUEST_SEED, 0, &mut bytes);
        if let Some(at) = spoil {
            bytes[at as usize] ^= 1;
        }
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(Shutdown::Write);
        let _ = expect_stream(&mut s, HOST_SEED, 0, EXCHANGE_BYTES, "host");
    }

    fn control(port: u16) -> Ports {
        Ports::with(&[(Proto::Tcp, CONTROL_PORT, port)])
    }

    #[test]
    fn guest_connect_passes_against_a_guest_that_connects_back() -> Result<()> {
        let fake = Fake::tcp(|s| {
            if let Some(back) = read_control(s).and_then(connect_back) {
                guest_exchange(back, EXCHANGE_BYTES, None);
            }
        })?;
        let mut p = peer(control(fake.port));
        guest_connect(&mut p)?;
        assert!(p.log.lines[1].contains(
            "received 65536 bytes of the guest stream, byte-exact, then end of file; sent 65536 bytes"
        ));
        Ok(())
    }

    #[test]
    fn guest_connect_names_what_the_guest_got_wrong() -> Result<()> {
        let wrong_byte = Fake::tcp(|s| {
            if let Some(back) = read_control(s).and_then(connect_back) {
                guest_exchange(back, EXCHANGE_BYTES, Some(777));
            }
        })?;
        let err = guest_connect(&mut peer(control(wrong_byte.port)))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("the guest's stream: byte 777 is")),
            "{err:?}"
        );
        let short = Fake::tcp(|s| {
            if let Some(back) = read_control(s).and_then(connect_back) {
                guest_exchange(back, 1000, None);
            }
        })?;
        let err = guest_connect(&mut peer(control(short.port)))
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("the guest's stream ended after 1000 of 65536 bytes")
        );
        // A guest that never connects: the accept's limit.
        let silent = Fake::tcp(|s| {
            let _ = read_control(s);
        })?;
        let mut p = peer(control(silent.port));
        p.limits.accept = Duration::from_millis(300);
        let err = guest_connect(&mut p).err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("the guest did not connect to 127.0.0.1:")
                    && e.ends_with("within 0s (the guest's connection)")),
            "{err:?}"
        );
        Ok(())
    }

    /// A guest whose first stream brings `first` bytes and ends (closed, or
    /// left open when `keep_open`), then connects again.
    fn restarting_guest(s: TcpStream, first: u64, keep_open: bool) {
        let Some(port) = read_control(s) else { return };
        let Some(mut one) = connect_back(port) else {
            return;
        };
        if send_stream(&mut one, GUEST_SEED, 0, first).is_err() {
            return;
        }
        let _held = if keep_open {
            Some(one)
        } else {
            drop(one);
            None
        };
        thread::sleep(Duration::from_millis(200));
        if let Some(two) = connect_back(port) {
            guest_exchange(two, EXCHANGE_BYTES, None);
        }
    }

    #[test]
    fn restart_passes_whether_the_first_stream_closes_or_stays_open() -> Result<()> {
        let closing = Fake::tcp(|s| restarting_guest(s, 300 * 1024, false))?;
        let mut p = peer(control(closing.port));
        restart(&mut p)?;
        assert_eq!(
            p.log.lines[1],
            "restart: the first stream brought 307200 bytes, byte-exact; it ended with end of file"
        );
        let open = Fake::tcp(|s| restarting_guest(s, 300 * 1024, true))?;
        let mut p = peer(control(open.port));
        restart(&mut p)?;
        assert!(p.log.lines[1].ends_with("still open when the second connection came"));
        Ok(())
    }

    #[test]
    fn restart_wants_a_long_enough_first_stream() -> Result<()> {
        let fake = Fake::tcp(|s| restarting_guest(s, 10_000, false))?;
        let err = restart(&mut peer(control(fake.port)))
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("the first stream ended (end of file) after 10000 bytes, expected at least 262144 before the service was killed")
        );
        Ok(())
    }
}
