//! The superblock and the block group descriptors: parsed, checked and the
//! features sorted into accepted, read-only and refused.

use alloc::vec;
use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::layout::{le16, le32};

/// Byte offset of the superblock on the device, whatever the block size.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_SIZE: usize = 1024;
const MAGIC: u16 = 0xef53;
/// Size of a group descriptor without the 64bit feature.
const DESC_SIZE: usize = 32;
/// Largest block size accepted (64 KiB, `s_log_block_size` 6).
const MAX_LOG_BLOCK_SIZE: u32 = 6;

/// `s_feature_compat` bits.
pub mod compat {
    pub const DIR_PREALLOC: u32 = 0x1;
    pub const IMAGIC_INODES: u32 = 0x2;
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const EXT_ATTR: u32 = 0x8;
    pub const RESIZE_INODE: u32 = 0x10;
    pub const DIR_INDEX: u32 = 0x20;
}

/// `s_feature_incompat` bits.
pub mod incompat {
    pub const COMPRESSION: u32 = 0x1;
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
}

/// `s_feature_ro_compat` bits.
pub mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const LARGE_FILE: u32 = 0x2;
    pub const BTREE_DIR: u32 = 0x4;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const DIR_NLINK: u32 = 0x20;
    pub const EXTRA_ISIZE: u32 = 0x40;
    pub const QUOTA: u32 = 0x100;
    pub const BIGALLOC: u32 = 0x200;
    pub const METADATA_CSUM: u32 = 0x400;
    pub const READONLY: u32 = 0x1000;
    pub const PROJECT: u32 = 0x2000;
    pub const VERITY: u32 = 0x8000;
}

/// Incompatible features this crate reads correctly.
const INCOMPAT_SUPPORTED: u32 = incompat::FILETYPE;
/// Read-only-compatible features this crate also writes correctly.
const RO_COMPAT_SUPPORTED: u32 = ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE;

const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (incompat::COMPRESSION, "compression"),
    (incompat::RECOVER, "needs_recovery"),
    (incompat::JOURNAL_DEV, "journal_dev"),
    (incompat::META_BG, "meta_bg"),
    (incompat::EXTENTS, "extents"),
    (incompat::BIT64, "64bit"),
    (incompat::MMP, "mmp"),
    (incompat::FLEX_BG, "flex_bg"),
    (incompat::EA_INODE, "ea_inode"),
    (incompat::DIRDATA, "dirdata"),
    (incompat::CSUM_SEED, "metadata_csum_seed"),
    (incompat::LARGEDIR, "large_dir"),
    (incompat::INLINE_DATA, "inline_data"),
    (incompat::ENCRYPT, "encrypt"),
    (incompat::CASEFOLD, "casefold"),
];

const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (ro_compat::BTREE_DIR, "btree_dir"),
    (ro_compat::HUGE_FILE, "huge_file"),
    (ro_compat::GDT_CSUM, "uninit_bg"),
    (ro_compat::DIR_NLINK, "dir_nlink"),
    (ro_compat::EXTRA_ISIZE, "extra_isize"),
    (ro_compat::QUOTA, "quota"),
    (ro_compat::BIGALLOC, "bigalloc"),
    (ro_compat::METADATA_CSUM, "metadata_csum"),
    (ro_compat::READONLY, "read-only"),
    (ro_compat::PROJECT, "project"),
    (ro_compat::VERITY, "verity"),
];

/// The first name in `names` of a bit set in `bits`, `"unknown"` for others.
fn feature_name(bits: u32, names: &[(u32, &'static str)]) -> &'static str {
    names
        .iter()
        .find(|(bit, _)| bits & bit != 0)
        .map_or("unknown", |(_, name)| name)
}

/// The superblock fields the file system uses, checked against each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u32,
    pub free_blocks_count: u32,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub rev_level: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub group_count: u32,
}

/// Why a file system mounts read-only: the first feature found that allows
/// reading but not writing.
pub type ReadOnlyReason = Option<&'static str>;

impl Superblock {
    /// Parses and checks the 1024 bytes at [`SUPERBLOCK_OFFSET`] against a
    /// device of `device_size` bytes. Refuses unsupported incompatible features
    /// by name; the second value names the feature that makes it read-only.
    pub fn parse(raw: &[u8], device_size: u64) -> Result<(Self, ReadOnlyReason)> {
        if raw.len() < SUPERBLOCK_SIZE {
            return Err(Error::Corrupt("superblock too short", raw.len() as u64));
        }
        let magic = le16(raw, 56);
        if magic != MAGIC {
            return Err(Error::Corrupt("bad superblock magic", magic.into()));
        }
        let rev_level = le32(raw, 76);
        let (first_ino, inode_size, compat, incompat, ro) = match rev_level {
            0 => (11, 128, 0, 0, 0),
            1 => (
                le32(raw, 84),
                le16(raw, 88),
                le32(raw, 92),
                le32(raw, 96),
                le32(raw, 100),
            ),
            other => return Err(Error::Corrupt("unknown revision level", other.into())),
        };
        let refused = incompat & !INCOMPAT_SUPPORTED;
        if refused != 0 {
            return Err(Error::Unsupported {
                feature: feature_name(refused, INCOMPAT_NAMES),
            });
        }
        let read_only = if ro & !RO_COMPAT_SUPPORTED != 0 {
            Some(feature_name(ro & !RO_COMPAT_SUPPORTED, RO_COMPAT_NAMES))
        } else if compat & compat::HAS_JOURNAL != 0 {
            // A journal we do not replay or update: reading is safe, writing is not.
            Some("has_journal")
        } else {
            None
        };

        let log_block_size = le32(raw, 24);
        if log_block_size > MAX_LOG_BLOCK_SIZE {
            return Err(Error::Corrupt(
                "block size too large",
                log_block_size.into(),
            ));
        }
        let block_size = 1024u32 << log_block_size;
        let sb = Self {
            inodes_count: le32(raw, 0),
            blocks_count: le32(raw, 4),
            free_blocks_count: le32(raw, 12),
            free_inodes_count: le32(raw, 16),
            first_data_block: le32(raw, 20),
            block_size,
            blocks_per_group: le32(raw, 32),
            inodes_per_group: le32(raw, 40),
            rev_level,
            first_ino,
            inode_size,
            feature_compat: compat,
            feature_incompat: incompat,
            feature_ro_compat: ro,
            group_count: 0,
        };
        let sb = sb.checked(device_size)?;
        Ok((sb, read_only))
    }

    /// Checks the geometry and computes the group count.
    fn checked(mut self, device_size: u64) -> Result<Self> {
        let expected_first = u32::from(self.block_size == 1024);
        if self.first_data_block != expected_first {
            return Err(Error::Corrupt(
                "first data block",
                self.first_data_block.into(),
            ));
        }
        let bits_per_block = self.block_size * 8;
        if self.blocks_per_group == 0 || self.blocks_per_group > bits_per_block {
            return Err(Error::Corrupt(
                "blocks per group",
                self.blocks_per_group.into(),
            ));
        }
        if self.inodes_per_group == 0 || self.inodes_per_group > bits_per_block {
            return Err(Error::Corrupt(
                "inodes per group",
                self.inodes_per_group.into(),
            ));
        }
        let size = u32::from(self.inode_size);
        if size < 128 || !size.is_power_of_two() || size > self.block_size {
            return Err(Error::Corrupt("inode size", size.into()));
        }
        if self.blocks_count <= self.first_data_block {
            return Err(Error::Corrupt("block count", self.blocks_count.into()));
        }
        let device_blocks = device_size / u64::from(self.block_size);
        if u64::from(self.blocks_count) > device_blocks {
            return Err(Error::Corrupt(
                "file system larger than the device",
                self.blocks_count.into(),
            ));
        }
        let groups = (self.blocks_count - self.first_data_block).div_ceil(self.blocks_per_group);
        let inode_capacity = u64::from(groups) * u64::from(self.inodes_per_group);
        if self.inodes_count == 0 || u64::from(self.inodes_count) > inode_capacity {
            return Err(Error::Corrupt("inode count", self.inodes_count.into()));
        }
        if self.first_ino < 3 || self.first_ino > self.inodes_count {
            return Err(Error::Corrupt("first inode", self.first_ino.into()));
        }
        // The descriptor table lies in group 0; bounding it by the group's
        // size also bounds the memory a hostile group count makes us allocate.
        let table_blocks =
            (u64::from(groups) * DESC_SIZE as u64).div_ceil(u64::from(self.block_size));
        if table_blocks >= u64::from(self.blocks_per_group) {
            return Err(Error::Corrupt(
                "group descriptors overflow group 0",
                groups.into(),
            ));
        }
        self.group_count = groups;
        Ok(self)
    }

    /// Inodes per block of the inode table.
    pub fn inodes_per_block(&self) -> u32 {
        self.block_size / u32::from(self.inode_size)
    }

    /// Blocks of one group's inode table.
    pub fn inode_table_blocks(&self) -> u32 {
        self.inodes_per_group.div_ceil(self.inodes_per_block())
    }

    /// Whether the features say directory entries carry a file type.
    pub fn has_filetype(&self) -> bool {
        self.feature_incompat & incompat::FILETYPE != 0
    }

    /// Reads the group descriptors that follow the superblock's block and
    /// checks that every bitmap and inode table lies inside the file system.
    pub fn read_groups<D: BlockDevice>(&self, dev: &mut D) -> Result<Vec<GroupDesc>> {
        let table_bytes = (self.group_count as usize)
            .checked_mul(DESC_SIZE)
            .ok_or(Error::Corrupt("group count", self.group_count.into()))?;
        let mut raw = vec![0u8; table_bytes];
        let offset = (u64::from(self.first_data_block) + 1) * u64::from(self.block_size);
        dev.read_at(offset, &mut raw)?;
        let table_len = self.inode_table_blocks();
        let mut groups = Vec::with_capacity(self.group_count as usize);
        for desc in raw.chunks_exact(DESC_SIZE) {
            let group = GroupDesc {
                block_bitmap: le32(desc, 0),
                inode_bitmap: le32(desc, 4),
                inode_table: le32(desc, 8),
                free_blocks_count: le16(desc, 12),
                free_inodes_count: le16(desc, 14),
                used_dirs_count: le16(desc, 16),
            };
            self.check_block(group.block_bitmap, "block bitmap outside the file system")?;
            self.check_block(group.inode_bitmap, "inode bitmap outside the file system")?;
            self.check_block(group.inode_table, "inode table outside the file system")?;
            let end = u64::from(group.inode_table) + u64::from(table_len);
            if end > u64::from(self.blocks_count) {
                return Err(Error::Corrupt("inode table past the end", end));
            }
            groups.push(group);
        }
        Ok(groups)
    }

    /// Checks a block number read from the disk: inside the file system and
    /// not the boot block.
    pub fn check_block(&self, block: u32, what: &'static str) -> Result<()> {
        if block < self.first_data_block || block >= self.blocks_count {
            return Err(Error::Corrupt(what, block.into()));
        }
        Ok(())
    }
}

/// One block group's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDesc {
    pub block_bitmap: u32,
    pub inode_bitmap: u32,
    pub inode_table: u32,
    pub free_blocks_count: u16,
    pub free_inodes_count: u16,
    pub used_dirs_count: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid revision-1 superblock for a 1 KiB-block, 8 MiB file system.
    fn raw() -> Vec<u8> {
        let mut raw = vec![0u8; 1024];
        let mut put = |offset: usize, bytes: &[u8]| {
            raw[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(0, &2048u32.to_le_bytes());
        put(4, &8192u32.to_le_bytes());
        put(20, &1u32.to_le_bytes());
        put(32, &8192u32.to_le_bytes());
        put(40, &2048u32.to_le_bytes());
        put(56, &MAGIC.to_le_bytes());
        put(76, &1u32.to_le_bytes());
        put(84, &11u32.to_le_bytes());
        put(88, &256u16.to_le_bytes());
        put(96, &incompat::FILETYPE.to_le_bytes());
        put(
            100,
            &(ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE).to_le_bytes(),
        );
        raw
    }

    const DEVICE: u64 = 8 << 20;

    #[test]
    fn accepts_a_plain_ext2_superblock() {
        let (sb, read_only) = Superblock::parse(&raw(), DEVICE).unwrap();
        assert_eq!(read_only, None);
        assert_eq!(sb.block_size, 1024);
        assert_eq!(sb.group_count, 1);
        assert!(sb.has_filetype());
    }

    #[test]
    fn refuses_each_unsupported_incompatible_feature_by_name() {
        for &(bit, name) in INCOMPAT_NAMES {
            let mut raw = raw();
            raw[96..100].copy_from_slice(&(incompat::FILETYPE | bit).to_le_bytes());
            let err = Superblock::parse(&raw, DEVICE).unwrap_err();
            assert_eq!(err, Error::Unsupported { feature: name });
            assert!(alloc::format!("{err}").contains(name));
        }
    }

    #[test]
    fn read_only_compatible_features_mount_read_only() {
        for &(bit, name) in RO_COMPAT_NAMES {
            let mut raw = raw();
            raw[100..104].copy_from_slice(&bit.to_le_bytes());
            let (_, read_only) = Superblock::parse(&raw, DEVICE).unwrap();
            assert_eq!(read_only, Some(name));
        }
        let mut raw = raw();
        raw[92..96].copy_from_slice(&compat::HAS_JOURNAL.to_le_bytes());
        assert_eq!(
            Superblock::parse(&raw, DEVICE).unwrap().1,
            Some("has_journal")
        );
    }

    #[test]
    fn refuses_bad_geometry() {
        let cases: &[(usize, u32)] = &[
            (24, 30),     // block size 2^40
            (20, 0),      // 1 KiB blocks start at block 1
            (32, 0),      // no blocks per group
            (32, 9000),   // more than one bitmap block covers
            (40, 0),      // no inodes per group
            (0, 0),       // no inodes
            (0, 1 << 30), // more inodes than the groups hold
            (4, 1 << 30), // larger than the device
            (84, 1),      // first inode below the reserved ones
        ];
        for &(offset, value) in cases {
            let mut raw = raw();
            raw[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            assert!(
                matches!(Superblock::parse(&raw, DEVICE), Err(Error::Corrupt(..))),
                "offset {offset} value {value}"
            );
        }
        let mut raw = raw();
        raw[88..90].copy_from_slice(&100u16.to_le_bytes());
        assert!(matches!(
            Superblock::parse(&raw, DEVICE),
            Err(Error::Corrupt(..))
        ));
        assert!(matches!(
            Superblock::parse(&[0; 10], DEVICE),
            Err(Error::Corrupt(..))
        ));
    }
}
