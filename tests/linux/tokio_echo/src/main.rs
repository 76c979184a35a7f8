//! A TCP echo server on tokio's multi-threaded runtime (4 workers): what a
//! modern async Rust program asks of the kernel (epoll in edge-triggered
//! mode, an eventfd to wake the workers, futexes, threads,
//! `sched_getaffinity`, non-blocking sockets).
//!
//! `serve PORT`: listens on 0.0.0.0:PORT, prints `tokio_echo: listening on
//! port PORT` and echoes every connection until the peer closes it, for
//! ever. No argument (the native check): serves an ephemeral port of
//! 127.0.0.1 and echoes 256 KiB on each of 8 connections of its own at
//! once, byte-exact; prints `tokio_echo: ok`.

use std::net::SocketAddr;
use std::process::exit;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn fail(what: &str) -> ! {
    println!("tokio_echo: FAILED: {what}");
    exit(1)
}

/// Echoes what `s` sends until it closes its side.
async fn echo(mut s: TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        s.write_all(buf.get(..n).unwrap_or_default()).await?;
        total += n as u64;
    }
}

async fn serve(listener: TcpListener) -> ! {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                // Request and response are small in the round trips: no Nagle.
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    if let Err(e) = echo(s).await {
                        println!("tokio_echo: connection ended: {e}");
                    }
                });
            }
            Err(e) => println!("tokio_echo: accept: {e}"),
        }
    }
}

/// The byte at `i` of connection `c`'s stream.
fn pattern(c: u64, i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(c * 7) % 251) as u8
}

/// One client of the native check: sends `len` bytes while reading the
/// echo back, which must match.
async fn client(addr: SocketAddr, c: u64, len: u64) -> Result<(), String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..len).map(|i| pattern(c, i)).collect();
        w.write_all(&data).await?;
        w.shutdown().await
    });
    let mut got = 0u64;
    let mut buf = vec![0u8; 8192];
    while got < len {
        let n = r.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("echo ended after {got} of {len} bytes"));
        }
        for (k, b) in buf.iter().take(n).enumerate() {
            if *b != pattern(c, got + k as u64) {
                return Err(format!("byte {} differs", got + k as u64));
            }
        }
        got += n as u64;
    }
    match writer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(e) => Err(format!("writer: {e}")),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args.get(1) {
        if mode != "serve" {
            fail("usage: tokio_echo [serve PORT]");
        }
        let port: u16 = args
            .get(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| fail("usage: tokio_echo serve PORT"));
        let listener = TcpListener::bind(("0.0.0.0", port))
            .await
            .unwrap_or_else(|e| fail(&format!("bind: {e}")));
        println!("tokio_echo: listening on port {port}");
        serve(listener).await
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(&format!("local_addr: {e}")));
    tokio::spawn(serve(listener));
    let clients: Vec<_> = (0..8)
        .map(|c| tokio::spawn(client(addr, c, 256 * 1024)))
        .collect();
    for (c, h) in clients.into_iter().enumerate() {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(&format!("connection {c}: {e}")),
            Err(e) => fail(&format!("connection {c}: {e}")),
        }
    }
    println!("tokio_echo: ok");
}
