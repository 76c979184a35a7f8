//! The virtio-net driver: serves one client the network protocol
//! (`kaal_protocols::net`: rings `tx`, client to driver, and `rx`, driver
//! to client) on the virtio network device its manifest binds to local
//! name `nic` (for example `pci-class:02:00`).
//!
//! The device's buffers live in the grant's DMA memory, so it reads and
//! writes them in place; frames are copied between them and the client's
//! ring slots. Completions arrive by interrupt. A `tx` entry the protocol
//! refuses is answered with an error entry on `rx` and the driver goes on
//! (an address entry on `tx` with the address entry again);
//! a client ring found corrupt is reported and no longer touched.
#![no_std]
#![no_main]

extern crate alloc;

use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::net::{self, Packet, Status, HEAD_BYTES, MAX_FRAME, MIN_FRAME, RING_SLOTS};
use kaal_rt::{println, Env, RingRx, RingTx};
use kaal_virtio::hal::{self, KaalHal};
use kaal_virtio::rx::Receiver;
use kaal_virtio::virtio_drivers::device::net::VirtIONetRaw;
use kaal_virtio::virtio_drivers::transport::pci::PciTransport;

/// Descriptors per virtqueue: the buffers the device holds in each
/// direction (each buffer takes one descriptor).
const QUEUE: usize = 16;
/// One device buffer: the virtio-net header and the largest frame.
const BUF: usize = 2048;

const BAD_TOKEN: DriverError = DriverError::Device("completion of a buffer never posted");

/// Transmit buffers, `BUF` bytes each of DMA memory.
struct Buffers {
    mem: &'static mut [u8],
    /// For each descriptor token, the buffer posted under it and the bytes
    /// given to the device.
    posted: [Option<(usize, usize)>; QUEUE],
    /// Buffers not posted (bit `i` for buffer `i`).
    free: u64,
}

impl Buffers {
    fn new(mem: &'static mut [u8]) -> Buffers {
        Buffers {
            mem,
            posted: [None; QUEUE],
            free: u64::MAX >> (64 - QUEUE),
        }
    }

    fn take(&mut self) -> Option<usize> {
        let i = self.free.trailing_zeros();
        (self.free != 0).then(|| {
            self.free &= !(1 << i);
            i as usize
        })
    }

    fn put(&mut self, i: usize) {
        self.free |= 1 << i;
    }

    fn buf(&mut self, i: usize) -> Result<&mut [u8], DriverError> {
        self.mem
            .get_mut(i * BUF..(i + 1) * BUF)
            .ok_or(DriverError::Device("buffer index"))
    }

    fn post(&mut self, token: u16, i: usize, len: usize) -> Result<(), DriverError> {
        let slot = self.posted.get_mut(usize::from(token)).ok_or(BAD_TOKEN)?;
        *slot = Some((i, len));
        Ok(())
    }

    /// The buffer posted under `token`, no longer posted.
    fn complete(&mut self, token: u16) -> Result<(usize, usize), DriverError> {
        self.posted
            .get_mut(usize::from(token))
            .and_then(Option::take)
            .ok_or(BAD_TOKEN)
    }
}

type Device = VirtIONetRaw<KaalHal, PciTransport, QUEUE>;

struct Net {
    dev: Device,
    rx: Receiver<QUEUE>,
    tx: Buffers,
    to_client: RingTx<Packet, RING_SLOTS>,
    from_client: RingRx<Packet, RING_SLOTS>,
    /// Free slots of the client's `rx` ring as last read.
    room: usize,
    /// The answer to a `tx` entry (a refusal, or the address asked for),
    /// not yet in the client's `rx` ring; no further `tx` entry is taken
    /// until it is.
    answer: Option<Packet>,
    /// The received frame being delivered, built in place.
    frame: alloc::boxed::Box<Packet>,
    /// The client's `tx` entry being sent, read in place.
    entry: alloc::boxed::Box<Packet>,
    /// Frames delivered, sent, and dropped (malformed, or the client's `rx`
    /// ring cut off).
    received: u32,
    sent: u64,
    dropped: u64,
    /// A client ring found corrupt is not touched again; the other
    /// direction goes on.
    rx_cut: Cut,
    tx_cut: Cut,
    /// Entries refused so far.
    refused: u64,
}

impl Net {
    /// Takes back the buffers the device has transmitted.
    fn reap_tx(&mut self) -> Result<(), DriverError> {
        while let Some(token) = self.dev.poll_transmit() {
            let (i, len) = self.tx.complete(token)?;
            let buf = self.tx.buf(i)?.get(..len).ok_or(BAD_TOKEN)?;
            // SAFETY: the same slice as given to `transmit_begin` for `token`.
            unsafe { self.dev.transmit_complete(token, buf) }
                .map_err(|_| DriverError::Device("transmit completion"))?;
            self.tx.put(i);
            self.sent += 1;
        }
        Ok(())
    }

    /// Whether the client's `rx` ring has a free slot (re-reading it only
    /// when the last count is used up).
    fn has_room(&mut self) -> Result<bool, DriverError> {
        if self.room == 0 {
            self.room = self.to_client.ring.free()?;
        }
        Ok(self.room > 0)
    }

    /// Delivers the entry built in `self.frame`, copying into the ring
    /// only the bytes it uses.
    fn deliver(&mut self) -> Result<(), DriverError> {
        let p = &*self.frame;
        self.to_client.ring.push_prefix(p, p.used_bytes())?;
        self.room = self.room.saturating_sub(1);
        Ok(())
    }

    /// Delivers a pending answer and the received frames while the client's
    /// ring has room; returns whether any wait for room.
    fn receive(&mut self) -> Result<bool, DriverError> {
        let r = self.receive_some();
        self.to_client.publish();
        r
    }

    fn receive_some(&mut self) -> Result<bool, DriverError> {
        if let Some(p) = self.answer {
            if !self.rx_cut.is_cut() {
                if !self.has_room()? {
                    return Ok(true);
                }
                *self.frame = p;
                self.deliver()?;
            }
            self.answer = None;
        }
        while self.rx.filled(&self.dev) {
            if !self.rx_cut.is_cut() && !self.has_room()? {
                return Ok(true);
            }
            let received = self.received;
            let out = &mut *self.frame;
            let taken = self.rx.take(&mut self.dev, |f| {
                f.filter(|f| (MIN_FRAME..=MAX_FRAME).contains(&f.len()))
                    .and_then(|f| out.set_frame(received, f))
            });
            let Some(frame) = taken.map_err(|_| DriverError::Device("receive completion"))? else {
                break;
            };
            match frame {
                Some(()) if !self.rx_cut.is_cut() => {
                    self.deliver()?;
                    self.received = self.received.wrapping_add(1);
                }
                _ => self.dropped += 1,
            }
        }
        Ok(false)
    }

    /// Sends the client's `tx` entries while the device has buffers for
    /// them; returns whether entries wait for a buffer.
    fn transmit(&mut self) -> Result<bool, DriverError> {
        let r = self.transmit_some();
        self.from_client.release();
        r
    }

    fn transmit_some(&mut self) -> Result<bool, DriverError> {
        while self.answer.is_none() {
            if self.tx.free == 0 {
                return Ok(self.from_client.ring.available()? > 0);
            }
            // Only the head and the frame it announces are read (an ACK
            // is 70 bytes of a 2048-byte slot); `check` reads no further.
            let p = &mut *self.entry;
            if !self
                .from_client
                .ring
                .pop_prefix(p, HEAD_BYTES, Packet::used_bytes)?
            {
                return Ok(false);
            }
            if p.kind == net::kind::ADDRESS {
                self.answer = Some(Packet::address(self.dev.mac_address()));
                continue;
            }
            let token = p.token;
            let sent = match net::check(p) {
                Ok(frame) => Self::send(&mut self.tx, &mut self.dev, frame)?,
                Err(s) => Err(s),
            };
            if let Err(s) = sent {
                self.refuse(token, s);
            }
        }
        Ok(false)
    }

    /// Gives `frame` to the device; `Ok(Err(status))` if it refused it.
    /// (The entry the frame is in is a field of the driver: hence the
    /// fields, not `self`.)
    fn send(
        tx: &mut Buffers,
        dev: &mut Device,
        frame: &[u8],
    ) -> Result<Result<(), Status>, DriverError> {
        let Some(i) = tx.take() else {
            return Err(DriverError::Device("no transmit buffer"));
        };
        let buf = tx.buf(i)?;
        let hdr = dev
            .fill_buffer_header(buf)
            .map_err(|_| DriverError::Device("virtio-net header"))?;
        let end = hdr + frame.len();
        let Some(out) = buf.get_mut(hdr..end) else {
            tx.put(i);
            return Ok(Err(Status::TooLong));
        };
        out.copy_from_slice(frame);
        let out = buf.get(..end).unwrap_or_default();
        // SAFETY: the buffer is this driver's DMA memory, and it is not
        // touched again until the device returns it under the token
        // (`transmit_complete` with the same slice, in `reap_tx`).
        match unsafe { dev.transmit_begin(out) } {
            Ok(t) => tx.post(t, i, end).map(Ok),
            Err(_) => {
                tx.put(i);
                Ok(Err(Status::DeviceError))
            }
        }
    }

    fn refuse(&mut self, token: u32, s: Status) {
        self.refused += 1;
        // A client sending nothing but bad entries must not flood the
        // console: the first few, then every 1000th.
        if self.refused <= 8 || self.refused.is_multiple_of(1000) {
            println!("virtio-net: tx entry {token} refused: {s:?}");
        }
        self.answer = Some(Packet::error(token, s));
    }

    /// The interface's address, the client's first `rx` entry.
    fn announce_address(&mut self) -> Result<(), DriverError> {
        *self.frame = Packet::address(self.dev.mac_address());
        let r = self.has_room();
        if self.rx_cut.guard(r, report)? {
            let r = self.deliver();
            self.rx_cut.guard(r, report)?;
        }
        Ok(())
    }
}

impl Driver for Net {
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        if events.interrupt() {
            // Reading the interrupt status lowers the (level) line.
            self.dev.ack_interrupt();
        }
        self.reap_tx()?;
        // Each receive buffer goes back to the device as its frame is taken
        // (`Receiver::take`), never later: a device holding none raises no
        // interrupt, and frames waited in QEMU until the stack happened to
        // send one (net_syn_flood's keeper went unserved for 30 s).
        let r = self.receive();
        let rx_waiting = self.rx_cut.guard(r, report)?;
        let r = if self.tx_cut.is_cut() {
            Ok(false)
        } else {
            self.transmit()
        };
        let tx_blocked = self.tx_cut.guard(r, report)?;
        if self.answer.is_some() && !rx_waiting {
            sleep.serve_again(); // deliver it, then take the next entry
            return Ok(());
        }
        // While entries wait for transmit buffers, the device's interrupt
        // wakes us; while frames wait for room, the client's release does.
        if self.answer.is_none() && !tx_blocked {
            sleep.on(&mut self.from_client.ring, &mut self.tx_cut);
        }
        if rx_waiting {
            sleep.on(&mut self.to_client.ring, &mut self.rx_cut);
        }
        Ok(())
    }

    fn report(&mut self, cut: CutReport) {
        report(cut);
    }
}

/// The local name of the device the manifest binds.
const DEVICE: &str = "nic";

/// Prints that a client ring was found corrupt and cut off.
fn report(cut: CutReport) {
    println!("virtio-net: {cut}");
}

fn main(env: &Env) -> Result<(), DriverError> {
    let transport = kaal_virtio::open(env, DEVICE).map_err(|e| {
        println!("virtio-net: {e}");
        DriverError::Device("no virtio network device")
    })?;
    let irq = env
        .irq(DEVICE)
        .map_err(|_| DriverError::Device("no interrupt granted"))?;
    let mut dev = VirtIONetRaw::<KaalHal, _, QUEUE>::new(transport)
        .map_err(|_| DriverError::Device("virtio-net initialisation failed"))?;
    // A holder before us (this driver before a restart) may have left the
    // device's interrupt status set (the loop unmasks the line).
    dev.ack_interrupt();
    const NO_RINGS: DriverError = DriverError::Device("rings `rx` and `tx` must be granted");
    const NO_DMA: DriverError = DriverError::Device("DMA buffer too small");
    let mut net = Net {
        dev,
        rx: Receiver::new(hal::dma_buffer(QUEUE * BUF).ok_or(NO_DMA)?, BUF).ok_or(NO_DMA)?,
        tx: Buffers::new(hal::dma_buffer(QUEUE * BUF).ok_or(NO_DMA)?),
        to_client: env.ring_tx("rx").map_err(|_| NO_RINGS)?,
        from_client: env.ring_rx("tx").map_err(|_| NO_RINGS)?,
        room: 0,
        answer: None,
        frame: alloc::boxed::Box::new(Packet::empty()),
        entry: alloc::boxed::Box::new(Packet::empty()),
        received: 0,
        sent: 0,
        dropped: 0,
        rx_cut: Cut::new("rx"),
        tx_cut: Cut::new("tx"),
        refused: 0,
    };
    let m = net.dev.mac_address();
    println!(
        "{}: virtio-net, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        env.name(),
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5]
    );
    net.rx
        .refill(&mut net.dev)
        .map_err(|_| DriverError::Device("receive queue refused a buffer"))?;
    net.announce_address()?;
    let Err(e) = kaal_dddk::run(&mut net, &env.notification(), &Irq::from(irq));
    println!(
        "virtio-net: stopped after {} frames received, {} sent, {} dropped",
        net.received, net.sent, net.dropped
    );
    Err(e)
}

kaal_rt::component!(main);
