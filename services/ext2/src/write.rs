//! The start of the write path: blocks and inodes allocated from the
//! bitmaps, file data written through the block map (indirect blocks made as
//! needed), and regular files created in a directory.
//!
//! Order: a bitmap bit and the counts are written before anything points at
//! what they allocate, so a crash leaks space (e2fsck reclaims it) rather
//! than sharing it.

use alloc::vec;

use crate::device::{BlockDevice, WriteClass};
use crate::dir::{HEADER, NAME_MAX};
use crate::error::{Error, Result};
use crate::fs::PATH_MAX;
use crate::fs::{indirect_path, Ext2};
use crate::inode::{FileType, Inode, BLOCK_POINTERS, DIRECT_BLOCKS, INDEX_FL, INLINE_BYTES};
use crate::layout::{le16, le32};
use crate::superblock::GroupDesc;
use crate::superblock::{ro_compat, SUPERBLOCK_OFFSET};

/// Size of a group descriptor.
const DESC_SIZE: u64 = 32;
/// Bytes past the 128-byte inode that mke2fs reserves in larger inodes.
const EXTRA_ISIZE: u16 = 32;

/// Mode type bits.
const S_IFREG: u16 = 0x8000;
const S_IFDIR: u16 = 0x4000;
const S_IFLNK: u16 = 0xa000;
/// Most links an inode may have (ext2's limit).
const LINK_MAX: u16 = 32_000;

/// Checks a name for a new entry: not empty, not `.` or `..`, no `/` or NUL,
/// at most 255 bytes.
pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::Invalid);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Bytes an entry with a name of `len` bytes needs.
fn entry_size(len: usize) -> usize {
    HEADER + len.div_ceil(4) * 4
}

/// Which bitmap an allocation uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Block,
    Inode { dir: bool },
}

impl<D: BlockDevice> Ext2<D> {
    /// Sets the time (seconds since the epoch) stamped on what is written.
    pub fn set_time(&mut self, now: u32) {
        self.now = now;
    }

    /// Makes everything written so far durable: the file system keeps no
    /// cache of its own (each change goes to the device when made), so
    /// this flushes the device.
    pub fn sync(&mut self) -> Result<()> {
        self.dev.flush()?;
        Ok(())
    }

    pub(crate) fn writable(&self) -> Result<()> {
        match self.read_only {
            Some(_) => Err(Error::ReadOnly),
            None => Ok(()),
        }
    }

    fn desc_offset(&self, group: usize) -> u64 {
        self.block_offset(self.sb.first_data_block + 1) + group as u64 * DESC_SIZE
    }

    /// Finds a clear bit in a group's bitmap, sets it and lowers the free
    /// counts of the group and the superblock. Returns the block or inode number.
    fn allocate(&mut self, kind: Kind) -> Result<u32> {
        // Blocks are sought from just after the last one allocated, so a
        // file written in sequence lies in sequence and the scan does not
        // restart at bit 0 each time; inodes from the start.
        let groups = self.groups.len();
        let (goal_group, goal_bit) = match kind {
            Kind::Block => {
                let goal = self.block_goal.saturating_sub(self.sb.first_data_block);
                let group = (goal / self.sb.blocks_per_group) as usize;
                if group < groups {
                    (group, goal % self.sb.blocks_per_group)
                } else {
                    (0, 0)
                }
            }
            Kind::Inode { .. } => (0, 0),
        };
        let mut bitmap = vec![0u8; self.sb.block_size as usize];
        // The goal's group first from the goal, the others, then the goal's
        // group again from its start.
        for step in 0..=groups {
            let group = (goal_group + step) % groups.max(1);
            let from = if step == 0 { goal_bit } else { 0 };
            if step == groups && goal_bit == 0 {
                break;
            }
            let Some(desc) = self.groups.get(group).copied() else {
                break;
            };
            let g = group as u32;
            let (free, bitmap_block, first, count) = match kind {
                Kind::Block => {
                    let first = self.sb.first_data_block + g * self.sb.blocks_per_group;
                    let count = self
                        .sb
                        .blocks_per_group
                        .min(self.sb.blocks_count.saturating_sub(first));
                    (desc.free_blocks_count, desc.block_bitmap, first, count)
                }
                Kind::Inode { .. } => {
                    let first = g * self.sb.inodes_per_group + 1;
                    let count = self
                        .sb
                        .inodes_per_group
                        .min(self.sb.inodes_count.saturating_sub(first - 1));
                    (desc.free_inodes_count, desc.inode_bitmap, first, count)
                }
            };
            if free == 0 {
                continue;
            }
            self.dev
                .read_at(self.block_offset(bitmap_block), &mut bitmap)?;
            let Some(bit) = (from..count).find(|&bit| {
                bitmap
                    .get((bit / 8) as usize)
                    .is_some_and(|byte| byte & (1 << (bit % 8)) == 0)
            }) else {
                if from > 0 {
                    // Free bits may lie before the goal: seen on the last step.
                    continue;
                }
                return Err(Error::Corrupt(
                    "group's free count disagrees with its bitmap",
                    g.into(),
                ));
            };
            let number = first + bit;
            self.check_free(kind, group, number)?;
            let byte_index = (bit / 8) as usize;
            let byte = bitmap.get(byte_index).copied().unwrap_or(0) | 1 << (bit % 8);
            self.dev.write_class(
                self.block_offset(bitmap_block) + byte_index as u64,
                &[byte],
                WriteClass::Bitmap,
            )?;
            self.adjust_counts(group, kind, -1)?;
            if kind == Kind::Block {
                self.block_goal = number.saturating_add(1);
            }
            return Ok(number);
        }
        Err(Error::NoSpace)
    }

    /// Refuses a "free" number that the metadata uses: a damaged bitmap
    /// must not hand out the inode table or a reserved inode.
    fn check_free(&self, kind: Kind, group: usize, number: u32) -> Result<()> {
        match kind {
            Kind::Block => {
                let desc = self.groups.get(group).ok_or(Error::Invalid)?;
                let table_end = desc.inode_table + self.sb.inode_table_blocks();
                let metadata = number == desc.block_bitmap
                    || number == desc.inode_bitmap
                    || (desc.inode_table..table_end).contains(&number)
                    || number <= self.sb.first_data_block + 1;
                if metadata || number >= self.sb.blocks_count {
                    return Err(Error::Corrupt(
                        "bitmap frees a metadata block",
                        number.into(),
                    ));
                }
            }
            Kind::Inode { .. } => {
                if number < self.sb.first_ino || number > self.sb.inodes_count {
                    return Err(Error::Corrupt(
                        "bitmap frees a reserved inode",
                        number.into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds `delta` to the free counts of `group` and of the superblock (and
    /// the group's directory count for directory inodes), on disk and here.
    fn adjust_counts(&mut self, group: usize, kind: Kind, delta: i32) -> Result<()> {
        let desc_at = self.desc_offset(group);
        let desc = self.groups.get_mut(group).ok_or(Error::Invalid)?;
        let bad = Error::Corrupt("free count", group as u64);
        let step16 = |v: u16| u16::try_from(i32::from(v) + delta).map_err(|_| bad);
        let (desc_field, sb_field, value16) = match kind {
            Kind::Block => {
                desc.free_blocks_count = step16(desc.free_blocks_count)?;
                (12, 12, desc.free_blocks_count)
            }
            Kind::Inode { .. } => {
                desc.free_inodes_count = step16(desc.free_inodes_count)?;
                (14, 16, desc.free_inodes_count)
            }
        };
        let dirs = match kind {
            Kind::Inode { dir: true } => {
                desc.used_dirs_count =
                    u16::try_from(i32::from(desc.used_dirs_count) - delta).map_err(|_| bad)?;
                Some(desc.used_dirs_count)
            }
            _ => None,
        };
        self.dev.write_class(
            desc_at + desc_field,
            &value16.to_le_bytes(),
            WriteClass::GroupDescriptors,
        )?;
        if let Some(dirs) = dirs {
            self.dev.write_class(
                desc_at + 16,
                &dirs.to_le_bytes(),
                WriteClass::GroupDescriptors,
            )?;
        }
        let sb_count = match kind {
            Kind::Block => &mut self.sb.free_blocks_count,
            Kind::Inode { .. } => &mut self.sb.free_inodes_count,
        };
        // The superblock's counts are summaries e2fsck recomputes; keep them
        // right but do not fail on one already wrong.
        *sb_count = sb_count.saturating_add_signed(delta);
        let value32 = *sb_count;
        self.dev.write_class(
            SUPERBLOCK_OFFSET + sb_field,
            &value32.to_le_bytes(),
            WriteClass::Superblock,
        )?;
        Ok(())
    }

    /// Allocates a block for `inode` and writes `content` to it, placed at
    /// `within` with zeros around it (what a new block holds beyond the
    /// caller's bytes), as `class`.
    fn allocate_block(
        &mut self,
        inode: &mut Inode,
        within: usize,
        content: &[u8],
        class: WriteClass,
    ) -> Result<u32> {
        let block = self.allocate(Kind::Block)?;
        let size = self.sb.block_size as usize;
        let at = self.block_offset(block);
        let mut whole = vec![];
        let bytes = if within == 0 && content.len() == size {
            content
        } else {
            whole.resize(size, 0);
            whole
                .get_mut(within..within + content.len())
                .ok_or(Error::Invalid)?
                .copy_from_slice(content);
            &whole
        };
        // `Data` goes first in a write-back, before every class that
        // points at blocks, and a data block keeps its class: written to
        // the cache before the pointer, it reaches the disk before it.
        // Other classes go with or after their pointers, and later writes
        // (names, pointers) would relabel the line: their first content
        // goes to the disk now, one request for a directory block or a
        // table, which are rare next to data blocks.
        if class == WriteClass::Data {
            self.dev.write_class(at, bytes, class)?;
        } else {
            self.dev.write_now(at, bytes, class)?;
        }
        inode.sectors = inode.sectors.saturating_add(self.sb.block_size / 512);
        Ok(block)
    }

    /// The block of logical block `logical`, allocating it and the indirect
    /// blocks on the way when missing. A new block gets `content` at
    /// `within` (zeros elsewhere) as `data`, written BEFORE the pointer to
    /// it is stored (new tables too, zeroed): a write-back the cache is
    /// forced into between the two (a miss with the LRU line dirty writes
    /// everything) must not put the pointer on the disk ahead of the
    /// block, which would hold stale bytes, maybe another file's. Writing
    /// the content whole at once costs no more than the zeroing it
    /// replaces. Returns the block and whether it is new (the caller's
    /// bytes are then written). Changes `inode` in memory only.
    fn map_or_allocate(
        &mut self,
        inode: &mut Inode,
        logical: u64,
        (within, content): (usize, &[u8]),
        data: WriteClass,
    ) -> Result<(u32, bool)> {
        if logical < DIRECT_BLOCKS as u64 {
            let slot = logical as usize;
            let current = inode.block.get(slot).copied().unwrap_or(0);
            if let Some(block) = self.pointer(current)? {
                return Ok((block, false));
            }
            let block = self.allocate_block(inode, within, content, data)?;
            if let Some(pointer) = inode.block.get_mut(slot) {
                *pointer = block;
            }
            return Ok((block, true));
        }
        let per_block = u64::from(self.sb.block_size / 4);
        let (depth, rest) = indirect_path(per_block, logical)?;
        let root_slot = DIRECT_BLOCKS + depth as usize - 1;
        let root = inode.block.get(root_slot).copied().unwrap_or(0);
        let mut table = match self.pointer(root)? {
            Some(block) => block,
            None => {
                // An empty table, zeroed before the inode points at it.
                let block = self.allocate_block(inode, 0, &[], WriteClass::Indirect)?;
                if let Some(pointer) = inode.block.get_mut(root_slot) {
                    *pointer = block;
                }
                block
            }
        };
        let mut fresh = false;
        for level in (0..depth).rev() {
            let index = (rest / per_block.pow(level)) % per_block;
            let at = self.block_offset(table) + index * 4;
            let mut raw = [0u8; 4];
            self.dev.read_at(at, &mut raw)?;
            table = match self.pointer(le32(&raw, 0))? {
                Some(block) => block,
                None => {
                    // Level 0 is the data block; above it, tables start empty.
                    let block = if level > 0 {
                        self.allocate_block(inode, 0, &[], WriteClass::Indirect)?
                    } else {
                        fresh = true;
                        self.allocate_block(inode, within, content, data)?
                    };
                    self.dev
                        .write_class(at, &block.to_le_bytes(), WriteClass::Indirect)?;
                    block
                }
            };
        }
        Ok((table, fresh))
    }

    /// Writes the fields this crate changes back into inode `inode`'s record.
    pub(crate) fn write_inode(&mut self, inode: &Inode) -> Result<()> {
        let ino = inode.stat.ino;
        let at = self.inode_offset(ino)?;
        let mut raw = [0u8; 128];
        self.dev.read_at(at, &mut raw)?;
        let stat = &inode.stat;
        let mut put = |offset: usize, bytes: &[u8]| {
            if let Some(dst) = raw.get_mut(offset..offset + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0, &stat.mode.to_le_bytes());
        put(2, &(stat.uid as u16).to_le_bytes());
        put(4, &(stat.size as u32).to_le_bytes());
        put(8, &stat.atime.to_le_bytes());
        put(12, &stat.ctime.to_le_bytes());
        put(16, &stat.mtime.to_le_bytes());
        put(20, &inode.dtime.to_le_bytes());
        put(24, &(stat.gid as u16).to_le_bytes());
        put(26, &stat.links.to_le_bytes());
        put(28, &inode.sectors.to_le_bytes());
        put(32, &inode.flags.to_le_bytes());
        for (i, block) in inode.block.iter().enumerate() {
            put(40 + 4 * i, &block.to_le_bytes());
        }
        if stat.file_type == FileType::Regular {
            put(108, &((stat.size >> 32) as u32).to_le_bytes());
        }
        put(120, &((stat.uid >> 16) as u16).to_le_bytes());
        put(122, &((stat.gid >> 16) as u16).to_le_bytes());
        self.dev.write_class(at, &raw, WriteClass::InodeTable)?;
        Ok(())
    }

    /// Writes `data` into regular file `ino` at `offset`, allocating blocks
    /// for holes and growth. Returns the bytes written; on `NoSpace` part of
    /// the data may be written and the size covers it.
    pub fn write(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        self.writable()?;
        let mut inode = self.inode(ino)?;
        match inode.stat.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(Error::IsADirectory),
            _ => return Err(Error::Invalid),
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::Invalid)?;
        let large_file = self.sb.feature_ro_compat & ro_compat::LARGE_FILE != 0;
        if end > u64::from(i32::MAX as u32) && !large_file {
            return Err(Error::Invalid);
        }
        let block_size = u64::from(self.sb.block_size);
        let mut done = 0usize;
        let result = (|| {
            while done < data.len() {
                let pos = offset + done as u64;
                let within = pos % block_size;
                let chunk = ((block_size - within) as usize).min(data.len() - done);
                let src = data.get(done..done + chunk).ok_or(Error::Invalid)?;
                let (block, fresh) = self.map_or_allocate(
                    &mut inode,
                    pos / block_size,
                    (within as usize, src),
                    WriteClass::Data,
                )?;
                if !fresh {
                    self.dev.write_class(
                        self.block_offset(block) + within,
                        src,
                        WriteClass::Data,
                    )?;
                }
                done += chunk;
            }
            Ok(())
        })();
        // Whatever was allocated is recorded, even after a failure.
        // A write that wrote nothing (refused past the block map, say)
        // leaves the size alone.
        let written_end = offset + done as u64;
        if done > 0 && written_end > inode.stat.size {
            inode.stat.size = written_end;
        }
        if done > 0 {
            inode.stat.mtime = self.now;
            inode.stat.ctime = self.now;
        }
        self.write_inode(&inode)?;
        result.map(|()| done)
    }

    /// Sets inode `ino`'s permission bits (`mode & 0o7777`; its type
    /// stays) and its access and modification times (seconds), each when
    /// given; the change time becomes now. Written through like every
    /// inode change. The times are the raw 32-bit fields, which Linux and
    /// e2fsck read as signed: a caller keeps them at most `i32::MAX`.
    pub fn set_attrs(
        &mut self,
        ino: u32,
        mode: Option<u16>,
        atime: Option<u32>,
        mtime: Option<u32>,
    ) -> Result<()> {
        self.writable()?;
        let mut inode = self.inode(ino)?;
        if let Some(mode) = mode {
            inode.stat.mode = (inode.stat.mode & !0o7777) | (mode & 0o7777);
        }
        if let Some(atime) = atime {
            inode.stat.atime = atime;
        }
        if let Some(mtime) = mtime {
            inode.stat.mtime = mtime;
        }
        inode.stat.ctime = self.now;
        self.write_inode(&inode)?;
        // A large inode may carry nanoseconds and epoch bits for each time
        // (`i_ctime_extra`, `i_mtime_extra`, `i_atime_extra` at 132, 136,
        // 140): left, they would add old fractions (or eras) to the new
        // seconds.
        let fields = [(132, true), (136, mtime.is_some()), (140, atime.is_some())];
        self.clear_time_extra(
            ino,
            fields.into_iter().filter(|&(_, set)| set).map(|(at, _)| at),
        )
    }

    /// Zeroes the `*_extra` time fields at `fields` (offsets in the inode
    /// record) that the inode's `i_extra_isize` covers.
    fn clear_time_extra(&mut self, ino: u32, fields: impl Iterator<Item = usize>) -> Result<()> {
        let inode_size = usize::from(self.sb.inode_size);
        if inode_size <= 128 {
            return Ok(());
        }
        let at = self.inode_offset(ino)?;
        let mut raw = [0u8; 2];
        self.dev.read_at(at + 128, &mut raw)?;
        let covered = 128 + usize::from(le16(&raw, 0));
        for field in fields.filter(|&f| f + 4 <= covered.min(inode_size)) {
            self.dev
                .write_class(at + field as u64, &[0; 4], WriteClass::InodeTable)?;
        }
        Ok(())
    }

    /// Creates an empty regular file `name` in directory `dir` with
    /// permission bits `perm`, owned by `uid`:`gid`. Returns its inode number.
    pub fn create(&mut self, dir: u32, name: &[u8], perm: u16, uid: u32, gid: u32) -> Result<u32> {
        self.new_node(
            dir,
            name,
            S_IFREG | (perm & 0o7777),
            uid,
            gid,
            |_, _| Ok(()),
        )
    }

    /// Creates directory `name` in `dir` (with `.` and `..`). Returns its inode number.
    pub fn mkdir(&mut self, dir: u32, name: &[u8], perm: u16, uid: u32, gid: u32) -> Result<u32> {
        let mut parent = self.inode(dir)?;
        if parent.stat.links >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        let block_size = self.sb.block_size as usize;
        let ino = self.new_node(
            dir,
            name,
            S_IFDIR | (perm & 0o7777),
            uid,
            gid,
            |fs, inode| {
                let mut buf = vec![0u8; block_size];
                let kind = if fs.sb.has_filetype() {
                    FileType::Directory
                } else {
                    FileType::Unknown
                };
                put_entry(&mut buf, 0, inode.stat.ino, 12, Some((b".", kind)))?;
                put_entry(&mut buf, 12, dir, block_size - 12, Some((b"..", kind)))?;
                // A new inode has no block: this one is new, and written.
                fs.map_or_allocate(inode, 0, (0, &buf), WriteClass::Directory)?;
                inode.stat.size = block_size as u64;
                inode.stat.links = 2;
                Ok(())
            },
        )?;
        // The new directory's `..` links the parent.
        parent = self.inode(dir)?;
        parent.stat.links += 1;
        self.write_inode(&parent)?;
        Ok(ino)
    }

    /// Creates symbolic link `name` in `dir` pointing at `target`: in the
    /// inode when it fits (a fast symlink), else in a block.
    pub fn symlink(
        &mut self,
        dir: u32,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<u32> {
        if target.is_empty() || target.contains(&0) {
            return Err(Error::Invalid);
        }
        if target.len() >= (self.sb.block_size as usize).min(PATH_MAX) {
            return Err(Error::NameTooLong);
        }
        self.new_node(dir, name, S_IFLNK | 0o777, uid, gid, |fs, inode| {
            if target.len() < INLINE_BYTES {
                let mut inline = [0u8; INLINE_BYTES];
                inline
                    .get_mut(..target.len())
                    .ok_or(Error::Invalid)?
                    .copy_from_slice(target);
                for (pointer, bytes) in inode.block.iter_mut().zip(inline.chunks_exact(4)) {
                    *pointer = le32(bytes, 0);
                }
            } else {
                // A new inode has no block: this one is new, and written.
                fs.map_or_allocate(inode, 0, (0, target), WriteClass::Data)?;
            }
            inode.stat.size = target.len() as u64;
            Ok(())
        })
    }

    /// Adds `name` in `dir` as another name of `target` (not a directory).
    pub fn link(&mut self, dir: u32, name: &[u8], target: u32) -> Result<()> {
        self.writable()?;
        check_name(name)?;
        let mut inode = self.inode(target)?;
        if inode.stat.file_type == FileType::Directory {
            return Err(Error::IsADirectory);
        }
        if inode.stat.links >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        let dir_inode = self.inode(dir)?;
        match self.lookup_in(&dir_inode, name) {
            Ok(_) => return Err(Error::Exists),
            Err(Error::NotFound) => {}
            Err(err) => return Err(err),
        }
        self.add_entry(dir, name, target, inode.stat.file_type)?;
        inode.stat.links += 1;
        inode.stat.ctime = self.now;
        self.write_inode(&inode)
    }

    /// Allocates and initialises an inode of `mode`, lets `fill` give it
    /// its contents, and enters it in `dir` as `name`. On failure what it
    /// allocated is given back.
    fn new_node(
        &mut self,
        dir: u32,
        name: &[u8],
        mode: u16,
        uid: u32,
        gid: u32,
        fill: impl FnOnce(&mut Self, &mut Inode) -> Result<()>,
    ) -> Result<u32> {
        self.writable()?;
        check_name(name)?;
        let dir_inode = self.inode(dir)?;
        match self.lookup_in(&dir_inode, name) {
            Ok(_) => return Err(Error::Exists),
            Err(Error::NotFound) => {}
            Err(err) => return Err(err),
        }
        let file_type = FileType::from_mode(mode);
        let kind = Kind::Inode {
            dir: file_type == FileType::Directory,
        };
        let ino = self.allocate(kind)?;
        let mut inode = match self.init_inode(ino, mode, uid, gid) {
            Ok(inode) => inode,
            Err(err) => {
                self.release(kind, ino)?;
                return Err(err);
            }
        };
        let result = fill(self, &mut inode)
            .and_then(|()| self.write_inode(&inode))
            .and_then(|()| self.add_entry(dir, name, ino, file_type));
        if let Err(err) = result {
            // Undone as an unlink would: its blocks and bit freed, and the
            // record marked deleted, so e2fsck finds no orphan.
            inode.stat.links = 0;
            // The first failure is the one to report: a cleanup failing too
            // (the same broken disk, usually) must not hide why.
            let _ = self.delete_inode(&mut inode, kind);
            return Err(err);
        }
        Ok(ino)
    }

    /// Writes a fresh inode record: no data, one link, the times now.
    fn init_inode(&mut self, ino: u32, mode: u16, uid: u32, gid: u32) -> Result<Inode> {
        let at = self.inode_offset(ino)?;
        let mut record = vec![0u8; usize::from(self.sb.inode_size)];
        if self.sb.inode_size >= 128 + EXTRA_ISIZE {
            if let Some(dst) = record.get_mut(128..130) {
                dst.copy_from_slice(&EXTRA_ISIZE.to_le_bytes());
            }
        }
        self.dev.write_class(at, &record, WriteClass::InodeTable)?;
        let inode = Inode {
            stat: crate::Stat {
                ino,
                mode,
                file_type: FileType::from_mode(mode),
                uid,
                gid,
                size: 0,
                links: 1,
                atime: self.now,
                mtime: self.now,
                ctime: self.now,
            },
            sectors: 0,
            dtime: 0,
            file_acl: 0,
            flags: 0,
            block: [0; BLOCK_POINTERS],
            inline: [0; INLINE_BYTES],
        };
        self.write_inode(&inode)?;
        Ok(inode)
    }

    /// Clears the bitmap bit of block or inode `number` and raises the free counts.
    pub(crate) fn release(&mut self, kind: Kind, number: u32) -> Result<()> {
        let (index, per_group, bitmap_of) = match kind {
            Kind::Block => (
                number
                    .checked_sub(self.sb.first_data_block)
                    .ok_or(Error::Invalid)?,
                self.sb.blocks_per_group,
                (|d: &GroupDesc| d.block_bitmap) as fn(&GroupDesc) -> u32,
            ),
            Kind::Inode { .. } => (
                number.checked_sub(1).ok_or(Error::Invalid)?,
                self.sb.inodes_per_group,
                (|d: &GroupDesc| d.inode_bitmap) as fn(&GroupDesc) -> u32,
            ),
        };
        let group = (index / per_group) as usize;
        let bit = index % per_group;
        let desc = self.groups.get(group).ok_or(Error::Invalid)?;
        let at = self.block_offset(bitmap_of(desc)) + u64::from(bit / 8);
        let mut byte = [0u8];
        self.dev.read_at(at, &mut byte)?;
        let mask = 1u8 << (bit % 8);
        if byte[0] & mask == 0 {
            return Err(Error::Corrupt(
                "freeing what is already free",
                number.into(),
            ));
        }
        byte[0] &= !mask;
        self.dev.write_class(at, &byte, WriteClass::Bitmap)?;
        self.adjust_counts(group, kind, 1)
    }

    /// Adds the entry `name` → `ino` to directory `dir`: into the slack of an
    /// existing entry if one has room, else in a new block at the end.
    pub(crate) fn add_entry(
        &mut self,
        dir: u32,
        name: &[u8],
        ino: u32,
        file_type: FileType,
    ) -> Result<()> {
        let mut inode = self.inode(dir)?;
        let size = self.dir_size(&inode)?;
        let block_size = self.sb.block_size as usize;
        let needed = entry_size(name.len());
        let filetype = self.sb.has_filetype();
        let file_type = if filetype {
            file_type
        } else {
            FileType::Unknown
        };
        let mut buf = vec![0u8; block_size];
        // A linear change voids a hash index: the directory becomes linear.
        inode.flags &= !INDEX_FL;
        inode.stat.mtime = self.now;
        inode.stat.ctime = self.now;
        for logical in 0..size / block_size as u64 {
            let block = self
                .map_block(&inode, logical)?
                .ok_or(Error::Corrupt("hole in a directory", logical))?;
            self.dev.read_at(self.block_offset(block), &mut buf)?;
            let mut offset = 0usize;
            while offset < block_size {
                let rest = buf.get(offset..).unwrap_or_default();
                let entry_ino = le32(rest, 0);
                let rec_len = usize::from(le16(rest, 4));
                let name_len = if filetype {
                    usize::from(rest.get(6).copied().unwrap_or(0))
                } else {
                    usize::from(le16(rest, 6))
                };
                if rec_len < HEADER || !rec_len.is_multiple_of(4) || rec_len > rest.len() {
                    return Err(Error::Corrupt("directory entry length", rec_len as u64));
                }
                let used = if entry_ino == 0 {
                    0
                } else {
                    entry_size(name_len)
                };
                if used > rec_len {
                    return Err(Error::Corrupt(
                        "directory entry name overruns its record",
                        name_len as u64,
                    ));
                }
                if rec_len - used >= needed {
                    if used > 0 {
                        put_entry(&mut buf, offset, entry_ino, used, None)?;
                    }
                    let at = offset + used;
                    put_entry(&mut buf, at, ino, rec_len - used, Some((name, file_type)))?;
                    self.dev
                        .write_class(self.block_offset(block), &buf, WriteClass::Directory)?;
                    return self.write_inode(&inode);
                }
                offset += rec_len;
            }
        }
        let logical = size / block_size as u64;
        // The new block goes to the disk empty (one unused entry), and the
        // name into it as `Directory`, after the inode it names.
        buf.fill(0);
        put_entry(&mut buf, 0, 0, block_size, None)?;
        let (block, _) =
            self.map_or_allocate(&mut inode, logical, (0, &buf), WriteClass::Directory)?;
        put_entry(&mut buf, 0, ino, block_size, Some((name, file_type)))?;
        self.dev
            .write_class(self.block_offset(block), &buf, WriteClass::Directory)?;
        inode.stat.size = size + block_size as u64;
        self.write_inode(&inode)
    }
}

/// Writes an entry header at `offset` of `buf`; with a name, the name too
/// (without, only the inode and record length change).
fn put_entry(
    buf: &mut [u8],
    offset: usize,
    ino: u32,
    rec_len: usize,
    name: Option<(&[u8], FileType)>,
) -> Result<()> {
    let rec_len = u16::try_from(rec_len).map_err(|_| Error::Invalid)?;
    let mut header = [0u8; HEADER];
    let at = buf.get(offset..offset + HEADER).ok_or(Error::Invalid)?;
    header.copy_from_slice(at);
    let (name_len, kind) = match name {
        Some((name, file_type)) => (
            u8::try_from(name.len()).map_err(|_| Error::NameTooLong)?,
            dirent_type(file_type),
        ),
        None => (
            header.get(6).copied().unwrap_or(0),
            header.get(7).copied().unwrap_or(0),
        ),
    };
    let fields = [
        ino.to_le_bytes(),
        [
            rec_len.to_le_bytes()[0],
            rec_len.to_le_bytes()[1],
            name_len,
            kind,
        ],
    ];
    header.copy_from_slice(fields.as_flattened());
    buf.get_mut(offset..offset + HEADER)
        .ok_or(Error::Invalid)?
        .copy_from_slice(&header);
    if let Some((name, _)) = name {
        let dst = buf
            .get_mut(offset + HEADER..offset + HEADER + name.len())
            .ok_or(Error::Invalid)?;
        dst.copy_from_slice(name);
    }
    Ok(())
}

/// A directory entry's `file_type` byte.
pub(crate) fn dirent_type(file_type: FileType) -> u8 {
    match file_type {
        FileType::Regular => 1,
        FileType::Directory => 2,
        FileType::CharDevice => 3,
        FileType::BlockDevice => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
        FileType::Unknown => 0,
    }
}
