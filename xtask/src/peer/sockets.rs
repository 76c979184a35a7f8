//! `sockets`: the host side of tests/linux/sockets.c (`linux_sockets`).
//! It listens on 127.0.0.1 for TCP (each connection echoed until its end
//! of file, then closed), binds a UDP port that echoes datagrams, picks a
//! port nobody listens on, and sends the three as the line `P U C\n` to
//! the program's control port; then serves until the program says `done`
//! there. The program connects to 10.0.2.2 (slirp's name for this
//! machine's 127.0.0.1).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::guest::CONTROL_PORT;
use super::stream::{connect, limit, timed_out};
use super::Peer;

/// How often the listener, the UDP port and the control line are looked at.
const POLL: Duration = Duration::from_millis(20);
/// The program's echoed connections (blocking connect, non-blocking
/// connect, sendmsg and the half-close) and datagrams (sendto, sendmsg,
/// connected send).
const CONNECTIONS: usize = 3;
const DATAGRAMS: usize = 3;

/// Echoes `s` until its end of file, then closes: the program learns
/// that its `shutdown(SHUT_WR)` arrived from the close. The bytes echoed.
fn echo(mut s: TcpStream, io: Duration) -> Result<u64> {
    s.set_nonblocking(false)
        .context("making the connection blocking")?;
    limit(&s, io)?;
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading an echoed connection"),
        };
        s.write_all(buf.get(..n).unwrap_or_default())
            .context("echoing")?;
        total += n as u64;
    }
    // Its reading half may be gone already; the close is what matters.
    let _ = s.shutdown(Shutdown::Both);
    Ok(total)
}

/// `sockets`.
pub fn sockets(peer: &mut Peer) -> Result<()> {
    let io = peer.limits.io;
    let listener = TcpListener::bind("127.0.0.1:0").context("listening on 127.0.0.1")?;
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    let udp = UdpSocket::bind("127.0.0.1:0").context("binding UDP on 127.0.0.1")?;
    udp.set_read_timeout(Some(POLL))
        .context("setting the UDP port's time limit")?;
    // Bound a moment and let go: nobody listens there now.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a closed port")?
        .port();
    let (tcp_port, udp_port) = (listener.local_addr()?.port(), udp.local_addr()?.port());
    let mut control = connect(peer.tcp(CONTROL_PORT)?, io).context("the control connection")?;
    control
        .write_all(format!("{tcp_port} {udp_port} {closed}\n").as_bytes())
        .context("writing the control line")?;
    control
        .set_read_timeout(Some(POLL))
        .context("setting the control connection's time limit")?;
    peer.log.line(format!(
        "sockets: echo on 127.0.0.1:{tcp_port}, UDP echo on 127.0.0.1:{udp_port}, 127.0.0.1:{closed} closed; sent them to guest port {CONTROL_PORT}"
    ));

    let mut echoes: Vec<JoinHandle<Result<u64>>> = Vec::new();
    let mut datagrams = 0usize;
    let mut said = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match listener.accept() {
            Ok((s, from)) => {
                peer.log.line(format!(
                    "sockets: connection {} from {from}",
                    echoes.len() + 1
                ));
                echoes.push(thread::spawn(move || echo(s, io)));
            }
            Err(e) if timed_out(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("accepting"),
        }
        match udp.recv_from(&mut buf) {
            Ok((n, from)) => {
                udp.send_to(buf.get(..n).unwrap_or_default(), from)
                    .context("echoing a datagram")?;
                datagrams += 1;
                peer.log
                    .line(format!("sockets: datagram of {n} bytes from {from} echoed"));
            }
            Err(e) if timed_out(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving a datagram"),
        }
        match control.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if timed_out(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the control connection"),
        }
        if said.ends_with(b"\n") {
            break;
        }
        peer.go_on("serving the program")?;
    }
    let said = String::from_utf8_lossy(&said).into_owned();
    if said != "done\n" {
        bail!("the program ended its control connection with {said:?}, not \"done\\n\"");
    }
    let mut echoed = Vec::new();
    for (i, e) in echoes.into_iter().enumerate() {
        let n = e
            .join()
            .map_err(|_| anyhow::anyhow!("the echo thread panicked"))?
            .with_context(|| format!("connection {}", i + 1))?;
        echoed.push(n);
    }
    peer.log.line(format!(
        "sockets: the program said done; connections echoed {echoed:?} bytes, each to its end of file; {datagrams} datagrams"
    ));
    if echoed.len() != CONNECTIONS || datagrams != DATAGRAMS {
        bail!(
            "the program made {} connections and sent {datagrams} datagrams, not {CONNECTIONS} and {DATAGRAMS}",
            echoed.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::{peer, Fake};
    use super::super::{Ports, Proto};
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    /// A fake program: reads the line, makes `connections` echoed
    /// connections (each half-closed and read to its end) and sends
    /// three datagrams, then says `done`.
    fn program(s: TcpStream, connections: usize, ok: mpsc::Sender<bool>) {
        let mut line = String::new();
        let Ok(mut control) = s.try_clone() else {
            return;
        };
        if BufReader::new(s).read_line(&mut line).is_err() {
            return;
        }
        let ports: Vec<u16> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let (tcp, udp, closed) = match ports[..] {
            [t, u, c] => (t, u, c),
            _ => return,
        };
        let mut good = TcpStream::connect(("127.0.0.1", closed)).is_err();
        for _ in 0..connections {
            let Ok(mut c) = TcpStream::connect(("127.0.0.1", tcp)) else {
                return;
            };
            let mut back = Vec::new();
            good &= c.write_all(b"hello\n").is_ok()
                && c.shutdown(Shutdown::Write).is_ok()
                && c.read_to_end(&mut back).is_ok()
                && back == b"hello\n";
        }
        let Ok(u) = UdpSocket::bind("127.0.0.1:0") else {
            return;
        };
        let _ = u.set_read_timeout(Some(Duration::from_secs(5)));
        for _ in 0..DATAGRAMS {
            let mut b = [0u8; 16];
            good &= u.send_to(b"ping", ("127.0.0.1", udp)).is_ok()
                && u.recv(&mut b)
                    .is_ok_and(|n| b.get(..n) == Some(&b"ping"[..]));
        }
        let _ = control.write_all(b"done\n");
        let _ = ok.send(good);
    }

    fn run(connections: usize) -> Result<(Result<()>, bool)> {
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let fake = Fake::tcp(move |s| {
            let tx = tx.lock().map(|t| t.clone());
            if let Ok(tx) = tx {
                program(s, connections, tx);
            }
        })?;
        let mut p = peer(Ports::with(&[(Proto::Tcp, CONTROL_PORT, fake.port)]));
        let result = sockets(&mut p);
        let good = rx.recv_timeout(Duration::from_secs(10)).unwrap_or(false);
        Ok((result, good))
    }

    #[test]
    fn sockets_serves_a_program_to_its_done() -> Result<()> {
        let (result, good) = run(CONNECTIONS)?;
        result?;
        assert!(good, "the fake program saw a wrong echo or no refusal");
        Ok(())
    }

    #[test]
    fn sockets_fails_a_program_that_connects_too_little() -> Result<()> {
        let (result, _) = run(CONNECTIONS - 1)?;
        let err = result.err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("made 2 connections")),
            "{err:?}"
        );
        Ok(())
    }
}
