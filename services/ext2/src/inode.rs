//! Inodes: the on-disk record parsed into what callers see.

use crate::layout::{le16, le32};

/// Pointers in `i_block`: 12 direct, then single, double and triple indirect.
pub const DIRECT_BLOCKS: usize = 12;
pub(crate) const BLOCK_POINTERS: usize = 15;
/// Bytes of `i_block`, where a fast symlink keeps its target.
pub(crate) const INLINE_BYTES: usize = BLOCK_POINTERS * 4;
/// The root directory's inode number.
pub const ROOT_INODE: u32 = 2;

/// `i_flags`: the directory has a hash index (which linear updates void).
pub(crate) const INDEX_FL: u32 = 0x1000;
/// `i_flags` bits that change how the data is found; this crate reads neither.
pub(crate) const EXTENTS_FL: u32 = 0x8_0000;
const INLINE_DATA_FL: u32 = 0x1000_0000;

/// The kind of file, from the mode's top four bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    /// A mode whose type bits name no kind.
    Unknown,
}

impl FileType {
    /// The kind named by a mode's type bits.
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0xf000 {
            0x8000 => Self::Regular,
            0x4000 => Self::Directory,
            0xa000 => Self::Symlink,
            0x2000 => Self::CharDevice,
            0x6000 => Self::BlockDevice,
            0x1000 => Self::Fifo,
            0xc000 => Self::Socket,
            _ => Self::Unknown,
        }
    }

    /// The kind named by a directory entry's `file_type` byte.
    pub fn from_dirent(kind: u8) -> Self {
        match kind {
            1 => Self::Regular,
            2 => Self::Directory,
            3 => Self::CharDevice,
            4 => Self::BlockDevice,
            5 => Self::Fifo,
            6 => Self::Socket,
            7 => Self::Symlink,
            _ => Self::Unknown,
        }
    }
}

/// What `stat` reports of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ino: u32,
    /// Type and permission bits, as in `st_mode`.
    pub mode: u16,
    pub file_type: FileType,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u16,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
}

/// An inode as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inode {
    pub stat: Stat,
    /// 512-byte sectors in use, including an extended-attribute block.
    pub sectors: u32,
    /// Deletion time; set when the inode is freed.
    pub dtime: u32,
    pub file_acl: u32,
    pub flags: u32,
    pub block: [u32; BLOCK_POINTERS],
    /// The raw `i_block` bytes, where a fast symlink keeps its target.
    pub inline: [u8; INLINE_BYTES],
}

impl Inode {
    /// Parses the first 128 bytes of an inode record. `large_file` says
    /// whether a regular file's size has its high 32 bits.
    pub fn parse(ino: u32, raw: &[u8], large_file: bool) -> crate::Result<Self> {
        let flags = le32(raw, 32);
        if flags & EXTENTS_FL != 0 {
            return Err(crate::Error::Unsupported { feature: "extents" });
        }
        if flags & INLINE_DATA_FL != 0 {
            return Err(crate::Error::Unsupported {
                feature: "inline_data",
            });
        }
        let mode = le16(raw, 0);
        let file_type = FileType::from_mode(mode);
        let size_high = if large_file && file_type == FileType::Regular {
            le32(raw, 108)
        } else {
            0
        };
        let mut block = [0u32; BLOCK_POINTERS];
        for (i, pointer) in block.iter_mut().enumerate() {
            *pointer = le32(raw, 40 + 4 * i);
        }
        let mut inline = [0u8; INLINE_BYTES];
        if let Some(src) = raw.get(40..40 + INLINE_BYTES) {
            inline.copy_from_slice(src);
        }
        let stat = Stat {
            ino,
            mode,
            file_type,
            uid: u32::from(le16(raw, 2)) | u32::from(le16(raw, 120)) << 16,
            gid: u32::from(le16(raw, 24)) | u32::from(le16(raw, 122)) << 16,
            size: u64::from(le32(raw, 4)) | u64::from(size_high) << 32,
            links: le16(raw, 26),
            atime: le32(raw, 8),
            ctime: le32(raw, 12),
            mtime: le32(raw, 16),
        };
        Ok(Self {
            stat,
            sectors: le32(raw, 28),
            dtime: le32(raw, 20),
            file_acl: le32(raw, 104),
            flags,
            block,
            inline,
        })
    }
}
