//! The virtio-blk driver: serves one client the block protocol of the
//! driver kit (rings `req` and `resp`, memory channel `data`) on the virtio
//! block device its manifest entry grants (for example `pci-class:01:00`).
//!
//! Each request is checked before the device sees it; a bad one gets an
//! error response and the driver goes on. Transfers go through a buffer in
//! the grant's DMA memory, one at a time, completed by interrupt.
#![no_std]
#![no_main]

use kaal_dddk::irq::{self, Irq};
use kaal_dddk::DriverError;
use kaal_protocols::block::{self, Checked, Request, Response, Status, RING_SLOTS};
use kaal_rt::{println, Env, RingRx, RingTx, SharedRegion};
use kaal_virtio::hal::{self, KaalHal};
use kaal_virtio::virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use kaal_virtio::virtio_drivers::transport::pci::PciTransport;

/// The largest transfer one request may ask for.
const MAX_TRANSFER: usize = 64 * 1024;
/// `block::check` keeps transfers within `MAX_TRANSFER`; this is for the
/// impossible case.
const TOO_LARGE: DriverError = DriverError::Device("transfer beyond the DMA buffer");

struct Blk {
    dev: VirtIOBlk<KaalHal, PciTransport>,
    irq: Irq,
    /// The transfer buffer, in DMA memory.
    buf: &'static mut [u8],
    data: SharedRegion,
}

impl Blk {
    /// Serves one request; errors are the client's answer, except the
    /// kernel's, which stop the driver.
    fn serve(&mut self, env: &Env, r: &Request) -> Result<Response, DriverError> {
        let capacity = self.dev.capacity();
        let max = MAX_TRANSFER as u64;
        let status = match block::check(r, capacity, self.data.len(), max) {
            Err(s) => s,
            Ok(Checked::Info) => return Ok(Response::new(r.tag, Status::Ok, capacity)),
            Ok(Checked::Flush) => match self.dev.flush() {
                Ok(()) => Status::Ok,
                Err(_) => Status::IoError,
            },
            Ok(Checked::Read {
                sector,
                offset,
                len,
            }) => {
                let s = self.transfer(env, false, sector, len)?;
                let out = self.buf.get(..len).ok_or(TOO_LARGE)?;
                if s == Status::Ok && self.data.write(offset as u64, out).is_err() {
                    Status::BadBuffer
                } else {
                    s
                }
            }
            Ok(Checked::Write {
                sector,
                offset,
                len,
            }) => {
                let into = self.buf.get_mut(..len).ok_or(TOO_LARGE)?;
                if self.data.read(offset as u64, into).is_err() {
                    Status::BadBuffer
                } else {
                    self.transfer(env, true, sector, len)?
                }
            }
        };
        Ok(Response::new(r.tag, status, 0))
    }

    /// Moves `len` bytes between the transfer buffer and the disk at
    /// `sector`, waiting for the device's interrupt.
    fn transfer(
        &mut self,
        env: &Env,
        write: bool,
        sector: u64,
        len: usize,
    ) -> Result<Status, DriverError> {
        // A stale interrupt may have been taken by a ring wait: clear it at
        // the device and unmask the line, so this transfer's one arrives.
        self.dev.ack_interrupt();
        self.irq.handler.ack()?;
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        let buf = self.buf.get_mut(..len).ok_or(TOO_LARGE)?;
        let sector = usize::try_from(sector).map_err(|_| DriverError::Device("sector"))?;
        // SAFETY: `req`, `buf` and `resp` are not touched until the request
        // completes below (or the driver stops).
        let token = unsafe {
            if write {
                self.dev.write_blocks_nb(sector, &mut req, buf, &mut resp)
            } else {
                self.dev.read_blocks_nb(sector, &mut req, buf, &mut resp)
            }
        };
        let Ok(token) = token else {
            return Ok(Status::IoError);
        };
        while self.dev.peek_used() != Some(token) {
            irq::wait_and_handle(env.notification(), self.irq, |_| {
                self.dev.ack_interrupt();
                Ok::<(), DriverError>(())
            })?;
        }
        // SAFETY: the same buffers as submitted with `token`.
        let done = unsafe {
            if write {
                self.dev.complete_write_blocks(token, &req, buf, &mut resp)
            } else {
                self.dev.complete_read_blocks(token, &req, buf, &mut resp)
            }
        };
        Ok(if done.is_ok() {
            Status::Ok
        } else {
            Status::IoError
        })
    }
}

/// The local name of the device the manifest binds.
const DEVICE: &str = "disk";

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
    let mut req: RingRx<Request, RING_SLOTS> = env.ring_rx("req").map_err(|_| NO_CHANNELS)?;
    let mut resp: RingTx<Response, RING_SLOTS> = env.ring_tx("resp").map_err(|_| NO_CHANNELS)?;
    let mut blk = Blk {
        dev,
        irq: Irq::from(irq),
        buf: hal::dma_buffer(MAX_TRANSFER).ok_or(DriverError::Device("DMA buffer too small"))?,
        data: env.shared_region("data").map_err(|_| NO_CHANNELS)?,
    };
    println!("{}: virtio-blk, {} sectors", env.name(), blk.dev.capacity());
    let mut refused = 0u64;
    loop {
        let r = match req.recv() {
            Ok(r) => r,
            Err(e) => return cut_off(env, "req", e),
        };
        // Free the slot before a possibly blocking send: a client waiting
        // for room to queue more must not wait on us in turn.
        req.release();
        let answer = blk.serve(env, &r)?;
        if answer.status != Status::Ok as u32 {
            refused += 1;
            // A client sending nothing but bad requests must not flood the
            // console: the first few, then every 1000th.
            if refused <= 8 || refused.is_multiple_of(1000) {
                println!(
                    "virtio-blk: request {} refused: {:?} ({refused} so far)",
                    r.tag,
                    Status::from_code(answer.status)
                );
            }
        }
        if let Err(e) = resp.send_all(&[answer]) {
            return cut_off(env, "resp", e);
        }
    }
}

/// A corrupt client ring: reported once; with its one client cut off the
/// driver has nothing left to serve, so it waits (never exiting, which
/// would hand the device to a restart with requests half done).
fn cut_off(env: &Env, ring: &str, e: impl core::fmt::Display) -> Result<(), DriverError> {
    println!("virtio-blk: client ring `{ring}` is corrupt ({e}); no longer serving it");
    loop {
        env.notification().wait();
    }
}

kaal_rt::component!(main);
