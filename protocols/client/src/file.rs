//! The file protocol's client: calls to the VFS on the endpoint a manifest
//! `file` channel binds, with the data in the region this component lends
//! the VFS on the same channel. Reads and writes larger than the region,
//! or than the VFS moves in one call (its 64 KiB chunk), go in several.

use kaal_protocols::file::{dir_records, DirRecord, FileClient, FileStat, FsError};
use kaal_rpc::{Error, Lent, RpcError};
use kaal_rt::{Env, SharedRegion};

pub use kaal_protocols::file::{flags, kind, whence, Attrs};

/// Why a file call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// The VFS refused the request.
    Fs(FsError),
    /// The call did not reach the VFS or its answer was malformed;
    /// `ServerGone` when the VFS stopped or restarted (its descriptors are
    /// gone with it).
    Rpc(RpcError),
    /// The manifest binds no `file` channel of that local name.
    NotGranted,
    /// The lent region could not be read or written.
    Region,
}

impl From<Error<FsError>> for FileError {
    fn from(e: Error<FsError>) -> Self {
        match e {
            Error::App(e) => FileError::Fs(e),
            Error::Rpc(e) => FileError::Rpc(e),
        }
    }
}

impl core::fmt::Display for FileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FileError::Fs(e) => write!(f, "the VFS refused: {e:?}"),
            FileError::Rpc(e) => write!(f, "the call failed: {e:?}"),
            FileError::NotGranted => f.write_str("no `file` channel of that name"),
            FileError::Region => f.write_str("the lent region is out of reach"),
        }
    }
}

/// A result of a file call.
pub type Result<T> = core::result::Result<T, FileError>;

/// A descriptor the VFS gave this client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub u32);

/// A client of the VFS.
#[derive(Debug)]
pub struct Files {
    rpc: FileClient,
    region: SharedRegion,
}

impl Files {
    /// The client on the `file` channel bound to local name `name`; the
    /// VFS closes any descriptors left from an earlier run of this
    /// component.
    pub fn new(env: &Env, name: &str) -> Result<Files> {
        let (ep, _) = env.client(name).map_err(|_| FileError::NotGranted)?;
        let region = env.lent_region(name).map_err(|_| FileError::NotGranted)?;
        let rpc = FileClient(ep);
        // Descriptors of an earlier run of this component (same badge)
        // are closed: this run starts with none.
        rpc.begin()?;
        Ok(Files { rpc, region })
    }

    /// The bytes one `read` or `write` call moves at most.
    fn chunk(&self) -> usize {
        usize::try_from(self.region.len()).unwrap_or(usize::MAX)
    }

    pub fn open(&self, path: &str, flags: u32, mode: u32) -> Result<Fd> {
        Ok(Fd(self.rpc.open(path.as_bytes(), flags, mode)?))
    }

    pub fn close(&self, fd: Fd) -> Result<()> {
        Ok(self.rpc.close(fd.0)?)
    }

    /// Reads at the descriptor's offset until `buf` is full or the file
    /// ends; the bytes read. A short answer is not the end (the VFS moves
    /// at most one chunk a call): only 0 is.
    pub fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let want = rest.len().min(self.chunk());
            let n = self.rpc.read(fd.0, Lent::new(0, want as u64))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n == 0 {
                break;
            }
            let dst = rest
                .get_mut(..n)
                .filter(|_| n <= want)
                .ok_or(FileError::Rpc(RpcError::BadReply))?;
            self.region.read(0, dst).map_err(|_| FileError::Region)?;
            done += n;
        }
        Ok(done)
    }

    /// Writes all of `data` at the descriptor's offset, continuing after
    /// short writes with the rest; the bytes written (fewer only when a
    /// call wrote nothing).
    pub fn write(&self, fd: Fd, data: &[u8]) -> Result<usize> {
        let mut done = 0;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            let piece = rest.get(..self.chunk().max(1)).unwrap_or(rest);
            self.region.write(0, piece).map_err(|_| FileError::Region)?;
            let n = self.rpc.write(fd.0, Lent::new(0, piece.len() as u64))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n == 0 {
                break;
            }
            if n > piece.len() {
                return Err(FileError::Rpc(RpcError::BadReply));
            }
            done += n;
        }
        Ok(done)
    }

    /// Moves the offset (`whence::SET`, `CURRENT`, `END`); the new offset.
    pub fn seek(&self, fd: Fd, offset: i64, whence: u32) -> Result<u64> {
        Ok(self.rpc.seek(fd.0, offset as u64, whence)?)
    }

    pub fn stat(&self, path: &str) -> Result<FileStat> {
        Ok(self.rpc.stat(path.as_bytes())?)
    }

    pub fn lstat(&self, path: &str) -> Result<FileStat> {
        Ok(self.rpc.lstat(path.as_bytes())?)
    }

    pub fn fstat(&self, fd: Fd) -> Result<FileStat> {
        Ok(self.rpc.fstat(fd.0)?)
    }

    /// Calls `each` with every entry of the directory open as `fd`, from
    /// its position; `scratch` holds one batch of records.
    pub fn read_dir(
        &self,
        fd: Fd,
        scratch: &mut [u8],
        mut each: impl FnMut(DirRecord<'_>),
    ) -> Result<()> {
        let want = scratch.len().min(self.chunk());
        loop {
            let n = self.rpc.readdir(fd.0, Lent::new(0, want as u64))?;
            if n == 0 {
                return Ok(());
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let got = scratch
                .get_mut(..n)
                .ok_or(FileError::Rpc(RpcError::BadReply))?;
            self.region.read(0, got).map_err(|_| FileError::Region)?;
            dir_records(got).for_each(&mut each);
        }
    }

    pub fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        Ok(self.rpc.mkdir(path.as_bytes(), mode)?)
    }

    pub fn rmdir(&self, path: &str) -> Result<()> {
        Ok(self.rpc.rmdir(path.as_bytes())?)
    }

    pub fn unlink(&self, path: &str) -> Result<()> {
        Ok(self.rpc.unlink(path.as_bytes())?)
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        Ok(self.rpc.rename(from.as_bytes(), to.as_bytes())?)
    }

    pub fn symlink(&self, target: &str, path: &str) -> Result<()> {
        Ok(self.rpc.symlink(target.as_bytes(), path.as_bytes())?)
    }

    pub fn link(&self, existing: &str, new: &str) -> Result<()> {
        Ok(self.rpc.link(existing.as_bytes(), new.as_bytes())?)
    }

    /// The target of the link at `path` into `buf`; its length.
    pub fn read_link<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b [u8]> {
        let want = buf.len().min(self.chunk());
        let n = self
            .rpc
            .readlink(path.as_bytes(), Lent::new(0, want as u64))?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let dst = buf.get_mut(..n).ok_or(FileError::Rpc(RpcError::BadReply))?;
        self.region.read(0, dst).map_err(|_| FileError::Region)?;
        Ok(dst)
    }

    pub fn truncate(&self, fd: Fd, size: u64) -> Result<()> {
        Ok(self.rpc.truncate(fd.0, size)?)
    }

    /// Sets `path`'s permission bits and times (`None` leaves one); a
    /// final symbolic link is followed unless `follow` is false.
    pub fn setattr(&self, path: &str, follow: bool, attrs: Attrs) -> Result<()> {
        let flags = if follow { 0 } else { flags::NO_FOLLOW };
        Ok(self.rpc.setattr(path.as_bytes(), flags, attrs)?)
    }

    /// Sets the permission bits and times of the file open as `fd`.
    pub fn fsetattr(&self, fd: Fd, attrs: Attrs) -> Result<()> {
        Ok(self.rpc.fsetattr(fd.0, attrs)?)
    }

    /// Writes everything back to the disks.
    pub fn sync(&self) -> Result<()> {
        Ok(self.rpc.sync()?)
    }

    /// The raw interface, for tests that send what this library would not.
    pub fn raw(&self) -> &FileClient {
        &self.rpc
    }

    /// The lent region.
    pub fn region(&self) -> &SharedRegion {
        &self.region
    }
}
