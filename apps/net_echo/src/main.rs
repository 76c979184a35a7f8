//! TCP and UDP echo on port 7 (RFC 862) through the network service's
//! sockets (local names `sock_req`, `sock_cpl`, `sock_data`): one poll loop
//! serves the listener, the UDP socket and up to [`MAX_CONNS`]
//! connections. Sets everything up again when the service restarts.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use kaal_client::socket::{events, Errno, PollFd, Socket, SocketError, Sockets};
use kaal_rt::{println, Env};

const PORT: u16 = 7;
const BACKLOG: u32 = 16;
/// Connections served at once; more wait in the backlog.
const MAX_CONNS: usize = 24;
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
                    Ok(n) => c.end += n,
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
    /// The service's table is full: wait for a connection to close.
    Full,
    /// It failed: a new one in its place.
    Renew,
}

/// Accepts pending connections while there is room.
fn accept_all(
    net: &mut Sockets,
    l: Socket,
    conns: &mut Vec<Conn>,
) -> Result<Listener, SocketError> {
    while conns.len() < MAX_CONNS {
        match net.accept(l) {
            Ok((s, _peer)) => conns.push(Conn {
                s,
                buf: vec![0; CONN_BUF],
                start: 0,
                end: 0,
                eof: false,
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
fn serve(net: &mut Sockets, restarted: bool) -> Result<(), SocketError> {
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
    let mut accepting = true;
    loop {
        fds.clear();
        let listen_for = if accepting && conns.len() < MAX_CONNS {
            events::READABLE
        } else {
            0
        };
        fds.push(PollFd::new(l, listen_for));
        fds.push(PollFd::new(u, events::READABLE));
        fds.extend(conns.iter().map(|c| PollFd::new(c.s, c.interest())));
        net.poll(&mut fds, None)?;
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
                    accepting = true;
                }
            }
        }
        if udp_ready != 0 {
            serve_udp(net, u, &mut datagram)?;
        }
        let next = if listener_ready & events::ERROR != 0 {
            Listener::Renew
        } else if listener_ready != 0 {
            accept_all(net, l, &mut conns)?
        } else {
            Listener::Open
        };
        match next {
            Listener::Open => {}
            Listener::Full => accepting = false,
            Listener::Renew => {
                fatal(net.close(l))?;
                l = listener(net)?;
            }
        }
    }
}

fn main(env: &Env) -> Result<(), SocketError> {
    let mut net = Sockets::new(env)?;
    let mut restarted = false;
    loop {
        match serve(&mut net, restarted) {
            Err(e) if e == Errno::ENETRESET => restarted = true,
            Err(e) => {
                println!("net_echo: stopped: {e}");
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}

kaal_rt::component!(main);
