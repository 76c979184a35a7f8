//! The network stack component: smoltcp (through the `netstack` library)
//! on the network driver's rings `tx` and `rx`, woken for its timers by a
//! timer driver (`alarm`, `fired`), serving the sockets protocol to each
//! client whose channels the manifest binds (`sock_req<i>`, `sock_cpl<i>`,
//! `sock_data<i>`, i from 0 to 7).
//!
//! The address comes from DHCP. A client whose ring is found corrupt is cut
//! off and its sockets reset; the others are served on. At every start the
//! first completion on each client's ring is `RESTART`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;

use kaal_client::timer::TimerClient;
use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::net::{self, Packet};
use kaal_protocols::socket::{self, completion, Completion, Request};
use kaal_ring::RingError;
use kaal_rt::time::{Clock, Instant as Tsc};
use kaal_rt::{println, Env, RingRx, RingTx, SharedRegion};
use netstack::{AddressEvent, Addressing, Config, Link, OutOfRegion, Region, Stack};
use smoltcp::time::Instant;

/// Clients one stack serves (ring ends: two each, four for the driver and
/// the timer, within a component's twenty).
const MAX_CLIENTS: usize = 8;
/// Buffer memory kept back from the heap for smoltcp's own tables, the
/// clients' tables and the service.
const RESERVE: usize = 1 << 20;
/// Alarms asked of the timer at once, at most.
const MAX_ALARMS: usize = 4;
/// The longest the loop sleeps without an alarm asked.
const MAX_SLEEP: core::time::Duration = core::time::Duration::from_secs(1);
/// Each client's rings, as a cut reports them.
const RING_NAMES: [&str; MAX_CLIENTS] = [
    "sock_req0/sock_cpl0",
    "sock_req1/sock_cpl1",
    "sock_req2/sock_cpl2",
    "sock_req3/sock_cpl3",
    "sock_req4/sock_cpl4",
    "sock_req5/sock_cpl5",
    "sock_req6/sock_cpl6",
    "sock_req7/sock_cpl7",
];
/// Requests taken from one client before the others get their turn.
const BATCH: usize = 16;

/// The driver's rings as the stack's link.
struct DriverLink {
    tx: RingTx<Packet, { net::RING_SLOTS }>,
    rx: RingRx<Packet, { net::RING_SLOTS }>,
    tx_cut: Cut,
    rx_cut: Cut,
    /// Free slots of `tx` as last read.
    room: usize,
    /// smoltcp had a frame to send and found no room.
    blocked: bool,
    token: u32,
    /// The entry the next frame sent is built in.
    out: Box<Packet>,
    /// The buffer the next frame received is read into, when no frame
    /// holds it.
    spare: Rc<Cell<Option<Box<Packet>>>>,
}

/// A received frame, read from the ring straight into a packet buffer of
/// its own and never copied after: the buffer goes back to the link (its
/// `spare`) when smoltcp drops the frame, so none is allocated per frame.
struct Frame {
    p: Option<Box<Packet>>,
    home: Rc<Cell<Option<Box<Packet>>>>,
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self.p.as_deref().map_or(&[], Packet::bytes)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Some(p) = self.p.take() {
            self.home.set(Some(p));
        }
    }
}

impl Link for DriverLink {
    type Frame = Frame;

    fn receive(&mut self) -> Option<Frame> {
        let mut p = self
            .spare
            .take()
            .unwrap_or_else(|| Box::new(Packet::empty()));
        loop {
            if self.rx_cut.is_cut() {
                break;
            }
            // Only the head and the frame it announces are read.
            let r = self
                .rx
                .ring
                .pop_prefix(&mut p, net::HEAD_BYTES, Packet::used_bytes)
                .map_err(DriverError::from);
            if self.rx_cut.guard(r, report) != Ok(true) {
                break;
            }
            if p.kind == net::kind::FRAME {
                return Some(Frame {
                    p: Some(p),
                    home: Rc::clone(&self.spare),
                });
            }
            // Not a frame: a refusal (the stack sends again what it
            // needs) or the address, known already.
        }
        self.spare.set(Some(p));
        None
    }

    fn can_send(&mut self) -> bool {
        if self.tx_cut.is_cut() {
            self.blocked = true;
            return false;
        }
        if self.room == 0 {
            let r = self.tx.ring.free().map_err(DriverError::from);
            self.room = self.tx_cut.guard(r, report).unwrap_or(0);
        }
        self.blocked = self.room == 0;
        self.room > 0
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        self.token = self.token.wrapping_add(1);
        // Built in place and pushed as far as the frame goes: most frames
        // sent while receiving are ACKs of 54 bytes in a 2048-byte slot.
        let p = &mut *self.out;
        if p.set_frame(self.token, frame).is_none() {
            return false;
        }
        match self.tx.ring.push_prefix(p, p.used_bytes()) {
            Ok(()) => {
                self.room = self.room.saturating_sub(1);
                true
            }
            // No room after all: the frame is dropped (TCP sends it again),
            // and the loop waits for room.
            Err(RingError::Full) => {
                self.room = 0;
                self.blocked = true;
                false
            }
            Err(e) => {
                if let Some(c) = self.tx_cut.cut(e) {
                    report(c);
                }
                false
            }
        }
    }

    fn burst(&self) -> Option<usize> {
        // As many frames as the driver's ring holds at once.
        Some(net::RING_SLOTS)
    }
}

/// A client's data region.
struct Data<'a>(&'a SharedRegion);

impl Region for Data<'_> {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfRegion> {
        self.0.read(offset as u64, dst).map_err(|_| OutOfRegion)
    }
    fn write(&mut self, offset: usize, src: &[u8]) -> Result<(), OutOfRegion> {
        self.0.write(offset as u64, src).map_err(|_| OutOfRegion)
    }
}

struct Client {
    req: RingRx<Request, { socket::RING_SLOTS }>,
    cpl: RingTx<Completion, { socket::RING_SLOTS }>,
    data: SharedRegion,
    /// Either ring found corrupt cuts the whole client off.
    cut: Cut,
    /// Free completion slots as last read.
    room: usize,
    /// The `RESTART` completion is still to be posted.
    restart_due: bool,
}

impl Client {
    fn has_room(&mut self) -> Result<bool, DriverError> {
        if self.room == 0 {
            self.room = self.cpl.ring.free()?;
        }
        Ok(self.room > 0)
    }

    fn post(&mut self, c: Completion) -> Result<(), DriverError> {
        self.cpl.ring.push(c)?;
        self.room = self.room.saturating_sub(1);
        Ok(())
    }
}

/// No interrupt: the stack is woken by rings alone.
struct NoIrq;

impl kaal_dddk::irq::Ack for NoIrq {
    fn ack(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

struct Service {
    stack: Stack,
    link: DriverLink,
    clients: Vec<Client>,
    timer: TimerClient,
    fired_cut: Cut,
    clock: Clock,
    /// The alarms asked and not yet answered: token and deadline, the
    /// latest asked (the earliest deadline) last.
    alarms: heapless::Vec<(u64, Tsc), MAX_ALARMS>,
    name: &'static str,
}

impl Service {
    fn now(&self) -> Instant {
        let micros = Tsc::now().ticks() / self.clock.mhz().max(1);
        Instant::from_micros(micros as i64)
    }

    fn poll(&mut self) {
        let now = self.now();
        match self.stack.poll(now, &mut self.link) {
            Some(AddressEvent::Configured {
                address,
                router,
                server,
            }) => {
                let via = router.map_or(alloc::string::String::new(), |r| format!(", gateway {r}"));
                println!(
                    "{}: address {address} from DHCP server {server}{via}",
                    self.name
                );
            }
            Some(AddressEvent::Lost) => println!("{}: address lost", self.name),
            None => {}
        }
    }

    /// Serves each client's requests while its completion ring has room;
    /// whether any was served.
    fn serve_clients(&mut self) -> bool {
        let mut any = false;
        let now = self.now();
        for (i, cl) in self.clients.iter_mut().enumerate() {
            if cl.cut.is_cut() {
                continue;
            }
            let r = serve_client(&mut self.stack, i, cl, now);
            match cl.cut.check(r) {
                Ok((served, cut)) => {
                    any |= served;
                    if let Some(c) = cut {
                        println!("{}: client {i}: {c}; its sockets are reset", self.name);
                        self.stack.reset(i, now);
                    }
                }
                Err(e) => println!("{}: client {i}: {e}", self.name),
            }
        }
        any
    }

    /// Posts the readiness events due, and the clients' alarms that are
    /// due, while the rings have room.
    fn post_events(&mut self) {
        let now = self.now();
        let tsc = Tsc::now().ticks();
        for (i, cl) in self.clients.iter_mut().enumerate() {
            if cl.cut.is_cut() {
                continue;
            }
            let r = (|| {
                if cl.has_room()? {
                    if let Some(a) = self.stack.alarm_due(i, tsc) {
                        cl.post(a)?;
                    }
                }
                while cl.has_room()? {
                    let Some(ev) = self.stack.next_event(i) else {
                        break;
                    };
                    cl.post(ev)?;
                }
                Ok(())
            })();
            if let Ok(((), Some(c))) = cl.cut.check(r) {
                println!("{}: client {i}: {c}; its sockets are reset", self.name);
                self.stack.reset(i, now);
            }
        }
    }

    fn flush(&mut self) {
        for cl in &mut self.clients {
            if !cl.cut.is_cut() {
                cl.cpl.publish();
                cl.req.release();
            }
        }
        if !self.link.tx_cut.is_cut() {
            self.link.tx.publish();
        }
        if !self.link.rx_cut.is_cut() {
            self.link.rx.release();
        }
    }

    /// Takes the timer's answers, and asks for an alarm when smoltcp next
    /// needs a poll, unless one asked already comes sooner; `true` if it
    /// needs one now.
    fn timers(&mut self) -> bool {
        while !self.fired_cut.is_cut() {
            let r = self
                .timer
                .poll_answer()
                .map_err(|_| DriverError::Device("the timer's `fired` ring is corrupt"));
            let Ok(Some(answer)) = self.fired_cut.guard(r, report) else {
                break;
            };
            // Fired or refused (the driver's queue full), it is no longer
            // asked; a deadline still needed is asked again below.
            self.alarms.retain(|(token, _)| *token != answer.token);
        }
        let now = self.now();
        let tsc = Tsc::now();
        let smoltcp = match self.stack.poll_delay(now) {
            Some(d) if d.total_micros() == 0 => return true,
            Some(d) => Some(
                self.clock
                    .after(tsc, core::time::Duration::from_micros(d.total_micros())),
            ),
            None => None,
        };
        // A client's alarm already due waits for room in its ring, which
        // the loop sleeps for; only those to come need the timer.
        let client = self.stack.next_alarm(tsc.ticks()).map(Tsc::from_ticks);
        let Some(deadline) = [smoltcp, client]
            .into_iter()
            .flatten()
            .min_by_key(|d| d.ticks())
        else {
            return false;
        };
        // At most a second ahead: an alarm asked for a deadline that was
        // then moved (a client's replaced ALARM) stays in the timer until
        // it fires, and with every one near, one not asked because
        // [`MAX_ALARMS`] are is never waited for long.
        let horizon = self.clock.after(tsc, MAX_SLEEP);
        let deadline = if deadline.ticks() > horizon.ticks() {
            horizon
        } else {
            deadline
        };
        let sooner = self
            .alarms
            .iter()
            .all(|(_, at)| deadline.ticks() < at.ticks());
        if sooner && !self.alarms.is_full() {
            if let Ok(token) = self.timer.ask(deadline) {
                let _ = self.alarms.push((token, deadline));
            }
        }
        false
    }
}

/// Serves up to [`BATCH`] requests of client `i`.
fn serve_client(
    stack: &mut Stack,
    i: usize,
    cl: &mut Client,
    now: Instant,
) -> Result<bool, DriverError> {
    if cl.restart_due {
        if !cl.has_room()? {
            return Ok(false);
        }
        cl.post(Completion {
            kind: completion::RESTART,
            ..Completion::default()
        })?;
        cl.restart_due = false;
    }
    let mut served = false;
    for _ in 0..BATCH {
        if !cl.has_room()? {
            break;
        }
        let Some(r) = cl.req.ring.pop()? else { break };
        let done = stack.request(i, &r, &mut Data(&cl.data), now);
        cl.post(done)?;
        served = true;
    }
    Ok(served)
}

impl Driver for Service {
    fn serve<'a>(&'a mut self, _events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        let start = Tsc::now();
        // Frames in, requests served, and what they sent out, until quiet.
        for _ in 0..8 {
            self.poll();
            if !self.serve_clients() {
                break;
            }
        }
        self.poll();
        self.post_events();
        self.flush();
        let now_again = self.timers();
        self.stack.stats.busy_ticks += Tsc::now().ticks_since(start);
        // smoltcp wants to send now; unless it waits for the driver's room,
        // which the loop sleeps for below.
        if now_again && !self.link.blocked {
            sleep.serve_again();
            return Ok(());
        }
        sleep.on(&mut self.link.rx.ring, &mut self.link.rx_cut);
        if self.link.blocked {
            sleep.on(&mut self.link.tx.ring, &mut self.link.tx_cut);
        }
        sleep.on(self.timer.fired_ring(), &mut self.fired_cut);
        for cl in &mut self.clients {
            if cl.restart_due || cl.room == 0 {
                sleep.on(&mut cl.cpl.ring, &mut cl.cut);
            } else {
                sleep.on(&mut cl.req.ring, &mut cl.cut);
            }
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        println!("{}: {cut}", self.name);
        // A client's ring found corrupt while the loop announced its sleep:
        // its sockets go as they do when serving finds it.
        let now = self.now();
        for (i, cl) in self.clients.iter().enumerate() {
            if cl.cut.ring() == cut.ring && cl.cut.is_cut() {
                println!("{}: client {i}: its sockets are reset", self.name);
                self.stack.reset(i, now);
            }
        }
    }
}

fn report(cut: CutReport) {
    println!("netstack: {cut}");
}

fn clients(env: &Env) -> Vec<Client> {
    let mut v = Vec::new();
    for i in 0..MAX_CLIENTS {
        let (req, cpl, data) = (
            format!("sock_req{i}"),
            format!("sock_cpl{i}"),
            format!("sock_data{i}"),
        );
        let (Ok(req), Ok(cpl), Ok(data)) = (
            env.ring_rx(&req),
            env.ring_tx(&cpl),
            env.shared_region(&data),
        ) else {
            continue;
        };
        v.push(Client {
            req,
            cpl,
            data,
            cut: Cut::new(RING_NAMES.get(i).copied().unwrap_or("sock_req/sock_cpl")),
            room: 0,
            restart_due: true,
        });
    }
    v
}

/// Asks the driver for its address and waits for it; frames before it are
/// dropped (the stack is not up yet).
fn mac_address(link: &mut DriverLink) -> Result<[u8; 6], &'static str> {
    let ask = Packet::ask_address();
    link.tx
        .send_all(core::slice::from_ref(&ask))
        .map_err(|_| "the driver's `tx` ring is corrupt")?;
    for _ in 0..4096 {
        let p = link
            .rx
            .recv()
            .map_err(|_| "the driver's `rx` ring is corrupt")?;
        link.rx.release();
        if let (net::kind::ADDRESS, [a, b, c, d, e, f]) = (p.kind, p.bytes()) {
            return Ok([*a, *b, *c, *d, *e, *f]);
        }
    }
    Err("the driver never told its address")
}

fn main(env: &Env) -> Result<(), &'static str> {
    let name = env.name();
    let clock = env.clock().ok_or("the TSC frequency is unknown")?;
    let mut link = DriverLink {
        tx: env
            .ring_tx("tx")
            .map_err(|_| "no `tx` ring to the network driver")?,
        rx: env
            .ring_rx("rx")
            .map_err(|_| "no `rx` ring from the network driver")?,
        tx_cut: Cut::new("tx"),
        rx_cut: Cut::new("rx"),
        room: 0,
        blocked: false,
        token: 0,
        out: Box::new(Packet::empty()),
        spare: Rc::new(Cell::new(None)),
    };
    let timer = TimerClient::new(env).map_err(<&'static str>::from)?;
    let clients = clients(env);
    let mac = mac_address(&mut link)?;
    let heap = usize::try_from(env.heap_size()).unwrap_or(0);
    let cfg = Config {
        budget: heap.saturating_sub(RESERVE),
        ..Config::default()
    };
    let now = Instant::from_micros((Tsc::now().ticks() / clock.mhz().max(1)) as i64);
    let stack = Stack::new(
        cfg,
        clients.len(),
        mac,
        Addressing::Dhcp,
        &mut link,
        now,
        Tsc::now().ticks(),
    );
    println!(
        "{name}: {} clients, {} KiB of socket buffers each, {} sockets each",
        clients.len(),
        cfg.budget / clients.len().max(1) / 1024,
        cfg.sockets
    );
    let mut svc = Service {
        stack,
        link,
        clients,
        timer,
        fired_cut: Cut::new("fired"),
        clock,
        alarms: heapless::Vec::new(),
        name,
    };
    let irq = Irq {
        handler: NoIrq,
        bit: 0,
        level_triggered: false,
    };
    let Err(e) = kaal_dddk::run(&mut svc, &env.notification(), &irq);
    let s = svc.stack.stats;
    println!(
        "{name}: stopped: {e}; {} frames in, {} out, {} malformed, {} unsupported",
        s.frames_in, s.frames_out, s.malformed, s.unsupported
    );
    Err("stopped")
}

kaal_rt::component!(main);
