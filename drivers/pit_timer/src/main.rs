//! The PIT timer driver: one client's alarms at TSC deadlines (the driver
//! kit's timer protocol: ring `alarm`, client to driver, and ring `fired`,
//! driver to client; device `timer:pit`).
//!
//! The TSC is the clock; the PIT only wakes the driver. Channel 0 runs one
//! shot at a time in mode 0 (interrupt on terminal count), armed for the
//! earliest pending deadline, at most 65535 counts (about 54.9 ms): on each
//! interrupt the driver answers every alarm whose deadline the TSC has
//! passed and arms again for the next, so an early or spurious interrupt
//! only costs a wake-up.
#![no_std]
#![no_main]

use kaal_dddk::irq::{self, Irq};
use kaal_dddk::regs::PortBlock;
use kaal_dddk::timer::{pit_count, AlarmServer, Served};
use kaal_dddk::{guard, DriverError};
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
    irq: Irq,
    tsc_mhz: u64,
    requests: RingRx<AlarmRequest, RING_SLOTS>,
    fired: RingTx<AlarmFired, RING_SLOTS>,
    server: AlarmServer<QUEUE_ALARMS>,
    /// The client's rings were found corrupt: it is no longer served.
    dead: bool,
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

    /// A corrupt client ring cuts the client off (reported once).
    fn check<T: Default>(&mut self, r: Result<T, DriverError>) -> Result<T, DriverError> {
        let (v, newly) = guard(r, &mut self.dead)?;
        if let Some(e) = newly {
            println!("pit_timer: client ring is corrupt ({e}); no longer serving it");
        }
        Ok(v)
    }

    fn serve(&mut self) -> Result<Served, DriverError> {
        if self.dead {
            return Ok(Served::default());
        }
        let r = self.server.serve(
            kaal_rt::rdtsc(),
            (&mut self.requests.ring, &self.requests.peer),
            (&mut self.fired.ring, &self.fired.peer),
        );
        self.check(r.map_err(Into::into))
    }

    /// Serves until the kernel refuses something.
    fn run(&mut self, env: &Env) -> Result<(), DriverError> {
        loop {
            let served = self.serve()?;
            if let Some(deadline) = served.next_deadline {
                match deadline.saturating_sub(kaal_rt::rdtsc()) {
                    // Due while we served; if its answer waits for room,
                    // the client's signal wakes us instead.
                    0 if !served.stalled => continue,
                    0 => {}
                    left => self.arm(pit_count(left, self.tsc_mhz))?,
                }
            }
            // Announce the sleep, then look again (the ring protocol): the
            // client may have asked, or taken answers, in between.
            if !self.dead {
                let r = self.requests.ring.prepare_sleep().map_err(Into::into);
                if self.check(r)? {
                    continue;
                }
            }
            if served.stalled && !self.dead {
                let r = self.fired.ring.prepare_wait().map_err(Into::into);
                if self.check(r)? {
                    self.requests.ring.cancel_sleep();
                    continue;
                }
            }
            let irq = self.irq;
            irq::wait_and_handle(env.notification(), irq, |bits| {
                if bits & irq.bit != 0 {
                    self.interrupts += 1;
                }
                Ok::<(), DriverError>(())
            })?;
            self.requests.ring.cancel_sleep();
            self.fired.ring.cancel_wait();
        }
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
        irq: Irq::from(irq),
        tsc_mhz: env.tsc_mhz(),
        requests: env.ring_rx("alarm").map_err(|_| NO_RINGS)?,
        fired: env.ring_tx("fired").map_err(|_| NO_RINGS)?,
        server: AlarmServer::new(),
        dead: false,
        interrupts: 0,
    };
    // The kernel left channel 0 counting periodically (it calibrates the
    // TSC with it): one long one-shot replaces that.
    pit.arm(u16::MAX)?;
    println!(
        "pit_timer: serving at {first:#x}..={last:#x}, TSC {} MHz",
        pit.tsc_mhz
    );
    let r = pit.run(env);
    println!("pit_timer: stopped after {} interrupts", pit.interrupts);
    r
}

kaal_rt::component!(main);
