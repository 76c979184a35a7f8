//! The guest side of the TCP benchmarks (`cargo xtask bench`, system
//! `net_stack_bench`), on the sockets library (`sock_req`, `sock_cpl`,
//! `sock_data`). It listens on three ports and serves one connection at a
//! time, in the order the host makes them; each prints its figures as
//! `KAAL-BENCH` lines, timed with the TSC (virtual time under `-icount`):
//! - TCP 9, sink: reads until the peer closes; `net.tcp_rx_mib_per_sec`
//!   from the first byte to the end, and `net.rx_ticks_per_kib`, the
//!   service's `busy_ticks` (STATS) over that time per KiB received;
//! - TCP 19, source: reads an 8-byte little-endian length, sends that many
//!   bytes and closes; `net.tcp_tx_mib_per_sec` from the length read to
//!   the close;
//! - TCP 7, one-byte echo: `net.tcp_rr_per_sec` over the round trips after
//!   the first [`RR_WARMUP`].
//!
//! Prints `sock_bench: ready` once the three listen.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;

use kaal_client::socket::{events, Errno, PollFd, Socket, SocketError, Sockets};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};

const SINK_PORT: u16 = 9;
const SOURCE_PORT: u16 = 19;
const RR_PORT: u16 = 7;
/// Round trips of a connection to [`RR_PORT`] left out of the figure.
const RR_WARMUP: u64 = 100;
/// Bytes per call: the data region is 256 KiB.
const CHUNK: usize = 64 * 1024;

type Check<T> = Result<T, String>;

fn fail(what: &str) -> impl Fn(SocketError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// MiB per second of `bytes` moved in `ticks`.
fn mib_per_sec(clock: Clock, bytes: u64, ticks: u64) -> u64 {
    clock.per_second(bytes, ticks) >> 20
}

fn listener(net: &mut Sockets, port: u16) -> Check<Socket> {
    let what = format!("listening on tcp port {port}");
    let l = net.tcp().map_err(fail(&what))?;
    net.bind(l, [0; 4], port).map_err(fail(&what))?;
    net.listen(l, 1).map_err(fail(&what))?;
    Ok(l)
}

/// Reads into `buf`, sleeping while there is nothing; 0 at the end.
fn recv_wait(net: &mut Sockets, s: Socket, buf: &mut [u8]) -> Result<usize, SocketError> {
    loop {
        match net.recv(s, buf) {
            Err(e) if e == Errno::EAGAIN => {
                net.wait_for(s, events::READABLE | events::HANGUP, None)?;
            }
            other => return other,
        }
    }
}

fn sink(net: &mut Sockets, clock: Clock, s: Socket) -> Check<()> {
    let what = "sink";
    let before = net.stats().map_err(fail("reading the stack's counters"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut first = recv_wait(net, s, &mut buf).map_err(fail(what))? as u64;
    let t0 = rdtsc();
    let mut bytes = first;
    while first != 0 {
        first = recv_wait(net, s, &mut buf).map_err(fail(what))? as u64;
        bytes += first;
    }
    let ticks = rdtsc() - t0;
    let after = net.stats().map_err(fail("reading the stack's counters"))?;
    let busy = after.busy_ticks - before.busy_ticks;
    let kib = (bytes / 1024).max(1);
    println!(
        "sock_bench: received {bytes} bytes in {ticks} ticks; the stack was busy {busy} ticks, took {} bytes in",
        after.bytes_in - before.bytes_in
    );
    println!(
        "KAAL-BENCH net.tcp_rx_mib_per_sec {} MiB/s",
        mib_per_sec(clock, bytes, ticks)
    );
    println!("KAAL-BENCH net.rx_ticks_per_kib {} ticks", busy / kib);
    Ok(())
}

fn source(net: &mut Sockets, clock: Clock, s: Socket) -> Check<()> {
    let what = "source";
    let mut len = [0u8; 8];
    let mut got = 0;
    while got < len.len() {
        let rest = len.get_mut(got..).unwrap_or_default();
        match recv_wait(net, s, rest).map_err(fail(what))? {
            0 => {
                return Err(format!(
                    "source: the peer closed after {got} bytes of the length"
                ))
            }
            n => got += n,
        }
    }
    let total = u64::from_le_bytes(len);
    let buf = vec![0x5au8; CHUNK];
    let t0 = rdtsc();
    let mut sent = 0u64;
    while sent < total {
        let n = usize::try_from((total - sent).min(CHUNK as u64)).unwrap_or(CHUNK);
        let piece = buf.get(..n).unwrap_or_default();
        net.send_all(s, piece, None).map_err(fail(what))?;
        sent += n as u64;
    }
    net.shutdown(s).map_err(fail(what))?;
    let ticks = rdtsc() - t0;
    println!("sock_bench: sent {sent} bytes in {ticks} ticks");
    println!(
        "KAAL-BENCH net.tcp_tx_mib_per_sec {} MiB/s",
        mib_per_sec(clock, sent, ticks)
    );
    Ok(())
}

fn rr(net: &mut Sockets, clock: Clock, s: Socket) -> Check<()> {
    let what = "echo";
    let mut byte = [0u8; 1];
    let mut trips = 0u64;
    let mut t0 = rdtsc();
    while recv_wait(net, s, &mut byte).map_err(fail(what))? == 1 {
        net.send_all(s, &byte, None).map_err(fail(what))?;
        trips += 1;
        if trips == RR_WARMUP {
            t0 = rdtsc();
        }
    }
    let ticks = rdtsc() - t0;
    net.shutdown(s).map_err(fail(what))?;
    let timed = trips.saturating_sub(RR_WARMUP);
    println!("sock_bench: {trips} round trips, the last {timed} in {ticks} ticks");
    if timed > 0 {
        println!(
            "KAAL-BENCH net.tcp_rr_per_sec {} round_trips/s",
            clock.per_second(timed, ticks)
        );
    }
    Ok(())
}

fn main(env: &Env) -> Check<()> {
    let clock = env.clock().ok_or("the TSC frequency is unknown")?;
    let mut net = Sockets::new(env).map_err(fail("opening the sockets"))?;
    let ports = [SINK_PORT, SOURCE_PORT, RR_PORT];
    let ls = [
        listener(&mut net, SINK_PORT)?,
        listener(&mut net, SOURCE_PORT)?,
        listener(&mut net, RR_PORT)?,
    ];
    println!("sock_bench: ready");
    loop {
        let mut fds = ls.map(|l| PollFd::new(l, events::READABLE));
        net.poll(&mut fds, None)
            .map_err(fail("waiting for a connection"))?;
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let Some(&l) = ls.get(i) else { continue };
            let (s, _) = match net.accept(l) {
                Ok(got) => got,
                Err(e) if e == Errno::EAGAIN || e == Errno::ECONNABORTED => continue,
                Err(e) => return Err(format!("accepting: {e}")),
            };
            let served = match ports.get(i) {
                Some(&SINK_PORT) => sink(&mut net, clock, s),
                Some(&SOURCE_PORT) => source(&mut net, clock, s),
                _ => rr(&mut net, clock, s),
            };
            // A failed connection is reported and the next one served.
            if let Err(why) = served {
                println!("sock_bench: {why}");
            }
            let _ = net.close(s);
        }
    }
}

kaal_rt::component!(main);
