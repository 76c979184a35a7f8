//! The 16550 UART driver: receives and transmits on interrupts, and serves
//! one client the serial protocol of the driver kit (rings `rx`, driver to
//! client, and `tx`, client to driver; device `serial:0`).
//!
//! Flow control: it reads the receive FIFO only while it has room for the
//! bytes, so a slow client makes the UART hold input rather than lose it.
#![no_std]
#![no_main]

use kaal_dddk::irq::{self, Irq};
use kaal_dddk::regs::PortBlock;
use kaal_dddk::serial::{Chunk, CHUNK_BYTES, RING_SLOTS};
use kaal_dddk::DriverError;
use kaal_rt::{println, Env, RingRx, RingTx};
use kaal_sel4::cap::IoPort;

// Register offsets and bits (the 16550 data sheet).
const RBR_THR: u16 = 0;
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const IER_RX: u8 = 0x01;
const IER_TX: u8 = 0x02;
const LSR_DATA: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;
/// The transmit FIFO's depth.
const TX_FIFO: usize = 16;

struct Uart {
    regs: PortBlock<IoPort>,
    irq: Irq,
    to_client: RingTx<Chunk, RING_SLOTS>,
    from_client: RingRx<Chunk, RING_SLOTS>,
    /// Received bytes not yet pushed to the client.
    rx: Chunk,
    /// The client's chunk being transmitted, and how far.
    tx: Chunk,
    tx_at: usize,
}

impl Uart {
    fn init(&self) -> Result<(), DriverError> {
        self.regs.write(IER, 0)?;
        self.regs.write(LCR, 0x03)?; // 8 data bits, no parity, 1 stop bit
        self.regs.write(FCR, 0xc7)?; // FIFOs on and cleared, interrupt at 14 bytes
        self.regs.write(MCR, 0x0b)?; // DTR, RTS, OUT2 (gates the interrupt on a PC)
        while self.regs.read(LSR)? & LSR_DATA != 0 {
            self.regs.read(RBR_THR)?; // drop anything stale
        }
        self.regs.write(IER, IER_RX)
    }

    /// Moves received bytes to the client while there is room for them.
    fn receive(&mut self) -> Result<(), DriverError> {
        loop {
            if self.rx.len as usize == CHUNK_BYTES && !self.flush_rx()? {
                return Ok(()); // the client's ring is full: leave the rest in the FIFO
            }
            if self.regs.read(LSR)? & LSR_DATA == 0 {
                self.flush_rx()?;
                return Ok(());
            }
            let b = self.regs.read(RBR_THR)?;
            let n = self.rx.len as usize;
            if let Some(slot) = self.rx.data.get_mut(n) {
                *slot = b;
                self.rx.len += 1;
            }
        }
    }

    /// Pushes the pending received bytes; `false` if the ring is full.
    fn flush_rx(&mut self) -> Result<bool, DriverError> {
        if self.rx.len == 0 {
            return Ok(true);
        }
        match self.to_client.ring.push(self.rx) {
            Ok(()) => {
                self.rx = Chunk::default();
                if self.to_client.ring.publish() {
                    self.to_client.peer.0.signal();
                }
                Ok(true)
            }
            Err(kaal_ring::RingError::Full) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Fills the transmit FIFO from the client's chunks; asks for the
    /// transmitter-empty interrupt while bytes remain.
    fn transmit(&mut self) -> Result<(), DriverError> {
        if self.regs.read(LSR)? & LSR_THR_EMPTY != 0 {
            let mut room = TX_FIFO;
            while room > 0 {
                if self.tx_at >= self.tx.bytes().len() {
                    match self.from_client.ring.pop()? {
                        Some(c) => {
                            self.tx = c;
                            self.tx_at = 0;
                            continue;
                        }
                        None => break,
                    }
                }
                if let Some(&b) = self.tx.bytes().get(self.tx_at) {
                    self.regs.write(RBR_THR, b)?;
                }
                self.tx_at += 1;
                room -= 1;
            }
            if self.from_client.ring.release() {
                self.from_client.peer.0.signal();
            }
        }
        let pending = self.tx_at < self.tx.bytes().len() || self.from_client.ring.available()? > 0;
        self.regs
            .write(IER, if pending { IER_RX | IER_TX } else { IER_RX })
    }

    /// Serves until something fails.
    fn run(&mut self, env: &Env) -> Result<(), DriverError> {
        loop {
            self.receive()?;
            self.transmit()?;
            // Announce the sleep, then look again (the ring protocol): the
            // client may have sent, or freed room, in between.
            let sending = self.tx_at < self.tx.bytes().len();
            if !sending && self.from_client.ring.prepare_sleep()? {
                continue;
            }
            if self.rx.len > 0 && self.to_client.ring.prepare_wait()? {
                self.from_client.ring.cancel_sleep();
                continue;
            }
            irq::wait_and_handle(env.notification(), self.irq, |_bits| {
                Ok::<(), DriverError>(())
            })?;
            self.from_client.ring.cancel_sleep();
            self.to_client.ring.cancel_wait();
        }
    }
}

fn main(env: &Env) -> Result<(), DriverError> {
    let (io, first, last) = env
        .io_ports("serial:0")
        .map_err(|_| DriverError::Device("no serial:0 ports granted"))?;
    let (handler, bit) = env
        .irq("serial:0")
        .map_err(|_| DriverError::Device("no serial:0 interrupt granted"))?;
    const NO_RINGS: DriverError = DriverError::Device("rings `rx` and `tx` must be granted");
    let mut uart = Uart {
        regs: PortBlock::new(io, first, last)?,
        irq: Irq { handler, bit },
        to_client: env.ring_tx("rx").map_err(|_| NO_RINGS)?,
        from_client: env.ring_rx("tx").map_err(|_| NO_RINGS)?,
        rx: Chunk::default(),
        tx: Chunk::default(),
        tx_at: 0,
    };
    uart.init()?;
    println!("uart16550: serving COM1 at {first:#x}");
    uart.run(env)
}

kaal_rt::component!(main);
