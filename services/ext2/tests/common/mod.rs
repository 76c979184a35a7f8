//! Shared by the image tests: finding e2fsprogs, building a folder of known
//! files and an image of it.

#![allow(dead_code)] // each test binary uses part of it
// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program of e2fsprogs, from /usr/sbin or /sbin (often not on PATH).
/// Panics with the install command when it is missing: these tests must not
/// pass by skipping.
pub fn e2fs_tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found in /usr/sbin or /sbin: install it with `apt-get install e2fsprogs`")
        })
}

/// Builds an ext2 image of `source` with `block_size` and `extra` options.
pub fn mkfs(source: &Path, image: &Path, block_size: u32, size: &str, extra: &[&str]) {
    // mke2fs asks before overwriting an image; start from nothing.
    let _ = fs::remove_file(image);
    let output = Command::new(e2fs_tool("mkfs.ext2"))
        .arg("-q")
        .args(["-b", &block_size.to_string()])
        .args(extra)
        .arg("-d")
        .arg(source)
        .arg(image)
        .arg(size)
        .output()
        .expect("mkfs.ext2 runs");
    assert!(
        output.status.success(),
        "mkfs.ext2 {extra:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `len` bytes in which no 4-byte-aligned word repeats.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4) as u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761) ^ i).to_le_bytes())
        .take(len)
        .collect()
}

/// Whether the test runs as root (needed to give files other owners).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where the far file's data starts.
pub const FAR_OFFSET: u64 = 70 << 20;

/// Fills `root` with the known tree. `big` is the size of the large file.
pub fn make_tree(root: &Path, big: usize) {
    fs::create_dir_all(root.join("d1/d2/d3")).unwrap();
    fs::write(root.join("a.txt"), b"hello, ext2\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big.bin"), pattern(big)).unwrap();
    fs::write(root.join("d1/d2/d3/deep.txt"), b"deep down\n").unwrap();
    fs::write(root.join("d1/one.txt"), pattern(5000)).unwrap();
    fs::hard_link(root.join("a.txt"), root.join("d1/hard.txt")).unwrap();
    symlink("d1/d2", root.join("link")).unwrap();
    symlink("/d1", root.join("abs")).unwrap();
    // Longer than the 60 bytes i_block holds: a slow symlink with a data block.
    let long_target = format!("{}d1/d2/d3/deep.txt", "./".repeat(30));
    symlink(long_target, root.join("slowlink")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    fs::write(root.join("n".repeat(255)), b"long name").unwrap();
    let secret = root.join("secret");
    fs::write(&secret, b"owned\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        // Owners above 65535 exercise the high 16 bits of uid and gid.
        std::os::unix::fs::chown(&secret, Some(70_000), Some(80_001)).unwrap();
    }
    // A sparse file: a hole, then data.
    let sparse = fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(1 << 20).unwrap();
    drop(sparse);
    let mut bytes = fs::read(root.join("sparse")).unwrap();
    bytes.truncate((1 << 20) - 10);
    bytes.extend_from_slice(b"0123456789");
    fs::write(root.join("sparse"), bytes).unwrap();
    // Data past 12 + 256 + 256 * 256 KiB: the triple indirect block in 1 KiB blocks.
    let far = fs::File::create(root.join("far")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&far, b"at the far end", FAR_OFFSET).unwrap();
}
