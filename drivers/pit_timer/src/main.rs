//! The PIT timer driver: one client's alarms at TSC deadlines (the timer
//! protocol, `kaal_protocols::timer`: ring `alarm`, client to driver, and
//! ring `fired`, driver to client; device `pit`, bound to `timer:pit`).
//!
//! The TSC is the clock; the PIT only wakes the driver. Channel 0 runs one
//! shot at a time in mode 0 (interrupt on terminal count), armed for the
//! earliest pending deadline, at most 65535 counts (about 54.9 ms): on each
//! interrupt the driver answers every alarm whose deadline the TSC has
//! passed and arms again for the next, so an early or spurious interrupt
//! only costs a wake-up.
#![no_std]
#![no_main]

use kaal_dddk::regs::PortBlock;
use kaal_dddk::timer::{pit_count, AlarmServer, Served};
use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::timer::{AlarmFired, AlarmRequest, QUEUE_ALARMS, RING_SLOTS};
use kaal_rt::{println, Env, RingRx, RingTx};
use kaal_sel4::cap::IoPort;

// Port offsets and the mode byte (the 8254 data sheet).
const CHANNEL0: u16 = 0;
const MODE: u16 = 3;
/// Channel 0, low byte then high byte, mode 0, binary.
const CH0_ONE_SHOT: u8 = 0x30;

struct Pit {
    regs: PortBlock<IoPort>,
    tsc_mhz: u64,
    requests: RingRx<AlarmRequest, RING_SLOTS>,
    fired: RingTx<AlarmFired, RING_SLOTS>,
    server: AlarmServer<QUEUE_ALARMS>,
    /// The client, cut off when either of its rings is found corrupt (the
    /// alarm server needs both).
    cut: Cut,
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

    fn serve_alarms(&mut self) -> Result<Served, DriverError> {
        if self.cut.is_cut() {
            return Ok(Served::default());
        }
        let r = self.server.serve(
            kaal_rt::rdtsc(),
            (&mut self.requests.ring, &self.requests.peer),
            (&mut self.fired.ring, &self.fired.peer),
        );
        let (served, report) = self.cut.check(r.map_err(Into::into))?;
        if let Some(m) = report {
            self.report(m);
        }
        Ok(served)
    }
}

impl Driver for Pit {
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        self.interrupts += u64::from(events.interrupt());
        let served = self.serve_alarms()?;
        if let Some(deadline) = served.next_deadline {
            match deadline.saturating_sub(kaal_rt::rdtsc()) {
                // Due while we served; if its answer waits for room, the
                // client's release wakes us instead.
                0 if !served.stalled => {
                    sleep.serve_again();
                    return Ok(());
                }
                0 => {}
                left => self.arm(pit_count(left, self.tsc_mhz))?,
            }
        }
        // Requests are taken only while answers have room: while they wait
        // for it, wake for room, not for more requests.
        if served.stalled {
            sleep.on(&mut self.fired.ring, &mut self.cut);
        } else {
            sleep.on(&mut self.requests.ring, &mut self.cut);
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        println!("pit_timer: {cut}");
    }
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
    const NO_RINGS: DriverError = DriverError::Device("rings `alarm` and `fired` must be granted");
    let mut pit = Pit {
        regs: PortBlock::new(io, first, last)?,
        tsc_mhz: env.tsc_mhz(),
        requests: env.ring_rx("alarm").map_err(|_| NO_RINGS)?,
        fired: env.ring_tx("fired").map_err(|_| NO_RINGS)?,
        server: AlarmServer::new(),
        cut: Cut::new("alarm/fired"),
        interrupts: 0,
    };
    // The kernel left channel 0 counting periodically (it calibrates the
    // TSC with it): one long one-shot replaces that.
    pit.arm(u16::MAX)?;
    println!(
        "pit_timer: serving at {first:#x}..={last:#x}, TSC {} MHz",
        pit.tsc_mhz
    );
    let Err(e) = kaal_dddk::run(&mut pit, &env.notification(), &Irq::from(irq));
    println!("pit_timer: stopped after {} interrupts", pit.interrupts);
    Err(e)
}

kaal_rt::component!(main);
