//! Giving space back: truncate, unlink and rmdir.
//!
//! Order: pointers are cleared on disk (indirect tables, then the inode)
//! before the blocks' bitmap bits, so a crash in between leaks blocks that
//! e2fsck reclaims, and never leaves a file pointing at a free block.

use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, WriteClass};
use crate::dir::HEADER;
use crate::error::{Error, Result};
use crate::fs::Ext2;
use crate::inode::{FileType, Inode, DIRECT_BLOCKS};
use crate::layout::{le16, le32};
use crate::write::Kind;

/// Most `..` steps from a directory to the root that `rename` follows.
const MAX_DEPTH: u32 = 4096;

impl<D: BlockDevice> Ext2<D> {
    /// Sets regular file `ino`'s size. Shrinking frees the blocks past the
    /// new end (and indirect blocks left empty) and zeroes the rest of the
    /// last block, so that growing again reads zeros; growing leaves a hole.
    pub fn truncate(&mut self, ino: u32, size: u64) -> Result<()> {
        self.writable()?;
        let mut inode = self.inode(ino)?;
        match inode.stat.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(Error::IsADirectory),
            _ => return Err(Error::Invalid),
        }
        // Past the block map even a hole makes e2fsck call the size bad.
        if size > self.max_file_size() {
            return Err(Error::Invalid);
        }
        if size < inode.stat.size {
            let block_size = u64::from(self.sb.block_size);
            let within = size % block_size;
            if within != 0 {
                if let Some(block) = self.map_block(&inode, size / block_size)? {
                    let zeros = vec![0u8; (block_size - within) as usize];
                    self.dev.write_class(
                        self.block_offset(block) + within,
                        &zeros,
                        WriteClass::Data,
                    )?;
                }
            }
            let freed = self.cut_blocks(&mut inode, size.div_ceil(block_size))?;
            inode.stat.size = size;
            self.stamp_and_free(&mut inode, freed)?;
        } else {
            inode.stat.size = size;
            inode.stat.mtime = self.now;
            inode.stat.ctime = self.now;
            self.write_inode(&inode)?;
        }
        Ok(())
    }

    /// Writes `inode` (its pointers already cut) with the times now, then
    /// frees `freed`.
    fn stamp_and_free(&mut self, inode: &mut Inode, freed: Vec<u32>) -> Result<()> {
        inode.stat.mtime = self.now;
        inode.stat.ctime = self.now;
        let sectors = (self.sb.block_size / 512).saturating_mul(freed.len() as u32);
        inode.sectors = inode.sectors.saturating_sub(sectors);
        self.write_inode(inode)?;
        for block in freed {
            self.release(Kind::Block, block)?;
        }
        Ok(())
    }

    /// Clears every pointer of `inode` to logical blocks `keep` and later
    /// (and to indirect blocks left empty), writing changed indirect tables
    /// back; the inode itself only in memory. Returns the blocks to free.
    fn cut_blocks(&mut self, inode: &mut Inode, keep: u64) -> Result<Vec<u32>> {
        let mut freed = Vec::new();
        for logical in keep..DIRECT_BLOCKS as u64 {
            if let Some(pointer) = inode.block.get_mut(logical as usize) {
                let block = core::mem::take(pointer);
                if block != 0 {
                    self.sb
                        .check_block(block, "block pointer outside the file system")?;
                    freed.push(block);
                }
            }
        }
        let per_block = u64::from(self.sb.block_size / 4);
        let mut base = DIRECT_BLOCKS as u64;
        let mut span = per_block;
        for depth in 1..=3u32 {
            let slot = DIRECT_BLOCKS + depth as usize - 1;
            let root = inode.block.get(slot).copied().unwrap_or(0);
            let keep_here = keep.saturating_sub(base);
            if root != 0 && keep_here < span {
                self.sb
                    .check_block(root, "block pointer outside the file system")?;
                self.cut_table(root, depth, keep_here, &mut freed)?;
                if keep_here == 0 {
                    if let Some(pointer) = inode.block.get_mut(slot) {
                        *pointer = 0;
                    }
                    freed.push(root);
                }
            }
            base = base.saturating_add(span);
            span = span.saturating_mul(per_block);
        }
        Ok(freed)
    }

    /// Cuts the pointers of indirect block `table` (at `depth`, 1 = single)
    /// to blocks `keep` and later of the range it maps.
    fn cut_table(&mut self, table: u32, depth: u32, keep: u64, freed: &mut Vec<u32>) -> Result<()> {
        let per_block = u64::from(self.sb.block_size / 4);
        let child_span = per_block.pow(depth - 1);
        let mut raw = vec![0u8; self.sb.block_size as usize];
        self.dev.read_at(self.block_offset(table), &mut raw)?;
        let mut changed = false;
        for index in 0..per_block {
            let at = (index * 4) as usize;
            let block = le32(&raw, at);
            if block == 0 {
                continue;
            }
            self.sb
                .check_block(block, "block pointer outside the file system")?;
            let start = index * child_span;
            if start >= keep {
                if depth > 1 {
                    self.cut_table(block, depth - 1, 0, freed)?;
                }
                freed.push(block);
                if let Some(dst) = raw.get_mut(at..at + 4) {
                    dst.fill(0);
                }
                changed = true;
            } else if depth > 1 && start + child_span > keep {
                self.cut_table(block, depth - 1, keep - start, freed)?;
            }
        }
        if changed {
            self.dev
                .write_class(self.block_offset(table), &raw, WriteClass::Indirect)?;
        }
        Ok(())
    }

    /// Removes the name `name` (not a directory) from `dir`; the file goes
    /// when its last link does.
    pub fn unlink(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        self.writable()?;
        if name == b"." || name == b".." {
            return Err(Error::Invalid);
        }
        let ino = self.lookup(dir, name)?;
        let mut inode = self.inode(ino)?;
        if inode.stat.file_type == FileType::Directory {
            return Err(Error::IsADirectory);
        }
        self.remove_entry(dir, name)?;
        inode.stat.links = inode.stat.links.saturating_sub(1);
        inode.stat.ctime = self.now;
        if inode.stat.links == 0 {
            self.delete_inode(&mut inode, Kind::Inode { dir: false })
        } else {
            self.write_inode(&inode)
        }
    }

    /// Renames `from_name` in `from_dir` to `to_name` in `to_dir`, replacing
    /// what is there (a file by a file, an empty directory by a directory).
    /// The new name is entered before the old one is removed, so a crash
    /// leaves both names rather than none.
    pub fn rename(
        &mut self,
        from_dir: u32,
        from_name: &[u8],
        to_dir: u32,
        to_name: &[u8],
    ) -> Result<()> {
        self.writable()?;
        crate::write::check_name(to_name)?;
        if from_name == b"." || from_name == b".." {
            return Err(Error::Invalid);
        }
        let ino = self.lookup(from_dir, from_name)?;
        let mut inode = self.inode(ino)?;
        let is_dir = inode.stat.file_type == FileType::Directory;
        if is_dir && from_dir != to_dir && self.is_within(to_dir, ino)? {
            // Moving a directory into itself would cut it off from the root.
            return Err(Error::Invalid);
        }
        match self.lookup(to_dir, to_name) {
            Ok(old) if old == ino => return Ok(()),
            Ok(old) => {
                let mut target = self.inode(old)?;
                let target_is_dir = target.stat.file_type == FileType::Directory;
                match (is_dir, target_is_dir) {
                    (true, false) => return Err(Error::NotADirectory),
                    (false, true) => return Err(Error::IsADirectory),
                    (true, true) => {
                        if !self.is_empty_dir(&target)? {
                            return Err(Error::NotEmpty);
                        }
                    }
                    (false, false) => {}
                }
                self.retarget_entry(to_dir, to_name, ino, inode.stat.file_type)?;
                target.stat.ctime = self.now;
                if target_is_dir {
                    target.stat.links = 0;
                    self.delete_inode(&mut target, Kind::Inode { dir: true })?;
                    self.add_links(to_dir, -1)?;
                } else {
                    target.stat.links = target.stat.links.saturating_sub(1);
                    if target.stat.links == 0 {
                        self.delete_inode(&mut target, Kind::Inode { dir: false })?;
                    } else {
                        self.write_inode(&target)?;
                    }
                }
            }
            Err(Error::NotFound) => self.add_entry(to_dir, to_name, ino, inode.stat.file_type)?,
            Err(err) => return Err(err),
        }
        self.remove_entry(from_dir, from_name)?;
        if is_dir && from_dir != to_dir {
            self.retarget_entry(ino, b"..", to_dir, FileType::Directory)?;
            self.add_links(from_dir, -1)?;
            self.add_links(to_dir, 1)?;
        }
        inode = self.inode(ino)?;
        inode.stat.ctime = self.now;
        self.write_inode(&inode)
    }

    /// Whether directory `dir` holds nothing but `.` and `..`; stops at the
    /// first other entry.
    fn is_empty_dir(&mut self, dir: &Inode) -> Result<bool> {
        let found = self.walk_dir(dir, |_, _, name| name != b"." && name != b"..")?;
        Ok(!found)
    }

    /// Adds `delta` to directory `dir`'s link count.
    fn add_links(&mut self, dir: u32, delta: i32) -> Result<()> {
        let mut inode = self.inode(dir)?;
        inode.stat.links = u16::try_from(i32::from(inode.stat.links) + delta)
            .map_err(|_| Error::Corrupt("link count", dir.into()))?;
        if inode.stat.links > 32_000 {
            return Err(Error::TooManyLinks);
        }
        self.write_inode(&inode)
    }

    /// Whether directory `dir` is `ancestor` or lies below it, following
    /// `..` up to the root. A chain longer than [`MAX_DEPTH`] is taken for
    /// a loop in a damaged image (and bounds the work a hostile one causes).
    fn is_within(&mut self, dir: u32, ancestor: u32) -> Result<bool> {
        let mut current = dir;
        for _ in 0..MAX_DEPTH.min(self.sb.inodes_count) {
            if current == ancestor {
                return Ok(true);
            }
            if current == crate::ROOT_INODE {
                return Ok(false);
            }
            current = self.lookup(current, b"..")?;
        }
        Err(Error::Corrupt("directory loop", dir.into()))
    }

    /// Removes the empty directory `name` from `dir`.
    pub fn rmdir(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        self.writable()?;
        if name == b"." || name == b".." {
            return Err(Error::Invalid);
        }
        let ino = self.lookup(dir, name)?;
        let mut inode = self.inode(ino)?;
        if inode.stat.file_type != FileType::Directory {
            return Err(Error::NotADirectory);
        }
        if !self.is_empty_dir(&inode)? {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(dir, name)?;
        inode.stat.links = 0;
        self.delete_inode(&mut inode, Kind::Inode { dir: true })?;
        // Its `..` no longer links the parent.
        let mut parent = self.inode(dir)?;
        parent.stat.links = parent.stat.links.saturating_sub(1);
        parent.stat.mtime = self.now;
        parent.stat.ctime = self.now;
        self.write_inode(&parent)
    }

    /// Frees an inode with no links left: its blocks (a fast symlink has
    /// none: its pointers are text), a deletion time, its bitmap bit.
    pub(crate) fn delete_inode(&mut self, inode: &mut Inode, kind: Kind) -> Result<()> {
        let freed = if inode.sectors == 0 && inode.stat.file_type == FileType::Symlink {
            inode.block = [0; crate::inode::BLOCK_POINTERS];
            Vec::new()
        } else {
            self.cut_blocks(inode, 0)?
        };
        inode.stat.size = 0;
        // e2fsck reads a deletion time below the inode count as a link in
        // the orphan list: without a clock, stamp one past the count.
        inode.dtime = self.now.max(self.sb.inodes_count.saturating_add(1));
        self.stamp_and_free(inode, freed)?;
        self.release(kind, inode.stat.ino)
    }

    /// Removes the entry `name` from directory `dir`: merged into the entry
    /// before it, or (first in its block) marked unused.
    pub(crate) fn remove_entry(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        self.edit_entry(dir, name, None)
    }

    /// Points the entry `name` of `dir` at `ino` of `file_type` instead.
    pub(crate) fn retarget_entry(
        &mut self,
        dir: u32,
        name: &[u8],
        ino: u32,
        file_type: FileType,
    ) -> Result<()> {
        self.edit_entry(dir, name, Some((ino, file_type)))
    }

    /// Removes (`None`) or retargets the entry `name` of `dir`.
    fn edit_entry(
        &mut self,
        dir: u32,
        name: &[u8],
        retarget: Option<(u32, FileType)>,
    ) -> Result<()> {
        let mut inode = self.inode(dir)?;
        let size = self.dir_size(&inode)?;
        let block_size = self.sb.block_size as usize;
        let filetype = self.sb.has_filetype();
        let mut buf = vec![0u8; block_size];
        for logical in 0..size / block_size as u64 {
            let block = self
                .map_block(&inode, logical)?
                .ok_or(Error::Corrupt("hole in a directory", logical))?;
            self.dev.read_at(self.block_offset(block), &mut buf)?;
            let mut offset = 0usize;
            let mut previous: Option<usize> = None;
            while offset < block_size {
                let rest = buf.get(offset..).unwrap_or_default();
                let rec_len = usize::from(le16(rest, 4));
                if rec_len < HEADER || !rec_len.is_multiple_of(4) || rec_len > rest.len() {
                    return Err(Error::Corrupt("directory entry length", rec_len as u64));
                }
                let name_len = if filetype {
                    usize::from(rest.get(6).copied().unwrap_or(0))
                } else {
                    usize::from(le16(rest, 6))
                };
                let entry_name = rest.get(HEADER..HEADER + name_len);
                if le32(rest, 0) != 0 && entry_name == Some(name) {
                    match (retarget, previous) {
                        (Some((ino, file_type)), _) => {
                            if let Some(dst) = buf.get_mut(offset..offset + 4) {
                                dst.copy_from_slice(&ino.to_le_bytes());
                            }
                            if filetype {
                                if let Some(dst) = buf.get_mut(offset + 7) {
                                    *dst = crate::write::dirent_type(file_type);
                                }
                            }
                        }
                        (None, Some(prev)) => {
                            let prev_len = usize::from(le16(&buf, prev + 4));
                            let merged = u16::try_from(prev_len + rec_len)
                                .map_err(|_| Error::Corrupt("directory entry length", 0))?;
                            if let Some(dst) = buf.get_mut(prev + 4..prev + 6) {
                                dst.copy_from_slice(&merged.to_le_bytes());
                            }
                        }
                        (None, None) => {
                            if let Some(dst) = buf.get_mut(offset..offset + 4) {
                                dst.fill(0);
                            }
                        }
                    }
                    self.dev
                        .write_class(self.block_offset(block), &buf, WriteClass::Directory)?;
                    inode.flags &= !crate::inode::INDEX_FL;
                    inode.stat.mtime = self.now;
                    inode.stat.ctime = self.now;
                    return self.write_inode(&inode);
                }
                previous = Some(offset);
                offset += rec_len;
            }
        }
        Err(Error::NotFound)
    }
}
