//! The client against a small model of the service, which tests can make
//! restart, post events, or answer wrongly.

use std::boxed::Box;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::socket::Errno::*;

const REGION: usize = 256;
const IDS: usize = 8;

/// Changes a reply.
type Tamper = Box<dyn FnMut(&mut Completion)>;

#[derive(Default)]
struct Model {
    /// Completions for the client.
    out: VecDeque<Completion>,
    /// Every request taken.
    taken: Vec<Request>,
    region: Vec<u8>,
    open: [bool; IDS],
    /// Bytes waiting to be received, per id.
    inbox: Vec<Vec<u8>>,
    /// Bytes sent, per id.
    sent: Vec<Vec<u8>>,
    /// Room for sent bytes per call.
    room: usize,
    /// Changes the next reply (a hostile service).
    tamper: Option<Tamper>,
    /// The service dies when it takes this op: a RESTART, no answer.
    die_on: Option<u32>,
    /// Whether sockets are writable (connected).
    writable: bool,
    /// An event (events, status) posted right after a WATCH's answer.
    on_watch: Option<(u32, u32)>,
    now: u64,
    /// The client's ALARM (tag, deadline); `None` when not asked.
    alarm: Option<(u64, u64)>,
    /// An older service: ALARM is ENOSYS.
    no_alarms: bool,
    /// Sleeps that the alarm ended.
    alarm_sleeps: u32,
}

impl Model {
    fn new() -> Model {
        let mut m = Model {
            region: vec![0; REGION],
            inbox: vec![Vec::new(); IDS],
            sent: vec![Vec::new(); IDS],
            room: usize::MAX,
            writable: true,
            ..Model::default()
        };
        m.restart();
        m
    }

    /// What a (re)started service does first.
    fn restart(&mut self) {
        self.open = [false; IDS];
        self.out.push_back(Completion {
            kind: completion::RESTART,
            ..Completion::default()
        });
    }

    fn event(&mut self, id: u32, tag: u64, events: u32, status: u32) {
        self.out.push_back(Completion {
            tag,
            socket: id,
            events,
            status,
            kind: completion::EVENT,
            ..Completion::default()
        });
    }

    fn serve(&mut self, r: &Request) -> core::result::Result<u64, Errno> {
        let id = r.socket as usize;
        let is_open = self.open.get(id).copied().unwrap_or(false);
        let range = r.offset as usize..r.offset as usize + r.len as usize;
        match r.op {
            op::RESET => {
                let n = self.open.iter().filter(|o| **o).count();
                self.open = [false; IDS];
                Ok(n as u64)
            }
            op::OPEN => {
                let id = self.open.iter().position(|o| !o).ok_or(EMFILE)?;
                self.open[id] = true;
                Ok(id as u64)
            }
            op::ALARM if self.no_alarms => Err(crate::socket::Errno::ENOSYS),
            op::ALARM => {
                self.alarm = (r.offset != 0).then_some((r.tag, r.offset));
                Ok(0)
            }
            op::STATS => {
                let stats = crate::socket::Stats {
                    bytes_in: 1234,
                    busy_ticks: 77,
                    ..Default::default()
                };
                let bytes = bytemuck::bytes_of(&stats);
                let n = bytes.len().min(range.len());
                self.region[range.start..range.start + n].copy_from_slice(&bytes[..n]);
                Ok(n as u64)
            }
            _ if !is_open => Err(EBADF),
            op::CLOSE => {
                self.open[id] = false;
                Ok(0)
            }
            op::CONNECT => Err(EINPROGRESS),
            op::SEND => {
                let n = range.len().min(self.room);
                if n == 0 {
                    return Err(EAGAIN);
                }
                let bytes = self.region[range.start..range.start + n].to_vec();
                self.sent[id].extend(bytes);
                Ok(n as u64)
            }
            op::RECV => {
                let n = range.len().min(self.inbox[id].len());
                if n == 0 {
                    return Err(EAGAIN);
                }
                let bytes: Vec<u8> = self.inbox[id].drain(..n).collect();
                self.region[range.start..range.start + n].copy_from_slice(&bytes);
                Ok(n as u64)
            }
            _ => Ok(0),
        }
    }

    fn readiness(&self, id: u32) -> u32 {
        let mut e = if self.writable { events::WRITABLE } else { 0 };
        if self.inbox.get(id as usize).is_some_and(|i| !i.is_empty()) {
            e |= events::READABLE;
        }
        e
    }
}

impl Transport for Model {
    fn send(&mut self, r: &Request) -> Result<()> {
        self.taken.push(*r);
        if self.die_on == Some(r.op) {
            self.die_on = None;
            self.restart();
            return Ok(());
        }
        let result = self.serve(r);
        let mut c = Completion::reply(r, result, self.readiness(r.socket));
        if let Some(mut t) = self.tamper.take() {
            t(&mut c);
        }
        self.out.push_back(c);
        if r.op == op::WATCH {
            if let Some((events, status)) = self.on_watch.take() {
                self.event(r.socket, r.tag, events, status);
            }
        }
        Ok(())
    }

    fn try_recv(&mut self) -> Result<Option<Completion>> {
        Ok(self.out.pop_front())
    }

    fn wait(&mut self, until: Option<u64>) -> Result<()> {
        match until {
            // The clock runs to the alarm's deadline, which comes.
            None if self.alarm.is_some() => {
                if let Some((tag, at)) = self.alarm.take() {
                    self.now = self.now.max(at);
                    self.alarm_sleeps += 1;
                    self.out.push_back(Completion {
                        tag,
                        kind: completion::ALARM,
                        ..Completion::default()
                    });
                }
                Ok(())
            }
            // Nothing would ever wake a sleeper: the test's failure.
            None => Err(SocketError::Broken),
            Some(_) => {
                self.now += 1;
                Ok(())
            }
        }
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn region_len(&self) -> u64 {
        self.region.len() as u64
    }

    fn write(&mut self, offset: u64, src: &[u8]) -> Result<()> {
        let at = offset as usize;
        self.region
            .get_mut(at..at + src.len())
            .ok_or(SocketError::Broken)?
            .copy_from_slice(src);
        Ok(())
    }

    fn read(&mut self, offset: u64, dst: &mut [u8]) -> Result<()> {
        let at = offset as usize;
        dst.copy_from_slice(
            self.region
                .get(at..at + dst.len())
                .ok_or(SocketError::Broken)?,
        );
        Ok(())
    }
}

fn client() -> Sockets<Model> {
    Sockets::new(Model::new()).expect("the client starts")
}

fn ops(s: &mut Sockets<Model>) -> Vec<u32> {
    s.transport().taken.iter().map(|r| r.op).collect()
}

#[test]
fn it_starts_with_a_reset_and_takes_the_restart_on_the_way() {
    let mut s = client();
    // The RESTART before the first answer asks for a second RESET, whose
    // late answer is then dropped as stale.
    assert_eq!(ops(&mut s), [op::RESET, op::RESET]);
    let t = s.tcp().expect("a socket");
    assert_eq!(t.id(), 0);
    assert_eq!(s.dropped(), 1);
    // A service that answers its RESET before restarting: one RESET more.
    let mut m = Model::new();
    m.out.clear();
    let s = Sockets::new(m).expect("the client starts");
    assert_eq!(s.restarts(), 0);
}

#[test]
fn a_restart_kills_every_socket_and_a_reset_goes_first() {
    let mut s = client();
    let a = s.tcp().expect("a");
    let b = s.udp().expect("b");
    assert_eq!((a.id(), b.id()), (0, 1));
    s.transport().restart();
    // The call that meets the RESTART fails, whatever its answer.
    assert_eq!(s.listen(a, 4), Err(ENETRESET.into()));
    assert_eq!(s.bind(b, [0; 4], 7), Err(ENETRESET.into()));
    let mut fds = [PollFd::new(a, events::READABLE)];
    assert_eq!(s.poll(&mut fds, Some(10)), Err(ENETRESET.into()));
    // Closing a lost socket is no error and asks nothing.
    let before = s.transport().taken.len();
    assert_eq!(s.close(a), Ok(()));
    assert_eq!(s.transport().taken.len(), before);
    // The next new socket comes after a RESET; its id may be an old one.
    let c = s.tcp().expect("c");
    let taken = ops(&mut s);
    assert_eq!(taken[taken.len() - 2..], [op::RESET, op::OPEN]);
    assert_eq!(c.id(), 0);
    assert_ne!(c, a);
    assert_eq!(s.listen(a, 1), Err(ENETRESET.into()));
    assert_eq!(s.listen(c, 1), Ok(()));
}

#[test]
fn a_request_lost_with_the_service_fails_with_enetreset() {
    let mut s = client();
    let a = s.tcp().expect("a");
    s.transport().die_on = Some(op::LISTEN);
    assert_eq!(s.listen(a, 4), Err(ENETRESET.into()));
    assert_eq!(s.listen(a, 4), Err(ENETRESET.into()));
    let b = s.tcp().expect("b");
    assert_eq!(s.listen(b, 4), Ok(()));
}

#[test]
fn closed_ids_are_ebadf_here_and_free_for_the_next() {
    let mut s = client();
    let a = s.tcp().expect("a");
    s.close(a).expect("close");
    let before = s.transport().taken.len();
    assert_eq!(s.listen(a, 1), Err(EBADF.into()));
    assert_eq!(s.transport().taken.len(), before);
    assert_eq!(s.tcp().map(Socket::id), Ok(0));
}

#[test]
fn bytes_go_through_the_region() {
    let mut s = client();
    let a = s.tcp().expect("a");
    // More than the region: one region's worth per call.
    let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    assert_eq!(s.send(a, &data), Ok(REGION));
    s.send_all(a, &data[REGION..], None).expect("the rest");
    assert_eq!(s.transport().sent[0], data);
    assert_eq!(s.send(a, &[]), Ok(0));
    s.transport().inbox[0] = b"hello".to_vec();
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(a, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(s.recv(a, &mut buf), Err(EAGAIN.into()));
    assert_eq!(s.recv(a, &mut []), Err(EINVAL.into()));
}

#[test]
fn stats_come_through_the_region_and_touch_no_socket() {
    let mut s = client();
    let a = s.tcp().expect("a");
    // A SEND's reply records the socket's readiness: writable.
    assert_eq!(s.send(a, b"y"), Ok(1));
    assert_eq!(s.readiness(a), events::WRITABLE);
    s.transport().writable = false;
    let stats = s.stats().expect("stats");
    assert_eq!((stats.bytes_in, stats.busy_ticks), (1234, 77));
    // The STATS reply (readiness 0 now) belongs to no socket.
    assert_eq!(s.readiness(a), events::WRITABLE);
    assert_eq!(ops(&mut s).last(), Some(&op::STATS));
}

#[test]
fn poll_watches_and_reports_the_last_readiness() {
    let mut s = client();
    let a = s.tcp().expect("a");
    let b = s.tcp().expect("b");
    let mut fds = [
        PollFd::new(a, events::READABLE),
        PollFd::new(b, events::READABLE),
    ];
    // Nothing ready: the deadline passes, after a WATCH for each.
    assert_eq!(s.poll(&mut fds, Some(5)), Ok(0));
    let watches: Vec<Request> = s
        .transport()
        .taken
        .iter()
        .filter(|r| r.op == op::WATCH)
        .copied()
        .collect();
    assert_eq!(watches.len(), 2);
    assert_eq!(watches[0].flags, events::READABLE | events::ERROR);
    // An event for b (the WATCH's tag) makes it ready; one with another
    // tag or of an unknown kind is dropped.
    let tag_b = watches[1].tag;
    s.transport().event(a.id(), 999, events::READABLE, 0);
    s.transport().out.push_back(Completion {
        kind: 77,
        ..Completion::default()
    });
    s.transport().event(b.id(), tag_b, events::READABLE, 0);
    assert_eq!(s.poll(&mut fds, Some(100)), Ok(1));
    assert_eq!((fds[0].revents, fds[1].revents), (0, events::READABLE));
    // No second WATCH: the service already watches these.
    let n = ops(&mut s).iter().filter(|o| **o == op::WATCH).count();
    assert_eq!(n, 2);
    assert_eq!(s.dropped(), 3);
    // Readiness is a state: a reply's events replace it.
    assert_eq!(s.recv(b, &mut [0u8; 4]), Err(EAGAIN.into()));
    assert_eq!(s.readiness(b), events::WRITABLE);
    // A WATCH refused makes that socket report an error.
    let c = s.tcp().expect("c");
    s.transport().tamper = Some(Box::new(|c| c.status = EBADF as u32));
    let mut one = [PollFd::new(c, events::READABLE)];
    assert_eq!(s.poll(&mut one, None), Ok(1));
    assert_eq!(one[0].revents, events::ERROR);
    assert_eq!(s.take_error(c), Some(EBADF));
    // A closed socket reports an error at once.
    s.close(a).expect("close");
    assert_eq!(s.poll(&mut fds, None), Ok(1));
    assert_eq!(fds[0].revents, events::ERROR);
}

#[test]
fn connect_waits_for_writable_or_the_error() {
    let mut s = client();
    let a = s.tcp().expect("a");
    // Writable at once: connected.
    assert_eq!(s.connect_wait(a, [10, 0, 2, 2], 80, None), Ok(()));
    let b = s.tcp().expect("b");
    s.transport().writable = false;
    s.transport().on_watch = Some((events::ERROR, ECONNREFUSED as u32));
    assert_eq!(
        s.connect_wait(b, [10, 0, 2, 2], 81, None),
        Err(ECONNREFUSED.into())
    );
    // Neither: the deadline passes.
    let c = s.tcp().expect("c");
    assert_eq!(
        s.connect_wait(c, [10, 0, 2, 2], 82, Some(20)),
        Err(ETIMEDOUT.into())
    );
    // Then an event makes it writable.
    s.transport().on_watch = Some((events::WRITABLE, 0));
    let d = s.tcp().expect("d");
    assert_eq!(s.connect_wait(d, [10, 0, 2, 2], 83, None), Ok(()));
}

#[test]
fn a_hostile_service_gets_errors_not_panics() {
    let mut s = client();
    let a = s.tcp().expect("a");
    // More bytes than asked.
    s.transport().inbox[0] = vec![1; 4];
    s.transport().tamper = Some(Box::new(|c| c.value = 1 << 40));
    assert_eq!(s.recv(a, &mut [0u8; 4]), Err(SocketError::Broken));
    // An unknown status.
    s.transport().tamper = Some(Box::new(|c| c.status = 4242));
    assert_eq!(s.listen(a, 1), Err(SocketError::Broken));
    // Another socket's answer.
    s.transport().tamper = Some(Box::new(|c| c.socket = 5));
    assert_eq!(s.listen(a, 1), Err(SocketError::Broken));
    // A new id beyond the table is given back.
    s.transport().tamper = Some(Box::new(|c| c.value = 1000));
    assert_eq!(s.tcp(), Err(EMFILE.into()));
    let last = *s.transport().taken.last().expect("a request");
    assert_eq!((last.op, last.socket, last.flags), (op::CLOSE, 1000, 1));
    // An id said to be new that is open here.
    s.transport().tamper = Some(Box::new(|c| c.value = 0));
    assert_eq!(s.udp(), Err(SocketError::Broken));
    // A flood of stale replies ends in an error, not a hang.
    for tag in 0..1000 {
        s.transport().out.push_back(Completion {
            tag: 1_000_000 + tag,
            kind: completion::REPLY,
            ..Completion::default()
        });
    }
    assert_eq!(s.listen(a, 1), Err(SocketError::Broken));
}

#[test]
fn errors_compare_with_errnos_and_name_themselves() {
    let e: SocketError = ENETRESET.into();
    assert!(e == ENETRESET);
    assert_eq!(e.name(), "ENETRESET");
    assert_eq!(e.errno(), Some(ENETRESET));
    assert_eq!(SocketError::Broken.errno(), None);
}

#[test]
fn a_deadline_is_slept_to_on_the_services_alarm() {
    let mut s = client();
    let a = s.tcp().expect("a");
    s.transport().writable = false;
    let before = s.dropped();
    let mut fds = [PollFd::new(a, events::READABLE)];
    assert_eq!(s.poll(&mut fds, Some(500)), Ok(0));
    // One ALARM at the deadline, one sleep, and the clock is there.
    let alarms: Vec<Request> = s
        .transport()
        .taken
        .iter()
        .filter(|r| r.op == op::ALARM)
        .copied()
        .collect();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].offset, 500);
    assert_eq!((s.transport().alarm_sleeps, s.transport().now), (1, 500));
    // The alarm's completions are not the caller's: nothing dropped.
    assert_eq!(s.dropped(), before);
    // An event before the deadline ends the poll; the alarm asked stays.
    let tag = s
        .transport()
        .taken
        .iter()
        .rev()
        .find(|r| r.op == op::WATCH)
        .map(|r| r.tag);
    s.transport()
        .event(a.id(), tag.expect("watched"), events::READABLE, 0);
    assert_eq!(s.poll(&mut fds, Some(900)), Ok(1));
}

#[test]
fn without_service_alarms_a_deadline_is_looked_for() {
    let mut m = Model::new();
    m.no_alarms = true;
    let mut s = Sockets::new(m).expect("client");
    let a = s.tcp().expect("a");
    s.transport().writable = false;
    let mut fds = [PollFd::new(a, events::READABLE)];
    assert_eq!(s.poll(&mut fds, Some(50)), Ok(0));
    assert_eq!(s.transport().now, 50);
    // Refused once, never asked again.
    assert_eq!(s.poll(&mut fds, Some(80)), Ok(0));
    let n = s
        .transport()
        .taken
        .iter()
        .filter(|r| r.op == op::ALARM)
        .count();
    assert_eq!(n, 1);
}

#[test]
fn changes_count_every_report_of_a_ready_side() {
    let mut s = client();
    let a = s.tcp().expect("a");
    assert_eq!(s.changes(a), (0, 0));
    // A short read that still finds data counts a read-side change (an
    // edge-triggered waiter must hear of the rest); a send only the write
    // side's; EAGAIN none.
    s.transport().inbox[0] = b"hello".to_vec();
    let mut two = [0u8; 2];
    assert_eq!(s.recv(a, &mut two), Ok(2));
    assert_eq!(s.changes(a), (1, 0));
    assert_eq!(s.send(a, b"y"), Ok(1));
    assert_eq!(s.changes(a), (1, 1));
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(a, &mut buf), Ok(3));
    assert_eq!(s.recv(a, &mut buf), Err(EAGAIN.into()));
    assert_eq!(s.changes(a), (1, 1));
    // New data after the EAGAIN: the service's event counts, though the
    // readiness reads as before the reads.
    let mut fds = [PollFd::new(a, events::READABLE)];
    assert_eq!(s.poll(&mut fds, Some(5)), Ok(0));
    let tag = s
        .transport()
        .taken
        .iter()
        .rev()
        .find(|r| r.op == op::WATCH)
        .map(|r| r.tag)
        .expect("a WATCH");
    s.transport().event(a.id(), tag, events::READABLE, 0);
    assert_eq!(s.poll(&mut fds, Some(100)), Ok(1));
    assert_eq!(s.changes(a).0, 2);
    assert_eq!(s.events_noted(), 1);
    assert_eq!(s.changes(Socket { id: 40, epoch: 9 }), (0, 0));
}
