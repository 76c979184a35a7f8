//! The host side of the network benchmarks against the guest's
//! `sock_bench` (TCP 9 sink, 19 source, 7 one-byte echo) and its httpd
//! (TCP 80): `net_bench` runs a short version as a test; `cargo xtask
//! bench` runs [`FULL`] and keeps what [`drive`] measured.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::http::web_file;
use super::stream::{connect, tcp_send, timed_out};
use super::Peer;

/// How much each phase moves.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Bytes sent to the sink.
    pub rx: u64,
    /// Bytes asked of the source.
    pub tx: u64,
    /// One-byte round trips; the guest leaves its first 100 out.
    pub round_trips: u64,
    /// Keep-alive GETs of /index.html on one connection, after
    /// [`HTTP_WARMUP`].
    pub gets: u64,
}

/// The benchmark's sizes.
pub const FULL: Sizes = Sizes {
    rx: 64 << 20,
    tx: 64 << 20,
    round_trips: 2100,
    gets: 500,
};

/// The test's: every phase runs and prints its figures, quickly.
pub const SHORT: Sizes = Sizes {
    rx: 1 << 20,
    tx: 1 << 20,
    round_trips: 150,
    gets: 20,
};

/// GETs before the timed ones.
const HTTP_WARMUP: u64 = 10;

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// What the host measured: wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFigures {
    pub http_requests_per_sec: u64,
}

/// `count` per second of `since`'s elapsed wall time.
fn per_sec(count: u64, since: Instant) -> u64 {
    let micros = since.elapsed().as_micros().max(1);
    u64::try_from(u128::from(count) * 1_000_000 / micros).unwrap_or(u64::MAX)
}

/// Reads until the guest closes; the bytes read.
fn drain(s: &mut TcpStream, what: &str) -> Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                bail!("{what}: nothing came for the time limit after {got} bytes")
            }
            Err(e) => return Err(e).with_context(|| format!("{what}: after {got} bytes")),
        }
    }
}

/// Sends `len` bytes to the sink, closes, and waits for its close.
fn rx(peer: &mut Peer, len: u64) -> Result<()> {
    let took = tcp_send(peer.tcp(9)?, len)?;
    peer.log.line(format!(
        "net_bench: {len} bytes to the sink in {} ms (wall)",
        took.as_millis()
    ));
    Ok(())
}

/// Asks the source for `len` bytes and reads them to its close.
fn tx(peer: &mut Peer, len: u64) -> Result<()> {
    let mut s = connect(peer.tcp(19)?, peer.limits.io)?;
    let started = Instant::now();
    s.write_all(&len.to_le_bytes())
        .context("sending the source its length")?;
    let got = drain(&mut s, "the source")?;
    if got != len {
        bail!("the source sent {got} bytes, asked for {len}");
    }
    peer.log.line(format!(
        "net_bench: {len} bytes from the source in {} ms (wall)",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// `n` one-byte round trips, then the close.
fn rr(peer: &mut Peer, n: u64) -> Result<()> {
    let mut s = connect(peer.tcp(7)?, peer.limits.io)?;
    let started = Instant::now();
    let mut byte = [0u8; 1];
    for i in 0..n {
        let sent = [i as u8];
        s.write_all(&sent)
            .with_context(|| format!("round trip {i}: sending"))?;
        s.read_exact(&mut byte)
            .with_context(|| format!("round trip {i}: waiting for the echo"))?;
        if byte != sent {
            bail!("round trip {i}: sent {sent:?}, echoed {byte:?}");
        }
    }
    s.shutdown(Shutdown::Write).context("closing the echo")?;
    let back = drain(&mut s, "the echo")?;
    if back != 0 {
        bail!("the echo sent {back} bytes more than it was sent");
    }
    peer.log.line(format!(
        "net_bench: {n} round trips in {} ms (wall)",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// Reads one response from `s` (buffered in `pending`): its status and body.
fn response(s: &mut TcpStream, pending: &mut Vec<u8>) -> Result<(u32, Vec<u8>)> {
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match s.read(&mut buf).context("reading a response")? {
            0 => bail!("the server closed the connection inside a response's head"),
            n => pending.extend_from_slice(buf.get(..n).context("read")?),
        }
    };
    let head = String::from_utf8_lossy(pending.get(..head_end).context("head")?).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u32>().ok())
        .with_context(|| format!("no status in {:?}", head.lines().next()))?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .with_context(|| format!("no Content-Length in {head:?}"))?;
    pending.drain(..head_end);
    while pending.len() < length {
        match s.read(&mut buf).context("reading a body")? {
            0 => bail!("the server closed the connection inside a body"),
            n => pending.extend_from_slice(buf.get(..n).context("read")?),
        }
    }
    let body: Vec<u8> = pending.drain(..length).collect();
    Ok((status, body))
}

/// `gets` keep-alive GETs of /index.html after [`HTTP_WARMUP`], one at a
/// time on one connection; requests per second of wall time.
fn http(peer: &mut Peer, gets: u64) -> Result<u64> {
    let want = web_file("/www/index.html")?;
    let mut s = connect(peer.tcp(80)?, peer.limits.io)?;
    let request = b"GET /index.html HTTP/1.1\r\nHost: kaal\r\n\r\n";
    let mut pending = Vec::new();
    let mut started = Instant::now();
    for i in 0..HTTP_WARMUP + gets {
        if i == HTTP_WARMUP {
            started = Instant::now();
        }
        s.write_all(request)
            .with_context(|| format!("GET {i}: sending"))?;
        let (status, body) = response(&mut s, &mut pending).with_context(|| format!("GET {i}"))?;
        if status != 200 || body != want {
            bail!(
                "GET {i} of /index.html: status {status}, {} bytes; expected 200 and www/index.html ({} bytes)",
                body.len(),
                want.len()
            );
        }
    }
    let rate = per_sec(gets, started);
    peer.log.line(format!(
        "net_bench: {gets} GETs in {} ms (wall), {rate} per second",
        started.elapsed().as_millis()
    ));
    Ok(rate)
}

/// Runs every phase against the guest, each on its own connection, one
/// after another: the guest serves one connection at a time.
pub fn drive(peer: &mut Peer, sizes: Sizes) -> Result<HostFigures> {
    rx(peer, sizes.rx).context("the sink (tcp 9)")?;
    peer.go_on("the benchmark")?;
    tx(peer, sizes.tx).context("the source (tcp 19)")?;
    peer.go_on("the benchmark")?;
    rr(peer, sizes.round_trips).context("the echo (tcp 7)")?;
    peer.go_on("the benchmark")?;
    let http_requests_per_sec = http(peer, sizes.gets).context("the HTTP server (tcp 80)")?;
    Ok(HostFigures {
        http_requests_per_sec,
    })
}

/// The phases the POSIX layer's `netbench` serves (no HTTP), one after
/// another.
pub fn drive_streams(peer: &mut Peer, sizes: Sizes) -> Result<()> {
    rx(peer, sizes.rx).context("the sink (tcp 9)")?;
    peer.go_on("the benchmark")?;
    tx(peer, sizes.tx).context("the source (tcp 19)")?;
    peer.go_on("the benchmark")?;
    rr(peer, sizes.round_trips).context("the echo (tcp 7)")
}

/// `linux_net_bench`: [`drive_streams`] with [`SHORT`].
pub fn linux_net_bench(peer: &mut Peer) -> Result<()> {
    drive_streams(peer, SHORT)
}

/// `net_bench`: [`drive`] with [`SHORT`].
pub fn net_bench(peer: &mut Peer) -> Result<()> {
    drive(peer, SHORT).map(drop)
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::{peer, Fake};
    use super::super::{Ports, Proto};
    use super::*;

    /// Reads until the peer closes its half; the bytes read.
    fn to_end(s: &mut TcpStream) -> u64 {
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        got
    }

    /// Fakes of `sock_bench` and httpd: every phase runs against them,
    /// each HTTP response written in two pieces.
    #[test]
    fn every_phase_runs_against_fakes() -> Result<()> {
        let sink = Fake::tcp(|mut s| {
            to_end(&mut s);
        })?;
        let source = Fake::tcp(|mut s| {
            let mut len = [0u8; 8];
            if s.read_exact(&mut len).is_ok() {
                let _ = s.write_all(&vec![7u8; u64::from_le_bytes(len) as usize]);
            }
        })?;
        let echo = Fake::tcp(|mut s| {
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() {
                let _ = s.write_all(&b);
            }
        })?;
        let index = web_file("/www/index.html")?;
        let http = Fake::tcp(move |mut s| {
            let one = [
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", index.len()).as_bytes(),
                &index,
            ]
            .concat();
            let mut buf = [0u8; 4096];
            let mut heads = 0usize;
            let mut answered = 0usize;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                heads += buf
                    .get(..n)
                    .unwrap_or_default()
                    .windows(4)
                    .filter(|w| w == b"\r\n\r\n")
                    .count();
                while answered < heads {
                    let (a, b) = one.split_at(20);
                    let _ = s.write_all(a).and_then(|()| s.write_all(b));
                    answered += 1;
                }
            }
        })?;
        let ports = Ports::with(&[
            (Proto::Tcp, 9, sink.port),
            (Proto::Tcp, 19, source.port),
            (Proto::Tcp, 7, echo.port),
            (Proto::Tcp, 80, http.port),
        ]);
        let mut p = peer(ports);
        let figures = drive(&mut p, SHORT)?;
        assert!(figures.http_requests_per_sec > 0);
        assert_eq!(p.log.lines.len(), 4, "{:?}", p.log.lines);
        Ok(())
    }

    #[test]
    fn a_short_source_fails() -> Result<()> {
        let source = Fake::tcp(|mut s| {
            let mut len = [0u8; 8];
            if s.read_exact(&mut len).is_ok() {
                let _ = s.write_all(&[1u8; 10]);
            }
        })?;
        let mut p = peer(Ports::with(&[(Proto::Tcp, 19, source.port)]));
        let err = tx(&mut p, 100).err().map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("the source sent 10 bytes, asked for 100")
        );
        Ok(())
    }
}
