//! Test disks: a system test may ask for a disk image, which the harness
//! makes before QEMU starts and checks after it exits. Either sectors of a
//! known pattern (the guest writes the other pattern to the sectors the
//! test names), or an ext2 file system built from a tree of
//! `kaal_test_patterns::fs` (see ext2.rs) or from the Linux userland
//! (`ext2 = "linux"`, and `"linux_bench"` with the bench file; see
//! linux.rs), or the disk a system manifest's
//! `[disk]` describes.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kaal_test_patterns::disk::{self as testdata, SECTOR};
use kaal_test_patterns::fs::{self as trees, Damage};
use serde::Deserialize;

use crate::layout::Layout;
use crate::{ext2, linux};

/// `disk = { bytes = ..., written_sector = ..., written_sectors = ...,
/// ext2 = "...", block_size = ..., fs_bytes = ..., system = "..." }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Size of the image: whole sectors (not with `system`).
    #[serde(default)]
    pub bytes: u64,
    /// The sectors the guest must have written with `testdata::written`;
    /// every other byte must still be `testdata::fresh`.
    #[serde(default)]
    pub written_sector: u64,
    #[serde(default)]
    pub written_sectors: u64,
    /// An ext2 file system holding this tree (`trees::tree`'s names, or
    /// `linux`: the Linux userland; `linux_bench`: it and the bench file).
    #[serde(default)]
    pub ext2: Option<String>,
    /// The file system's block size (default 1024).
    #[serde(default)]
    pub block_size: Option<u32>,
    /// The file system's size when smaller than the disk: the rest keeps
    /// the fresh pattern, and must still hold it after the run.
    #[serde(default)]
    pub fs_bytes: Option<u64>,
    /// The disk of system manifest `systems/<system>.toml` (its `[disk]`).
    #[serde(default)]
    pub system: Option<String>,
}

/// Block size of a test's file system unless it names one.
pub const DEFAULT_BLOCK_SIZE: u32 = 1024;

/// `fs_check = { fsck = true, tree = "written" }`: after the run (the last
/// boot), `e2fsck -fn` must pass and the file system must hold exactly `tree`
/// and each of `files`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsCheck {
    #[serde(default = "yes")]
    pub fsck: bool,
    #[serde(default)]
    pub tree: Option<String>,
    #[serde(default)]
    pub files: Vec<FileCheck>,
}

/// `{ path = "/tmp/f", bytes = 6000, fill = ".", put = [{ at = 0, text = "..." }] }`:
/// the file (read back with debugfs) holds `bytes` bytes of `fill` but for each
/// `text` at its offset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    pub path: String,
    pub bytes: usize,
    pub fill: char,
    #[serde(default)]
    pub put: Vec<Put>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Put {
    pub at: usize,
    pub text: String,
}

impl FileCheck {
    /// The bytes the file must hold.
    fn expected(&self) -> Vec<u8> {
        let mut fill = [0u8; 4];
        let fill = self.fill.encode_utf8(&mut fill).as_bytes();
        let mut out: Vec<u8> = fill.iter().copied().cycle().take(self.bytes).collect();
        for p in &self.put {
            for (i, &b) in p.text.as_bytes().iter().enumerate() {
                if let Some(slot) = out.get_mut(p.at + i) {
                    *slot = b;
                }
            }
        }
        out
    }

    /// `Err(reason)` unless `image` holds the file as expected; `work` is
    /// debugfs's copy of it.
    fn verify(&self, image: &Path, work: &Path) -> Result<Result<(), String>> {
        let _ = fs::remove_file(work);
        ext2::debugfs(
            image,
            &format!("dump \"{}\" \"{}\"", self.path, work.display()),
        )?;
        let Ok(got) = fs::read(work) else {
            return Ok(Err(format!("{} is not on the disk", self.path)));
        };
        let want = self.expected();
        if got.len() != want.len() {
            return Ok(Err(format!(
                "{} holds {} bytes, expected {}",
                self.path,
                got.len(),
                want.len()
            )));
        }
        Ok(
            match got.iter().zip(&want).enumerate().find(|(_, (a, b))| a != b) {
                Some((at, (g, w))) => Err(format!(
                    "{} byte {at} is {g:#04x}, expected {w:#04x}",
                    self.path
                )),
                None => Ok(()),
            },
        )
    }
}

fn yes() -> bool {
    true
}

impl DiskSpec {
    pub fn check_spec(&self, test: &str) -> Result<()> {
        if let Some(system) = &self.system {
            if *self
                != (DiskSpec {
                    system: Some(system.clone()),
                    ..DiskSpec::default()
                })
            {
                bail!("test {test}: a disk with `system` takes no other key (the manifest's [disk] says it all)");
            }
            return Ok(());
        }
        if self.bytes == 0 || !self.bytes.is_multiple_of(SECTOR) || self.bytes > 1 << 30 {
            bail!(
                "test {test}: disk bytes must be a whole number of 512-byte sectors, at most 1 GiB"
            );
        }
        let end = self.written_sector.checked_add(self.written_sectors);
        if end.is_none_or(|e| e * SECTOR > self.bytes) {
            bail!("test {test}: the disk's written sectors lie beyond its end");
        }
        let Some(tree) = &self.ext2 else {
            if self.block_size.is_some() || self.fs_bytes.is_some() {
                bail!(
                    "test {test}: block_size and fs_bytes are for an ext2 disk (`ext2 = \"...\"`)"
                );
            }
            return Ok(());
        };
        let linux_trees = [linux::TREE, linux::BENCH_TREE, linux::WEB_TREE];
        if trees::tree(tree).is_none() && !linux_trees.contains(&tree.as_str()) {
            bail!(
                "test {test}: ext2 = {tree:?} is no tree; the trees are {}, {}",
                trees::TREE_NAMES.join(", "),
                linux_trees.join(", ")
            );
        }
        if self.written_sectors != 0 {
            bail!("test {test}: an ext2 disk has no written sectors (fs_check checks it)");
        }
        let bs = self.block_size();
        if !matches!(bs, 1024 | 2048 | 4096) {
            bail!("test {test}: block_size must be 1024, 2048 or 4096");
        }
        let fs = self.fs_bytes();
        if fs > self.bytes || !fs.is_multiple_of(u64::from(bs)) || fs < 256 * 1024 {
            bail!(
                "test {test}: fs_bytes must be whole blocks, at least 256 KiB and at most the disk's bytes"
            );
        }
        Ok(())
    }

    pub fn block_size(&self) -> u32 {
        self.block_size.unwrap_or(DEFAULT_BLOCK_SIZE)
    }

    /// The file system's size: `fs_bytes`, else the whole disk.
    pub fn fs_bytes(&self) -> u64 {
        self.fs_bytes.unwrap_or(self.bytes)
    }

    /// What the harness checks byte by byte after the run: everything
    /// outside the file system, if there is one.
    fn checked_from(&self) -> u64 {
        if self.ext2.is_some() {
            self.fs_bytes()
        } else {
            0
        }
    }

    fn written(&self, offset: u64) -> bool {
        let s = offset / SECTOR;
        s >= self.written_sector && s < self.written_sector + self.written_sectors
    }

    /// Writes a fresh image to `path`: the pattern, with the file system
    /// (damaged as `damage` says) at its start if it has one.
    pub fn create(&self, layout: &Layout, path: &Path, damage: &[Damage]) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        if let Some(system) = &self.system {
            let (folder, bytes, bs, with_linux) = crate::system::disk(layout, system)?;
            if !with_linux {
                return ext2::build_from_folder(&folder, path, bytes, bs);
            }
            let tree = path.with_extension("tree");
            linux::system_tree(layout, &folder, &tree)?;
            return ext2::build_from_folder(&tree, path, bytes, bs);
        }
        let bytes: Vec<u8> = (0..self.bytes).map(testdata::fresh).collect();
        fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        if let Some(name) = &self.ext2 {
            let work = path.with_extension("tree");
            if name == linux::TREE || name == linux::BENCH_TREE || name == linux::WEB_TREE {
                if name == linux::TREE {
                    linux::test_tree(layout, &work)?;
                } else if name == linux::WEB_TREE {
                    linux::web_tree(layout, &work)?;
                } else {
                    linux::bench_tree(layout, &work)?;
                }
                ext2::build_folder(&work, path, self.fs_bytes(), self.block_size())?;
            } else {
                let tree = trees::tree(name).with_context(|| format!("no tree {name}"))?;
                ext2::build(tree, path, self.fs_bytes(), self.block_size(), &work)?;
            }
            for d in damage {
                ext2::damage(path, *d)?;
            }
        }
        Ok(())
    }

    /// Checks the image the guest left: `Err(reason)` at the first wrong
    /// byte outside a file system; then `check` on the file system.
    pub fn verify(&self, path: &Path, check: Option<&FsCheck>) -> Result<Result<(), String>> {
        if self.system.is_some() {
            return Ok(Ok(()));
        }
        let got = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if got.len() as u64 != self.bytes {
            return Ok(Err(format!(
                "disk image is {} bytes, expected {}",
                got.len(),
                self.bytes
            )));
        }
        let from = self.checked_from();
        for (offset, &b) in (0u64..).zip(&got).skip(usize::try_from(from)?) {
            let (want, what) = if self.written(offset) {
                (testdata::written(offset), "written by the guest")
            } else if from > 0 {
                (
                    testdata::fresh(offset),
                    "beyond the file system, as the harness wrote it",
                )
            } else {
                (testdata::fresh(offset), "left as the harness wrote it")
            };
            if b != want {
                return Ok(Err(format!(
                    "disk byte {offset:#x} (sector {}) is {b:#04x}, expected {want:#04x} ({what})",
                    offset / SECTOR
                )));
            }
        }
        let Some(check) = check else {
            return Ok(Ok(()));
        };
        if check.fsck {
            if let Err(why) = ext2::fsck(path)? {
                return Ok(Err(why));
            }
        }
        for (i, file) in check.files.iter().enumerate() {
            if let Err(why) = file.verify(path, &path.with_extension(format!("file{i}")))? {
                return Ok(Err(why));
            }
        }
        if let Some(name) = &check.tree {
            let tree = trees::tree(name).with_context(|| format!("no tree {name}"))?;
            // A file system debugfs cannot walk fails the test, not the run.
            return Ok(ext2::compare(path, tree, &path.with_extension("found"))
                .unwrap_or_else(|err| Err(format!("reading the file system back: {err:#}"))));
        }
        Ok(Ok(()))
    }
}

/// Reads `damage = [...]`: the kinds, each once.
pub fn damages(test: &str, names: &[String]) -> Result<Vec<Damage>> {
    let mut out = Vec::new();
    for name in names {
        let Some(d) = Damage::from_name(name) else {
            let all: Vec<&str> = Damage::ALL.iter().map(|d| d.name()).collect();
            bail!(
                "test {test}: damage {name:?} is unknown; the kinds are {}",
                all.join(", ")
            );
        };
        if out.contains(&d) {
            bail!("test {test}: damage {name:?} is listed twice");
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_finds_a_wrong_byte_on_either_side_of_the_written_range() -> Result<()> {
        let spec = DiskSpec {
            bytes: 8 * SECTOR,
            written_sector: 2,
            written_sectors: 2,
            ..DiskSpec::default()
        };
        spec.check_spec("t")?;
        let dir = std::env::temp_dir().join(format!("kaal-disk-{}", std::process::id()));
        let path = dir.join("d.img");
        spec.create(&Layout::from_build()?, &path, &[])?;
        assert!(
            spec.verify(&path, None)?.unwrap_err().contains("sector 2"),
            "unwritten"
        );
        let mut img = fs::read(&path)?;
        for o in 2 * SECTOR..4 * SECTOR {
            img[o as usize] = testdata::written(o);
        }
        fs::write(&path, &img)?;
        assert_eq!(spec.verify(&path, None)?, Ok(()));
        img[5 * SECTOR as usize] ^= 1;
        fs::write(&path, &img)?;
        assert!(spec.verify(&path, None)?.unwrap_err().contains("sector 5"));
        fs::remove_dir_all(&dir)?;
        let beyond = DiskSpec {
            written_sector: 7,
            ..spec
        };
        assert!(beyond.check_spec("t").is_err());
        Ok(())
    }

    #[test]
    fn a_file_check_is_its_fill_but_for_its_strings() -> Result<()> {
        let check: FsCheck = toml::from_str(
            "files = [{ path = \"/f\", bytes = 6, fill = \".\", put = [{ at = 1, text = \"ab\" }, { at = 5, text = \"xyz\" }] }]",
        )?;
        let file = check.files.first().context("a file")?;
        assert_eq!(file.expected(), b".ab..x");
        Ok(())
    }

    fn ext2_spec(keys: &str) -> Result<DiskSpec> {
        let spec: DiskSpec = toml::from_str(keys)?;
        spec.check_spec("t")?;
        Ok(spec)
    }

    #[test]
    fn ext2_keys_are_checked() -> Result<()> {
        let spec =
            ext2_spec("bytes = 4194304\next2 = \"host\"\nblock_size = 4096\nfs_bytes = 3145728\n")?;
        assert_eq!((spec.block_size(), spec.fs_bytes()), (4096, 3 << 20));
        let whole = ext2_spec("bytes = 1048576\next2 = \"empty\"\n")?;
        assert_eq!((whole.block_size(), whole.fs_bytes()), (1024, 1 << 20));
        for (keys, why) in [
            ("bytes = 1048576\next2 = \"nope\"\n", "is no tree"),
            (
                "bytes = 1048576\next2 = \"empty\"\nblock_size = 512\n",
                "block_size",
            ),
            (
                "bytes = 1048576\next2 = \"empty\"\nfs_bytes = 2097152\n",
                "fs_bytes",
            ),
            (
                "bytes = 1048576\next2 = \"empty\"\nfs_bytes = 1000\n",
                "fs_bytes",
            ),
            (
                "bytes = 1048576\nfs_bytes = 524288\n",
                "are for an ext2 disk",
            ),
            (
                "bytes = 1048576\next2 = \"empty\"\nwritten_sectors = 1\n",
                "no written sectors",
            ),
            ("system = \"default\"\nbytes = 512\n", "takes no other key"),
        ] {
            let err = ext2_spec(keys).err().map(|e| format!("{e:#}"));
            assert!(
                err.as_deref().is_some_and(|e| e.contains(why)),
                "{keys}: {err:?}"
            );
        }
        assert_eq!(damages("t", &["huge_size".into()])?, [Damage::HugeSize]);
        assert!(damages("t", &["huge_size".into(), "huge_size".into()]).is_err());
        assert!(damages("t", &["crash".into()]).is_err());
        Ok(())
    }

    /// `ext2 = "linux"`: the userland in a file system smaller than the
    /// disk, which the harness checks like any other.
    #[test]
    fn a_linux_disk_holds_the_userland() -> Result<()> {
        let spec = ext2_spec(
            "bytes = 12582912\next2 = \"linux\"\nblock_size = 4096\nfs_bytes = 8388608\n",
        )?;
        let dir = std::env::temp_dir().join(format!("kaal-disk-linux-{}", std::process::id()));
        let path = dir.join("d.img");
        spec.create(&Layout::from_build()?, &path, &[])?;
        let check = FsCheck {
            fsck: true,
            tree: None,
            files: Vec::new(),
        };
        assert_eq!(spec.verify(&path, Some(&check))?, Ok(()));
        let stat = ext2::debugfs(&path, "stat /bin/hello_musl")?;
        assert!(stat.contains("Mode:  0755"), "{stat}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// `ext2 = "linux_bench"`: the userland and the bench tree's file, its
    /// bytes those the device benchmark reads.
    #[test]
    fn a_linux_bench_disk_holds_the_bench_file() -> Result<()> {
        let spec = ext2_spec("bytes = 25165824\next2 = \"linux_bench\"\nblock_size = 4096\n")?;
        let dir = std::env::temp_dir().join(format!("kaal-disk-lbench-{}", std::process::id()));
        let path = dir.join("d.img");
        spec.create(&Layout::from_build()?, &path, &[])?;
        let check = FsCheck {
            fsck: true,
            tree: None,
            files: Vec::new(),
        };
        assert_eq!(spec.verify(&path, Some(&check))?, Ok(()));
        let (file, len) = trees::BENCH_FILE;
        let stat = ext2::debugfs(&path, &format!("stat {file}"))?;
        assert!(stat.contains(&format!("Size: {len}")), "{stat}");
        let out = dir.join("big.bin");
        ext2::debugfs(&path, &format!("dump {file} {}", out.display()))?;
        let want = trees::find(trees::BENCH_TREE, file).and_then(|e| ext2::file_bytes(&e.kind));
        assert!(want.is_some_and(|w| fs::read(&out).is_ok_and(|got| got == w)));
        assert!(ext2::debugfs(&path, "stat /bin/bench")?.contains("Mode:  0755"));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// The harness finds a write outside the file system, a file system
    /// e2fsck refuses and one that lacks the tree.
    #[test]
    fn an_ext2_disk_is_checked_inside_and_outside_its_file_system() -> Result<()> {
        let spec = ext2_spec("bytes = 2097152\next2 = \"reboot\"\nfs_bytes = 1048576\n")?;
        let dir = std::env::temp_dir().join(format!("kaal-disk-ext2-{}", std::process::id()));
        let path = dir.join("d.img");
        spec.create(&Layout::from_build()?, &path, &[])?;
        let reboot = FsCheck {
            fsck: true,
            tree: Some("reboot".into()),
            files: Vec::new(),
        };
        assert_eq!(spec.verify(&path, Some(&reboot))?, Ok(()));
        let written = FsCheck {
            fsck: true,
            tree: Some("written".into()),
            files: Vec::new(),
        };
        let err = spec.verify(&path, Some(&written))?.unwrap_err();
        assert!(err.contains("/out is missing"), "{err}");
        let mut img = fs::read(&path)?;
        // Beyond the file system: one byte.
        img[(1 << 20) + 4096] ^= 1;
        fs::write(&path, &img)?;
        let err = spec.verify(&path, None)?.unwrap_err();
        assert!(
            err.contains("sector 2056") && err.contains("beyond the file system"),
            "{err}"
        );
        img[(1 << 20) + 4096] ^= 1;
        fs::write(&path, &img)?;
        // Inside: a link count that e2fsck finds wrong.
        ext2::debugfs_write(&path, "set_inode_field /persist/one.txt links_count 5")?;
        assert_eq!(spec.verify(&path, None)?, Ok(()));
        let err = spec.verify(&path, Some(&reboot))?.unwrap_err();
        assert!(err.starts_with("e2fsck -fn exited with"), "{err}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
