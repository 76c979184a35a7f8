//! `busybox_wget_nc`: the host side of busybox's `wget` and `nc` typed on
//! the guest's console. It serves [`FILE_BYTES`] of the disk pattern as
//! `/kaal.bin` over HTTP on `{host:1}`, then takes `nc`'s connection on
//! `{host:2}`: the guest sends the line `sha256sum` printed for what
//! `wget` saved and a second line, then its end of file; the host checks
//! the sum against what it served and answers with two lines (the guest's
//! `nc` prints them on the console) before closing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use anyhow::{bail, Context, Result};
use kaal_test_patterns::fs::content;

use super::guest::{accept, listen};
use super::http::sha256;
use super::Peer;

/// `{host:1}`: the HTTP server `wget` fetches from.
pub const HTTP: u16 = 1;
/// `{host:2}`: the listener `nc` talks to.
pub const NC: u16 = 2;
/// The file's path in the URL, its length and its pattern seed.
const PATH: &str = "/kaal.bin";
const FILE_BYTES: u64 = 256 * 1024 + 17;
const SEED: u64 = 0x7e7;
/// The guest's second line and the host's answer.
const GUEST_LINE: &str = "guest line two";
const SUM_OK: &str = "host: sha256 matches";
const HOST_LINE: &str = "host: second line";

/// Answers one HTTP GET of [`PATH`] with `body`.
fn serve(s: &mut TcpStream, body: &[u8]) -> Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            bail!("the request's head is longer than 8 KiB");
        }
        match s.read(&mut byte).context("reading wget's request")? {
            0 => bail!("wget closed before the end of its request's head"),
            _ => head.extend_from_slice(&byte),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let first = head.lines().next().unwrap_or_default().to_owned();
    if !first.starts_with(&format!("GET {PATH} HTTP/1.")) {
        s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .context("answering 404")?;
        bail!("wget asked {first:?}, not GET {PATH}");
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(answer.as_bytes())
        .and_then(|()| s.write_all(body))
        .context("sending the file")?;
    s.shutdown(Shutdown::Write)
        .context("closing after the file")?;
    Ok(first)
}

/// `busybox_wget_nc`.
pub fn busybox_wget_nc(peer: &mut Peer) -> Result<()> {
    let (http_port, nc_port) = (peer.host(HTTP)?, peer.host(NC)?);
    let http = listen(http_port)?;
    let nc = listen(nc_port)?;
    let body: Vec<u8> = (0..FILE_BYTES).map(|i| content(SEED, i)).collect();
    let sum = sha256(&body)?;
    peer.log.line(format!(
        "busybox_wget_nc: serving {PATH} ({FILE_BYTES} bytes, sha256 {sum}) on 127.0.0.1:{http_port}; nc on 127.0.0.1:{nc_port}"
    ));

    let mut s = accept(peer, &http, peer.limits.reaccept, "wget's connection")?;
    let asked = serve(&mut s, &body)?;
    peer.log.line(format!(
        "busybox_wget_nc: wget asked {asked:?}; the file sent"
    ));

    let s = accept(peer, &nc, peer.limits.reaccept, "nc's connection")?;
    let mut lines = Vec::new();
    let mut reader = BufReader::new(s.try_clone().context("cloning nc's connection")?);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).context("reading nc's lines")? {
            0 => break,
            _ => lines.push(line.trim_end_matches('\n').to_owned()),
        }
        if lines.len() > 2 {
            bail!("nc sent more than two lines: {lines:?}");
        }
    }
    let want_first = format!("{sum}  /tmp/kaal.bin");
    let matches = lines.first() == Some(&want_first);
    let mut s = s;
    let answer = if matches {
        format!("{SUM_OK}\n{HOST_LINE}\n")
    } else {
        "host: sha256 differs\n".to_owned()
    };
    s.write_all(answer.as_bytes()).context("answering nc")?;
    s.shutdown(Shutdown::Write)
        .context("closing nc's connection")?;
    peer.log.line(format!(
        "busybox_wget_nc: nc sent {lines:?}, then its end of file"
    ));
    if !matches {
        bail!(
            "nc's first line is {:?}, expected {want_first:?}",
            lines.first()
        );
    }
    if lines.get(1).map(String::as_str) != Some(GUEST_LINE) {
        bail!(
            "nc's second line is {:?}, expected {GUEST_LINE:?}",
            lines.get(1)
        );
    }
    peer.log.line(format!(
        "busybox_wget_nc: answered {SUM_OK:?} and {HOST_LINE:?}"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::super::stream::tests::peer;
    use super::super::{Ports, Proto};
    use super::*;

    const POLL: Duration = Duration::from_millis(20);

    /// Connects to 127.0.0.1:`port` once the peer listens.
    fn reach(port: u16) -> Result<TcpStream> {
        let started = Instant::now();
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => return Ok(s),
                Err(_) if started.elapsed() < Duration::from_secs(10) => thread::sleep(POLL),
                Err(e) => return Err(e).context("reaching the peer"),
            }
        }
    }

    /// wget and nc as the guest runs them; `spoil` changes the sum sent.
    /// The lines nc printed.
    fn guest(http: u16, nc: u16, spoil: bool) -> Result<String> {
        let mut s = reach(http)?;
        s.write_all(format!("GET {PATH} HTTP/1.1\r\nHost: 10.0.2.2\r\n\r\n").as_bytes())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let at = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no head")?;
        let mut sum = sha256(answer.get(at + 4..).unwrap_or_default())?;
        if spoil {
            sum = sum.replace('a', "b");
        }
        let mut s = reach(nc)?;
        s.write_all(format!("{sum}  /tmp/kaal.bin\n{GUEST_LINE}\n").as_bytes())?;
        s.shutdown(Shutdown::Write)?;
        let mut printed = String::new();
        s.read_to_string(&mut printed)?;
        Ok(printed)
    }

    fn run(spoil: bool) -> Result<(Result<()>, String)> {
        let free = || -> Result<u16> { Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
        let (http, nc) = (free()?, free()?);
        let guest = thread::spawn(move || guest(http, nc, spoil));
        let mut p = peer(Ports::with(&[
            (Proto::Host, HTTP, http),
            (Proto::Host, NC, nc),
        ]));
        let result = busybox_wget_nc(&mut p);
        let printed = guest
            .join()
            .map_err(|_| anyhow::anyhow!("the guest thread panicked"))??;
        Ok((result, printed))
    }

    #[test]
    fn the_file_and_the_lines_go_both_ways() -> Result<()> {
        let (result, printed) = run(false)?;
        result?;
        assert_eq!(printed, format!("{SUM_OK}\n{HOST_LINE}\n"));
        Ok(())
    }

    #[test]
    fn a_wrong_sum_fails() -> Result<()> {
        let (result, printed) = run(true)?;
        assert_eq!(printed, "host: sha256 differs\n");
        let err = result.err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("nc's first line")),
            "{err:?}"
        );
        Ok(())
    }
}
