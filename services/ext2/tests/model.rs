//! Random sequences of operations against an in-memory model: every result
//! (success or refusal) matches the model's, the tree read back equals the
//! model (files' permission bits too), `e2fsck -fn` finds nothing to fix, and ext4-view, an independent
//! reader, reads the model's tree.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::sync::OnceLock;

use ext2::{Ext2, FileType, MemDevice, ROOT_INODE};
use proptest::prelude::*;
use proptest::sample::Index;

const NAMES: &[&str] = &["f", "g", "p", "q"];
const TARGETS: &[&str] = &["f", "../p/f", "/nowhere"];

#[derive(Debug, Clone)]
enum Op {
    Create(Index, usize),
    Write(Index, usize, u64, usize, u8),
    Truncate(Index, usize, u64),
    Mkdir(Index, usize),
    Unlink(Index, usize),
    Rmdir(Index, usize),
    Rename(Index, usize, Index, usize),
    Link(Index, usize, Index, usize),
    Symlink(Index, usize, usize),
    /// Permission bits and a modification time for a file (up to 2038:
    /// readers take the field as signed, and ext4-view refuses the rest).
    SetAttrs(Index, usize, u16, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        (any::<Index>(), name.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        (
            any::<Index>(),
            name.clone(),
            0..300_000u64,
            0..6000usize,
            any::<u8>()
        )
            .prop_map(|(d, n, o, l, s)| Op::Write(d, n, o, l, s)),
        (any::<Index>(), name.clone(), 0..300_000u64).prop_map(|(d, n, s)| Op::Truncate(d, n, s)),
        (any::<Index>(), name.clone()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        (any::<Index>(), name.clone()).prop_map(|(d, n)| Op::Unlink(d, n)),
        (any::<Index>(), name.clone()).prop_map(|(d, n)| Op::Rmdir(d, n)),
        (any::<Index>(), name.clone(), any::<Index>(), name.clone())
            .prop_map(|(a, n, b, m)| Op::Rename(a, n, b, m)),
        (any::<Index>(), name.clone(), any::<Index>(), name.clone())
            .prop_map(|(a, n, b, m)| Op::Link(a, n, b, m)),
        (any::<Index>(), name.clone(), 0..TARGETS.len()).prop_map(|(d, n, t)| Op::Symlink(d, n, t)),
        (any::<Index>(), name, 0..0o10000u16, 0..=i32::MAX as u32)
            .prop_map(|(d, n, m, t)| Op::SetAttrs(d, n, m, t)),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    File(u32),
    Dir,
    /// An id (two symlinks are never the same node) and the target.
    Symlink(u32, String),
}

/// Paths (`""` the root, `"p/f"`) to nodes; files' contents by id.
#[derive(Default)]
struct Model {
    names: BTreeMap<String, Node>,
    files: BTreeMap<u32, Vec<u8>>,
    /// Files' permission bits by id (0o644 when created).
    modes: BTreeMap<u32, u16>,
    next: u32,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl Model {
    fn dirs(&self) -> Vec<String> {
        let mut dirs = vec![String::new()];
        dirs.extend(
            self.names
                .iter()
                .filter(|(_, n)| **n == Node::Dir)
                .map(|(p, _)| p.clone()),
        );
        dirs
    }

    fn children(&self, dir: &str) -> Vec<String> {
        self.names
            .keys()
            .filter(|p| parent(p) == dir && !p.is_empty())
            .cloned()
            .collect()
    }

    fn links(&self, id: u32) -> usize {
        self.names
            .values()
            .filter(|n| **n == Node::File(id))
            .count()
    }

    /// Applies `op` to the model and to `fs`; the two must agree.
    fn apply(&mut self, fs: &mut Ext2<MemDevice>, op: &Op) {
        let dirs = self.dirs();
        let dir = |i: &Index| dirs[i.index(dirs.len())].clone();
        let ino = |fs: &mut Ext2<MemDevice>, path: &str| {
            if path.is_empty() {
                ROOT_INODE
            } else {
                fs.resolve_at(ROOT_INODE, path.as_bytes(), false).unwrap()
            }
        };
        match op {
            Op::Create(d, n) => {
                let (d, name) = (dir(d), NAMES[*n]);
                let path = join(&d, name);
                let ino1 = ino(fs, &d);
                let result = fs.create(ino1, name.as_bytes(), 0o644, 0, 0);
                assert_eq!(
                    result.is_ok(),
                    !self.names.contains_key(&path),
                    "{op:?}: {result:?}"
                );
                if result.is_ok() {
                    self.next += 1;
                    self.names.insert(path, Node::File(self.next));
                    self.files.insert(self.next, Vec::new());
                    self.modes.insert(self.next, 0o644);
                }
            }
            Op::Write(d, n, offset, len, seed) => {
                let path = join(&dir(d), NAMES[*n]);
                let Some(Node::File(id)) = self.names.get(&path).cloned() else {
                    return;
                };
                let data: Vec<u8> = (0..*len)
                    .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                    .collect();
                let target = ino(fs, &path);
                assert_eq!(fs.write(target, *offset, &data), Ok(data.len()), "{op:?}");
                let content = self.files.get_mut(&id).unwrap();
                let start = *offset as usize;
                if !data.is_empty() {
                    if content.len() < start + data.len() {
                        content.resize(start + data.len(), 0);
                    }
                    content[start..start + data.len()].copy_from_slice(&data);
                }
            }
            Op::Truncate(d, n, size) => {
                let path = join(&dir(d), NAMES[*n]);
                let Some(Node::File(id)) = self.names.get(&path).cloned() else {
                    return;
                };
                let ino1 = ino(fs, &path);
                fs.truncate(ino1, *size).unwrap();
                self.files.get_mut(&id).unwrap().resize(*size as usize, 0);
            }
            Op::Mkdir(d, n) => {
                let (d, name) = (dir(d), NAMES[*n]);
                let path = join(&d, name);
                let ino1 = ino(fs, &d);
                let result = fs.mkdir(ino1, name.as_bytes(), 0o755, 0, 0);
                assert_eq!(
                    result.is_ok(),
                    !self.names.contains_key(&path),
                    "{op:?}: {result:?}"
                );
                if result.is_ok() {
                    self.names.insert(path, Node::Dir);
                }
            }
            Op::Unlink(d, n) => {
                let (d, name) = (dir(d), NAMES[*n]);
                let path = join(&d, name);
                let ino1 = ino(fs, &d);
                let result = fs.unlink(ino1, name.as_bytes());
                let expect = matches!(
                    self.names.get(&path),
                    Some(Node::File(_) | Node::Symlink(..))
                );
                assert_eq!(result.is_ok(), expect, "{op:?}: {result:?}");
                if expect {
                    self.names.remove(&path);
                }
            }
            Op::Rmdir(d, n) => {
                let (d, name) = (dir(d), NAMES[*n]);
                let path = join(&d, name);
                let ino1 = ino(fs, &d);
                let result = fs.rmdir(ino1, name.as_bytes());
                let expect =
                    self.names.get(&path) == Some(&Node::Dir) && self.children(&path).is_empty();
                assert_eq!(result.is_ok(), expect, "{op:?}: {result:?}");
                if expect {
                    self.names.remove(&path);
                }
            }
            Op::Link(a, n, b, m) => {
                let (from, to_dir) = (join(&dir(a), NAMES[*n]), dir(b));
                let to = join(&to_dir, NAMES[*m]);
                let Some(Node::File(id)) = self.names.get(&from).cloned() else {
                    return;
                };
                let ino1 = ino(fs, &to_dir);
                let ino2 = ino(fs, &from);
                let result = fs.link(ino1, NAMES[*m].as_bytes(), ino2);
                assert_eq!(
                    result.is_ok(),
                    !self.names.contains_key(&to),
                    "{op:?}: {result:?}"
                );
                if result.is_ok() {
                    self.names.insert(to, Node::File(id));
                }
            }
            Op::Symlink(d, n, t) => {
                let (d, name) = (dir(d), NAMES[*n]);
                let path = join(&d, name);
                let ino1 = ino(fs, &d);
                let result = fs.symlink(ino1, name.as_bytes(), TARGETS[*t].as_bytes(), 0, 0);
                assert_eq!(
                    result.is_ok(),
                    !self.names.contains_key(&path),
                    "{op:?}: {result:?}"
                );
                if result.is_ok() {
                    self.names
                        .insert(path, Node::Symlink(self.next + 1, TARGETS[*t].to_owned()));
                    self.next += 1;
                }
            }
            Op::SetAttrs(d, n, mode, mtime) => {
                let path = join(&dir(d), NAMES[*n]);
                let Some(Node::File(id)) = self.names.get(&path).cloned() else {
                    return;
                };
                let target = ino(fs, &path);
                let before = fs.stat(target).unwrap();
                fs.set_attrs(target, Some(*mode), None, Some(*mtime))
                    .unwrap();
                let after = fs.stat(target).unwrap();
                assert_eq!(after.mode, 0o100000 | mode, "{op:?}");
                assert_eq!((after.mtime, after.atime), (*mtime, before.atime), "{op:?}");
                assert_eq!((after.size, after.links), (before.size, before.links));
                self.modes.insert(id, *mode);
            }
            Op::Rename(a, n, b, m) => {
                let (from_dir, to_dir) = (dir(a), dir(b));
                let (from, to) = (join(&from_dir, NAMES[*n]), join(&to_dir, NAMES[*m]));
                let (a_ino, b_ino) = (ino(fs, &from_dir), ino(fs, &to_dir));
                let result = fs.rename(a_ino, NAMES[*n].as_bytes(), b_ino, NAMES[*m].as_bytes());
                let expect = self.rename(&from, &to);
                assert_eq!(result.is_ok(), expect, "{op:?}: {result:?}");
            }
        }
    }

    /// Renames in the model; returns whether it is allowed.
    fn rename(&mut self, from: &str, to: &str) -> bool {
        let Some(node) = self.names.get(from).cloned() else {
            return false;
        };
        if from == to {
            return true;
        }
        let is_dir = node == Node::Dir;
        if is_dir && (to == from || to.starts_with(&format!("{from}/"))) {
            return false;
        }
        match self.names.get(to) {
            Some(old) if *old == node && !is_dir => return true, // the same file
            Some(Node::Dir) if !is_dir => return false,
            Some(Node::File(_) | Node::Symlink(..)) if is_dir => return false,
            Some(Node::Dir) if !self.children(to).is_empty() => return false,
            _ => {}
        }
        self.names.remove(to);
        let moved: Vec<String> = self
            .names
            .keys()
            .filter(|p| *p == from || p.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        for path in moved {
            let node = self.names.remove(&path).unwrap();
            self.names
                .insert(format!("{to}{}", &path[from.len()..]), node);
        }
        true
    }

    /// The crate's tree equals the model.
    fn check(&self, fs: &mut Ext2<MemDevice>) {
        for dir in self.dirs() {
            let ino = if dir.is_empty() {
                ROOT_INODE
            } else {
                fs.resolve_at(ROOT_INODE, dir.as_bytes(), false).unwrap()
            };
            let mut listed: Vec<String> = fs
                .read_dir(ino)
                .unwrap()
                .into_iter()
                .map(|e| String::from_utf8(e.name).unwrap())
                .filter(|n| n != "." && n != ".." && n != "lost+found")
                .map(|n| join(&dir, &n))
                .collect();
            listed.sort();
            assert_eq!(listed, self.children(&dir), "entries of /{dir}");
        }
        for (path, node) in &self.names {
            let ino = fs.resolve_at(ROOT_INODE, path.as_bytes(), false).unwrap();
            let stat = fs.stat(ino).unwrap();
            match node {
                Node::Dir => assert_eq!(stat.file_type, FileType::Directory),
                Node::Symlink(_, target) => {
                    assert_eq!(fs.read_link(ino).unwrap(), target.as_bytes())
                }
                Node::File(id) => {
                    let content = &self.files[id];
                    assert_eq!(stat.size, content.len() as u64, "{path}");
                    assert_eq!(usize::from(stat.links), self.links(*id), "{path}");
                    assert_eq!(stat.mode, 0o100000 | self.modes[id], "{path}");
                    let mut buf = vec![0u8; content.len()];
                    assert_eq!(fs.read(ino, 0, &mut buf), Ok(content.len()));
                    assert!(buf == *content, "{path}: contents");
                }
            }
        }
    }
}

impl Model {
    /// An independent reader, ext4-view, sees the model's tree in the image
    /// this crate wrote.
    fn check_with_ext4_view(&self, image: Vec<u8>) {
        let fs = ext4_view::Ext4::load(Box::new(image)).unwrap();
        for dir in self.dirs() {
            let path = format!("/{dir}");
            let mut listed: Vec<String> = fs
                .read_dir(path.as_str())
                .unwrap()
                .map(|e| String::from_utf8(e.unwrap().file_name().as_ref().to_vec()).unwrap())
                .filter(|n| n != "." && n != ".." && n != "lost+found")
                .map(|n| join(&dir, &n))
                .collect();
            listed.sort();
            assert_eq!(listed, self.children(&dir), "ext4-view: entries of {path}");
        }
        for (path, node) in &self.names {
            let path = format!("/{path}");
            match node {
                Node::Dir => assert!(fs.symlink_metadata(path.as_str()).unwrap().is_dir()),
                Node::Symlink(_, target) => {
                    let link = fs.read_link(path.as_str()).unwrap();
                    assert_eq!(link.to_str().unwrap(), target, "ext4-view: {path}");
                }
                Node::File(id) => {
                    let meta = fs.symlink_metadata(path.as_str()).unwrap();
                    assert_eq!(meta.len(), self.files[id].len() as u64, "ext4-view: {path}");
                    // ext4-view takes a hole in a block map (pointer 0,
                    // which ext2 and e2fsck allow) for a read of block 0 and
                    // refuses it: such a sparse file is checked by size.
                    match fs.read(path.as_str()) {
                        Ok(content) => {
                            assert!(content == self.files[id], "ext4-view: {path}: contents")
                        }
                        Err(ext4_view::Ext4Error::Corrupt(c))
                            if format!("{c:?}").contains("block_index: 0,") => {}
                        Err(e) => panic!("ext4-view: {path}: {e}"),
                    }
                }
            }
        }
    }
}

/// The mkfs options of the images the sequences run on: both block sizes,
/// entries without a file type, and revision 0 (128-byte inodes, no features).
const KINDS: &[(u32, &[&str])] = &[
    (1024, &[]),
    (4096, &[]),
    (1024, &["-O", "^filetype"]),
    (1024, &["-r", "0"]),
];

fn empty_image(block_size: u32, extra: &[&str]) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    common::mkfs(src.path(), &image, block_size, "8M", extra);
    fs::read(&image).unwrap()
}

fn fsck_clean(image: Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.img");
    fs::write(&path, image).unwrap();
    let output = Command::new(common::e2fs_tool("e2fsck"))
        .arg("-fn")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "e2fsck -fn:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn operation_sequences_match_the_model_and_pass_e2fsck(
        ops in proptest::collection::vec(op(), 1..60),
        kind in 0..KINDS.len(),
    ) {
        static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let images = IMAGES.get_or_init(|| {
            KINDS.iter().map(|&(block_size, extra)| empty_image(block_size, extra)).collect()
        });
        let image = images[kind].clone();
        let mut fs = Ext2::mount(MemDevice::from_bytes(image)).unwrap();
        let mut model = Model::default();
        for op in &ops {
            model.apply(&mut fs, op);
        }
        model.check(&mut fs);
        let image = fs.into_device().into_bytes();
        let mut fs = Ext2::mount(MemDevice::from_bytes(image.clone())).unwrap();
        model.check(&mut fs);
        fsck_clean(image.clone());
        // ext4-view needs the filetype feature (the images mkfs makes by
        // default have it; the two older kinds do not).
        if KINDS[kind].1.is_empty() {
            model.check_with_ext4_view(image);
        }
    }
}
