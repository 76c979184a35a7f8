//! The mounted file system: inodes, file data through the block map,
//! directories, symlinks and path resolution.

use alloc::vec;
use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::dir::{walk_block, DirEntry, NAME_MAX};
use crate::error::{Error, Result};
use crate::inode::{FileType, Inode, Stat, DIRECT_BLOCKS, INLINE_BYTES, ROOT_INODE};
use crate::layout::le32;
use crate::superblock::{ro_compat, GroupDesc, Superblock, SUPERBLOCK_OFFSET};

/// Symbolic links followed in one path resolution before giving up (as Linux).
pub const SYMLINK_LIMIT: u32 = 40;
/// The longest path (or symlink target) resolved, in bytes.
pub const PATH_MAX: usize = 4096;

/// Bytes of the inode record this crate reads (the revision-0 inode).
const INODE_BYTES: usize = 128;

/// An ext2 file system on a device.
#[derive(Debug)]
pub struct Ext2<D> {
    pub(crate) dev: D,
    pub(crate) sb: Superblock,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) read_only: Option<&'static str>,
    /// Seconds since the epoch stamped on what is written.
    pub(crate) now: u32,
    /// Where the search for a free block starts: after the last one taken.
    pub(crate) block_goal: u32,
}

impl<D: BlockDevice> Ext2<D> {
    /// Reads and checks the superblock and the group descriptors. Refuses an
    /// image with an incompatible feature this crate lacks, naming it; mounts
    /// read-only (see [`Self::read_only`]) when a feature allows only reading.
    pub fn mount(mut dev: D) -> Result<Self> {
        let mut raw = [0u8; 1024];
        dev.read_at(SUPERBLOCK_OFFSET, &mut raw)?;
        let (sb, read_only) = Superblock::parse(&raw, dev.size())?;
        let groups = sb.read_groups(&mut dev)?;
        Ok(Self {
            dev,
            sb,
            groups,
            read_only,
            now: 0,
            block_goal: 0,
        })
    }

    /// The feature that makes this mount read-only, if any.
    pub fn read_only(&self) -> Option<&'static str> {
        self.read_only
    }

    /// The checked superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The checked group descriptors.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    /// The largest size a regular file may have: what the direct and the
    /// three indirect levels map (e2fsck's limit; a larger `i_size` is an
    /// error to it even when sparse), and 2 GiB without `large_file`.
    pub fn max_file_size(&self) -> u64 {
        let per_block = u64::from(self.sb.block_size / 4);
        let mapped = per_block
            .checked_pow(3)
            .and_then(|p3| p3.checked_add(per_block * per_block + per_block))
            .and_then(|blocks| blocks.checked_add(DIRECT_BLOCKS as u64))
            .and_then(|blocks| blocks.checked_mul(u64::from(self.sb.block_size)))
            .unwrap_or(u64::MAX);
        if self.sb.feature_ro_compat & crate::ro_compat::LARGE_FILE != 0 {
            mapped
        } else {
            mapped.min(u64::from(i32::MAX as u32))
        }
    }

    /// Unmounts, giving the device back.
    pub fn into_device(self) -> D {
        self.dev
    }

    pub(crate) fn block_offset(&self, block: u32) -> u64 {
        u64::from(block) * u64::from(self.sb.block_size)
    }

    /// Where inode `ino`'s record is on the device: checked against the
    /// inode count and the group table, never trusted.
    pub(crate) fn inode_offset(&self, ino: u32) -> Result<u64> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(Error::Corrupt("inode number out of range", ino.into()));
        }
        let index = ino - 1;
        let group = self
            .groups
            .get((index / self.sb.inodes_per_group) as usize)
            .ok_or(Error::Corrupt("inode's group", ino.into()))?;
        let within = u64::from(index % self.sb.inodes_per_group);
        Ok(self.block_offset(group.inode_table) + within * u64::from(self.sb.inode_size))
    }

    /// Reads inode `ino` from its group's table.
    pub(crate) fn inode(&mut self, ino: u32) -> Result<Inode> {
        let offset = self.inode_offset(ino)?;
        let mut raw = [0u8; INODE_BYTES];
        self.dev.read_at(offset, &mut raw)?;
        let large_file = self.sb.feature_ro_compat & ro_compat::LARGE_FILE != 0;
        let inode = Inode::parse(ino, &raw, large_file)?;
        if inode.stat.mode == 0 {
            return Err(Error::Corrupt("inode is free", ino.into()));
        }
        Ok(inode)
    }

    /// Mode, owner, size, link count and times of inode `ino`.
    pub fn stat(&mut self, ino: u32) -> Result<Stat> {
        Ok(self.inode(ino)?.stat)
    }

    /// Checks a block pointer read from the disk; 0 is a hole.
    pub(crate) fn pointer(&self, block: u32) -> Result<Option<u32>> {
        if block == 0 {
            return Ok(None);
        }
        self.sb
            .check_block(block, "block pointer outside the file system")?;
        Ok(Some(block))
    }

    /// The block holding logical block `logical` of `inode`, `None` for a hole.
    pub(crate) fn map_block(&mut self, inode: &Inode, logical: u64) -> Result<Option<u32>> {
        if let Some(&direct) = inode
            .block
            .get(logical as usize)
            .filter(|_| logical < DIRECT_BLOCKS as u64)
        {
            return self.pointer(direct);
        }
        let per_block = u64::from(self.sb.block_size / 4);
        let (depth, rest) = indirect_path(per_block, logical)?;
        let root = *inode
            .block
            .get(DIRECT_BLOCKS + depth as usize - 1)
            .ok_or(Error::Invalid)?;
        let mut block = root;
        for level in (0..depth).rev() {
            let Some(table) = self.pointer(block)? else {
                return Ok(None);
            };
            let index = (rest / per_block.pow(level)) % per_block;
            let mut raw = [0u8; 4];
            self.dev
                .read_at(self.block_offset(table) + index * 4, &mut raw)?;
            block = le32(&raw, 0);
        }
        self.pointer(block)
    }

    /// The block holding logical block `logical` of inode `ino`, `None` for a
    /// hole. For tools and tests that need to know where data lies.
    pub fn block_of(&mut self, ino: u32, logical: u64) -> Result<Option<u32>> {
        let inode = self.inode(ino)?;
        self.map_block(&inode, logical)
    }

    /// Reads `inode`'s bytes from `offset`; stops at the end of the file.
    fn read_data(&mut self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = inode.stat.size;
        if offset >= size {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(size - offset).unwrap_or(usize::MAX));
        let block_size = u64::from(self.sb.block_size);
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let within = pos % block_size;
            let chunk = ((block_size - within) as usize).min(len - done);
            let out = buf.get_mut(done..done + chunk).ok_or(Error::Invalid)?;
            match self.map_block(inode, pos / block_size)? {
                Some(block) => self.dev.read_at(self.block_offset(block) + within, out)?,
                None => out.fill(0),
            }
            done += chunk;
        }
        Ok(len)
    }

    /// Reads a file's bytes from `offset` into `buf`; returns how many were
    /// read (fewer at the end of the file). Holes read as zeros.
    pub fn read(&mut self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.inode(ino)?;
        if inode.stat.file_type == FileType::Directory {
            return Err(Error::IsADirectory);
        }
        self.read_data(&inode, offset, buf)
    }

    /// Calls `visit` for each entry of directory `dir` until it returns `true`.
    pub(crate) fn walk_dir(
        &mut self,
        dir: &Inode,
        mut visit: impl FnMut(u32, FileType, &[u8]) -> bool,
    ) -> Result<bool> {
        self.walk_dir_from(dir, 0, |_, ino, file_type, name| {
            visit(ino, file_type, name)
        })
    }

    /// Directory `dir`'s size, checked to be whole blocks (the high size
    /// bits are not a directory's in ext2).
    pub(crate) fn dir_size(&self, dir: &Inode) -> Result<u64> {
        if dir.stat.file_type != FileType::Directory {
            return Err(Error::NotADirectory);
        }
        let size = dir.stat.size & u64::from(u32::MAX);
        if !size.is_multiple_of(u64::from(self.sb.block_size)) {
            return Err(Error::Corrupt("directory size not a block multiple", size));
        }
        Ok(size)
    }

    /// Like `walk_dir`, from byte position `from` of the directory, with
    /// each entry's position.
    fn walk_dir_from(
        &mut self,
        dir: &Inode,
        from: u64,
        mut visit: impl FnMut(u64, u32, FileType, &[u8]) -> bool,
    ) -> Result<bool> {
        let block_size = u64::from(self.sb.block_size);
        let size = self.dir_size(dir)?;
        let mut buf = vec![0u8; self.sb.block_size as usize];
        let filetype = self.sb.has_filetype();
        for logical in from / block_size..size / block_size {
            let block = self
                .map_block(dir, logical)?
                .ok_or(Error::Corrupt("hole in a directory", logical))?;
            self.dev.read_at(self.block_offset(block), &mut buf)?;
            let base = logical * block_size;
            let found = walk_block(&buf, filetype, self.sb.inodes_count, |e| {
                let position = base + e.offset as u64;
                position >= from && visit(position, e.ino, e.file_type, e.name)
            })?;
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Up to `max` entries of directory `dir` from position `from` (0 for
    /// the start, else a position an earlier page returned), and the
    /// position to continue from, `None` at the end. Unlike [`Self::read_dir`]
    /// its memory is bounded by `max`, whatever size the directory claims.
    pub fn read_dir_page(
        &mut self,
        dir: u32,
        from: u64,
        max: usize,
    ) -> Result<(Vec<DirEntry>, Option<u64>)> {
        let inode = self.inode(dir)?;
        let mut entries = Vec::new();
        let mut next = None;
        self.walk_dir_from(&inode, from, |position, ino, file_type, name| {
            if entries.len() >= max {
                next = Some(position);
                return true;
            }
            entries.push(DirEntry {
                ino,
                file_type,
                name: name.to_vec(),
            });
            false
        })?;
        Ok((entries, next))
    }

    /// The entries of directory `dir`, `.` and `..` included, in disk order.
    /// Allocates for all of them: see [`Self::read_dir_page`] for a bound.
    pub fn read_dir(&mut self, dir: u32) -> Result<Vec<DirEntry>> {
        self.read_dir_page(dir, 0, usize::MAX)
            .map(|(entries, _)| entries)
    }

    pub(crate) fn lookup_in(&mut self, dir: &Inode, name: &[u8]) -> Result<u32> {
        if name.is_empty() {
            return Err(Error::Invalid);
        }
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        let mut found = None;
        self.walk_dir(dir, |ino, _, entry| {
            if entry == name {
                found = Some(ino);
            }
            found.is_some()
        })?;
        found.ok_or(Error::NotFound)
    }

    /// The inode number of `name` in directory `dir`.
    pub fn lookup(&mut self, dir: u32, name: &[u8]) -> Result<u32> {
        let inode = self.inode(dir)?;
        self.lookup_in(&inode, name)
    }

    fn link_target(&mut self, inode: &Inode) -> Result<Vec<u8>> {
        if inode.stat.file_type != FileType::Symlink {
            return Err(Error::NotASymlink);
        }
        let size = inode.stat.size;
        if size == 0 || size > PATH_MAX as u64 || size > u64::from(self.sb.block_size) {
            return Err(Error::Corrupt("symlink length", size));
        }
        let size = size as usize;
        // A fast symlink keeps its target in i_block and owns no data block;
        // sectors of an extended-attribute block do not count.
        let acl_sectors = if inode.file_acl != 0 {
            self.sb.block_size / 512
        } else {
            0
        };
        if inode.sectors.saturating_sub(acl_sectors) == 0 {
            let target = inode
                .inline
                .get(..size)
                .filter(|_| size < INLINE_BYTES)
                .ok_or(Error::Corrupt("fast symlink length", size as u64))?;
            return Ok(target.to_vec());
        }
        let mut target = vec![0u8; size];
        let read = self.read_data(inode, 0, &mut target)?;
        target.truncate(read);
        Ok(target)
    }

    /// The target of symbolic link `ino`.
    pub fn read_link(&mut self, ino: u32) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        self.link_target(&inode)
    }

    /// Resolves `path` from the root, following symbolic links (the last
    /// component's too).
    pub fn resolve(&mut self, path: &[u8]) -> Result<u32> {
        self.resolve_at(ROOT_INODE, path, true)
    }

    /// Resolves `path`: absolute from the root, relative from directory
    /// `start`. `.` stays, `..` is the directory's own `..` entry, symbolic
    /// links are followed (the last one only when `follow_last`), at most
    /// [`SYMLINK_LIMIT`] of them. Each step consumes a component, so a
    /// damaged image whose `..` entries form a cycle cannot make it loop.
    pub fn resolve_at(&mut self, start: u32, path: &[u8], follow_last: bool) -> Result<u32> {
        if path.len() > PATH_MAX {
            return Err(Error::NameTooLong);
        }
        if path.is_empty() {
            return Err(Error::NotFound);
        }
        let mut current = if path.first() == Some(&b'/') {
            ROOT_INODE
        } else {
            start
        };
        // Components still to walk, the next one last; owned, because a
        // symlink's target is spliced in.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        push_components(&mut pending, path);
        let mut links = 0u32;
        while let Some(name) = pending.pop() {
            let dir = self.inode(current)?;
            if dir.stat.file_type != FileType::Directory {
                return Err(Error::NotADirectory);
            }
            if name == b"." {
                continue;
            }
            let next = self.lookup_in(&dir, &name)?;
            let node = self.inode(next)?;
            let last = pending.is_empty();
            if node.stat.file_type == FileType::Symlink && (follow_last || !last) {
                links += 1;
                if links > SYMLINK_LIMIT {
                    return Err(Error::SymlinkLoop);
                }
                let target = self.link_target(&node)?;
                if target.first() == Some(&b'/') {
                    current = ROOT_INODE;
                }
                push_components(&mut pending, &target);
                continue;
            }
            current = next;
        }
        Ok(current)
    }
}

/// The components of `path` without empty ones, pushed so that the first is
/// popped first. A trailing `/` adds a `.`, so the last name must be a
/// directory (and a symlink there is followed).
fn push_components(pending: &mut Vec<Vec<u8>>, path: &[u8]) {
    if path.last() == Some(&b'/') && components(path).next().is_some() {
        pending.push(b".".to_vec());
    }
    let mut parts: Vec<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
    parts.reverse();
    pending.extend(parts);
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// For a logical block past the direct ones: the depth of indirection (1 to
/// 3) and the index within the blocks that depth covers.
pub(crate) fn indirect_path(per_block: u64, logical: u64) -> Result<(u32, u64)> {
    let mut rest = logical
        .checked_sub(DIRECT_BLOCKS as u64)
        .ok_or(Error::Invalid)?;
    let mut span = per_block;
    let mut depth = 1u32;
    // Single, double, then triple indirect: each level covers per_block times more.
    while rest >= span {
        rest -= span;
        depth += 1;
        span = span.checked_mul(per_block).ok_or(Error::Invalid)?;
        if depth > 3 {
            return Err(Error::Invalid);
        }
    }
    Ok((depth, rest))
}
