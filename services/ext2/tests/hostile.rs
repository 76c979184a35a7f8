//! Damaged images: specific damage gives the specific error, and random
//! bytes flipped in a real image's metadata never make an operation panic
//! or loop; each returns `Ok` or `Err`.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::sync::OnceLock;

use ext2::{Error, Ext2, MemDevice, ROOT_INODE};
use proptest::prelude::*;

const BLOCK: u64 = 1024;

/// The clean 1 KiB-block image of the known tree, built once.
fn clean_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let src = tempfile::tempdir().unwrap();
        // 300 000 bytes reach the double indirect block in 1 KiB blocks.
        common::make_tree(src.path(), 300_000);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        common::mkfs(src.path(), &image, 1024, "4M", &[]);
        fs::read(&image).unwrap()
    })
}

fn mount(image: Vec<u8>) -> Ext2<MemDevice> {
    Ext2::mount(MemDevice::from_bytes(image)).unwrap()
}

/// Byte offset of inode `ino`'s record (a low inode, in group 0).
fn inode_offset(fs: &Ext2<MemDevice>, ino: u32) -> usize {
    let sb = fs.superblock();
    (u64::from(fs.groups()[0].inode_table) * BLOCK + u64::from(ino - 1) * u64::from(sb.inode_size))
        as usize
}

/// Byte offset of the first block of directory or file `path`.
fn first_block(fs: &mut Ext2<MemDevice>, path: &[u8]) -> usize {
    let ino = fs.resolve_at(ROOT_INODE, path, false).unwrap();
    (u64::from(fs.block_of(ino, 0).unwrap().unwrap()) * BLOCK) as usize
}

/// The byte ranges holding metadata: superblock, group descriptors, the
/// used inodes, directory blocks, indirect blocks and a slow symlink's block.
fn metadata_ranges() -> Vec<(usize, usize)> {
    let mut fs = mount(clean_image().to_vec());
    let gdt = ((u64::from(fs.superblock().first_data_block) + 1) * BLOCK) as usize;
    let inodes = inode_offset(&fs, 1);
    let inode_size = usize::from(fs.superblock().inode_size);
    let mut ranges = vec![
        (1024, 2048),
        (gdt, gdt + 32),
        (inodes, inodes + 40 * inode_size),
    ];
    for dir in [&b"/"[..], b"d1", b"d1/d2", b"d1/d2/d3", b"slowlink"] {
        let start = first_block(&mut fs, dir);
        ranges.push((start, start + BLOCK as usize));
    }
    for file in [&b"big.bin"[..], b"far"] {
        let ino = fs.resolve(file).unwrap();
        let record = inode_offset(&fs, ino);
        let image = clean_image();
        for slot in 12..15 {
            let at = record + 40 + 4 * slot;
            let block = u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
            if block != 0 {
                let start = (u64::from(block) * BLOCK) as usize;
                ranges.push((start, start + BLOCK as usize));
            }
        }
    }
    ranges
}

/// Runs every operation over whatever tree the image holds, with bounds on
/// the walk (the test's own, so that a damaged tree cannot make the test
/// itself loop). Panics only if the crate does.
fn exercise(image: Vec<u8>) {
    let Ok(mut fs) = Ext2::mount(MemDevice::from_bytes(image)) else {
        return;
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![(ROOT_INODE, String::new())];
    let mut budget = 300u32;
    let mut buf = vec![0u8; 1 << 16];
    while let Some((dir, path)) = stack.pop() {
        if !seen.insert(dir) {
            continue;
        }
        let _ = fs.read_dir_page(dir, 0, 4);
        let _ = fs.read_dir_page(dir, 13, 4);
        let Ok(entries) = fs.read_dir(dir) else {
            continue;
        };
        for entry in entries {
            budget = match budget.checked_sub(1) {
                Some(left) => left,
                None => return,
            };
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            let child = format!("{path}/{name}");
            let _ = fs.stat(entry.ino);
            let _ = fs.read(entry.ino, 0, &mut buf);
            let _ = fs.read(entry.ino, common::FAR_OFFSET, &mut buf);
            let _ = fs.read(entry.ino, u64::MAX - 10, &mut buf);
            let _ = fs.read_link(entry.ino);
            let _ = fs.lookup(dir, &entry.name);
            let _ = fs.resolve(child.as_bytes());
            let _ = fs.resolve_at(dir, &entry.name, false);
            if name != "." && name != ".." {
                stack.push((entry.ino, child));
            }
        }
    }
    for path in [
        &b"/link/d3/deep.txt"[..],
        b"slowlink",
        b"/d1/d2/d3/../../../a.txt",
        b"loop1",
        b"abs/hard.txt",
        b"../../..",
    ] {
        let _ = fs.resolve(path);
    }
}

#[test]
fn the_clean_image_exercises_without_errors_on_known_paths() {
    let mut fs = mount(clean_image().to_vec());
    let deep = fs.resolve(b"/d1/d2/d3/deep.txt").unwrap();
    assert_eq!(fs.resolve(b"/link/d3/deep.txt"), Ok(deep));
    exercise(clean_image().to_vec());
}

#[test]
fn a_dotdot_cycle_does_not_hang_resolution() {
    let mut image = clean_image().to_vec();
    let mut fs = mount(image.clone());
    let d2 = fs.resolve(b"d1/d2").unwrap();
    let d3 = fs.resolve(b"d1/d2/d3").unwrap();
    let d2_block = first_block(&mut fs, b"d1/d2");
    let d3_block = first_block(&mut fs, b"d1/d2/d3");
    // The second entry of a directory block is `..`, after `.`'s 12 bytes.
    image[d2_block + 12..d2_block + 16].copy_from_slice(&d3.to_le_bytes());
    image[d3_block + 12..d3_block + 16].copy_from_slice(&d2.to_le_bytes());
    let mut fs = mount(image);
    assert_eq!(fs.resolve(b"d1/d2/d3/../../../../.."), Ok(d2));
    assert_eq!(fs.resolve(b"d1/d2/.."), Ok(d3));
}

#[test]
fn specific_damage_gives_corrupt() {
    let clean = mount(clean_image().to_vec());
    let blocks = clean.superblock().blocks_count;
    let inodes = clean.superblock().inodes_count;
    drop(clean);
    let mut fs = mount(clean_image().to_vec());
    let root_block = first_block(&mut fs, b"/");
    let a = fs.resolve(b"a.txt").unwrap();
    let a_record = inode_offset(&fs, a);

    // An entry whose rec_len is 0, or overruns the block.
    for rec_len in [0u16, 2048, 10] {
        let mut image = clean_image().to_vec();
        image[root_block + 4..root_block + 6].copy_from_slice(&rec_len.to_le_bytes());
        let mut fs = mount(image);
        assert!(
            matches!(fs.read_dir(ROOT_INODE), Err(Error::Corrupt(..))),
            "{rec_len}"
        );
        assert!(matches!(fs.resolve(b"a.txt"), Err(Error::Corrupt(..))));
    }
    // An entry naming an inode past the count.
    let mut image = clean_image().to_vec();
    image[root_block + 12..root_block + 16].copy_from_slice(&(inodes + 1).to_le_bytes());
    assert!(matches!(
        mount(image).read_dir(ROOT_INODE),
        Err(Error::Corrupt(..))
    ));
    // A block pointer past the end of the file system.
    let mut image = clean_image().to_vec();
    image[a_record + 40..a_record + 44].copy_from_slice(&blocks.to_le_bytes());
    assert!(matches!(
        mount(image).read(a, 0, &mut [0; 8]),
        Err(Error::Corrupt(..))
    ));
    // A huge size: reads end at the data, which is holes past the blocks.
    let mut image = clean_image().to_vec();
    image[a_record + 4..a_record + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    image[a_record + 108..a_record + 112].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut fs = mount(image);
    assert_eq!(fs.stat(a).unwrap().size, u64::MAX);
    assert_eq!(fs.read(a, 1 << 50, &mut [0; 8]), Err(Error::Invalid));
    // A directory whose size is not whole blocks.
    let mut image = clean_image().to_vec();
    let root_record = inode_offset(&fs, ROOT_INODE);
    image[root_record + 4..root_record + 8].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        mount(image).read_dir(ROOT_INODE),
        Err(Error::Corrupt(..))
    ));
    // A directory claiming 4 GiB: the first page reads, the holes after it
    // are errors, and nothing allocates for the claimed size.
    let mut image = clean_image().to_vec();
    let huge = u32::MAX - 1023;
    image[root_record + 4..root_record + 8].copy_from_slice(&huge.to_le_bytes());
    let mut fs = mount(image);
    assert_eq!(fs.read_dir_page(ROOT_INODE, 0, 3).unwrap().0.len(), 3);
    assert!(matches!(fs.read_dir(ROOT_INODE), Err(Error::Corrupt(..))));
    assert!(matches!(
        fs.lookup(ROOT_INODE, b"nothing"),
        Err(Error::Corrupt(..))
    ));
    // A superblock claiming more blocks than the device holds.
    let mut image = clean_image().to_vec();
    image[1028..1032].copy_from_slice(&(blocks * 2).to_le_bytes());
    assert!(matches!(
        Ext2::mount(MemDevice::from_bytes(image)),
        Err(Error::Corrupt(..))
    ));
    // A truncated device.
    let image = clean_image()[..3000].to_vec();
    assert!(Ext2::mount(MemDevice::from_bytes(image)).is_err());
}

/// Creates and writes files in a (possibly damaged) image, then reads the
/// result. Panics only if the crate does.
fn exercise_writes(image: Vec<u8>) {
    let Ok(mut fs) = Ext2::mount(MemDevice::from_bytes(image)) else {
        return;
    };
    let data = common::pattern(5000);
    for dir in [&b"/"[..], b"/d1", b"/d1/d2/d3"] {
        let Ok(dir) = fs.resolve(dir) else { continue };
        for name in [&b"new"[..], b"a.txt", b"other"] {
            let ino = match fs.create(dir, name, 0o644, 1, 1) {
                Ok(ino) => ino,
                Err(_) => match fs.lookup(dir, name) {
                    Ok(ino) => ino,
                    Err(_) => continue,
                },
            };
            let _ = fs.write(ino, 0, &data);
            let _ = fs.write(ino, 300_000, &data);
        }
    }
    if let Ok(d1) = fs.resolve(b"/d1") {
        let _ = fs.mkdir(d1, b"made", 0o755, 0, 0);
        let _ = fs.symlink(d1, b"fast", b"one.txt", 0, 0);
        let _ = fs.symlink(d1, b"slow", &[b'x'; 100], 0, 0);
        if let Ok(a) = fs.resolve(b"a.txt") {
            let _ = fs.link(d1, b"again", a);
        }
    }
    for path in [&b"big.bin"[..], b"far", b"slowlink", b"d1/one.txt"] {
        if let Ok(ino) = fs.resolve(path) {
            let _ = fs.write(ino, 1000, &data);
            let _ = fs.truncate(ino, 70_000);
            let _ = fs.truncate(ino, 10);
        }
    }
    for name in [
        &b"a.txt"[..],
        b"slowlink",
        b"link",
        b"far",
        b"big.bin",
        b"d1",
    ] {
        let _ = fs.unlink(ROOT_INODE, name);
    }
    if let Ok(d2) = fs.resolve(b"/d1/d2") {
        if let Ok(d3) = fs.resolve(b"/d1/d2/d3") {
            let _ = fs.unlink(d3, b"deep.txt");
        }
        let _ = fs.rmdir(d2, b"d3");
    }
    exercise(fs.into_device().into_bytes());
}

#[test]
fn writes_to_the_clean_image_succeed() {
    let mut fs = mount(clean_image().to_vec());
    let ino = fs.create(ROOT_INODE, b"new", 0o644, 1, 1).unwrap();
    assert_eq!(fs.write(ino, 0, b"abc"), Ok(3));
    exercise_writes(clean_image().to_vec());
}

/// 1 to 11 (range, offset, xor) byte flips.
fn flips() -> impl Strategy<Value = Vec<(prop::sample::Index, prop::sample::Index, u8)>> {
    proptest::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            1u8..,
        ),
        1..12,
    )
}

/// The clean image with `flips` applied to its metadata bytes.
fn flipped(flips: Vec<(prop::sample::Index, prop::sample::Index, u8)>) -> Vec<u8> {
    static RANGES: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
    let ranges = RANGES.get_or_init(metadata_ranges);
    let mut image = clean_image().to_vec();
    for (range, offset, xor) in flips {
        let (start, end) = ranges[range.index(ranges.len())];
        image[start + offset.index(end - start)] ^= xor;
    }
    image
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn flipped_metadata_bytes_never_panic_or_loop(
        flips in flips()
    ) {
        exercise(flipped(flips));
    }

    #[test]
    fn flipped_metadata_bytes_never_panic_or_loop_on_writes(
        flips in flips()
    ) {
        exercise_writes(flipped(flips));
    }
}
