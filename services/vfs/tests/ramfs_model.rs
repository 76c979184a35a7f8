//! Random operation sequences on a RamFs (mounted at `/` of a VFS, so the
//! VFS's path handling is exercised too) against a simple model: a map of
//! paths to nodes. Every result, success or refusal, must match, and after
//! each step the whole tree (kinds, link counts, sizes, bytes), the bytes
//! in use and the inodes in use must equal the model's.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use kaal_protocols::file::{kind, Attrs, FsError};
use proptest::prelude::*;
use vfs::{FileSystem, Ino, RamFs, Vfs, ENTRY_COST, NODE_COST};

/// What a node with a one-letter name (all the model's) is charged.
const NODE: u64 = NODE_COST + ENTRY_COST + 1;
/// Room for 8 such nodes and 96 bytes of data: both the node and the
/// byte limits are reached.
const LIMIT: u64 = 8 * NODE + 96;
/// Every symbolic link points here: nowhere, so a path through one is
/// `NotFound` and the model needs no resolution of its own.
const TARGET: &[u8] = b"/nowhere";

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Mkdir(usize),
    Write(usize, u64, usize, u8),
    Truncate(usize, u64),
    Unlink(usize),
    Rmdir(usize),
    Rename(usize, usize),
    Link(usize, usize),
    Symlink(usize),
    /// `setattr` of a mode (past `0o7777` too), following a final link.
    Chmod(usize, u16),
}

/// The paths operations name: `/a`..`/c` and one level below them.
fn paths() -> Vec<String> {
    let names = ["a", "b", "c"];
    let mut out: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
    for p in names {
        for c in names {
            out.push(format!("/{p}/{c}"));
        }
    }
    out
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..12usize;
    prop_oneof![
        p.clone().prop_map(Op::Create),
        p.clone().prop_map(Op::Mkdir),
        (p.clone(), 0..64u64, 0..32usize, any::<u8>())
            .prop_map(|(a, o, l, b)| Op::Write(a, o, l, b)),
        (p.clone(), 0..100u64).prop_map(|(a, s)| Op::Truncate(a, s)),
        p.clone().prop_map(Op::Unlink),
        p.clone().prop_map(Op::Rmdir),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Link(a, b)),
        p.clone().prop_map(Op::Symlink),
        (p, 0..0o20000u16).prop_map(|(a, m)| Op::Chmod(a, m)),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    File(Vec<u8>),
    Dir,
    Link,
}

#[derive(Default)]
struct Model {
    paths: BTreeMap<String, usize>,
    nodes: BTreeMap<usize, Node>,
    /// Permission bits a `Chmod` gave a node (else its kind's default).
    modes: BTreeMap<usize, u16>,
    next: usize,
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

impl Model {
    fn node(&self, p: &str) -> Option<(usize, &Node)> {
        let id = *self.paths.get(p)?;
        Some((id, &self.nodes[&id]))
    }

    /// The parent of `p` resolved as the VFS does.
    fn dir_of(&self, p: &str) -> Result<(), FsError> {
        let d = parent(p);
        if d == "/" {
            return Ok(());
        }
        match self.node(d) {
            Some((_, Node::Dir)) => Ok(()),
            Some((_, Node::File(_))) => Err(FsError::NotADirectory),
            Some((_, Node::Link)) | None => Err(FsError::NotFound),
        }
    }

    fn file(&self, p: &str) -> Result<usize, FsError> {
        self.dir_of(p)?;
        match self.node(p) {
            Some((id, Node::File(_))) => Ok(id),
            Some((_, Node::Dir)) => Err(FsError::IsADirectory),
            Some((_, Node::Link)) | None => Err(FsError::NotFound),
        }
    }

    fn add(&mut self, p: &str, node: Node) {
        let id = self.next;
        self.next += 1;
        self.nodes.insert(id, node);
        self.paths.insert(p.to_string(), id);
    }

    /// Drops name `p`; its node goes with its last name.
    fn drop_name(&mut self, p: &str) {
        let id = self.paths.remove(p).unwrap();
        if !self.paths.values().any(|&v| v == id) {
            self.nodes.remove(&id).unwrap();
        }
    }

    /// Bytes charged: each node's cost and data, each name's cost.
    fn used(&self) -> u64 {
        let data: u64 = self
            .nodes
            .values()
            .map(|n| match n {
                Node::File(d) => d.len() as u64,
                Node::Link => TARGET.len() as u64,
                Node::Dir => 0,
            })
            .sum();
        let names: u64 = self
            .paths
            .keys()
            .map(|p| ENTRY_COST + (p.len() - p.rfind('/').unwrap() - 1) as u64)
            .sum();
        data + names + NODE_COST * self.nodes.len() as u64
    }

    fn children(&self, p: &str) -> usize {
        let prefix = format!("{p}/");
        self.paths
            .keys()
            .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
            .count()
    }

    fn apply(&mut self, op: &Op, paths: &[String]) -> Result<(), FsError> {
        match *op {
            Op::Create(a) | Op::Mkdir(a) | Op::Symlink(a) => {
                let p = &paths[a];
                self.dir_of(p)?;
                if self.paths.contains_key(p) {
                    return Err(FsError::Exists);
                }
                let (node, bytes) = match op {
                    Op::Create(_) => (Node::File(Vec::new()), 0),
                    Op::Mkdir(_) => (Node::Dir, 0),
                    _ => (Node::Link, TARGET.len() as u64),
                };
                if self.used() + NODE + bytes > LIMIT {
                    return Err(FsError::NoSpace);
                }
                self.add(p, node);
                Ok(())
            }
            Op::Write(a, offset, len, byte) => {
                let id = self.file(&paths[a])?;
                let used = self.used();
                let Node::File(data) = self.nodes.get_mut(&id).unwrap() else {
                    unreachable!()
                };
                let end = offset as usize + len;
                let growth = end.saturating_sub(data.len()) as u64;
                if used + growth > LIMIT {
                    return Err(FsError::NoSpace);
                }
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset as usize..end].fill(byte);
                Ok(())
            }
            Op::Truncate(a, size) => {
                let id = self.file(&paths[a])?;
                let used = self.used();
                let Node::File(data) = self.nodes.get_mut(&id).unwrap() else {
                    unreachable!()
                };
                let growth = (size as usize).saturating_sub(data.len()) as u64;
                if used + growth > LIMIT {
                    return Err(FsError::NoSpace);
                }
                data.resize(size as usize, 0);
                Ok(())
            }
            Op::Unlink(a) | Op::Rmdir(a) => {
                let p = &paths[a];
                self.dir_of(p)?;
                let (_, node) = self.node(p).ok_or(FsError::NotFound)?;
                match (op, node) {
                    (Op::Unlink(_), Node::Dir) => return Err(FsError::IsADirectory),
                    (Op::Rmdir(_), Node::File(_) | Node::Link) => {
                        return Err(FsError::NotADirectory)
                    }
                    (Op::Rmdir(_), Node::Dir) if self.children(p) > 0 => {
                        return Err(FsError::NotEmpty)
                    }
                    _ => {}
                }
                self.drop_name(p);
                Ok(())
            }
            Op::Rename(a, b) => {
                let (p, q) = (&paths[a], &paths[b]);
                self.dir_of(p)?;
                self.dir_of(q)?;
                let (id, node) = self.node(p).ok_or(FsError::NotFound)?;
                let is_dir = *node == Node::Dir;
                if is_dir && parent(q) == p.as_str() {
                    return Err(FsError::Invalid);
                }
                if let Some((old, target)) = self.node(q) {
                    if old == id {
                        return Ok(());
                    }
                    match (is_dir, *target == Node::Dir) {
                        (true, false) => return Err(FsError::NotADirectory),
                        (false, true) => return Err(FsError::IsADirectory),
                        (true, true) if self.children(q) > 0 => return Err(FsError::NotEmpty),
                        _ => {}
                    }
                    self.drop_name(q);
                }
                // The name and, for a directory, everything below it move.
                let prefix = format!("{p}/");
                let moved: Vec<(String, usize)> = self
                    .paths
                    .iter()
                    .filter(|(k, _)| *k == p || k.starts_with(&prefix))
                    .map(|(k, &v)| (k.clone(), v))
                    .collect();
                for (k, v) in moved {
                    self.paths.remove(&k);
                    self.paths.insert(format!("{q}{}", &k[p.len()..]), v);
                }
                Ok(())
            }
            Op::Chmod(a, mode) => {
                let p = &paths[a];
                self.dir_of(p)?;
                let id = match self.node(p) {
                    // The link's target (`/nowhere`) is missing.
                    Some((_, Node::Link)) | None => return Err(FsError::NotFound),
                    Some((id, _)) => id,
                };
                if mode > 0o7777 {
                    return Err(FsError::Invalid);
                }
                self.modes.insert(id, mode);
                Ok(())
            }
            Op::Link(a, b) => {
                let (p, q) = (&paths[a], &paths[b]);
                self.dir_of(p)?;
                let (id, node) = self.node(p).ok_or(FsError::NotFound)?;
                let is_dir = *node == Node::Dir;
                self.dir_of(q)?;
                if is_dir {
                    return Err(FsError::IsADirectory);
                }
                if self.paths.contains_key(q) {
                    return Err(FsError::Exists);
                }
                if self.used() + ENTRY_COST + 1 > LIMIT {
                    return Err(FsError::NoSpace);
                }
                self.paths.insert(q.clone(), id);
                Ok(())
            }
        }
    }

    /// Each path: kind, mode, links, size and bytes, as the file system
    /// tells.
    fn tree(&self) -> BTreeMap<String, (u8, u16, u32, u64, Vec<u8>)> {
        self.paths
            .iter()
            .map(|(p, id)| {
                let names = self.paths.values().filter(|v| *v == id).count() as u32;
                let mode = |default| self.modes.get(id).copied().unwrap_or(default);
                let entry = match &self.nodes[id] {
                    Node::File(d) => (kind::REGULAR, mode(0o644), names, d.len() as u64, d.clone()),
                    Node::Link => (
                        kind::SYMLINK,
                        0o777,
                        names,
                        TARGET.len() as u64,
                        TARGET.to_vec(),
                    ),
                    Node::Dir => {
                        let subdirs = self
                            .paths
                            .iter()
                            .filter(|(k, v)| parent(k) == p.as_str() && self.nodes[*v] == Node::Dir)
                            .count() as u32;
                        (
                            kind::DIRECTORY,
                            mode(0o755),
                            2 + subdirs,
                            self.children(p) as u64,
                            Vec::new(),
                        )
                    }
                };
                (p.clone(), entry)
            })
            .collect()
    }
}

/// The RamFs the VFS owns, still in the test's reach (for its byte count).
struct Shared(Rc<RefCell<RamFs>>);

impl FileSystem for Shared {
    fn root(&self) -> Ino {
        self.0.borrow().root()
    }
    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, FsError> {
        self.0.borrow_mut().lookup(dir, name)
    }
    fn stat(&mut self, ino: Ino) -> Result<kaal_protocols::file::FileStat, FsError> {
        self.0.borrow_mut().stat(ino)
    }
    fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.0.borrow_mut().read(ino, offset, buf)
    }
    fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        self.0.borrow_mut().write(ino, offset, data)
    }
    fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), FsError> {
        self.0.borrow_mut().truncate(ino, size)
    }
    fn setattr(&mut self, ino: Ino, attrs: &Attrs) -> Result<(), FsError> {
        self.0.borrow_mut().setattr(ino, attrs)
    }
    fn create(&mut self, d: Ino, n: &[u8], p: u16, u: u32, g: u32) -> Result<Ino, FsError> {
        self.0.borrow_mut().create(d, n, p, u, g)
    }
    fn mkdir(&mut self, d: Ino, n: &[u8], p: u16, u: u32, g: u32) -> Result<Ino, FsError> {
        self.0.borrow_mut().mkdir(d, n, p, u, g)
    }
    fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        self.0.borrow_mut().unlink(dir, name)
    }
    fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        self.0.borrow_mut().rmdir(dir, name)
    }
    fn rename(&mut self, a: Ino, an: &[u8], b: Ino, bn: &[u8]) -> Result<(), FsError> {
        self.0.borrow_mut().rename(a, an, b, bn)
    }
    fn link(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), FsError> {
        self.0.borrow_mut().link(dir, name, ino)
    }
    fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Result<Ino, FsError> {
        self.0.borrow_mut().symlink(dir, name, target)
    }
    fn read_link(&mut self, ino: Ino) -> Result<Vec<u8>, FsError> {
        self.0.borrow_mut().read_link(ino)
    }
    fn read_dir_page(
        &mut self,
        dir: Ino,
        cookie: u64,
        out: &mut dyn FnMut(Ino, u8, &[u8]) -> bool,
    ) -> Result<Option<u64>, FsError> {
        self.0.borrow_mut().read_dir_page(dir, cookie, out)
    }
    fn sync(&mut self) -> Result<(), FsError> {
        self.0.borrow_mut().sync()
    }
    fn set_time(&mut self, now: u64) {
        self.0.borrow_mut().set_time(now)
    }
}

fn run(vfs: &mut Vfs, op: &Op, paths: &[String]) -> Result<(), FsError> {
    let path = |i: usize| paths[i].as_bytes();
    match *op {
        Op::Create(a) => vfs.create(path(a), 0o644).map(drop),
        Op::Mkdir(a) => vfs.mkdir(path(a), 0o755),
        Op::Symlink(a) => vfs.symlink(TARGET, path(a)),
        Op::Write(a, offset, len, byte) => {
            let node = vfs.resolve(path(a), true)?;
            let n = vfs
                .fs(node.mount)?
                .write(node.ino, offset, &vec![byte; len])?;
            assert_eq!(n, len);
            Ok(())
        }
        Op::Truncate(a, size) => {
            let node = vfs.resolve(path(a), true)?;
            vfs.fs(node.mount)?.truncate(node.ino, size)
        }
        Op::Unlink(a) => vfs.unlink(path(a)),
        Op::Rmdir(a) => vfs.rmdir(path(a)),
        Op::Rename(a, b) => vfs.rename(path(a), path(b)),
        Op::Link(a, b) => vfs.link(path(a), path(b)),
        Op::Chmod(a, mode) => {
            let attrs = Attrs {
                mode: Some(mode),
                ..Attrs::default()
            };
            vfs.setattr(path(a), true, &attrs)
        }
    }
}

/// The tree as the VFS lists it, from `/` down.
fn listed(vfs: &mut Vfs) -> BTreeMap<String, (u8, u16, u32, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![String::new()];
    while let Some(dir) = todo.pop() {
        let node = vfs.resolve(format!("{dir}/").as_bytes(), true).unwrap();
        let mut names = Vec::new();
        let end = vfs
            .fs(node.mount)
            .unwrap()
            .read_dir_page(node.ino, 0, &mut |_, _, name| {
                names.push(String::from_utf8(name.to_vec()).unwrap());
                true
            })
            .unwrap();
        assert_eq!(end, None);
        for name in names.into_iter().filter(|n| n != "." && n != "..") {
            let p = format!("{dir}/{name}");
            let st = vfs.stat(p.as_bytes(), false).unwrap();
            let data = match st.kind {
                kind::REGULAR => {
                    let node = vfs.resolve(p.as_bytes(), false).unwrap();
                    let mut buf = vec![0; 1024];
                    let n = vfs
                        .fs(node.mount)
                        .unwrap()
                        .read(node.ino, 0, &mut buf)
                        .unwrap();
                    buf.truncate(n);
                    buf
                }
                kind::SYMLINK => vfs.read_link(p.as_bytes()).unwrap(),
                _ => {
                    todo.push(p.clone());
                    Vec::new()
                }
            };
            if st.kind == kind::DIRECTORY {
                // `..` leads back to the directory listed.
                let up = vfs.resolve(format!("{p}/..").as_bytes(), true).unwrap();
                assert_eq!(up, node, "{p}/..");
            }
            out.insert(p, (st.kind, st.perm, st.links, st.size, data));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn ramfs_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let paths = paths();
        let ram = Rc::new(RefCell::new(RamFs::new(LIMIT)));
        let mut vfs = Vfs::new();
        vfs.mount(b"/", Box::new(Shared(ram.clone()))).unwrap();
        let mut model = Model::default();
        for op in &ops {
            let want = model.apply(op, &paths);
            let got = run(&mut vfs, op, &paths);
            prop_assert_eq!(got, want, "{:?}", op);
            prop_assert_eq!(listed(&mut vfs), model.tree(), "after {:?}", op);
            prop_assert_eq!(ram.borrow().used(), model.used(), "bytes after {:?}", op);
            prop_assert_eq!(ram.borrow().inodes(), 1 + model.nodes.len(), "inodes after {:?}", op);
        }
        // Freed inodes are reused: the root and one per live node.
        let root = vfs.root().unwrap();
        prop_assert_eq!(vfs.stat_node(root).unwrap().links as usize,
            2 + model.paths.iter().filter(|(k, v)| parent(k) == "/" && model.nodes[*v] == Node::Dir).count());
    }
}

#[test]
fn bytes_in_use_and_inode_numbers_are_reused() {
    // Two one-letter names and 100 bytes of data.
    let mut fs = RamFs::new(2 * NODE + 100);
    let root = fs.root();
    let a = fs.create(root, b"a", 0o644, 0, 0).unwrap();
    let b = fs.create(root, b"b", 0o644, 0, 0).unwrap();
    assert_eq!(fs.used(), 2 * NODE);
    assert_eq!(fs.write(a, 0, &[1; 60]), Ok(60));
    assert_eq!(fs.write(a, 60, &[1; 41]), Err(FsError::NoSpace));
    // Exactly the limit fits; a byte more does not, a rewrite in place does.
    assert_eq!(fs.write(a, 60, &[2; 40]), Ok(40));
    assert_eq!(fs.used(), 2 * NODE + 100);
    assert_eq!(fs.write(a, 100, &[3]), Err(FsError::NoSpace));
    assert_eq!(fs.write(a, 0, &[4; 100]), Ok(100));
    fs.truncate(a, 60).unwrap();
    assert_eq!(fs.write(a, u64::MAX - 1, &[1; 4]), Err(FsError::Invalid));
    assert_eq!(fs.write(a, 1 << 50, &[1]), Err(FsError::NoSpace));
    assert_eq!(fs.truncate(a, 1 << 50), Err(FsError::NoSpace));
    assert_eq!(fs.used(), 2 * NODE + 60);
    // A node more does not fit: names and inodes are charged too.
    assert_eq!(fs.create(root, b"x", 0o644, 0, 0), Err(FsError::NoSpace));
    assert_eq!(fs.link(root, b"x", a), Err(FsError::NoSpace));
    assert_eq!(
        fs.rename(root, b"b", root, &[b'y'; 200]),
        Err(FsError::NoSpace)
    );
    assert_eq!(fs.used(), 2 * NODE + 60);
    fs.unlink(root, b"a").unwrap();
    assert_eq!(fs.used(), NODE);
    let c = fs.mkdir(root, b"c", 0o755, 0, 0).unwrap();
    assert_eq!(c, a, "the freed number is given out again");
    assert_ne!(b, c);
    assert_eq!(fs.inodes(), 3);
}
