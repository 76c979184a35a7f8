//! Shared by the tests: a VFS served through the generated client and
//! `file_dispatch` (a loopback transport copying words between two message
//! buffers as the kernel does), client regions in vectors, and ext2 images
//! made by `mkfs.ext2 -d`.

#![allow(dead_code)] // each test binary uses part of it
// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use ext2::{BlockDevice, Ext2, IoError};
use kaal_protocols::file::{file_dispatch, flags, DirRecord, FileClient, FileStat, FsError};
use kaal_rpc::{
    Badge, Error, Lent, LocalBuffer, MessageBuffer, Msg, RpcError, Transport, MSG_MAX,
    REGISTER_WORDS,
};
use vfs::{RamFs, Regions, Service, Vfs};

/// Each client's region, by badge; a badge in `failing` has every copy fail.
#[derive(Default)]
pub struct VecRegions {
    pub regions: RefCell<BTreeMap<Badge, Vec<u8>>>,
    pub failing: Cell<Option<Badge>>,
}

impl Regions for VecRegions {
    fn size(&self, badge: Badge) -> u64 {
        self.regions
            .borrow()
            .get(&badge)
            .map_or(0, |r| r.len() as u64)
    }
    fn read(&self, badge: Badge, offset: u64, buf: &mut [u8]) -> Result<(), ()> {
        if self.failing.get() == Some(badge) {
            return Err(());
        }
        let regions = self.regions.borrow();
        let r = regions.get(&badge).ok_or(())?;
        let start = offset as usize;
        buf.copy_from_slice(r.get(start..start + buf.len()).ok_or(())?);
        Ok(())
    }
    fn write(&self, badge: Badge, offset: u64, data: &[u8]) -> Result<(), ()> {
        if self.failing.get() == Some(badge) {
            return Err(());
        }
        let mut regions = self.regions.borrow_mut();
        let r = regions.get_mut(&badge).ok_or(())?;
        let start = offset as usize;
        r.get_mut(start..start + data.len())
            .ok_or(())?
            .copy_from_slice(data);
        Ok(())
    }
}

/// An image in memory that the test keeps a handle on after the VFS owns
/// the file system.
#[derive(Clone)]
pub struct SharedDev(pub Rc<RefCell<Vec<u8>>>);

impl BlockDevice for SharedDev {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let bytes = self.0.borrow();
        let start = usize::try_from(offset).map_err(|_| IoError::OutOfBounds)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| bytes.get(start..end))
            .ok_or(IoError::OutOfBounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut bytes = self.0.borrow_mut();
        let start = usize::try_from(offset).map_err(|_| IoError::OutOfBounds)?;
        let dst = start
            .checked_add(buf.len())
            .and_then(|end| bytes.get_mut(start..end))
            .ok_or(IoError::OutOfBounds)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.0.borrow().len() as u64
    }
}

/// A program of e2fsprogs (often not on PATH). Panics with the install
/// command when it is missing: these tests must not pass by skipping.
pub fn e2fs_tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install it with `apt-get install e2fsprogs`"))
}

/// Bytes in which no 4-byte word repeats soon.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4) as u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761) ^ i).to_le_bytes())
        .take(len)
        .collect()
}

/// An ext2 image (1 KiB blocks, 8 MiB) of a small known tree: `a.txt`,
/// `d/b.txt`, an empty `tmp/` to mount on, `rel -> d/b.txt`.
pub fn image(dir: &Path) -> Vec<u8> {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir_all(src.join("tmp")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello from ext2\n").unwrap();
    std::fs::write(src.join("d/b.txt"), b"bee\n").unwrap();
    std::os::unix::fs::symlink("d/b.txt", src.join("rel")).unwrap();
    let img = dir.join("disk.img");
    let out = Command::new(e2fs_tool("mkfs.ext2"))
        .args(["-q", "-b", "1024", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("8M")
        .output()
        .expect("mkfs.ext2 runs");
    assert!(out.status.success(), "mkfs.ext2: {out:?}");
    std::fs::read(&img).unwrap()
}

/// `e2fsck -fn` on `bytes`: its exit status and output.
pub fn fsck(dir: &Path, bytes: &[u8]) -> (bool, String) {
    let img = dir.join("check.img");
    std::fs::write(&img, bytes).unwrap();
    let out = Command::new(e2fs_tool("e2fsck"))
        .arg("-fn")
        .arg(&img)
        .output()
        .expect("e2fsck runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Region bytes each test client lends: more than the bounce buffer, so
/// large reads and writes go in several chunks.
pub const REGION: usize = 200 << 10;
/// Bytes the RamFs at `/tmp` holds.
pub const TMP_LIMIT: u64 = 1 << 20;

pub type Svc = Rc<RefCell<Service<VecRegions>>>;

/// The system under test: the image's ext2 at `/`, a RamFs at `/tmp`,
/// clients 1 and 2 with regions; the image's bytes stay reachable.
pub struct System {
    pub svc: Svc,
    pub disk: Rc<RefCell<Vec<u8>>>,
    pub dir: tempfile::TempDir,
}

impl System {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let disk = Rc::new(RefCell::new(image(dir.path())));
        let ext2 = Ext2::mount(SharedDev(disk.clone())).unwrap();
        let mut vfs = Vfs::new();
        assert_eq!(vfs.mount(b"/", Box::new(ext2)), Ok(0));
        assert_eq!(vfs.mount(b"/tmp", Box::new(RamFs::new(TMP_LIMIT))), Ok(1));
        let regions = VecRegions::default();
        for badge in [1, 2] {
            regions.regions.borrow_mut().insert(badge, vec![0; REGION]);
        }
        let mut svc = Service::new(vfs, regions);
        svc.set_time(1_700_000_000);
        System {
            svc: Rc::new(RefCell::new(svc)),
            disk,
            dir,
        }
    }

    pub fn client(&self, badge: Badge) -> Client {
        Client {
            stub: FileClient(Loopback {
                svc: self.svc.clone(),
                badge,
                client_buf: LocalBuffer::default(),
                server_buf: LocalBuffer::default(),
            }),
            badge,
            svc: self.svc.clone(),
        }
    }

    /// A raw request through dispatch as client `badge`: the reply label.
    pub fn raw(&self, badge: Badge, label: u64, words: &[u64]) -> Msg {
        let buf = LocalBuffer::default();
        let req = Msg::new(label, words, &buf).unwrap();
        file_dispatch(&mut *self.svc.borrow_mut(), badge, &req, &buf)
    }

    /// Everything reachable from `/` (not following links): each path with
    /// its stat (times left out) and a file's bytes; the test's picture of
    /// the state.
    pub fn snapshot(&self) -> Vec<(Vec<u8>, FileStat, Vec<u8>)> {
        let c = self.client(99);
        self.svc
            .borrow()
            .regions()
            .regions
            .borrow_mut()
            .insert(99, vec![0; REGION]);
        let mut out = Vec::new();
        let mut todo = vec![b"/".to_vec()];
        while let Some(dir) = todo.pop() {
            for (name, _, _) in c.list(&dir) {
                if name == b"." || name == b".." {
                    continue;
                }
                let mut path = dir.clone();
                if !path.ends_with(b"/") {
                    path.push(b'/');
                }
                path.extend_from_slice(&name);
                let mut st = c.lstat(&path).unwrap();
                (st.atime, st.mtime, st.ctime) = (0, 0, 0);
                let data = match st.kind {
                    kaal_protocols::file::kind::REGULAR => c
                        .read_file(&path)
                        .unwrap_or_else(|e| panic!("{}: {e:?}", String::from_utf8_lossy(&path))),
                    kaal_protocols::file::kind::DIRECTORY => {
                        todo.push(path.clone());
                        Vec::new()
                    }
                    _ => c.readlink(&path).unwrap(),
                };
                out.push((path, st, data));
            }
        }
        self.svc.borrow_mut().close_all(99);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Client and server in one process, each with its own message buffer.
pub struct Loopback {
    svc: Svc,
    badge: Badge,
    client_buf: LocalBuffer,
    server_buf: LocalBuffer,
}

fn copy_words(len: usize, from: &LocalBuffer, to: &LocalBuffer) {
    for i in REGISTER_WORDS..len.min(MSG_MAX) {
        to.set_mr(i, from.mr(i));
    }
}

impl Transport for Loopback {
    type Buffer = LocalBuffer;
    fn buffer(&self) -> &LocalBuffer {
        &self.client_buf
    }
    fn call(&self, req: &Msg) -> Msg {
        copy_words(req.len, &self.client_buf, &self.server_buf);
        let reply = file_dispatch(
            &mut *self.svc.borrow_mut(),
            self.badge,
            req,
            &self.server_buf,
        );
        copy_words(reply.len, &self.server_buf, &self.client_buf);
        reply
    }
}

/// What a client gets: the VFS's error, or the transport's.
pub type Res<T> = Result<T, Error<FsError>>;

/// The protocol's error as the client sees it.
pub fn app(e: FsError) -> Error<FsError> {
    Error::App(e)
}

pub fn rpc(e: RpcError) -> Error<FsError> {
    Error::Rpc(e)
}

/// A test client: the generated stub, and helpers that stage data in its
/// region as a real client would.
pub struct Client {
    pub stub: FileClient<Loopback>,
    pub badge: Badge,
    svc: Svc,
}

impl Client {
    fn with_region<T>(&self, f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let svc = self.svc.borrow();
        let mut regions = svc.regions().regions.borrow_mut();
        f(regions.get_mut(&self.badge).unwrap())
    }

    pub fn open(&self, path: &[u8], fl: u32) -> Res<u32> {
        self.stub.open(path, fl, 0o644)
    }

    /// Puts `data` at the start of the region and writes it all, asking
    /// again after a short write (one request moves at most a chunk) until
    /// done or nothing more is written; the bytes written.
    pub fn write(&self, fd: u32, data: &[u8]) -> Res<u64> {
        self.with_region(|r| r[..data.len()].copy_from_slice(data));
        let mut done = 0;
        while done < data.len() as u64 {
            let n = self
                .stub
                .write(fd, Lent::new(done, data.len() as u64 - done))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Reads up to `len` bytes into the region's start and returns them.
    pub fn read(&self, fd: u32, len: usize) -> Res<Vec<u8>> {
        let n = self.stub.read(fd, Lent::new(0, len as u64))?;
        Ok(self.with_region(|r| r[..n as usize].to_vec()))
    }

    pub fn read_file(&self, path: &[u8]) -> Res<Vec<u8>> {
        let fd = self.open(path, flags::READ_ONLY)?;
        let mut out = Vec::new();
        loop {
            let chunk = self.read(fd, REGION)?;
            if chunk.is_empty() {
                break;
            }
            out.extend(chunk);
        }
        self.stub.close(fd)?;
        Ok(out)
    }

    pub fn write_file(&self, path: &[u8], data: &[u8]) -> Res<()> {
        let fd = self.open(path, flags::WRITE_ONLY | flags::CREATE | flags::TRUNCATE)?;
        for chunk in data.chunks(REGION) {
            assert_eq!(self.write(fd, chunk)?, chunk.len() as u64);
        }
        self.stub.close(fd)
    }

    pub fn stat(&self, path: &[u8]) -> Res<FileStat> {
        self.stub.stat(path)
    }

    pub fn lstat(&self, path: &[u8]) -> Res<FileStat> {
        self.stub.lstat(path)
    }

    pub fn readlink(&self, path: &[u8]) -> Res<Vec<u8>> {
        let n = self.stub.readlink(path, Lent::new(0, 4096))?;
        Ok(self.with_region(|r| r[..n as usize].to_vec()))
    }

    /// One `readdir` into `len` bytes at the region's start, decoded.
    pub fn readdir(&self, fd: u32, len: u64) -> Res<Vec<(Vec<u8>, u64, u8)>> {
        let n = self.stub.readdir(fd, Lent::new(0, len))?;
        Ok(self.with_region(|r| {
            kaal_protocols::file::dir_records(&r[..n as usize])
                .map(|DirRecord { ino, kind, name }| (name.to_vec(), ino, kind))
                .collect()
        }))
    }

    /// The whole directory, in `readdir` calls of `len` bytes.
    pub fn list_with(&self, path: &[u8], len: u64) -> Vec<(Vec<u8>, u64, u8)> {
        let fd = self
            .open(path, flags::READ_ONLY | flags::DIRECTORY)
            .unwrap();
        let mut all = Vec::new();
        loop {
            let page = self.readdir(fd, len).unwrap();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        self.stub.close(fd).unwrap();
        all
    }

    pub fn list(&self, path: &[u8]) -> Vec<(Vec<u8>, u64, u8)> {
        self.list_with(path, 4096)
    }

    /// The names in directory `path`, `.` and `..` left out, sorted.
    pub fn names(&self, path: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = self
            .list(path)
            .into_iter()
            .map(|(n, _, _)| String::from_utf8(n).unwrap())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        names
    }
}
