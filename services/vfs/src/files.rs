//! Each client's open files: one descriptor table per badge, so a client
//! can only ever name its own descriptors, and the operations on an open
//! file (access mode, offset, append, directory position).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use kaal_protocols::file::{flags, kind, whence, FsError};

use crate::fs::Ino;
use crate::vfs::{Node, Vfs};

/// Descriptors one client may hold at once.
pub const MAX_OPEN: usize = 64;
/// The largest offset or size (a POSIX `off_t` is signed).
const OFFSET_MAX: u64 = i64::MAX as u64;

/// Takes a chunk read from a file and its position in the result.
pub type Sink<'a> = dyn FnMut(&[u8], u64) -> Result<(), FsError> + 'a;
/// Fills a chunk to write with the data at its position.
pub type Source<'a> = dyn FnMut(&mut [u8], u64) -> Result<(), FsError> + 'a;

/// An open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub node: Node,
    /// The kind at open time (one of `kaal_protocols::file::kind`).
    pub kind: u8,
    pub offset: u64,
    pub flags: u32,
    /// Where `readdir` continues; `None` once it reached the end.
    pub cookie: Option<u64>,
    /// The file was removed while open: its inode may be free or another
    /// file's now, so every use but `close` is `BadDescriptor`.
    pub gone: bool,
}

impl OpenFile {
    fn readable(&self) -> bool {
        self.flags & flags::ACCESS != flags::WRITE_ONLY
    }
    fn writable(&self) -> bool {
        self.flags & flags::ACCESS != flags::READ_ONLY
    }
}

/// Every client's descriptors, by badge.
#[derive(Debug, Default)]
pub struct Files {
    tables: BTreeMap<u64, Vec<Option<OpenFile>>>,
}

impl Files {
    /// No client has a descriptor.
    pub fn new() -> Self {
        Files::default()
    }

    /// Descriptors `badge` holds.
    pub fn open_count(&self, badge: u64) -> usize {
        self.tables
            .get(&badge)
            .map_or(0, |t| t.iter().flatten().count())
    }

    /// Client `badge`'s open file `fd` (not one whose file is gone).
    pub fn get(&self, badge: u64, fd: u32) -> Result<&OpenFile, FsError> {
        self.tables
            .get(&badge)
            .and_then(|t| t.get(usize::try_from(fd).ok()?))
            .and_then(Option::as_ref)
            .filter(|f| !f.gone)
            .ok_or(FsError::BadDescriptor)
    }

    fn get_mut(&mut self, badge: u64, fd: u32) -> Result<&mut OpenFile, FsError> {
        self.tables
            .get_mut(&badge)
            .and_then(|t| t.get_mut(usize::try_from(fd).ok()?))
            .and_then(Option::as_mut)
            .filter(|f| !f.gone)
            .ok_or(FsError::BadDescriptor)
    }

    /// Marks every descriptor of `node`, of every client, as gone: the
    /// file was removed, and its inode number may be given to another
    /// file (the file systems free an inode with its last name).
    pub fn forget(&mut self, node: Node) {
        for file in self.tables.values_mut().flatten().flatten() {
            if file.node == node {
                file.gone = true;
            }
        }
    }

    /// Opens `path` for `badge` with `open_flags` (`mode`'s permission bits
    /// for a created file); the lowest free descriptor.
    pub fn open(
        &mut self,
        vfs: &mut Vfs,
        badge: u64,
        path: &[u8],
        open_flags: u32,
        mode: u32,
    ) -> Result<u32, FsError> {
        if open_flags & !flags::KNOWN != 0 || open_flags & flags::ACCESS == flags::ACCESS {
            return Err(FsError::Invalid);
        }
        let write = open_flags & flags::ACCESS != flags::READ_ONLY;
        let create = open_flags & flags::CREATE != 0;
        let exclusive = create && open_flags & flags::EXCLUSIVE != 0;
        if open_flags & flags::TRUNCATE != 0 && !write {
            return Err(FsError::Invalid);
        }
        // Checked before anything is created: a full table changes nothing.
        let fd = self.free_fd(badge)?;
        let follow = open_flags & flags::NO_FOLLOW == 0 && !exclusive;
        let (node, created) = match vfs.resolve(path, follow) {
            Ok(_) if exclusive => return Err(FsError::Exists),
            Ok(node) => (node, false),
            Err(FsError::NotFound) if create => {
                let perm = u16::try_from(mode & 0o7777).unwrap_or(0);
                (vfs.create(path, perm)?, true)
            }
            Err(err) => return Err(err),
        };
        let stat = vfs.stat_node(node)?;
        match stat.kind {
            kind::SYMLINK => return Err(FsError::SymlinkLoop),
            kind::DIRECTORY if write || create => return Err(FsError::IsADirectory),
            kind::DIRECTORY => {}
            _ if open_flags & flags::DIRECTORY != 0 => return Err(FsError::NotADirectory),
            _ => {}
        }
        if open_flags & flags::TRUNCATE != 0 && !created && stat.size != 0 {
            vfs.fs(node.mount)?.truncate(node.ino, 0)?;
        }
        let table = self.tables.entry(badge).or_default();
        let file = OpenFile {
            node,
            kind: stat.kind,
            offset: 0,
            flags: open_flags,
            cookie: Some(0),
            gone: false,
        };
        match table.get_mut(fd as usize) {
            Some(slot) => *slot = Some(file),
            None => table.push(Some(file)),
        }
        Ok(fd)
    }

    /// The lowest descriptor `badge` has free, or `TooManyOpen`.
    fn free_fd(&self, badge: u64) -> Result<u32, FsError> {
        let table = self.tables.get(&badge).map_or(&[][..], Vec::as_slice);
        let fd = table
            .iter()
            .position(Option::is_none)
            .unwrap_or(table.len());
        if fd >= MAX_OPEN {
            return Err(FsError::TooManyOpen);
        }
        u32::try_from(fd).map_err(|_| FsError::TooManyOpen)
    }

    /// Closes `fd` of `badge`.
    pub fn close(&mut self, badge: u64, fd: u32) -> Result<(), FsError> {
        let table = self.tables.get_mut(&badge).ok_or(FsError::BadDescriptor)?;
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| table.get_mut(i))
            .filter(|s| s.is_some())
            .ok_or(FsError::BadDescriptor)?;
        *slot = None;
        while table.last().is_some_and(Option::is_none) {
            table.pop();
        }
        if table.is_empty() {
            self.tables.remove(&badge);
        }
        Ok(())
    }

    /// Closes every descriptor of a client that went away.
    pub fn close_all(&mut self, badge: u64) {
        self.tables.remove(&badge);
    }

    /// Reads up to `len` bytes, and at most one `bounce` of them, at `fd`'s
    /// offset, handing the chunk and its position in the result (0) to
    /// `sink`. The offset advances only when the chunk was taken; the bytes
    /// read. One request never holds the server for more than one chunk
    /// (a lent region may be many MiB): the client asks again for the
    /// rest, as after any short read.
    pub fn read(
        &mut self,
        vfs: &mut Vfs,
        badge: u64,
        fd: u32,
        len: u64,
        bounce: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<u64, FsError> {
        let file = *self.get(badge, fd)?;
        if !file.readable() {
            return Err(FsError::BadDescriptor);
        }
        if file.kind == kind::DIRECTORY {
            return Err(FsError::IsADirectory);
        }
        let fs = vfs.fs(file.node.mount)?;
        let want = usize::try_from(len).unwrap_or(usize::MAX);
        let chunk = bounce.get_mut(..want.min(bounce.len())).unwrap_or_default();
        let n = fs.read(file.node.ino, file.offset, chunk)?;
        sink(chunk.get(..n).unwrap_or_default(), 0)?;
        self.get_mut(badge, fd)?.offset = file.offset.saturating_add(n as u64);
        Ok(n as u64)
    }

    /// Writes up to `len` bytes, and at most one `bounce` of them, at `fd`'s
    /// offset (its end with `APPEND`), the chunk filled into `bounce` by
    /// `source` with its position in the data (0). The offset follows what
    /// was written; the bytes written, short when `len` is more than one
    /// chunk (as [`Files::read`], so one request is bounded).
    pub fn write(
        &mut self,
        vfs: &mut Vfs,
        badge: u64,
        fd: u32,
        len: u64,
        bounce: &mut [u8],
        source: &mut Source<'_>,
    ) -> Result<u64, FsError> {
        let file = *self.get(badge, fd)?;
        if !file.writable() {
            return Err(FsError::BadDescriptor);
        }
        let start = if file.flags & flags::APPEND != 0 {
            vfs.stat_node(file.node)?.size
        } else {
            file.offset
        };
        if start.checked_add(len).is_none_or(|end| end > OFFSET_MAX) {
            return Err(FsError::Invalid);
        }
        let fs = vfs.fs(file.node.mount)?;
        let want = usize::try_from(len).unwrap_or(usize::MAX);
        let chunk = bounce.get_mut(..want.min(bounce.len())).unwrap_or_default();
        if chunk.is_empty() {
            return Ok(0);
        }
        source(chunk, 0)?;
        let n = fs.write(file.node.ino, start, chunk)?;
        self.get_mut(badge, fd)?.offset = start + n as u64;
        Ok(n as u64)
    }

    /// Moves `fd`'s offset; the new one. A directory only rewinds.
    pub fn seek(
        &mut self,
        vfs: &mut Vfs,
        badge: u64,
        fd: u32,
        offset: u64,
        from: u32,
    ) -> Result<u64, FsError> {
        let file = *self.get(badge, fd)?;
        // The protocol sends an i64 as its two's complement.
        let delta = offset as i64;
        let base = match from {
            whence::SET => 0,
            whence::CURRENT => file.offset,
            whence::END => vfs.stat_node(file.node)?.size,
            _ => return Err(FsError::Invalid),
        };
        let target = i64::try_from(base)
            .ok()
            .and_then(|b| b.checked_add(delta))
            .and_then(|t| u64::try_from(t).ok())
            .ok_or(FsError::Invalid)?;
        let f = self.get_mut(badge, fd)?;
        if file.kind == kind::DIRECTORY {
            if from != whence::SET || target != 0 {
                return Err(FsError::Invalid);
            }
            f.cookie = Some(0);
        }
        f.offset = target;
        Ok(target)
    }

    /// Hands `out` directory `fd`'s entries from where the last call
    /// stopped until it is full. The position to continue from (`None`:
    /// the end), which [`Files::set_cookie`] makes `fd`'s once what `out`
    /// took was delivered.
    pub fn readdir(
        &self,
        vfs: &mut Vfs,
        badge: u64,
        fd: u32,
        out: &mut dyn FnMut(Ino, u8, &[u8]) -> bool,
    ) -> Result<Option<u64>, FsError> {
        let file = self.get(badge, fd)?;
        if file.kind != kind::DIRECTORY {
            return Err(FsError::NotADirectory);
        }
        match file.cookie {
            Some(cookie) => vfs
                .fs(file.node.mount)?
                .read_dir_page(file.node.ino, cookie, out),
            None => Ok(None),
        }
    }

    /// Sets where directory `fd`'s next `readdir` continues.
    pub fn set_cookie(&mut self, badge: u64, fd: u32, cookie: Option<u64>) -> Result<(), FsError> {
        self.get_mut(badge, fd)?.cookie = cookie;
        Ok(())
    }

    /// Sets the size of the file open for writing as `fd`.
    pub fn truncate(
        &mut self,
        vfs: &mut Vfs,
        badge: u64,
        fd: u32,
        size: u64,
    ) -> Result<(), FsError> {
        let file = *self.get(badge, fd)?;
        if !file.writable() {
            return Err(FsError::BadDescriptor);
        }
        if size > OFFSET_MAX {
            return Err(FsError::Invalid);
        }
        vfs.fs(file.node.mount)?.truncate(file.node.ino, size)
    }
}
