//! The file protocol: a client of the VFS calls it over an endpoint (RPC)
//! and lends the VFS a memory region for file data. Paths travel in the
//! message (at most [`PATH_BYTES`]); the bytes of `read`, `write`,
//! `readdir` and `readlink` travel in the client's region as [`Lent`]
//! ranges, which the server checks against the region before it looks.
//!
//! A descriptor is a small number the VFS hands one client; it means
//! nothing to another client (the VFS keeps one table per badge).
//! Flags and `seek`'s `whence` have Linux's values, so a POSIX layer
//! passes them through.

use kaal_rpc::{Lent, MessageBuffer, Reader, Wire, WireSize, Writer};

/// The longest path a request carries (both paths of `rename`, `link` and
/// `symlink` fit in one message together).
pub const PATH_BYTES: usize = 448;

/// `open` flags (Linux's values).
pub mod flags {
    pub const READ_ONLY: u32 = 0;
    pub const WRITE_ONLY: u32 = 1;
    pub const READ_WRITE: u32 = 2;
    /// The access-mode bits.
    pub const ACCESS: u32 = 3;
    pub const CREATE: u32 = 0o100;
    pub const EXCLUSIVE: u32 = 0o200;
    pub const TRUNCATE: u32 = 0o1000;
    pub const APPEND: u32 = 0o2000;
    pub const DIRECTORY: u32 = 0o200000;
    pub const NO_FOLLOW: u32 = 0o400000;
    /// Every flag the VFS knows; others are refused as `Invalid`.
    pub const KNOWN: u32 = ACCESS | CREATE | EXCLUSIVE | TRUNCATE | APPEND | DIRECTORY | NO_FOLLOW;
}

/// `seek`'s `whence` (Linux's values); the offset is an `i64` sent as its
/// two's-complement `u64`.
pub mod whence {
    pub const SET: u32 = 0;
    pub const CURRENT: u32 = 1;
    pub const END: u32 = 2;
}

/// File types, as in a directory record and in [`FileStat::kind`].
pub mod kind {
    pub const UNKNOWN: u8 = 0;
    pub const REGULAR: u8 = 1;
    pub const DIRECTORY: u8 = 2;
    pub const CHAR_DEVICE: u8 = 3;
    pub const BLOCK_DEVICE: u8 = 4;
    pub const FIFO: u8 = 5;
    pub const SOCKET: u8 = 6;
    pub const SYMLINK: u8 = 7;
}

kaal_rpc::wire_error! {
    /// Why the VFS refused a request (each maps to one errno).
    pub enum FsError {
        /// ENOENT.
        NotFound = 1,
        /// EEXIST.
        Exists = 2,
        /// ENOTDIR.
        NotADirectory = 3,
        /// EISDIR.
        IsADirectory = 4,
        /// ENOTEMPTY.
        NotEmpty = 5,
        /// ENOSPC.
        NoSpace = 6,
        /// EROFS.
        ReadOnly = 7,
        /// ENAMETOOLONG: a name over 255 bytes or a path over [`PATH_BYTES`].
        NameTooLong = 8,
        /// ELOOP.
        SymlinkLoop = 9,
        /// EINVAL: a bad flag, whence, offset or length.
        Invalid = 10,
        /// EBADF: not a descriptor of this client, or not open for this.
        BadDescriptor = 11,
        /// EMFILE.
        TooManyOpen = 12,
        /// EUCLEAN: the file system's image is damaged here.
        Corrupt = 13,
        /// EIO.
        Io = 14,
        /// EXDEV: a rename or link between two file systems.
        CrossDevice = 15,
        /// EINVAL from readlink: not a symbolic link.
        NotASymlink = 16,
        /// EMLINK.
        TooManyLinks = 17,
        /// EFAULT: the lent range is not inside the client's region.
        BadRegion = 18,
        /// EBUSY: a mount point, or the root.
        Busy = 19,
        /// EOPNOTSUPP: permission bits of a symbolic link itself.
        NotSupported = 20,
    }
}

/// What `stat` tells of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    /// The inode number within its file system.
    pub ino: u64,
    /// Which mounted file system (0: the root).
    pub dev: u32,
    /// One of [`kind`].
    pub kind: u8,
    /// The permission bits (`0o7777`).
    pub perm: u16,
    pub links: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

impl WireSize for FileStat {
    const WORDS: usize = 8;
}

impl<'a> Wire<'a> for FileStat {
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        w.word(self.ino);
        w.word(u64::from(self.dev) | u64::from(self.kind) << 32 | u64::from(self.perm) << 40);
        w.word(u64::from(self.links));
        w.word(u64::from(self.uid) | u64::from(self.gid) << 32);
        w.word(self.size);
        w.word(self.atime);
        w.word(self.mtime);
        w.word(self.ctime);
    }

    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        let ino = r.word()?;
        let w1 = r.word()?;
        let links = u32::try_from(r.word()?).ok()?;
        let ids = r.word()?;
        let perm = u16::try_from(w1 >> 40).ok()?;
        Some(FileStat {
            ino,
            dev: w1 as u32,
            kind: (w1 >> 32) as u8,
            perm,
            links,
            uid: ids as u32,
            gid: (ids >> 32) as u32,
            size: r.word()?,
            atime: r.word()?,
            mtime: r.word()?,
            ctime: r.word()?,
        })
    }
}

/// What `setattr` and `fsetattr` change; `None` leaves it as it is. The
/// change time becomes the file system's time either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// The permission bits (at most `0o7777`; more is `Invalid`); the
    /// file's kind stays.
    pub mode: Option<u16>,
    /// Seconds since the epoch. A file system that stores less (ext2: 32
    /// signed bits) keeps the nearest time it can.
    pub atime: Option<u64>,
    pub mtime: Option<u64>,
}

/// [`Attrs`]' first word: which fields are present, and the mode above them.
const ATTR_MODE: u64 = 1;
const ATTR_ATIME: u64 = 2;
const ATTR_MTIME: u64 = 4;
const ATTR_MODE_SHIFT: u32 = 16;

impl WireSize for Attrs {
    const WORDS: usize = 3;
}

impl<'a> Wire<'a> for Attrs {
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        let mut head = 0;
        if let Some(mode) = self.mode {
            head |= ATTR_MODE | u64::from(mode) << ATTR_MODE_SHIFT;
        }
        if self.atime.is_some() {
            head |= ATTR_ATIME;
        }
        if self.mtime.is_some() {
            head |= ATTR_MTIME;
        }
        w.word(head);
        w.word(self.atime.unwrap_or(0));
        w.word(self.mtime.unwrap_or(0));
    }

    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        let head = r.word()?;
        let atime = r.word()?;
        let mtime = r.word()?;
        // Bits that mean nothing make the message malformed, not a guess.
        let known = ATTR_MODE | ATTR_ATIME | ATTR_MTIME | u64::from(u16::MAX) << ATTR_MODE_SHIFT;
        if head & !known != 0 {
            return None;
        }
        let mode = u16::try_from(head >> ATTR_MODE_SHIFT).ok()?;
        Some(Attrs {
            mode: (head & ATTR_MODE != 0).then_some(mode),
            atime: (head & ATTR_ATIME != 0).then_some(atime),
            mtime: (head & ATTR_MTIME != 0).then_some(mtime),
        })
    }
}

kaal_rpc::interface! {
    /// The VFS's interface to its clients.
    pub interface File, FileClient, file_dispatch {
        /// Opens `path` with [`flags`]; `mode`'s permission bits for a
        /// created file. The lowest free descriptor.
        1 => fn open(path: &[u8], flags: u32, mode: u32) -> Result<u32, FsError>;
        2 => fn close(fd: u32) -> Result<(), FsError>;
        /// Reads at the descriptor's offset into the lent range and
        /// advances it; the bytes read (0 at the end). A call moves at most
        /// the VFS's chunk (64 KiB, so no request holds it long) and may be
        /// short before the end: read again for the rest.
        3 => fn read(fd: u32, into: Lent) -> Result<u64, FsError>;
        /// Writes the lent range at the offset (the end with `APPEND`); the
        /// bytes written. At most the VFS's chunk (64 KiB) a call, so it
        /// may be short: write the rest in another.
        4 => fn write(fd: u32, from: Lent) -> Result<u64, FsError>;
        /// Sets the offset; the new offset.
        5 => fn seek(fd: u32, offset: u64, whence: u32) -> Result<u64, FsError>;
        /// Follows a final symbolic link.
        6 => fn stat(path: &[u8]) -> Result<FileStat, FsError>;
        /// Does not follow a final symbolic link.
        7 => fn lstat(path: &[u8]) -> Result<FileStat, FsError>;
        8 => fn fstat(fd: u32) -> Result<FileStat, FsError>;
        /// Directory records (see [`DirRecord`]) from the descriptor's
        /// position into the lent range, whole records only; the bytes
        /// filled, 0 at the end.
        9 => fn readdir(fd: u32, into: Lent) -> Result<u64, FsError>;
        10 => fn mkdir(path: &[u8], mode: u32) -> Result<(), FsError>;
        11 => fn rmdir(path: &[u8]) -> Result<(), FsError>;
        12 => fn unlink(path: &[u8]) -> Result<(), FsError>;
        /// Replaces an existing `to` (a file by a file, an empty directory
        /// by a directory).
        13 => fn rename(from: &[u8], to: &[u8]) -> Result<(), FsError>;
        /// Creates `path` as a symbolic link to `target`.
        14 => fn symlink(target: &[u8], path: &[u8]) -> Result<(), FsError>;
        /// Creates `new` as another name of `existing`.
        15 => fn link(existing: &[u8], new: &[u8]) -> Result<(), FsError>;
        /// The link's target into the lent range; its length.
        16 => fn readlink(path: &[u8], into: Lent) -> Result<u64, FsError>;
        17 => fn truncate(fd: u32, size: u64) -> Result<(), FsError>;
        /// Writes everything of every file system back to its disk.
        18 => fn sync() -> Result<(), FsError>;
        /// A client (re)starting: closes every descriptor its badge holds,
        /// left from an earlier run that faulted or was restarted (the
        /// badge stays; the descriptors would otherwise stay too).
        19 => fn begin() -> Result<(), FsError>;
        /// Changes `path`'s permission bits and times (see [`Attrs`]);
        /// `flags` is 0 or [`flags::NO_FOLLOW`] (a final symbolic link's
        /// own times; its mode is `NotSupported`), others are `Invalid`.
        20 => fn setattr(path: &[u8], flags: u32, attrs: Attrs) -> Result<(), FsError>;
        /// Changes the permission bits and times of the file open as `fd`,
        /// whatever its access mode (as `fchmod` and `futimens`).
        21 => fn fsetattr(fd: u32, attrs: Attrs) -> Result<(), FsError>;
    }
}

/// One record of `readdir`'s output: the inode number (8 bytes, little
/// endian), the [`kind`] (1 byte), the name's length (1 byte), the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirRecord<'a> {
    pub ino: u64,
    pub kind: u8,
    pub name: &'a [u8],
}

/// Bytes of a record before its name.
pub const DIR_RECORD_HEAD: usize = 10;

impl<'a> DirRecord<'a> {
    /// Bytes the record takes.
    pub fn len(&self) -> usize {
        DIR_RECORD_HEAD + self.name.len()
    }

    /// Never: a record has at least its head.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the record at the start of `out`; its length, or `None` if it
    /// does not fit (or the name is over 255 bytes).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let name_len = u8::try_from(self.name.len()).ok()?;
        let dst = out.get_mut(..self.len())?;
        let (head, name) = dst.split_at_mut_checked(DIR_RECORD_HEAD)?;
        let (ino, rest) = head.split_first_chunk_mut::<8>()?;
        *ino = self.ino.to_le_bytes();
        let [kind, len, ..] = rest else {
            return None;
        };
        *kind = self.kind;
        *len = name_len;
        name.copy_from_slice(self.name);
        Some(self.len())
    }
}

/// The records in `bytes` (what a `readdir` filled); stops at the first
/// record that does not fit, so damage cannot read past the bytes.
pub fn dir_records(bytes: &[u8]) -> impl Iterator<Item = DirRecord<'_>> {
    let mut rest = bytes;
    core::iter::from_fn(move || {
        let head = rest.get(..DIR_RECORD_HEAD)?;
        let mut ino = [0; 8];
        ino.copy_from_slice(head.get(..8)?);
        let (kind, len) = (*head.get(8)?, usize::from(*head.get(9)?));
        let name = rest.get(DIR_RECORD_HEAD..DIR_RECORD_HEAD + len)?;
        rest = rest.get(DIR_RECORD_HEAD + len..)?;
        Some(DirRecord {
            ino: u64::from_le_bytes(ino),
            kind,
            name,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaal_rpc::{LocalBuffer, Msg};
    use std::vec::Vec;

    #[test]
    fn dir_records_round_trip_and_stop_at_damage() {
        let mut buf = [0u8; 64];
        let a = DirRecord {
            ino: 2,
            kind: kind::DIRECTORY,
            name: b".",
        };
        let b = DirRecord {
            ino: 1 << 40,
            kind: kind::REGULAR,
            name: b"file.txt",
        };
        let n = a.encode(&mut buf).unwrap();
        let m = b.encode(&mut buf[n..]).unwrap();
        let got: Vec<_> = dir_records(&buf[..n + m]).collect();
        assert_eq!(got, [a, b]);
        // A name length that runs past the bytes ends the iteration.
        buf[n + 9] = 200;
        assert_eq!(dir_records(&buf[..n + m]).count(), 1);
        assert_eq!(b.encode(&mut [0u8; 12]), None);
    }

    #[test]
    fn attrs_round_trip_and_refuse_unknown_bits() {
        let buf = LocalBuffer::default();
        let mut stage = [];
        for a in [
            Attrs::default(),
            Attrs {
                mode: Some(0o7777),
                atime: Some(0),
                mtime: Some(u64::MAX),
            },
            Attrs {
                mode: None,
                atime: None,
                mtime: Some(1_577_934_245),
            },
        ] {
            let mut w = Writer::new(&buf, Attrs::WORDS);
            a.put(&mut w);
            let msg = w.finish(0).unwrap();
            let mut r = Reader::new(&msg, &buf, Attrs::WORDS, &mut stage, 0).unwrap();
            assert_eq!(Attrs::get(&mut r), Some(a));
        }
        let mut w = Writer::new(&buf, Attrs::WORDS);
        Attrs::default().put(&mut w);
        let msg = w.finish(0).unwrap();
        let mut words: Vec<u64> = msg.words(&buf).collect();
        words[0] |= 8;
        let msg = Msg::new(0, &words, &buf).unwrap();
        let mut r = Reader::new(&msg, &buf, Attrs::WORDS, &mut stage, 0).unwrap();
        assert_eq!(Attrs::get(&mut r), None);
    }

    #[test]
    fn stat_round_trips_and_refuses_a_bad_perm() {
        let s = FileStat {
            ino: 12,
            dev: 1,
            kind: kind::SYMLINK,
            perm: 0o4755,
            links: 3,
            uid: 1000,
            gid: 100,
            size: 1 << 33,
            atime: 1,
            mtime: 2,
            ctime: 3,
        };
        let buf = LocalBuffer::default();
        let mut w = Writer::new(&buf, FileStat::WORDS);
        s.put(&mut w);
        let msg = w.finish(0).unwrap();
        let mut stage = [];
        let mut r = Reader::new(&msg, &buf, FileStat::WORDS, &mut stage, 0).unwrap();
        assert_eq!(FileStat::get(&mut r), Some(s));
        // A permission field wider than 16 bits is not a stat.
        let mut words: Vec<u64> = msg.words(&buf).collect();
        words[1] |= 1 << 60;
        let msg = Msg::new(0, &words, &buf).unwrap();
        let mut r = Reader::new(&msg, &buf, FileStat::WORDS, &mut stage, 0).unwrap();
        assert_eq!(FileStat::get(&mut r), None);
    }
}
