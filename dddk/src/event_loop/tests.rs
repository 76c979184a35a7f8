//! The loop over real `kaal_ring` rings, with model notifications: one that
//! lets the client act at every point between serving and waiting and
//! checks that a driver never sleeps with work and no signal on its way,
//! and one between two threads.

use super::*;
use core::cell::{Cell, RefCell};
use kaal_ring::{Notify, SharedRing};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::vec::Vec;

const IRQ_BIT: Badge = 1;
/// The client's signals: items sent, room freed.
const IN_BIT: Badge = 2;
const OUT_BIT: Badge = 4;

/// The test drivers' way to end [`run`].
const DONE: DriverError = DriverError::Device("done");

/// An interrupt that never comes (its acknowledgements are tested below).
struct Quiet;
impl Ack for Quiet {
    fn ack(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

const QUIET: Irq<Quiet> = Irq {
    handler: Quiet,
    bit: IRQ_BIT,
    level_triggered: false,
};

/// Where the client may act, besides while the driver sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// At the end of `serve`: after the driver looked at its rings, before
    /// the loop announces the sleep.
    Served,
    /// After the announcement, just before the wait.
    BeforeWait,
    /// When the loop polls instead of waiting.
    Poll,
}

/// The client of an echo driver, and the driver's notification: it sends
/// `total` values on `input` (4 slots) and takes them back from `output`
/// (2 slots, so the driver blocks on room). It acts at the points its
/// schedule names, and whenever the driver sleeps.
struct Client<'r> {
    tx: RefCell<Producer<'r, u32, 4>>,
    rx: RefCell<Consumer<'r, u32, 2>>,
    input: &'r SharedRing<u32, 4>,
    output: &'r SharedRing<u32, 2>,
    /// The driver's notification.
    pending: Cell<Badge>,
    schedule: RefCell<VecDeque<Point>>,
    sent: Cell<u32>,
    total: u32,
    got: RefCell<Vec<u32>>,
    sleeps: Cell<u32>,
}

impl<'r> Client<'r> {
    fn new(
        input: &'r SharedRing<u32, 4>,
        output: &'r SharedRing<u32, 2>,
        total: u32,
        schedule: &[Point],
    ) -> Self {
        Client {
            tx: RefCell::new(input.producer()),
            rx: RefCell::new(output.consumer()),
            input,
            output,
            pending: Cell::new(0),
            schedule: RefCell::new(schedule.iter().copied().collect()),
            sent: Cell::new(0),
            total,
            got: RefCell::new(Vec::new()),
            sleeps: Cell::new(0),
        }
    }

    fn signal(&self, bit: Badge) {
        self.pending.set(self.pending.get() | bit);
    }

    /// One move: send the next value if there is room, else take back what
    /// came. `false` if there was nothing to do.
    fn act(&self) -> bool {
        let n = self.sent.get();
        if n < self.total {
            let mut tx = self.tx.borrow_mut();
            if tx.push(n).is_ok() {
                self.sent.set(n + 1);
                if tx.publish() {
                    self.signal(IN_BIT);
                }
                return true;
            }
        }
        let mut rx = self.rx.borrow_mut();
        let mut took = false;
        while let Some(v) = rx.pop().unwrap() {
            self.got.borrow_mut().push(v);
            took = true;
        }
        if rx.release() {
            self.signal(OUT_BIT);
        }
        took
    }

    /// Acts if the schedule's next move is at `p`.
    fn at(&self, p: Point) {
        let go = {
            let mut s = self.schedule.borrow_mut();
            let go = s.front() == Some(&p);
            if go {
                s.pop_front();
            }
            go
        };
        if go {
            self.act();
        }
    }

    /// Whether the driver has work: values to take and room to pass them on
    /// (it releases and publishes everything before it sleeps, so the
    /// shared indices tell).
    fn driver_has_work(&self) -> bool {
        let (i, o) = (self.input.header(), self.output.header());
        let items = i.head.load(Relaxed).wrapping_sub(i.tail.load(Relaxed));
        let used = o.head.load(Relaxed).wrapping_sub(o.tail.load(Relaxed));
        items > 0 && used < 2
    }
}

impl Wait for Client<'_> {
    fn wait(&self) -> Badge {
        self.at(Point::BeforeWait);
        loop {
            let bits = self.pending.replace(0);
            if bits != 0 {
                return bits;
            }
            assert!(
                !self.driver_has_work(),
                "lost wake-up: the driver sleeps with work and no signal on its way"
            );
            // The driver sleeps; the client goes on, and any move that gives
            // the driver work must signal it (checked above, next round).
            self.sleeps.set(self.sleeps.get() + 1);
            assert!(self.sleeps.get() < 1000, "the loop never ends");
            assert!(
                self.act(),
                "deadlock: the driver sleeps, the client is done"
            );
        }
    }

    fn poll(&self) -> Badge {
        self.at(Point::Poll);
        self.pending.replace(0)
    }
}

/// Passes values from `input` to `output`, taking one only when there is
/// room for it.
struct Echo<'r, 'c> {
    client: &'c Client<'r>,
    input: Consumer<'r, u32, 4>,
    output: Producer<'r, u32, 2>,
    input_cut: Cut,
    output_cut: Cut,
    passed: u32,
}

impl<'r, 'c> Echo<'r, 'c> {
    fn new(client: &'c Client<'r>) -> Self {
        Echo {
            client,
            input: client.input.consumer(),
            output: client.output.producer(),
            input_cut: Cut::new("input"),
            output_cut: Cut::new("output"),
            passed: 0,
        }
    }
}

impl Driver for Echo<'_, '_> {
    fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        let mut blocked = false;
        while self.passed < self.client.total {
            if self.output.free()? == 0 {
                blocked = true;
                break;
            }
            let Some(v) = self.input.pop()? else { break };
            self.output.push(v)?;
            self.passed += 1;
        }
        // The client never sleeps in this model: nobody to signal.
        let _ = self.input.release();
        let _ = self.output.publish();
        if self.passed == self.client.total {
            return Err(DONE);
        }
        self.client.at(Point::Served);
        if blocked {
            sleep.on(&mut self.output, &mut self.output_cut);
        } else {
            sleep.on(&mut self.input, &mut self.input_cut);
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        panic!("no ring is corrupt here: {cut}");
    }
}

/// Every schedule of `len` moves over the points.
fn schedules(len: u32) -> impl Iterator<Item = Vec<Point>> {
    const POINTS: [Point; 3] = [Point::Served, Point::BeforeWait, Point::Poll];
    (0..3usize.pow(len)).map(move |mut k| {
        (0..len)
            .map(|_| {
                let p = POINTS[k % 3];
                k /= 3;
                p
            })
            .collect()
    })
}

#[test]
fn a_wake_up_between_serving_and_waiting_is_never_lost() {
    const TOTAL: u32 = 6;
    let mut runs = 0;
    for schedule in schedules(6) {
        let input = SharedRing::<u32, 4>::new();
        let output = SharedRing::<u32, 2>::new();
        let client = Client::new(&input, &output, TOTAL, &schedule);
        let mut echo = Echo::new(&client);
        assert_eq!(run(&mut echo, &client, &QUIET), Err(DONE), "{schedule:?}");
        while client.act() {}
        assert_eq!(*client.got.borrow(), (0..TOTAL).collect::<Vec<_>>());
        for ring in [input.header(), output.header()] {
            assert_eq!(ring.consumer_sleeping.load(Relaxed), 0, "withdrawn");
            assert_eq!(ring.producer_waiting.load(Relaxed), 0, "withdrawn");
        }
        runs += 1;
    }
    assert_eq!(runs, 729);
}

/// The model catches the bug the loop exists to prevent: a driver that
/// waits without announcing and looking again.
#[test]
fn the_model_catches_a_loop_that_does_not_look_again() {
    fn naive(echo: &mut Echo<'_, '_>, client: &Client<'_>) -> DriverError {
        loop {
            match echo.serve(Events::default(), &mut Sleep::new()) {
                Ok(()) => {
                    client.wait();
                }
                Err(e) => return e,
            }
        }
    }
    let input = SharedRing::<u32, 4>::new();
    let output = SharedRing::<u32, 2>::new();
    // The client sends while the driver is between serving and waiting.
    let client = Client::new(&input, &output, 3, &[Point::Served]);
    let mut echo = Echo::new(&client);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| naive(&mut echo, &client)));
    assert!(r.is_err(), "the naive loop sleeps with a value waiting");
}

/// A log of what the driver and its interrupt handler did.
struct LogAck<'l>(&'l RefCell<Vec<&'static str>>);
impl Ack for LogAck<'_> {
    fn ack(&self) -> Result<(), DriverError> {
        self.0.borrow_mut().push("ack");
        Ok(())
    }
}

/// A notification that returns the bits of a script, one entry per wait.
struct Script(RefCell<VecDeque<Badge>>);
impl Wait for Script {
    fn wait(&self) -> Badge {
        self.0.borrow_mut().pop_front().expect("the script is over")
    }
    fn poll(&self) -> Badge {
        0
    }
}

/// Serves nothing, sleeps on nothing (only the interrupt wakes it), and
/// logs each round; done after `rounds`.
struct Logger<'l> {
    log: &'l RefCell<Vec<&'static str>>,
    rounds: u32,
}

impl Driver for Logger<'_> {
    fn serve<'a>(&'a mut self, events: Events, _: &mut Sleep<'a>) -> Result<(), DriverError> {
        self.log.borrow_mut().push(if events.interrupt() {
            "serve irq"
        } else {
            "serve"
        });
        self.rounds = self.rounds.checked_sub(1).ok_or(DONE)?;
        Ok(())
    }
    fn report(&mut self, _: CutReport) {}
}

fn acks(level_triggered: bool) -> Vec<&'static str> {
    let log = RefCell::new(Vec::new());
    let irq = Irq {
        handler: LogAck(&log),
        bit: IRQ_BIT,
        level_triggered,
    };
    let script = Script(RefCell::new([IN_BIT, IRQ_BIT | IN_BIT].into()));
    let mut d = Logger {
        log: &log,
        rounds: 2,
    };
    assert_eq!(run(&mut d, &script, &irq), Err(DONE));
    log.into_inner()
}

#[test]
fn an_edge_is_acknowledged_before_serving_a_level_after() {
    // The first acknowledgement unmasks a line a holder before left masked;
    // a ring's signal alone is not acknowledged.
    assert_eq!(
        acks(false),
        ["ack", "serve", "serve", "ack", "serve irq"],
        "edge"
    );
    assert_eq!(
        acks(true),
        ["ack", "serve", "serve", "serve irq", "ack"],
        "level"
    );
}

/// Takes values from two rings, `a` and `b`; the client scribbles on `a`'s
/// header once the driver has looked at it, and sends on `b` while the
/// driver sleeps.
struct Two<'r> {
    a: Consumer<'r, u32, 4>,
    b: Consumer<'r, u32, 4>,
    a_ring: &'r SharedRing<u32, 4>,
    a_cut: Cut,
    b_cut: Cut,
    got: Vec<u32>,
    serves: u32,
    reports: Vec<CutReport>,
    trusted: bool,
}

impl Driver for Two<'_> {
    fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        self.serves += 1;
        for (ring, cut) in [
            (&mut self.a, &mut self.a_cut),
            (&mut self.b, &mut self.b_cut),
        ] {
            if cut.is_cut() {
                continue;
            }
            while let Some(v) = ring.pop()? {
                self.got.push(v);
            }
            let _ = ring.release();
        }
        if self.got.len() == 3 {
            return Err(DONE);
        }
        if self.serves == 1 {
            self.a_ring.header().head.store(1000, Relaxed);
        }
        if self.trusted {
            sleep.on_trusted(&mut self.a);
        } else {
            sleep.on(&mut self.a, &mut self.a_cut);
        }
        sleep.on(&mut self.b, &mut self.b_cut);
        Ok(())
    }
    fn report(&mut self, cut: CutReport) {
        self.reports.push(cut);
    }
}

/// Sends one value on `b` per wait; the driver must have asked for it.
struct SendsOnB<'r>(RefCell<Producer<'r, u32, 4>>);
impl Wait for SendsOnB<'_> {
    fn wait(&self) -> Badge {
        let mut tx = self.0.borrow_mut();
        tx.push(7).unwrap();
        assert!(tx.publish(), "the driver sleeps without announcing on `b`");
        IN_BIT
    }
    fn poll(&self) -> Badge {
        0
    }
}

fn two<'r>(a: &'r SharedRing<u32, 4>, b: &'r SharedRing<u32, 4>, trusted: bool) -> Two<'r> {
    Two {
        a: a.consumer(),
        b: b.consumer(),
        a_ring: a,
        a_cut: Cut::new("a"),
        b_cut: Cut::new("b"),
        got: Vec::new(),
        serves: 0,
        reports: Vec::new(),
        trusted,
    }
}

#[test]
fn a_ring_found_corrupt_while_announcing_is_cut_off_and_reported_once() {
    let (a, b) = (SharedRing::new(), SharedRing::new());
    let mut d = two(&a, &b, false);
    let peer = SendsOnB(RefCell::new(b.producer()));
    assert_eq!(run(&mut d, &peer, &QUIET), Err(DONE));
    assert_eq!(
        d.reports,
        [CutReport {
            ring: "a",
            error: kaal_ring::RingError::Corrupt {
                head: 1000,
                tail: 0
            }
        }]
    );
    assert!(d.a_cut.is_cut() && !d.b_cut.is_cut());
    assert_eq!(d.got, [7, 7, 7], "`b` is served on");
    // Serve, cut `a` and serve again, then once per value on `b`.
    assert_eq!(d.serves, 2 + 3);
    assert_eq!(a.header().consumer_sleeping.load(Relaxed), 0);
}

#[test]
fn a_trusted_ring_found_corrupt_stops_the_driver() {
    let (a, b) = (SharedRing::new(), SharedRing::new());
    let mut d = two(&a, &b, true);
    let peer = SendsOnB(RefCell::new(b.producer()));
    assert!(matches!(
        run(&mut d, &peer, &QUIET),
        Err(DriverError::Ring(kaal_ring::RingError::Corrupt { .. }))
    ));
    assert!(d.reports.is_empty());
}

/// Sleeps on `a` and `b` once, then checks `a`'s announcement is gone.
struct Both<'r> {
    a: Consumer<'r, u32, 4>,
    b: Consumer<'r, u32, 4>,
    cuts: [Cut; 2],
    a_ring: &'r SharedRing<u32, 4>,
    slept: bool,
}

impl Driver for Both<'_> {
    fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        if self.slept {
            let flag = self.a_ring.header().consumer_sleeping.load(Relaxed);
            assert_eq!(flag, 0, "woken by `b`, the sleep on `a` is withdrawn");
            return Err(DONE);
        }
        self.slept = true;
        let [ca, cb] = &mut self.cuts;
        sleep.on(&mut self.a, ca).on(&mut self.b, cb);
        Ok(())
    }
    fn report(&mut self, _: CutReport) {}
}

#[test]
fn a_wake_up_from_one_end_withdraws_the_others() {
    let (a, b) = (SharedRing::new(), SharedRing::new());
    let mut d = Both {
        a: a.consumer(),
        b: b.consumer(),
        cuts: [Cut::new("a"), Cut::new("b")],
        a_ring: &a,
        slept: false,
    };
    let peer = SendsOnB(RefCell::new(b.producer()));
    assert_eq!(run(&mut d, &peer, &QUIET), Err(DONE));
}

/// Sleeps on its ends with what `serve` did to them left as it is, after
/// `stubs` ends that never have work.
struct Careless<'r> {
    input: Consumer<'r, u32, 4>,
    output: Producer<'r, u32, 4>,
    cuts: [Cut; 2],
    stubs: [Stub; MAX_ENDS],
    ends: usize,
}

#[derive(Clone, Copy)]
struct Stub;
impl Announce for Stub {
    fn announce(&mut self) -> Result<bool, DriverError> {
        Ok(false)
    }
    fn withdraw(&mut self) {}
}

impl Driver for Careless<'_> {
    fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        let _ = self.input.pop()?;
        let _ = self.output.push(1);
        for stub in self.stubs.iter_mut().take(self.ends) {
            sleep.on_trusted(stub);
        }
        let [i, o] = &mut self.cuts;
        sleep.on(&mut self.input, i).on(&mut self.output, o);
        Ok(())
    }
    fn report(&mut self, _: CutReport) {}
}

fn careless<'r>(i: &'r SharedRing<u32, 4>, o: &'r SharedRing<u32, 4>, ends: usize) -> Careless<'r> {
    Careless {
        input: i.consumer(),
        output: o.producer(),
        cuts: [Cut::new("input"), Cut::new("output")],
        stubs: [Stub; MAX_ENDS],
        ends,
    }
}

#[test]
fn a_sleep_with_slots_unreleased_or_items_unpublished_is_refused() {
    let (i, o) = (SharedRing::new(), SharedRing::new());
    let mut tx = i.producer();
    tx.push(5).unwrap();
    let _ = tx.publish();
    let mut d = careless(&i, &o, 0);
    let script = Script(RefCell::new(VecDeque::new()));
    assert_eq!(run(&mut d, &script, &QUIET), Err(UNRELEASED));
    let _ = d.input.release();
    assert_eq!(run(&mut d, &script, &QUIET), Err(UNPUBLISHED));
}

#[test]
fn a_sleep_on_too_many_ends_is_refused() {
    let (i, o) = (SharedRing::new(), SharedRing::new());
    let mut d = careless(&i, &o, MAX_ENDS - 1);
    let script = Script(RefCell::new(VecDeque::new()));
    assert!(matches!(
        run(&mut d, &script, &QUIET),
        Err(DriverError::Device(m)) if m.contains("too many")
    ));
}

/// Counts polls; waiting is a failure.
struct PollOnly(Cell<u32>);
impl Wait for PollOnly {
    fn wait(&self) -> Badge {
        panic!("`serve_again` must not wait");
    }
    fn poll(&self) -> Badge {
        self.0.set(self.0.get() + 1);
        IRQ_BIT
    }
}

struct Busy(u32, u32);
impl Driver for Busy {
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        self.1 += u32::from(events.interrupt());
        self.0 = self.0.checked_sub(1).ok_or(DONE)?;
        sleep.serve_again();
        Ok(())
    }
    fn report(&mut self, _: CutReport) {}
}

#[test]
fn again_serves_at_once_taking_the_bits_that_arrived() {
    let n = PollOnly(Cell::new(0));
    let mut d = Busy(3, 0);
    assert_eq!(run(&mut d, &n, &QUIET), Err(DONE));
    assert_eq!(n.0.get(), 3);
    assert_eq!(d.1, 3, "polled interrupt bits are events");
}

mod threads {
    //! The echo driver on one thread, its client on another, both blocking
    //! by the ring protocol on a modelled notification: a lost wake-up
    //! leaves both asleep, and the wait's timeout fails the test.
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    struct Notification {
        bits: Mutex<Badge>,
        cv: Condvar,
    }

    impl Notification {
        fn signal(&self, bit: Badge) {
            *self.bits.lock().unwrap() |= bit;
            self.cv.notify_one();
        }
    }

    impl Wait for Notification {
        fn wait(&self) -> Badge {
            let mut b = self.bits.lock().unwrap();
            while *b == 0 {
                let (g, t) = self.cv.wait_timeout(b, Duration::from_secs(30)).unwrap();
                b = g;
                assert!(*b != 0 || !t.timed_out(), "lost wake-up: asleep for 30 s");
            }
            core::mem::replace(&mut *b, 0)
        }
        fn poll(&self) -> Badge {
            core::mem::replace(&mut *self.bits.lock().unwrap(), 0)
        }
    }

    struct Signal<'n>(&'n Notification, Badge);
    impl Notify for Signal<'_> {
        fn notify(&self) {
            self.0.signal(self.1);
        }
    }

    struct Echo<'r> {
        input: Consumer<'r, u64, 4>,
        output: Producer<'r, u64, 2>,
        client: Signal<'r>,
        cuts: [Cut; 2],
        passed: u64,
        total: u64,
    }

    impl Driver for Echo<'_> {
        fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
            let mut blocked = false;
            while self.passed < self.total {
                if self.output.free()? == 0 {
                    blocked = true;
                    break;
                }
                let Some(v) = self.input.pop()? else { break };
                self.output.push(v)?;
                self.passed += 1;
            }
            if self.input.release() {
                self.client.notify();
            }
            if self.output.publish() {
                self.client.notify();
            }
            if self.passed == self.total {
                return Err(DONE);
            }
            let [i, o] = &mut self.cuts;
            if blocked {
                sleep.on(&mut self.output, o);
            } else {
                sleep.on(&mut self.input, i);
            }
            Ok(())
        }
        fn report(&mut self, cut: CutReport) {
            panic!("{cut}");
        }
    }

    #[test]
    fn a_driver_and_its_client_on_two_threads_never_both_sleep() {
        const TOTAL: u64 = 200_000;
        let input = SharedRing::<u64, 4>::new();
        let output = SharedRing::<u64, 2>::new();
        let (driver_n, client_n) = (Notification::default(), Notification::default());
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut d = Echo {
                    input: input.consumer(),
                    output: output.producer(),
                    client: Signal(&client_n, 1),
                    cuts: [Cut::new("input"), Cut::new("output")],
                    passed: 0,
                    total: TOTAL,
                };
                assert_eq!(run(&mut d, &driver_n, &QUIET), Err(DONE));
            });
            // The client: sends in bursts, takes back, sleeping by the ring
            // protocol when it can do neither.
            let (mut tx, mut rx) = (input.producer(), output.consumer());
            let driver = Signal(&driver_n, IN_BIT);
            let (mut sent, mut next) = (0u64, 0u64);
            while next < TOTAL {
                let burst = (sent % 7 + 1).min(TOTAL - sent);
                let values: Vec<u64> = (sent..sent + burst).collect();
                sent += tx.send_batch(&values, &driver).unwrap() as u64;
                let mut buf = [0u64; 2];
                let n = rx.recv_batch(&mut buf, &driver).unwrap();
                for v in &buf[..n] {
                    assert_eq!(*v, next, "in order");
                    next += 1;
                }
                // Nothing came back: sleep unless room freed for more.
                let room = sent < TOTAL && tx.prepare_wait().unwrap();
                if n == 0 && !room {
                    if !rx.prepare_sleep().unwrap() {
                        client_n.wait();
                    }
                    tx.cancel_wait();
                    rx.cancel_sleep();
                }
            }
        });
    }
}
