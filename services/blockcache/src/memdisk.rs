//! A disk in memory that records every operation: for tests, benchmarks
//! and crash replay (each write keeps its bytes).

use alloc::vec;
use alloc::vec::Vec;

use crate::{Disk, SECTOR};
use ext2::IoError;

/// One disk operation, as the disk saw it (successful ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOp {
    /// `sectors` sectors read from `sector`.
    Read { sector: u64, sectors: u64 },
    /// `data` written at `sector`.
    Write { sector: u64, data: Vec<u8> },
    /// A flush.
    Flush,
}

/// A disk of 512-byte sectors in memory. It refuses (with
/// `IoError::Device`) what the real disk would: transfers that are not
/// whole sectors or longer than its largest transfer.
#[derive(Debug, Clone)]
pub struct MemDisk {
    bytes: Vec<u8>,
    max_transfer: usize,
    log: Vec<DiskOp>,
    fail_reads: bool,
    fail_writes: bool,
}

/// The largest transfer of the virtio-blk client: 64 KiB.
pub const DEFAULT_MAX_TRANSFER: usize = 64 * 1024;

impl MemDisk {
    /// A disk holding `bytes`, padded with zeros to whole sectors.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Self {
        bytes.resize(bytes.len().div_ceil(SECTOR) * SECTOR, 0);
        Self {
            bytes,
            max_transfer: DEFAULT_MAX_TRANSFER,
            log: Vec::new(),
            fail_reads: false,
            fail_writes: false,
        }
    }

    /// A disk of `sectors` zero sectors.
    pub fn zeroed(sectors: usize) -> Self {
        Self::from_bytes(vec![0; sectors.saturating_mul(SECTOR)])
    }

    /// The same disk with another largest transfer (rounded down to sectors).
    pub fn with_max_transfer(mut self, bytes: usize) -> Self {
        self.max_transfer = bytes / SECTOR * SECTOR;
        self
    }

    /// The disk's contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the contents back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The operations so far.
    pub fn log(&self) -> &[DiskOp] {
        &self.log
    }

    /// The operations so far, leaving the log empty.
    pub fn take_log(&mut self) -> Vec<DiskOp> {
        core::mem::take(&mut self.log)
    }

    /// Makes every read fail (`IoError::Device`) until cleared.
    pub fn set_fail_reads(&mut self, fail: bool) {
        self.fail_reads = fail;
    }

    /// Makes every write fail (`IoError::Device`) until cleared.
    pub fn set_fail_writes(&mut self, fail: bool) {
        self.fail_writes = fail;
    }

    fn range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        if !len.is_multiple_of(SECTOR) || len > self.max_transfer {
            return Err(IoError::Device);
        }
        let start = usize::try_from(sector)
            .ok()
            .and_then(|s| s.checked_mul(SECTOR))
            .ok_or(IoError::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(IoError::OutOfBounds)?;
        if end > self.bytes.len() {
            return Err(IoError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl Disk for MemDisk {
    fn sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR) as u64
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if self.fail_reads {
            return Err(IoError::Device);
        }
        let range = self.range(sector, buf.len())?;
        buf.copy_from_slice(self.bytes.get(range).ok_or(IoError::OutOfBounds)?);
        self.log.push(DiskOp::Read {
            sector,
            sectors: (buf.len() / SECTOR) as u64,
        });
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if self.fail_writes {
            return Err(IoError::Device);
        }
        let range = self.range(sector, buf.len())?;
        self.bytes
            .get_mut(range)
            .ok_or(IoError::OutOfBounds)?
            .copy_from_slice(buf);
        self.log.push(DiskOp::Write {
            sector,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        if self.fail_writes {
            return Err(IoError::Device);
        }
        self.log.push(DiskOp::Flush);
        Ok(())
    }

    fn max_transfer(&self) -> usize {
        self.max_transfer
    }
}
