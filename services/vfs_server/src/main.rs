//! The VFS component: the ext2 file system on the block driver's disk at
//! `/` (through a write-back block cache in the manifest's `cache` memory),
//! a RAM file system at `/tmp`, served to every client of its `fs` endpoint
//! (the file protocol; each client's data in the region it lends).
//!
//! A read-only request that misses the cache does not hold up the others:
//! its disk read is sent without waiting, the call is parked (its reply
//! capability saved in one of the root's reply slots) and run again when
//! the driver's response wakes the VFS through its bound notification;
//! requests that may write wait for the disk as before.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use blockcache::inflight::{Covered, Reads};
use blockcache::{BlockCache, Disk, IoError};
use kaal_client::block::{BlockClient, BlockError};
use kaal_protocols::block::{op, Response, Status, SECTOR};
use kaal_protocols::file::file_dispatch;
use kaal_rpc::{Badge, IpcBuffer, MessageBuffer, Msg, MSG_MAX, REGISTER_WORDS};
use kaal_rt::{println, CapError, Env, SharedRegion};
use vfs::{RamFs, Regions, Service, Vfs};

/// Bytes of a cache line while the superblock is read: the smallest ext2
/// block.
const FIRST_LINE_BYTES: usize = 1024;
/// The most a request to the block driver moves (its data region holds it).
const TRANSFER: usize = 64 << 10;
/// The RAM file system's limit: a quarter of the heap.
const TMP_SHARE: u64 = 4;

/// Why the VFS could not start.
#[derive(Debug)]
enum StartError {
    Cap(CapError<'static>),
    Block(BlockError),
    Cache(blockcache::ConfigError),
    Mount(ext2::Error),
    Tmp(kaal_protocols::file::FsError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Cap(e) => write!(f, "{e}"),
            StartError::Block(e) => write!(f, "{e}"),
            StartError::Cache(e) => write!(f, "the cache: {e}"),
            StartError::Mount(e) => write!(f, "cannot mount the disk: {e}"),
            StartError::Tmp(e) => write!(f, "cannot mount /tmp: {e:?}"),
        }
    }
}

/// Reads in flight at once (the driver's data region holds two 64 KiB
/// transfers).
const SLOTS: usize = 2;

/// The block driver as the cache's disk. In blocking mode (start-up and
/// every request that may write) each transfer waits, as before; in
/// non-blocking mode a read the driver has not delivered yet is sent
/// without waiting and fails with `WouldBlock`, and is served from the
/// data region once its response arrived.
struct Io {
    client: BlockClient,
    sectors: u64,
    /// Slot `i` of `reads` is bytes `i * TRANSFER..` of the data region.
    reads: Reads<SLOTS>,
    /// Whether the data region holds [`SLOTS`] transfers (else always
    /// blocking).
    can_wait_later: bool,
    blocking: bool,
    /// A read failed with `WouldBlock` since the last [`Io::start`].
    blocked: bool,
    /// A transfer waited for the driver since the last [`Io::start`] (and
    /// may have taken the signal meant for the parked calls).
    waited: bool,
}

fn sectors_of(len: usize) -> u64 {
    len as u64 / SECTOR
}

impl Io {
    fn offset(i: usize) -> u64 {
        (i * TRANSFER) as u64
    }

    /// Before running a request: whether its reads may wait.
    fn start(&mut self, blocking: bool) {
        self.blocking = blocking || !self.can_wait_later;
        self.blocked = false;
        self.waited = false;
    }

    fn arrived(&mut self, r: &Response) {
        let ok = Status::from_code(r.status) == Some(Status::Ok);
        self.reads.arrived(r.tag, ok);
    }

    /// Takes the responses that arrived, without waiting.
    fn drain(&mut self) -> Result<(), IoError> {
        while let Some(r) = self.client.poll().map_err(|_| IoError::Device)? {
            self.arrived(&r);
        }
        Ok(())
    }

    /// Waits for every read in flight.
    fn settle(&mut self) -> Result<(), IoError> {
        while self.reads.any_in_flight() {
            self.waited = true;
            let r = self.client.wait().map_err(|_| IoError::Device)?;
            self.arrived(&r);
        }
        Ok(())
    }

    /// Serves `buf` from `sector` out of an arrived read that covers it.
    fn take_arrived(&mut self, sector: u64, buf: &mut [u8]) -> Option<Result<(), IoError>> {
        Some(match self.reads.take(sector, sectors_of(buf.len()))? {
            Covered::Failed => Err(IoError::Device),
            Covered::Here { slot, skip } => self
                .client
                .data
                .read(Self::offset(slot) + skip * SECTOR, buf)
                .map_err(|_| IoError::Device),
        })
    }

    /// A slot for a transfer that waits: none is in flight after this.
    fn claim_settled(&mut self) -> Result<usize, IoError> {
        self.settle()?;
        self.reads.claim().ok_or(IoError::Device)
    }

    /// A transfer that waits, through a slot no read in flight uses.
    fn transfer(&mut self, what: u32, sector: u64, len: usize) -> Result<u64, IoError> {
        let i = self.claim_settled()?;
        self.waited = true;
        let sectors = u32::try_from(sectors_of(len)).map_err(|_| IoError::OutOfBounds)?;
        let offset = Self::offset(i);
        self.client
            .ok(what, sector, sectors, offset)
            .map(|_| offset)
            .map_err(|_| IoError::Device)
    }
}

/// The cache's handle on the shared [`Io`].
struct BlockDisk(Rc<RefCell<Io>>);

impl Disk for BlockDisk {
    fn sectors(&self) -> u64 {
        self.0.borrow().sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let mut io = self.0.borrow_mut();
        io.drain()?;
        if let Some(r) = io.take_arrived(sector, buf) {
            return r;
        }
        if io.blocking {
            let at = io.transfer(op::READ, sector, buf.len())?;
            return io.client.data.read(at, buf).map_err(|_| IoError::Device);
        }
        io.blocked = true;
        let sectors = sectors_of(buf.len());
        if io.reads.in_flight(sector, sectors) {
            return Err(IoError::WouldBlock);
        }
        // Sent now, answered from the data region when it arrived; with
        // every slot in flight the read is simply tried again later.
        if let Some(i) = io.reads.claim() {
            let n = u32::try_from(sectors).map_err(|_| IoError::OutOfBounds)?;
            let tag = io
                .client
                .submit(op::READ, sector, n, Io::offset(i))
                .map_err(|_| IoError::Device)?;
            io.reads.sent(i, tag, sector, sectors);
        }
        Err(IoError::WouldBlock)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut io = self.0.borrow_mut();
        let i = io.claim_settled()?;
        io.client
            .data
            .write(Io::offset(i), buf)
            .map_err(|_| IoError::Device)?;
        let sectors = u32::try_from(sectors_of(buf.len())).map_err(|_| IoError::OutOfBounds)?;
        io.client
            .ok(op::WRITE, sector, sectors, Io::offset(i))
            .map(|_| ())
            .map_err(|_| IoError::Device)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        let mut io = self.0.borrow_mut();
        io.settle()?;
        io.client
            .ok(op::FLUSH, 0, 0, 0)
            .map(|_| ())
            .map_err(|_| IoError::Device)
    }

    fn max_transfer(&self) -> usize {
        let io = self.0.borrow();
        TRANSFER.min(usize::try_from(io.client.data.len()).unwrap_or(TRANSFER))
    }
}

/// Each client's lent region, by badge.
struct ClientRegions(Vec<(Badge, SharedRegion)>);

impl ClientRegions {
    fn of(&self, badge: Badge) -> Result<&SharedRegion, ()> {
        self.0
            .iter()
            .find(|(b, _)| *b == badge)
            .map(|(_, r)| r)
            .ok_or(())
    }
}

impl Regions for ClientRegions {
    fn size(&self, badge: Badge) -> u64 {
        self.of(badge).map_or(0, |r| r.len())
    }

    fn read(&self, badge: Badge, offset: u64, buf: &mut [u8]) -> Result<(), ()> {
        self.of(badge)?.read(offset, buf).map_err(|_| ())
    }

    fn write(&self, badge: Badge, offset: u64, data: &[u8]) -> Result<(), ()> {
        self.of(badge)?.write(offset, data).map_err(|_| ())
    }
}

/// File protocol methods that only read: run without waiting for the disk
/// and parked on a miss (a failed run changes no offset or cookie).
const READ_ONLY: [u64; 6] = [3, 6, 7, 8, 9, 16];

/// After how many requests answered while others were parked the VFS says
/// so (once each).
const REPORT_AT: [u64; 3] = [1, 10, 100];

/// A call that waits for the disk: its reply capability saved in `slot`,
/// its words kept to run it again.
struct Parked {
    badge: Badge,
    slot: u64,
    req: Msg,
    words: Words,
    /// Times it was run again without completing.
    tries: u32,
}

/// Runs of a parked call after which it waits for the disk: parked calls
/// whose reads evict each other's lines from a small cache still finish.
const TRIES: u32 = 64;

/// Passes of [`Server::progress`] with no read in flight for the parked
/// calls (none could be sent) before they wait for the disk.
const PASSES: u32 = 4;

/// A request's words, kept apart from the IPC buffer: dispatch reads the
/// request from here and writes its reply into the IPC buffer, where the
/// reply must be (`ReplyRecv`, or `reply_saved` for a parked call). Only
/// the message's own words are copied, nothing is zeroed.
struct Words(heapless::Vec<u64, MSG_MAX>);

impl Words {
    /// `req`'s words past the registers, from the IPC buffer (the first
    /// `REGISTER_WORDS` are in `req` itself and read as 0 here).
    fn of(req: &Msg) -> Words {
        let n = req.len.min(MSG_MAX);
        Words(
            (0..n)
                .map(|i| {
                    if i < REGISTER_WORDS {
                        0
                    } else {
                        IpcBuffer.mr(i)
                    }
                })
                .collect(),
        )
    }
}

impl MessageBuffer for Words {
    fn mr(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    fn set_mr(&self, i: usize, w: u64) {
        IpcBuffer.set_mr(i, w);
    }
}

/// The VFS's request loop state.
struct Server {
    service: Service<ClientRegions>,
    io: Rc<RefCell<Io>>,
    cnode: kaal_sel4::cap::CNode,
    free_slots: Vec<u64>,
    parked: Vec<Parked>,
    answered_while_parked: u64,
    /// The TSC's rate, for the wall clock that stamps files' times (none:
    /// times stay where the file systems had them).
    clock: Option<kaal_rt::time::Clock>,
}

impl Server {
    /// Runs `req` (words past the registers in `words`) with reads that
    /// wait or not; the reply (its words in the IPC buffer), and whether it
    /// hit a read in flight (then the reply is void).
    fn run(&mut self, badge: Badge, req: &Msg, words: &Words, blocking: bool) -> (Msg, bool) {
        self.io.borrow_mut().start(blocking);
        if let Some(c) = self.clock {
            self.service
                .set_time(c.wall_secs(kaal_rt::time::Instant::now()));
        }
        let reply = file_dispatch(&mut self.service, badge, req, words);
        (reply, self.io.borrow().blocked)
    }

    /// A call: answered now, or parked until its reads arrived (`None`).
    fn call(&mut self, badge: Badge, req: &Msg) -> Option<Msg> {
        // A client has one call outstanding: a parked one of the same
        // badge belonged to a run of it that is gone (the kernel deleted
        // its reply capability).
        if let Some(k) = self.parked.iter().position(|p| p.badge == badge) {
            let p = self.parked.remove(k);
            self.free_slots.push(p.slot);
        }
        let words = Words::of(req);
        let read_only = READ_ONLY.contains(&req.label);
        let (mut reply, blocked) = self.run(badge, req, &words, !read_only);
        if blocked {
            if let Some(slot) = self.free_slots.pop() {
                // The CNode capability has no guard: slots are CSPACE_BITS deep.
                if self
                    .cnode
                    .save_caller(slot, kaal_rt::start::CSPACE_BITS)
                    .is_ok()
                {
                    self.parked.push(Parked {
                        badge,
                        slot,
                        req: *req,
                        words,
                        tries: 0,
                    });
                    self.progress();
                    return None;
                }
                self.free_slots.push(slot);
            }
            // Nowhere to keep the caller: wait for the disk, as before.
            (reply, _) = self.run(badge, req, &words, true);
        }
        if !self.parked.is_empty() {
            self.answered_while_parked += 1;
            if REPORT_AT.contains(&self.answered_while_parked) {
                let n = self.answered_while_parked;
                println!(
                    "vfs: {n} request{} answered while others were parked ({} parked now)",
                    if n == 1 { "" } else { "s" },
                    self.parked.len()
                );
            }
            // A call that may have waited for the disk (taking the
            // responses and the signal meant for the parked ones), or that
            // dropped their arrived reads: see to them before the next
            // receive. A read-only call answered from the cache touched
            // neither.
            let dropped = self.io.borrow_mut().reads.take_dropped();
            if !read_only || dropped || self.io.borrow().waited {
                // The parked calls' replies go through the IPC buffer too:
                // keep this one's words and put them back after.
                let kept = Words::of(&reply);
                self.progress();
                for i in REGISTER_WORDS..kept.0.len() {
                    IpcBuffer.set_mr(i, kept.mr(i));
                }
            }
        }
        Some(reply)
    }

    /// Runs the parked calls again, in order; answers those that complete.
    /// One run `TRIES` times already (or every one, with `wait`) runs with
    /// reads that wait, and so completes.
    fn rerun(&mut self, wait: bool) {
        let mut k = 0;
        while let Some(p) = self.parked.get_mut(k) {
            p.tries += 1;
            let blocking = wait || p.tries > TRIES;
            let (badge, req, slot) = (p.badge, p.req, p.slot);
            let words = core::mem::replace(&mut p.words, Words(heapless::Vec::new()));
            let (reply, blocked) = self.run(badge, &req, &words, blocking);
            if blocked {
                if let Some(p) = self.parked.get_mut(k) {
                    p.words = words;
                }
                k += 1;
                continue;
            }
            kaal_rpc::reply_saved(slot, &reply);
            self.parked.remove(k);
            self.free_slots.push(slot);
        }
    }

    /// The driver signalled: see to the parked calls.
    fn signal(&mut self) {
        self.progress();
    }

    /// Takes what arrived and runs the parked calls until each is answered
    /// or waits for a read in flight with the driver's signal armed, so no
    /// response goes unseen: one taken while the calls ran (by another
    /// call's read) is there to take on the next pass; one that came
    /// before the arm makes the arm say so. When no read is in flight for
    /// them (none could be sent) or the ring fails, they wait for the disk.
    fn progress(&mut self) {
        // Passes with no read in flight for the parked calls; a pass that
        // found a response waiting took it, and each call runs at most
        // `TRIES` times without waiting, so the loop ends.
        let mut idle = 0;
        while idle < PASSES {
            let _ = self.io.borrow_mut().drain();
            self.rerun(false);
            if self.parked.is_empty() {
                return;
            }
            let armed = {
                let mut io = self.io.borrow_mut();
                io.reads.any_in_flight().then(|| io.client.arm())
            };
            match armed {
                // The signal will come.
                Some(Ok(false)) => return,
                // A response came meanwhile: take it.
                Some(Ok(true)) => {}
                // None in flight (none could be sent): try again, then wait.
                None => idle += 1,
                Some(Err(_)) => break,
            }
        }
        self.rerun(true);
    }
}

fn main(env: &Env) -> Result<(), StartError> {
    let mut client = BlockClient::new(env).map_err(StartError::Block)?;
    let sectors = client.capacity().map_err(StartError::Block)?;
    let storage = env.private_memory("cache").map_err(StartError::Cap)?;
    let cache_bytes = storage.len();
    let can_wait_later = client.data.len() >= (SLOTS * TRANSFER) as u64;
    let io = Rc::new(RefCell::new(Io {
        client,
        sectors,
        reads: Reads::default(),
        can_wait_later,
        blocking: true,
        blocked: false,
        waited: false,
    }));
    // Lines of the file system's block size keep its write order (the
    // cache orders whole lines): mount once to learn the size, then again
    // on lines of that size.
    let cache = BlockCache::new(BlockDisk(io.clone()), storage, FIRST_LINE_BYTES)
        .map_err(StartError::Cache)?;
    let probe = ext2::Ext2::mount(cache).map_err(StartError::Mount)?;
    let block = probe.block_size() as usize;
    let (disk, storage) = probe.into_device().into_parts();
    let cache = BlockCache::new(disk, storage, block).map_err(StartError::Cache)?;
    let root = ext2::Ext2::mount(cache).map_err(StartError::Mount)?;
    if let Some(why) = root.read_only() {
        println!("{}: the disk is mounted read-only: {why}", env.name());
    }
    let mut vfs = Vfs::new();
    vfs.mount(b"/", Box::new(root)).map_err(StartError::Tmp)?;
    // The RAM file system covers the disk's /tmp; a disk without one has
    // no /tmp (the VFS does not change a disk it was not asked to).
    let tmp = match vfs.stat(b"/tmp", true) {
        Ok(_) => {
            vfs.mount(b"/tmp", Box::new(RamFs::new(env.heap_size() / TMP_SHARE)))
                .map_err(StartError::Tmp)?;
            "a RAM file system at /tmp"
        }
        Err(_) => "no /tmp (the disk has no such directory)",
    };
    let regions = ClientRegions(env.client_regions("fs").map_err(StartError::Cap)?.collect());
    let clients = regions.0.len();
    let ep = env.server("fs").map_err(StartError::Cap)?;
    let (cnode, slots) = env.reply_slots("fs").map_err(StartError::Cap)?;
    println!(
        "{}: serving ext2 ({} sectors, {block}-byte blocks, {} KiB cache) at / and {tmp} to {clients} clients (restarts: {})",
        env.name(),
        sectors,
        cache_bytes / 1024,
        env.restarts()
    );
    let server = RefCell::new(Server {
        service: Service::new(vfs, regions),
        io,
        cnode,
        free_slots: slots.rev().collect(),
        parked: Vec::new(),
        answered_while_parked: 0,
        clock: env.clock(),
    });
    kaal_rpc::serve_parking(
        ep,
        |_| server.borrow_mut().signal(),
        |badge, req, _| server.borrow_mut().call(badge, req),
    )
}

kaal_rt::component!(main);
