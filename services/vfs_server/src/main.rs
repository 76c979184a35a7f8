//! The VFS component: the ext2 file system on the block driver's disk at
//! `/` (through a write-back block cache in the manifest's `cache` memory),
//! a RAM file system at `/tmp`, served to every client of its `fs` endpoint
//! (the file protocol; each client's data in the region it lends).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use blockcache::{BlockCache, Disk, IoError};
use kaal_client::block::{BlockClient, BlockError};
use kaal_protocols::block::{op, SECTOR};
use kaal_protocols::file::file_dispatch;
use kaal_rpc::Badge;
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

/// The block driver as the cache's disk.
struct BlockDisk {
    client: BlockClient,
    sectors: u64,
}

impl BlockDisk {
    fn transfer(&mut self, what: u32, sector: u64, len: usize) -> Result<(), IoError> {
        let sectors = u32::try_from(len as u64 / SECTOR).map_err(|_| IoError::OutOfBounds)?;
        self.client
            .ok(what, sector, sectors, 0)
            .map(|_| ())
            .map_err(|_| IoError::Device)
    }
}

impl Disk for BlockDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.transfer(op::READ, sector, buf.len())?;
        self.client.data.read(0, buf).map_err(|_| IoError::Device)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.client
            .data
            .write(0, buf)
            .map_err(|_| IoError::Device)?;
        self.transfer(op::WRITE, sector, buf.len())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.client
            .ok(op::FLUSH, 0, 0, 0)
            .map(|_| ())
            .map_err(|_| IoError::Device)
    }

    fn max_transfer(&self) -> usize {
        TRANSFER.min(usize::try_from(self.client.data.len()).unwrap_or(TRANSFER))
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

fn main(env: &Env) -> Result<(), StartError> {
    let mut client = BlockClient::new(env).map_err(StartError::Block)?;
    let sectors = client.capacity().map_err(StartError::Block)?;
    let storage = env.private_memory("cache").map_err(StartError::Cap)?;
    let cache_bytes = storage.len();
    // Lines of the file system's block size keep its write order (the
    // cache orders whole lines): mount once to learn the size, then again
    // on lines of that size.
    let cache = BlockCache::new(BlockDisk { client, sectors }, storage, FIRST_LINE_BYTES)
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
    let mut service = Service::new(vfs, regions);
    println!(
        "{}: serving ext2 ({} sectors, {block}-byte blocks, {} KiB cache) at / and {tmp} to {clients} clients (restarts: {})",
        env.name(),
        sectors,
        cache_bytes / 1024,
        env.restarts()
    );
    kaal_rpc::serve(ep, |badge, req, buf| {
        file_dispatch(&mut service, badge, req, buf)
    })
}

kaal_rt::component!(main);
