//! The crate against images made by `mkfs.ext2 -d` from a folder of known
//! files: every byte, size, mode, owner, link count and entry compared.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ext2::{Error, Ext2, FileType, MemDevice, ROOT_INODE};

fn image_of(source: &Path, block_size: u32, extra: &[&str]) -> Ext2<MemDevice> {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(source, &image, block_size, "16M", extra);
    Ext2::mount(MemDevice::from_bytes(fs::read(&image).unwrap())).unwrap()
}

/// Reads a whole file through the crate in odd-sized pieces.
fn read_all(fs: &mut Ext2<MemDevice>, ino: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_001];
    loop {
        let n = fs.read(ino, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Compares the image's node at `rel` with `host`, recursing into directories.
fn compare(fs: &mut Ext2<MemDevice>, host: &Path, rel: &str, checked: &mut usize) {
    let meta = fs::symlink_metadata(host).unwrap();
    let ino = if rel.is_empty() {
        ROOT_INODE
    } else {
        fs.resolve_at(ROOT_INODE, rel.as_bytes(), false)
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let stat = fs.stat(ino).unwrap();
    assert_eq!(u32::from(stat.mode), meta.mode(), "{rel}: mode");
    assert_eq!(stat.uid, meta.uid(), "{rel}: uid");
    assert_eq!(stat.gid, meta.gid(), "{rel}: gid");
    // mkfs adds lost+found to the root, one more link.
    let extra_links = u64::from(rel.is_empty());
    assert_eq!(
        u64::from(stat.links),
        meta.nlink() + extra_links,
        "{rel}: links"
    );
    assert_eq!(i64::from(stat.mtime), meta.mtime(), "{rel}: mtime");
    *checked += 1;
    if meta.is_dir() {
        assert_eq!(stat.file_type, FileType::Directory);
        let listed: BTreeSet<Vec<u8>> = fs
            .read_dir(ino)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n != b"." && n != b".." && n != b"lost+found")
            .collect();
        let expected: BTreeSet<Vec<u8>> = fs::read_dir(host)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        assert_eq!(listed, expected, "{rel}: entries");
        assert_eq!(fs.read(ino, 0, &mut [0; 4]), Err(Error::IsADirectory));
        for name in expected {
            let name = String::from_utf8(name).unwrap();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            compare(fs, &host.join(&name), &child, checked);
        }
    } else if meta.file_type().is_symlink() {
        assert_eq!(stat.file_type, FileType::Symlink);
        let target = fs::read_link(host).unwrap();
        assert_eq!(
            fs.read_link(ino).unwrap(),
            target.as_os_str().as_bytes(),
            "{rel}"
        );
        assert_eq!(stat.size, target.as_os_str().len() as u64);
    } else {
        assert_eq!(stat.file_type, FileType::Regular);
        assert_eq!(stat.size, meta.len(), "{rel}: size");
        assert!(
            read_all(fs, ino) == fs::read(host).unwrap(),
            "{rel}: contents"
        );
        assert_eq!(fs.read_link(ino), Err(Error::NotASymlink));
    }
}

fn check_tree(block_size: u32) {
    check_tree_with(block_size, &[]);
}

fn check_tree_with(block_size: u32, extra: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 3 << 20);
    let mut fs = image_of(src.path(), block_size, extra);
    assert_eq!(fs.block_size(), block_size);
    assert_eq!(fs.read_only(), None);
    let mut checked = 0;
    compare(&mut fs, src.path(), "", &mut checked);
    assert!(checked >= 18, "only {checked} nodes compared");
}

#[test]
fn a_4k_image_reads_back_the_whole_tree() {
    check_tree(4096);
}

#[test]
fn a_1k_image_reads_back_the_whole_tree() {
    // 3 MiB in 1 KiB blocks reaches the double indirect block.
    check_tree(1024);
}

#[test]
fn images_without_filetype_in_revision_0_and_with_128_byte_inodes_read_back() {
    // Without filetype, an entry's name length is 16 bits and no type.
    check_tree_with(1024, &["-O", "^filetype"]);
    // Revision 0: no features, 128-byte inodes, first inode 11.
    check_tree_with(1024, &["-r", "0"]);
    check_tree_with(4096, &["-I", "128"]);
}

#[test]
fn the_test_tree_has_what_it_claims() {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 3 << 20);
    let meta = fs::metadata(src.path().join("a.txt")).unwrap();
    assert_eq!(meta.nlink(), 2);
    let secret = fs::metadata(src.path().join("secret")).unwrap();
    assert_eq!(secret.mode() & 0o7777, 0o640);
    if common::is_root() {
        assert_eq!((secret.uid(), secret.gid()), (70_000, 80_001));
    }
    assert_eq!(
        fs::read_link(src.path().join("slowlink"))
            .unwrap()
            .as_os_str()
            .len(),
        77
    );
}

#[test]
fn paths_resolve_with_dots_symlinks_and_errors() {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 10_000);
    let mut fs = image_of(src.path(), 1024, &[]);
    let deep = fs.resolve(b"/d1/d2/d3/deep.txt").unwrap();
    for path in [
        &b"link/d3/deep.txt"[..],
        b"/abs/d2/d3/deep.txt",
        b"//d1/./d2/../d2/d3//deep.txt",
        b"/d1/d2/d3/../../../d1/d2/d3/deep.txt",
        b"/../../d1/d2/d3/deep.txt",
        b"slowlink",
    ] {
        assert_eq!(
            fs.resolve(path),
            Ok(deep),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    let d1 = fs.resolve(b"/d1").unwrap();
    assert_eq!(fs.resolve_at(d1, b"d2/d3/deep.txt", true), Ok(deep));
    assert_eq!(fs.resolve(b"/"), Ok(ROOT_INODE));
    assert_eq!(fs.resolve(b"abs/"), Ok(d1));
    let link = fs.resolve_at(ROOT_INODE, b"link", false).unwrap();
    assert_eq!(fs.stat(link).unwrap().file_type, FileType::Symlink);
    assert_eq!(fs.resolve(b"loop1"), Err(Error::SymlinkLoop));
    assert_eq!(fs.resolve(b"loop1/x"), Err(Error::SymlinkLoop));
    assert!(fs.resolve_at(ROOT_INODE, b"loop1", false).is_ok());
    assert_eq!(fs.resolve(b"a.txt/x"), Err(Error::NotADirectory));
    assert_eq!(fs.resolve(b"a.txt/"), Err(Error::NotADirectory));
    assert_eq!(fs.resolve(b"nothing"), Err(Error::NotFound));
    assert_eq!(fs.resolve(b""), Err(Error::NotFound));
    assert_eq!(fs.resolve(&[b'n'; 256]), Err(Error::NameTooLong));
    assert_eq!(fs.resolve(&[b'n'; 255]).map(|_| ()), Ok(()));
    assert_eq!(fs.resolve(&vec![b'/'; 5000]), Err(Error::NameTooLong));
    assert_eq!(fs.lookup(deep, b"x"), Err(Error::NotADirectory));
    assert_eq!(fs.lookup(ROOT_INODE, b""), Err(Error::Invalid));
    // Inode numbers 0 and past the count are refused, never read.
    let count = fs.superblock().inodes_count;
    for ino in [0, count + 1, u32::MAX] {
        assert!(matches!(fs.stat(ino), Err(Error::Corrupt(..))));
    }
    // Reads past the end and at huge offsets return nothing.
    let a = fs.resolve(b"a.txt").unwrap();
    assert_eq!(fs.read(a, 1 << 40, &mut [0; 8]), Ok(0));
    assert_eq!(fs.read(a, u64::MAX, &mut [0; 8]), Ok(0));
    let mut buf = [0u8; 64];
    assert_eq!(fs.read(a, 7, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"ext2\n");
}

#[test]
fn unsupported_features_are_refused_by_name_and_read_only_ones_mount_read_only() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), b"x").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    for (option, feature) in [
        ("extents", "extents"),
        ("flex_bg", "flex_bg"),
        ("meta_bg,^resize_inode", "meta_bg"),
        ("inline_data", "inline_data"),
    ] {
        common::mkfs(src.path(), &image, 4096, "16M", &["-O", option]);
        let result = Ext2::mount(MemDevice::from_bytes(fs::read(&image).unwrap()));
        assert_eq!(
            result.err(),
            Some(Error::Unsupported { feature }),
            "-O {option}"
        );
    }
    for (option, feature) in [("huge_file", "huge_file"), ("has_journal", "has_journal")] {
        common::mkfs(src.path(), &image, 4096, "16M", &["-O", option]);
        let mut fs = Ext2::mount(MemDevice::from_bytes(fs::read(&image).unwrap())).unwrap();
        assert_eq!(fs.read_only(), Some(feature), "-O {option}");
        let f = fs.resolve(b"/f").unwrap();
        assert_eq!(fs.read(f, 0, &mut [0; 4]), Ok(1));
    }
}

#[test]
fn holes_read_as_zeros_and_the_triple_indirect_block_is_reached() {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 10_000);
    let mut fs = image_of(src.path(), 1024, &[]);
    let far = fs.resolve(b"far").unwrap();
    let logical = common::FAR_OFFSET / 1024;
    assert!(
        logical >= 12 + 256 + 256 * 256,
        "not in the triple indirect range"
    );
    assert_eq!(fs.block_of(far, 0), Ok(None));
    assert!(fs.block_of(far, logical).unwrap().is_some());
    let mut buf = [0xffu8; 20];
    assert_eq!(fs.read(far, common::FAR_OFFSET - 6, &mut buf), Ok(20));
    assert_eq!(&buf, b"\0\0\0\0\0\0at the far end");
    // Past what the triple indirect block maps.
    assert_eq!(fs.block_of(far, 1 << 40), Err(Error::Invalid));
}

#[test]
fn paged_directory_reads_equal_the_whole_listing() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("many")).unwrap();
    for i in 0..300 {
        fs::write(src.path().join(format!("many/entry-{i}")), b"").unwrap();
    }
    for block_size in [1024, 4096] {
        let mut fs = image_of(src.path(), block_size, &[]);
        let many = fs.resolve(b"many").unwrap();
        let whole = fs.read_dir(many).unwrap();
        assert_eq!(whole.len(), 302);
        for max in [1, 7, 64, 1000] {
            let mut paged = Vec::new();
            let mut from = 0;
            loop {
                let (page, next) = fs.read_dir_page(many, from, max).unwrap();
                assert!(page.len() <= max);
                paged.extend(page);
                match next {
                    Some(position) => {
                        assert!(position > from || paged.is_empty());
                        from = position;
                    }
                    None => break,
                }
            }
            assert_eq!(paged, whole, "pages of {max}");
        }
        // A position past the end, or inside an entry, is not an error.
        assert_eq!(fs.read_dir_page(many, 1 << 40, 10).unwrap().0.len(), 0);
        let (page, _) = fs.read_dir_page(many, 3, 10).unwrap();
        assert_eq!(page.first(), whole.get(1));
    }
}
