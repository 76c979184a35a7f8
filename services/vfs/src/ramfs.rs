//! An in-memory file system (for `/tmp`): files as byte vectors under a
//! total byte limit, directories, symbolic links and hard links. Inode
//! numbers stay while the inode lives; a freed one is given out again.
//!
//! The limit bounds all the memory the file system holds, not only file
//! bytes: every inode and every directory entry is charged a fixed cost
//! for its bookkeeping (plus the entry's name), so a client cannot fill
//! the server's heap with empty files, directories or hard links.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;

use kaal_protocols::file::{kind, Attrs, FileStat, FsError};

use crate::fs::{FileSystem, Ino};
use crate::path::COMPONENT_MAX;

/// The root directory's inode number.
const ROOT: Ino = 1;
/// Most links an inode may have (as ext2).
const LINK_MAX: u32 = 32_000;
/// Readdir cookies of `.` and `..`; entries count from here.
const FIRST_ENTRY: u64 = 2;

#[derive(Debug)]
struct Dir {
    /// Entries by name: their inode and their readdir cookie. The name is
    /// shared with `order` (stored once, charged once).
    names: BTreeMap<Rc<[u8]>, (Ino, u64)>,
    /// Entries by cookie, so a readdir resumes where it stopped whatever
    /// was added or removed in between.
    order: BTreeMap<u64, Rc<[u8]>>,
    next_cookie: u64,
    parent: Ino,
}

#[derive(Debug)]
enum Data {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Vec<u8>),
}

#[derive(Debug)]
struct Node {
    data: Data,
    perm: u16,
    uid: u32,
    gid: u32,
    links: u32,
    atime: u64,
    mtime: u64,
    ctime: u64,
}

/// The in-memory file system.
#[derive(Debug)]
pub struct RamFs {
    /// Inode `n` at index `n - 1`; `None` when free.
    nodes: Vec<Option<Node>>,
    free: BTreeSet<Ino>,
    /// Bytes allowed, and in use (see [`RamFs::new`]).
    limit: u64,
    used: u64,
    now: u64,
}

/// Bytes charged for each inode: its slot in `nodes` (twice, for the
/// vector's doubling), a `free` set entry, and for a directory the two
/// B-tree root leaves its first entry allocates (about 370 and 280 bytes
/// on 64-bit). Sized from those layouts with room to spare; the
/// `ramfs_heap` test checks the real heap stays under `used()`.
pub const NODE_COST: u64 = 1024;
/// Bytes charged for each directory entry besides its name: its slots in
/// the two B-trees (nodes at least half full: about 80 and 60 bytes a
/// slot, with the internal nodes' edges) and the shared name's header and
/// allocator rounding.
pub const ENTRY_COST: u64 = 256;

/// What an entry named `name` is charged.
fn entry_cost(name: &[u8]) -> u64 {
    ENTRY_COST + name.len() as u64
}

/// A name for a new entry: not empty, `.`, `..`, nor with `/` or NUL.
fn check_name(name: &[u8]) -> Result<(), FsError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(FsError::Invalid);
    }
    if name.len() > COMPONENT_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

impl Dir {
    fn new(parent: Ino) -> Self {
        Dir {
            names: BTreeMap::new(),
            order: BTreeMap::new(),
            next_cookie: FIRST_ENTRY,
            parent,
        }
    }

    fn insert(&mut self, name: &[u8], ino: Ino) {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        let name: Rc<[u8]> = Rc::from(name);
        self.names.insert(name.clone(), (ino, cookie));
        self.order.insert(cookie, name);
    }

    fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let (ino, cookie) = self.names.remove(name)?;
        self.order.remove(&cookie);
        Some(ino)
    }
}

impl RamFs {
    /// An empty file system holding at most `limit` bytes: file data, link
    /// targets, and [`NODE_COST`] per inode and [`ENTRY_COST`] plus the
    /// name per directory entry (the root's own cost is not counted).
    pub fn new(limit: u64) -> Self {
        let root = Node {
            data: Data::Dir(Dir::new(ROOT)),
            perm: 0o1777,
            uid: 0,
            gid: 0,
            links: 2,
            atime: 0,
            mtime: 0,
            ctime: 0,
        };
        RamFs {
            nodes: alloc::vec![Some(root)],
            free: BTreeSet::new(),
            limit,
            used: 0,
            now: 0,
        }
    }

    /// Bytes in use: file data, link targets, and the inodes' and entries'
    /// charges.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Inodes in use (the root included).
    pub fn inodes(&self) -> usize {
        self.nodes.iter().flatten().count()
    }

    fn node(&self, ino: Ino) -> Result<&Node, FsError> {
        let index = usize::try_from(ino.wrapping_sub(1)).map_err(|_| FsError::NotFound)?;
        self.nodes
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(FsError::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, FsError> {
        let index = usize::try_from(ino.wrapping_sub(1)).map_err(|_| FsError::NotFound)?;
        self.nodes
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or(FsError::NotFound)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, FsError> {
        match &self.node(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(FsError::NotADirectory),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, FsError> {
        match &mut self.node_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(FsError::NotADirectory),
        }
    }

    /// Inode of `name` in `dir` (`.` and `..` excluded).
    fn entry(&self, dir: Ino, name: &[u8]) -> Result<Option<Ino>, FsError> {
        Ok(self.dir(dir)?.names.get(name).map(|&(ino, _)| ino))
    }

    /// Takes `bytes` more of the limit, or `NoSpace`.
    fn charge(&mut self, bytes: u64) -> Result<(), FsError> {
        let used = self.used.checked_add(bytes).ok_or(FsError::NoSpace)?;
        if used > self.limit {
            return Err(FsError::NoSpace);
        }
        self.used = used;
        Ok(())
    }

    /// Gives `bytes` back to the limit.
    fn refund(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// Zero-fills file `ino` up to `len` bytes (if shorter), reserving
    /// exactly the charged growth: no uncounted spare capacity, and a
    /// failed allocation is `NoSpace` rather than an abort.
    fn grow(&mut self, ino: Ino, len: usize) -> Result<(), FsError> {
        if let Data::File(bytes) = &mut self.node_mut(ino)?.data {
            if let Some(more) = len.checked_sub(bytes.len()).filter(|&m| m > 0) {
                bytes
                    .try_reserve_exact(more)
                    .map_err(|_| FsError::NoSpace)?;
                bytes.resize(len, 0);
            }
        }
        Ok(())
    }

    /// A new inode: the lowest free number, else the next one.
    fn alloc(&mut self, data: Data, perm: u16, uid: u32, gid: u32, links: u32) -> Ino {
        let node = Node {
            data,
            perm: perm & 0o7777,
            uid,
            gid,
            links,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
        };
        match self.free.pop_first() {
            Some(ino) => {
                if let Some(slot) = usize::try_from(ino - 1)
                    .ok()
                    .and_then(|i| self.nodes.get_mut(i))
                {
                    *slot = Some(node);
                }
                ino
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() as Ino
            }
        }
    }

    /// Frees inode `ino` and gives its bytes and its cost back to the limit.
    fn release(&mut self, ino: Ino) {
        let Some(slot) = usize::try_from(ino.wrapping_sub(1))
            .ok()
            .and_then(|i| self.nodes.get_mut(i))
        else {
            return;
        };
        if let Some(node) = slot.take() {
            let bytes = match &node.data {
                Data::File(b) | Data::Symlink(b) => b.len() as u64,
                Data::Dir(_) => 0,
            };
            self.used = self.used.saturating_sub(bytes + NODE_COST);
            self.free.insert(ino);
        }
    }

    /// Drops one link of `ino`; frees it with its last.
    fn unlink_node(&mut self, ino: Ino) -> Result<(), FsError> {
        let now = self.now;
        let node = self.node_mut(ino)?;
        node.links = node.links.saturating_sub(1);
        node.ctime = now;
        if node.links == 0 {
            self.release(ino);
        }
        Ok(())
    }

    fn touch_dir(&mut self, dir: Ino) -> Result<(), FsError> {
        let now = self.now;
        let node = self.node_mut(dir)?;
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// Adds `delta` to directory `dir`'s link count.
    fn add_links(&mut self, dir: Ino, delta: i64) -> Result<(), FsError> {
        let node = self.node_mut(dir)?;
        let links = i64::from(node.links) + delta;
        node.links = u32::try_from(links).map_err(|_| FsError::Corrupt)?;
        Ok(())
    }

    /// A new entry's checks: `dir` a directory without `name`.
    fn check_new(&self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        check_name(name)?;
        match self.entry(dir, name)? {
            Some(_) => Err(FsError::Exists),
            None => Ok(()),
        }
    }

    /// Adds entry `name` for `ino` to `dir`; the caller charged it.
    fn new_entry(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), FsError> {
        self.dir_mut(dir)?.insert(name, ino);
        self.touch_dir(dir)
    }

    /// Removes entry `name` from `dir` and refunds its charge.
    fn drop_entry(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        if self.dir_mut(dir)?.remove(name).is_some() {
            self.refund(entry_cost(name));
        }
        Ok(())
    }

    /// Whether directory `dir` is `ancestor` or lies below it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> Result<bool, FsError> {
        // Each step goes one level up; a tree deeper than the inodes is
        // impossible, so the bound only guards against a bug looping.
        for _ in 0..=self.nodes.len() {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ROOT {
                return Ok(false);
            }
            dir = self.dir(dir)?.parent;
        }
        Err(FsError::Corrupt)
    }

    fn is_dir(&self, ino: Ino) -> Result<bool, FsError> {
        Ok(matches!(self.node(ino)?.data, Data::Dir(_)))
    }
}

impl FileSystem for RamFs {
    fn root(&self) -> Ino {
        ROOT
    }

    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, FsError> {
        if name.len() > COMPONENT_MAX {
            return Err(FsError::NameTooLong);
        }
        let d = self.dir(dir)?;
        match name {
            b"" => Err(FsError::Invalid),
            b"." => Ok(dir),
            b".." => Ok(d.parent),
            _ => d
                .names
                .get(name)
                .map(|&(ino, _)| ino)
                .ok_or(FsError::NotFound),
        }
    }

    fn stat(&mut self, ino: Ino) -> Result<FileStat, FsError> {
        let node = self.node(ino)?;
        let (kind, size) = match &node.data {
            Data::File(b) => (kind::REGULAR, b.len() as u64),
            Data::Symlink(b) => (kind::SYMLINK, b.len() as u64),
            Data::Dir(d) => (kind::DIRECTORY, d.names.len() as u64),
        };
        Ok(FileStat {
            ino,
            dev: 0,
            kind,
            perm: node.perm,
            links: node.links,
            uid: node.uid,
            gid: node.gid,
            size,
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
        })
    }

    fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let data = match &self.node(ino)?.data {
            Data::File(b) => b,
            Data::Dir(_) => return Err(FsError::IsADirectory),
            Data::Symlink(_) => return Err(FsError::Invalid),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = data.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let len = match &self.node(ino)?.data {
            Data::File(b) => b.len() as u64,
            Data::Dir(_) => return Err(FsError::IsADirectory),
            Data::Symlink(_) => return Err(FsError::Invalid),
        };
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::Invalid)?;
        // Growth is charged before any memory is taken, so a huge offset is
        // NoSpace, not an allocation failure.
        self.charge(end.saturating_sub(len))?;
        let (start, end) = match (usize::try_from(offset), usize::try_from(end)) {
            (Ok(s), Ok(e)) => (s, e),
            _ => {
                self.refund(end.saturating_sub(len));
                return Err(FsError::NoSpace);
            }
        };
        if self.grow(ino, end).is_err() {
            self.refund((end as u64).saturating_sub(len));
            return Err(FsError::NoSpace);
        }
        let now = self.now;
        let node = self.node_mut(ino)?;
        if let Data::File(bytes) = &mut node.data {
            if let Some(dst) = bytes.get_mut(start..end) {
                dst.copy_from_slice(data);
            }
        }
        if !data.is_empty() {
            node.mtime = now;
            node.ctime = now;
        }
        Ok(data.len())
    }

    fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), FsError> {
        let len = match &self.node(ino)?.data {
            Data::File(b) => b.len() as u64,
            Data::Dir(_) => return Err(FsError::IsADirectory),
            Data::Symlink(_) => return Err(FsError::Invalid),
        };
        self.charge(size.saturating_sub(len))?;
        let grown = usize::try_from(size).map_err(|_| FsError::NoSpace);
        if grown.and_then(|new_len| self.grow(ino, new_len)).is_err() {
            self.refund(size.saturating_sub(len));
            return Err(FsError::NoSpace);
        }
        self.refund(len.saturating_sub(size));
        let now = self.now;
        let node = self.node_mut(ino)?;
        if let Data::File(bytes) = &mut node.data {
            bytes.truncate(usize::try_from(size).unwrap_or(usize::MAX));
            bytes.shrink_to_fit();
        }
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    fn setattr(&mut self, ino: Ino, attrs: &Attrs) -> Result<(), FsError> {
        let now = self.now;
        let node = self.node_mut(ino)?;
        if let Some(mode) = attrs.mode {
            node.perm = mode & 0o7777;
        }
        if let Some(atime) = attrs.atime {
            node.atime = atime;
        }
        if let Some(mtime) = attrs.mtime {
            node.mtime = mtime;
        }
        node.ctime = now;
        Ok(())
    }

    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        self.check_new(dir, name)?;
        self.charge(NODE_COST + entry_cost(name))?;
        let ino = self.alloc(Data::File(Vec::new()), perm, uid, gid, 1);
        self.new_entry(dir, name, ino)?;
        Ok(ino)
    }

    fn mkdir(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        self.check_new(dir, name)?;
        if self.node(dir)?.links >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        self.charge(NODE_COST + entry_cost(name))?;
        let ino = self.alloc(Data::Dir(Dir::new(dir)), perm, uid, gid, 2);
        self.new_entry(dir, name, ino)?;
        self.add_links(dir, 1)?;
        Ok(ino)
    }

    fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        if name == b"." || name == b".." {
            return Err(FsError::Invalid);
        }
        let ino = self.entry(dir, name)?.ok_or(FsError::NotFound)?;
        if self.is_dir(ino)? {
            return Err(FsError::IsADirectory);
        }
        self.drop_entry(dir, name)?;
        self.touch_dir(dir)?;
        self.unlink_node(ino)
    }

    fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        if name == b"." || name == b".." {
            return Err(FsError::Invalid);
        }
        let ino = self.entry(dir, name)?.ok_or(FsError::NotFound)?;
        if !self.dir(ino)?.names.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.drop_entry(dir, name)?;
        self.touch_dir(dir)?;
        self.add_links(dir, -1)?;
        self.release(ino);
        Ok(())
    }

    fn rename(
        &mut self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
    ) -> Result<(), FsError> {
        check_name(new_name)?;
        if old_name == b"." || old_name == b".." {
            return Err(FsError::Invalid);
        }
        self.dir(new_dir)?;
        let ino = self.entry(old_dir, old_name)?.ok_or(FsError::NotFound)?;
        let is_dir = self.is_dir(ino)?;
        if is_dir && old_dir != new_dir && self.is_within(new_dir, ino)? {
            // Moving a directory into itself would cut it off from the root.
            return Err(FsError::Invalid);
        }
        let replaced = self.entry(new_dir, new_name)?;
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            match (is_dir, self.is_dir(old)?) {
                (true, false) => return Err(FsError::NotADirectory),
                (false, true) => return Err(FsError::IsADirectory),
                (true, true) if !self.dir(old)?.names.is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
        }
        // A longer name costs more; replacing an entry frees at least as
        // much as the moved one then costs.
        let growth = match replaced {
            Some(_) => 0,
            None => (new_name.len() as u64).saturating_sub(old_name.len() as u64),
        };
        self.charge(growth)?;
        // Checked above: nothing below fails but on a missing inode.
        if let Some(old) = replaced {
            self.drop_entry(new_dir, new_name)?;
            if is_dir {
                self.add_links(new_dir, -1)?;
                self.release(old);
            } else {
                self.unlink_node(old)?;
            }
        }
        self.dir_mut(old_dir)?.remove(old_name);
        self.dir_mut(new_dir)?.insert(new_name, ino);
        // The moved entry now costs its new name's (within the limit: see
        // `growth`).
        self.refund(growth + entry_cost(old_name));
        self.used = self.used.saturating_add(entry_cost(new_name));
        if is_dir && old_dir != new_dir {
            self.dir_mut(ino)?.parent = new_dir;
            self.add_links(old_dir, -1)?;
            self.add_links(new_dir, 1)?;
        }
        self.touch_dir(old_dir)?;
        self.touch_dir(new_dir)?;
        let now = self.now;
        self.node_mut(ino)?.ctime = now;
        Ok(())
    }

    fn link(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), FsError> {
        check_name(name)?;
        let node = self.node(ino)?;
        if matches!(node.data, Data::Dir(_)) {
            return Err(FsError::IsADirectory);
        }
        if node.links >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        self.check_new(dir, name)?;
        self.charge(entry_cost(name))?;
        let now = self.now;
        let node = self.node_mut(ino)?;
        node.links += 1;
        node.ctime = now;
        self.new_entry(dir, name, ino)
    }

    fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Result<Ino, FsError> {
        if target.is_empty() || target.contains(&0) {
            return Err(FsError::Invalid);
        }
        self.check_new(dir, name)?;
        self.charge(target.len() as u64 + NODE_COST + entry_cost(name))?;
        let ino = self.alloc(Data::Symlink(target.to_vec()), 0o777, 0, 0, 1);
        self.new_entry(dir, name, ino)?;
        Ok(ino)
    }

    fn read_link(&mut self, ino: Ino) -> Result<Vec<u8>, FsError> {
        match &self.node(ino)?.data {
            Data::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::NotASymlink),
        }
    }

    fn read_dir_page(
        &mut self,
        dir: Ino,
        cookie: u64,
        out: &mut dyn FnMut(Ino, u8, &[u8]) -> bool,
    ) -> Result<Option<u64>, FsError> {
        let d = self.dir(dir)?;
        if cookie == 0 && !out(dir, kind::DIRECTORY, b".") {
            return Ok(Some(0));
        }
        if cookie <= 1 && !out(d.parent, kind::DIRECTORY, b"..") {
            return Ok(Some(1));
        }
        for (&at, name) in d.order.range(cookie.max(FIRST_ENTRY)..) {
            let Some(&(ino, _)) = d.names.get(&**name) else {
                continue;
            };
            let kind = match self.node(ino).map(|n| &n.data) {
                Ok(Data::File(_)) => kind::REGULAR,
                Ok(Data::Dir(_)) => kind::DIRECTORY,
                Ok(Data::Symlink(_)) => kind::SYMLINK,
                Err(_) => kind::UNKNOWN,
            };
            if !out(ino, kind, name) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }

    fn set_time(&mut self, now: u64) {
        self.now = now;
    }
}
