//! File attributes: `chmod` and `fchmod(at)`, the `utime` family, `truncate`
//! by path, and the `chown` family. Modes and times go to the VFS
//! (`setattr`, `fsetattr`), which keeps seconds: nanoseconds are dropped,
//! and a time before the epoch is stored as the epoch. Every process runs
//! as root and the VFS keeps no owners it could change, so a `chown` that
//! would change nothing succeeds and any other is `EPERM`. The devices and
//! pipes the server provides have no stored attributes: changing them
//! succeeds and changes nothing (Linux changes their inodes, and programs
//! such as `touch /dev/null` expect success).

use alloc::string::String;

use kaal_client::file::{flags as vfs_flags, Attrs};
use linux_raw_sys::general as g;
use posix::errno::Errno;

use crate::files::{device, file_errno, Object, OpenRef};
use crate::process::Pid;
use crate::Server;

type R = Result<u64, Errno>;

/// Where a file whose attributes change is named.
enum Target {
    /// A path (absolute), its final symbolic link followed or not.
    Path { path: String, follow: bool },
    /// An open file.
    Open(OpenRef),
}

/// A time a caller asked for, in seconds: the `timespec`'s or `timeval`'s
/// seconds; before the epoch is the epoch (the VFS keeps no sign).
fn seconds(secs: u64) -> u64 {
    if (secs as i64) < 0 {
        0
    } else {
        secs
    }
}

/// `-1` as a `uid_t`/`gid_t` argument: leave it.
const KEEP: u32 = u32::MAX;

impl Server {
    /// Seconds since the epoch now, as `time()` tells them.
    fn now_secs(&self) -> u64 {
        crate::syscall::EPOCH_AT_BOOT + self.uptime().as_secs()
    }

    /// The file `path` names relative to `dirfd`; an empty `path` with
    /// `AT_EMPTY_PATH` in `flags` is `dirfd` itself (the working
    /// directory for `AT_FDCWD`).
    fn target(&mut self, pid: Pid, dirfd: u64, path: u64, flags: u64) -> Result<Target, Errno> {
        let follow = flags & u64::from(g::AT_SYMLINK_NOFOLLOW) == 0;
        match self.user_path(pid, path) {
            Ok(p) => Ok(Target::Path {
                path: self.resolve(pid, dirfd, &p)?,
                follow,
            }),
            Err(Errno::ENOENT) if flags & u64::from(g::AT_EMPTY_PATH) != 0 => {
                if dirfd as i32 == g::AT_FDCWD {
                    let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
                    return Ok(Target::Path {
                        path: p.cwd.clone(),
                        follow,
                    });
                }
                Ok(Target::Open(self.file(pid, dirfd)?))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets `attrs` on `target` through the VFS.
    fn set_attrs(&mut self, target: Target, attrs: Attrs) -> R {
        let result = match target {
            Target::Path { path, .. } if device(&path).is_some() => Ok(()),
            Target::Path { path, follow } => self.files.setattr(&path, follow, attrs),
            Target::Open(f) => {
                let vfd = match &f.borrow().object {
                    Object::Vfs { fd, .. } => *fd,
                    _ => return Ok(0),
                };
                self.files.fsetattr(vfd, attrs)
            }
        };
        result.map_err(file_errno)?;
        Ok(0)
    }

    // ---- modes -------------------------------------------------------------

    /// `fchmodat2` (and `chmod`, `fchmodat` with `flags` 0): only the
    /// permission bits of `mode` count, as Linux takes them. A symbolic
    /// link's own mode (`AT_SYMLINK_NOFOLLOW`) is `EOPNOTSUPP`, as Linux.
    pub(crate) fn fchmodat(&mut self, pid: Pid, dirfd: u64, path: u64, mode: u64, flags: u64) -> R {
        let known = u64::from(g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.target(pid, dirfd, path, flags)?;
        let attrs = Attrs {
            mode: Some((mode & 0o7777) as u16),
            ..Attrs::default()
        };
        self.set_attrs(target, attrs)
    }

    pub(crate) fn fchmod(&mut self, pid: Pid, fd: u64, mode: u64) -> R {
        let f = self.file(pid, fd)?;
        let attrs = Attrs {
            mode: Some((mode & 0o7777) as u16),
            ..Attrs::default()
        };
        self.set_attrs(Target::Open(f), attrs)
    }

    // ---- times -------------------------------------------------------------

    /// `utimensat`: `times` NULL is now for both; each `timespec` may be
    /// `UTIME_NOW` or `UTIME_OMIT`; a NULL `path` with a descriptor is
    /// `futimens`. `AT_SYMLINK_NOFOLLOW` sets a link's own times.
    pub(crate) fn utimensat(
        &mut self,
        pid: Pid,
        dirfd: u64,
        path: u64,
        times: u64,
        flags: u64,
    ) -> R {
        let now = self.now_secs();
        let (atime, mtime) = if times == 0 {
            (Some(now), Some(now))
        } else {
            let words: [u64; 4] = self.user_words(pid, times)?;
            let word = |i: usize| words.get(i).copied().unwrap_or(0);
            let (a, m) = ((word(0), word(1)), (word(2), word(3)));
            let omit = u64::from(g::UTIME_OMIT);
            // Nothing to do: Linux does not even look at the path.
            if a.1 == omit && m.1 == omit {
                return Ok(0);
            }
            let time = |(secs, nsec): (u64, u64)| match nsec {
                n if n == u64::from(g::UTIME_NOW) => Ok(Some(now)),
                n if n == omit => Ok(None),
                n if n < 1_000_000_000 => Ok(Some(seconds(secs))),
                _ => Err(Errno::EINVAL),
            };
            (time(a)?, time(m)?)
        };
        let attrs = Attrs {
            mode: None,
            atime,
            mtime,
        };
        if path == 0 {
            // futimens: a descriptor, and no flags.
            if dirfd as i32 == g::AT_FDCWD {
                return Err(Errno::EFAULT);
            }
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            let f = self.file(pid, dirfd)?;
            return self.set_attrs(Target::Open(f), attrs);
        }
        let known = u64::from(g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.target(pid, dirfd, path, flags)?;
        self.set_attrs(target, attrs)
    }

    /// `futimesat` and `utimes`: two `timeval`s, or now for both.
    pub(crate) fn futimesat(&mut self, pid: Pid, dirfd: u64, path: u64, times: u64) -> R {
        let (atime, mtime) = if times == 0 {
            let now = self.now_secs();
            (now, now)
        } else {
            let words: [u64; 4] = self.user_words(pid, times)?;
            let word = |i: usize| words.get(i).copied().unwrap_or(0);
            if word(1) >= 1_000_000 || word(3) >= 1_000_000 {
                return Err(Errno::EINVAL);
            }
            (seconds(word(0)), seconds(word(2)))
        };
        let attrs = Attrs {
            mode: None,
            atime: Some(atime),
            mtime: Some(mtime),
        };
        if path == 0 && dirfd as i32 != g::AT_FDCWD {
            let f = self.file(pid, dirfd)?;
            return self.set_attrs(Target::Open(f), attrs);
        }
        let target = self.target(pid, dirfd, path, 0)?;
        self.set_attrs(target, attrs)
    }

    /// `utime`: a `utimbuf` (access, modification seconds), or now.
    pub(crate) fn utime(&mut self, pid: Pid, path: u64, times: u64) -> R {
        let (atime, mtime) = if times == 0 {
            let now = self.now_secs();
            (now, now)
        } else {
            let mut raw = [0u8; 16];
            self.user_read(pid, times, &mut raw)?;
            let (a, m) = raw.split_at(8);
            let secs = |b: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
                seconds(u64::from_le_bytes(w))
            };
            (secs(a), secs(m))
        };
        let attrs = Attrs {
            mode: None,
            atime: Some(atime),
            mtime: Some(mtime),
        };
        let target = self.target(pid, g::AT_FDCWD as u64, path, 0)?;
        self.set_attrs(target, attrs)
    }

    // ---- sizes -------------------------------------------------------------

    /// `truncate`: the file `path` names (a final link followed), opened
    /// for writing only for this, sized, and closed.
    pub(crate) fn truncate_path(&mut self, pid: Pid, path: u64, size: u64) -> R {
        let p = self.user_path(pid, path)?;
        let path = self.resolve(pid, g::AT_FDCWD as u64, &p)?;
        if (size as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        if device(&path).is_some() {
            // Not a regular file (Linux: EINVAL for a device).
            return Err(Errno::EINVAL);
        }
        let fd = self
            .files
            .open(&path, vfs_flags::WRITE_ONLY, 0)
            .map_err(file_errno)?;
        // Opened by path, so its identity is asked for, when it matters.
        let result = self
            .files
            .truncate(fd, size)
            .map_err(file_errno)
            .and_then(|()| {
                if !self.shm.is_empty() {
                    let (id, _) = self.file_id(fd)?;
                    self.shm_truncated(id, size);
                }
                Ok(())
            });
        // The descriptor goes whatever happened; the first error is the one.
        let closed = self.files.close(fd);
        result.and(closed.map_err(file_errno))?;
        Ok(0)
    }

    // ---- owners ------------------------------------------------------------

    /// `fchownat` (and `chown`, `lchown`): succeeds when `uid` and `gid`
    /// are each -1 or the file's own, `EPERM` otherwise (see the module).
    pub(crate) fn fchownat(
        &mut self,
        pid: Pid,
        dirfd: u64,
        path: u64,
        uid: u64,
        gid: u64,
        flags: u64,
    ) -> R {
        let known = u64::from(g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.target(pid, dirfd, path, flags)?;
        self.chown_target(target, uid as u32, gid as u32)
    }

    pub(crate) fn fchown(&mut self, pid: Pid, fd: u64, uid: u64, gid: u64) -> R {
        let f = self.file(pid, fd)?;
        self.chown_target(Target::Open(f), uid as u32, gid as u32)
    }

    fn chown_target(&mut self, target: Target, uid: u32, gid: u32) -> R {
        let owner = match target {
            Target::Path { path, .. } if device(&path).is_some() => (0, 0),
            Target::Path { path, follow } => {
                let st = if follow {
                    self.files.stat(&path)
                } else {
                    self.files.lstat(&path)
                };
                st.map(|s| (s.uid, s.gid)).map_err(file_errno)?
            }
            Target::Open(f) => {
                let vfd = match &f.borrow().object {
                    Object::Vfs { fd, .. } => Some(*fd),
                    _ => None,
                };
                match vfd {
                    Some(fd) => self
                        .files
                        .fstat(fd)
                        .map(|s| (s.uid, s.gid))
                        .map_err(file_errno)?,
                    None => (0, 0),
                }
            }
        };
        let same = |asked: u32, has: u32| asked == KEEP || asked == has;
        if same(uid, owner.0) && same(gid, owner.1) {
            Ok(0)
        } else {
            Err(Errno::EPERM)
        }
    }
}
