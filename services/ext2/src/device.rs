//! The block device the file system sits on, and an in-memory one for tests.

use alloc::vec;
use alloc::vec::Vec;

/// Why a device access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    /// The range lies (partly) past the end of the device.
    OutOfBounds,
    /// The device reported a failure.
    Device,
    /// The bytes are on their way but not here yet: a device that does not
    /// wait says so, and the operation is run again once they arrived (a
    /// read-only one changes nothing before it fails).
    WouldBlock,
}

/// What a write holds, so that a write-back cache can order its writes
/// for a crash: data before the pointers to it, the summaries last. The
/// variants are in that order (the write-back order `Ord` gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WriteClass {
    /// File contents (and a slow symlink's target).
    Data,
    /// An indirect block: pointers to data or to other indirect blocks.
    Indirect,
    /// Inode records.
    InodeTable,
    /// Directory blocks: names pointing at inodes.
    Directory,
    /// Block and inode bitmaps.
    Bitmap,
    /// The group descriptor table.
    GroupDescriptors,
    /// The superblock.
    Superblock,
}

impl WriteClass {
    /// Every class, in write-back order.
    pub const ALL: [Self; 7] = [
        Self::Data,
        Self::Indirect,
        Self::InodeTable,
        Self::Directory,
        Self::Bitmap,
        Self::GroupDescriptors,
        Self::Superblock,
    ];
}

/// A device addressed in bytes. The file system reads and writes whole blocks
/// or parts of them; a device with larger sectors does the read-modify-write.
pub trait BlockDevice {
    /// Fills `buf` from the bytes at `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` to the bytes at `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Writes `buf` at `offset`, saying what it holds. The file system
    /// writes only through this; a device without a cache ignores the class.
    fn write_class(&mut self, offset: u64, buf: &[u8], class: WriteClass) -> Result<(), IoError> {
        let _ = class;
        self.write_at(offset, buf)
    }
    /// Writes `buf` at `offset` as `class`, and to the disk now, ahead of
    /// a cache's write-back order. For a new block that nothing points at
    /// yet, whose class would otherwise go after (a directory block, after
    /// the inode) or with (a table under a table) the pointer to it: the
    /// pointer stored next can then never reach the disk before the block.
    /// A device without a cache just writes.
    fn write_now(&mut self, offset: u64, buf: &[u8], class: WriteClass) -> Result<(), IoError> {
        self.write_class(offset, buf, class)
    }
    /// The device's size in bytes.
    fn size(&self) -> u64;
    /// Makes every write so far durable (a cache writes back, a disk
    /// flushes). Devices without a cache have nothing to do.
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// A device in memory: an image loaded whole, for tests and RAM disks.
#[derive(Debug, Clone, Default)]
pub struct MemDevice {
    bytes: Vec<u8>,
}

impl MemDevice {
    /// A device of `size` zero bytes.
    pub fn zeroed(size: usize) -> Self {
        Self {
            bytes: vec![0; size],
        }
    }

    /// A device holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The device's contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the contents back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        let start = usize::try_from(offset).map_err(|_| IoError::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(IoError::OutOfBounds)?;
        if end > self.bytes.len() {
            return Err(IoError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl BlockDevice for MemDevice {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let range = self.range(offset, buf.len())?;
        let src = self.bytes.get(range).ok_or(IoError::OutOfBounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let range = self.range(offset, buf.len())?;
        let dst = self.bytes.get_mut(range).ok_or(IoError::OutOfBounds)?;
        dst.copy_from_slice(buf);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_ranges_and_refuses_past_the_end() {
        let mut dev = MemDevice::zeroed(16);
        dev.write_at(4, &[1, 2, 3]).unwrap();
        let mut buf = [0; 4];
        dev.read_at(3, &mut buf).unwrap();
        assert_eq!(buf, [0, 1, 2, 3]);
        assert_eq!(dev.read_at(14, &mut buf), Err(IoError::OutOfBounds));
        assert_eq!(dev.write_at(u64::MAX, &[1]), Err(IoError::OutOfBounds));
        assert_eq!(dev.size(), 16);
    }
}
