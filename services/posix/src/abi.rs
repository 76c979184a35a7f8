//! Linux x86_64 structures a system call writes to user memory, encoded as
//! the kernel lays them out (`struct stat`, `linux_dirent64`, `utsname`,
//! `timespec`), and file type bits.

use alloc::vec::Vec;

/// File type bits of `st_mode`.
pub mod mode {
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFMT: u32 = 0o170000;
}

/// What `struct stat` says of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    /// Type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    /// Seconds since the epoch.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// Bytes of x86_64 `struct stat`.
pub const STAT_BYTES: usize = 144;

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

impl Stat {
    /// The kernel's `struct stat` for x86_64.
    pub fn encode(&self) -> [u8; STAT_BYTES] {
        let mut b = [0u8; STAT_BYTES];
        put(&mut b, 0, &self.dev.to_le_bytes());
        put(&mut b, 8, &self.ino.to_le_bytes());
        put(&mut b, 16, &self.nlink.to_le_bytes());
        put(&mut b, 24, &self.mode.to_le_bytes());
        put(&mut b, 28, &self.uid.to_le_bytes());
        put(&mut b, 32, &self.gid.to_le_bytes());
        put(&mut b, 40, &self.rdev.to_le_bytes());
        put(&mut b, 48, &self.size.to_le_bytes());
        put(&mut b, 56, &self.blksize.to_le_bytes());
        put(&mut b, 64, &self.blocks.to_le_bytes());
        put(&mut b, 72, &self.atime.to_le_bytes());
        put(&mut b, 88, &self.mtime.to_le_bytes());
        put(&mut b, 104, &self.ctime.to_le_bytes());
        b
    }
}

/// `d_type` of a `linux_dirent64` from `st_mode` type bits.
pub fn dirent_type(mode_bits: u32) -> u8 {
    match mode_bits & mode::S_IFMT {
        mode::S_IFIFO => 1,
        mode::S_IFCHR => 2,
        mode::S_IFDIR => 4,
        mode::S_IFBLK => 6,
        mode::S_IFREG => 8,
        mode::S_IFLNK => 10,
        mode::S_IFSOCK => 12,
        _ => 0,
    }
}

/// Appends one `linux_dirent64` record (8-byte aligned) to `out` if it
/// fits in `room` bytes in all; false when it does not.
pub fn push_dirent64(
    out: &mut Vec<u8>,
    room: usize,
    ino: u64,
    off: u64,
    dtype: u8,
    name: &[u8],
) -> bool {
    let len = (19 + name.len() + 1).next_multiple_of(8);
    if out.len() + len > room {
        return false;
    }
    let at = out.len();
    out.resize(at + len, 0);
    if let Some(rec) = out.get_mut(at..) {
        put(rec, 0, &ino.to_le_bytes());
        put(rec, 8, &off.to_le_bytes());
        put(rec, 16, &(len as u16).to_le_bytes());
        put(rec, 18, &[dtype]);
        put(rec, 19, name);
    }
    true
}

/// `struct utsname`: six fields of 65 bytes.
pub fn utsname(fields: [&[u8]; 6]) -> [u8; 390] {
    let mut b = [0u8; 390];
    for (i, f) in fields.iter().enumerate() {
        let f = f.get(..64).unwrap_or(f);
        put(&mut b, i * 65, f);
    }
    b
}

/// `struct timespec` (seconds, nanoseconds).
pub fn timespec(nanos: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    put(&mut b, 0, &(nanos / 1_000_000_000).to_le_bytes());
    put(&mut b, 8, &(nanos % 1_000_000_000).to_le_bytes());
    b
}

/// Reads a `struct timespec`; `None` if the nanoseconds are out of range
/// or the seconds negative (`EINVAL`).
pub fn read_timespec(b: &[u8; 16]) -> Option<u64> {
    let (s, ns) = b.split_at(8);
    let s = i64::from_le_bytes(s.try_into().ok()?);
    let ns = i64::from_le_bytes(ns.try_into().ok()?);
    if s < 0 || !(0..1_000_000_000).contains(&ns) {
        return None;
    }
    (s as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(ns as u64)
}

/// Reads a `struct timeval` (seconds, microseconds) as nanoseconds;
/// `None` if the microseconds are out of range or the seconds negative.
pub fn read_timeval(b: &[u8; 16]) -> Option<u64> {
    let (s, us) = b.split_at(8);
    let s = i64::from_le_bytes(s.try_into().ok()?);
    let us = i64::from_le_bytes(us.try_into().ok()?);
    if s < 0 || !(0..1_000_000).contains(&us) {
        return None;
    }
    (s as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(us as u64 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_sit_where_the_kernel_puts_them() {
        let s = Stat {
            ino: 12,
            mode: mode::S_IFREG | 0o755,
            size: 1023,
            ..Stat::default()
        };
        let b = s.encode();
        assert_eq!(b.get(8..16), Some(&12u64.to_le_bytes()[..]));
        assert_eq!(b.get(24..28), Some(&(0o100755u32).to_le_bytes()[..]));
        assert_eq!(b.get(48..56), Some(&1023u64.to_le_bytes()[..]));
    }

    #[test]
    fn dirents_are_aligned_and_bounded() {
        let mut out = Vec::new();
        assert!(push_dirent64(&mut out, 64, 2, 1, 4, b"."));
        assert_eq!(out.len(), 24);
        assert_eq!(out.get(16..18), Some(&24u16.to_le_bytes()[..]));
        assert!(!push_dirent64(&mut out, 40, 3, 2, 8, b"a-long-name"));
        assert_eq!(out.len(), 24, "a record that does not fit is left out");
    }

    #[test]
    fn timespecs_round_trip_and_bad_ones_are_refused() {
        assert_eq!(read_timespec(&timespec(3_000_000_005)), Some(3_000_000_005));
        let mut bad = timespec(0);
        bad[8..16].copy_from_slice(&2_000_000_000i64.to_le_bytes());
        assert_eq!(read_timespec(&bad), None);
    }

    #[test]
    fn timevals_in_range_only() {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&2i64.to_le_bytes());
        b[8..].copy_from_slice(&500_000i64.to_le_bytes());
        assert_eq!(read_timeval(&b), Some(2_500_000_000));
        b[8..].copy_from_slice(&1_000_000i64.to_le_bytes());
        assert_eq!(read_timeval(&b), None);
        b[..8].copy_from_slice(&(-1i64).to_le_bytes());
        b[8..].copy_from_slice(&0i64.to_le_bytes());
        assert_eq!(read_timeval(&b), None);
    }
}
