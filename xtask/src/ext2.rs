//! ext2 disk images of the file-system tests, made, checked and damaged
//! with the real e2fsprogs (mkfs.ext2, e2fsck, debugfs): the harness's
//! peers for what the guest's file system reads and writes.
//!
//! A tree of `kaal_test_patterns::fs` is written to a folder, and
//! `mkfs.ext2 -d` builds the file system from it. After a run, `e2fsck -fn`
//! must find the file system clean and debugfs must show exactly the
//! expected tree (modes, inodes shared by hard links, contents, symlink
//! targets; nothing else but lost+found).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use kaal_test_patterns::fs::{self as tree, Damage, Entry, Kind, HUGE_SIZE};

/// The features of every image: plain ext2 revision 1 with the three the
/// ext2 service supports, nothing else (`none` first, so that no
/// mke2fs.conf adds dir_index, ext_attr or resize_inode).
const FEATURES: &str = "none,sparse_super,large_file,filetype";

/// A fixed UUID, so that two builds of one tree differ only in timestamps.
const UUID: &str = "6b61616c-6578-7432-0000-000000000001";

/// An e2fsprogs program: on PATH or in an sbin folder (often not on PATH).
pub fn tool(name: &str) -> PathBuf {
    crate::env::find_program(name)
        .or_else(|| {
            ["/usr/sbin", "/sbin"]
                .iter()
                .map(|dir| Path::new(dir).join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("running {}", crate::step::describe(cmd)))
}

/// Output and error text of a finished program, for messages.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `entries` under `root` (emptied first): folders, files of their
/// pattern, symlinks, hard links; the modes last, so that a read-only
/// folder still took its children.
pub fn materialize(entries: &[Entry], root: &Path) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    let host = |p: &str| root.join(p.trim_start_matches('/'));
    for e in entries {
        let path = host(e.path);
        match e.kind {
            Kind::Dir => fs::create_dir(&path),
            Kind::File { .. } | Kind::Text { .. } => {
                fs::write(&path, file_bytes(&e.kind).unwrap_or_default())
            }
            Kind::Symlink { target } => symlink(target, &path),
            Kind::HardLink { to } => fs::hard_link(host(to), &path),
        }
        .with_context(|| format!("creating {}", path.display()))?;
    }
    for e in entries.iter().rev() {
        if !matches!(e.kind, Kind::Symlink { .. } | Kind::HardLink { .. }) {
            fs::set_permissions(host(e.path), fs::Permissions::from_mode(e.mode.into()))?;
        }
    }
    Ok(())
}

/// The content of a file entry (none for other kinds).
pub fn file_bytes(kind: &Kind) -> Option<Vec<u8>> {
    match *kind {
        Kind::File { len, seed } => Some((0..len).map(|i| tree::content(seed, i)).collect()),
        Kind::Text { text } => Some(text.as_bytes().to_vec()),
        Kind::Dir | Kind::Symlink { .. } | Kind::HardLink { .. } => None,
    }
}

/// Builds an ext2 file system of `fs_bytes` (whole blocks) holding
/// `entries` at the start of `image`, which exists; the rest of the image
/// is left as it is. `work` is a scratch folder for the tree.
pub fn build(
    entries: &[Entry],
    image: &Path,
    fs_bytes: u64,
    block_size: u32,
    work: &Path,
) -> Result<()> {
    materialize(entries, work)?;
    mkfs(work, image, fs_bytes, block_size)?;
    let paths = entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::HardLink { .. }))
        .map(|e| e.path.to_owned());
    owned_by_root(image, paths, &work.with_extension("debugfs"))
}

/// Builds an ext2 file system of `bytes` in a new `image` from the files of
/// `folder`, every one owned by root.
pub fn build_from_folder(folder: &Path, image: &Path, bytes: u64, block_size: u32) -> Result<()> {
    fs::write(image, vec![0u8; usize::try_from(bytes)?])
        .with_context(|| format!("writing {}", image.display()))?;
    build_folder(folder, image, bytes, block_size)
}

/// Builds an ext2 file system of `fs_bytes` from the files of `folder`
/// (modes and symlinks as they are, every one owned by root) at the start
/// of `image`, which exists; the rest of the image is left as it is.
pub fn build_folder(folder: &Path, image: &Path, fs_bytes: u64, block_size: u32) -> Result<()> {
    mkfs(folder, image, fs_bytes, block_size)?;
    let mut paths = Vec::new();
    let mut dirs = vec![folder.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.symlink_metadata()?.is_dir() {
                dirs.push(path.clone());
            }
            let inside = path.strip_prefix(folder)?;
            paths.push(format!("/{}", inside.display()));
        }
    }
    owned_by_root(image, paths.into_iter(), &image.with_extension("debugfs"))
}

/// `-d` copies each file's owner: makes the root folder and `paths` root's,
/// whoever built the image. `cmds` is a scratch file for debugfs's requests.
fn owned_by_root(image: &Path, paths: impl Iterator<Item = String>, cmds: &Path) -> Result<()> {
    let mut script = String::new();
    for path in std::iter::once("/".to_owned()).chain(paths) {
        script.push_str(&format!(
            "set_inode_field \"{path}\" uid 0\nset_inode_field \"{path}\" gid 0\n"
        ));
    }
    fs::write(cmds, script)?;
    let out = run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-f")
        .arg(cmds)
        .arg(image))?;
    if !out.status.success() || String::from_utf8_lossy(&out.stderr).contains("set_inode_field:") {
        bail!("debugfs could not set the owners: {}", text(&out));
    }
    Ok(())
}

/// Runs mkfs.ext2 over the first `fs_bytes` of `image` with the files of
/// `folder`.
pub fn mkfs(folder: &Path, image: &Path, fs_bytes: u64, block_size: u32) -> Result<()> {
    let blocks = fs_bytes / u64::from(block_size);
    let out = run(Command::new(tool("mkfs.ext2"))
        // Only the options given here count, not the host's mke2fs.conf.
        .env("MKE2FS_CONFIG", "/dev/null")
        .args(["-q", "-F", "-r", "1", "-I", "256", "-L", "kaal"])
        .args(["-b", &block_size.to_string(), "-O", FEATURES, "-U", UUID])
        // nodiscard: discarding would punch holes into the image file.
        .args(["-E", "root_owner=0:0,nodiscard"])
        .arg("-d")
        .arg(folder)
        .arg(image)
        .arg(blocks.to_string()))?;
    if !out.status.success() {
        bail!(
            "mkfs.ext2 of {} ({fs_bytes} bytes, {block_size}-byte blocks) failed: {}",
            folder.display(),
            text(&out)
        );
    }
    Ok(())
}

/// `e2fsck -fn`: `Err(its output)` unless the file system is clean.
pub fn fsck(image: &Path) -> Result<Result<(), String>> {
    let out = run(Command::new(tool("e2fsck")).arg("-fn").arg(image))?;
    Ok(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn exited with {}:\n{}",
            out.status,
            text(&out).trim_end()
        ))
    })
}

/// One `debugfs -R` request on `image` (read-only); its standard output.
pub fn debugfs(image: &Path, request: &str) -> Result<String> {
    let out = run(Command::new(tool("debugfs"))
        .arg("-R")
        .arg(request)
        .arg(image))?;
    if !out.status.success() {
        bail!("debugfs -R {request:?} failed: {}", text(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A debugfs request that changes `image`; fails when debugfs complains.
pub fn debugfs_write(image: &Path, request: &str) -> Result<()> {
    let out = run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-R")
        .arg(request)
        .arg(image))?;
    let err = String::from_utf8_lossy(&out.stderr);
    // debugfs exits 0 after a failed request; its complaint follows the banner.
    if !out.status.success() || err.lines().skip(1).any(|l| !l.trim().is_empty()) {
        bail!("debugfs -w -R {request:?} failed: {}", text(&out));
    }
    Ok(())
}

/// One line of `debugfs ls -p`: an entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub inode: u32,
    /// Type and permission bits, as in `st_mode`.
    pub mode: u32,
    pub name: String,
}

/// Parses `ls -p` output: `/INODE/MODE/UID/GID/NAME/SIZE/` per entry.
pub fn parse_ls(out: &str) -> Result<Vec<Listed>> {
    let mut list = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.trim_start_matches('/').split('/').collect();
        let [inode, mode, _uid, _gid, name, ..] = fields.as_slice() else {
            bail!("debugfs ls -p printed {line:?}");
        };
        list.push(Listed {
            inode: inode
                .parse()
                .with_context(|| format!("inode in {line:?}"))?,
            mode: u32::from_str_radix(mode, 8).with_context(|| format!("mode in {line:?}"))?,
            name: (*name).to_owned(),
        });
    }
    Ok(list)
}

/// The folder's entries but `.` and `..`.
pub fn list(image: &Path, dir: &str) -> Result<Vec<Listed>> {
    Ok(parse_ls(&debugfs(image, &format!("ls -p \"{dir}\""))?)?
        .into_iter()
        .filter(|l| l.name != "." && l.name != "..")
        .collect())
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Every path of the file system (but lost+found's) with its inode and mode.
fn walk(image: &Path) -> Result<BTreeMap<String, (u32, u32)>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let shown = if dir.is_empty() { "/" } else { dir.as_str() };
        for l in list(image, shown)? {
            let path = format!("{dir}/{}", l.name);
            if path == "/lost+found" {
                continue;
            }
            if l.mode & S_IFMT == S_IFDIR {
                dirs.push(path.clone());
            }
            found.insert(path, (l.inode, l.mode));
        }
    }
    Ok(found)
}

/// Compares the file system in `image` with `entries`: `Err(every
/// difference)`. `work` is a scratch folder for debugfs's copy of the files.
pub fn compare(image: &Path, entries: &[Entry], work: &Path) -> Result<Result<(), String>> {
    let found = walk(image)?;
    if work.exists() {
        fs::remove_dir_all(work)?;
    }
    fs::create_dir_all(work)?;
    debugfs(image, &format!("rdump / \"{}\"", work.display()))?;
    let mut wrong = Vec::new();
    for e in entries {
        let Some(&(inode, mode)) = found.get(e.path) else {
            wrong.push(format!("{} is missing", e.path));
            continue;
        };
        let (want_type, what) = match e.kind {
            Kind::Dir => (S_IFDIR, "a directory"),
            Kind::File { .. } | Kind::Text { .. } | Kind::HardLink { .. } => {
                (S_IFREG, "a regular file")
            }
            Kind::Symlink { .. } => (S_IFLNK, "a symlink"),
        };
        if mode & S_IFMT != want_type {
            wrong.push(format!("{} is not {what} (mode {mode:o})", e.path));
            continue;
        }
        if mode & 0o7777 != u32::from(e.mode) {
            wrong.push(format!(
                "{} has mode {:o}, expected {:o}",
                e.path,
                mode & 0o7777,
                e.mode
            ));
        }
        let copy = work.join(e.path.trim_start_matches('/'));
        let resolved = tree::resolve(entries, e).kind;
        match resolved {
            Kind::File { .. } | Kind::Text { .. } => {
                if let Kind::HardLink { to } = e.kind {
                    if found.get(to).map(|f| f.0) != Some(inode) {
                        wrong.push(format!("{} is not a hard link of {to}", e.path));
                    }
                }
                let got = match fs::read(&copy) {
                    Ok(got) => got,
                    Err(err) => {
                        wrong.push(format!("{} could not be read back: {err}", e.path));
                        continue;
                    }
                };
                let want = file_bytes(&resolved).unwrap_or_default();
                if got.len() != want.len() {
                    wrong.push(format!(
                        "{} is {} bytes, expected {}",
                        e.path,
                        got.len(),
                        want.len()
                    ));
                } else if let Some((at, (b, w))) =
                    got.iter().zip(&want).enumerate().find(|(_, (b, w))| b != w)
                {
                    wrong.push(format!(
                        "{} differs at byte {at}: {b:#04x}, expected {w:#04x}",
                        e.path
                    ));
                }
            }
            Kind::Symlink { target } => {
                let got = match fs::read_link(&copy) {
                    Ok(got) => got,
                    Err(err) => {
                        wrong.push(format!("{} could not be read back: {err}", e.path));
                        continue;
                    }
                };
                if got != Path::new(target) {
                    wrong.push(format!(
                        "{} points at {}, expected {target}",
                        e.path,
                        got.display()
                    ));
                }
            }
            Kind::Dir | Kind::HardLink { .. } => {}
        }
    }
    for path in found.keys() {
        if !entries.iter().any(|e| e.path == path) {
            wrong.push(format!("{path} should not exist"));
        }
    }
    Ok(if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("the file system differs: {}", wrong.join("; ")))
    })
}

/// `(inodes_count, blocks_count, block_size)` from the superblock.
pub fn geometry(image: &Path) -> Result<(u32, u32, u32)> {
    let mut sb = [0u8; 1024];
    let mut f = fs::File::open(image)?;
    f.seek(SeekFrom::Start(1024))?;
    f.read_exact(&mut sb)?;
    let le32 = |o: usize| {
        sb.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    Ok((le32(0), le32(4), 1024 << le32(24)))
}

/// A directory entry as found in a folder's first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEntry {
    /// Byte offset of the entry in the image.
    pub at: u64,
    /// Offset inside its block.
    pub in_block: u32,
    pub inode: u32,
    pub rec_len: u16,
}

/// The entry `name` in the first block of folder `dir`.
pub fn raw_entry(image: &Path, dir: &str, name: &str) -> Result<RawEntry> {
    let (_, _, bs) = geometry(image)?;
    let blocks = debugfs(image, &format!("blocks \"{dir}\""))?;
    let first: u64 = blocks
        .split_whitespace()
        .next()
        .and_then(|b| b.parse().ok())
        .with_context(|| format!("{dir} has no blocks: {blocks:?}"))?;
    let mut block = vec![0u8; bs as usize];
    let mut f = fs::File::open(image)?;
    f.seek(SeekFrom::Start(first * u64::from(bs)))?;
    f.read_exact(&mut block)?;
    let mut off = 0usize;
    while off + 8 <= block.len() {
        let field = |o: usize, n: usize| block.get(off + o..off + o + n).unwrap_or_default();
        let inode = u32::from_le_bytes(field(0, 4).try_into()?);
        let rec_len = u16::from_le_bytes(field(4, 2).try_into()?);
        let name_len = usize::from(field(6, 1).first().copied().unwrap_or(0));
        if field(8, name_len) == name.as_bytes() && inode != 0 {
            return Ok(RawEntry {
                at: first * u64::from(bs) + off as u64,
                in_block: off as u32,
                inode,
                rec_len,
            });
        }
        if rec_len < 8 {
            break;
        }
        off += usize::from(rec_len);
    }
    bail!("no entry {name} in the first block of {dir}")
}

fn patch(image: &Path, at: u64, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new().write(true).open(image)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(bytes)?;
    Ok(())
}

/// The inode of `path` (as debugfs finds it).
pub fn inode_of(image: &Path, path: &str) -> Result<u32> {
    let (dir, name) = (tree::parent(path), tree::name(path));
    list(image, dir)?
        .into_iter()
        .find(|l| l.name == name)
        .map(|l| l.inode)
        .with_context(|| format!("{path} not found"))
}

/// Damages the file system in `image` as `damage` says, on its victim.
pub fn damage(image: &Path, damage: Damage) -> Result<()> {
    let (inodes, blocks, bs) = geometry(image)?;
    let victim = damage.victim();
    match damage {
        Damage::InodeOutOfRange => {
            let e = raw_entry(image, tree::parent(victim), tree::name(victim))?;
            patch(image, e.at, &(inodes + 1).to_le_bytes())
        }
        // The first block past the end: on the disk, when the file system
        // is smaller, but not the file system's.
        Damage::BlockPastEnd => debugfs_write(
            image,
            &format!("set_inode_field \"{victim}\" block[0] {blocks}"),
        ),
        Damage::RecLenOverrun => {
            // The folder's last entry reaches its block's end; make it longer.
            let e = raw_entry(image, victim, "victim")?;
            let rec_len = e.rec_len + 1024;
            if e.in_block + u32::from(e.rec_len) != bs {
                bail!("{victim}/victim is not the last entry of its block");
            }
            patch(image, e.at + 4, &rec_len.to_le_bytes())
        }
        Damage::DirectoryLoop => {
            let ancestor = inode_of(image, "/loop")?;
            let e = raw_entry(image, tree::parent(victim), tree::name(victim))?;
            patch(image, e.at, &ancestor.to_le_bytes())
        }
        Damage::HugeSize => debugfs_write(
            image,
            &format!("set_inode_field \"{victim}\" size {HUGE_SIZE}"),
        ),
    }
    .with_context(|| format!("damaging {} ({victim})", damage.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaal_test_patterns::fs::{
        CORRUPT_TREE, HOST_TREE, REBOOT_TREE, WEB_INDEX, WEB_TREE, WRITTEN_TREE,
    };

    /// A scratch folder of this test process.
    fn scratch(name: &str) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("kaal-ext2-{}-{name}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn image_of(entries: &[Entry], dir: &Path, bytes: u64, bs: u32) -> Result<PathBuf> {
        let img = dir.join("disk.img");
        fs::write(&img, vec![0xa5u8; bytes as usize])?;
        build(entries, &img, bytes, bs, &dir.join("tree"))?;
        Ok(img)
    }

    #[test]
    fn every_tree_builds_a_clean_image_that_reads_back() -> Result<()> {
        let dir = scratch("trees")?;
        for (entries, bs) in [
            (HOST_TREE, 1024),
            (HOST_TREE, 4096),
            (WRITTEN_TREE, 4096),
            (REBOOT_TREE, 1024),
            (CORRUPT_TREE, 1024),
            (WEB_TREE, 4096),
            (&[][..], 4096),
        ] {
            let img = image_of(entries, &dir, 8 << 20, bs)?;
            assert_eq!(fsck(&img)?, Ok(()));
            let features = debugfs(&img, "features")?;
            assert!(
                features.contains("filetype sparse_super large_file")
                    && !features.contains("dir_index")
                    && !features.contains("resize_inode")
                    && !features.contains("ext_attr"),
                "{features}"
            );
            assert_eq!(compare(&img, entries, &dir.join("out"))?, Ok(()));
            if entries == WEB_TREE {
                assert_eq!(debugfs(&img, "cat /www/index.html")?, WEB_INDEX);
            }
            if entries == HOST_TREE {
                let cat = Command::new(tool("debugfs"))
                    .args(["-R", "cat /docs/c.txt"])
                    .arg(&img)
                    .output()?;
                let want: Vec<u8> = (0..1025).map(|i| tree::content(0x1003, i)).collect();
                assert_eq!(cat.stdout, want);
                let stat = debugfs(&img, "stat /a/b/c/deep.txt")?;
                assert!(
                    stat.contains("Mode:  0400") && stat.contains("User:     0"),
                    "{stat}"
                );
                assert_eq!(
                    inode_of(&img, "/links/hard")?,
                    inode_of(&img, "/docs/a.txt")?
                );
            }
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_comparison_finds_each_difference() -> Result<()> {
        let dir = scratch("compare")?;
        let img = image_of(REBOOT_TREE, &dir, 2 << 20, 1024)?;
        let out = dir.join("out");
        assert_eq!(compare(&img, REBOOT_TREE, &out)?, Ok(()));
        // Another tree: missing entries and extra ones.
        let err = compare(&img, WRITTEN_TREE, &out)?.unwrap_err();
        assert!(err.contains("/out is missing") && err.contains("/persist should not exist"));
        // One byte of a file.
        let blk: u64 = debugfs(&img, "bmap /persist/one.txt 0")?.trim().parse()?;
        let at = blk * 1024 + 5;
        let old = fs::read(&img)?[at as usize];
        patch(&img, at, &[old ^ 1])?;
        let err = compare(&img, REBOOT_TREE, &out)?.unwrap_err();
        assert!(err.contains("/persist/one.txt differs at byte 5"), "{err}");
        patch(&img, at, &[old])?;
        // A mode, a removed file, an extra file.
        debugfs_write(&img, "set_inode_field /persist/last.txt mode 0100640")?;
        debugfs_write(&img, "rm /persist/big.bin")?;
        debugfs_write(&img, "mkdir /extra")?;
        let err = compare(&img, REBOOT_TREE, &out)?.unwrap_err();
        for part in [
            "/persist/last.txt has mode 640, expected 600",
            "/persist/big.bin is missing",
            "/extra should not exist",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_broken_hard_link_or_symlink_is_found() -> Result<()> {
        let dir = scratch("links")?;
        let img = image_of(WRITTEN_TREE, &dir, 4 << 20, 4096)?;
        let out = dir.join("out");
        // /out/hard as a copy of its own, /out/link to elsewhere.
        debugfs_write(&img, "unlink /out/hard")?;
        debugfs_write(&img, "set_inode_field /out/small.txt links_count 1")?;
        debugfs_write(&img, "write /dev/null /out/hard")?;
        let err = compare(&img, WRITTEN_TREE, &out)?.unwrap_err();
        assert!(
            err.contains("/out/hard is not a hard link of /out/small.txt"),
            "{err}"
        );
        debugfs_write(&img, "rm /out/link")?;
        debugfs_write(&img, "symlink /out/link other.txt")?;
        let err = compare(&img, WRITTEN_TREE, &out)?.unwrap_err();
        assert!(err.contains("/out/link points at other.txt"), "{err}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn each_damage_is_in_the_image() -> Result<()> {
        let dir = scratch("damage")?;
        for d in Damage::ALL {
            let img = image_of(CORRUPT_TREE, &dir, 4 << 20, 1024)?;
            assert_eq!(fsck(&img)?, Ok(()), "before {}", d.name());
            damage(&img, d)?;
            let (inodes, blocks, _) = geometry(&img)?;
            let victim = d.victim();
            match d {
                Damage::InodeOutOfRange => {
                    let e = raw_entry(&img, tree::parent(victim), tree::name(victim))?;
                    assert_eq!(e.inode, inodes + 1);
                    let ls = Command::new(tool("debugfs"))
                        .args(["-R", "ls -p /bad_inode"])
                        .arg(&img)
                        .output()?;
                    let said = text(&ls);
                    let want = format!("Illegal inode number while reading inode {}", inodes + 1);
                    assert!(said.contains(&want), "{said}");
                }
                Damage::BlockPastEnd => {
                    let got: u32 = debugfs(&img, &format!("bmap {victim} 0"))?.trim().parse()?;
                    assert_eq!(got, blocks);
                }
                Damage::RecLenOverrun => {
                    let e = raw_entry(&img, victim, "victim")?;
                    assert!(e.in_block + u32::from(e.rec_len) > 1024, "{e:?}");
                }
                Damage::DirectoryLoop => {
                    assert_eq!(inode_of(&img, victim)?, inode_of(&img, "/loop")?);
                }
                Damage::HugeSize => {
                    let stat = debugfs(&img, &format!("stat {victim}"))?;
                    assert!(stat.contains(&format!("Size: {HUGE_SIZE}")), "{stat}");
                }
            }
            let why = fsck(&img)?;
            assert!(why.is_err(), "e2fsck passes after {}", d.name());
            // The intact files still read right.
            for path in tree::CORRUPT_INTACT {
                let Some(Kind::File { len, seed }) = tree::find(CORRUPT_TREE, path).map(|e| e.kind)
                else {
                    bail!("{path} is no file");
                };
                let cat = Command::new(tool("debugfs"))
                    .args(["-R", &format!("cat {path}")])
                    .arg(&img)
                    .output()?;
                assert_eq!(cat.stdout.len() as u64, len, "{path} after {}", d.name());
                assert!(cat
                    .stdout
                    .iter()
                    .zip(0..)
                    .all(|(&b, i)| b == tree::content(seed, i)));
            }
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_disk_beyond_the_file_system_is_left_alone() -> Result<()> {
        let dir = scratch("tail")?;
        let img = dir.join("disk.img");
        fs::write(&img, vec![0xa5u8; 4 << 20])?;
        build(REBOOT_TREE, &img, 1 << 20, 4096, &dir.join("tree"))?;
        let bytes = fs::read(&img)?;
        assert!(bytes[1 << 20..].iter().all(|&b| b == 0xa5));
        assert_eq!(geometry(&img)?.1, 256);
        assert_eq!(fsck(&img)?, Ok(()));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn owners_become_root() -> Result<()> {
        let dir = scratch("owners")?;
        let img = image_of(REBOOT_TREE, &dir, 2 << 20, 1024)?;
        // As mkfs.ext2 -d leaves the files of a builder who is not root.
        for path in ["/", "/persist", "/persist/one.txt"] {
            debugfs_write(&img, &format!("set_inode_field {path} uid 1234"))?;
            debugfs_write(&img, &format!("set_inode_field {path} gid 1234"))?;
        }
        let paths = ["/persist", "/persist/one.txt"].map(str::to_owned);
        owned_by_root(&img, paths.into_iter(), &dir.join("cmds"))?;
        for path in ["/", "/persist", "/persist/one.txt"] {
            let stat = debugfs(&img, &format!("stat {path}"))?;
            assert!(
                stat.contains("User:     0   Group:     0"),
                "{path}: {stat}"
            );
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn ls_lines_parse() -> Result<()> {
        let got = parse_ls("\n/12/040755/0/0/d//\n /13/100644/0/0/hl/3/\n")?;
        assert_eq!(
            got[1],
            Listed {
                inode: 13,
                mode: 0o100_644,
                name: "hl".into()
            }
        );
        assert_eq!(got.len(), 2);
        assert!(parse_ls("/x/").is_err());
        Ok(())
    }
}
