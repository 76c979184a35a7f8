//! `http`: Debian's curl against the guest's HTTP server, which serves the
//! web tree's /www (kaal_test_patterns::fs::WEB_TREE). What each URL must
//! give comes from the tree, not from the guest.

use std::io::{self, Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kaal_test_patterns::fs::{self as trees, WEB_TREE};

use super::Peer;
use crate::ext2::file_bytes;

/// Requests on one command line that must share one connection.
const KEEP_ALIVE_REQUESTS: usize = 100;

/// The web tree's content at `path` (a path inside the file system).
pub fn web_file(path: &str) -> Result<Vec<u8>> {
    trees::find(WEB_TREE, path)
        .and_then(|e| file_bytes(&e.kind))
        .with_context(|| format!("the web tree has no file {path}"))
}

/// Runs curl with `args` after the options every call takes: no config
/// file, no proxy (the traffic stays on this machine), errors shown, a time
/// limit. Its output if it exited with 0.
fn curl(peer: &Peer, args: &[&str]) -> Result<Vec<u8>> {
    run_curl("curl", peer, args)
}

/// [`curl`] with the program `program`.
fn run_curl(program: &str, peer: &Peer, args: &[&str]) -> Result<Vec<u8>> {
    let secs = peer.limits.io.as_secs().max(1).to_string();
    let mut cmd = Command::new(program);
    cmd.args(["-q", "-sS", "--noproxy", "*", "--max-time", &secs])
        .args(args)
        .stdin(Stdio::null());
    let shown = args.iter().take(6).copied().collect::<Vec<_>>().join(" ");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("curl is not installed: install curl: apt-get install curl")
        }
        Err(e) => return Err(e).context("running curl"),
    };
    if !out.status.success() {
        bail!(
            "`curl {shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The sha256 of `bytes`, in hex, from coreutils' sha256sum.
pub(super) fn sha256(bytes: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running sha256sum (coreutils)")?;
    let mut stdin = child.stdin.take().context("sha256sum's stdin")?;
    let out: Result<Output> = thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(bytes));
        let out = child.wait_with_output().context("waiting for sha256sum")?;
        writer
            .join()
            .map_err(|_| anyhow!("the thread feeding sha256sum panicked"))?
            .context("feeding sha256sum")?;
        Ok(out)
    });
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(hex) if out.status.success() && hex.len() == 64 => Ok(hex.to_owned()),
        _ => bail!("sha256sum said {text:?} ({})", out.status),
    }
}

/// Whether `body` is `want`; else what differs.
fn same(url: &str, body: &[u8], want: &[u8], file: &str) -> Result<()> {
    if body == want {
        return Ok(());
    }
    match body.iter().zip(want).position(|(a, b)| a != b) {
        Some(at) => bail!(
            "GET {url}: the body ({} bytes) differs from {file} ({} bytes) at byte {at}",
            body.len(),
            want.len()
        ),
        None => bail!(
            "GET {url}: the body is {} bytes, {file} is {}",
            body.len(),
            want.len()
        ),
    }
}

/// The default system's home page, as systems/rootfs holds it.
const DEFAULT_INDEX: &[u8] = include_bytes!("../../../systems/rootfs/www/index.html");

/// GET / of the default system gives its www/index.html.
pub fn http_index(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(80)?;
    let url = format!("http://127.0.0.1:{port}/");
    same(
        "/",
        &curl(peer, &[&url])?,
        DEFAULT_INDEX,
        "systems/rootfs/www/index.html",
    )?;
    peer.log.line(format!(
        "http_index: GET / gave systems/rootfs/www/index.html ({} bytes)",
        DEFAULT_INDEX.len()
    ));
    // busybox httpd on the POSIX layer serves the same /www, when the
    // test forwards its port (init starts it at boot, perhaps after this).
    if let Ok(port) = peer.tcp(BUSYBOX_PORT) {
        let url = format!("http://127.0.0.1:{port}/");
        let got = curl(
            peer,
            &[
                "--retry",
                "30",
                "--retry-all-errors",
                "--retry-delay",
                "1",
                &url,
            ],
        )?;
        same(
            "/ of busybox httpd",
            &got,
            DEFAULT_INDEX,
            "systems/rootfs/www/index.html",
        )?;
        peer.log.line(format!(
            "http_index: busybox httpd (port {BUSYBOX_PORT}) gave the same page"
        ));
    }
    Ok(())
}

/// Stalled clients: more than the server's connections.
const STALLED: usize = 20;

/// `http_slow`: [`STALLED`] connections each send one byte of a request
/// and nothing more; a GET of / must still be answered, and the stalled
/// connections must be reset within a minute (httpd gives a connection
/// without progress 10 s).
pub fn http_slow(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(80)?;
    let io = peer.limits.io;
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let mut s = crate::peer::stream::connect(port, io)
            .with_context(|| format!("stalled connection {i}"))?;
        s.write_all(b"G")
            .with_context(|| format!("stalled connection {i}: its byte"))?;
        stalled.push(s);
    }
    peer.log.line(format!(
        "http_slow: {STALLED} connections hold one byte of a request each"
    ));
    let started = std::time::Instant::now();
    let url = format!("http://127.0.0.1:{port}/");
    let index = web_file("/www/index.html")?;
    same("/", &curl(peer, &[&url])?, &index, "www/index.html")?;
    peer.log.line(format!(
        "http_slow: GET / answered beside them in {} ms",
        started.elapsed().as_millis()
    ));
    // Every stalled connection ends (end of file or a reset) without
    // having been answered: those httpd took, and those the stack held for
    // it (reset after 10 s without an ACCEPT) or refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut closed = 0;
    for (i, s) in stalled.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .context("setting a read limit")?;
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => closed += 1,
            Ok(n) => {
                bail!("stalled connection {i}: answered ({n} bytes) though its request never ended")
            }
            Err(e) if crate::peer::stream::reset(&e) => closed += 1,
            Err(e) if crate::peer::stream::timed_out(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("stalled connection {i}")),
        }
    }
    peer.log.line(format!(
        "http_slow: {closed} of {STALLED} stalled connections were closed by the server within {} s",
        started.elapsed().as_secs()
    ));
    if closed < STALLED {
        bail!("only {closed} of {STALLED} stalled connections were closed within 60 s");
    }
    Ok(())
}

/// The guest port busybox httpd listens on (the default system forwards
/// the host's 8000 to it).
pub const BUSYBOX_PORT: u16 = 8000;
/// Requests of [`busybox_http`] in a row, each on its own connection
/// (busybox httpd answers one request per connection).
const IN_A_ROW: usize = 100;

/// `busybox_http`: busybox httpd, a Linux program on the POSIX layer's
/// sockets, serves the web tree's /www: the home page byte for byte, the
/// 1 MiB file by its sha256, then [`IN_A_ROW`] requests of the page on
/// one curl command line, every one 200 with the page's length.
pub fn busybox_http(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(BUSYBOX_PORT)?;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let index = web_file("/www/index.html")?;
    // The guest's address may come by DHCP after httpd listens: the first
    // request is tried again for a while.
    let first = curl(
        peer,
        &[
            "--retry",
            "30",
            "--retry-all-errors",
            "--retry-delay",
            "1",
            &url("/"),
        ],
    )?;
    same("/", &first, &index, "www/index.html")?;
    peer.log.line(format!(
        "busybox_http: GET / gave www/index.html ({} bytes)",
        index.len()
    ));

    big_file(peer, "busybox_http", &url("/big.bin"))?;

    let reports = repeated(peer, &url("/index.html"), IN_A_ROW, "%{size_download}", &[])?;
    for (i, (code, size)) in reports.iter().enumerate() {
        if code != "200" || *size != index.len() as u64 {
            bail!(
                "GET /index.html, request {i} of {IN_A_ROW}: curl reported \"{code} {size}\", expected \"200 {}\"",
                index.len()
            );
        }
    }
    peer.log.line(format!(
        "busybox_http: {IN_A_ROW} GET /index.html in a row: all 200 with the page"
    ));
    Ok(())
}

/// GETs `url` (the 1 MiB file of the web tree) and checks it by its
/// sha256, logged as `who`; the file's bytes.
fn big_file(peer: &mut Peer, who: &str, url: &str) -> Result<Vec<u8>> {
    let big = web_file("/www/big.bin")?;
    let got = curl(peer, &[url])?;
    let (got_sum, want_sum) = (sha256(&got)?, sha256(&big)?);
    if got_sum != want_sum {
        bail!(
            "GET /big.bin: sha256 {got_sum} ({} bytes), expected {want_sum} (www/big.bin, {} bytes)",
            got.len(),
            big.len()
        );
    }
    peer.log.line(format!(
        "{who}: GET /big.bin gave {} bytes, sha256 {got_sum} as www/big.bin",
        got.len()
    ));
    Ok(big)
}

/// GETs `url` `n` times on one curl command line (which keeps a
/// connection when the server does), with `extra` arguments: each
/// request's status and the figure curl's `-w` variable `what` gives, in
/// order; fewer reports than requests or a malformed one is an error.
fn repeated(
    peer: &Peer,
    url: &str,
    n: usize,
    what: &str,
    extra: &[&str],
) -> Result<Vec<(String, u64)>> {
    let format = format!("%{{http_code}} {what}\\n");
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["-w", format.as_str()]);
    for _ in 0..n {
        args.extend(["-o", "/dev/null", url]);
    }
    let out = curl(peer, &args)?;
    let reports = String::from_utf8_lossy(&out)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next().and_then(|v| v.parse().ok())) {
                (Some(code), Some(v)) => Ok((code.to_owned(), v)),
                _ => {
                    bail!("curl's report of request {i} is {line:?}, expected \"<status> {what}\"")
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if reports.len() != n {
        bail!("curl reported {} of {n} requests of {url}", reports.len());
    }
    Ok(reports)
}

pub fn http(peer: &mut Peer) -> Result<()> {
    let port = peer.tcp(80)?;
    let base = format!("http://127.0.0.1:{port}");
    let url = |path: &str| format!("{base}{path}");

    let index = web_file("/www/index.html")?;
    same("/", &curl(peer, &[&url("/")])?, &index, "www/index.html")?;
    let page = web_file("/www/sub/page.html")?;
    same(
        "/sub/page.html",
        &curl(peer, &[&url("/sub/page.html")])?,
        &page,
        "www/sub/page.html",
    )?;
    peer.log.line(format!(
        "http: GET / gave www/index.html ({} bytes); GET /sub/page.html gave www/sub/page.html ({} bytes)",
        index.len(),
        page.len()
    ));

    let big = big_file(peer, "http", &url("/big.bin"))?;

    let missing = curl(
        peer,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url("/missing.html"),
        ],
    )?;
    let status = String::from_utf8_lossy(&missing);
    if status != "404" {
        bail!("GET /missing.html: status {status}, expected 404");
    }

    let head = curl(peer, &["-I", &url("/big.bin")])?;
    let head = String::from_utf8_lossy(&head);
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().to_owned())
    });
    if length.as_deref() != Some(&big.len().to_string()) {
        bail!(
            "HEAD /big.bin: Content-Length {length:?}, expected {}; the headers:\n{}",
            big.len(),
            head.trim()
        );
    }
    peer.log.line(format!(
        "http: GET /missing.html gave 404; HEAD /big.bin gave Content-Length: {}",
        big.len()
    ));

    // One command line, many URLs: curl reuses its connection when the
    // server keeps it alive.
    let reports = repeated(
        peer,
        &url("/index.html"),
        KEEP_ALIVE_REQUESTS,
        "%{num_connects}",
        &["--http1.1"],
    )?;
    let mut connects = 0u64;
    for (i, (code, n)) in reports.iter().enumerate() {
        if code != "200" {
            bail!("GET /index.html, request {i} of {KEEP_ALIVE_REQUESTS} on one command line: status {code}, expected 200");
        }
        connects += n;
    }
    if connects != 1 {
        bail!(
            "{KEEP_ALIVE_REQUESTS} requests of /index.html took {connects} connections, expected 1 (keep-alive)"
        );
    }
    peer.log.line(format!(
        "http: {KEEP_ALIVE_REQUESTS} GET /index.html on one command line: all 200, over 1 connection"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::{peer, Fake};
    use super::super::{Ports, Proto};
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;

    /// Whether curl is here; the tests that need it pass without it (the
    /// missing-curl message has its own test).
    fn have_curl() -> bool {
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Changes what the fake serves for a path: the body, and whether it
    /// closes the connection after it.
    type Spoil = fn(&str, &mut Vec<u8>, &mut bool);

    /// A fake HTTP/1.1 server of the web tree's /www: keep-alive, HEAD, 404.
    fn serve(s: TcpStream, spoil: Spoil) {
        let Ok(mut w) = s.try_clone() else { return };
        let mut r = BufReader::new(s);
        loop {
            let mut request = String::new();
            if r.read_line(&mut request).unwrap_or(0) == 0 {
                return;
            }
            loop {
                let mut header = String::new();
                if r.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                if header == "\r\n" {
                    break;
                }
            }
            let mut words = request.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let file = if path == "/" {
                "/www/index.html".to_owned()
            } else {
                format!("/www{path}")
            };
            let (status, mut body) = match web_file(&file) {
                Ok(body) => ("200 OK", body),
                Err(_) => ("404 Not Found", b"not found\n".to_vec()),
            };
            let mut close = false;
            spoil(path, &mut body, &mut close);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{}\r\n",
                body.len(),
                if close { "Connection: close\r\n" } else { "" }
            );
            let ok = w.write_all(head.as_bytes()).is_ok()
                && (method == "HEAD" || w.write_all(&body).is_ok());
            if !ok || close {
                return;
            }
        }
    }

    fn http_of(fake: &Fake) -> Result<()> {
        http(&mut peer(Ports::with(&[(Proto::Tcp, 80, fake.port)])))
    }

    #[test]
    fn http_passes_against_a_server_of_the_web_tree() -> Result<()> {
        if !have_curl() {
            return Ok(());
        }
        let fake = Fake::tcp(|s| serve(s, |_, _, _| {}))?;
        let mut p = peer(Ports::with(&[(Proto::Tcp, 80, fake.port)]));
        http(&mut p)?;
        assert_eq!(p.log.lines.len(), 4, "{:?}", p.log.lines);
        assert!(p.log.lines[3].ends_with("all 200, over 1 connection"));
        Ok(())
    }

    #[test]
    fn busybox_http_passes_against_a_server_of_the_web_tree() -> Result<()> {
        if !have_curl() {
            return Ok(());
        }
        // busybox httpd closes after each answer.
        let fake = Fake::tcp(|s| serve(s, |_, _, close| *close = true))?;
        let mut p = peer(Ports::with(&[(Proto::Tcp, BUSYBOX_PORT, fake.port)]));
        busybox_http(&mut p)?;
        assert_eq!(p.log.lines.len(), 3, "{:?}", p.log.lines);
        assert!(p.log.lines[2].ends_with("all 200 with the page"));
        Ok(())
    }

    #[test]
    fn busybox_http_names_a_wrong_file_or_answer() -> Result<()> {
        if !have_curl() {
            return Ok(());
        }
        let cases: [(Spoil, &str); 2] = [
            (
                |p, b, close| {
                    *close = true;
                    if p == "/big.bin" {
                        b[7] ^= 1;
                    }
                },
                "GET /big.bin: sha256 ",
            ),
            (
                |p, b, close| {
                    *close = true;
                    if p == "/index.html" {
                        b.truncate(3);
                    }
                },
                "GET /index.html, request 0 of 100: curl reported \"200 3\"",
            ),
        ];
        each_spoil_is_named(&cases, |fake| {
            busybox_http(&mut peer(Ports::with(&[(
                Proto::Tcp,
                BUSYBOX_PORT,
                fake.port,
            )])))
        })
    }

    /// Runs `program` against a server spoiled each way of `cases`; its
    /// error must start with the case's text.
    fn each_spoil_is_named(
        cases: &[(Spoil, &str)],
        program: impl Fn(&Fake) -> Result<()>,
    ) -> Result<()> {
        for &(spoil, want) in cases {
            let fake = Fake::tcp(move |s| serve(s, spoil))?;
            let err = program(&fake).err().map(|e| format!("{e:#}"));
            assert!(
                err.as_deref().is_some_and(|e| e.starts_with(want)),
                "{want}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn without_curl_the_peer_says_how_to_install_it() {
        let err = run_curl("kaal-no-such-curl", &peer(Ports::default()), &["http://x/"])
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("curl is not installed: install curl: apt-get install curl")
        );
    }

    #[test]
    fn http_names_each_difference() -> Result<()> {
        if !have_curl() {
            return Ok(());
        }
        let cases: [(Spoil, &str); 3] = [
            (
                |p, b, _| {
                    if p == "/big.bin" {
                        b[1000] ^= 1;
                    }
                },
                "GET /big.bin: sha256 ",
            ),
            (
                |p, b, _| {
                    if p == "/" {
                        b.truncate(10);
                    }
                },
                "GET /: the body is 10 bytes, www/index.html is",
            ),
            (
                |p, _, close| *close = p == "/index.html",
                "100 requests of /index.html took 100 connections, expected 1 (keep-alive)",
            ),
        ];
        each_spoil_is_named(&cases, http_of)
    }
}
