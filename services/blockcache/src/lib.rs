//! A write-back block cache between a file system and a disk: LRU lines in
//! caller-given storage, write-back in crash-safe class order, sequential
//! read-ahead.
//!
//! [`BlockCache`] serves `ext2::BlockDevice` (byte ranges) over a [`Disk`]
//! (512-byte sectors, at most [`Disk::max_transfer`] bytes per request).
//! The cached bytes live in a caller-given region (`storage`, which the
//! system manifest sizes); the per-line bookkeeping is on the heap.
//!
//! Writes stay in the cache until [`BlockDevice::flush`] (or a miss that
//! needs a line when the least recently used one is dirty). Write-back then
//! writes every dirty line, one [`WriteClass`] after the other in the
//! enum's order: file data, indirect blocks, inode tables, directories,
//! bitmaps, group descriptors, superblock. A crash part-way leaves data
//! before the pointers to it and the summaries (which `e2fsck` recomputes)
//! last. A single dirty line is never written out of that order: a miss
//! that must evict a dirty line writes back everything first. Only
//! [`BlockDevice::write_now`] goes ahead of it, for a new block nothing
//! points at yet. The order holds against the caller stopping at any
//! point, and against power loss only on a disk that completes writes in
//! the order sent (the disk is flushed at the end of a flush, not between
//! classes).
//!
//! A line's class is the class of the latest write to it. With lines of the
//! file system's block size a line is one block, whose class changes only
//! when the block is freed and used again; its latest use is then what the
//! write must be ordered as (a freed directory block reused for data is
//! data). Lines larger than blocks mix blocks, and the order inside such a
//! line is lost: give the cache lines of the file system's block size.
//! Within a class lines go in address order, so ext2's order inside one
//! class (a rename's new name before the old one goes) is not kept; see
//! the README for what a crash can then leave.
//!
//! Reads that miss on the line after the previous access, or after the last
//! line the previous miss loaded, are sequential (metadata hits in between,
//! such as ext2's indirect blocks, do not break a run): the cache then also
//! reads the lines that follow, in the same
//! request, doubling the run up to the disk's largest transfer. Read-ahead
//! stops at a line already cached (clean or dirty), so it never replaces
//! newer bytes, and takes only clean or free lines (it never forces a
//! write-back).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod inflight;
mod memdisk;

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

pub use ext2::{BlockDevice, IoError, WriteClass};
pub use memdisk::{DiskOp, MemDisk, DEFAULT_MAX_TRANSFER};

/// Bytes of a disk sector.
pub const SECTOR: usize = 512;

/// A disk of 512-byte sectors.
pub trait Disk {
    /// The disk's size in sectors.
    fn sectors(&self) -> u64;
    /// Fills `buf` (whole sectors, at most [`Self::max_transfer`] bytes)
    /// from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (whole sectors, at most [`Self::max_transfer`] bytes)
    /// from `sector` on.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Makes the writes so far durable.
    fn flush(&mut self) -> Result<(), IoError>;
    /// The most bytes one read or write may move.
    fn max_transfer(&self) -> usize;
}

/// Why a cache cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The line size is 0 or not a multiple of [`SECTOR`].
    LineSize,
    /// The storage holds no whole line.
    Storage,
    /// The disk's largest transfer is smaller than a line.
    Transfer,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LineSize => "cache line size must be a positive multiple of 512",
            Self::Storage => "cache storage holds no whole line",
            Self::Transfer => "the disk's largest transfer is smaller than a cache line",
        })
    }
}

/// What the cache did, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Line lookups served from the cache.
    pub hits: u64,
    /// Line lookups that had to load (or, for a whole-line write, claim) a line.
    pub misses: u64,
    /// Disk read requests.
    pub disk_reads: u64,
    /// Disk write requests.
    pub disk_writes: u64,
    /// Lines read ahead of demand.
    pub read_ahead_lines: u64,
    /// Ordered write-back passes (by a flush or forced by a miss) that
    /// found dirty lines.
    pub writebacks: u64,
    /// Lines written back.
    pub lines_written: u64,
}

/// No slot: the end of the LRU list.
const NIL: u32 = u32::MAX;

/// The bookkeeping of one slot of the storage.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Which line of the disk it holds (valid while in the index).
    line: u64,
    /// The LRU list: towards the most and the least recently used.
    prev: u32,
    next: u32,
    /// The class of the latest write, while the slot holds unwritten bytes.
    dirty: Option<WriteClass>,
}

/// A write-back cache of `line_bytes`-byte lines of a [`Disk`], its data in
/// `storage`. See the crate documentation for the write-back order.
pub struct BlockCache<D, S> {
    disk: D,
    storage: S,
    line_bytes: usize,
    disk_bytes: u64,
    lines_on_disk: u64,
    /// Lines one disk request may move.
    max_lines: usize,
    slots: Vec<Slot>,
    /// Disk line → slot.
    index: BTreeMap<u64, u32>,
    /// Most recently used slot, and least.
    head: u32,
    tail: u32,
    free: Vec<u32>,
    dirty: usize,
    /// Staging for requests of several lines (their slots are not adjacent).
    bounce: Vec<u8>,
    /// The last line the latest miss loaded (the end of its read-ahead):
    /// a miss right after it continues the run even when other lines were
    /// hit in between, as ext2 hits an indirect block before each data
    /// block it maps.
    last_miss: Option<u64>,
    last_access: Option<u64>,
    /// Lines the last read miss fetched: the read-ahead window grows from it.
    run: usize,
    stats: CacheStats,
}

impl<D, S> fmt::Debug for BlockCache<D, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("line_bytes", &self.line_bytes)
            .field("lines", &self.slots.len())
            .field("cached", &self.index.len())
            .field("dirty", &self.dirty)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<D: Disk, S: AsMut<[u8]> + AsRef<[u8]>> BlockCache<D, S> {
    /// A cache of `disk` holding as many `line_bytes`-byte lines as
    /// `storage` has room for. `line_bytes` should be the file system's
    /// block size (see the crate documentation).
    pub fn new(disk: D, storage: S, line_bytes: usize) -> Result<Self, ConfigError> {
        if line_bytes == 0 || !line_bytes.is_multiple_of(SECTOR) {
            return Err(ConfigError::LineSize);
        }
        // Slot numbers are u32 with NIL reserved.
        let count = (storage.as_ref().len() / line_bytes).min(NIL as usize - 1);
        if count == 0 {
            return Err(ConfigError::Storage);
        }
        let max_lines = disk.max_transfer() / line_bytes;
        if max_lines == 0 {
            return Err(ConfigError::Transfer);
        }
        let disk_bytes = disk.sectors().saturating_mul(SECTOR as u64);
        let staged = max_lines.min(count);
        let bounce = if staged > 1 {
            vec![0; staged * line_bytes]
        } else {
            Vec::new()
        };
        let empty = Slot {
            line: 0,
            prev: NIL,
            next: NIL,
            dirty: None,
        };
        Ok(Self {
            disk,
            storage,
            line_bytes,
            disk_bytes,
            lines_on_disk: disk_bytes.div_ceil(line_bytes as u64),
            max_lines,
            slots: vec![empty; count],
            index: BTreeMap::new(),
            head: NIL,
            tail: NIL,
            // Popped from the end: slot 0 first.
            free: (0..count as u32).rev().collect(),
            dirty: 0,
            bounce,
            last_miss: None,
            last_access: None,
            run: 1,
            stats: CacheStats::default(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Lines the storage holds.
    pub fn capacity_lines(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of a line.
    pub fn line_bytes(&self) -> usize {
        self.line_bytes
    }

    /// Lines holding writes not yet on the disk.
    pub fn dirty_lines(&self) -> usize {
        self.dirty
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk, to change it under the cache (tests inject failures).
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Gives back the disk and the storage; unwritten lines are dropped
    /// (flush first).
    pub fn into_parts(self) -> (D, S) {
        (self.disk, self.storage)
    }

    /// Bytes of line `line` (the disk's last line may be shorter).
    fn line_len(&self, line: u64) -> usize {
        let start = line.saturating_mul(self.line_bytes as u64);
        let left = self.disk_bytes.saturating_sub(start);
        usize::try_from(left).map_or(self.line_bytes, |left| left.min(self.line_bytes))
    }

    /// Where slot `slot` lies in the storage, `len` bytes of it.
    fn slot_range(&self, slot: u32, len: usize) -> Range<usize> {
        let start = slot as usize * self.line_bytes;
        start..start + len
    }

    fn first_sector(&self, line: u64) -> u64 {
        line.saturating_mul((self.line_bytes / SECTOR) as u64)
    }

    fn set_prev(&mut self, slot: u32, prev: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.prev = prev;
        }
    }

    fn set_next(&mut self, slot: u32, next: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.next = next;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = self
            .slots
            .get(slot as usize)
            .map_or((NIL, NIL), |s| (s.prev, s.next));
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.set_prev(next, prev);
        }
        self.set_prev(slot, NIL);
        self.set_next(slot, NIL);
    }

    fn push_front(&mut self, slot: u32) {
        let old = self.head;
        self.set_prev(slot, NIL);
        self.set_next(slot, old);
        if old == NIL {
            self.tail = slot;
        } else {
            self.set_prev(old, slot);
        }
        self.head = slot;
    }

    fn is_dirty(&self, slot: u32) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|s| s.dirty.is_some())
    }

    /// A slot to load a line into: a free one, else the least recently
    /// used, written back first (everything, in order) when dirty and
    /// `may_write_back`; `None` if that would take a write-back.
    fn take_slot(&mut self, may_write_back: bool) -> Result<Option<u32>, IoError> {
        if let Some(slot) = self.free.pop() {
            return Ok(Some(slot));
        }
        let victim = self.tail;
        if victim == NIL {
            return Ok(None);
        }
        if self.is_dirty(victim) {
            if !may_write_back {
                return Ok(None);
            }
            self.write_back()?;
        }
        self.unlink(victim);
        if let Some(line) = self.slots.get(victim as usize).map(|s| s.line) {
            self.index.remove(&line);
        }
        Ok(Some(victim))
    }

    /// The slot holding line `line`, loaded when missing: read from the
    /// disk when `fill` (else the caller overwrites all of it), with
    /// read-ahead when `read_ahead` and the miss is sequential.
    fn line(&mut self, line: u64, fill: bool, read_ahead: bool) -> Result<u32, IoError> {
        if let Some(&slot) = self.index.get(&line) {
            self.stats.hits += 1;
            self.unlink(slot);
            self.push_front(slot);
            self.last_access = Some(line);
            return Ok(slot);
        }
        self.stats.misses += 1;
        // A failed read (a disk that does not wait) leaves the run as it
        // was, so the same access asks for the same range again.
        let before = (self.last_miss, self.last_access, self.run);
        let sequential = line
            .checked_sub(1)
            .is_some_and(|prev| self.last_miss == Some(prev) || self.last_access == Some(prev));
        self.last_miss = Some(line);
        self.last_access = Some(line);
        let first = match self.take_slot(true) {
            Ok(Some(slot)) => slot,
            Ok(None) => return Err(IoError::Device),
            Err(e) => {
                (self.last_miss, self.last_access, self.run) = before;
                return Err(e);
            }
        };
        let mut taken = vec![first];
        if fill {
            if read_ahead {
                self.run = if sequential {
                    self.run.saturating_mul(2).clamp(2, self.max_lines)
                } else {
                    1
                };
                let want = self.run.min(self.bounce.len() / self.line_bytes).max(1);
                while taken.len() < want {
                    let next = line + taken.len() as u64;
                    if next >= self.lines_on_disk || self.index.contains_key(&next) {
                        break;
                    }
                    match self.take_slot(false) {
                        Ok(Some(slot)) => taken.push(slot),
                        _ => break,
                    }
                }
            }
            if let Err(err) = self.read_lines(line, &taken) {
                // Nothing is cached from a failed read.
                self.free.extend(taken);
                (self.last_miss, self.last_access, self.run) = before;
                return Err(err);
            }
            self.stats.read_ahead_lines += taken.len() as u64 - 1;
            self.last_miss = Some(line + taken.len() as u64 - 1);
        }
        // The demanded line last, so it is the most recently used.
        for (i, &slot) in taken.iter().enumerate().rev() {
            let at = line + i as u64;
            if let Some(s) = self.slots.get_mut(slot as usize) {
                s.line = at;
                s.dirty = None;
            }
            self.index.insert(at, slot);
            self.push_front(slot);
        }
        Ok(first)
    }

    /// The storage range of `slots` when each follows the one before it
    /// there, `total` bytes from the first.
    fn adjacent(&self, slots: &[u32], total: usize) -> Option<Range<usize>> {
        let &first = slots.first()?;
        let in_order = slots.iter().zip(first..).all(|(&slot, want)| slot == want);
        in_order.then(|| self.slot_range(first, total))
    }

    /// Reads lines `first`.. into `slots`, one disk request.
    fn read_lines(&mut self, first: u64, slots: &[u32]) -> Result<(), IoError> {
        let sector = self.first_sector(first);
        self.stats.disk_reads += 1;
        if let [slot] = slots {
            let range = self.slot_range(*slot, self.line_len(first));
            let dst = self
                .storage
                .as_mut()
                .get_mut(range)
                .ok_or(IoError::Device)?;
            return self.disk.read(sector, dst);
        }
        let lens: Vec<usize> = (0..slots.len() as u64)
            .map(|i| self.line_len(first + i))
            .collect();
        let total: usize = lens.iter().sum();
        // Slots side by side in the storage (a cold cache hands them out in
        // order) take the disk's bytes directly: no copy through the bounce.
        if let Some(range) = self.adjacent(slots, total) {
            let dst = self
                .storage
                .as_mut()
                .get_mut(range)
                .ok_or(IoError::Device)?;
            return self.disk.read(sector, dst);
        }
        let staged = self.bounce.get_mut(..total).ok_or(IoError::Device)?;
        self.disk.read(sector, staged)?;
        let mut at = 0;
        for (&slot, &len) in slots.iter().zip(&lens) {
            let range = self.slot_range(slot, len);
            let src = self.bounce.get(at..at + len).ok_or(IoError::Device)?;
            self.storage
                .as_mut()
                .get_mut(range)
                .ok_or(IoError::Device)?
                .copy_from_slice(src);
            at += len;
        }
        Ok(())
    }

    /// Writes lines `first`.. from `slots`, one disk request.
    fn write_lines(&mut self, first: u64, slots: &[u32]) -> Result<(), IoError> {
        let sector = self.first_sector(first);
        self.stats.disk_writes += 1;
        if let [slot] = slots {
            let range = self.slot_range(*slot, self.line_len(first));
            let src = self.storage.as_ref().get(range).ok_or(IoError::Device)?;
            return self.disk.write(sector, src);
        }
        let total: usize = (0..slots.len() as u64)
            .map(|i| self.line_len(first + i))
            .sum();
        if let Some(range) = self.adjacent(slots, total) {
            let src = self.storage.as_ref().get(range).ok_or(IoError::Device)?;
            return self.disk.write(sector, src);
        }
        let mut total = 0;
        for (i, &slot) in slots.iter().enumerate() {
            let len = self.line_len(first + i as u64);
            let range = self.slot_range(slot, len);
            let src = self.storage.as_ref().get(range).ok_or(IoError::Device)?;
            self.bounce
                .get_mut(total..total + len)
                .ok_or(IoError::Device)?
                .copy_from_slice(src);
            total += len;
        }
        let staged = self.bounce.get(..total).ok_or(IoError::Device)?;
        self.disk.write(sector, staged)
    }

    /// Writes every dirty line back, class by class in [`WriteClass`]
    /// order, by address within a class; adjacent lines of one class go in
    /// one request. On a failure the lines not yet written stay dirty.
    fn write_back(&mut self) -> Result<(), IoError> {
        if self.dirty == 0 {
            return Ok(());
        }
        self.stats.writebacks += 1;
        let mut order: Vec<(WriteClass, u64, u32)> = self
            .slots
            .iter()
            .zip(0u32..)
            .filter_map(|(s, slot)| s.dirty.map(|class| (class, s.line, slot)))
            .collect();
        order.sort_unstable_by_key(|&(class, line, _)| (class, line));
        let per_request = self
            .max_lines
            .min(self.bounce.len() / self.line_bytes)
            .max(1);
        let mut rest = order.as_slice();
        while let Some(&(class, first, _)) = rest.first() {
            let mut n = 1;
            while n < per_request
                && rest
                    .get(n)
                    .is_some_and(|&(c, line, _)| c == class && line == first + n as u64)
            {
                n += 1;
            }
            let (run, after) = rest.split_at_checked(n).ok_or(IoError::Device)?;
            let slots: Vec<u32> = run.iter().map(|&(_, _, slot)| slot).collect();
            self.write_lines(first, &slots)?;
            for &slot in &slots {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    s.dirty = None;
                }
            }
            self.dirty = self.dirty.saturating_sub(slots.len());
            self.stats.lines_written += slots.len() as u64;
            rest = after;
        }
        Ok(())
    }

    /// Refuses a range that does not lie inside the disk.
    fn check(&self, offset: u64, len: usize) -> Result<(), IoError> {
        let end = offset.checked_add(len as u64).ok_or(IoError::OutOfBounds)?;
        if end > self.disk_bytes {
            return Err(IoError::OutOfBounds);
        }
        Ok(())
    }
}

impl<D: Disk, S: AsMut<[u8]> + AsRef<[u8]>> BlockDevice for BlockCache<D, S> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check(offset, buf.len())?;
        let line_bytes = self.line_bytes as u64;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let line = pos / line_bytes;
            let within = (pos % line_bytes) as usize;
            let chunk = (self.line_bytes - within).min(buf.len() - done);
            let slot = self.line(line, true, true)?;
            let range = self.slot_range(slot, within + chunk);
            let src = self
                .storage
                .as_ref()
                .get(range.start + within..range.end)
                .ok_or(IoError::Device)?;
            buf.get_mut(done..done + chunk)
                .ok_or(IoError::OutOfBounds)?
                .copy_from_slice(src);
            done += chunk;
        }
        Ok(())
    }

    /// A write without a class is `Data`: a caller that classifies nothing
    /// gets a plain write-back in address order.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write_class(offset, buf, WriteClass::Data)
    }

    fn write_class(&mut self, offset: u64, buf: &[u8], class: WriteClass) -> Result<(), IoError> {
        self.check(offset, buf.len())?;
        let line_bytes = self.line_bytes as u64;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let line = pos / line_bytes;
            let within = (pos % line_bytes) as usize;
            let chunk = (self.line_bytes - within).min(buf.len() - done);
            // A write of the whole line needs nothing from the disk.
            let whole = within == 0 && chunk == self.line_len(line);
            let slot = self.line(line, !whole, false)?;
            let range = self.slot_range(slot, within + chunk);
            let src = buf.get(done..done + chunk).ok_or(IoError::OutOfBounds)?;
            self.storage
                .as_mut()
                .get_mut(range.start + within..range.end)
                .ok_or(IoError::Device)?
                .copy_from_slice(src);
            if let Some(s) = self.slots.get_mut(slot as usize) {
                if s.dirty.is_none() {
                    self.dirty += 1;
                }
                s.dirty = Some(class);
            }
            done += chunk;
        }
        Ok(())
    }

    /// Caches the write, then writes each line it covers whole to the disk
    /// now and marks it clean: ext2 sends a new block's first content this
    /// way so that it precedes the pointer to it whatever their classes.
    /// Writing one line ahead of the order is safe as nothing points at
    /// it yet. A line covered in part (lines larger than blocks) holds
    /// other bytes whose order must hold: it stays dirty.
    fn write_now(&mut self, offset: u64, buf: &[u8], class: WriteClass) -> Result<(), IoError> {
        self.write_class(offset, buf, class)?;
        let line_bytes = self.line_bytes as u64;
        let end = offset + buf.len() as u64;
        for line in offset.div_ceil(line_bytes)..end.div_ceil(line_bytes) {
            let start = line * line_bytes;
            let whole = start + self.line_len(line) as u64 <= end;
            let slot = match self.index.get(&line) {
                Some(&slot) if whole && self.is_dirty(slot) => slot,
                _ => continue,
            };
            self.write_lines(line, &[slot])?;
            if let Some(s) = self.slots.get_mut(slot as usize) {
                s.dirty = None;
            }
            self.dirty = self.dirty.saturating_sub(1);
            self.stats.lines_written += 1;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.disk_bytes
    }

    /// Writes every dirty line back in class order, then flushes the disk.
    fn flush(&mut self) -> Result<(), IoError> {
        self.write_back()?;
        self.disk.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's memory figures: 24 bytes of bookkeeping per line, plus
    /// the index entry and the free list's slot number.
    #[test]
    fn a_line_costs_24_bytes_of_bookkeeping() {
        assert_eq!(core::mem::size_of::<Slot>(), 24);
    }
}
