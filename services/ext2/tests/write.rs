//! The start of the write path, checked by e2fsprogs: after files are
//! created and written, `e2fsck -fn` finds nothing to fix and `debugfs`
//! reads back the same bytes.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use ext2::{Error, Ext2, MemDevice, ROOT_INODE};

fn mount_image(image: &Path) -> Ext2<MemDevice> {
    Ext2::mount(MemDevice::from_bytes(fs::read(image).unwrap())).unwrap()
}

fn save(mut fs: Ext2<MemDevice>, image: &Path) {
    fs.sync().unwrap();
    fs::write(image, fs.into_device().into_bytes()).unwrap();
}

/// `e2fsck -fn` must exit 0: nothing to fix. Returns the inodes in use
/// from its summary (`IMG: USED/TOTAL files (...)`).
fn fsck_clean(image: &Path) -> u32 {
    let output = Command::new(common::e2fs_tool("e2fsck"))
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "e2fsck -fn exit {:?}:\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().find(|l| l.contains(" files (")).unwrap();
    let used = summary
        .split(": ")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    used.parse().unwrap()
}

/// The bytes of `path` as `debugfs` reads them.
fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let output = Command::new(common::e2fs_tool("debugfs"))
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

fn create_and_write(block_size: u32) {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 10_000);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, block_size, "16M", &[]);
    let mut fs = mount_image(&image);
    fs.set_time(1_700_000_000);

    let small = fs.create(ROOT_INODE, b"new.txt", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(small, 0, b"written by kaal\n"), Ok(16));
    let d1 = fs.resolve(b"/d1").unwrap();
    // 3 MiB in odd pieces: the single and double indirect blocks.
    let big = fs.create(d1, b"big", 0o600, 70_000, 80_001).unwrap();
    let data = common::pattern(3 << 20);
    for (i, piece) in data.chunks(77_777).enumerate() {
        assert_eq!(fs.write(big, (i * 77_777) as u64, piece), Ok(piece.len()));
    }
    // Written in sequence, it lies in sequence: only the indirect blocks
    // interrupt the run.
    let blocks = (3u64 << 20) / u64::from(block_size);
    let breaks = (1..blocks)
        .filter(|&i| {
            fs.block_of(big, i).unwrap().unwrap() != fs.block_of(big, i - 1).unwrap().unwrap() + 1
        })
        .count();
    assert!(breaks <= 16, "{breaks} breaks in {blocks} blocks");
    // A write past the end leaves a hole before it.
    let sparse = fs.create(d1, b"sparse", 0o644, 0, 0).unwrap();
    fs.write(sparse, 100_000, b"tail").unwrap();
    // Overwriting inside a file keeps its size.
    fs.write(small, 0, b"W").unwrap();
    // Enough names to need new directory blocks.
    let d3 = fs.resolve(b"/d1/d2/d3").unwrap();
    for i in 0..150 {
        let name = format!("file-with-a-longish-name-{i:03}");
        let ino = fs.create(d3, name.as_bytes(), 0o644, 1, 2).unwrap();
        fs.write(ino, 0, name.as_bytes()).unwrap();
    }
    assert_eq!(
        fs.create(ROOT_INODE, b"new.txt", 0o644, 0, 0),
        Err(Error::Exists)
    );
    assert_eq!(
        fs.create(ROOT_INODE, &[b'x'; 256], 0o644, 0, 0),
        Err(Error::NameTooLong)
    );
    assert_eq!(
        fs.create(ROOT_INODE, b"a/b", 0o644, 0, 0),
        Err(Error::Invalid)
    );
    assert_eq!(fs.write(d1, 0, b"x"), Err(Error::IsADirectory));
    save(fs, &image);

    // The tree's files, lost+found and the reserved inodes, plus 153 new files.
    assert!(fsck_clean(&image) > 153 + 20);
    assert_eq!(debugfs_cat(&image, "/new.txt"), b"Written by kaal\n");
    assert!(debugfs_cat(&image, "/d1/big") == data, "big differs");
    let mut expected = vec![0u8; 100_000];
    expected.extend_from_slice(b"tail");
    assert!(debugfs_cat(&image, "/d1/sparse") == expected);
    assert_eq!(
        debugfs_cat(&image, "/d1/d2/d3/file-with-a-longish-name-149"),
        b"file-with-a-longish-name-149"
    );
    // The old files are intact and the crate reads the new ones back.
    let mut fs = mount_image(&image);
    let deep = fs.resolve(b"/d1/d2/d3/deep.txt").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(fs.read(deep, 0, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"deep down\n");
    let big = fs.resolve(b"/d1/big").unwrap();
    let stat = fs.stat(big).unwrap();
    assert_eq!(
        (stat.mode, stat.uid, stat.gid, stat.size),
        (0o100600, 70_000, 80_001, 3 << 20)
    );
    assert_eq!(stat.mtime, 1_700_000_000);
    assert_eq!(fs.read_dir(d3).unwrap().len(), 150 + 3);
}

#[test]
fn created_files_pass_e2fsck_and_read_back_with_debugfs_4k() {
    create_and_write(4096);
}

#[test]
fn created_files_pass_e2fsck_and_read_back_with_debugfs_1k() {
    create_and_write(1024);
}

#[test]
fn a_full_disk_gives_no_space_and_stays_consistent() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("keep"), b"keep me\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 1024, "1M", &[]);
    let mut fs = mount_image(&image);
    let fill = fs.create(ROOT_INODE, b"fill", 0o644, 0, 0).unwrap();
    let chunk = vec![0x5a; 64 << 10];
    let mut offset = 0u64;
    let err = loop {
        match fs.write(fill, offset, &chunk) {
            Ok(n) => offset += n as u64,
            Err(err) => break err,
        }
        assert!(offset < 2 << 20, "wrote more than the disk holds");
    };
    assert_eq!(err, Error::NoSpace);
    let size = fs.stat(fill).unwrap().size;
    assert!(size > 500 << 10, "only {size} bytes fit");
    // With no block left a directory cannot be made: its inode is taken
    // and given back, leaving nothing for e2fsck to find. A symlink too
    // long for its inode needs a block as well.
    assert_eq!(fs.mkdir(ROOT_INODE, b"d", 0o755, 0, 0), Err(Error::NoSpace));
    assert_eq!(
        fs.symlink(ROOT_INODE, b"s", &[b'x'; 200], 0, 0),
        Err(Error::NoSpace)
    );
    assert_eq!(fs.lookup(ROOT_INODE, b"d"), Err(Error::NotFound));
    save(fs, &image);
    fsck_clean(&image);
    assert_eq!(debugfs_cat(&image, "/keep"), b"keep me\n");
    assert_eq!(debugfs_cat(&image, "/fill").len() as u64, size);
}

#[test]
fn a_write_past_the_block_map_is_refused_and_leaves_the_size() {
    let src = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 1024, "4M", &[]);
    let mut fs = mount_image(&image);
    let ino = fs.create(ROOT_INODE, b"f", 0o644, 0, 0).unwrap();
    fs.write(ino, 0, b"abc").unwrap();
    // 1 KiB blocks map about 16 GiB; 1 TiB lies past the triple indirect.
    assert_eq!(fs.write(ino, 1 << 40, b"x"), Err(Error::Invalid));
    assert_eq!(fs.stat(ino).unwrap().size, 3);
    save(fs, &image);
    fsck_clean(&image);
}

#[test]
fn a_truncate_past_the_block_map_is_refused_and_the_largest_passes_e2fsck() {
    let src = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 1024, "4M", &[]);
    let mut fs = mount_image(&image);
    // 1 KiB blocks: 12 direct, 256, 256^2 and 256^3 indirect blocks.
    let max = (12 + 256 + 256 * 256 + 256 * 256 * 256) * 1024;
    assert_eq!(fs.max_file_size(), max);
    let big = fs.create(ROOT_INODE, b"big", 0o644, 0, 0).unwrap();
    let huge = fs.create(ROOT_INODE, b"huge", 0o644, 0, 0).unwrap();
    // A sparse file of 1 TiB would be one e2fsck calls bad (i_size).
    assert_eq!(fs.truncate(huge, 1 << 40), Err(Error::Invalid));
    assert_eq!(fs.truncate(huge, max + 1), Err(Error::Invalid));
    assert_eq!(fs.stat(huge).unwrap().size, 0);
    fs.truncate(big, max).unwrap();
    save(fs, &image);
    fsck_clean(&image);
}

#[test]
fn a_read_only_mount_refuses_writes() {
    let src = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 4096, "16M", &["-O", "huge_file"]);
    let mut fs = mount_image(&image);
    assert_eq!(
        fs.create(ROOT_INODE, b"x", 0o644, 0, 0),
        Err(Error::ReadOnly)
    );
}

#[test]
fn directories_symlinks_and_hard_links_pass_e2fsck() {
    for block_size in [1024, 4096] {
        let src = tempfile::tempdir().unwrap();
        common::make_tree(src.path(), 10_000);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        common::mkfs(src.path(), &image, block_size, "16M", &[]);
        let mut fs = mount_image(&image);
        fs.set_time(1_700_000_000);
        let root_links = fs.stat(ROOT_INODE).unwrap().links;

        let top = fs.mkdir(ROOT_INODE, b"top", 0o755, 5, 6).unwrap();
        let inner = fs.mkdir(top, b"inner", 0o700, 5, 6).unwrap();
        let file = fs.create(inner, b"file", 0o644, 5, 6).unwrap();
        fs.write(file, 0, b"in the new tree\n").unwrap();
        let long_target = format!("{}inner/file", "./".repeat(40));
        fs.symlink(top, b"fast", b"inner/file", 0, 0).unwrap();
        fs.symlink(top, b"slow", long_target.as_bytes(), 0, 0)
            .unwrap();
        fs.link(ROOT_INODE, b"hard", file).unwrap();
        // Enough subdirectories to grow the parent past one 1 KiB block.
        for i in 0..80 {
            fs.mkdir(top, format!("sub-directory-{i:02}").as_bytes(), 0o755, 0, 0)
                .unwrap();
        }
        assert_eq!(fs.mkdir(top, b"inner", 0o755, 0, 0), Err(Error::Exists));
        assert_eq!(
            fs.link(ROOT_INODE, b"dirlink", top),
            Err(Error::IsADirectory)
        );
        assert_eq!(fs.symlink(top, b"x", b"", 0, 0), Err(Error::Invalid));

        assert_eq!(fs.stat(ROOT_INODE).unwrap().links, root_links + 1);
        assert_eq!(fs.stat(top).unwrap().links, 2 + 1 + 80);
        assert!(fs.stat(top).unwrap().size >= 2 * u64::from(block_size.min(2048)));
        assert_eq!(fs.stat(file).unwrap().links, 2);
        assert_eq!(fs.resolve(b"/top/fast"), Ok(file));
        assert_eq!(fs.resolve(b"/top/slow"), Ok(file));
        assert_eq!(fs.resolve(b"/top/inner/../inner/file"), Ok(file));
        let slow = fs.resolve_at(top, b"slow", false).unwrap();
        assert_eq!(fs.read_link(slow).unwrap(), long_target.as_bytes());
        save(fs, &image);

        fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/hard"), b"in the new tree\n");
        assert_eq!(debugfs_cat(&image, "/top/inner/file"), b"in the new tree\n");
        let mut fs = mount_image(&image);
        let stat = fs.stat(inner).unwrap();
        assert_eq!((stat.mode, stat.uid, stat.gid), (0o40700, 5, 6));
        assert_eq!(fs.resolve(b"/top/fast"), Ok(file));
    }
}

#[test]
fn truncate_unlink_and_rmdir_give_space_back_and_pass_e2fsck() {
    for block_size in [1024u32, 4096] {
        let src = tempfile::tempdir().unwrap();
        common::make_tree(src.path(), 3 << 20);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        common::mkfs(src.path(), &image, block_size, "16M", &[]);
        let mut fs = mount_image(&image);
        fs.set_time(1_700_000_000);
        let free_before = fs.superblock().free_blocks_count;
        let data = common::pattern(3 << 20);
        let bs = u64::from(block_size);

        // Shrink into the double indirect range (1 KiB) and to a block's middle.
        let big = fs.resolve(b"big.bin").unwrap();
        let cut = (12 + 256 + 300) * bs + 17;
        fs.truncate(big, cut).unwrap();
        assert_eq!(fs.stat(big).unwrap().size, cut);
        // Growing again reads zeros past the old cut.
        fs.truncate(big, cut + 5000).unwrap();
        let mut buf = vec![0xffu8; 5100];
        assert_eq!(fs.read(big, cut - 100, &mut buf), Ok(5100));
        assert_eq!(&buf[..100], &data[cut as usize - 100..cut as usize]);
        assert!(buf[100..].iter().all(|&b| b == 0));
        // The far file keeps its triple indirect data up to the cut.
        let far = fs.resolve(b"far").unwrap();
        fs.truncate(far, common::FAR_OFFSET + 2).unwrap();
        let one = fs.resolve(b"d1/one.txt").unwrap();
        fs.truncate(one, 0).unwrap();
        assert_eq!(fs.block_of(one, 0), Ok(None));

        let a = fs.resolve(b"a.txt").unwrap();
        let d1 = fs.resolve(b"d1").unwrap();
        fs.unlink(d1, b"hard.txt").unwrap();
        assert_eq!(fs.stat(a).unwrap().links, 1);
        for name in [&b"slowlink"[..], b"link", b"sparse", &[b'n'; 255]] {
            fs.unlink(ROOT_INODE, name).unwrap();
            assert_eq!(fs.lookup(ROOT_INODE, name), Err(Error::NotFound));
        }
        let d2 = fs.resolve(b"d1/d2").unwrap();
        let d3 = fs.resolve(b"d1/d2/d3").unwrap();
        assert_eq!(fs.rmdir(d2, b"d3"), Err(Error::NotEmpty));
        assert_eq!(fs.unlink(d1, b"d2"), Err(Error::IsADirectory));
        assert_eq!(fs.rmdir(ROOT_INODE, b"a.txt"), Err(Error::NotADirectory));
        assert_eq!(fs.unlink(ROOT_INODE, b"nothing"), Err(Error::NotFound));
        fs.unlink(d3, b"deep.txt").unwrap();
        fs.rmdir(d2, b"d3").unwrap();
        fs.rmdir(d1, b"d2").unwrap();
        assert_eq!(fs.stat(d1).unwrap().links, 2);
        // The space comes back: a new 3 MiB file fits where big.bin's tail was.
        let again = fs.create(ROOT_INODE, b"again", 0o644, 0, 0).unwrap();
        fs.write(again, 0, &data).unwrap();
        assert!(fs.superblock().free_blocks_count > free_before - (3 << 20) / block_size);
        save(fs, &image);

        fsck_clean(&image);
        let mut expected = data[..cut as usize].to_vec();
        expected.resize(cut as usize + 5000, 0);
        assert!(debugfs_cat(&image, "/big.bin") == expected, "big.bin");
        assert!(debugfs_cat(&image, "/again") == data, "again");
        let far = debugfs_cat(&image, "/far");
        assert_eq!(far.len() as u64, common::FAR_OFFSET + 2);
        assert_eq!(&far[far.len() - 2..], b"at");
        assert_eq!(debugfs_cat(&image, "/a.txt"), b"hello, ext2\n");
    }
}

#[test]
fn rename_within_and_across_directories_and_over_targets_passes_e2fsck() {
    for block_size in [1024u32, 4096] {
        let src = tempfile::tempdir().unwrap();
        common::make_tree(src.path(), 10_000);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        common::mkfs(src.path(), &image, block_size, "16M", &[]);
        let mut fs = mount_image(&image);
        let root = ROOT_INODE;
        let d1 = fs.resolve(b"d1").unwrap();
        let d2 = fs.resolve(b"d1/d2").unwrap();
        let root_links = fs.stat(root).unwrap().links;

        let a = fs.resolve(b"a.txt").unwrap();
        fs.rename(root, b"a.txt", root, b"b.txt").unwrap();
        assert_eq!(fs.resolve(b"b.txt"), Ok(a));
        assert_eq!(fs.resolve(b"a.txt"), Err(Error::NotFound));
        // Onto another name of the same file: nothing changes.
        fs.rename(d1, b"hard.txt", root, b"b.txt").unwrap();
        assert_eq!(fs.stat(a).unwrap().links, 2);
        // Across directories.
        let one = fs.resolve(b"d1/one.txt").unwrap();
        fs.rename(d1, b"one.txt", d2, b"moved.txt").unwrap();
        assert_eq!(fs.resolve(b"d1/d2/moved.txt"), Ok(one));
        // Over an existing file, which goes.
        let secret = fs.resolve(b"secret").unwrap();
        fs.rename(root, b"secret", root, b"empty").unwrap();
        assert_eq!(fs.resolve(b"empty"), Ok(secret));
        // A directory to another parent: its `..` and both link counts follow.
        fs.rename(d1, b"d2", root, b"d2moved").unwrap();
        assert_eq!(fs.resolve(b"d2moved/.."), Ok(root));
        assert_eq!(fs.stat(d1).unwrap().links, 2);
        assert_eq!(fs.stat(root).unwrap().links, root_links + 1);
        // A directory over an empty one.
        let spare = fs.mkdir(root, b"spare", 0o755, 0, 0).unwrap();
        let d3 = fs.resolve(b"d2moved/d3").unwrap();
        fs.rename(d2, b"d3", root, b"spare").unwrap();
        assert_eq!(fs.resolve(b"spare"), Ok(d3));
        assert!(fs.stat(spare).is_err() || fs.stat(spare).unwrap().links == 0);
        assert_eq!(fs.resolve(b"spare/deep.txt").map(|_| ()), Ok(()));
        // Refusals.
        assert_eq!(fs.rename(root, b"d2moved", d2, b"x"), Err(Error::Invalid));
        assert_eq!(
            fs.rename(root, b"spare", d3, b"inside"),
            Err(Error::Invalid)
        );
        assert_eq!(
            fs.rename(root, b"b.txt", root, b"d1"),
            Err(Error::IsADirectory)
        );
        assert_eq!(
            fs.rename(root, b"d1", root, b"b.txt"),
            Err(Error::NotADirectory)
        );
        assert_eq!(
            fs.rename(root, b"d2moved", root, b"spare"),
            Err(Error::NotEmpty)
        );
        assert_eq!(
            fs.rename(root, b"nothing", root, b"x"),
            Err(Error::NotFound)
        );
        save(fs, &image);

        fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/b.txt"), b"hello, ext2\n");
        assert_eq!(debugfs_cat(&image, "/d1/hard.txt"), b"hello, ext2\n");
        assert_eq!(debugfs_cat(&image, "/empty"), b"owned\n");
        assert_eq!(debugfs_cat(&image, "/spare/deep.txt"), b"deep down\n");
        assert!(debugfs_cat(&image, "/d2moved/moved.txt") == common::pattern(5000));
    }
}

#[test]
fn a_hash_indexed_directory_is_read_and_stays_valid_when_changed() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("many")).unwrap();
    for i in 0..400 {
        fs::write(
            src.path().join(format!("many/file-number-{i}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 1024, "8M", &[]);
    // e2fsck -D rebuilds directories with a hash index (mkfs -d does not).
    let status = Command::new(common::e2fs_tool("e2fsck"))
        .arg("-fyD")
        .arg(&image)
        .output()
        .unwrap()
        .status;
    assert!(
        matches!(status.code(), Some(0..=1)),
        "e2fsck -fyD: {status}"
    );
    let stat = Command::new(common::e2fs_tool("debugfs"))
        .args(["-R", "stat /many"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&stat.stdout).contains("Flags: 0x1000"),
        "not indexed"
    );

    let mut fs = mount_image(&image);
    let many = fs.resolve(b"many").unwrap();
    assert_eq!(fs.read_dir(many).unwrap().len(), 400 + 2);
    let f = fs.resolve(b"many/file-number-321").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(fs.read(f, 0, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"321\n");
    let new = fs.create(many, b"added", 0o644, 0, 0).unwrap();
    fs.write(new, 0, b"added\n").unwrap();
    fs.unlink(many, b"file-number-7").unwrap();
    fs.rename(many, b"file-number-8", many, b"renamed").unwrap();
    save(fs, &image);
    fsck_clean(&image);
    assert_eq!(debugfs_cat(&image, "/many/added"), b"added\n");
    assert_eq!(debugfs_cat(&image, "/many/renamed"), b"8\n");
}

/// `debugfs -R "stat <ino>"`'s report of inode `ino`.
fn debugfs_stat(image: &Path, ino: u32) -> String {
    let output = Command::new(common::e2fs_tool("debugfs"))
        .arg("-R")
        .arg(format!("stat <{ino}>"))
        .arg(image)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Permission bits and times set on a file, a directory and a symlink,
/// with small inodes and with large ones (whose nanosecond fields, put
/// there by `debugfs`, must be cleared with the new seconds).
fn set_attrs_with(block_size: u32, extra: &[&str], large: bool) {
    let src = tempfile::tempdir().unwrap();
    common::make_tree(src.path(), 10_000);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, block_size, "16M", extra);
    if large {
        for field in ["atime_extra", "mtime_extra"] {
            let status = Command::new(common::e2fs_tool("debugfs"))
                .arg("-w")
                .arg("-R")
                .arg(format!("sif /a.txt {field} 0x1d6f3454"))
                .arg(&image)
                .output()
                .unwrap()
                .status;
            assert!(status.success());
        }
    }
    let mut fs = mount_image(&image);
    fs.set_time(1_700_000_000);
    let file = fs.resolve(b"/a.txt").unwrap();
    let before = fs.stat(file).unwrap();
    let d1 = fs.resolve(b"/d1").unwrap();
    let link = fs.resolve_at(ROOT_INODE, b"/link", false).unwrap();

    fs.set_attrs(file, Some(0o4640 | 0o170000), None, Some(1_577_934_245))
        .unwrap();
    fs.set_attrs(d1, Some(0o700), Some(1_000), Some(2_000))
        .unwrap();
    // Only times: the mode stays.
    fs.set_attrs(link, None, Some(3_000), None).unwrap();
    assert_eq!(
        fs.set_attrs(0, Some(0o644), None, None),
        Err(Error::Corrupt("inode number out of range", 0))
    );
    let s = fs.stat(file).unwrap();
    assert_eq!(
        (s.mode, s.atime, s.mtime),
        (0o104640, before.atime, 1_577_934_245)
    );
    assert_eq!((s.ctime, s.size, s.links), (1_700_000_000, before.size, 2));
    save(fs, &image);

    fsck_clean(&image);
    let report = debugfs_stat(&image, file);
    assert!(report.contains("Type: regular    Mode:  04640"), "{report}");
    let fraction = if large { ":00000000" } else { "" };
    for line in [
        format!("mtime: 0x5e0d5da5{fraction} -- Thu Jan  2 03:04:05 2020"),
        format!("ctime: 0x6553f100{fraction} -- Tue Nov 14 22:13:20 2023"),
    ] {
        assert!(report.contains(&line), "{line} not in {report}");
    }
    if large {
        // The access time was not set: its fraction stays.
        assert!(report.contains(":1d6f3454 -- "), "{report}");
    }
    let report = debugfs_stat(&image, d1);
    assert!(
        report.contains("Type: directory    Mode:  0700"),
        "{report}"
    );
    assert!(
        report.contains(&format!("atime: 0x000003e8{fraction}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("mtime: 0x000007d0{fraction}")),
        "{report}"
    );
    let report = debugfs_stat(&image, link);
    assert!(report.contains("Type: symlink    Mode:  0777"), "{report}");
    assert!(
        report.contains(&format!("atime: 0x00000bb8{fraction}")),
        "{report}"
    );
    // Read back through the crate after a remount.
    let mut fs = mount_image(&image);
    assert_eq!(fs.stat(d1).unwrap().mode, 0o40700);
    assert_eq!(fs.read_link(link).unwrap(), b"d1/d2");
    assert_eq!(debugfs_cat(&image, "/a.txt"), b"hello, ext2\n");
}

#[test]
fn set_attrs_passes_e2fsck_and_debugfs_reads_it_small_inodes() {
    set_attrs_with(4096, &["-I", "128"], false);
}

#[test]
fn set_attrs_passes_e2fsck_and_debugfs_reads_it_large_inodes() {
    set_attrs_with(1024, &["-I", "256"], true);
}

#[test]
fn set_attrs_on_a_read_only_mount_is_refused() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), b"x").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, 4096, "16M", &["-O", "huge_file"]);
    let mut fs = mount_image(&image);
    assert!(fs.read_only().is_some());
    let f = fs.resolve(b"/f").unwrap();
    assert_eq!(
        fs.set_attrs(f, Some(0o600), None, None),
        Err(Error::ReadOnly)
    );
}
