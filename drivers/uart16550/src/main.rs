//! The 16550 UART driver: receives and transmits on interrupts, and serves
//! one client the serial protocol (`kaal_protocols::serial`: rings `rx`,
//! driver to client, and `tx`, client to driver; device `port`, any COM
//! port).
//!
//! Flow control: it reads the receive FIFO only while the client's ring has
//! room; meanwhile it turns the receive interrupt off and drops RTS, so a
//! sender that honours RTS holds its input (QEMU's serial back end does).
//! Receive overruns are counted.
//!
//! As the system console (the manifest's `console`), it also prints the
//! lines the root task hands it on the ring `console`.
#![no_std]
#![no_main]

use kaal_dddk::regs::PortBlock;
use kaal_dddk::serial::{ByteSink, ByteSource, ConsoleLines};
use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::serial::{Chunk, RING_SLOTS};
use kaal_rt::{println, Env, RingRx, RingTx, Signal};
use kaal_sel4::cap::IoPort;
use kaal_sel4::uart16550::{
    DIVISOR, DLL, DLM, FCR_IIR, IER, IER_RX, IER_TX, LCR, LCR_8N1, LCR_DLAB, LSR, LSR_DATA,
    LSR_OVERRUN, LSR_THR_EMPTY, MCR, MCR_DTR_OUT2, MCR_RTS, RBR_THR,
};

struct Uart {
    regs: PortBlock<IoPort>,
    to_client: RingTx<Chunk, RING_SLOTS>,
    from_client: RingRx<Chunk, RING_SLOTS>,
    /// Bytes the transmitter takes when it reports empty (16 with a FIFO).
    tx_depth: usize,
    /// Received bytes not yet in the client's ring.
    rx: ByteSink,
    /// The client's ring is full: input waits in the UART (receive
    /// interrupt off, RTS dropped) until it has room.
    rx_stalled: bool,
    tx: ByteSource,
    /// Console lines from the root task (trusted), sent before client bytes
    /// whenever no client chunk is half sent.
    console: ConsoleLines<'static, RING_SLOTS, Signal>,
    overruns: u64,
    /// A client ring found corrupt is not touched again; the other
    /// direction goes on.
    rx_cut: Cut,
    tx_cut: Cut,
}

impl Uart {
    fn init(&mut self) -> Result<(), DriverError> {
        self.regs.write(IER, 0)?;
        self.regs.write(LCR, LCR_8N1 | LCR_DLAB)?;
        self.regs.write(DLL, DIVISOR.to_le_bytes()[0])?;
        self.regs.write(DLM, DIVISOR.to_le_bytes()[1])?;
        self.regs.write(LCR, LCR_8N1)?;
        self.regs.write(FCR_IIR, 0x87)?; // FIFOs on and cleared, interrupt at 8 bytes
                                         // A 16550A reports working FIFOs in IIR bits 7:6; an 8250 has none.
        self.tx_depth = if self.regs.read(FCR_IIR)? & 0xc0 == 0xc0 {
            16
        } else {
            1
        };
        while self.regs.read(LSR)? & LSR_DATA != 0 {
            self.regs.read(RBR_THR)?; // drop anything stale
        }
        self.update(false)
    }

    /// Sets the interrupts and RTS for the current state.
    fn update(&self, tx_pending: bool) -> Result<(), DriverError> {
        let rx = if self.rx_stalled { 0 } else { IER_RX };
        let tx = if tx_pending { IER_TX } else { 0 };
        self.regs.write(IER, rx | tx)?;
        let rts = if self.rx_stalled { 0 } else { MCR_RTS };
        self.regs.write(MCR, MCR_DTR_OUT2 | rts)
    }

    /// Moves received bytes to the client while there is room for them;
    /// returns whether the client's ring is full.
    fn receive(&mut self) -> Result<bool, DriverError> {
        loop {
            if self.rx.is_full() && !self.flush_rx()? {
                return Ok(true);
            }
            let lsr = self.regs.read(LSR)?;
            if lsr & LSR_OVERRUN != 0 {
                self.overruns += 1;
            }
            if lsr & LSR_DATA == 0 {
                return Ok(!self.flush_rx()?);
            }
            let b = self.regs.read(RBR_THR)?;
            if !self.rx_cut.is_cut() {
                self.rx.push(b);
            }
        }
    }

    fn flush_rx(&mut self) -> Result<bool, DriverError> {
        if self.rx_cut.is_cut() {
            return Ok(true);
        }
        Ok(self
            .rx
            .flush(&mut self.to_client.ring, &self.to_client.peer)?)
    }

    /// Fills the transmitter from the client's chunks; returns whether bytes
    /// remain (then the transmitter-empty interrupt asks for more).
    fn transmit(&mut self) -> Result<bool, DriverError> {
        if self.regs.read(LSR)? & LSR_THR_EMPTY != 0 {
            for _ in 0..self.tx_depth {
                let b = match self.console.next(&self.tx)? {
                    None if !self.tx_cut.is_cut() => self.tx.next(&mut self.from_client.ring)?,
                    b => b,
                };
                let Some(b) = b else { break };
                self.regs.write(RBR_THR, b)?;
            }
            self.from_client.release();
            self.console.release();
        }
        let client = !self.tx_cut.is_cut() && self.tx.has_more(&mut self.from_client.ring)?;
        Ok(self.console.has_more()? || client)
    }
}

impl Driver for Uart {
    fn serve<'a>(&'a mut self, _: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        let r = self.receive();
        self.rx_stalled = self.rx_cut.guard(r, report)?;
        let r = self.transmit();
        let tx_pending = self.tx_cut.guard(r, report)?;
        self.update(tx_pending)?;
        // While bytes are pending the transmitter's interrupt wakes us;
        // while the client's ring is full, the client's release does.
        if !tx_pending {
            sleep
                .on(&mut self.from_client.ring, &mut self.tx_cut)
                .on_trusted(&mut self.console);
        }
        if self.rx_stalled {
            sleep.on(&mut self.to_client.ring, &mut self.rx_cut);
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        report(cut);
    }
}

/// Prints that a client ring was found corrupt and cut off.
fn report(cut: CutReport) {
    println!("uart16550: {cut}");
}

fn main(env: &Env) -> Result<(), DriverError> {
    let (io, first, last) = env
        .io_ports("port")
        .map_err(|_| DriverError::Device("no `port` I/O ports granted"))?;
    let irq = env
        .irq("port")
        .map_err(|_| DriverError::Device("no `port` interrupt granted"))?;
    const NO_RINGS: DriverError = DriverError::Device("rings `rx` and `tx` must be granted");
    let mut uart = Uart {
        regs: PortBlock::new(io, first, last)?,
        to_client: env.ring_tx("rx").map_err(|_| NO_RINGS)?,
        from_client: env.ring_rx("tx").map_err(|_| NO_RINGS)?,
        tx_depth: 1,
        rx: ByteSink::default(),
        rx_stalled: false,
        tx: ByteSource::default(),
        console: ConsoleLines::new(env.ring_rx("console").ok().map(|rx| (rx.ring, rx.peer))),
        overruns: 0,
        rx_cut: Cut::new("rx"),
        tx_cut: Cut::new("tx"),
    };
    uart.init()?;
    println!(
        "{}: serving the UART at {first:#x} (transmit FIFO {} bytes)",
        env.name(),
        uart.tx_depth
    );
    let Err(e) = kaal_dddk::run(&mut uart, &env.notification(), &Irq::from(irq));
    println!(
        "uart16550: stopped after {} receive overruns",
        uart.overruns
    );
    Err(e)
}

kaal_rt::component!(main);
