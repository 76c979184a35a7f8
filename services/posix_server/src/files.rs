//! Open file descriptions: what a descriptor refers to, shared by `dup`
//! (and later `fork`): a VFS file or directory, the console tty, or one of
//! the devices the server itself provides, or a socket.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use kaal_client::file::Fd;
use kaal_protocols::file::{FileStat, FsError};
use posix::abi::{mode, Stat};
use posix::errno::Errno;
use posix::pagecache::FileId;

/// What an open file description is.
#[derive(Debug)]
pub enum Object {
    /// A VFS descriptor (its offset lives in the VFS); `path` for `*at`
    /// calls relative to a directory and for `fchdir`.
    Vfs {
        fd: Fd,
        /// The file's identity (device, inode), taken when it was opened:
        /// what its shared pages are kept under (`shmfile.rs`).
        id: FileId,
        path: String,
        dir: bool,
        /// Directory records read from the VFS and not yet given out.
        pending: VecDeque<(u64, u8, Vec<u8>)>,
        /// Records given out so far (the `d_off` of the next).
        given: u64,
    },
    /// The console.
    Tty,
    /// `/dev/null`.
    Null,
    /// `/dev/zero`.
    Zero,
    /// `/dev/urandom` and `/dev/random`.
    Random,
    /// A file the server makes when it is opened (`/proc/meminfo`): its
    /// bytes and the read offset.
    Generated { data: Vec<u8>, pos: usize },
    /// The read end of a pipe.
    PipeRead(PipeRef),
    /// The write end of a pipe.
    PipeWrite(PipeRef),
    /// An eventfd's counter.
    EventFd(crate::events::EventRef),
    /// A timerfd; true for `CLOCK_REALTIME` (absolute times are wall
    /// clock).
    TimerFd(crate::events::TimerRef, bool),
    /// An epoll instance's interest list.
    Epoll(crate::events::EpollRef),
    /// An AF_INET socket of the network service (`inet.rs`).
    Socket(crate::inet::Sock),
    /// An AF_UNIX stream socket (`unix.rs`).
    Unix(crate::unix::Unix),
}

pub type PipeRef = Rc<RefCell<posix::pipe::Pipe>>;

/// An open file description.
#[derive(Debug)]
pub struct Open {
    pub object: Object,
    /// Linux open flags (access mode, `O_APPEND`, `O_NONBLOCK`).
    pub flags: u32,
}

pub type OpenRef = Rc<RefCell<Open>>;

pub fn open_ref(object: Object, flags: u32) -> OpenRef {
    Rc::new(RefCell::new(Open { object, flags }))
}

/// The Linux error for a VFS error.
pub fn errno_of(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::Exists => Errno::EEXIST,
        FsError::NotADirectory => Errno::ENOTDIR,
        FsError::IsADirectory => Errno::EISDIR,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::NoSpace => Errno::ENOSPC,
        FsError::ReadOnly => Errno::EROFS,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
        FsError::SymlinkLoop => Errno::ELOOP,
        FsError::Invalid | FsError::NotASymlink => Errno::EINVAL,
        FsError::BadDescriptor => Errno::EBADF,
        FsError::TooManyOpen => Errno::ENFILE,
        FsError::CrossDevice => Errno::EXDEV,
        FsError::TooManyLinks => Errno::EMLINK,
        FsError::Busy => Errno::EBUSY,
        FsError::NotSupported => Errno::EOPNOTSUPP,
        FsError::Corrupt | FsError::Io | FsError::BadRegion => Errno::EIO,
    }
}

/// The Linux error for a failed VFS call.
pub fn file_errno(e: kaal_client::file::FileError) -> Errno {
    match e {
        kaal_client::file::FileError::Fs(e) => errno_of(e),
        _ => Errno::EIO,
    }
}

/// `struct stat` of a VFS file.
pub fn stat_of(s: &FileStat) -> Stat {
    use kaal_protocols::file::kind;
    let ty = match s.kind {
        kind::DIRECTORY => mode::S_IFDIR,
        kind::SYMLINK => mode::S_IFLNK,
        kind::CHAR_DEVICE => mode::S_IFCHR,
        kind::BLOCK_DEVICE => mode::S_IFBLK,
        kind::FIFO => mode::S_IFIFO,
        kind::SOCKET => mode::S_IFSOCK,
        _ => mode::S_IFREG,
    };
    Stat {
        dev: u64::from(s.dev),
        ino: s.ino,
        nlink: u64::from(s.links),
        mode: ty | u32::from(s.perm & 0o7777),
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        size: s.size,
        blksize: 4096,
        blocks: s.size.div_ceil(512),
        atime: s.atime,
        mtime: s.mtime,
        ctime: s.ctime,
    }
}

/// `struct stat` of a pipe end.
pub fn pipe_stat(pipe: &PipeRef) -> Stat {
    Stat {
        dev: 12,
        ino: Rc::as_ptr(pipe) as u64 & 0xffff_ffff,
        nlink: 1,
        mode: mode::S_IFIFO | 0o600,
        blksize: 4096,
        ..Stat::default()
    }
}

/// `struct stat` of a device the server provides (`rdev` as Linux numbers
/// them: 1:3 null, 1:5 zero, 1:9 urandom, 5:0 tty).
pub fn device_stat(object: &Object) -> Stat {
    let rdev = match object {
        Object::Null => (1 << 8) | 3,
        Object::Zero => (1 << 8) | 5,
        Object::Random => (1 << 8) | 9,
        _ => 5 << 8,
    };
    Stat {
        dev: 5,
        ino: rdev,
        nlink: 1,
        mode: mode::S_IFCHR | 0o666,
        rdev,
        blksize: 4096,
        ..Stat::default()
    }
}

/// `struct stat` of an eventfd, timerfd or epoll: Linux's anonymous
/// inode (mode 0600, no file type).
pub fn anon_stat(object: &Object) -> Stat {
    let ino = match object {
        Object::EventFd(e) => Rc::as_ptr(e) as u64,
        Object::TimerFd(t, _) => Rc::as_ptr(t) as u64,
        Object::Epoll(e) => Rc::as_ptr(e) as u64,
        _ => 0,
    };
    Stat {
        dev: 13,
        ino: ino & 0xffff_ffff,
        nlink: 1,
        mode: 0o600,
        blksize: 4096,
        ..Stat::default()
    }
}

/// The device a `/dev` path names.
pub fn device(path: &str) -> Option<Object> {
    Some(match path {
        "/dev/null" => Object::Null,
        "/dev/zero" => Object::Zero,
        "/dev/urandom" | "/dev/random" => Object::Random,
        "/dev/tty" | "/dev/console" | "/dev/tty0" | "/dev/ttyS0" => Object::Tty,
        _ => return None,
    })
}
