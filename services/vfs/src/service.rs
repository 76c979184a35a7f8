//! The file protocol's server: each request of `kaal_protocols::file::File`
//! carried out on the [`Vfs`] for the calling client (its badge), with file
//! data moved between the file system and the client's lent region through
//! one bounce buffer, never through a reference into the client's memory.

use alloc::vec;
use alloc::vec::Vec;

use kaal_protocols::file::{flags, Attrs, DirRecord, File, FileStat, FsError};
use kaal_rpc::{Badge, Lent};

use crate::files::Files;
use crate::vfs::{Node, Vfs};

/// Bytes moved between a file and a region per step.
pub const BOUNCE_BYTES: usize = 64 << 10;

/// Each client's lent memory region, by badge. The seL4 component reads
/// and writes them with checked copies; tests use vectors.
pub trait Regions {
    /// The size of client `badge`'s region (0: it lends none).
    fn size(&self, badge: Badge) -> u64;
    /// Copies `buf.len()` bytes from `offset` of the region into `buf`.
    #[allow(clippy::result_unit_err)]
    fn read(&self, badge: Badge, offset: u64, buf: &mut [u8]) -> Result<(), ()>;
    /// Copies `data` to `offset` of the region.
    #[allow(clippy::result_unit_err)]
    fn write(&self, badge: Badge, offset: u64, data: &[u8]) -> Result<(), ()>;
}

/// The VFS as the file protocol's server.
#[derive(Debug)]
pub struct Service<R> {
    vfs: Vfs,
    files: Files,
    regions: R,
    /// Allocated once: every read, write and readdir goes through it.
    bounce: Vec<u8>,
}

/// Where in a region a chunk at `pos` of the lent range `lent` lies.
fn at(lent: Lent, pos: u64) -> Result<u64, FsError> {
    lent.offset().checked_add(pos).ok_or(FsError::BadRegion)
}

impl<R: Regions> Service<R> {
    /// Serves `vfs` to the clients whose regions `regions` reaches.
    pub fn new(vfs: Vfs, regions: R) -> Self {
        Service {
            vfs,
            files: Files::new(),
            regions,
            bounce: vec![0; BOUNCE_BYTES],
        }
    }

    /// The time (seconds since the epoch) stamped on what changes from now.
    pub fn set_time(&mut self, secs: u64) {
        self.vfs.set_time(secs);
    }

    /// Closes every descriptor of client `badge` (it went away).
    pub fn close_all(&mut self, badge: Badge) {
        self.files.close_all(badge);
    }

    /// After a request that may have removed `node`'s last name: its
    /// descriptors go stale if it is gone (no such inode, or no links),
    /// so none can reach a reused inode number or write to a freed inode.
    fn forget_if_gone(&mut self, node: Option<Node>) {
        let Some(node) = node else { return };
        if self.vfs.stat_node(node).is_ok_and(|s| s.links > 0) {
            return;
        }
        self.files.forget(node);
    }

    /// The name space (to mount more, or for tests).
    pub fn vfs(&mut self) -> &mut Vfs {
        &mut self.vfs
    }

    /// Every client's descriptors.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The clients' regions.
    pub fn regions(&self) -> &R {
        &self.regions
    }
}

impl<R: Regions> File for Service<R> {
    fn open(&mut self, badge: Badge, path: &[u8], flags: u32, mode: u32) -> Result<u32, FsError> {
        self.files.open(&mut self.vfs, badge, path, flags, mode)
    }

    fn close(&mut self, badge: Badge, fd: u32) -> Result<(), FsError> {
        self.files.close(badge, fd)
    }

    fn read(&mut self, badge: Badge, fd: u32, into: Lent) -> Result<u64, FsError> {
        let regions = &self.regions;
        self.files.read(
            &mut self.vfs,
            badge,
            fd,
            into.len(),
            &mut self.bounce,
            &mut |chunk, pos| {
                regions
                    .write(badge, at(into, pos)?, chunk)
                    .map_err(|()| FsError::BadRegion)
            },
        )
    }

    fn write(&mut self, badge: Badge, fd: u32, from: Lent) -> Result<u64, FsError> {
        let regions = &self.regions;
        self.files.write(
            &mut self.vfs,
            badge,
            fd,
            from.len(),
            &mut self.bounce,
            &mut |chunk, pos| {
                regions
                    .read(badge, at(from, pos)?, chunk)
                    .map_err(|()| FsError::BadRegion)
            },
        )
    }

    fn seek(&mut self, badge: Badge, fd: u32, offset: u64, whence: u32) -> Result<u64, FsError> {
        self.files.seek(&mut self.vfs, badge, fd, offset, whence)
    }

    fn stat(&mut self, _: Badge, path: &[u8]) -> Result<FileStat, FsError> {
        self.vfs.stat(path, true)
    }

    fn lstat(&mut self, _: Badge, path: &[u8]) -> Result<FileStat, FsError> {
        self.vfs.stat(path, false)
    }

    fn fstat(&mut self, badge: Badge, fd: u32) -> Result<FileStat, FsError> {
        let node = self.files.get(badge, fd)?.node;
        self.vfs.stat_node(node)
    }

    fn readdir(&mut self, badge: Badge, fd: u32, into: Lent) -> Result<u64, FsError> {
        let room = usize::try_from(into.len())
            .unwrap_or(usize::MAX)
            .min(self.bounce.len());
        let buf = self.bounce.get_mut(..room).unwrap_or_default();
        let mut filled = 0usize;
        let mut out = |ino, kind, name: &[u8]| {
            let record = DirRecord { ino, kind, name };
            match buf.get_mut(filled..).and_then(|rest| record.encode(rest)) {
                Some(n) => {
                    filled += n;
                    true
                }
                None => false,
            }
        };
        let next = self.files.readdir(&mut self.vfs, badge, fd, &mut out)?;
        if filled == 0 && next.is_some() {
            // Not even one record fits: 0 would read as the end.
            return Err(FsError::Invalid);
        }
        let records = self.bounce.get(..filled).unwrap_or_default();
        self.regions
            .write(badge, into.offset(), records)
            .map_err(|()| FsError::BadRegion)?;
        self.files.set_cookie(badge, fd, next)?;
        Ok(filled as u64)
    }

    fn mkdir(&mut self, _: Badge, path: &[u8], mode: u32) -> Result<(), FsError> {
        self.vfs
            .mkdir(path, u16::try_from(mode & 0o7777).unwrap_or(0))
    }

    fn rmdir(&mut self, _: Badge, path: &[u8]) -> Result<(), FsError> {
        let node = self.vfs.resolve(path, false).ok();
        let result = self.vfs.rmdir(path);
        self.forget_if_gone(node);
        result
    }

    fn unlink(&mut self, _: Badge, path: &[u8]) -> Result<(), FsError> {
        let node = self.vfs.resolve(path, false).ok();
        let result = self.vfs.unlink(path);
        self.forget_if_gone(node);
        result
    }

    fn rename(&mut self, _: Badge, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        // What `to` named may go.
        let node = self.vfs.resolve(to, false).ok();
        let result = self.vfs.rename(from, to);
        self.forget_if_gone(node);
        result
    }

    fn symlink(&mut self, _: Badge, target: &[u8], path: &[u8]) -> Result<(), FsError> {
        self.vfs.symlink(target, path)
    }

    fn link(&mut self, _: Badge, existing: &[u8], new: &[u8]) -> Result<(), FsError> {
        self.vfs.link(existing, new)
    }

    fn readlink(&mut self, badge: Badge, path: &[u8], into: Lent) -> Result<u64, FsError> {
        let target = self.vfs.read_link(path)?;
        let n = target
            .len()
            .min(usize::try_from(into.len()).unwrap_or(usize::MAX));
        let bytes = target.get(..n).unwrap_or_default();
        self.regions
            .write(badge, into.offset(), bytes)
            .map_err(|()| FsError::BadRegion)?;
        Ok(n as u64)
    }

    fn truncate(&mut self, badge: Badge, fd: u32, size: u64) -> Result<(), FsError> {
        self.files.truncate(&mut self.vfs, badge, fd, size)
    }

    fn setattr(&mut self, _: Badge, path: &[u8], flags: u32, attrs: Attrs) -> Result<(), FsError> {
        if flags & !flags::NO_FOLLOW != 0 {
            return Err(FsError::Invalid);
        }
        self.vfs
            .setattr(path, flags & flags::NO_FOLLOW == 0, &attrs)
    }

    fn fsetattr(&mut self, badge: Badge, fd: u32, attrs: Attrs) -> Result<(), FsError> {
        // Any access mode: fchmod and futimens need none.
        let node = self.files.get(badge, fd)?.node;
        self.vfs.setattr_node(node, &attrs)
    }

    fn sync(&mut self, _: Badge) -> Result<(), FsError> {
        self.vfs.sync()
    }

    fn begin(&mut self, badge: Badge) -> Result<(), FsError> {
        self.files.close_all(badge);
        Ok(())
    }

    fn lent_size(&self, badge: Badge) -> u64 {
        self.regions.size(badge)
    }
}
