//! Host-side peers of the network tests: programs on this machine that talk
//! to servers in the guest through QEMU user networking's port forwards.
//!
//! A test's `qemu_args` name forwards with placeholders, `{tcp:N}` and
//! `{udp:N}` (N a guest port); the harness replaces each with a host port
//! that was free just before QEMU started ([`Ports`]). `{host:N}` (N a
//! number of the program's own) in `qemu_args` or `serial_input` is a free
//! TCP port on 127.0.0.1 where the program listens for the guest, which
//! reaches it at 10.0.2.2. Its `peer` key names
//! a program ([`Program`]) that runs in a thread once a line of the serial
//! log has appeared ([`Runner`]); the program's failure fails the test.
//!
//! Every connection goes to 127.0.0.1, every listener binds 127.0.0.1, and
//! every read, write, connect and accept has a time limit: test traffic
//! stays on this machine and nothing hangs.

pub mod bench;
mod guest;
pub(crate) mod http;
mod sockets;
mod stream;
mod udp;
mod wget_nc;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// `peer = { program = "tcp_echo", after = "...", timeout_secs = 120 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    pub program: Program,
    /// Substring of the serial log after which the program starts.
    pub after: String,
    /// The program must finish this long after it started.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    120
}

/// The peer programs, by their names in tests.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// Guest TCP 7 echoes: 1 MiB on one connection, then 16 connections of
    /// 64 KiB at once.
    TcpEcho,
    /// Guest TCP 7 is tokio_echo on the POSIX layer: 16 connections at
    /// once echo 1 MiB each.
    TokioEcho,
    /// Guest UDP 7 echoes: 100 datagrams of 1 to 1472 bytes.
    UdpEcho,
    /// Guest TCP 80 serves the web tree's /www over HTTP/1.1 (checked with curl).
    Http,
    /// Guest TCP 80 serves the web tree while 20 clients hold connections
    /// without finishing a request: a GET is still answered, and the
    /// stalled connections are reset.
    HttpSlow,
    /// Guest TCP 80 serves the default system's disk: GET / gives
    /// systems/rootfs/www/index.html (the page `cargo xtask run` serves).
    HttpIndex,
    /// Guest TCP 8000 is busybox httpd on the POSIX layer's sockets,
    /// serving the web tree's /www: a page, the 1 MiB file by sha256,
    /// then 100 requests in a row.
    BusyboxHttp,
    /// Guest TCP 9000 takes a host port, and the guest connects there.
    GuestConnect,
    /// Like guest_connect, with the guest's network service killed during a
    /// first stream and a second connection after its restart.
    Restart,
    /// Guest TCP 7 echoes on after a bounded flood of connection attempts.
    SynFlood,
    /// The network benchmarks' host side, short: the guest's `sock_bench`
    /// on TCP 9, 19 and 7 and its httpd on TCP 80 ([`bench::drive`]).
    NetBench,
    /// tests/linux/sockets.c's host side: a TCP echo, a UDP echo and a
    /// closed port, sent to the program's guest TCP port 9000.
    Sockets,
    /// Busybox `wget` typed on the console fetches a file from `{host:1}`
    /// (checked by its sha256, which the guest sends back with `nc`), and
    /// `nc` exchanges lines with `{host:2}`.
    BusyboxWgetNc,
    /// The same sink, source and echo (no HTTP), short, against the POSIX
    /// layer's `netbench` ([`bench::drive_streams`]).
    LinuxNetBench,
}

impl Program {
    /// Its name in tests.toml.
    pub fn name(self) -> &'static str {
        match self {
            Program::TcpEcho => "tcp_echo",
            Program::TokioEcho => "tokio_echo",
            Program::UdpEcho => "udp_echo",
            Program::Http => "http",
            Program::HttpIndex => "http_index",
            Program::HttpSlow => "http_slow",
            Program::BusyboxHttp => "busybox_http",
            Program::GuestConnect => "guest_connect",
            Program::Restart => "restart",
            Program::SynFlood => "syn_flood",
            Program::NetBench => "net_bench",
            Program::Sockets => "sockets",
            Program::BusyboxWgetNc => "busybox_wget_nc",
            Program::LinuxNetBench => "linux_net_bench",
        }
    }

    /// The forward the program talks through.
    pub fn forward(self) -> (Proto, u16) {
        match self {
            Program::TcpEcho | Program::TokioEcho | Program::SynFlood => (Proto::Tcp, 7),
            Program::UdpEcho => (Proto::Udp, 7),
            Program::Http | Program::HttpIndex | Program::HttpSlow => (Proto::Tcp, 80),
            Program::BusyboxHttp => (Proto::Tcp, http::BUSYBOX_PORT),
            Program::GuestConnect | Program::Restart => (Proto::Tcp, guest::CONTROL_PORT),
            // Its first; the others fail at once when missing.
            Program::NetBench | Program::LinuxNetBench => (Proto::Tcp, 9),
            Program::Sockets => (Proto::Tcp, guest::CONTROL_PORT),
            Program::BusyboxWgetNc => (Proto::Host, wget_nc::HTTP),
        }
    }
}

impl PeerSpec {
    /// Checks the keys against the test's QEMU arguments and serial input
    /// (where its placeholders are).
    pub fn check(&self, test: &str, qemu_args: &[String]) -> Result<()> {
        if self.after.is_empty() {
            bail!("test {test}: peer.after is empty; it must be a line the guest prints once its server listens");
        }
        if self.timeout_secs == 0 {
            bail!("test {test}: peer.timeout_secs must be at least 1");
        }
        let (proto, port) = self.program.forward();
        let forwards = placeholders(qemu_args).with_context(|| format!("test {test}"))?;
        if !forwards.contains(&(proto, port)) {
            bail!(
                "test {test}: peer {} talks to {proto} port {port}, but no qemu_args \
                 argument or serial_input names it ({{{proto}:{port}}})",
                self.program.name()
            );
        }
        Ok(())
    }
}

/// A transport protocol of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// Not a forward: a TCP port on 127.0.0.1 where the peer listens.
    Host,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Host => "host",
        })
    }
}

/// The `{tcp:N}` and `{udp:N}` placeholders of `args`, each once, in order.
pub fn placeholders(args: &[String]) -> Result<Vec<(Proto, u16)>> {
    let mut found = Vec::new();
    for arg in args {
        let mut rest = arg.as_str();
        while let Some(at) = rest.find('{') {
            rest = rest.get(at + 1..).unwrap_or_default();
            let proto = if rest.starts_with("tcp:") {
                Proto::Tcp
            } else if rest.starts_with("udp:") {
                Proto::Udp
            } else if rest.starts_with("host:") {
                Proto::Host
            } else {
                continue;
            };
            let body = rest.get(proto.to_string().len() + 1..).unwrap_or_default();
            let end = body.find('}').with_context(|| {
                format!("qemu_args: {{{proto}: in {arg:?} has no closing brace")
            })?;
            let digits = body.get(..end).unwrap_or_default();
            let port = digits
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .with_context(|| {
                    format!("qemu_args: {{{proto}:{digits}}} names no guest port (1 to 65535)")
                })?;
            if !found.contains(&(proto, port)) {
                found.push((proto, port));
            }
            rest = body.get(end + 1..).unwrap_or_default();
        }
    }
    Ok(found)
}

/// The host ports of a test's forwards: guest (protocol, port) to host port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(BTreeMap<(Proto, u16), u16>);

impl Ports {
    /// A free host port for each placeholder of `args`. Each is bound on
    /// 127.0.0.1 port 0 (the kernel picks a free one) and held until all
    /// are picked, so that no two placeholders get the same port; QEMU binds
    /// them moments later.
    pub fn allocate(args: &[String]) -> Result<Ports> {
        let mut held_tcp = Vec::new();
        let mut held_udp = Vec::new();
        let mut map = BTreeMap::new();
        for (proto, guest) in placeholders(args)? {
            let host = match proto {
                // The peer binds it again when it starts.
                Proto::Tcp | Proto::Host => {
                    let l = TcpListener::bind("127.0.0.1:0")
                        .context("finding a free TCP port on 127.0.0.1")?;
                    let port = l.local_addr()?.port();
                    held_tcp.push(l);
                    port
                }
                Proto::Udp => {
                    let s = UdpSocket::bind("127.0.0.1:0")
                        .context("finding a free UDP port on 127.0.0.1")?;
                    let port = s.local_addr()?.port();
                    held_udp.push(s);
                    port
                }
            };
            map.insert((proto, guest), host);
        }
        Ok(Ports(map))
    }

    /// `arg` with each placeholder replaced by its host port.
    pub fn substitute(&self, arg: &str) -> String {
        self.0
            .iter()
            .fold(arg.to_owned(), |a, ((proto, guest), host)| {
                a.replace(&format!("{{{proto}:{guest}}}"), &host.to_string())
            })
    }

    /// The host port forwarded to guest port `guest` (for [`Proto::Host`],
    /// the port `{host:N}` named).
    pub fn host(&self, proto: Proto, guest: u16) -> Result<u16> {
        self.0.get(&(proto, guest)).copied().with_context(|| {
            format!("no host port forwards to guest {proto} port {guest} ({{{proto}:{guest}}})")
        })
    }

    #[cfg(test)]
    pub fn with(entries: &[(Proto, u16, u16)]) -> Ports {
        Ports(entries.iter().map(|&(p, g, h)| ((p, g), h)).collect())
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self
            .0
            .iter()
            .map(|((proto, guest), host)| match proto {
                Proto::Host => format!("{{host:{guest}}} at 127.0.0.1:{host}"),
                _ => format!("guest {proto} {guest} at 127.0.0.1:{host}"),
            })
            .collect();
        f.write_str(&all.join(", "))
    }
}

/// Time limits of the peer programs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Each connect, read and write.
    pub io: Duration,
    /// Until the guest connects back (guest_connect, restart's first stream).
    pub accept: Duration,
    /// Until the guest connects again after its service restarted, and the
    /// longest the first stream may stall before that.
    pub reaccept: Duration,
    /// For a datagram's echo before it is sent again.
    pub datagram: Duration,
    /// The connection flood's longest duration (the keeper echoes through
    /// it; well under net_echo's 30 s idle limit either way).
    pub flood: Duration,
}

impl Limits {
    /// For a guest under QEMU's TCG, where slirp and the guest's stack are slow.
    pub const GUEST: Limits = Limits {
        io: Duration::from_secs(30),
        accept: Duration::from_secs(60),
        reaccept: Duration::from_secs(120),
        datagram: Duration::from_secs(3),
        flood: Duration::from_secs(10),
    };
}

/// What a program may use: the forwards, its limits, a flag that says
/// stop (QEMU ended, or the program's time is up) and its log.
pub struct Peer {
    pub ports: Ports,
    pub limits: Limits,
    pub cancel: Arc<AtomicBool>,
    pub log: Log,
}

impl Peer {
    /// The host port of the program's guest TCP port.
    pub fn tcp(&self, guest: u16) -> Result<u16> {
        self.ports.host(Proto::Tcp, guest)
    }

    /// The port of the program's `{host:N}`.
    pub fn host(&self, n: u16) -> Result<u16> {
        self.ports.host(Proto::Host, n)
    }

    /// Fails once the harness said stop.
    pub fn go_on(&self, waiting_for: &str) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            bail!("stopped (QEMU ended or the peer's time ran out) while {waiting_for}");
        }
        Ok(())
    }
}

/// The peer's log: one line per step, to a file (peer-<name>.log) and kept
/// for the unit tests.
#[derive(Debug, Default)]
pub struct Log {
    file: Option<File>,
    pub lines: Vec<String>,
}

impl Log {
    pub fn to_file(path: &Path) -> Result<Log> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Log {
            file: Some(file),
            lines: Vec::new(),
        })
    }

    pub fn line(&mut self, line: String) {
        if let Some(f) = &mut self.file {
            // The log is for people; a failed write must not fail the test.
            let _ = writeln!(f, "{line}");
        }
        self.lines.push(line);
    }
}

/// Runs `program` to its end.
pub fn run_program(program: Program, peer: &mut Peer) -> Result<()> {
    match program {
        Program::TcpEcho => stream::tcp_echo(peer),
        Program::TokioEcho => stream::tokio_echo(peer),
        Program::UdpEcho => udp::udp_echo(peer),
        Program::Http => http::http(peer),
        Program::HttpIndex => http::http_index(peer),
        Program::HttpSlow => http::http_slow(peer),
        Program::BusyboxHttp => http::busybox_http(peer),
        Program::GuestConnect => guest::guest_connect(peer),
        Program::Restart => guest::restart(peer),
        Program::SynFlood => stream::syn_flood(peer),
        Program::NetBench => bench::net_bench(peer),
        Program::Sockets => sockets::sockets(peer),
        Program::BusyboxWgetNc => wget_nc::busybox_wget_nc(peer),
        Program::LinuxNetBench => bench::linux_net_bench(peer),
    }
}

/// Where a test's peer is.
enum State {
    /// Its `after` line has not appeared yet.
    Waiting,
    Running {
        started: Instant,
        done: Receiver<Result<(), String>>,
    },
    Done(Result<(), String>),
}

/// A test's peer, run alongside QEMU: the harness feeds it the serial log
/// as it grows ([`Runner::poll`]) and asks for its verdict once QEMU ended
/// ([`Runner::finish`]).
pub struct Runner {
    spec: PeerSpec,
    ports: Ports,
    limits: Limits,
    log: PathBuf,
    cancel: Arc<AtomicBool>,
    state: State,
}

impl Runner {
    pub fn new(spec: &PeerSpec, ports: Ports, log: PathBuf) -> Runner {
        // An earlier run's log would tell of a peer that did not run this time.
        let _ = std::fs::remove_file(&log);
        Runner {
            spec: spec.clone(),
            ports,
            limits: Limits::GUEST,
            log,
            cancel: Arc::new(AtomicBool::new(false)),
            state: State::Waiting,
        }
    }

    /// Starts the program once `serial` (the log so far) holds its `after`
    /// line; then its result once it has one. A program past its time limit
    /// has failed.
    pub fn poll(&mut self, serial: &str) -> Option<&Result<(), String>> {
        if matches!(self.state, State::Waiting) && serial.contains(&self.spec.after) {
            self.state = self.start();
        }
        self.check();
        match &self.state {
            State::Done(result) => Some(result),
            State::Waiting | State::Running { .. } => None,
        }
    }

    fn start(&self) -> State {
        let mut log = match Log::to_file(&self.log) {
            Ok(log) => log,
            Err(err) => return State::Done(Err(format!("{err:#}"))),
        };
        let program = self.spec.program;
        log.line(format!(
            "{}: started; forwards: {}",
            program.name(),
            self.ports
        ));
        let mut peer = Peer {
            ports: self.ports.clone(),
            limits: self.limits,
            cancel: Arc::clone(&self.cancel),
            log,
        };
        let (tx, done) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name(format!("peer-{}", program.name()))
            .spawn(move || {
                let result = run_program(program, &mut peer).map_err(|e| format!("{e:#}"));
                match &result {
                    Ok(()) => peer.log.line(format!("{}: passed", program.name())),
                    Err(why) => peer.log.line(format!("{}: FAILED: {why}", program.name())),
                }
                // The harness may have stopped listening; nothing to tell then.
                let _ = tx.send(result);
            });
        match spawned {
            Ok(_) => State::Running {
                started: Instant::now(),
                done,
            },
            Err(err) => State::Done(Err(format!("starting the peer thread: {err}"))),
        }
    }

    fn check(&mut self) {
        let State::Running { started, done } = &self.state else {
            return;
        };
        let limit = Duration::from_secs(self.spec.timeout_secs);
        let next = match done.try_recv() {
            Ok(result) => result,
            Err(TryRecvError::Disconnected) => Err("the peer thread panicked".to_owned()),
            Err(TryRecvError::Empty) if started.elapsed() >= limit => {
                // Its loops see this and end; the thread is left to finish alone.
                self.cancel.store(true, Ordering::Relaxed);
                Err(format!("did not finish within {}s", limit.as_secs()))
            }
            Err(TryRecvError::Empty) => return,
        };
        self.state = State::Done(next);
    }

    /// The peer's verdict once QEMU has ended: a program still running is
    /// told to stop (the guest is gone) and waited for, within its limit.
    pub fn finish(mut self, serial: &str) -> Result<(), String> {
        self.cancel.store(true, Ordering::Relaxed);
        loop {
            self.check();
            match self.state {
                // Not started now: the guest is gone.
                State::Waiting if serial.contains(&self.spec.after) => {
                    return Err(format!(
                        "never ran: QEMU ended as the serial output showed {:?}",
                        self.spec.after
                    ))
                }
                State::Waiting => {
                    return Err(format!(
                        "never ran: the serial output never showed {:?}",
                        self.spec.after
                    ))
                }
                State::Done(result) => return result,
                State::Running { .. } => thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// The program's name, for messages.
    pub fn name(&self) -> &'static str {
        self.spec.program.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn placeholders_are_found_each_once() -> Result<()> {
        let a = args(&[
            "-netdev",
            "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp:7}-:7,hostfwd=udp:127.0.0.1:{udp:7}-:7",
            "x{tcp:7}{tcp:80}{disk}",
            "wget http://10.0.2.2:{host:1}/",
        ]);
        assert_eq!(
            placeholders(&a)?,
            [
                (Proto::Tcp, 7),
                (Proto::Udp, 7),
                (Proto::Tcp, 80),
                (Proto::Host, 1)
            ]
        );
        for bad in ["{tcp:0}", "{tcp:70000}", "{udp:}", "{tcp:7", "{tcp:x}"] {
            assert!(placeholders(&args(&[bad])).is_err(), "{bad}");
        }
        assert!(placeholders(&args(&["{disk}", "{other:1}", "{"]))?.is_empty());
        Ok(())
    }

    #[test]
    fn each_placeholder_gets_its_own_free_port() -> Result<()> {
        let a = args(&["hostfwd=tcp:127.0.0.1:{tcp:7}-:7,{tcp:80},{udp:7},again {tcp:7}"]);
        let ports = Ports::allocate(&a)?;
        let (t7, t80, u7) = (
            ports.host(Proto::Tcp, 7)?,
            ports.host(Proto::Tcp, 80)?,
            ports.host(Proto::Udp, 7)?,
        );
        assert_ne!(t7, t80);
        assert_eq!(
            ports.substitute(a.first().context("one")?),
            format!("hostfwd=tcp:127.0.0.1:{t7}-:7,{t80},{u7},again {t7}")
        );
        assert_eq!(
            ports.to_string(),
            format!("guest tcp 7 at 127.0.0.1:{t7}, guest tcp 80 at 127.0.0.1:{t80}, guest udp 7 at 127.0.0.1:{u7}")
        );
        // Free: each can be bound again.
        TcpListener::bind(("127.0.0.1", t7))?;
        UdpSocket::bind(("127.0.0.1", u7))?;
        assert!(ports.host(Proto::Udp, 80).is_err());
        Ok(())
    }

    #[test]
    fn a_peer_needs_its_forward() -> Result<()> {
        let spec = PeerSpec {
            program: Program::Http,
            after: "listening".into(),
            timeout_secs: 10,
        };
        spec.check("t", &args(&["hostfwd=tcp:127.0.0.1:{tcp:80}-:80"]))?;
        let err = spec
            .check("t", &args(&["hostfwd=tcp:127.0.0.1:{tcp:7}-:7"]))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("peer http talks to tcp port 80")),
            "{err:?}"
        );
        Ok(())
    }

    fn runner(after: &str, timeout_secs: u64) -> Runner {
        let log =
            std::env::temp_dir().join(format!("kaal-peer-{}-{after}.log", std::process::id()));
        let spec = PeerSpec {
            program: Program::TcpEcho,
            after: after.into(),
            timeout_secs,
        };
        Runner::new(&spec, Ports::default(), log)
    }

    #[test]
    fn a_peer_whose_line_never_came_fails() {
        let mut r = runner("net_echo: listening", 10);
        assert!(r.poll("booting\nnet_echo: listen").is_none());
        let err = r.finish("booting\n").err();
        assert_eq!(
            err.as_deref(),
            Some("never ran: the serial output never showed \"net_echo: listening\"")
        );
        let r = runner("net_echo: listening", 10);
        let err = r.finish("booting\nnet_echo: listening\n").err();
        assert_eq!(
            err.as_deref(),
            Some("never ran: QEMU ended as the serial output showed \"net_echo: listening\"")
        );
    }

    #[test]
    fn a_peer_starts_after_its_line_and_reports_its_error() {
        // No forward to tcp 7: the program fails at once, and says why.
        let mut r = runner("ready", 10);
        assert!(r.poll("boot").is_none());
        r.poll("boot\nready\n");
        let started = Instant::now();
        while r.poll("").is_none() && started.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(10));
        }
        let log = r.log.clone();
        let err = r.finish("").err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("no host port forwards to guest tcp port 7")),
            "{err:?}"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        assert!(
            text.starts_with("tcp_echo: started; forwards: \n"),
            "{text}"
        );
        assert!(text.contains("tcp_echo: FAILED: no host port"), "{text}");
    }
}
