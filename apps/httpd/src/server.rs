//! The component: sockets, connections and files.

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use httpd::{
    content_type, error_body, map_path, parse, response_head, scan, Method, Refusal, Request, Scan,
    Status, MAX_HEAD,
};
use kaal_client::file::{flags, kind, Fd, FileError, Files};
use kaal_client::socket::conns::{Activity, Policy, Slots};
use kaal_client::socket::{events, Errno, PollFd, Socket, SocketError, Sockets};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};

const ROOT: &str = "/www";
const PORT: u16 = 80;
const BACKLOG: u32 = 8;
/// Connections served at once; when all are taken, the least recently
/// active makes room for a new one (see [`kaal_client::socket::conns`]).
const MAX_CONNS: usize = 16;
/// A connection that receives and sends nothing for this long is reset.
const IDLE: Duration = Duration::from_secs(10);
/// A new connection is not evicted for this long, and nothing is evicted
/// before the table has been full for this long.
const GRACE: Duration = Duration::from_secs(1);

/// File bytes read from the VFS at a time, so a large file never sits in
/// the heap whole.
const CHUNK: usize = 4096;
/// Steps of one connection per wake-up, so the others get their turn.
const STEPS: usize = 8;

/// A file being sent.
struct Body {
    fd: Fd,
    left: u64,
}

struct Conn {
    s: Socket,
    /// Request bytes received and not yet handled.
    input: Vec<u8>,
    len: usize,
    /// Bytes of the answer to send, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    body: Option<Body>,
    /// Request body bytes still to drop.
    skip: u64,
    /// Close once the answer is out.
    close_after: bool,
    /// The peer closed its half.
    eof: bool,
    /// When it was accepted and last moved a byte.
    act: Activity,
    /// Its last turn ended with work left (pipelined requests buffered).
    busy: bool,
}

impl Conn {
    fn new(s: Socket) -> Conn {
        Conn {
            s,
            input: vec![0; MAX_HEAD],
            len: 0,
            out: Vec::new(),
            sent: 0,
            body: None,
            skip: 0,
            close_after: false,
            eof: false,
            act: Activity::new(rdtsc()),
            busy: false,
        }
    }

    fn answering(&self) -> bool {
        self.sent < self.out.len() || self.body.is_some()
    }

    fn interest(&self) -> u32 {
        // Work left is an answer to send, so writable is what to wait for.
        if self.answering() || self.busy {
            events::WRITABLE
        } else {
            events::READABLE
        }
    }

    /// Drops the first `n` bytes of the input.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.input.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// What to do with a connection after its turn.
enum Turn {
    Open,
    Close,
}

/// Sets `c` up to answer `status` with a short text body, closing after
/// it if the request could not be read.
fn refuse(c: &mut Conn, r: Refusal, head_only: bool) {
    let keep = r.keep_alive && r.status.keeps_connection();
    let body = error_body(r.status);
    let mut head = String::new();
    response_head(
        &mut head,
        r.status,
        "text/plain; charset=utf-8",
        body.len() as u64,
        keep,
    );
    c.out.clear();
    c.out.extend_from_slice(head.as_bytes());
    if !head_only {
        c.out.extend_from_slice(body.as_bytes());
    }
    c.sent = 0;
    c.skip = r.body;
    c.close_after = !keep;
}

/// Opens what `path` names: the file, or a directory's `index.html`; its
/// descriptor, size and the path opened.
fn open_file(fs: &Files, path: String, directory: bool) -> Result<(Fd, u64, String), Status> {
    let failed = |e: FileError| match e {
        FileError::Fs(_) => Status::NotFound,
        _ => Status::InternalError,
    };
    let fd = fs.open(&path, flags::READ_ONLY, 0).map_err(failed)?;
    let stat = match fs.fstat(fd) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs.close(fd);
            return Err(failed(e));
        }
    };
    match stat.kind {
        kind::REGULAR if !directory => Ok((fd, stat.size, path)),
        kind::DIRECTORY => {
            let _ = fs.close(fd);
            let mut index = path;
            index.push_str("/index.html");
            let fd = fs.open(&index, flags::READ_ONLY, 0).map_err(failed)?;
            match fs.fstat(fd) {
                Ok(s) if s.kind == kind::REGULAR => Ok((fd, s.size, index)),
                other => {
                    let _ = fs.close(fd);
                    Err(other.map_or_else(failed, |_| Status::NotFound))
                }
            }
        }
        _ => {
            let _ = fs.close(fd);
            Err(Status::NotFound)
        }
    }
}

/// Sets `c` up to answer request `r`.
fn answer(fs: &Files, c: &mut Conn, r: &Request<'_>) {
    let head_only = r.method == Method::Head;
    let refusal = |status| Refusal {
        status,
        keep_alive: r.keep_alive,
        body: r.body,
    };
    let opened = map_path(ROOT, r.target).and_then(|m| open_file(fs, m.path, m.directory));
    let (fd, size, path) = match opened {
        Ok(f) => f,
        Err(status) => return refuse(c, refusal(status), head_only),
    };
    let mut head = String::new();
    response_head(
        &mut head,
        Status::Ok,
        content_type(&path),
        size,
        r.keep_alive,
    );
    c.out.clear();
    c.out.extend_from_slice(head.as_bytes());
    c.sent = 0;
    c.skip = r.body;
    c.close_after = !r.keep_alive;
    if head_only || size == 0 {
        let _ = fs.close(fd);
    } else {
        c.body = Some(Body { fd, left: size });
    }
}

/// Passes on the errors that end the loop (a restart of the network
/// service, a broken one); the rest concern one connection.
fn fatal(e: SocketError) -> Result<Turn, SocketError> {
    if e == Errno::ENETRESET || e == SocketError::Broken {
        Err(e)
    } else {
        Ok(Turn::Close)
    }
}

/// Moves connection `c` on as far as it goes without waiting.
fn step(net: &mut Sockets, fs: &Files, c: &mut Conn) -> Result<Turn, SocketError> {
    c.busy = false;
    for _ in 0..STEPS {
        // The answer so far.
        if let Some(rest) = c.out.get(c.sent..).filter(|r| !r.is_empty()) {
            match net.send(c.s, rest) {
                Ok(n) => {
                    c.sent += n;
                    c.act.progress(rdtsc());
                    continue;
                }
                Err(e) if e == Errno::EAGAIN => return Ok(Turn::Open),
                Err(e) => return fatal(e),
            }
        }
        // The next chunk of the file.
        if let Some(b) = c.body.as_mut() {
            if b.left > 0 {
                let want = usize::try_from(b.left).unwrap_or(CHUNK).min(CHUNK);
                c.out.resize(want, 0);
                match fs.read(b.fd, &mut c.out) {
                    Ok(n) if n > 0 => {
                        c.out.truncate(n);
                        c.sent = 0;
                        b.left = b.left.saturating_sub(n as u64);
                        continue;
                    }
                    // The file shrank or the VFS failed: the length sent
                    // cannot be kept, only the connection closed.
                    _ => return Ok(Turn::Close),
                }
            }
            let _ = fs.close(b.fd);
            c.body = None;
        }
        c.out.clear();
        c.sent = 0;
        if c.close_after {
            let _ = net.shutdown(c.s);
            return Ok(Turn::Close);
        }
        // The body of the last request is not ours to read.
        if c.skip > 0 {
            let n = usize::try_from(c.skip).unwrap_or(usize::MAX).min(c.len);
            c.consume(n);
            c.skip -= n as u64;
        }
        if c.skip == 0 {
            match scan(c.input.get(..c.len).unwrap_or(&[])) {
                Scan::Complete(n) => {
                    // Out of the connection while the request borrows it.
                    let input = core::mem::take(&mut c.input);
                    match parse(input.get(..n).unwrap_or(&[])) {
                        Ok(r) => answer(fs, c, &r),
                        Err(r) => refuse(c, r, false),
                    }
                    c.input = input;
                    c.consume(n);
                    continue;
                }
                Scan::Refused(status) => {
                    refuse(
                        c,
                        Refusal {
                            status,
                            keep_alive: false,
                            body: 0,
                        },
                        false,
                    );
                    c.len = 0;
                    continue;
                }
                Scan::Incomplete => {}
            }
        }
        if c.eof {
            // Nothing more will come: what is left is no whole request.
            return Ok(Turn::Close);
        }
        let room = c.input.get_mut(c.len..).unwrap_or(&mut []);
        if room.is_empty() {
            // Unreachable (scan refuses a full buffer); closing is safe.
            return Ok(Turn::Close);
        }
        match net.recv(c.s, room) {
            Ok(0) => c.eof = true,
            Ok(n) => {
                c.len += n;
                c.act.progress(rdtsc());
            }
            Err(e) if e == Errno::EAGAIN => return Ok(Turn::Open),
            Err(e) => return fatal(e),
        }
    }
    c.busy = true;
    Ok(Turn::Open)
}

/// Closes `c`: with a reset when `abort` (it ran out of time or was
/// evicted, so the peer learns its answer is cut short).
fn close(net: &mut Sockets, fs: &Files, c: Conn, abort: bool) -> Result<(), SocketError> {
    if let Some(b) = c.body {
        let _ = fs.close(b.fd);
    }
    let closed = if abort {
        net.abort(c.s)
    } else {
        net.close(c.s)
    };
    match closed {
        Err(e) if e == Errno::ENETRESET || e == SocketError::Broken => Err(e),
        _ => Ok(()),
    }
}

/// A TCP socket listening on [`PORT`].
fn listener(net: &mut Sockets) -> Result<Socket, SocketError> {
    let l = net.tcp()?;
    net.bind(l, [0; 4], PORT)?;
    net.listen(l, BACKLOG)?;
    Ok(l)
}

/// Serves until the network service restarts (`ENETRESET`) or breaks.
fn serve(
    net: &mut Sockets,
    fs: &Files,
    p: &Policy,
    restarted: bool,
    conns: &mut Vec<Conn>,
) -> Result<(), SocketError> {
    let mut l = listener(net)?;
    if restarted {
        println!("httpd: the network service restarted; serving again");
    } else {
        println!("httpd: serving {ROOT} on port {PORT}");
    }
    let mut fds: Vec<PollFd> = Vec::with_capacity(MAX_CONNS + 1);
    let mut slots = Slots::default();
    loop {
        // Connections past their deadline go first, freeing their slots.
        let now = rdtsc();
        let mut i = 0;
        while let Some(c) = conns.get(i) {
            if p.expired(&c.act, now) {
                close(net, fs, conns.swap_remove(i), true)?;
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
        fds.extend(conns.iter().map(|c| PollFd::new(c.s, c.interest())));
        net.poll(&mut fds, until)?;
        let listener_ready = fds.first().map_or(0, |f| f.revents);

        let mut i = 0;
        while let Some(c) = conns.get_mut(i) {
            let ready = fds.get(i + 1).map_or(0, |f| f.revents);
            let turn = if ready & events::ERROR != 0 {
                Turn::Close
            } else if ready != 0 {
                step(net, fs, c)?
            } else {
                Turn::Open
            };
            match turn {
                Turn::Open => i += 1,
                Turn::Close => {
                    close(net, fs, conns.swap_remove(i), false)?;
                    fds.swap_remove(i + 1);
                }
            }
        }
        let now = rdtsc();
        slots.note(p, conns.len(), now);

        if listener_ready & events::ERROR != 0 {
            let _ = net.close(l);
            l = listener(net)?;
            continue;
        }
        if listener_ready == 0 {
            continue;
        }
        loop {
            if conns.len() >= MAX_CONNS {
                slots.note(p, conns.len(), now);
                // Room from the least recently active, if one may go;
                // else new ones wait in the backlog.
                let Some(i) = slots.victim(p, conns.iter().map(|c| &c.act), now) else {
                    break;
                };
                close(net, fs, conns.swap_remove(i), true)?;
            }
            match net.accept(l) {
                Ok((s, _peer)) => conns.push(Conn::new(s)),
                Err(e) if e == Errno::EAGAIN => break,
                Err(e) if e == Errno::EMFILE || e == Errno::ENOBUFS => {
                    // The service has no socket to spare: try again
                    // after a grace period.
                    slots.pause(now.saturating_add(p.grace));
                    break;
                }
                Err(e) if e == Errno::ECONNABORTED || e == Errno::ECONNRESET => {}
                Err(e) => {
                    fatal(e)?;
                    // The listener failed: a new one in its place.
                    let _ = net.close(l);
                    l = listener(net)?;
                    break;
                }
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
    let fs = match Files::new(env, "fs") {
        Ok(fs) => fs,
        Err(e) => {
            println!("httpd: no file system: {e}");
            return Err(SocketError::NotGranted("fs"));
        }
    };
    let mut net = Sockets::new(env)?;
    let mut restarted = false;
    let mut conns: Vec<Conn> = Vec::with_capacity(MAX_CONNS);
    let p = policy(env.clock());
    loop {
        let r = serve(&mut net, &fs, &p, restarted, &mut conns);
        // The sockets are gone; the files being sent are not.
        for c in conns.drain(..) {
            if let Some(b) = c.body {
                let _ = fs.close(b.fd);
            }
        }
        match r {
            Err(e) if e == Errno::ENETRESET => restarted = true,
            Err(e) => {
                println!("httpd: stopped: {e}");
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}
