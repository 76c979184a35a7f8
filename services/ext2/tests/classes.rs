//! Every write the file system makes names its class (`WriteClass`), and
//! the class matches where the bytes lie: a cache reorders writes by it.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use ext2::{BlockDevice, Ext2, IoError, MemDevice, WriteClass, ROOT_INODE};

/// A memory device that records each write's range and class.
struct Recorder {
    inner: MemDevice,
    writes: Vec<(u64, usize, WriteClass)>,
    unclassified: usize,
}

impl BlockDevice for Recorder {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        // Reached only through the default `write_class` or a direct call:
        // either way a write without a class.
        self.unclassified += 1;
        self.inner.write_at(offset, buf)
    }
    fn write_class(&mut self, offset: u64, buf: &[u8], class: WriteClass) -> Result<(), IoError> {
        self.writes.push((offset, buf.len(), class));
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
}

fn run(block_size: u32) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("old.txt"), b"was here").unwrap();
    let image = dir.path().join("img");
    common::mkfs(&src, &image, block_size, "8M", &[]);
    let dev = Recorder {
        inner: MemDevice::from_bytes(fs::read(&image).unwrap()),
        writes: Vec::new(),
        unclassified: 0,
    };
    let mut fs = Ext2::mount(dev).unwrap();
    let bs = u64::from(block_size);
    // Past the direct blocks and into the double indirect range.
    let per_block = bs / 4;
    let big_len = ((12 + per_block + 3) * bs) as usize;
    let file = fs.create(ROOT_INODE, b"file", 0o644, 0, 0).unwrap();
    fs.write(file, 0, &common::pattern(big_len)).unwrap();
    fs.write(file, 5, b"overwrite").unwrap();
    let sub = fs.mkdir(ROOT_INODE, b"sub", 0o755, 0, 0).unwrap();
    let inner = fs.create(sub, b"inner", 0o600, 0, 0).unwrap();
    fs.write(inner, 100, b"small").unwrap();
    let fast = fs.symlink(sub, b"fast", b"../file", 0, 0).unwrap();
    let slow_target = "x/".repeat(60);
    let slow = fs
        .symlink(sub, b"slow", slow_target.as_bytes(), 0, 0)
        .unwrap();
    fs.sync().unwrap();

    let sb = fs.superblock().clone();
    let groups = fs.groups().to_vec();
    let mut dev = fs.into_device();
    assert_eq!(dev.unclassified, 0, "writes without a class");
    let mut pointer = |ino: u32, slot: u64| -> u32 {
        let group = groups[((ino - 1) / sb.inodes_per_group) as usize];
        let at = u64::from(group.inode_table) * bs
            + u64::from((ino - 1) % sb.inodes_per_group) * u64::from(sb.inode_size)
            + 40
            + 4 * slot;
        let mut raw = [0u8; 4];
        dev.inner.read_at(at, &mut raw).unwrap();
        u32::from_le_bytes(raw)
    };
    // What each block of the data area holds, from the finished image.
    let mut blocks: BTreeMap<u64, WriteClass> = BTreeMap::new();
    let single = pointer(file, 12);
    let double = pointer(file, 13);
    assert!(
        single != 0 && double != 0,
        "the file reaches the double indirect range"
    );
    let slow_block = pointer(slow, 0);
    assert!(slow_block != 0, "the slow symlink has a block");
    assert_eq!(
        pointer(fast, 0).to_le_bytes(),
        *b"../f",
        "the fast one keeps its text"
    );
    let sub_block = pointer(sub, 0);
    let root_block = pointer(ROOT_INODE, 0);
    let inner_block = pointer(inner, 0);
    let mut fs = Ext2::mount(dev).unwrap();
    let file_blocks = (big_len as u64).div_ceil(bs);
    for logical in 0..file_blocks {
        let block = fs.block_of(file, logical).unwrap().unwrap();
        blocks.insert(u64::from(block), WriteClass::Data);
    }
    let dev = fs.into_device();
    let mut raw = vec![0u8; block_size as usize];
    dev.inner
        .clone()
        .read_at(u64::from(double) * bs, &mut raw)
        .unwrap();
    let child = u64::from(u32::from_le_bytes(raw[..4].try_into().unwrap()));
    for (block, class) in [
        (u64::from(single), WriteClass::Indirect),
        (u64::from(double), WriteClass::Indirect),
        (child, WriteClass::Indirect),
        (u64::from(slow_block), WriteClass::Data),
        (u64::from(inner_block), WriteClass::Data),
        (u64::from(sub_block), WriteClass::Directory),
        (u64::from(root_block), WriteClass::Directory),
    ] {
        assert!(blocks.insert(block, class).is_none(), "block {block} twice");
    }

    // The fixed metadata, by byte range.
    let mut regions: Vec<(u64, u64, WriteClass)> = vec![
        (1024, 2048, WriteClass::Superblock),
        (
            (u64::from(sb.first_data_block) + 1) * bs,
            (u64::from(sb.first_data_block) + 1) * bs + 32 * groups.len() as u64,
            WriteClass::GroupDescriptors,
        ),
    ];
    for g in &groups {
        for bitmap in [g.block_bitmap, g.inode_bitmap] {
            let at = u64::from(bitmap) * bs;
            regions.push((at, at + bs, WriteClass::Bitmap));
        }
        let at = u64::from(g.inode_table) * bs;
        let end = at + u64::from(sb.inode_table_blocks()) * bs;
        regions.push((at, end, WriteClass::InodeTable));
    }

    let mut seen = BTreeSet::new();
    for &(offset, len, class) in &dev.writes {
        let end = offset + len as u64;
        let expected = regions
            .iter()
            .find(|(start, stop, _)| offset >= *start && end <= *stop)
            .map(|r| r.2)
            .or_else(|| {
                // A data-area write stays inside one block.
                let block = offset / bs;
                assert_eq!(
                    (end - 1) / bs,
                    block,
                    "write {offset}+{len} crosses a block"
                );
                blocks.get(&block).copied()
            });
        assert_eq!(
            Some(class),
            expected,
            "write at {offset} ({len} bytes), {block_size}-byte blocks"
        );
        seen.insert(class);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        WriteClass::ALL.to_vec(),
        "every class is written"
    );
}

#[test]
fn every_write_is_classified_by_where_it_lies_4k() {
    run(4096);
}

#[test]
fn every_write_is_classified_by_where_it_lies_1k() {
    run(1024);
}
