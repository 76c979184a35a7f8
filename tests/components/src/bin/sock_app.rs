//! A client of the network service's sockets (`kaal_client::socket`, local
//! names `sock_req`, `sock_cpl`, `sock_data`); what it does depends on its
//! name:
//! - `connect`: listens on TCP [`CONTROL_PORT`], takes one control
//!   connection and reads a decimal port P and a newline from it; connects
//!   to 10.0.2.2:P (the host, through QEMU's user network), sends
//!   [`net::EXCHANGE_BYTES`] of the guest's stream, closes its sending
//!   half, and requires exactly as many bytes of the host's stream back;
//! - `restart`: the same control, then streams the guest's stream to P
//!   without end; past [`MARK_AFTER`] bytes it pushes one item on its raw
//!   ring `mark`, whose consumer (`marker`) then exits, which makes the
//!   test's root task kill the network service. The stream must end with
//!   `ENETRESET` or `ECONNRESET`; then it connects to P again (retrying
//!   while the restarted service gets its address) and does the
//!   `connect` exchange;
//! - `marker`: waits for the item on its raw ring `marked` and exits;
//! - `hostile`: sends requests the service must refuse on the raw rings
//!   (ids beyond its table or never opened, ranges outside the region or
//!   empty, an unknown operation, bad flags, SEND on a listener, RECV on
//!   an unconnected socket) and checks each status; then corrupts the
//!   producer index of its own request ring.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use kaal_client::socket::{events, Errno, PollFd, Socket, SocketError, Sockets};
use kaal_protocols::socket::client::Transport;
use kaal_protocols::socket::{completion, op, Completion, Request, SHUT_WR};
use kaal_rt::time::Instant;
use kaal_rt::{println, Env};
use kaal_test_components::{Item, RING_SLOTS};
use kaal_test_patterns::net;

/// Where the control connection comes in.
const CONTROL_PORT: u16 = 9000;
/// The host, as QEMU's user network shows it to the guest.
const HOST: [u8; 4] = [10, 0, 2, 2];
/// Bytes streamed before `restart` tells `marker`.
const MARK_AFTER: u64 = 256 * 1024;
/// How long `restart` tries to reach the host again.
const RECONNECT: Duration = Duration::from_secs(60);
/// One connection attempt.
const ATTEMPT: Duration = Duration::from_secs(10);
/// Bytes moved per call.
const CHUNK: usize = 4096;

type Check<T> = Result<T, String>;

fn fail(what: &str, e: SocketError) -> String {
    format!("{what}: {e}")
}

/// TSC ticks of `d` (at 3 GHz if the kernel did not say).
fn ticks(env: &Env, d: Duration) -> u64 {
    env.clock().map_or_else(
        || u64::try_from(d.as_nanos().saturating_mul(3)).unwrap_or(u64::MAX),
        |c| c.ticks(d),
    )
}

fn after(env: &Env, d: Duration) -> u64 {
    Instant::now().ticks().saturating_add(ticks(env, d))
}

/// Gives up the processor until `d` has passed (no timer to sleep on).
fn pause(env: &Env, d: Duration) {
    let until = after(env, d);
    while Instant::now().ticks() < until {
        kaal_sel4::ipc::yield_now();
    }
}

/// Takes one control connection on [`CONTROL_PORT`] and reads the port
/// the host listens on: decimal digits and a newline.
fn control(env: &Env, net_: &mut Sockets) -> Check<u16> {
    let l = net_.tcp().map_err(|e| fail("control socket", e))?;
    net_.bind(l, [0; 4], CONTROL_PORT)
        .map_err(|e| fail("control bind", e))?;
    net_.listen(l, 1).map_err(|e| fail("control listen", e))?;
    println!(
        "{}: waiting for the host on port {CONTROL_PORT}",
        env.name()
    );
    let c = loop {
        match net_.accept(l) {
            Ok((c, _)) => break c,
            Err(e) if e == Errno::EAGAIN => {
                net_.wait_for(l, events::READABLE, None)
                    .map_err(|e| fail("control wait", e))?;
            }
            Err(e) => return Err(fail("control accept", e)),
        }
    };
    let mut line = [0u8; 8];
    let mut len = 0;
    let port = loop {
        let room = line.get_mut(len..).filter(|r| !r.is_empty());
        let Some(room) = room else {
            return Err(String::from("the control line is too long"));
        };
        match net_.recv(c, room) {
            Ok(0) => return Err(String::from("the control connection closed early")),
            Ok(n) => len += n,
            Err(e) if e == Errno::EAGAIN => {
                net_.wait_for(c, events::READABLE, None)
                    .map_err(|e| fail("control wait", e))?;
                continue;
            }
            Err(e) => return Err(fail("control recv", e)),
        }
        let got = line.get(..len).unwrap_or(&[]);
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            let digits = got.get(..end).unwrap_or(&[]);
            let digits = digits.strip_suffix(b"\r").unwrap_or(digits);
            break core::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("not a port: {digits:?}"))?;
        }
    };
    let _ = net_.close(c);
    let _ = net_.close(l);
    Ok(port)
}

/// Sends the guest's stream, closes the sending half, and reads the
/// host's stream to its end; both [`net::EXCHANGE_BYTES`] long.
fn exchange(net_: &mut Sockets, s: Socket) -> Check<()> {
    let total = net::EXCHANGE_BYTES;
    let mut out = vec![0u8; CHUNK];
    let mut inp = vec![0u8; CHUNK];
    let (mut sent, mut received, mut shut) = (0u64, 0u64, false);
    loop {
        let mut progress = false;
        if sent < total {
            let n = usize::try_from(total - sent).unwrap_or(CHUNK).min(CHUNK);
            let piece = out.get_mut(..n).unwrap_or(&mut []);
            net::fill(net::GUEST_SEED, sent, piece);
            match net_.send(s, piece) {
                Ok(n) => {
                    sent += n as u64;
                    progress = true;
                }
                Err(e) if e == Errno::EAGAIN => {}
                Err(e) => return Err(fail("send", e)),
            }
        } else if !shut {
            net_.shutdown(s).map_err(|e| fail("shutdown", e))?;
            shut = true;
        }
        match net_.recv(s, &mut inp) {
            Ok(0) => break,
            Ok(n) => {
                let got = inp.get(..n).unwrap_or(&[]);
                if !net::holds(net::HOST_SEED, received, got) {
                    return Err(format!(
                        "the host's bytes differ at {received}..{}",
                        received + n as u64
                    ));
                }
                received += n as u64;
                if received > total {
                    return Err(format!("more than {total} bytes from the host"));
                }
                progress = true;
            }
            Err(e) if e == Errno::EAGAIN => {}
            Err(e) => return Err(fail("recv", e)),
        }
        if !progress {
            let want = if sent < total {
                events::READABLE | events::WRITABLE
            } else {
                events::READABLE
            };
            let mut fd = [PollFd::new(s, want)];
            net_.poll(&mut fd, None).map_err(|e| fail("poll", e))?;
        }
    }
    if sent != total || received != total {
        return Err(format!(
            "sent {sent} and received {received} bytes, expected {total} each"
        ));
    }
    Ok(())
}

fn connect_role(env: &Env, net_: &mut Sockets) -> Check<String> {
    let port = control(env, net_)?;
    let s = net_.tcp().map_err(|e| fail("socket", e))?;
    net_.connect_wait(s, HOST, port, Some(after(env, RECONNECT)))
        .map_err(|e| fail("connect", e))?;
    exchange(net_, s)?;
    let _ = net_.close(s);
    let n = net::EXCHANGE_BYTES;
    Ok(format!(
        "sent {n} bytes to 10.0.2.2:{port} and received {n} back, byte-exact"
    ))
}

/// Streams the guest's stream to `s` until it fails; the error and the
/// bytes sent. Tells `marker` once past [`MARK_AFTER`].
fn stream(env: &Env, net_: &mut Sockets, s: Socket) -> Check<(SocketError, u64)> {
    let mut mark = env
        .ring_tx::<Item, RING_SLOTS>("mark")
        .map_err(|e| format!("no `mark` ring: {e}"))?;
    let mut marked = false;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        if !marked && sent >= MARK_AFTER {
            mark.send_all(&[Item {
                seq: 1,
                value: sent,
            }])
            .map_err(|_| String::from("the `mark` ring is corrupt"))?;
            marked = true;
        }
        net::fill(net::GUEST_SEED, sent, &mut buf);
        let result = match net_.send(s, &buf) {
            Ok(n) => {
                sent += n as u64;
                continue;
            }
            Err(e) if e == Errno::EAGAIN => net_.wait_for(s, events::WRITABLE, None).map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return Ok((e, sent));
        }
    }
}

fn restart_role(env: &Env, net_: &mut Sockets) -> Check<String> {
    let port = control(env, net_)?;
    let s = net_.tcp().map_err(|e| fail("socket", e))?;
    net_.connect_wait(s, HOST, port, Some(after(env, RECONNECT)))
        .map_err(|e| fail("connect", e))?;
    let (e, sent) = stream(env, net_, s)?;
    println!(
        "{}: the stream ended with {} after {sent} bytes",
        env.name(),
        e.name()
    );
    if e != Errno::ENETRESET && e != Errno::ECONNRESET {
        return Err(format!("the stream ended with {e}, not a reset"));
    }
    let _ = net_.close(s);
    let deadline = after(env, RECONNECT);
    let s = loop {
        if Instant::now().ticks() > deadline {
            return Err(format!(
                "no connection to 10.0.2.2:{port} within {RECONNECT:?}"
            ));
        }
        let attempt = net_.tcp().and_then(|s| {
            let until = after(env, ATTEMPT).min(deadline);
            match net_.connect_wait(s, HOST, port, Some(until)) {
                Ok(()) => Ok(s),
                Err(e) => {
                    let _ = net_.abort(s);
                    Err(e)
                }
            }
        });
        match attempt {
            Ok(s) => break s,
            Err(SocketError::Errno(_)) => pause(env, Duration::from_millis(500)),
            Err(e) => return Err(fail("reconnect", e)),
        }
    };
    exchange(net_, s)?;
    let _ = net_.close(s);
    Ok(format!(
        "connected again and exchanged {} bytes each way",
        net::EXCHANGE_BYTES
    ))
}

fn marker_role(env: &Env) -> Check<String> {
    let mut rx = env
        .ring_rx::<Item, RING_SLOTS>("marked")
        .map_err(|e| format!("no `marked` ring: {e}"))?;
    let item = rx
        .recv()
        .map_err(|_| String::from("the `marked` ring is corrupt"))?;
    rx.release();
    Ok(format!("the stream passed {} bytes", item.value))
}

/// Sends `r` on the raw request ring and waits for its answer (what else
/// comes is dropped).
fn raw(net_: &mut Sockets, r: Request) -> Check<Completion> {
    let t = net_.transport();
    t.send(&r).map_err(|e| fail("raw send", e))?;
    for _ in 0..1000 {
        match t.try_recv().map_err(|e| fail("raw recv", e))? {
            Some(c) if c.kind == completion::REPLY && c.tag == r.tag => return Ok(c),
            Some(_) => {}
            None => t.wait(None).map_err(|e| fail("raw wait", e))?,
        }
    }
    Err(format!("no answer to tag {:#x}", r.tag))
}

fn hostile_role(env: &Env, net_: &mut Sockets) -> Check<String> {
    // A listener and a socket never connected, by the library.
    let l = net_.tcp().map_err(|e| fail("socket", e))?;
    net_.bind(l, [0; 4], 9100).map_err(|e| fail("bind", e))?;
    net_.listen(l, 1).map_err(|e| fail("listen", e))?;
    let u = net_.tcp().map_err(|e| fail("socket", e))?;
    let region = net_.transport().region_len();
    let (l, u) = (l.id(), u.id());
    // An id neither of those is, well inside any table.
    let unopened = (0..8).find(|i| *i != l && *i != u).unwrap_or(7);
    let req = |op, socket, offset, len, flags| Request {
        op,
        socket,
        offset,
        len,
        flags,
        ..Request::default()
    };
    let to_host = |r: Request| Request {
        addr: HOST,
        port: 9,
        ..r
    };
    type Probe<'a> = (&'static str, &'static [Errno], &'a [Request]);
    let beyond = [
        req(op::CLOSE, u32::MAX, 0, 0, 0),
        req(op::RECV, 1 << 20, 0, 16, 0),
        req(op::WATCH, 4096, 0, 0, events::READABLE),
    ];
    let never = [
        req(op::LISTEN, unopened, 0, 0, 1),
        req(op::RECV, unopened, 0, 16, 0),
        req(op::CLOSE, unopened, 0, 0, 0),
    ];
    let outside = [
        req(op::SEND, u, region, 1, 0),
        req(op::RECV, u, region.saturating_sub(1), 2, 0),
        req(op::RECV, u, u64::MAX - 10, 100, 0),
        to_host(req(op::SEND_TO, u, u64::MAX, u32::MAX, 0)),
    ];
    let empty = [req(op::SEND, u, 0, 0, 0), req(op::RECV, u, 0, 0, 0)];
    let unknown = [
        req(0, u, 0, 0, 0),
        req(0x1000, u, 0, 0, 0),
        req(u32::MAX, 0, 0, 1, 0),
    ];
    let bad_flags = [
        req(op::OPEN, 0, 0, 0, 3),
        req(op::OPEN, 0, 0, 0, 0),
        req(op::SHUTDOWN, u, 0, 0, 0),
        req(op::SHUTDOWN, u, 0, 0, SHUT_WR | 2),
        req(op::CLOSE, u, 0, 0, 2),
        req(op::WATCH, u, 0, 0, 16),
    ];
    let send_listening = [req(op::SEND, l, 0, 16, 0)];
    let recv_unconnected = [req(op::RECV, u, 0, 16, 0)];
    // What a socket in the wrong state may be told.
    const STATE: &[Errno] = &[
        Errno::ENOTCONN,
        Errno::EOPNOTSUPP,
        Errno::EINVAL,
        Errno::EPIPE,
    ];
    let probes: [Probe<'_>; 8] = [
        ("a socket id beyond the table", &[Errno::EBADF], &beyond),
        ("a socket id never opened", &[Errno::EBADF], &never),
        (
            "a range outside the data region",
            &[Errno::EFAULT],
            &outside,
        ),
        ("a zero length", &[Errno::EINVAL], &empty),
        ("an unknown operation", &[Errno::ENOSYS], &unknown),
        ("bad flags", &[Errno::EINVAL], &bad_flags),
        ("SEND on a listening socket", STATE, &send_listening),
        ("RECV on an unconnected socket", STATE, &recv_unconnected),
    ];
    let mut tag = 0xbad0_0000u64;
    for (what, allowed, requests) in probes {
        let mut said = None;
        for r in requests {
            tag += 1;
            let c = raw(net_, Request { tag, ..*r })?;
            let got = Errno::from_code(c.status);
            match got {
                Some(e) if allowed.contains(&e) && said.is_none_or(|s| s == e) => said = Some(e),
                _ => {
                    return Err(format!(
                        "{what} (op {}, socket {}, offset {:#x}, length {}, flags {:#x}) answered with status {}",
                        r.op, r.socket, r.offset, r.len, r.flags, c.status
                    ))
                }
            }
        }
        let name = said.map_or("?", Errno::name);
        println!("{}: {what} refused with {name}", env.name());
    }
    // The service still serves this client.
    let probe = net_
        .udp()
        .map_err(|e| fail("a socket after the refusals", e))?;
    net_.close(probe).map_err(|e| fail("close", e))?;

    // Garbage in the request ring's producer index (its first word,
    // kaal-ring's layout), and a signal: the service must cut this
    // client off and go on serving the others.
    let (req_mem, _) = env
        .shared_memory("sock_req")
        .map_err(|e| format!("no `sock_req` ring: {e}"))?;
    // SAFETY: the ring memory is mapped read-write here for the life of
    // the program, aligned for the header's atomics; the ring handle
    // reads it only through atomics too.
    let head = unsafe { &*(req_mem as *const AtomicU32) };
    head.store(0x7fff_0000, Ordering::Release);
    net_.raw_requests().peer.0.signal();
    Ok(String::from("ring corrupted"))
}

fn main(env: &Env) -> Result<(), String> {
    if env.name() == "marker" {
        let r = marker_role(env)?;
        println!("{}: {r}", env.name());
        return Ok(());
    }
    let mut net_ = Sockets::new(env).map_err(|e| fail("sockets", e))?;
    let r = match env.name() {
        "connect" => connect_role(env, &mut net_),
        "restart" => restart_role(env, &mut net_),
        "hostile" => hostile_role(env, &mut net_),
        other => Err(format!("no role named {other}")),
    };
    match r {
        Ok(line) => {
            println!("{}: {line}", env.name());
            Ok(())
        }
        Err(e) => {
            println!("{}: FAILED: {e}", env.name());
            Err(e)
        }
    }
}

kaal_rt::component!(main);
