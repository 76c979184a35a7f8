//! The name space: a mount table over file systems, and every operation
//! that names a file by path. Paths are resolved here, one component at a
//! time, so mount points, `..` across them and symbolic links into another
//! file system all work whatever file systems are mounted.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use kaal_protocols::file::{kind, Attrs, FileStat, FsError, PATH_BYTES};

use crate::fs::{FileSystem, Ino};
use crate::path::{self, SYMLINK_LIMIT};

/// A file in the name space: which mount (its index, also the `dev` that
/// `stat` reports) and the inode within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    pub mount: u32,
    pub ino: Ino,
}

struct Mount {
    fs: Box<dyn FileSystem>,
    root: Ino,
    /// The directory of another mount this one hides; `None` for `/`.
    covers: Option<Node>,
}

/// Names kept in [`Vfs::names`] at most; past that they are all forgotten
/// and kept again as they are looked up.
const NAMES_KEPT: usize = 1024;

/// The mount table and path resolution.
#[derive(Default)]
pub struct Vfs {
    mounts: Vec<Mount>,
    /// Names looked up before, (mount, directory, name) to inode, so a
    /// walk does not scan the same directories again: a busybox applet's
    /// `/bin/NAME` and its link to `/bin/busybox` are two scans of a
    /// directory of hundreds of entries. A change of a name forgets it;
    /// `.` and `..` are not kept (a directory's `..` moves with a rename).
    /// By (mount, directory), so that a look-up needs no key allocated.
    names: BTreeMap<(u32, Ino), BTreeMap<Vec<u8>, Ino>>,
    /// Names in `names`.
    names_kept: usize,
}

impl core::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let covers: Vec<_> = self.mounts.iter().map(|m| (m.root, m.covers)).collect();
        f.debug_struct("Vfs").field("mounts", &covers).finish()
    }
}

/// The parent directory of a path's last component, and that component.
struct Entry {
    dir: Node,
    name: Vec<u8>,
    /// A `/` followed the name: it must be a directory.
    trailing: bool,
}

impl Vfs {
    /// A name space with nothing mounted: mount the root file system at `/`
    /// first.
    pub fn new() -> Self {
        Vfs::default()
    }

    /// Mounts `fs` at `path`: `/` first, then on an existing directory that
    /// is neither a mount point nor a mounted root (`Busy`). The new mount's
    /// number (its `dev`).
    pub fn mount(&mut self, path: &[u8], fs: Box<dyn FileSystem>) -> Result<u32, FsError> {
        let root = fs.root();
        let number = u32::try_from(self.mounts.len()).map_err(|_| FsError::Busy)?;
        if self.mounts.is_empty() {
            path::check(path)?;
            if path::components(path).next().is_some() || path.first() != Some(&b'/') {
                return Err(FsError::NotFound);
            }
            self.mounts.push(Mount {
                fs,
                root,
                covers: None,
            });
            return Ok(number);
        }
        let at = self.resolve(path, true)?;
        if self.stat_node(at)?.kind != kind::DIRECTORY {
            return Err(FsError::NotADirectory);
        }
        if self.is_mount_root(at) {
            return Err(FsError::Busy);
        }
        self.mounts.push(Mount {
            fs,
            root,
            covers: Some(at),
        });
        Ok(number)
    }

    /// The root directory (`NotFound` before `/` is mounted).
    pub fn root(&self) -> Result<Node, FsError> {
        let m = self.mounts.first().ok_or(FsError::NotFound)?;
        Ok(Node {
            mount: 0,
            ino: m.root,
        })
    }

    /// Mount `mount`'s file system.
    pub fn fs(&mut self, mount: u32) -> Result<&mut dyn FileSystem, FsError> {
        let m = usize::try_from(mount)
            .ok()
            .and_then(|i| self.mounts.get_mut(i))
            .ok_or(FsError::NotFound)?;
        Ok(&mut *m.fs)
    }

    fn is_mount_root(&self, node: Node) -> bool {
        usize::try_from(node.mount)
            .ok()
            .and_then(|i| self.mounts.get(i))
            .is_some_and(|m| m.root == node.ino)
    }

    /// The root of the mount hiding `node`, or `node` when none does.
    fn cross(&self, node: Node) -> Node {
        self.mounts
            .iter()
            .position(|m| m.covers == Some(node))
            .and_then(|i| u32::try_from(i).ok())
            .and_then(|mount| {
                let m = self.mounts.get(mount as usize)?;
                Some(Node { mount, ino: m.root })
            })
            .unwrap_or(node)
    }

    /// The inode `name` names in directory `dir`, kept for the next time.
    fn lookup(&mut self, dir: Node, name: &[u8]) -> Result<Ino, FsError> {
        let key = (dir.mount, dir.ino);
        if let Some(&ino) = self.names.get(&key).and_then(|n| n.get(name)) {
            return Ok(ino);
        }
        let ino = self.fs(dir.mount)?.lookup(dir.ino, name)?;
        if name != b"." && name != b".." {
            if self.names_kept >= NAMES_KEPT {
                self.names.clear();
                self.names_kept = 0;
            }
            if self
                .names
                .entry(key)
                .or_default()
                .insert(name.to_vec(), ino)
                .is_none()
            {
                self.names_kept += 1;
            }
        }
        Ok(ino)
    }

    /// Forgets what `name` in `dir` named (it is about to change).
    fn forget(&mut self, dir: Node, name: &[u8]) {
        let Some(names) = self.names.get_mut(&(dir.mount, dir.ino)) else {
            return;
        };
        if names.remove(name).is_some() {
            self.names_kept = self.names_kept.saturating_sub(1);
        }
        if names.is_empty() {
            self.names.remove(&(dir.mount, dir.ino));
        }
    }

    /// `name` in directory `dir`, through a mount point into what is mounted.
    fn child(&mut self, dir: Node, name: &[u8]) -> Result<Node, FsError> {
        let ino = self.lookup(dir, name)?;
        Ok(self.cross(Node {
            mount: dir.mount,
            ino,
        }))
    }

    /// The directory above `dir`: from a mounted root, the parent of the
    /// directory it hides; `/` for `/`.
    fn parent(&mut self, dir: Node) -> Result<Node, FsError> {
        let mount = usize::try_from(dir.mount)
            .ok()
            .and_then(|i| self.mounts.get(i))
            .ok_or(FsError::NotFound)?;
        let at = match (mount.root == dir.ino, mount.covers) {
            (true, None) => return Ok(dir),
            // A mount never covers another's root, so one step suffices.
            (true, Some(covered)) => covered,
            (false, _) => dir,
        };
        self.child(at, b"..")
    }

    /// Resolves `path` (relative paths from `/`): `.`, `..` across mounts,
    /// symbolic links (relative to their directory; the last one only when
    /// `follow_last`), at most [`SYMLINK_LIMIT`] of them.
    pub fn resolve(&mut self, path: &[u8], follow_last: bool) -> Result<Node, FsError> {
        path::check(path)?;
        let mut current = self.root()?;
        let mut is_dir = true;
        // Components still to walk, the next one last; owned, because a
        // link's target is spliced in.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        path::push_components(&mut pending, path);
        let mut links = 0u32;
        while let Some(name) = pending.pop() {
            if !is_dir {
                return Err(FsError::NotADirectory);
            }
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    current = self.parent(current)?;
                    continue;
                }
                _ => {}
            }
            let next = self.child(current, &name)?;
            let stat = self.fs(next.mount)?.stat(next.ino)?;
            if stat.kind == kind::SYMLINK && (follow_last || !pending.is_empty()) {
                links += 1;
                if links > SYMLINK_LIMIT {
                    return Err(FsError::SymlinkLoop);
                }
                let target = self.fs(next.mount)?.read_link(next.ino)?;
                // A target from the disk is checked like a client's path.
                path::check_at_most(&target, path::TARGET_MAX)?;
                if target.first() == Some(&b'/') {
                    current = self.root()?;
                }
                path::push_components(&mut pending, &target);
                continue;
            }
            current = next;
            is_dir = stat.kind == kind::DIRECTORY;
        }
        Ok(current)
    }

    /// The directory holding `path`'s last component, and the name. `/`
    /// has none (`Busy`); `.` and `..` name no entry to change (`Invalid`).
    fn entry(&mut self, path: &[u8]) -> Result<Entry, FsError> {
        path::check(path)?;
        let (dir_path, name, trailing) = path::split_last(path).ok_or(FsError::Busy)?;
        if name == b"." || name == b".." {
            return Err(FsError::Invalid);
        }
        let dir = if dir_path.is_empty() {
            self.root()?
        } else {
            self.resolve(dir_path, true)?
        };
        if self.stat_node(dir)?.kind != kind::DIRECTORY {
            return Err(FsError::NotADirectory);
        }
        Ok(Entry {
            dir,
            name: name.to_vec(),
            trailing,
        })
    }

    /// What `name` of an entry names, not crossing a mount point: `Busy`
    /// when something is mounted on it.
    fn existing(&mut self, e: &Entry) -> Result<Node, FsError> {
        let ino = self.lookup(e.dir, &e.name)?;
        let node = Node {
            mount: e.dir.mount,
            ino,
        };
        if self.cross(node) != node {
            return Err(FsError::Busy);
        }
        Ok(node)
    }

    /// `stat` of a node, with its mount as `dev`.
    pub fn stat_node(&mut self, node: Node) -> Result<FileStat, FsError> {
        let mut stat = self.fs(node.mount)?.stat(node.ino)?;
        stat.dev = node.mount;
        Ok(stat)
    }

    /// `stat` of `path`, following a final link when `follow`.
    pub fn stat(&mut self, path: &[u8], follow: bool) -> Result<FileStat, FsError> {
        let node = self.resolve(path, follow)?;
        self.stat_node(node)
    }

    /// Sets `node`'s permission bits and times: a mode past `0o7777` is
    /// `Invalid`, and a symbolic link's own mode `NotSupported` (as Linux:
    /// a link's permissions mean nothing); its times may change.
    pub fn setattr_node(&mut self, node: Node, attrs: &Attrs) -> Result<(), FsError> {
        if let Some(mode) = attrs.mode {
            if mode & !0o7777 != 0 {
                return Err(FsError::Invalid);
            }
            if self.stat_node(node)?.kind == kind::SYMLINK {
                return Err(FsError::NotSupported);
            }
        }
        self.fs(node.mount)?.setattr(node.ino, attrs)
    }

    /// [`Self::setattr_node`] of `path`, following a final link when `follow`.
    pub fn setattr(&mut self, path: &[u8], follow: bool, attrs: &Attrs) -> Result<(), FsError> {
        let node = self.resolve(path, follow)?;
        self.setattr_node(node, attrs)
    }

    /// Creates regular file `path` with permission bits `perm`.
    pub fn create(&mut self, path: &[u8], perm: u16) -> Result<Node, FsError> {
        let e = self.entry(path)?;
        if e.trailing {
            return Err(FsError::IsADirectory);
        }
        let ino = self
            .fs(e.dir.mount)?
            .create(e.dir.ino, &e.name, perm, 0, 0)?;
        Ok(Node {
            mount: e.dir.mount,
            ino,
        })
    }

    /// Creates directory `path`.
    pub fn mkdir(&mut self, path: &[u8], perm: u16) -> Result<(), FsError> {
        let e = match self.entry(path) {
            // `/`, `.` and `..` exist already.
            Err(FsError::Busy | FsError::Invalid) if path::check(path).is_ok() => {
                return Err(FsError::Exists)
            }
            other => other?,
        };
        self.fs(e.dir.mount)?
            .mkdir(e.dir.ino, &e.name, perm, 0, 0)
            .map(drop)
    }

    /// Removes the empty directory `path`; `Busy` for a mount point or `/`.
    pub fn rmdir(&mut self, path: &[u8]) -> Result<(), FsError> {
        let e = self.entry(path)?;
        self.existing(&e)?;
        self.forget(e.dir, &e.name);
        self.fs(e.dir.mount)?.rmdir(e.dir.ino, &e.name)
    }

    /// Removes the name `path` (not a directory).
    pub fn unlink(&mut self, path: &[u8]) -> Result<(), FsError> {
        let e = self.entry(path)?;
        let node = self.existing(&e)?;
        if e.trailing {
            return Err(match self.stat_node(node)?.kind {
                kind::DIRECTORY => FsError::IsADirectory,
                _ => FsError::NotADirectory,
            });
        }
        self.forget(e.dir, &e.name);
        self.fs(e.dir.mount)?.unlink(e.dir.ino, &e.name)
    }

    /// Renames `from` to `to` within one file system (`CrossDevice`
    /// otherwise), replacing what `to` names; a mount point is `Busy`.
    pub fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        let src = self.entry(from)?;
        let dst = self.entry(to)?;
        let node = self.existing(&src)?;
        match self.existing(&dst) {
            Ok(_) | Err(FsError::NotFound) => {}
            Err(err) => return Err(err),
        }
        if (src.trailing || dst.trailing) && self.stat_node(node)?.kind != kind::DIRECTORY {
            return Err(FsError::NotADirectory);
        }
        if src.dir.mount != dst.dir.mount {
            return Err(FsError::CrossDevice);
        }
        self.forget(src.dir, &src.name);
        self.forget(dst.dir, &dst.name);
        self.fs(src.dir.mount)?
            .rename(src.dir.ino, &src.name, dst.dir.ino, &dst.name)
    }

    /// Adds `new` as another name of `existing` (a final link of `existing`
    /// is not followed), within one file system.
    pub fn link(&mut self, existing: &[u8], new: &[u8]) -> Result<(), FsError> {
        let node = self.resolve(existing, false)?;
        let e = self.entry(new)?;
        if node.mount != e.dir.mount {
            return Err(FsError::CrossDevice);
        }
        if e.trailing {
            return Err(FsError::NotADirectory);
        }
        self.fs(e.dir.mount)?.link(e.dir.ino, &e.name, node.ino)
    }

    /// Creates `path` as a symbolic link to `target` (not resolved now).
    pub fn symlink(&mut self, target: &[u8], path: &[u8]) -> Result<(), FsError> {
        if target.is_empty() || target.contains(&0) {
            return Err(FsError::Invalid);
        }
        if target.len() > PATH_BYTES {
            return Err(FsError::NameTooLong);
        }
        let e = self.entry(path)?;
        if e.trailing {
            return Err(FsError::NotADirectory);
        }
        self.fs(e.dir.mount)?
            .symlink(e.dir.ino, &e.name, target)
            .map(drop)
    }

    /// The target of symbolic link `path`.
    pub fn read_link(&mut self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        let node = self.resolve(path, false)?;
        self.fs(node.mount)?.read_link(node.ino)
    }

    /// Syncs every file system; the first error, after trying them all.
    pub fn sync(&mut self) -> Result<(), FsError> {
        let mut result = Ok(());
        for m in &mut self.mounts {
            let r = m.fs.sync();
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The time stamped on changes in every file system.
    pub fn set_time(&mut self, now: u64) {
        for m in &mut self.mounts {
            m.fs.set_time(now);
        }
    }
}
