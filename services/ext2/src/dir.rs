//! Directory entries: parsed from one directory block with every length
//! checked against the block, so a damaged entry is an error, never an
//! overrun or an endless walk.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::inode::FileType;
use crate::layout::{le16, le32};

/// Bytes before the name in an entry.
pub(crate) const HEADER: usize = 8;
/// The longest name an entry holds.
pub const NAME_MAX: usize = 255;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u32,
    /// From the entry when the file system has the filetype feature, else `Unknown`.
    pub file_type: FileType,
    pub name: Vec<u8>,
}

/// A borrowed entry, as the block walk sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry<'a> {
    /// Byte offset of the entry in its block.
    pub offset: usize,
    pub ino: u32,
    pub file_type: FileType,
    pub name: &'a [u8],
}

/// Calls `visit` for each used entry of `block` until it returns `true`
/// (found); returns whether it did. `inodes_count` bounds the inode numbers.
pub(crate) fn walk_block<'a>(
    block: &'a [u8],
    filetype: bool,
    inodes_count: u32,
    mut visit: impl FnMut(RawEntry<'a>) -> bool,
) -> Result<bool> {
    let mut offset = 0usize;
    while offset < block.len() {
        let rest = block.get(offset..).unwrap_or_default();
        if rest.len() < HEADER {
            return Err(Error::Corrupt(
                "directory entry header overruns its block",
                offset as u64,
            ));
        }
        let ino = le32(rest, 0);
        let rec_len = usize::from(le16(rest, 4));
        let (name_len, kind) = if filetype {
            (usize::from(le16(rest, 6) & 0xff), le16(rest, 6) >> 8)
        } else {
            (usize::from(le16(rest, 6)), 0)
        };
        if rec_len < HEADER || !rec_len.is_multiple_of(4) || rec_len > rest.len() {
            return Err(Error::Corrupt("directory entry length", rec_len as u64));
        }
        if HEADER + name_len > rec_len {
            return Err(Error::Corrupt(
                "directory entry name overruns its record",
                name_len as u64,
            ));
        }
        if ino > inodes_count {
            return Err(Error::Corrupt("directory entry inode number", ino.into()));
        }
        if ino != 0 {
            if name_len == 0 {
                return Err(Error::Corrupt(
                    "directory entry without a name",
                    offset as u64,
                ));
            }
            let name = rest.get(HEADER..HEADER + name_len).unwrap_or_default();
            let file_type = if filetype {
                FileType::from_dirent(kind as u8)
            } else {
                FileType::Unknown
            };
            if visit(RawEntry {
                offset,
                ino,
                file_type,
                name,
            }) {
                return Ok(true);
            }
        }
        offset += rec_len;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(ino: u32, rec_len: u16, name: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; usize::from(rec_len).max(HEADER + name.len())];
        e[0..4].copy_from_slice(&ino.to_le_bytes());
        e[4..6].copy_from_slice(&rec_len.to_le_bytes());
        e[6] = name.len() as u8;
        e[7] = 1;
        e[8..8 + name.len()].copy_from_slice(name);
        e
    }

    fn names(block: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        walk_block(block, true, 100, |e| {
            out.push(e.name.to_vec());
            false
        })?;
        Ok(out)
    }

    #[test]
    fn walks_entries_and_skips_unused_ones() {
        let mut block = entry(5, 12, b"abc");
        block.extend(entry(0, 12, b"gone"));
        block.extend(entry(7, 40, b"xyz"));
        assert_eq!(block.len(), 64);
        assert_eq!(
            names(&block).unwrap(),
            vec![b"abc".to_vec(), b"xyz".to_vec()]
        );
    }

    #[test]
    fn damaged_entries_are_errors() {
        let overrun = entry(5, 128, b"a")[..64].to_vec();
        let zero = entry(5, 0, b"a");
        let unaligned = entry(5, 10, b"a");
        let long_name = {
            let mut e = entry(5, 12, b"a");
            e[6] = 200;
            e
        };
        let bad_ino = entry(1000, 12, b"a");
        let nameless = entry(5, 12, b"");
        let short = vec![0u8; 4];
        for block in [
            overrun, zero, unaligned, long_name, bad_ino, nameless, short,
        ] {
            assert!(
                matches!(names(&block), Err(Error::Corrupt(..))),
                "{block:?}"
            );
        }
    }
}
