//! The PIT timer driver: alarms at TSC deadlines for up to [`MAX_CLIENTS`]
//! clients (the timer protocol, `kaal_protocols::timer`), each on its own
//! pair of rings: `alarm`/`fired` for the first, `alarm<i>`/`fired<i>` for
//! client i from 1 to 3, any pair optional; device `pit`, bound to
//! `timer:pit`.
//!
//! The TSC is the clock; the PIT only wakes the driver. Channel 0 runs one
//! shot at a time in mode 0 (interrupt on terminal count), armed for the
//! earliest pending deadline over all clients, at most 65535 counts (about
//! 54.9 ms): on each interrupt the driver answers every alarm whose
//! deadline the TSC has passed and arms again for the next, so an early or
//! spurious interrupt only costs a wake-up. Each client has its own queue
//! and its own cut: a flood or a corrupt ring costs only that client.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use kaal_dddk::regs::PortBlock;
use kaal_dddk::timer::{pit_count, AlarmServer, Served};
use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::timer::{AlarmFired, AlarmRequest, QUEUE_ALARMS, RING_SLOTS};
use kaal_rt::{println, CapError, Env, RingRx, RingTx};
use kaal_sel4::cap::IoPort;

// Port offsets and the mode byte (the 8254 data sheet).
const CHANNEL0: u16 = 0;
const MODE: u16 = 3;
/// Channel 0, low byte then high byte, mode 0, binary.
const CH0_ONE_SHOT: u8 = 0x30;

/// Clients one driver serves.
const MAX_CLIENTS: usize = 4;
/// Each client's local names: requests, answers, and both as a cut reports
/// them. The first keeps the names of a single client's driver.
const RINGS: [(&str, &str, &str); MAX_CLIENTS] = [
    ("alarm", "fired", "alarm/fired"),
    ("alarm1", "fired1", "alarm1/fired1"),
    ("alarm2", "fired2", "alarm2/fired2"),
    ("alarm3", "fired3", "alarm3/fired3"),
];

struct Client {
    requests: RingRx<AlarmRequest, RING_SLOTS>,
    fired: RingTx<AlarmFired, RING_SLOTS>,
    server: AlarmServer<QUEUE_ALARMS>,
    /// Cut off when either of its rings is found corrupt (the alarm server
    /// needs both).
    cut: Cut,
    /// What the last round left.
    served: Served,
}

impl Client {
    /// One round for this client; a corrupt ring cuts it off, reported
    /// through `report`.
    fn serve(&mut self, now: u64, report: impl FnOnce(CutReport)) -> Result<(), DriverError> {
        if self.cut.is_cut() {
            self.served = Served::default();
            return Ok(());
        }
        let r = self.server.serve(
            now,
            (&mut self.requests.ring, &self.requests.peer),
            (&mut self.fired.ring, &self.fired.peer),
        );
        // A cut client's queue no longer counts for arming.
        self.served = self.cut.guard(r.map_err(Into::into), report)?;
        Ok(())
    }
}

struct Pit {
    regs: PortBlock<IoPort>,
    tsc_mhz: u64,
    clients: Vec<Client>,
    interrupts: u64,
}

impl Pit {
    /// Starts a one-shot count in place of any other; the interrupt comes
    /// when it reaches zero.
    fn arm(&self, count: u16) -> Result<(), DriverError> {
        let [lo, hi] = count.to_le_bytes();
        self.regs.write(MODE, CH0_ONE_SHOT)?;
        self.regs.write(CHANNEL0, lo)?;
        self.regs.write(CHANNEL0, hi)
    }
}

impl Driver for Pit {
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        self.interrupts += u64::from(events.interrupt());
        for c in self.clients.iter_mut() {
            c.serve(kaal_rt::rdtsc(), report)?;
        }
        let now = kaal_rt::rdtsc();
        let mut earliest: Option<u64> = None;
        for s in self.clients.iter().map(|c| c.served) {
            let Some(deadline) = s.next_deadline else {
                continue;
            };
            match deadline.saturating_sub(now) {
                // Due while we served; if its answer waits for room, the
                // client's release wakes us instead.
                0 if !s.stalled => {
                    sleep.serve_again();
                    return Ok(());
                }
                0 => {}
                left => earliest = Some(earliest.map_or(left, |e| e.min(left))),
            }
        }
        if let Some(left) = earliest {
            self.arm(pit_count(left, self.tsc_mhz))?;
        }
        for c in self.clients.iter_mut() {
            // Requests are taken only while answers have room: while they
            // wait for it, wake for room, not for more requests.
            if c.served.stalled {
                sleep.on(&mut c.fired.ring, &mut c.cut);
            } else {
                sleep.on(&mut c.requests.ring, &mut c.cut);
            }
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        report(cut);
    }
}

fn report(cut: CutReport) {
    println!("pit_timer: {cut}");
}

/// The clients whose rings the manifest binds; half a pair is an error.
fn clients(env: &Env) -> Result<Vec<Client>, DriverError> {
    let mut v = Vec::with_capacity(MAX_CLIENTS);
    for (alarm, fired, both) in RINGS {
        match (env.ring_rx(alarm), env.ring_tx(fired)) {
            (Ok(requests), Ok(fired)) => v.push(Client {
                requests,
                fired,
                server: AlarmServer::new(),
                cut: Cut::new(both),
                served: Served::default(),
            }),
            (Err(CapError::NotGranted(_)), Err(CapError::NotGranted(_))) => {}
            _ => {
                return Err(DriverError::Device(
                    "a client's rings are granted in part, or as something else",
                ))
            }
        }
    }
    if v.is_empty() {
        return Err(DriverError::Device(
            "no client: rings `alarm` and `fired` (or `alarm<i>` and `fired<i>`) must be granted",
        ));
    }
    Ok(v)
}

fn main(env: &Env) -> Result<(), DriverError> {
    let (io, first, last) = env
        .io_ports("pit")
        .map_err(|_| DriverError::Device("no timer:pit ports granted"))?;
    let irq = env
        .irq("pit")
        .map_err(|_| DriverError::Device("no timer:pit interrupt granted"))?;
    if env.tsc_mhz() == 0 {
        return Err(DriverError::Device("the TSC frequency is unknown"));
    }
    let mut pit = Pit {
        regs: PortBlock::new(io, first, last)?,
        tsc_mhz: env.tsc_mhz(),
        clients: clients(env)?,
        interrupts: 0,
    };
    // The kernel left channel 0 counting periodically (it calibrates the
    // TSC with it): one long one-shot replaces that.
    pit.arm(u16::MAX)?;
    println!(
        "pit_timer: serving at {first:#x}..={last:#x}, TSC {} MHz, {} clients",
        pit.tsc_mhz,
        pit.clients.len()
    );
    let Err(e) = kaal_dddk::run(&mut pit, &env.notification(), &Irq::from(irq));
    println!("pit_timer: stopped after {} interrupts", pit.interrupts);
    Err(e)
}

kaal_rt::component!(main);
