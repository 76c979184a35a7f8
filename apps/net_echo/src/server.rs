//! The component: one poll loop serves the listener, the UDP socket and
//! up to [`MAX_CONNS`] connections. Sets everything up again when the
//! service restarts.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use kaal_client::socket::conns::{Activity, Policy, Slots};
use kaal_client::socket::{events, Errno, PollFd, Socket, SocketError, Sockets};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};

const PORT: u16 = 7;
const BACKLOG: u32 = 16;
/// Connections served at once; more wait in the backlog, or the least
/// recently active makes room (see [`net_echo`]).
const MAX_CONNS: usize = 24;
/// A connection that receives and sends nothing for this long is reset.
/// Longer than httpd's: an echo client may pause between lines, and under
/// load eviction makes room sooner.
const IDLE: Duration = Duration::from_secs(30);
/// A new connection is not evicted for this long, and nothing is evicted
/// before the table has been full for this long.
const GRACE: Duration = Duration::from_secs(1);
/// Bytes of a connection read but not yet echoed.
const CONN_BUF: usize = 8 * 1024;
/// The largest datagram echoed whole (an Ethernet frame's payload fits).
const DATAGRAM: usize = 2048;
/// Datagrams echoed per wake-up, so connections get their turn.
const DATAGRAMS_PER_ROUND: usize = 16;

/// One TCP connection: bytes read and not yet sent back.
struct Conn {
    s: Socket,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The peer closed its half.
    eof: bool,
    /// When it was accepted and last moved a byte.
    act: Activity,
}

impl Conn {
    fn pending(&self) -> bool {
        self.end > self.start
    }

    /// What to wait for: room to read into, or the peer taking bytes.
    fn interest(&self) -> u32 {
        let mut e = 0;
        if !self.eof && self.end < self.buf.len() {
            e |= events::READABLE;
        }
        if self.pending() {
            e |= events::WRITABLE;
        }
        e
    }
}

/// How a connection's turn ended.
enum Turn {
    Open,
    Done,
}

/// Reads what there is and sends back what the peer takes; `Done` when
/// the connection is to be closed. `ENETRESET` and a broken service end
/// the whole loop; any other error ends only this connection.
fn serve_conn(net: &mut Sockets, c: &mut Conn, ready: u32) -> Result<Turn, SocketError> {
    if ready & events::ERROR != 0 {
        return Ok(Turn::Done);
    }
    let result = (|| {
        if ready & events::READABLE != 0 && !c.eof {
            if c.start == c.end {
                (c.start, c.end) = (0, 0);
            }
            if let Some(room) = c.buf.get_mut(c.end..).filter(|r| !r.is_empty()) {
                match net.recv(c.s, room) {
                    Ok(0) => c.eof = true,
                    Ok(n) => {
                        c.end += n;
                        c.act.progress(rdtsc());
                    }
                    Err(e) if e == Errno::EAGAIN => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if c.pending() {
            let data = c.buf.get(c.start..c.end).unwrap_or(&[]);
            match net.send(c.s, data) {
                Ok(n) => {
                    c.start += n;
                    if n > 0 {
                        c.act.progress(rdtsc());
                    }
                    // All echoed: the whole buffer is free to read into.
                    if c.start == c.end {
                        (c.start, c.end) = (0, 0);
                    }
                }
                Err(e) if e == Errno::EAGAIN => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) if c.eof && !c.pending() => {
            // Everything echoed: our half closes too.
            fatal(net.shutdown(c.s))?;
            Ok(Turn::Done)
        }
        Ok(()) => Ok(Turn::Open),
        Err(e) => {
            fatal::<()>(Err(e))?;
            Ok(Turn::Done)
        }
    }
}

/// Passes on the errors that end the loop (a restart of the service, a
/// broken one); drops the rest, which concern one connection or datagram.
fn fatal<T>(r: Result<T, SocketError>) -> Result<Option<T>, SocketError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e == Errno::ENETRESET || e == SocketError::Broken => Err(e),
        Err(_) => Ok(None),
    }
}

/// Echoes the datagrams waiting on `u`, each to its source.
fn serve_udp(net: &mut Sockets, u: Socket, buf: &mut [u8]) -> Result<(), SocketError> {
    for _ in 0..DATAGRAMS_PER_ROUND {
        let (n, from) = match net.recv_from(u, buf) {
            Ok(got) => got,
            Err(e) if e == Errno::EAGAIN => return Ok(()),
            Err(e) => return fatal::<()>(Err(e)).map(drop),
        };
        if let Some(d) = buf.get(..n).filter(|d| !d.is_empty()) {
            // A datagram the service cannot send now is lost, as UDP may.
            fatal(net.send_to(u, d, from))?;
        }
    }
    Ok(())
}

/// What became of the listener after accepting.
enum Listener {
    /// Accepting.
    Open,
    /// The service's table is full: wait a while.
    Full,
    /// It failed: a new one in its place.
    Renew,
}

/// Accepts pending connections while there is room, or a connection to
/// evict for them.
fn accept_all(
    net: &mut Sockets,
    l: Socket,
    conns: &mut Vec<Conn>,
    p: &Policy,
    slots: &mut Slots,
) -> Result<Listener, SocketError> {
    let now = rdtsc();
    loop {
        if conns.len() >= MAX_CONNS {
            slots.note(p, conns.len(), now);
            // Room from the least recently active, if one may go; else
            // new ones wait in the backlog.
            let Some(i) = slots.victim(p, conns.iter().map(|c| &c.act), now) else {
                break;
            };
            fatal(net.abort(conns.swap_remove(i).s))?;
        }
        match net.accept(l) {
            Ok((s, _peer)) => conns.push(Conn {
                s,
                buf: vec![0; CONN_BUF],
                start: 0,
                end: 0,
                eof: false,
                act: Activity::new(rdtsc()),
            }),
            Err(e) if e == Errno::EAGAIN => break,
            Err(e) if e == Errno::EMFILE || e == Errno::ENOBUFS => return Ok(Listener::Full),
            // Gone before it was taken: the next one.
            Err(e) if e == Errno::ECONNABORTED || e == Errno::ECONNRESET => {}
            Err(e) => return fatal::<()>(Err(e)).map(|_| Listener::Renew),
        }
    }
    Ok(Listener::Open)
}

/// A TCP socket listening on [`PORT`].
fn listener(net: &mut Sockets) -> Result<Socket, SocketError> {
    let l = net.tcp()?;
    net.bind(l, [0; 4], PORT)?;
    net.listen(l, BACKLOG)?;
    Ok(l)
}

/// Binds both sockets and serves until the service restarts (the
/// `ENETRESET` it returns) or breaks.
fn serve(net: &mut Sockets, p: &Policy, restarted: bool) -> Result<(), SocketError> {
    let mut l = listener(net)?;
    let u = net.udp()?;
    net.bind(u, [0; 4], PORT)?;
    if restarted {
        println!("net_echo: the network service restarted; listening again");
    } else {
        println!("net_echo: listening on tcp port {PORT} and udp port {PORT}");
    }
    let mut conns: Vec<Conn> = Vec::with_capacity(MAX_CONNS);
    let mut fds: Vec<PollFd> = Vec::with_capacity(MAX_CONNS + 2);
    let mut datagram = vec![0u8; DATAGRAM];
    let mut slots = Slots::default();
    loop {
        // Connections past their deadline go first, freeing their slots.
        let now = rdtsc();
        let mut i = 0;
        while let Some(c) = conns.get(i) {
            if p.expired(&c.act, now) {
                fatal(net.abort(conns.swap_remove(i).s))?;
            } else {
                i += 1;
            }
        }
        slots.note(p, conns.len(), now);
        let acts = || conns.iter().map(|c| &c.act);
        let listen_for = if slots.listen(p, acts(), now) {
            events::READABLE
        } else {
            0
        };
        // With a time to wake at, the service's alarm ends the sleep.
        let until = slots.wake(p, acts(), now);
        fds.clear();
        fds.push(PollFd::new(l, listen_for));
        fds.push(PollFd::new(u, events::READABLE));
        fds.extend(conns.iter().map(|c| PollFd::new(c.s, c.interest())));
        net.poll(&mut fds, until)?;
        let ready = |fds: &[PollFd], i: usize| fds.get(i).map_or(0, |f| f.revents);
        let (listener_ready, udp_ready) = (ready(&fds, 0), ready(&fds, 1));

        // Connections first, so the ones closed make room for new ones.
        let mut i = 0;
        while let Some(c) = conns.get_mut(i) {
            let r = ready(&fds, i + 2);
            let turn = if r == 0 {
                Turn::Open
            } else {
                serve_conn(net, c, r)?
            };
            match turn {
                Turn::Open => i += 1,
                Turn::Done => {
                    let c = conns.swap_remove(i);
                    fatal(net.close(c.s))?;
                    // The poll results follow the connections.
                    fds.swap_remove(i + 2);
                }
            }
        }
        slots.note(p, conns.len(), rdtsc());
        if udp_ready != 0 {
            serve_udp(net, u, &mut datagram)?;
        }
        let next = if listener_ready & events::ERROR != 0 {
            Listener::Renew
        } else if listener_ready != 0 {
            accept_all(net, l, &mut conns, p, &mut slots)?
        } else {
            Listener::Open
        };
        match next {
            Listener::Open => {}
            // The service has no socket to spare: try again after a
            // grace period.
            Listener::Full => slots.pause(rdtsc().saturating_add(p.grace)),
            Listener::Renew => {
                fatal(net.close(l))?;
                l = listener(net)?;
            }
        }
    }
}

/// The policy in TSC ticks (at 3 GHz if the kernel did not say how fast
/// the TSC runs).
fn policy(clock: Option<Clock>) -> Policy {
    let ticks = |d: Duration| {
        clock.map_or_else(
            || u64::try_from(d.as_nanos().saturating_mul(3)).unwrap_or(u64::MAX),
            |c| c.ticks(d),
        )
    };
    Policy {
        slots: MAX_CONNS,
        idle: ticks(IDLE),
        grace: ticks(GRACE),
    }
}

pub fn main(env: &Env) -> Result<(), SocketError> {
    let mut net = Sockets::new(env)?;
    let mut restarted = false;
    let p = policy(env.clock());
    loop {
        match serve(&mut net, &p, restarted) {
            Err(e) if e == Errno::ENETRESET => restarted = true,
            Err(e) => {
                println!("net_echo: stopped: {e}");
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}
