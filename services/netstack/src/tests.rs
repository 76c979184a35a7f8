//! Two stacks on a simulated wire, each with clients issuing requests as
//! the component would pass them on. The wire is two in-memory queues: no
//! frame leaves the process. 10.0.0.0/24 is the simulated subnet, and
//! [`ABSENT`] an address no simulated host has (its ARP goes unanswered).

extern crate std;

use std::collections::VecDeque;
use std::vec::Vec;

use kaal_protocols::socket::{
    completion, events, kind, op, Completion, Errno, Request, CLOSE_RESET, SHUT_WR,
};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use super::*;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const ABSENT: [u8; 4] = [10, 0, 0, 9];
const REGION: usize = 256 * 1024;

struct Queue {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    /// Frames the link holds before it has no room.
    room: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            room: 64,
        }
    }
}

impl Link for Queue {
    type Frame = Vec<u8>;
    fn receive(&mut self) -> Option<Vec<u8>> {
        self.rx.pop_front()
    }
    fn can_send(&mut self) -> bool {
        self.tx.len() < self.room
    }
    fn send(&mut self, frame: &[u8]) -> bool {
        self.tx.push_back(frame.to_vec());
        true
    }
}

struct Mem(Vec<u8>);

impl Region for Mem {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfRegion> {
        dst.copy_from_slice(self.0.get(offset..offset + dst.len()).ok_or(OutOfRegion)?);
        Ok(())
    }
    fn write(&mut self, offset: usize, src: &[u8]) -> Result<(), OutOfRegion> {
        self.0
            .get_mut(offset..offset + src.len())
            .ok_or(OutOfRegion)?
            .copy_from_slice(src);
        Ok(())
    }
}

struct Host {
    stack: Stack,
    link: Queue,
    regions: Vec<Mem>,
    tag: u64,
}

struct Net {
    a: Host,
    b: Host,
    now: Instant,
}

fn host(ip: [u8; 4], mac: u8, clients: usize, cfg: Config) -> Host {
    let mut link = Queue::default();
    let address = Ipv4Cidr::new(Ipv4Address::from(ip), 24);
    let stack = Stack::new(
        cfg,
        clients,
        [2, 0, 0, 0, 0, mac],
        Addressing::Static {
            address,
            gateway: None,
        },
        &mut link,
        Instant::from_millis(0),
        u64::from(mac),
    );
    Host {
        stack,
        link,
        regions: (0..clients).map(|_| Mem(vec![0; REGION])).collect(),
        tag: 0,
    }
}

fn small() -> Config {
    Config {
        tcp_rx: 8 * 1024,
        tcp_tx: 8 * 1024,
        budget: 2 * 16 * 1024 * 8,
        ..Config::default()
    }
}

impl Net {
    fn new(cfg: Config) -> Net {
        Net {
            a: host(A, 1, 2, cfg),
            b: host(B, 2, 2, cfg),
            now: Instant::from_millis(0),
        }
    }

    /// Runs both stacks for `ms` milliseconds of simulated time.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            for _ in 0..8 {
                self.a.stack.poll(self.now, &mut self.a.link);
                self.b.stack.poll(self.now, &mut self.b.link);
                let (ab, ba) = (self.a.link.tx.len(), self.b.link.tx.len());
                self.b.link.rx.extend(self.a.link.tx.drain(..));
                self.a.link.rx.extend(self.b.link.tx.drain(..));
                if ab + ba == 0 {
                    break;
                }
            }
            self.now += Duration::from_millis(1);
        }
    }
}

impl Host {
    fn call(&mut self, c: usize, r: Request, now: Instant) -> Completion {
        self.tag += 1;
        let r = Request { tag: self.tag, ..r };
        let done = self.stack.request(c, &r, &mut self.regions[c], now);
        assert_eq!((done.tag, done.kind), (r.tag, completion::REPLY));
        done
    }

    fn op(&mut self, c: usize, op: u32, socket: u32, flags: u32) -> Completion {
        let r = Request {
            op,
            socket,
            flags,
            ..Request::default()
        };
        self.call(c, r, Instant::from_millis(0))
    }

    fn ok(&mut self, c: usize, op: u32, socket: u32, flags: u32) -> u64 {
        let done = self.op(c, op, socket, flags);
        assert_eq!(
            done.result(),
            Ok(done.value),
            "op {op} on {socket}: {:?}",
            done.result()
        );
        done.value
    }

    fn at(
        &mut self,
        c: usize,
        op: u32,
        socket: u32,
        addr: [u8; 4],
        port: u16,
        now: Instant,
    ) -> Completion {
        let r = Request {
            op,
            socket,
            addr,
            port,
            ..Request::default()
        };
        self.call(c, r, now)
    }

    fn alarm(&mut self, c: usize, at: u64) -> Completion {
        let r = Request {
            op: op::ALARM,
            offset: at,
            ..Request::default()
        };
        self.call(c, r, Instant::from_millis(0))
    }

    fn listen(&mut self, c: usize, port: u16, backlog: u32) -> u32 {
        let s = self.ok(c, op::OPEN, 0, kind::TCP) as u32;
        assert_eq!(
            self.at(c, op::BIND, s, [0; 4], port, Instant::from_millis(0))
                .result(),
            Ok(0)
        );
        self.ok(c, op::LISTEN, s, backlog);
        s
    }

    fn connect(&mut self, c: usize, to: [u8; 4], port: u16, now: Instant) -> u32 {
        let s = self.ok(c, op::OPEN, 0, kind::TCP) as u32;
        let done = self.at(c, op::CONNECT, s, to, port, now);
        assert_eq!(done.result(), Err(Some(Errno::EINPROGRESS)));
        s
    }

    fn send(&mut self, c: usize, s: u32, data: &[u8]) -> Result<u64, Option<Errno>> {
        self.regions[c].0[..data.len()].copy_from_slice(data);
        let r = Request {
            op: op::SEND,
            socket: s,
            offset: 0,
            len: data.len() as u32,
            ..Request::default()
        };
        self.call(c, r, Instant::from_millis(0)).result()
    }

    fn recv(&mut self, c: usize, s: u32, max: usize) -> Result<Vec<u8>, Option<Errno>> {
        let r = Request {
            op: op::RECV,
            socket: s,
            offset: 4096,
            len: max as u32,
            ..Request::default()
        };
        let n = self.call(c, r, Instant::from_millis(0)).result()? as usize;
        Ok(self.regions[c].0[4096..4096 + n].to_vec())
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_connection_carries_data_both_ways_and_closes_cleanly() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 2);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let acc = net.a.op(0, op::ACCEPT, l, 0);
    let conn = acc.result().expect("accept") as u32;
    // The reply's readiness is the listener's: nothing more pending.
    assert_eq!((acc.addr, acc.events), (B, 0));
    assert_ne!(acc.port, 0);
    let w = net.a.op(0, op::WATCH, conn, events::WRITABLE);
    assert_eq!(w.events & events::WRITABLE, events::WRITABLE);
    // 300 KiB from B to A, through 64 KiB buffers.
    let data = pattern(300 * 1024);
    let (mut sent, mut got) = (0, Vec::new());
    for _ in 0..2000 {
        if sent < data.len() {
            let chunk = &data[sent..(sent + 60_000).min(data.len())];
            match net.b.send(0, s, chunk) {
                Ok(n) => sent += n as usize,
                Err(Some(Errno::EAGAIN)) => {}
                e => panic!("send: {e:?}"),
            }
        }
        match net.a.recv(0, conn, 100_000) {
            Ok(d) => got.extend_from_slice(&d),
            Err(Some(Errno::EAGAIN)) => {}
            e => panic!("recv: {e:?}"),
        }
        if got.len() == data.len() {
            break;
        }
        net.run(1);
    }
    assert!(
        got == data,
        "received {} of {} bytes, or different",
        got.len(),
        data.len()
    );
    // And back.
    assert_eq!(net.a.send(0, conn, b"pong"), Ok(4));
    net.run(5);
    assert_eq!(net.b.recv(0, s, 100), Ok(b"pong".to_vec()));
    // B's FIN: A reads the end of the stream, and hang-up.
    net.b.ok(0, op::SHUTDOWN, s, SHUT_WR);
    net.run(5);
    let r = Request {
        op: op::RECV,
        socket: conn,
        len: 10,
        ..Request::default()
    };
    let done = net.a.call(0, r, net.now);
    assert_eq!(done.result(), Ok(0));
    assert_eq!(
        done.events & (events::READABLE | events::HANGUP),
        events::READABLE | events::HANGUP
    );
    assert_eq!(net.b.send(0, s, b"more"), Err(Some(Errno::EPIPE)));
    net.a.ok(0, op::CLOSE, conn, 0);
    net.run(5);
    assert_eq!(net.b.recv(0, s, 10), Ok(Vec::new()));
    net.b.ok(0, op::CLOSE, s, 0);
    net.a.ok(0, op::CLOSE, l, 0);
    net.run(50);
    // Everything handed back: no socket, no charge.
    assert_eq!((net.a.stack.charged(0), net.b.stack.charged(0)), (0, 0));
    assert_eq!(net.a.stack.socket_count() + net.b.stack.socket_count(), 0);
    assert_eq!(net.a.recv(0, conn, 10), Err(Some(Errno::EBADF)));
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let mut net = Net::new(Config::default());
    let s = net.b.connect(0, A, 81, net.now);
    let w = net.b.op(0, op::WATCH, s, events::WRITABLE | events::ERROR);
    assert_eq!(w.result(), Ok(0));
    net.run(5);
    let ev = net.b.stack.next_event(0).expect("an event");
    assert_eq!((ev.kind, ev.tag, ev.socket), (completion::EVENT, w.tag, s));
    assert_eq!(ev.status, Errno::ECONNREFUSED as u32);
    assert_ne!(ev.events & events::ERROR, 0);
    assert_eq!(net.b.stack.next_event(0), None, "one event per change");
    assert_eq!(net.b.recv(0, s, 10), Err(Some(Errno::ECONNREFUSED)));
    assert_eq!(net.b.send(0, s, b"x"), Err(Some(Errno::ECONNREFUSED)));
}

#[test]
fn a_connect_nobody_answers_times_out() {
    let cfg = Config {
        connect_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let mut net = Net::new(cfg);
    // Nobody has ABSENT: ARP goes unanswered.
    let s = net.b.connect(0, ABSENT, 80, net.now);
    net.run(100);
    assert_eq!(net.b.send(0, s, b"x"), Err(Some(Errno::EAGAIN)));
    net.run(1000);
    assert_eq!(net.b.recv(0, s, 10), Err(Some(Errno::ETIMEDOUT)));
}

#[test]
fn the_backlog_and_the_share_bound_a_flood_of_connections() {
    let mut net = Net::new(small());
    let l = net.a.listen(0, 80, 3);
    // Client 1 of B opens more connections than the backlog, as many as
    // its share holds (8 of 16 KiB each).
    let flood: Vec<u32> = (0..8).map(|_| net.b.connect(1, A, 80, net.now)).collect();
    net.run(20);
    let connected = flood
        .iter()
        .filter(|s| net.b.send(1, **s, b"x").is_ok())
        .count();
    let refused = flood
        .iter()
        .filter(|s| net.b.recv(1, **s, 1) == Err(Some(Errno::ECONNREFUSED)))
        .count();
    assert_eq!(connected, 3, "as many as the backlog");
    assert_eq!(refused, 8 - 3);
    // A's client 0 holds its listener's three sockets, no more.
    assert_eq!(net.a.stack.charged(0), 3 * 16 * 1024);
    // B's client 1 ran into its share.
    let more = net.b.ok(1, op::OPEN, 0, kind::TCP) as u32;
    let c = net.b.at(1, op::CONNECT, more, A, 80, net.now);
    assert_eq!(c.result(), Err(Some(Errno::ENOBUFS)));
    // Its other client is not touched by that: it connects, is accepted.
    let accepted: Vec<u32> = (0..3)
        .map(|_| net.a.ok(0, op::ACCEPT, l, 0) as u32)
        .collect();
    assert_eq!(
        net.a.op(0, op::ACCEPT, l, 0).result(),
        Err(Some(Errno::EAGAIN))
    );
    net.run(5);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let t = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    assert_eq!(net.b.send(0, s, b"hello"), Ok(5));
    net.run(5);
    assert_eq!(net.a.recv(0, t, 10), Ok(b"hello".to_vec()));
    // A flood's pending connection arrived with its data.
    assert_eq!(net.a.recv(0, accepted[0], 10), Ok(b"x".to_vec()));
    // The listener closed, another takes its port while its connections
    // live on.
    net.a.ok(0, op::CLOSE, l, 0);
    let l2 = net.a.listen(0, 80, 1);
    assert_eq!(
        net.a.op(0, op::ACCEPT, l2, 0).result(),
        Err(Some(Errno::EAGAIN))
    );
    assert_eq!(net.a.send(0, t, b"still"), Ok(5));
}

#[test]
fn clients_cannot_name_or_disturb_each_others_sockets() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 1);
    assert_eq!(l, 0);
    // Client 1's id 0 is its own, not client 0's listener.
    assert_eq!(
        net.a.op(1, op::ACCEPT, 0, 0).result(),
        Err(Some(Errno::EBADF))
    );
    assert_eq!(
        net.a.op(1, op::CLOSE, 0, 0).result(),
        Err(Some(Errno::EBADF))
    );
    // Bad ids, ranges, operations and flags.
    for (r, want) in [
        (
            Request {
                op: op::SEND,
                socket: 1000,
                len: 1,
                ..Request::default()
            },
            Errno::EBADF,
        ),
        (
            Request {
                op: op::SEND,
                socket: 5,
                len: 1,
                ..Request::default()
            },
            Errno::EBADF,
        ),
        (
            Request {
                op: op::RECV,
                socket: 0,
                offset: REGION as u64,
                len: 1,
                ..Request::default()
            },
            Errno::EFAULT,
        ),
        (
            Request {
                op: op::RECV,
                socket: 0,
                offset: u64::MAX,
                len: 2,
                ..Request::default()
            },
            Errno::EFAULT,
        ),
        (
            Request {
                op: op::SEND,
                socket: 0,
                len: 0,
                ..Request::default()
            },
            Errno::EINVAL,
        ),
        (
            Request {
                op: 99,
                ..Request::default()
            },
            Errno::ENOSYS,
        ),
        (
            Request {
                op: op::OPEN,
                flags: 7,
                ..Request::default()
            },
            Errno::EINVAL,
        ),
    ] {
        assert_eq!(net.a.call(1, r, net.now).result(), Err(Some(want)), "{r:?}");
    }
    // Wrong kinds and states.
    let u = net.a.ok(1, op::OPEN, 0, kind::UDP) as u32;
    assert_eq!(
        net.a.op(1, op::LISTEN, u, 1).result(),
        Err(Some(Errno::EOPNOTSUPP))
    );
    assert_eq!(net.a.send(1, u, b"x"), Err(Some(Errno::EOPNOTSUPP)));
    assert_eq!(net.a.send(0, l, b"x"), Err(Some(Errno::ENOTCONN)));
    let t = net.a.ok(1, op::OPEN, 0, kind::TCP) as u32;
    assert_eq!(net.a.recv(1, t, 1), Err(Some(Errno::ENOTCONN)));
    assert_eq!(
        net.a.op(1, op::LISTEN, t, 1).result(),
        Err(Some(Errno::EINVAL)),
        "not bound"
    );
    assert_eq!(
        net.a.at(1, op::BIND, t, [0; 4], 80, net.now).result(),
        Err(Some(Errno::EADDRINUSE)),
        "client 0 listens on 80"
    );
    assert_eq!(
        net.a
            .at(1, op::BIND, t, [10, 9, 9, 9], 81, net.now)
            .result(),
        Err(Some(Errno::EADDRNOTAVAIL))
    );
    // The listener still works for its owner.
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let c = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    assert_eq!(net.b.send(0, s, b"ok"), Ok(2));
    net.run(5);
    assert_eq!(net.a.recv(0, c, 10), Ok(b"ok".to_vec()));
    assert_eq!(net.a.stack.stats.refused, 6, "the check's refusals");
}

#[test]
fn a_client_table_fills_up() {
    let mut net = Net::new(Config::default());
    for i in 0..32 {
        assert_eq!(net.a.ok(0, op::OPEN, 0, kind::TCP), i);
    }
    assert_eq!(
        net.a.op(0, op::OPEN, 0, kind::TCP).result(),
        Err(Some(Errno::EMFILE))
    );
    assert_eq!(net.a.op(1, op::OPEN, 0, kind::TCP).result(), Ok(0));
}

#[test]
fn datagrams_travel_both_ways() {
    let mut net = Net::new(Config::default());
    let ua = net.a.ok(0, op::OPEN, 0, kind::UDP) as u32;
    assert_eq!(
        net.a.at(0, op::BIND, ua, [0; 4], 7, net.now).result(),
        Ok(0)
    );
    let ub = net.b.ok(0, op::OPEN, 0, kind::UDP) as u32;
    for size in [1usize, 100, 1472] {
        let data = pattern(size);
        net.b.regions[0].0[..size].copy_from_slice(&data);
        let r = Request {
            op: op::SEND_TO,
            socket: ub,
            len: size as u32,
            addr: A,
            port: 7,
            ..Request::default()
        };
        assert_eq!(net.b.call(0, r, net.now).result(), Ok(size as u64));
        net.run(3);
        let r = Request {
            op: op::RECV_FROM,
            socket: ua,
            offset: 8192,
            len: 2000,
            ..Request::default()
        };
        let got = net.a.call(0, r, net.now);
        assert_eq!(got.result(), Ok(size as u64));
        assert_eq!(got.addr, B);
        assert_eq!(&net.a.regions[0].0[8192..8192 + size], &data[..]);
        // Back to where it came from.
        let back = Request {
            op: op::SEND_TO,
            socket: ua,
            offset: 8192,
            len: size as u32,
            addr: got.addr,
            port: got.port,
            ..Request::default()
        };
        assert_eq!(net.a.call(0, back, net.now).result(), Ok(size as u64));
        net.run(3);
        let r = Request {
            op: op::RECV_FROM,
            socket: ub,
            offset: 0,
            len: 2000,
            ..Request::default()
        };
        let echo = net.b.call(0, r, net.now);
        assert_eq!(
            (echo.result(), echo.addr, echo.port),
            (Ok(size as u64), A, 7)
        );
        assert_eq!(&net.b.regions[0].0[..size], &data[..]);
    }
    let too_big = Request {
        op: op::SEND_TO,
        socket: ub,
        len: 1473,
        addr: A,
        port: 7,
        ..Request::default()
    };
    assert_eq!(
        net.b.call(0, too_big, net.now).result(),
        Err(Some(Errno::EMSGSIZE))
    );
    assert_eq!(
        net.b.op(0, op::RECV_FROM, ub, 0).result(),
        Err(Some(Errno::EINVAL))
    );
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 2);
    // A first connection fills the neighbour caches.
    let _ = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let _ = net.a.ok(0, op::ACCEPT, l, 0);
    let s = net.b.connect(0, A, 80, net.now);
    // Capture one good frame from B to A (the SYN), then send broken
    // copies of it.
    net.b.stack.poll(net.now, &mut net.b.link);
    let good: Vec<Vec<u8>> = net.b.link.tx.drain(..).collect();
    let syn = good
        .iter()
        .find(|f| f.get(12..14) == Some(&[8, 0]))
        .expect("an IPv4 frame")
        .clone();
    let mut bad = Vec::new();
    bad.push(syn[..10].to_vec()); // shorter than an Ethernet header
    bad.push(syn[..20].to_vec()); // a truncated IPv4 header
    let mut f = syn.clone();
    f[14 + 10] ^= 0xff; // IPv4 header checksum
    bad.push(f);
    let mut f = syn.clone();
    let last = f.len() - 1;
    f[last] ^= 0x5a; // TCP checksum no longer matches
    bad.push(f);
    let mut f = syn.clone();
    f[14 + 2] = 0xff; // IPv4 total length past the frame
    bad.push(f);
    let mut ipv6 = syn.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    net.a.link.rx.extend(bad.iter().cloned());
    net.a.link.rx.push_back(ipv6);
    let before = net.a.stack.stats;
    net.a.stack.poll(net.now, &mut net.a.link);
    let after = net.a.stack.stats;
    assert_eq!(after.malformed, bad.len() as u64);
    assert_eq!(after.unsupported, 1);
    assert_eq!(after.frames_in, before.frames_in, "none reached smoltcp");
    // A client reads the counters.
    let r = Request {
        op: op::STATS,
        offset: 64,
        len: 1000,
        ..Request::default()
    };
    let n = net.a.call(1, r, net.now).result().expect("stats") as usize;
    assert_eq!(n, core::mem::size_of::<Stats>());
    let read: Stats = bytemuck::pod_read_unaligned(&net.a.regions[1].0[64..64 + n]);
    assert_eq!((read.malformed, read.unsupported), (bad.len() as u64, 1));
    // Then the good ones: the connection is made.
    net.a.link.rx.extend(good);
    net.run(5);
    assert!(net.a.op(0, op::ACCEPT, l, 0).result().is_ok());
    assert_eq!(net.b.send(0, s, b"fine"), Ok(4));
}

#[test]
fn watched_sockets_get_one_event_per_change() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 1);
    let w = net.a.op(0, op::WATCH, l, events::READABLE);
    assert_eq!(net.a.stack.next_event(0), None);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let ev = net.a.stack.next_event(0).expect("pending connection");
    assert_eq!((ev.tag, ev.socket, ev.events), (w.tag, l, events::READABLE));
    assert_eq!(net.a.stack.next_event(0), None);
    let c = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    let wc = net.a.op(0, op::WATCH, c, events::READABLE | events::HANGUP);
    assert_eq!(net.a.stack.next_event(0), None, "nothing to read yet");
    for i in 0..3u8 {
        assert_eq!(net.b.send(0, s, &[i]), Ok(1));
        net.run(3);
    }
    // Three arrivals, one event: readiness is a state.
    let ev = net.a.stack.next_event(0).expect("readable");
    assert_eq!(
        (ev.tag, ev.socket, ev.events & events::READABLE),
        (wc.tag, c, events::READABLE)
    );
    assert_eq!(net.a.stack.next_event(0), None);
    assert_eq!(net.a.recv(0, c, 10), Ok(vec![0, 1, 2]));
    // The reply told it "not readable"; new data is a new event.
    assert_eq!(net.b.send(0, s, b"z"), Ok(1));
    net.run(3);
    assert!(net.a.stack.next_event(0).is_some());
}

#[test]
fn reset_closes_all_of_a_clients_sockets_and_the_peer_sees_it() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 1);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let _c = net.a.ok(0, op::ACCEPT, l, 0);
    let _u = net.a.ok(0, op::OPEN, 0, kind::UDP);
    assert_eq!(net.a.ok(0, op::RESET, 0, 0), 3);
    net.run(5);
    assert_eq!(net.b.recv(0, s, 10), Err(Some(Errno::ECONNRESET)));
    assert_eq!(
        net.a.op(0, op::ACCEPT, l, 0).result(),
        Err(Some(Errno::EBADF))
    );
    net.run(5);
    assert_eq!(net.a.stack.charged(0), 0);
    // Close with a reset on one connection.
    let l = net.a.listen(0, 80, 1);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let c = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    net.a.ok(0, op::CLOSE, c, CLOSE_RESET);
    net.run(5);
    assert_eq!(net.b.recv(0, s, 10), Err(Some(Errno::ECONNRESET)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever another client sends (any operation, id, range, flags,
    /// address), it gets answers, holds no more than its share, and client
    /// 0's connection carries its data.
    #[test]
    fn any_requests_of_one_client_leave_the_others_whole(
        reqs in proptest::collection::vec(
            (0u32..16, 0u32..40, 0u64..(REGION as u64 + 10), 0u32..70_000, 0u32..20, proptest::prelude::any::<u16>(), 0u8..3),
            1..60,
        )
    ) {
        let mut net = Net::new(small());
        let l = net.a.listen(0, 80, 2);
        let s = net.b.connect(0, A, 80, net.now);
        net.run(5);
        let c = net.a.ok(0, op::ACCEPT, l, 0) as u32;
        for (i, &(o, socket, offset, len, flags, port, to)) in reqs.iter().enumerate() {
            let addr = [A, B, ABSENT][to as usize];
            let r = Request { op: o, socket, offset, len, flags, addr, port, ..Request::default() };
            let done = net.a.call(1, r, net.now);
            proptest::prop_assert_eq!(done.kind, completion::REPLY);
            proptest::prop_assert!(net.a.stack.charged(1) <= net.a.stack.share);
            if i % 8 == 0 {
                net.run(1);
            }
        }
        let data = pattern(5000);
        proptest::prop_assert_eq!(net.b.send(0, s, &data), Ok(5000));
        net.run(10);
        proptest::prop_assert_eq!(net.a.recv(0, c, 10_000), Ok(data));
    }
}

#[test]
fn pings_are_answered() {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
        IpProtocol, Ipv4Packet, Ipv4Repr,
    };
    let mut net = Net::new(Config::default());
    // A connection first fills both neighbour caches.
    let l = net.a.listen(0, 80, 1);
    let _ = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let _ = net.a.ok(0, op::ACCEPT, l, 0);
    let data = b"kaal ping";
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x4b61,
        seq_no: 7,
        data,
    };
    let ip = Ipv4Repr {
        src_addr: Ipv4Address::from(B),
        dst_addr: Ipv4Address::from(A),
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv4,
    };
    let caps = ChecksumCapabilities::default();
    let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), &caps);
    net.a.link.rx.push_back(frame);
    net.a.stack.poll(net.now, &mut net.a.link);
    let replies: Vec<Vec<u8>> = net.a.link.tx.drain(..).collect();
    let answered = replies.iter().any(|f| {
        let Ok(e) = EthernetFrame::new_checked(&f[..]) else {
            return false;
        };
        let Ok(p) = Ipv4Packet::new_checked(e.payload()) else {
            return false;
        };
        let Ok(i) = Icmpv4Packet::new_checked(p.payload()) else {
            return false;
        };
        matches!(
            Icmpv4Repr::parse(&i, &caps),
            Ok(Icmpv4Repr::EchoReply { ident: 0x4b61, seq_no: 7, data: d }) if d == data
        ) && p.dst_addr() == Ipv4Address::from(B)
    });
    assert!(answered, "no echo reply among {} frames", replies.len());
}

#[test]
fn a_listener_reports_each_pending_connection_after_an_accept() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 4);
    let w = net.a.op(0, op::WATCH, l, events::READABLE);
    let _ = net.b.connect(0, A, 80, net.now);
    let _ = net.b.connect(0, A, 80, net.now);
    net.run(5);
    assert!(net.a.stack.next_event(0).is_some());
    // One accepted; the reply says the listener is still readable.
    let acc = net.a.op(0, op::ACCEPT, l, 0);
    assert_eq!(acc.events & events::READABLE, events::READABLE);
    let _ = net.a.op(0, op::ACCEPT, l, 0);
    // None left: the reply says so; a third connection is an event.
    assert_eq!(
        net.a.op(0, op::ACCEPT, l, 0).result(),
        Err(Some(Errno::EAGAIN))
    );
    let _ = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let ev = net.a.stack.next_event(0).expect("the third connection");
    assert_eq!((ev.tag, ev.socket, ev.events), (w.tag, l, events::READABLE));
}

#[test]
fn a_refused_request_reports_the_sockets_readiness() {
    let mut net = Net::new(Config::default());
    let ua = net.a.ok(0, op::OPEN, 0, kind::UDP) as u32;
    assert_eq!(
        net.a.at(0, op::BIND, ua, [0; 4], 7, net.now).result(),
        Ok(0)
    );
    let ub = net.b.ok(0, op::OPEN, 0, kind::UDP) as u32;
    net.b.regions[0].0[0] = 1;
    let r = Request {
        op: op::SEND_TO,
        socket: ub,
        len: 1,
        addr: A,
        port: 7,
        ..Request::default()
    };
    assert_eq!(net.b.call(0, r, net.now).result(), Ok(1));
    net.run(3);
    // A datagram waits; a SEND_TO to port 0 is refused, and its reply
    // still says readable.
    let bad = Request {
        op: op::SEND_TO,
        socket: ua,
        len: 1,
        addr: B,
        port: 0,
        ..Request::default()
    };
    let done = net.a.call(0, bad, net.now);
    assert_eq!(done.result(), Err(Some(Errno::EINVAL)));
    assert_eq!(done.events & events::READABLE, events::READABLE);
}

#[test]
fn half_open_connections_give_their_listener_slot_back() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 1);
    // A first connection fills both neighbour caches.
    let _ = net.b.connect(1, A, 80, net.now);
    net.run(5);
    let _ = net.a.ok(0, op::ACCEPT, l, 0);
    // B's SYN reaches A; everything after it is lost.
    let s = net.b.connect(0, A, 80, net.now);
    for _ in 0..5 {
        net.a.stack.poll(net.now, &mut net.a.link);
        net.b.stack.poll(net.now, &mut net.b.link);
        net.a.link.rx.extend(net.b.link.tx.drain(..));
        net.a.link.tx.clear();
        net.now += Duration::from_millis(1);
    }
    net.b.ok(0, op::CLOSE, s, CLOSE_RESET);
    let half_open = |a: &Stack| {
        a.sockets.iter().any(|(_, s)| {
            matches!(s, smoltcp::socket::Socket::Tcp(t) if t.state() == smoltcp::socket::tcp::State::SynReceived)
        })
    };
    assert!(half_open(&net.a.stack));
    // The SYN-ACK is sent again 1, 3, 7 and 15 s in; past 10 s since the
    // SYN the socket gives up, and listens again.
    for _ in 0..20_000 {
        net.a.stack.poll(net.now, &mut net.a.link);
        net.b.stack.poll(net.now, &mut net.b.link);
        net.a.link.tx.clear();
        net.b.link.tx.clear();
        net.now += Duration::from_millis(1);
    }
    assert!(!half_open(&net.a.stack));
    let t = net.b.connect(1, A, 80, net.now);
    net.run(5);
    assert!(net.a.op(0, op::ACCEPT, l, 0).result().is_ok());
    assert_eq!(net.b.send(1, t, b"late"), Ok(4));
}

#[test]
fn closed_connections_that_cannot_say_goodbye_are_reaped() {
    let cfg = Config {
        connect_timeout: Duration::from_millis(500),
        linger: Duration::from_secs(2),
        ..Config::default()
    };
    let mut net = Net::new(cfg);
    // Nobody has ABSENT: the connect times out, and its reset never
    // goes out; then the client closes it.
    let s = net.b.connect(0, ABSENT, 80, net.now);
    net.run(1500);
    assert_eq!(net.b.recv(0, s, 1), Err(Some(Errno::ETIMEDOUT)));
    net.b.ok(0, op::CLOSE, s, CLOSE_RESET);
    net.run(5000);
    assert_eq!((net.b.stack.charged(0), net.b.stack.socket_count()), (0, 0));
}

#[test]
fn a_full_link_drops_answers_and_counts_them() {
    use smoltcp::wire::{EthernetFrame, Ipv4Packet, TcpPacket};
    let mut net = Net::new(Config::default());
    // A SYN from B to a port nobody listens on wants a reset as answer.
    let _ = net.b.connect(0, A, 81, net.now);
    net.run(3);
    let _ = net.b.connect(0, A, 81, net.now);
    net.b.stack.poll(net.now, &mut net.b.link);
    let syn: Vec<Vec<u8>> = net.b.link.tx.drain(..).collect();
    let is_syn = |f: &Vec<u8>| {
        let Ok(e) = EthernetFrame::new_checked(&f[..]) else {
            return false;
        };
        let Ok(p) = Ipv4Packet::new_checked(e.payload()) else {
            return false;
        };
        TcpPacket::new_checked(p.payload()).is_ok_and(|t| t.syn())
    };
    assert!(syn.iter().any(is_syn));
    net.a.link.room = 0;
    net.a.link.rx.extend(syn);
    net.a.stack.poll(net.now, &mut net.a.link);
    assert!(net.a.link.tx.is_empty());
    assert!(net.a.stack.stats.dropped_out >= 1);
    // Room again: the stack sends on.
    net.a.link.room = 64;
    net.run(1100);
    assert!(net.a.stack.stats.frames_out > 0);
}

#[test]
fn a_client_alarm_comes_once_its_deadline_passed() {
    let mut net = Net::new(Config::default());
    let done = net.a.alarm(1, 1000);
    assert_eq!(done.result(), Ok(0));
    assert_eq!(net.a.stack.next_alarm(0), Some(1000));
    assert_eq!(net.a.stack.alarm_due(1, 999), None);
    assert_eq!(net.a.stack.alarm_due(0, 5000), None, "another client's");
    let a = net.a.stack.alarm_due(1, 1000).expect("due");
    assert_eq!((a.kind, a.tag), (completion::ALARM, done.tag));
    assert_eq!(net.a.stack.alarm_due(1, 5000), None, "once");
    // A later one replaces it; 0 cancels.
    let _ = net.a.alarm(1, 10);
    let later = net.a.alarm(1, 20);
    assert_eq!(net.a.stack.next_alarm(0), Some(20));
    assert_eq!(net.a.stack.alarm_due(1, 30).map(|a| a.tag), Some(later.tag));
    let _ = net.a.alarm(1, 40);
    let _ = net.a.alarm(1, 0);
    assert_eq!(
        (net.a.stack.next_alarm(0), net.a.stack.alarm_due(1, 100)),
        (None, None)
    );
}

#[test]
fn a_quiet_pending_connection_is_reset_and_its_slot_listens_again() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 1);
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    assert_eq!(net.b.send(0, s, b"G"), Ok(1));
    // Twenty quiet seconds without an ACCEPT: the peer is reset (it
    // learns of it), and the slot takes a new connection.
    net.run(20_000);
    assert_eq!(net.b.recv(0, s, 10), Err(Some(Errno::ECONNRESET)));
    assert_eq!(
        net.a.op(0, op::ACCEPT, l, 0).result(),
        Err(Some(Errno::EAGAIN))
    );
    let t = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let c = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    assert_eq!(net.b.send(0, t, b"ok"), Ok(2));
    net.run(5);
    assert_eq!(net.a.recv(0, c, 10), Ok(b"ok".to_vec()));
}

#[test]
fn local_says_the_address_a_connection_reached() {
    let mut net = Net::new(Config::default());
    let l = net.a.listen(0, 80, 2);
    let any = net.a.op(0, op::LOCAL, l, 0);
    assert_eq!((any.result(), any.addr, any.port), (Ok(0), [0; 4], 80));
    let s = net.b.connect(0, A, 80, net.now);
    net.run(5);
    let conn = net.a.ok(0, op::ACCEPT, l, 0) as u32;
    // The listener is bound to any address; its connection's end is A's.
    let here = net.a.op(0, op::LOCAL, conn, 0);
    assert_eq!((here.result(), here.addr, here.port), (Ok(0), A, 80));
    let there = net.b.op(0, op::LOCAL, s, 0);
    assert_eq!(there.addr, B);
    assert_ne!(there.port, 0);
    let fresh = net.a.ok(0, op::OPEN, 0, kind::UDP) as u32;
    let unbound = net.a.op(0, op::LOCAL, fresh, 0);
    assert_eq!((unbound.addr, unbound.port), ([0; 4], 0));
    assert_eq!(
        net.a.op(0, op::LOCAL, 31, 0).result(),
        Err(Some(Errno::EBADF))
    );
}
