//! What a file system offers the VFS: inodes and directory entries, never
//! paths (the VFS walks paths itself, so that mount points and `..` across
//! them work), and its implementation for `ext2::Ext2`.

use alloc::vec::Vec;

use ext2::{BlockDevice, Ext2, FileType};
use kaal_protocols::file::{kind, Attrs, FileStat, FsError};

/// An inode number within one file system.
pub type Ino = u64;

/// An inode-level file system. Names are single components (no `/`); `.`
/// and `..` are looked up like any name. Errors are the protocol's.
pub trait FileSystem {
    /// The root directory's inode.
    fn root(&self) -> Ino;
    /// The inode of `name` in directory `dir`.
    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, FsError>;
    /// Kind, permissions, owner, size, links and times; `dev` is 0 (the VFS
    /// fills it in).
    fn stat(&mut self, ino: Ino) -> Result<FileStat, FsError>;
    /// Reads from `offset` into `buf`; the bytes read (fewer at the end).
    fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// Writes `data` at `offset`; the bytes written.
    fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, FsError>;
    /// Sets a regular file's size (growing leaves zeros).
    fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), FsError>;
    /// Sets what `attrs` gives of any inode's permission bits (checked by
    /// the VFS: at most `0o7777`) and times; the change time becomes now.
    fn setattr(&mut self, ino: Ino, attrs: &Attrs) -> Result<(), FsError>;
    /// Creates an empty regular file `name` in `dir`.
    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError>;
    /// Creates directory `name` in `dir`.
    fn mkdir(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError>;
    /// Removes the non-directory `name` from `dir`.
    fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError>;
    /// Removes the empty directory `name` from `dir`.
    fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError>;
    /// Moves `old_name` of `old_dir` to `new_name` of `new_dir`, replacing a
    /// file by a file or an empty directory by a directory.
    fn rename(
        &mut self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
    ) -> Result<(), FsError>;
    /// Adds `name` in `dir` as another name of `ino` (not a directory).
    fn link(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), FsError>;
    /// Creates symbolic link `name` in `dir` to `target`.
    fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Result<Ino, FsError>;
    /// A symbolic link's target.
    fn read_link(&mut self, ino: Ino) -> Result<Vec<u8>, FsError>;
    /// Hands `out` the entries of `dir` from `cookie` (0: the start) until
    /// it returns `false` (full; that entry is not taken) or the directory
    /// ends. The cookie to continue from, `None` at the end.
    fn read_dir_page(
        &mut self,
        dir: Ino,
        cookie: u64,
        out: &mut dyn FnMut(Ino, u8, &[u8]) -> bool,
    ) -> Result<Option<u64>, FsError>;
    /// Makes everything written durable.
    fn sync(&mut self) -> Result<(), FsError>;
    /// The time (seconds since the epoch) stamped on what is changed.
    fn set_time(&mut self, now: u64);
}

/// The protocol's error for each of ext2's.
pub(crate) fn from_ext2(err: ext2::Error) -> FsError {
    match err {
        ext2::Error::Corrupt(..) => FsError::Corrupt,
        // An inode using a feature this ext2 cannot read (extents, inline
        // data): the data is there but out of reach, which is an I/O error
        // to the client rather than damage.
        ext2::Error::Unsupported { .. } => FsError::Io,
        ext2::Error::ReadOnly => FsError::ReadOnly,
        ext2::Error::NotFound => FsError::NotFound,
        ext2::Error::NotADirectory => FsError::NotADirectory,
        ext2::Error::IsADirectory => FsError::IsADirectory,
        ext2::Error::NotASymlink => FsError::NotASymlink,
        ext2::Error::NameTooLong => FsError::NameTooLong,
        ext2::Error::SymlinkLoop => FsError::SymlinkLoop,
        ext2::Error::Invalid => FsError::Invalid,
        ext2::Error::NoSpace => FsError::NoSpace,
        ext2::Error::TooManyLinks => FsError::TooManyLinks,
        ext2::Error::NotEmpty => FsError::NotEmpty,
        ext2::Error::Exists => FsError::Exists,
        ext2::Error::Io(_) => FsError::Io,
    }
}

/// The protocol's kind of an ext2 file type.
fn kind_of(file_type: FileType) -> u8 {
    match file_type {
        FileType::Regular => kind::REGULAR,
        FileType::Directory => kind::DIRECTORY,
        FileType::Symlink => kind::SYMLINK,
        FileType::CharDevice => kind::CHAR_DEVICE,
        FileType::BlockDevice => kind::BLOCK_DEVICE,
        FileType::Fifo => kind::FIFO,
        FileType::Socket => kind::SOCKET,
        FileType::Unknown => kind::UNKNOWN,
    }
}

/// ext2 numbers its inodes in 32 bits: a larger number names nothing.
fn ino32(ino: Ino) -> Result<u32, FsError> {
    u32::try_from(ino).map_err(|_| FsError::NotFound)
}

/// ext2's 32-bit times are signed (as Linux and e2fsck read them, the
/// extra epoch bits unset): a later time is kept as the latest there is,
/// as Linux clamps it.
fn ext2_time(secs: u64) -> u32 {
    u32::try_from(secs.min(i32::MAX as u64)).unwrap_or(i32::MAX as u32)
}

/// Entries fetched per step of a directory page.
const PAGE: usize = 32;

impl<D: BlockDevice> FileSystem for Ext2<D> {
    fn root(&self) -> Ino {
        ext2::ROOT_INODE.into()
    }

    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, FsError> {
        Ext2::lookup(self, ino32(dir)?, name)
            .map(Ino::from)
            .map_err(from_ext2)
    }

    fn stat(&mut self, ino: Ino) -> Result<FileStat, FsError> {
        let s = Ext2::stat(self, ino32(ino)?).map_err(from_ext2)?;
        Ok(FileStat {
            ino: s.ino.into(),
            dev: 0,
            kind: kind_of(s.file_type),
            perm: s.mode & 0o7777,
            links: s.links.into(),
            uid: s.uid,
            gid: s.gid,
            size: s.size,
            atime: s.atime.into(),
            mtime: s.mtime.into(),
            ctime: s.ctime.into(),
        })
    }

    fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let ino = ino32(ino)?;
        // A fast symlink's block pointers are its text: only regular files
        // have data to read.
        match Ext2::stat(self, ino).map_err(from_ext2)?.file_type {
            FileType::Regular => Ext2::read(self, ino, offset, buf).map_err(from_ext2),
            FileType::Directory => Err(FsError::IsADirectory),
            _ => Err(FsError::Invalid),
        }
    }

    fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        Ext2::write(self, ino32(ino)?, offset, data).map_err(from_ext2)
    }

    fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), FsError> {
        Ext2::truncate(self, ino32(ino)?, size).map_err(from_ext2)
    }

    fn setattr(&mut self, ino: Ino, attrs: &Attrs) -> Result<(), FsError> {
        Ext2::set_attrs(
            self,
            ino32(ino)?,
            attrs.mode,
            attrs.atime.map(ext2_time),
            attrs.mtime.map(ext2_time),
        )
        .map_err(from_ext2)
    }

    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        Ext2::create(self, ino32(dir)?, name, perm, uid, gid)
            .map(Ino::from)
            .map_err(from_ext2)
    }

    fn mkdir(
        &mut self,
        dir: Ino,
        name: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        Ext2::mkdir(self, ino32(dir)?, name, perm, uid, gid)
            .map(Ino::from)
            .map_err(from_ext2)
    }

    fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        Ext2::unlink(self, ino32(dir)?, name).map_err(from_ext2)
    }

    fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        Ext2::rmdir(self, ino32(dir)?, name).map_err(from_ext2)
    }

    fn rename(
        &mut self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
    ) -> Result<(), FsError> {
        Ext2::rename(self, ino32(old_dir)?, old_name, ino32(new_dir)?, new_name).map_err(from_ext2)
    }

    fn link(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), FsError> {
        Ext2::link(self, ino32(dir)?, name, ino32(ino)?).map_err(from_ext2)
    }

    fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Result<Ino, FsError> {
        Ext2::symlink(self, ino32(dir)?, name, target, 0, 0)
            .map(Ino::from)
            .map_err(from_ext2)
    }

    fn read_link(&mut self, ino: Ino) -> Result<Vec<u8>, FsError> {
        Ext2::read_link(self, ino32(ino)?).map_err(from_ext2)
    }

    fn read_dir_page(
        &mut self,
        dir: Ino,
        cookie: u64,
        out: &mut dyn FnMut(Ino, u8, &[u8]) -> bool,
    ) -> Result<Option<u64>, FsError> {
        let dir = ino32(dir)?;
        let mut from = cookie;
        loop {
            let (entries, next) = Ext2::read_dir_page(self, dir, from, PAGE).map_err(from_ext2)?;
            for (taken, e) in entries.iter().enumerate() {
                if !out(e.ino.into(), kind_of(e.file_type), &e.name) {
                    // ext2 positions are byte offsets we do not see per
                    // entry: the page of exactly `taken` entries ends where
                    // the refused one starts.
                    let (_, at) = Ext2::read_dir_page(self, dir, from, taken).map_err(from_ext2)?;
                    return Ok(at);
                }
            }
            match next {
                Some(next) => from = next,
                None => return Ok(None),
            }
        }
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ext2::sync(self).map_err(from_ext2)
    }

    fn set_time(&mut self, now: u64) {
        // ext2's times are read as signed 32-bit seconds (Linux, e2fsck):
        // the latest it can hold is 2038-01-19.
        Ext2::set_time(self, u32::try_from(now.min(i32::MAX as u64)).unwrap_or(0));
    }
}
