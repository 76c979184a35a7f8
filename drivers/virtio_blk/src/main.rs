//! The virtio-blk driver: serves one client the block protocol
//! (`kaal_protocols::block`: rings `req` and `resp`, memory channel `data`)
//! on the virtio block device its manifest binds to local name `disk` (for
//! example `pci-class:01:00`).
//!
//! Each request is checked before the device sees it; a bad one gets an
//! error response and the driver goes on. Transfers go through a buffer in
//! the grant's DMA memory, one at a time, completed when the device's
//! interrupt arrives through the kit's loop.
#![no_std]
#![no_main]

use kaal_dddk::{Cut, CutReport, Driver, DriverError, Events, Irq, Sleep};
use kaal_protocols::block::{self, Checked, Request, Response, Status, RING_SLOTS};
use kaal_ring::RingError;
use kaal_rt::{println, Env, RingRx, RingTx, SharedRegion};
use kaal_virtio::hal::{self, KaalHal};
use kaal_virtio::virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use kaal_virtio::virtio_drivers::transport::pci::PciTransport;

/// The largest transfer one request may ask for.
const MAX_TRANSFER: usize = 64 * 1024;
/// `block::check` keeps transfers within `MAX_TRANSFER`; this is for the
/// impossible case.
const TOO_LARGE: DriverError = DriverError::Device("transfer beyond the DMA buffer");

/// A transfer the device is doing: what `virtio-drivers` needs back to
/// complete it, and what to answer.
struct Transfer {
    token: u16,
    tag: u64,
    write: bool,
    offset: usize,
    len: usize,
    req: BlkReq,
    resp: BlkResp,
}

struct Blk {
    dev: VirtIOBlk<KaalHal, PciTransport>,
    /// The transfer buffer, in DMA memory.
    buf: &'static mut [u8],
    data: SharedRegion,
    requests: RingRx<Request, RING_SLOTS>,
    responses: RingTx<Response, RING_SLOTS>,
    /// One transfer at a time.
    transfer: Option<Transfer>,
    /// The answer waiting for room in `resp`; no request is taken until it
    /// is delivered.
    answer: Option<Response>,
    refused: u64,
    req_cut: Cut,
    resp_cut: Cut,
}

impl Blk {
    /// Starts serving one request: answers it, or hands its transfer to the
    /// device. Errors are the client's answer, except the kernel's, which
    /// stop the driver.
    fn start(&mut self, r: &Request) -> Result<(), DriverError> {
        let capacity = self.dev.capacity();
        let max = MAX_TRANSFER as u64;
        let status = match block::check(r, capacity, self.data.len(), max) {
            Err(s) => s,
            Ok(Checked::Info) => {
                self.answer(r.tag, Status::Ok, capacity);
                return Ok(());
            }
            Ok(Checked::Flush) => match self.dev.flush() {
                Ok(()) => Status::Ok,
                Err(_) => Status::IoError,
            },
            Ok(Checked::Read {
                sector,
                offset,
                len,
            }) => return self.submit(r.tag, false, sector, offset, len),
            Ok(Checked::Write {
                sector,
                offset,
                len,
            }) => {
                let into = self.buf.get_mut(..len).ok_or(TOO_LARGE)?;
                if self.data.read(offset as u64, into).is_err() {
                    Status::BadBuffer
                } else {
                    return self.submit(r.tag, true, sector, offset, len);
                }
            }
        };
        self.answer(r.tag, status, 0);
        Ok(())
    }

    /// Hands the device a transfer of `len` bytes between the buffer and
    /// the disk at `sector`; its interrupt tells when it is done.
    fn submit(
        &mut self,
        tag: u64,
        write: bool,
        sector: u64,
        offset: usize,
        len: usize,
    ) -> Result<(), DriverError> {
        let sector = usize::try_from(sector).map_err(|_| DriverError::Device("sector"))?;
        let buf = self.buf.get_mut(..len).ok_or(TOO_LARGE)?;
        let t = self.transfer.insert(Transfer {
            token: 0,
            tag,
            write,
            offset,
            len,
            req: BlkReq::default(),
            resp: BlkResp::default(),
        });
        // SAFETY: `t.req`, `buf` and `t.resp` are not touched until
        // `complete` passes them back: the transfer stays in place (the
        // driver does not move while the loop borrows it), and the buffer is
        // used for nothing else meanwhile.
        let token = unsafe {
            if write {
                self.dev
                    .write_blocks_nb(sector, &mut t.req, buf, &mut t.resp)
            } else {
                self.dev
                    .read_blocks_nb(sector, &mut t.req, buf, &mut t.resp)
            }
        };
        match token {
            Ok(token) => t.token = token,
            Err(_) => {
                self.transfer = None;
                self.answer(tag, Status::IoError, 0);
            }
        }
        Ok(())
    }

    /// Completes the transfer if the device is done with it; `false` if
    /// it is not.
    fn complete(&mut self) -> Result<bool, DriverError> {
        let Some(t) = &mut self.transfer else {
            return Ok(true);
        };
        if self.dev.peek_used() != Some(t.token) {
            return Ok(false);
        }
        let buf = self.buf.get_mut(..t.len).ok_or(TOO_LARGE)?;
        // SAFETY: the same buffers as submitted with `t.token`.
        let done = unsafe {
            if t.write {
                self.dev
                    .complete_write_blocks(t.token, &t.req, buf, &mut t.resp)
            } else {
                self.dev
                    .complete_read_blocks(t.token, &t.req, buf, &mut t.resp)
            }
        };
        let status = if done.is_err() {
            Status::IoError
        } else if !t.write && self.data.write(t.offset as u64, buf).is_err() {
            Status::BadBuffer
        } else {
            Status::Ok
        };
        let tag = t.tag;
        self.transfer = None;
        self.answer(tag, status, 0);
        Ok(true)
    }

    fn answer(&mut self, tag: u64, status: Status, value: u64) {
        if status != Status::Ok {
            self.refused += 1;
            // A client sending nothing but bad requests must not flood the
            // console: the first few, then every 1000th.
            if self.refused <= 8 || self.refused.is_multiple_of(1000) {
                println!(
                    "virtio-blk: request {tag} refused: {status:?} ({} so far)",
                    self.refused
                );
            }
        }
        self.answer = Some(Response::new(tag, status, value));
    }

    /// Delivers the answer; `false` if it waits for room.
    fn deliver(&mut self) -> Result<bool, DriverError> {
        let Some(a) = self.answer else {
            return Ok(true);
        };
        if !self.resp_cut.is_cut() {
            let r = match self.responses.ring.push(a) {
                Err(RingError::Full) => return Ok(false),
                r => r.map_err(DriverError::from),
            };
            self.responses.publish();
            self.resp_cut.guard(r, report)?;
        }
        self.answer = None;
        Ok(true)
    }
}

impl Driver for Blk {
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError> {
        if events.interrupt() {
            // Reading the interrupt status lowers the (level) line.
            self.dev.ack_interrupt();
        }
        loop {
            if !self.complete()? {
                return Ok(()); // the device's interrupt wakes us
            }
            if !self.deliver()? {
                sleep.on(&mut self.responses.ring, &mut self.resp_cut);
                return Ok(());
            }
            if self.req_cut.is_cut() {
                return Ok(());
            }
            let r = self.requests.ring.pop().map_err(DriverError::from);
            match self.req_cut.guard(r, report)? {
                Some(r) => {
                    // Free the slot before serving: a client waiting for
                    // room to queue more must not wait on us in turn.
                    self.requests.release();
                    self.start(&r)?;
                }
                None => {
                    sleep.on(&mut self.requests.ring, &mut self.req_cut);
                    return Ok(());
                }
            }
        }
    }

    fn report(&mut self, cut: CutReport) {
        report(cut);
    }
}

/// The local name of the device the manifest binds.
const DEVICE: &str = "disk";

/// Prints that a client ring was found corrupt and cut off.
fn report(cut: CutReport) {
    println!("virtio-blk: {cut}");
}

fn main(env: &Env) -> Result<(), DriverError> {
    let transport = kaal_virtio::open(env, DEVICE).map_err(|e| {
        println!("virtio-blk: {e}");
        DriverError::Device("no virtio block device")
    })?;
    let irq = env
        .irq(DEVICE)
        .map_err(|_| DriverError::Device("no interrupt granted"))?;
    let dev = VirtIOBlk::<KaalHal, _>::new(transport)
        .map_err(|_| DriverError::Device("virtio-blk initialisation failed"))?;
    const NO_CHANNELS: DriverError =
        DriverError::Device("rings `req`, `resp` and memory `data` must be granted");
    let mut blk = Blk {
        dev,
        buf: hal::dma_buffer(MAX_TRANSFER).ok_or(DriverError::Device("DMA buffer too small"))?,
        data: env.shared_region("data").map_err(|_| NO_CHANNELS)?,
        requests: env.ring_rx("req").map_err(|_| NO_CHANNELS)?,
        responses: env.ring_tx("resp").map_err(|_| NO_CHANNELS)?,
        transfer: None,
        answer: None,
        refused: 0,
        req_cut: Cut::new("req"),
        resp_cut: Cut::new("resp"),
    };
    println!("{}: virtio-blk, {} sectors", env.name(), blk.dev.capacity());
    // With its one client cut off the driver serves nothing, but never
    // exits, which would hand the device to a restart with a transfer half
    // done.
    let Err(e) = kaal_dddk::run(&mut blk, &env.notification(), &Irq::from(irq));
    Err(e)
}

kaal_rt::component!(main);
