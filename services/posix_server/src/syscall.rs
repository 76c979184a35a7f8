//! Linux system calls, by number: each reads its arguments from the
//! registers and user memory and answers with Linux's result or `-errno`.
//! A call that cannot complete yet (a sleep, a read of the console with
//! nothing typed) returns `Block`; the server parks it and runs it again
//! when something changes. Numbers not handled are `ENOSYS` and counted.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use kaal_client::file::{flags as vfs_flags, Fd};
use kaal_rt::time::Instant;
use linux_raw_sys::general as g;
use posix::abi::{self, Stat};
use posix::errno::Errno;
use posix::fd::fd_number;
use posix::pagecache::FileId;
use posix::regs::Regs;
use posix::vm::{Kind, MapFlags, Prot};

use crate::files::{self, device, device_stat, file_errno, open_ref, stat_of, Object, OpenRef};
use crate::process::Pid;
use crate::Server;

/// What a descriptor must be open for.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// The two-path operations.
#[derive(Clone, Copy)]
enum Two {
    Rename,
    Link,
}

/// What became of a call.
pub enum Outcome {
    /// Answer with these registers.
    Done(Regs),
    /// Park it; run it again later.
    Block(Regs),
    /// Answered with these registers, but a stop signal came: the answer
    /// is held until the process continues.
    Stopped(Regs, u32),
    /// The process is gone (it exited, or was killed for it).
    Gone,
}

type R = Result<u64, Errno>;

const AT_FDCWD: i32 = -100;
/// Longest path a process may pass.
const PATH_MAX: usize = 4096;
/// Most bytes one read or write moves (Linux: 0x7ffff000).
pub(crate) const IO_MAX: usize = 1 << 20;
/// Seconds since the epoch at boot: KaaL has no real-time clock driver yet,
/// so `CLOCK_REALTIME` starts at 2026-01-01 00:00 UTC (docs/posix.md).
pub(crate) use kaal_rt::time::EPOCH_AT_BOOT;

/// [`EPOCH_AT_BOOT`] in nanoseconds: the wall clock runs with the
/// monotonic one from there.
pub(crate) const EPOCH_NS: u64 = EPOCH_AT_BOOT * 1_000_000_000;

/// What Linux clock `clock` reads at boot, in nanoseconds.
fn clock_start(clock: u32) -> u64 {
    match clock {
        g::CLOCK_REALTIME | g::CLOCK_REALTIME_COARSE => EPOCH_NS,
        _ => 0,
    }
}
/// Pipes open at once in all processes (64 KiB of buffer each at most).
const MAX_PIPES: usize = 32;

/// The Linux error for a tty refusal (a background job's access stops
/// its group: see [`Server::tty_refused`]).
fn tty_errno(e: posix::tty::TtyError) -> Errno {
    match e {
        posix::tty::TtyError::Errno(n) => Errno(n),
        _ => Errno::EIO,
    }
}

fn ok<T: Into<u64>>(v: T) -> R {
    Ok(v.into())
}

impl Server {
    /// A system call of `pid`: answered now, parked, or the process ended.
    pub fn syscall(&mut self, pid: Pid, regs: Regs) {
        match self.run_syscall(pid, regs) {
            Outcome::Done(regs) => self.reply_now(&regs),
            Outcome::Block(regs) => self.block(pid, regs),
            Outcome::Stopped(regs, sig) => {
                if let Some(slot) = self.save_reply(pid) {
                    self.stop(pid, sig, crate::jobs::Stopped::Answered(regs, slot));
                }
            }
            Outcome::Gone => {}
        }
    }

    pub fn run_syscall(&mut self, pid: Pid, mut regs: Regs) -> Outcome {
        let (nr, a) = regs.syscall();
        let r = match nr as u32 {
            g::__NR_exit => return self.exit_thread(pid, ((a[0] & 0xff) << 8) as i32),
            g::__NR_exit_group => {
                self.end(pid, ((a[0] & 0xff) << 8) as i32);
                return Outcome::Gone;
            }
            g::__NR_read => self.read(pid, a[0], a[1], a[2]),
            g::__NR_write => self.write(pid, a[0], a[1], a[2]),
            g::__NR_readv => self.readv(pid, a[0], a[1], a[2]),
            g::__NR_writev => self.writev(pid, a[0], a[1], a[2]),
            g::__NR_pread64 => self.pread(pid, a[0], a[1], a[2], a[3]),
            g::__NR_open => self.openat(pid, AT_FDCWD as u64, a[0], a[1], a[2]),
            g::__NR_openat => self.openat(pid, a[0], a[1], a[2], a[3]),
            g::__NR_close => self.close(pid, a[0]),
            g::__NR_lseek => self.lseek(pid, a[0], a[1], a[2]),
            g::__NR_fstat => self.fstat(pid, a[0], a[1]),
            g::__NR_stat => self.fstatat(pid, AT_FDCWD as u64, a[0], a[1], 0),
            g::__NR_lstat => self.fstatat(
                pid,
                AT_FDCWD as u64,
                a[0],
                a[1],
                u64::from(g::AT_SYMLINK_NOFOLLOW),
            ),
            g::__NR_newfstatat => self.fstatat(pid, a[0], a[1], a[2], a[3]),
            g::__NR_access => self.faccessat(pid, AT_FDCWD as u64, a[0]),
            g::__NR_faccessat | g::__NR_faccessat2 => self.faccessat(pid, a[0], a[1]),
            g::__NR_getdents64 => self.getdents64(pid, a[0], a[1], a[2]),
            g::__NR_dup => self.dup(pid, a[0]),
            g::__NR_dup2 => self.dup3(pid, a[0], a[1], 0, true),
            g::__NR_dup3 => self.dup3(pid, a[0], a[1], a[2], false),
            g::__NR_fcntl => self.fcntl(pid, a[0], a[1], a[2]),
            g::__NR_ioctl => self.ioctl(pid, a[0], a[1], a[2]),
            g::__NR_getcwd => self.getcwd(pid, a[0], a[1]),
            g::__NR_chdir => self.chdir(pid, a[0]),
            g::__NR_mkdir => {
                let mode = self.creation_mode(pid, a[1]);
                self.path_op(pid, AT_FDCWD as u64, a[0], |s, p| s.files.mkdir(p, mode))
            }
            g::__NR_mkdirat => {
                let mode = self.creation_mode(pid, a[2]);
                self.path_op(pid, a[0], a[1], |s, p| s.files.mkdir(p, mode))
            }
            g::__NR_rmdir => self.path_op(pid, AT_FDCWD as u64, a[0], |s, p| s.files.rmdir(p)),
            g::__NR_unlink => self.path_op(pid, AT_FDCWD as u64, a[0], |s, p| s.files.unlink(p)),
            g::__NR_unlinkat => {
                if a[2] & u64::from(g::AT_REMOVEDIR) != 0 {
                    self.path_op(pid, a[0], a[1], |s, p| s.files.rmdir(p))
                } else {
                    self.path_op(pid, a[0], a[1], |s, p| s.files.unlink(p))
                }
            }
            g::__NR_rename => self.two_paths(
                pid,
                AT_FDCWD as u64,
                a[0],
                AT_FDCWD as u64,
                a[1],
                Two::Rename,
            ),
            g::__NR_renameat => self.two_paths(pid, a[0], a[1], a[2], a[3], Two::Rename),
            g::__NR_renameat2 if a[4] == 0 => {
                self.two_paths(pid, a[0], a[1], a[2], a[3], Two::Rename)
            }
            g::__NR_renameat2 => Err(Errno::EINVAL),
            g::__NR_link => {
                self.two_paths(pid, AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1], Two::Link)
            }
            g::__NR_linkat => self.two_paths(pid, a[0], a[1], a[2], a[3], Two::Link),
            g::__NR_symlink => self.symlinkat(pid, a[0], AT_FDCWD as u64, a[1]),
            g::__NR_symlinkat => self.symlinkat(pid, a[0], a[1], a[2]),
            g::__NR_ftruncate => self.ftruncate(pid, a[0], a[1]),
            g::__NR_truncate => self.truncate_path(pid, a[0], a[1]),
            g::__NR_chmod => self.fchmodat(pid, AT_FDCWD as u64, a[0], a[1], 0),
            g::__NR_fchmod => self.fchmod(pid, a[0], a[1]),
            // The kernel's fchmodat has no flags argument; fchmodat2 has.
            g::__NR_fchmodat => self.fchmodat(pid, a[0], a[1], a[2], 0),
            g::__NR_fchmodat2 => self.fchmodat(pid, a[0], a[1], a[2], a[3]),
            g::__NR_utimensat => self.utimensat(pid, a[0], a[1], a[2], a[3]),
            g::__NR_utimes => self.futimesat(pid, AT_FDCWD as u64, a[0], a[1]),
            g::__NR_futimesat => self.futimesat(pid, a[0], a[1], a[2]),
            g::__NR_utime => self.utime(pid, a[0], a[1]),
            g::__NR_chown => self.fchownat(pid, AT_FDCWD as u64, a[0], a[1], a[2], 0),
            g::__NR_lchown => {
                let nofollow = u64::from(g::AT_SYMLINK_NOFOLLOW);
                self.fchownat(pid, AT_FDCWD as u64, a[0], a[1], a[2], nofollow)
            }
            g::__NR_fchown => self.fchown(pid, a[0], a[1], a[2]),
            g::__NR_fchownat => self.fchownat(pid, a[0], a[1], a[2], a[3], a[4]),
            g::__NR_fsync | g::__NR_fdatasync => self.fsync(pid, a[0]),
            g::__NR_sync => self.sync(),
            g::__NR_fchdir => self.fchdir(pid, a[0]),
            g::__NR_pwrite64 => self.pwrite(pid, a[0], a[1], a[2], a[3]),
            g::__NR_readlink => self.readlinkat(pid, AT_FDCWD as u64, a[0], a[1], a[2]),
            g::__NR_readlinkat => self.readlinkat(pid, a[0], a[1], a[2], a[3]),
            g::__NR_umask => {
                let p = self.procs.get_mut(&pid);
                p.map(|p| core::mem::replace(&mut p.umask, (a[0] & 0o777) as u32))
                    .map_or(Err(Errno::ESRCH), ok)
            }
            g::__NR_brk => self.brk(pid, a[0]),
            g::__NR_mmap => self.mmap(pid, a[0], a[1], a[2], a[3], a[4], a[5]),
            g::__NR_munmap => self.munmap(pid, a[0], a[1]),
            g::__NR_mremap => self.mremap(pid, a[0], a[1], a[2], a[3], a[4]),
            g::__NR_mprotect => self.mprotect(pid, a[0], a[1], a[2]),
            g::__NR_madvise => Ok(0),
            g::__NR_msync => self.msync(pid, a[0], a[1], a[2]),
            g::__NR_arch_prctl => self.arch_prctl(pid, a[0], a[1]),
            g::__NR_set_tid_address => self.set_tid_address(pid, a[0]),
            g::__NR_set_robust_list => Ok(0),
            g::__NR_rt_sigaction => {
                let r = self.with_signals(pid, |s, m| s.rt_sigaction(a[0], a[1], a[2], a[3], m));
                if matches!(r, Ok(Ok(_))) {
                    self.drop_ignored(pid);
                }
                r.and_then(|r| r.map(|_| 0))
            }
            g::__NR_rt_sigprocmask => self
                .with_signals(pid, |s, m| s.rt_sigprocmask(a[0], a[1], a[2], a[3], m))
                .and_then(|r| r.map(|_| 0)),
            g::__NR_rt_sigpending => self
                .with_signals(pid, |s, m| s.rt_sigpending(a[0], a[1], m))
                .and_then(|r| r.map(|_| 0)),
            g::__NR_sigaltstack => {
                let sp = regs.rsp;
                self.with_signals(pid, |s, m| s.sigaltstack(a[0], a[1], sp, m))
                    .and_then(|r| r.map(|_| 0))
            }
            g::__NR_rt_sigreturn => {
                let r = self.with_signals(pid, |s, m| posix::signal::sigreturn(&mut regs, m, s));
                return match r {
                    Ok(Ok(())) => self.after_call(pid, regs),
                    _ => {
                        self.kill_by_signal(pid, g::SIGSEGV);
                        Outcome::Gone
                    }
                };
            }
            g::__NR_getpid => ok(pid),
            g::__NR_gettid => ok(self.tid_of(pid)),
            g::__NR_getppid => self
                .procs
                .get(&pid)
                .map_or(Err(Errno::ESRCH), |p| ok(p.ppid)),
            g::__NR_getpgrp => self
                .procs
                .get(&pid)
                .map_or(Err(Errno::ESRCH), |p| ok(p.pgid)),
            g::__NR_getuid | g::__NR_geteuid | g::__NR_getgid | g::__NR_getegid => Ok(0),
            g::__NR_uname => self.uname(pid, a[0]),
            g::__NR_clock_gettime => self.clock_gettime(pid, a[0], a[1]),
            g::__NR_clock_getres => self.clock_getres(pid, a[1]),
            g::__NR_gettimeofday => self.gettimeofday(pid, a[0]),
            g::__NR_time => self.time(pid, a[0]),
            g::__NR_nanosleep => self.sleep(pid, a[0], false, 0),
            g::__NR_clock_nanosleep => self.sleep(pid, a[2], a[1] & 1 != 0, a[0]),
            g::__NR_sched_yield => Ok(0),
            // Waits until a signal ends it (`interrupt`: EINTR).
            g::__NR_pause => Err(self.wait(pid, None)),
            g::__NR_rt_sigsuspend => self.sigsuspend(pid, a[0], a[1]),
            g::__NR_rt_sigtimedwait => self.sigtimedwait(pid, a[0], a[1], a[2], a[3]),
            g::__NR_reboot => self.reboot(a[0], a[1], a[2]),
            g::__NR_sysinfo => self.sysinfo(pid, a[0]),
            g::__NR_getrandom => self.getrandom(pid, a[0], a[1]),
            g::__NR_prlimit64 => self.prlimit(pid, a[1], a[3]),
            g::__NR_getrlimit => self.prlimit(pid, a[0], a[1]),
            g::__NR_poll => self.poll(pid, a[0], a[1], a[2] as i32 as i64),
            g::__NR_ppoll => self.ppoll(pid, a[0], a[1], a[2], a[3], a[4]),
            g::__NR_select => self.select(pid, a[0], [a[1], a[2], a[3]], a[4], false),
            g::__NR_pselect6 => self.pselect6(pid, a[0], [a[1], a[2], a[3]], a[4], a[5]),
            g::__NR_futex => self.futex(pid, a),
            g::__NR_sched_getaffinity => self.sched_getaffinity(pid, a[1], a[2]),
            g::__NR_clone => {
                // x86_64: clone(flags, stack, parent_tid, child_tid, tls).
                return self.clone_call(pid, regs, a[0], a[1], a[2], a[3], a[4]);
            }
            g::__NR_fork => return self.clone_call(pid, regs, u64::from(g::SIGCHLD), 0, 0, 0, 0),
            g::__NR_vfork => {
                return self.clone_call(pid, regs, 0x4100 | u64::from(g::SIGCHLD), 0, 0, 0, 0)
            }
            g::__NR_execve | g::__NR_execveat => {
                let r = if nr as u32 == g::__NR_execve {
                    self.execve_call(pid, AT_FDCWD as u64, a[0], a[1], a[2])
                } else {
                    self.execve_call(pid, a[0], a[1], a[2], a[3])
                };
                match r {
                    // The old image is gone: nothing answers it.
                    Ok(_) => return Outcome::Gone,
                    Err(e) => Err(e),
                }
            }
            g::__NR_wait4 => self.wait4(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            g::__NR_kill => self.kill(pid, a[0] as i32 as i64, a[1]),
            g::__NR_tkill => self.tkill(pid, None, a[0] as u32, a[1]),
            g::__NR_tgkill => self.tkill(pid, Some(a[0] as u32), a[1] as u32, a[2]),
            g::__NR_pipe => self.pipe2(pid, a[0], 0),
            g::__NR_pipe2 => self.pipe2(pid, a[0], a[1]),
            g::__NR_setpgid => self.setpgid(pid, a[0], a[1]),
            g::__NR_getpgid => self.getpgid(pid, a[0]),
            g::__NR_setsid => self.setsid(pid),
            g::__NR_getsid => self.getsid(pid, a[0]),
            g::__NR_sendfile => self.sendfile(pid, a[0], a[1], a[2], a[3]),
            g::__NR_prctl => self.prctl(pid, a[0], a[1]),
            g::__NR_alarm => self.alarm(pid, a[0]),
            g::__NR_setitimer => self.setitimer(pid, a[0], a[1], a[2]),
            g::__NR_getitimer => self.getitimer(pid, a[0], a[1]),
            g::__NR_eventfd => self.eventfd2(pid, a[0], 0),
            g::__NR_eventfd2 => self.eventfd2(pid, a[0], a[1]),
            g::__NR_timerfd_create => self.timerfd_create(pid, a[0], a[1]),
            g::__NR_timerfd_settime => self.timerfd_settime(pid, a[0], a[1], a[2], a[3]),
            g::__NR_timerfd_gettime => self.timerfd_gettime(pid, a[0], a[1]),
            g::__NR_epoll_create => self.epoll_create(pid, a[0]),
            g::__NR_epoll_create1 => self.epoll_create1(pid, a[0]),
            g::__NR_epoll_ctl => self.epoll_ctl(pid, a[0], a[1], a[2], a[3]),
            g::__NR_epoll_wait => self.epoll_wait(pid, a[0], a[1], a[2], a[3]),
            g::__NR_epoll_pwait => self.epoll_pwait(pid, a),
            g::__NR_epoll_pwait2 => self.epoll_pwait2(pid, a),
            // Not counted as missing: the C libraries fall back (glibc's
            // clone3 to clone, rseq to none, statx to fstatat).
            g::__NR_rseq | g::__NR_statx | g::__NR_clone3 => Err(Errno::ENOSYS),
            g::__NR_socket
            | g::__NR_socketpair
            | g::__NR_bind
            | g::__NR_listen
            | g::__NR_accept
            | g::__NR_accept4
            | g::__NR_connect
            | g::__NR_sendto
            | g::__NR_recvfrom
            | g::__NR_sendmsg
            | g::__NR_recvmsg
            | g::__NR_shutdown
            | g::__NR_getsockname
            | g::__NR_getpeername
            | g::__NR_setsockopt
            | g::__NR_getsockopt => self.socket_call(pid, nr as u32, a),
            _ => {
                *self.missing.entry(nr).or_insert(0) += 1;
                Err(Errno::ENOSYS)
            }
        };
        if self.strace {
            kaal_rt::println!(
                "posix: [{pid}] {nr}({:#x}, {:#x}, {:#x}, {:#x}) = {r:?}",
                a[0],
                a[1],
                a[2],
                a[3]
            );
        }
        match r {
            Err(Errno::EAGAIN) if self.would_block(pid) => Outcome::Block(regs),
            // Answered unfinished: the call runs again when the process
            // goes on (after the stop the signal sent it, or its handler).
            Err(Errno::ERESTARTSYS) => {
                let handler = self
                    .procs
                    .get(&pid)
                    .and_then(|p| p.signals.next_pending_action());
                if !posix::signal::restarts(posix::signal::Restart::Sys, handler.as_ref()) {
                    regs.finish(Errno::EINTR.ret());
                }
                self.after_call(pid, regs)
            }
            r => {
                if !self.procs.contains_key(&pid) {
                    return Outcome::Gone;
                }
                regs.finish(match r {
                    Ok(v) => v,
                    Err(e) => e.ret(),
                });
                self.after_call(pid, regs)
            }
        }
    }

    /// True when the call just refused with `EAGAIN` is to wait instead
    /// (the process set a wait up for it).
    fn would_block(&mut self, pid: Pid) -> bool {
        self.procs.get_mut(&pid).is_some_and(|p| {
            let w = p.wait_now;
            p.wait_now = false;
            w
        })
    }

    /// Pipes with an end open anywhere.
    fn pipes(&self) -> usize {
        let mut seen: Vec<*const core::cell::RefCell<posix::pipe::Pipe>> = Vec::new();
        for p in self.procs.values() {
            for (_, f) in p.fds.iter() {
                if let Object::PipeRead(pipe) | Object::PipeWrite(pipe) = &f.borrow().object {
                    let ptr = alloc::rc::Rc::as_ptr(pipe);
                    if !seen.contains(&ptr) {
                        seen.push(ptr);
                    }
                }
            }
        }
        seen.len()
    }

    /// A new file's or folder's permissions: `mode` without the process's
    /// umask bits.
    fn creation_mode(&self, pid: Pid, mode: u64) -> u32 {
        let umask = self.procs.get(&pid).map_or(0o022, |p| p.umask);
        (mode as u32) & 0o7777 & !umask
    }

    /// For the process module: the call waits for something to change.
    pub fn wait_for(&mut self, pid: Pid) -> Errno {
        self.wait(pid, None)
    }

    /// `clone`, `fork`, `vfork`: the parent's answer is the child's pid
    /// (a thread's tid with `CLONE_THREAD`); a vfork parent's waits until
    /// the child has exec'd or ended.
    #[allow(clippy::too_many_arguments)]
    fn clone_call(
        &mut self,
        pid: Pid,
        mut regs: Regs,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
    ) -> Outcome {
        if flags & u64::from(g::CLONE_THREAD) != 0 {
            let r = self.clone_thread(pid, &regs, flags, stack, ptid, ctid, tls);
            regs.finish(r.map_or_else(|e| e.ret(), u64::from));
            return self.after_call(pid, regs);
        }
        match self.fork(pid, &regs, flags, stack, ptid, ctid) {
            Ok(child) => {
                if self.vfork_waiting(pid) {
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.vfork_child = Some(child);
                    }
                    return Outcome::Block(regs);
                }
                regs.finish(u64::from(child));
                Outcome::Done(regs)
            }
            Err(e) => {
                regs.finish(e.ret());
                Outcome::Done(regs)
            }
        }
    }

    /// The strings of a NULL-terminated pointer array (argv, envp).
    fn user_strings(&mut self, pid: Pid, mut at: u64) -> Result<Vec<String>, Errno> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        if at == 0 {
            return Ok(out);
        }
        loop {
            let ptr = self.user_u64(pid, at)?;
            if ptr == 0 {
                return Ok(out);
            }
            let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
            let s = p.space.read_cstr(&mut self.broker, ptr, 128 * 1024)?;
            bytes += s.len() + 1;
            if bytes > 256 * 1024 || out.len() >= 4096 {
                return Err(Errno::E2BIG);
            }
            out.push(String::from_utf8_lossy(&s).into_owned());
            at = at.checked_add(8).ok_or(Errno::EFAULT)?;
        }
    }

    fn execve_call(&mut self, pid: Pid, dirfd: u64, path: u64, argv: u64, envp: u64) -> R {
        let p = self.user_path(pid, path)?;
        let mut path = self.resolve(pid, dirfd, &p)?;
        if path == "/proc/self/exe" {
            path = self
                .procs
                .get(&pid)
                .map(|p| p.exe.clone())
                .ok_or(Errno::ESRCH)?;
        }
        let argv = self.user_strings(pid, argv)?;
        let envp = self.user_strings(pid, envp)?;
        self.execve(pid, &path, &argv, &envp)?;
        Ok(0)
    }

    fn pipe2(&mut self, pid: Pid, fds: u64, flags: u64) -> R {
        // Each pipe may hold 64 KiB of the server's heap: a bound on them
        // all keeps a process that opens and fills many from exhausting it.
        if self.pipes() >= MAX_PIPES {
            return Err(Errno::ENFILE);
        }
        let flags = flags as u32;
        if flags & !(g::O_CLOEXEC | g::O_NONBLOCK | g::O_DIRECT) != 0 {
            return Err(Errno::EINVAL);
        }
        let pipe = alloc::rc::Rc::new(core::cell::RefCell::new(posix::pipe::Pipe::new()));
        let cloexec = flags & g::O_CLOEXEC != 0;
        let nb = flags & g::O_NONBLOCK;
        let r = open_ref(Object::PipeRead(pipe.clone()), g::O_RDONLY | nb);
        let w = open_ref(Object::PipeWrite(pipe), g::O_WRONLY | nb);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let rfd = p.fds.insert(r, cloexec)?;
        let wfd = match p.fds.insert(w, cloexec) {
            Ok(n) => n,
            Err(e) => {
                if let Ok(f) = p.fds.close(rfd) {
                    self.release(f);
                }
                return Err(e);
            }
        };
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&rfd.to_le_bytes());
        b[4..].copy_from_slice(&wfd.to_le_bytes());
        if let Err(e) = self.user_write(pid, fds, &b) {
            let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
            let fs: Vec<OpenRef> = [rfd, wfd]
                .iter()
                .filter_map(|&f| p.fds.close(f).ok())
                .collect();
            for f in fs {
                self.release(f);
            }
            return Err(e);
        }
        Ok(0)
    }

    fn setpgid(&mut self, pid: Pid, target: u64, pgid: u64) -> R {
        let target = if target == 0 { pid } else { target as Pid };
        let pgid = if pgid == 0 { target } else { pgid as Pid };
        let sid = self.procs.get(&pid).map(|p| p.sid).ok_or(Errno::ESRCH)?;
        let t = self.procs.get(&target).ok_or(Errno::ESRCH)?;
        if target != pid && t.ppid != pid {
            return Err(Errno::ESRCH);
        }
        if t.sid != sid || t.pid == t.sid {
            return Err(Errno::EPERM);
        }
        // Joining a group: it must exist in the same session.
        if pgid != target && !self.procs.values().any(|p| p.pgid == pgid && p.sid == sid) {
            return Err(Errno::EPERM);
        }
        if let Some(t) = self.procs.get_mut(&target) {
            t.pgid = pgid;
        }
        Ok(0)
    }

    fn getpgid(&mut self, pid: Pid, target: u64) -> R {
        let target = if target == 0 { pid } else { target as Pid };
        self.procs
            .get(&target)
            .map(|p| u64::from(p.pgid))
            .ok_or(Errno::ESRCH)
    }

    fn getsid(&mut self, pid: Pid, target: u64) -> R {
        let target = if target == 0 { pid } else { target as Pid };
        self.procs
            .get(&target)
            .map(|p| u64::from(p.sid))
            .ok_or(Errno::ESRCH)
    }

    fn setsid(&mut self, pid: Pid) -> R {
        if self.procs.values().any(|p| p.pgid == pid) {
            return Err(Errno::EPERM);
        }
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.sid = pid;
        p.pgid = pid;
        Ok(u64::from(pid))
    }

    /// `sendfile`: copies from `in_fd`, a VFS file (at `*offset` when
    /// given, else at and past its offset), to `out_fd`, at most 64 KiB at
    /// a time; what `out_fd` did not take is left unread.
    fn sendfile(&mut self, pid: Pid, out_fd: u64, in_fd: u64, offset: u64, count: u64) -> R {
        let fin = self.file(pid, in_fd)?;
        let fout = self.file(pid, out_fd)?;
        if !Self::writable(&fout) {
            return Err(Errno::EBADF);
        }
        let (vfd, id) = Self::vfs_file(&fin, Access::Read, Errno::EINVAL)?;
        let start = if offset != 0 {
            self.user_u64(pid, offset)?
        } else {
            self.files
                .seek(vfd, 0, kaal_client::file::whence::CURRENT)
                .map_err(file_errno)?
        };
        self.shm_before_read(id)?;
        let mut buf = alloc::vec![0u8; (count as usize).min(64 * 1024)];
        let moved = self.at_offset(vfd, start, |s| {
            let n = s.files.read(vfd, &mut buf).map_err(file_errno)?;
            match buf.get(..n).filter(|b| !b.is_empty()) {
                Some(data) => s.write_file(pid, &fout, data),
                None => Ok(0),
            }
        })?;
        if offset != 0 {
            self.user_write(pid, offset, &(start + moved).to_le_bytes())?;
        } else {
            // Without `offset`, the file's own offset moves past what was
            // written (and no further).
            let _ = self
                .files
                .seek(vfd, (start + moved) as i64, kaal_client::file::whence::SET);
        }
        Ok(moved)
    }

    /// Marks the current call of `pid` as one that waits (then `EAGAIN`
    /// parks it) until `deadline` if any.
    pub(crate) fn wait(&mut self, pid: Pid, deadline: Option<Instant>) -> Errno {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.wait_now = true;
            if deadline.is_some() {
                p.deadline = deadline;
            }
        }
        Errno::EAGAIN
    }

    /// A socket call: by the domain for `socket`, else by what the
    /// descriptor is, to the AF_UNIX calls (`unix.rs`) or the others
    /// (`inet.rs`).
    fn socket_call(&mut self, pid: Pid, nr: u32, a: [u64; 6]) -> R {
        let [a0, a1, a2, a3, ..] = a;
        match nr {
            g::__NR_socket if a0 == u64::from(linux_raw_sys::net::AF_UNIX) => {
                self.unix_socket(pid, a1, a2)
            }
            g::__NR_socket => self.socket(pid, a0, a1, a2),
            g::__NR_socketpair => self.socketpair(pid, a0, a1, a2, a3),
            _ => {
                let f = self.file(pid, a0)?;
                let unix = matches!(f.borrow().object, Object::Unix(_));
                if unix {
                    self.unix_call(pid, &f, nr, a)
                } else {
                    self.inet_call(pid, &f, nr, a)
                }
            }
        }
    }

    // ---- user memory -----------------------------------------------------

    /// `len` bytes (at most [`IO_MAX`]) of the program's memory at `buf`:
    /// what a write or a send takes.
    pub(crate) fn user_bytes(&mut self, pid: Pid, buf: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let mut data = alloc::vec![0u8; (len as usize).min(IO_MAX)];
        self.user_read(pid, buf, &mut data)?;
        Ok(data)
    }

    /// Runs `recv` on a buffer of `len` bytes (at most [`IO_MAX`]) and
    /// copies the bytes it took to the program's `buf`: a read or a
    /// receive.
    pub(crate) fn recv_to_user(
        &mut self,
        pid: Pid,
        buf: u64,
        len: u64,
        recv: impl FnOnce(&mut Server, &mut [u8]) -> R,
    ) -> R {
        let mut out = alloc::vec![0u8; (len as usize).min(IO_MAX)];
        let n = recv(self, &mut out)?;
        self.user_write(pid, buf, out.get(..n as usize).unwrap_or(&[]))?;
        Ok(n)
    }

    pub(crate) fn user_read(&mut self, pid: Pid, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
        self.shm_touch(pid, addr, out.len());
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.space.read(&mut self.broker, addr, out)
    }

    pub fn user_write(&mut self, pid: Pid, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.shm_touch(pid, addr, data.len());
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.space.write(&mut self.broker, addr, data)
    }

    pub(crate) fn user_u64(&mut self, pid: Pid, addr: u64) -> Result<u64, Errno> {
        let [w] = self.user_words(pid, addr)?;
        Ok(w)
    }

    /// `N` consecutive 64-bit words of user memory (a pair of `timespec`s,
    /// an `itimerval`...).
    pub(crate) fn user_words<const N: usize>(
        &mut self,
        pid: Pid,
        addr: u64,
    ) -> Result<[u64; N], Errno> {
        // One copy from the program's memory, not one per word.
        let mut b = alloc::vec![0u8; N * 8];
        self.user_read(pid, addr, &mut b)?;
        let mut words = [0u64; N];
        for (w, c) in words.iter_mut().zip(b.chunks_exact(8)) {
            let mut one = [0u8; 8];
            one.copy_from_slice(c);
            *w = u64::from_le_bytes(one);
        }
        Ok(words)
    }

    pub(crate) fn user_path(&mut self, pid: Pid, addr: u64) -> Result<String, Errno> {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let bytes = p.space.read_cstr(&mut self.broker, addr, PATH_MAX)?;
        if bytes.is_empty() {
            return Err(Errno::ENOENT);
        }
        String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
    }

    /// The absolute path of `path` relative to `dirfd` (or the cwd).
    pub(crate) fn resolve(&mut self, pid: Pid, dirfd: u64, path: &str) -> Result<String, Errno> {
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        if path.starts_with('/') {
            return Ok(String::from(path));
        }
        if dirfd as i32 == AT_FDCWD {
            return Ok(posix::path::join(&p.cwd, path));
        }
        let f = p.fds.get(fd_number(dirfd)?)?;
        let open = f.borrow();
        match &open.object {
            Object::Vfs {
                path: base,
                dir: true,
                ..
            } => Ok(posix::path::join(base, path)),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn file(&self, pid: Pid, fd: u64) -> Result<OpenRef, Errno> {
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        p.fds.get(fd_number(fd)?).cloned()
    }

    // ---- files -------------------------------------------------------------

    fn openat(&mut self, pid: Pid, dirfd: u64, path: u64, flags: u64, mode: u64) -> R {
        let path = self.user_path(pid, path)?;
        let path = self.resolve(pid, dirfd, &path)?;
        let flags = flags as u32;
        let cloexec = flags & g::O_CLOEXEC != 0;
        let object = if let Some(dev) = device(&path) {
            dev
        } else if path == "/proc/meminfo" {
            Object::Generated {
                data: self.meminfo(),
                pos: 0,
            }
        } else if path == "/proc/self/exe" {
            let exe = self
                .procs
                .get(&pid)
                .map(|p| p.exe.clone())
                .ok_or(Errno::ESRCH)?;
            return self.open_vfs(pid, &exe, flags & !g::O_CREAT, 0, cloexec);
        } else {
            let umask = self.procs.get(&pid).map_or(0o022, |p| p.umask);
            return self.open_vfs(pid, &path, flags, (mode as u32) & !umask & 0o7777, cloexec);
        };
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.fds
            .insert(open_ref(object, flags), cloexec)
            .map(u64::from)
    }

    fn open_vfs(&mut self, pid: Pid, path: &str, flags: u32, mode: u32, cloexec: bool) -> R {
        // The VFS takes Linux's flag bits for these.
        let known = vfs_flags::ACCESS
            | vfs_flags::CREATE
            | vfs_flags::EXCLUSIVE
            | vfs_flags::TRUNCATE
            | vfs_flags::APPEND
            | vfs_flags::DIRECTORY
            | vfs_flags::NO_FOLLOW;
        let fd = self
            .files
            .open(path, flags & known, mode)
            .map_err(file_errno)?;
        let st = match self.files.fstat(fd) {
            Ok(st) => st,
            Err(e) => {
                let _ = self.files.close(fd);
                return Err(file_errno(e));
            }
        };
        let id = (u64::from(st.dev), st.ino);
        if flags & vfs_flags::TRUNCATE != 0 {
            // As ftruncate: the shared pages past the new end go.
            self.shm_truncated(id, st.size);
        }
        let object = Object::Vfs {
            fd,
            id,
            path: String::from(path),
            dir: st.kind == kaal_protocols::file::kind::DIRECTORY,
            pending: Default::default(),
            given: 0,
        };
        let f = open_ref(object, flags);
        let Some(p) = self.procs.get_mut(&pid) else {
            self.release(f);
            return Err(Errno::ESRCH);
        };
        match p.fds.insert(f.clone(), cloexec) {
            Ok(n) => ok(n),
            Err(e) => {
                self.release(f);
                Err(e)
            }
        }
    }

    fn close(&mut self, pid: Pid, fd: u64) -> R {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let f = p.fds.close(fd_number(fd)?)?;
        self.release(f);
        Ok(0)
    }

    /// Reads up to `out.len()` bytes from open file `f`.
    fn read_file(&mut self, pid: Pid, f: &OpenRef, out: &mut [u8]) -> R {
        let open = f.borrow();
        match &open.object {
            Object::Vfs { fd, id, dir, .. } => {
                if *dir {
                    return Err(Errno::EISDIR);
                }
                let (fd, id) = (*fd, *id);
                drop(open);
                self.shm_before_read(id)?;
                self.files
                    .read(fd, out)
                    .map_err(file_errno)
                    .map(|n| n as u64)
            }
            Object::Tty => {
                drop(open);
                let caller = self.caller(pid)?;
                let checked = self.console.tty.check_read(&caller);
                self.tty_refused(pid, checked)?;
                self.console.poll_input_only();
                match self.console.tty.read(out) {
                    Ok(n) => ok(n as u64),
                    Err(posix::tty::ReadBlock::Input) => Err(self.wait(pid, None)),
                    Err(posix::tty::ReadBlock::InputOrTimeout { deciseconds }) => {
                        let d = Duration::from_millis(u64::from(deciseconds) * 100);
                        let set = self.procs.get(&pid).and_then(|p| p.deadline);
                        let at = set.unwrap_or_else(|| self.clock.after(Instant::now(), d));
                        let past = set.is_some_and(|dl| Instant::now().ticks() >= dl.ticks());
                        if past {
                            if let Some(p) = self.procs.get_mut(&pid) {
                                p.deadline = None;
                            }
                            return ok(self.console.tty.read_expired(out) as u64);
                        }
                        Err(self.wait(pid, Some(at)))
                    }
                }
            }
            Object::PipeRead(pipe) => {
                let nonblock = open.flags & g::O_NONBLOCK != 0;
                let r = pipe.borrow_mut().read(out);
                drop(open);
                match r {
                    Ok(n) => {
                        if n > 0 {
                            self.changed = true;
                        }
                        ok(n as u64)
                    }
                    Err(_) if nonblock => Err(Errno::EAGAIN),
                    Err(_) => Err(self.wait(pid, None)),
                }
            }
            Object::PipeWrite(_) => Err(Errno::EBADF),
            Object::EventFd(_) | Object::TimerFd(..) | Object::Epoll(_) => {
                drop(open);
                self.event_read(pid, f, out)
            }
            Object::Socket(_) => {
                drop(open);
                self.sock_recv(pid, f, out, 0).map(|(n, _)| n)
            }
            Object::Unix(_) => {
                drop(open);
                self.unix_recv(pid, f, out, 0)
            }
            Object::Generated { .. } => {
                drop(open);
                let mut open = f.borrow_mut();
                let Object::Generated { data, pos } = &mut open.object else {
                    return Ok(0);
                };
                let rest = data.get(*pos..).unwrap_or(&[]);
                let n = rest.len().min(out.len());
                if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                *pos += n;
                ok(n as u64)
            }
            Object::Null => Ok(0),
            Object::Zero => {
                out.fill(0);
                ok(out.len() as u64)
            }
            Object::Random => {
                self.random.fill(kaal_rt::rdtsc(), out);
                ok(out.len() as u64)
            }
        }
    }

    fn write_file(&mut self, pid: Pid, f: &OpenRef, data: &[u8]) -> R {
        let open = f.borrow();
        match &open.object {
            Object::Vfs { fd, id, dir, .. } => {
                if *dir {
                    return Err(Errno::EISDIR);
                }
                let (fd, id) = (*fd, *id);
                let append = open.flags & g::O_APPEND != 0;
                drop(open);
                if append {
                    self.files
                        .seek(fd, 0, kaal_client::file::whence::END)
                        .map_err(file_errno)?;
                }
                let n = self.files.write(fd, data).map_err(file_errno)?;
                self.shm_wrote(fd, id, data.get(..n).unwrap_or(&[]))?;
                ok(n as u64)
            }
            Object::Tty => {
                drop(open);
                let caller = self.caller(pid)?;
                let checked = self.console.tty.check_write(&caller);
                self.tty_refused(pid, checked)?;
                ok(self.console.write(data) as u64)
            }
            Object::PipeWrite(pipe) => {
                let nonblock = open.flags & g::O_NONBLOCK != 0;
                let r = pipe.borrow_mut().write(data);
                drop(open);
                match r {
                    Ok(n) => {
                        self.changed = true;
                        ok(n as u64)
                    }
                    Err(posix::pipe::PipeError::BrokenPipe) => {
                        self.signal(pid, g::SIGPIPE);
                        Err(Errno::EPIPE)
                    }
                    Err(_) if nonblock => Err(Errno::EAGAIN),
                    Err(_) => Err(self.wait(pid, None)),
                }
            }
            Object::Socket(_) => {
                drop(open);
                self.sock_send(pid, f, data, None, 0)
            }
            Object::Unix(_) => {
                drop(open);
                self.unix_send(pid, f, data, 0)
            }
            Object::PipeRead(_) | Object::Generated { .. } => Err(Errno::EBADF),
            Object::Null | Object::Zero | Object::Random => ok(data.len() as u64),
            Object::EventFd(_) | Object::TimerFd(..) | Object::Epoll(_) => {
                drop(open);
                self.event_write(pid, f, data)
            }
        }
    }

    /// The VFS descriptor and identity of `f`, a regular file the process
    /// opened for `access` (`EBADF` otherwise; `other` when it is not a
    /// VFS file).
    fn vfs_file(f: &OpenRef, access: Access, other: Errno) -> Result<(Fd, FileId), Errno> {
        let ok = match access {
            Access::Read => Self::readable(f),
            Access::Write => Self::writable(f),
        };
        if !ok {
            return Err(Errno::EBADF);
        }
        match &f.borrow().object {
            Object::Vfs {
                fd, id, dir: false, ..
            } => Ok((*fd, *id)),
            Object::Vfs { dir: true, .. } => Err(Errno::EISDIR),
            _ => Err(other),
        }
    }

    /// Runs `op` on VFS descriptor `vfd` at offset `off`, then puts its
    /// offset back where it was (pread, pwrite, mmap, sendfile).
    pub(crate) fn at_offset<T>(
        &mut self,
        vfd: Fd,
        off: u64,
        op: impl FnOnce(&mut Server) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        use kaal_client::file::whence;
        if (off as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        let was = self
            .files
            .seek(vfd, 0, whence::CURRENT)
            .map_err(file_errno)?;
        self.files
            .seek(vfd, off as i64, whence::SET)
            .map_err(file_errno)?;
        let r = op(self);
        let _ = self.files.seek(vfd, was as i64, whence::SET);
        r
    }

    fn readable(f: &OpenRef) -> bool {
        f.borrow().flags & g::O_ACCMODE != g::O_WRONLY
    }

    pub(crate) fn writable(f: &OpenRef) -> bool {
        f.borrow().flags & g::O_ACCMODE != g::O_RDONLY
    }

    fn read(&mut self, pid: Pid, fd: u64, buf: u64, len: u64) -> R {
        let f = self.file(pid, fd)?;
        if !Self::readable(&f) {
            return Err(Errno::EBADF);
        }
        self.recv_to_user(pid, buf, len, |s, out| s.read_file(pid, &f, out))
    }

    fn pread(&mut self, pid: Pid, fd: u64, buf: u64, len: u64, off: u64) -> R {
        let f = self.file(pid, fd)?;
        let (vfd, id) = Self::vfs_file(&f, Access::Read, Errno::ESPIPE)?;
        self.shm_before_read(id)?;
        let mut out = alloc::vec![0u8; (len as usize).min(IO_MAX)];
        let n = self.at_offset(vfd, off, |s| {
            s.files.read(vfd, &mut out).map_err(file_errno)
        })?;
        self.user_write(pid, buf, out.get(..n).unwrap_or(&[]))?;
        ok(n as u64)
    }

    fn write(&mut self, pid: Pid, fd: u64, buf: u64, len: u64) -> R {
        let f = self.file(pid, fd)?;
        if !Self::writable(&f) {
            return Err(Errno::EBADF);
        }
        let data = self.user_bytes(pid, buf, len)?;
        self.write_file(pid, &f, &data)
    }

    /// The (base, length) pairs of an iovec array.
    pub(crate) fn iovecs(
        &mut self,
        pid: Pid,
        iov: u64,
        count: u64,
    ) -> Result<Vec<(u64, u64)>, Errno> {
        if count > 1024 {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::new();
        for i in 0..count {
            let at = iov.checked_add(i * 16).ok_or(Errno::EFAULT)?;
            let base = self.user_u64(pid, at)?;
            let len = self.user_u64(pid, at + 8)?;
            out.push((base, len));
        }
        Ok(out)
    }

    /// The bytes of an iovec array, at most `IO_MAX`.
    pub(crate) fn gather(&mut self, pid: Pid, iov: u64, count: u64) -> Result<Vec<u8>, Errno> {
        let mut data = Vec::new();
        for (base, len) in self.iovecs(pid, iov, count)? {
            let start = data.len();
            let len = (len as usize).min(IO_MAX.saturating_sub(start));
            data.resize(start + len, 0);
            self.user_read(pid, base, data.get_mut(start..).unwrap_or(&mut []))?;
        }
        Ok(data)
    }

    /// Writes `data` over the iovecs in order, as far as it goes.
    pub(crate) fn scatter(
        &mut self,
        pid: Pid,
        vecs: &[(u64, u64)],
        data: &[u8],
    ) -> Result<(), Errno> {
        let mut done = 0usize;
        for &(base, len) in vecs {
            let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) else {
                break;
            };
            let k = (len as usize).min(rest.len());
            self.user_write(pid, base, rest.get(..k).unwrap_or(&[]))?;
            done += k;
        }
        Ok(())
    }

    fn writev(&mut self, pid: Pid, fd: u64, iov: u64, count: u64) -> R {
        let f = self.file(pid, fd)?;
        if !Self::writable(&f) {
            return Err(Errno::EBADF);
        }
        let data = self.gather(pid, iov, count)?;
        self.write_file(pid, &f, &data)
    }

    fn readv(&mut self, pid: Pid, fd: u64, iov: u64, count: u64) -> R {
        let f = self.file(pid, fd)?;
        if !Self::readable(&f) {
            return Err(Errno::EBADF);
        }
        let vecs = self.iovecs(pid, iov, count)?;
        let mut out = iov_buffer(&vecs);
        let n = self.read_file(pid, &f, &mut out)?;
        self.scatter(pid, &vecs, out.get(..n as usize).unwrap_or(&[]))?;
        ok(n)
    }

    fn lseek(&mut self, pid: Pid, fd: u64, off: u64, whence: u64) -> R {
        let f = self.file(pid, fd)?;
        let vfd = match &f.borrow().object {
            Object::Vfs { fd, .. } => *fd,
            Object::Tty
            | Object::PipeRead(_)
            | Object::PipeWrite(_)
            | Object::Socket(_)
            | Object::Unix(_) => return Err(Errno::ESPIPE),
            _ => return Ok(0),
        };
        if whence > 2 {
            return Err(Errno::EINVAL);
        }
        self.files
            .seek(vfd, off as i64, whence as u32)
            .map_err(file_errno)
    }

    fn stat_open(&mut self, f: &OpenRef) -> Result<Stat, Errno> {
        let open = f.borrow();
        match &open.object {
            Object::Vfs { fd, .. } => {
                let fd: Fd = *fd;
                drop(open);
                self.files
                    .fstat(fd)
                    .map(|s| stat_of(&s))
                    .map_err(file_errno)
            }
            Object::PipeRead(p) | Object::PipeWrite(p) => Ok(files::pipe_stat(p)),
            Object::EventFd(_) | Object::TimerFd(..) | Object::Epoll(_) => {
                Ok(files::anon_stat(&open.object))
            }
            Object::Socket(s) => Ok(crate::inet::sock_stat(s)),
            Object::Unix(u) => Ok(u.stat()),
            // procfs files have no size.
            Object::Generated { .. } => Ok(Stat {
                mode: posix::abi::mode::S_IFREG | 0o444,
                nlink: 1,
                blksize: 4096,
                ..Stat::default()
            }),
            other => Ok(device_stat(other)),
        }
    }

    fn fstat(&mut self, pid: Pid, fd: u64, buf: u64) -> R {
        let f = self.file(pid, fd)?;
        let st = self.stat_open(&f)?;
        self.user_write(pid, buf, &st.encode())?;
        Ok(0)
    }

    fn fstatat(&mut self, pid: Pid, dirfd: u64, path: u64, buf: u64, flags: u64) -> R {
        let empty_path = u64::from(g::AT_EMPTY_PATH);
        let p = {
            let pr = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
            pr.space.read_cstr(&mut self.broker, path, PATH_MAX)?
        };
        if p.is_empty() {
            if flags & empty_path != 0 {
                return self.fstat(pid, dirfd, buf);
            }
            return Err(Errno::ENOENT);
        }
        let p = String::from_utf8(p).map_err(|_| Errno::EINVAL)?;
        let path = self.resolve(pid, dirfd, &p)?;
        let st = if let Some(dev) = device(&path) {
            device_stat(&dev)
        } else if flags & u64::from(g::AT_SYMLINK_NOFOLLOW) != 0 {
            stat_of(&self.files.lstat(&path).map_err(file_errno)?)
        } else {
            stat_of(&self.files.stat(&path).map_err(file_errno)?)
        };
        self.user_write(pid, buf, &st.encode())?;
        Ok(0)
    }

    fn faccessat(&mut self, pid: Pid, dirfd: u64, path: u64) -> R {
        let p = self.user_path(pid, path)?;
        let path = self.resolve(pid, dirfd, &p)?;
        if device(&path).is_some() {
            return Ok(0);
        }
        // Every process runs as root: existing is enough.
        self.files.stat(&path).map_err(file_errno)?;
        Ok(0)
    }

    fn path_op(
        &mut self,
        pid: Pid,
        dirfd: u64,
        path: u64,
        op: impl FnOnce(&mut Server, &str) -> kaal_client::file::Result<()>,
    ) -> R {
        let p = self.user_path(pid, path)?;
        let path = self.resolve(pid, dirfd, &p)?;
        op(self, &path).map_err(file_errno)?;
        Ok(0)
    }

    /// `rename` and `link` with their `*at` forms: two paths, each
    /// relative to its own directory.
    fn two_paths(&mut self, pid: Pid, d1: u64, p1: u64, d2: u64, p2: u64, op: Two) -> R {
        let a = self.user_path(pid, p1)?;
        let a = self.resolve(pid, d1, &a)?;
        let b = self.user_path(pid, p2)?;
        let b = self.resolve(pid, d2, &b)?;
        match op {
            Two::Rename => self.files.rename(&a, &b),
            Two::Link => self.files.link(&a, &b),
        }
        .map_err(file_errno)?;
        Ok(0)
    }

    fn symlinkat(&mut self, pid: Pid, target: u64, dirfd: u64, path: u64) -> R {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let target = p.space.read_cstr(&mut self.broker, target, PATH_MAX)?;
        let target = String::from_utf8(target).map_err(|_| Errno::EINVAL)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let link = self.user_path(pid, path)?;
        let link = self.resolve(pid, dirfd, &link)?;
        self.files.symlink(&target, &link).map_err(file_errno)?;
        Ok(0)
    }

    fn ftruncate(&mut self, pid: Pid, fd: u64, size: u64) -> R {
        let f = self.file(pid, fd)?;
        let (vfd, id) = Self::vfs_file(&f, Access::Write, Errno::EINVAL)?;
        if (size as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        self.files.truncate(vfd, size).map_err(file_errno)?;
        self.shm_truncated(id, size);
        Ok(0)
    }

    fn fchdir(&mut self, pid: Pid, fd: u64) -> R {
        let f = self.file(pid, fd)?;
        let path = match &f.borrow().object {
            Object::Vfs {
                path, dir: true, ..
            } => path.clone(),
            _ => return Err(Errno::ENOTDIR),
        };
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.cwd = posix::path::normalize(&path);
        Ok(0)
    }

    fn pwrite(&mut self, pid: Pid, fd: u64, buf: u64, len: u64, off: u64) -> R {
        let f = self.file(pid, fd)?;
        let (vfd, id) = Self::vfs_file(&f, Access::Write, Errno::ESPIPE)?;
        let data = self.user_bytes(pid, buf, len)?;
        let n = self.at_offset(vfd, off, |s| {
            let n = s.files.write(vfd, &data).map_err(file_errno)?;
            s.shm_wrote(vfd, id, data.get(..n).unwrap_or(&[]))?;
            Ok(n)
        })?;
        ok(n as u64)
    }

    fn readlinkat(&mut self, pid: Pid, dirfd: u64, path: u64, buf: u64, len: u64) -> R {
        let p = self.user_path(pid, path)?;
        let path = self.resolve(pid, dirfd, &p)?;
        let target: Vec<u8> = if path == "/proc/self/exe" {
            self.procs
                .get(&pid)
                .map(|p| p.exe.clone().into_bytes())
                .ok_or(Errno::ESRCH)?
        } else {
            let mut scratch = alloc::vec![0u8; PATH_MAX];
            self.files
                .read_link(&path, &mut scratch)
                .map_err(file_errno)?
                .to_vec()
        };
        let n = target.len().min(len as usize);
        self.user_write(pid, buf, target.get(..n).unwrap_or(&[]))?;
        ok(n as u64)
    }

    fn getdents64(&mut self, pid: Pid, fd: u64, buf: u64, len: u64) -> R {
        let f = self.file(pid, fd)?;
        let room = (len as usize).min(IO_MAX);
        let mut out = Vec::new();
        loop {
            let mut open = f.borrow_mut();
            let Object::Vfs {
                fd: vfd,
                dir,
                pending,
                given,
                ..
            } = &mut open.object
            else {
                return Err(Errno::ENOTDIR);
            };
            if !*dir {
                return Err(Errno::ENOTDIR);
            }
            while let Some((ino, kind, name)) = pending.front() {
                let dtype = abi::dirent_type(
                    stat_of(&kaal_protocols::file::FileStat {
                        kind: *kind,
                        ..Default::default()
                    })
                    .mode,
                );
                if !abi::push_dirent64(&mut out, room, *ino, *given + 1, dtype, name) {
                    if out.is_empty() {
                        return Err(Errno::EINVAL);
                    }
                    break;
                }
                *given += 1;
                pending.pop_front();
            }
            if !pending.is_empty() || out.len() + 280 > room {
                break;
            }
            // Refill from the VFS: one batch of records.
            let vfd = *vfd;
            drop(open);
            let n = self
                .files
                .raw()
                .readdir(vfd.0, kaal_rpc::Lent::new(0, 4096))
                .map_err(|e| match e {
                    kaal_rpc::Error::App(e) => files::errno_of(e),
                    kaal_rpc::Error::Rpc(_) => Errno::EIO,
                })?;
            if n == 0 {
                break;
            }
            let mut got = alloc::vec![0u8; (n as usize).min(4096)];
            self.files
                .region()
                .read(0, &mut got)
                .map_err(|_| Errno::EIO)?;
            let mut open = f.borrow_mut();
            if let Object::Vfs { pending, .. } = &mut open.object {
                for rec in kaal_protocols::file::dir_records(&got) {
                    pending.push_back((rec.ino, rec.kind, rec.name.to_vec()));
                }
            }
        }
        self.user_write(pid, buf, &out)?;
        ok(out.len() as u64)
    }

    fn dup(&mut self, pid: Pid, fd: u64) -> R {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let f = p.fds.get(fd_number(fd)?)?.clone();
        p.fds.insert(f, false).map(u64::from)
    }

    fn dup3(&mut self, pid: Pid, old: u64, new: u64, flags: u64, dup2: bool) -> R {
        let (old, new) = (fd_number(old)?, fd_number(new)?);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if old == new {
            if dup2 {
                p.fds.get(old)?;
                return ok(new);
            }
            return Err(Errno::EINVAL);
        }
        if flags & !u64::from(g::O_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let replaced = p
            .fds
            .dup_to(old, new, flags & u64::from(g::O_CLOEXEC) != 0)?;
        if let Some(f) = replaced {
            self.release(f);
        }
        ok(new)
    }

    fn fcntl(&mut self, pid: Pid, fd: u64, cmd: u64, arg: u64) -> R {
        let n = fd_number(fd)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        match cmd as u32 {
            g::F_DUPFD | g::F_DUPFD_CLOEXEC => {
                let f = p.fds.get(n)?.clone();
                let min = u32::try_from(arg).map_err(|_| Errno::EINVAL)?;
                p.fds
                    .insert_from(min, f, cmd as u32 == g::F_DUPFD_CLOEXEC)
                    .map(u64::from)
            }
            g::F_GETFD => p
                .fds
                .cloexec(n)
                .map(|c| u64::from(c) * u64::from(g::FD_CLOEXEC)),
            g::F_SETFD => p
                .fds
                .set_cloexec(n, arg & u64::from(g::FD_CLOEXEC) != 0)
                .map(|_| 0),
            g::F_GETFL => p.fds.get(n).map(|f| u64::from(f.borrow().flags)),
            g::F_SETFL => {
                let f = p.fds.get(n)?;
                let settable = g::O_APPEND | g::O_NONBLOCK;
                let mut open = f.borrow_mut();
                open.flags = (open.flags & !settable) | (arg as u32 & settable);
                Ok(0)
            }
            g::F_GETLK | g::F_SETLK | g::F_SETLKW => {
                p.fds.get(n)?;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn ioctl(&mut self, pid: Pid, fd: u64, req: u64, arg: u64) -> R {
        let f = self.file(pid, fd)?;
        let req = req as u32;
        // Descriptor ioctls every file has.
        match req {
            linux_raw_sys::ioctl::FIOCLEX | linux_raw_sys::ioctl::FIONCLEX => {
                let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
                p.fds
                    .set_cloexec(fd_number(fd)?, req == linux_raw_sys::ioctl::FIOCLEX)?;
                return Ok(0);
            }
            linux_raw_sys::ioctl::FIONBIO => {
                let on = self.user_u64(pid, arg).map(|v| v as u32 != 0)?;
                let mut open = f.borrow_mut();
                if on {
                    open.flags |= g::O_NONBLOCK;
                } else {
                    open.flags &= !g::O_NONBLOCK;
                }
                return Ok(0);
            }
            _ => {}
        }
        if !matches!(f.borrow().object, Object::Tty) {
            return Err(Errno::ENOTTY);
        }
        let request = posix::tty::Ioctl::decode(req).map_err(Errno)?;
        let mut input = alloc::vec![0u8; request.copy_in_len()];
        if !input.is_empty() {
            self.user_read(pid, arg, &mut input)?;
        }
        let caller = self.caller(pid)?;
        let groups: Vec<(i32, i32)> = self
            .procs
            .values()
            .map(|p| (p.pgid as i32, p.sid as i32))
            .collect();
        let session = |g: i32| groups.iter().find(|(pg, _)| *pg == g).map(|&(_, s)| s);
        let done = match self
            .console
            .tty
            .ioctl(request, arg, &input, &caller, &session)
        {
            Ok(d) => d,
            Err(posix::tty::TtyError::WaitDrain) => {
                self.console.flush();
                return Err(self.wait(pid, None));
            }
            Err(e) => return self.tty_refused(pid, Err(e)),
        };
        self.console.flush();
        if !done.copy_out.is_empty() {
            self.user_write(pid, arg, &done.copy_out)?;
        }
        if let Some(sig) = done.effects.signal {
            self.tty_signal(sig.number());
        }
        Ok(0)
    }

    /// A tty refusal: a background job's access (`SIGTTIN`, `SIGTTOU`)
    /// stops the caller's process group and the call runs again when it
    /// continues; others are their errno.
    fn tty_refused(&mut self, pid: Pid, checked: Result<(), posix::tty::TtyError>) -> R {
        match checked {
            Ok(()) => Ok(0),
            Err(posix::tty::TtyError::Stop(sig)) => {
                let pgid = self.procs.get(&pid).map_or(pid, |p| p.pgid);
                for member in self.group(pgid) {
                    self.signal(member, sig);
                }
                Err(Errno::ERESTARTSYS)
            }
            Err(e) => Err(tty_errno(e)),
        }
    }

    /// What the tty needs to know of `pid` for job control.
    fn caller(&self, pid: Pid) -> Result<posix::tty::Caller, Errno> {
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let controlling = if self.console.tty.session() == Some(p.sid as i32) {
            posix::tty::Controlling::This
        } else {
            posix::tty::Controlling::None
        };
        Ok(posix::tty::Caller {
            pid: pid as i32,
            pgrp: p.pgid as i32,
            sid: p.sid as i32,
            controlling,
            sigttin_ignored: p.ignores(g::SIGTTIN),
            sigttou_ignored: p.ignores(g::SIGTTOU),
            orphaned: self.orphaned(p.pgid),
            privileged: true,
        })
    }

    /// A signal the tty raised (`SIGINT`, `SIGQUIT`, `SIGTSTP`, `SIGWINCH`)
    /// for its foreground process group.
    pub fn tty_signal(&mut self, sig: u32) {
        let Some(fg) = self.console.tty.foreground() else {
            return;
        };
        let Ok(fg) = Pid::try_from(fg) else {
            return;
        };
        for pid in self.group(fg) {
            self.signal(pid, sig);
        }
    }

    fn getcwd(&mut self, pid: Pid, buf: u64, len: u64) -> R {
        let mut cwd = self
            .procs
            .get(&pid)
            .map(|p| p.cwd.clone())
            .ok_or(Errno::ESRCH)?;
        cwd.push('\0');
        if cwd.len() as u64 > len {
            return Err(Errno::ERANGE);
        }
        self.user_write(pid, buf, cwd.as_bytes())?;
        ok(cwd.len() as u64)
    }

    fn chdir(&mut self, pid: Pid, path: u64) -> R {
        let p = self.user_path(pid, path)?;
        let path = self.resolve(pid, AT_FDCWD as u64, &p)?;
        let st = self.files.stat(&path).map_err(file_errno)?;
        if st.kind != kaal_protocols::file::kind::DIRECTORY {
            return Err(Errno::ENOTDIR);
        }
        let norm = posix::path::normalize(&path);
        if let Some(p) = self.procs.get_mut(&pid) {
            p.cwd = norm;
        }
        Ok(0)
    }

    // ---- memory ------------------------------------------------------------

    fn brk(&mut self, pid: Pid, new: u64) -> R {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (b, dropped) = p.space.layout.set_brk(new);
        p.space.drop_pages(&mut self.broker, &dropped);
        self.shm_collect();
        Ok(b)
    }

    #[allow(clippy::too_many_arguments)]
    fn mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        off: u64,
    ) -> R {
        let prot = Prot::from_bits(prot)?;
        if prot.write && prot.exec {
            return Err(Errno::EACCES);
        }
        let flags = flags as u32;
        let anon = flags & g::MAP_ANONYMOUS != 0;
        let shared = flags & g::MAP_SHARED != 0;
        if !off.is_multiple_of(posix::vm::PAGE) {
            return Err(Errno::EINVAL);
        }
        // A file mapping: a VFS file, checked before anything changes.
        let file = if anon {
            None
        } else {
            let f = self.file(pid, fd)?;
            let (vfd, id) = Self::vfs_file(&f, Access::Read, Errno::ENODEV)?;
            if shared && prot.write && !Self::writable(&f) {
                return Err(Errno::EACCES);
            }
            let (_, size) = self.file_id(vfd)?;
            // A private copy takes what shared mappings stored.
            self.shm_flush(id)?;
            Some((f, vfd, id, size))
        };
        let mf = MapFlags {
            fixed: flags & g::MAP_FIXED != 0,
            fixed_noreplace: flags & g::MAP_FIXED_NOREPLACE != 0,
        };
        let kind = match (&file, shared) {
            (None, true) => Kind::Shared,
            (None, false) => Kind::Anon,
            // Where it lands decides its `base` (`shm_map`).
            (Some((f, _, id, _)), true) => Kind::SharedFile {
                may_write: Self::writable(f),
                file: *id,
                base: 0,
            },
            (Some(_), false) => Kind::File,
        };
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (range, replaced) = p.space.layout.mmap(addr, len, prot, mf, kind)?;
        p.space.drop_pages(&mut self.broker, &replaced);
        self.shm_collect();
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if let (Kind::SharedFile { .. }, Some((f, vfd, id, size))) = (kind, &file) {
            let r = self.shm_map(pid, f, (*vfd, *id, *size), range.clone(), off);
            if r.is_err() {
                let _ = self.munmap(pid, range.start, range.end - range.start);
            }
            return r.map(|()| range.start);
        }
        if kind == Kind::Shared {
            // Present from the start, so a forked child shares every page.
            let mut at = range.start;
            while at < range.end {
                if let Err(e) = p.space.populate(&mut self.broker, at) {
                    let _ = self.munmap(pid, range.start, range.end - range.start);
                    return Err(e);
                }
                at += posix::vm::PAGE;
            }
        }
        if let Some((_, vfd, _, size)) = file {
            // Only the file's bytes are read, a page at a time; the rest of
            // the mapping is zeros when touched.
            let want = (range.end - range.start).min(size.saturating_sub(off));
            let start = range.start;
            let r = self.at_offset(vfd, off, |s| {
                let mut page = [0u8; posix::vm::PAGE as usize];
                let mut done = 0u64;
                while done < want {
                    let n = (want - done).min(posix::vm::PAGE) as usize;
                    let chunk = page.get_mut(..n).unwrap_or(&mut []);
                    let got = s.files.read(vfd, chunk).map_err(file_errno)?;
                    let p = s.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
                    p.space.write_as(
                        &mut s.broker,
                        start + done,
                        page.get(..got).unwrap_or(&[]),
                        true,
                    )?;
                    done += n as u64;
                }
                Ok(())
            });
            if let Err(e) = r {
                let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
                if let Ok(dropped) = p.space.layout.munmap(range.start, range.end - range.start) {
                    p.space.drop_pages(&mut self.broker, &dropped);
                }
                return Err(e);
            }
        }
        Ok(range.start)
    }

    /// `mremap(old, old_len, new_len, flags, new_addr)`: `MREMAP_MAYMOVE`
    /// and `MREMAP_FIXED`; the pages keep their frames when they move.
    /// Growing shared memory gives this process new pages only.
    fn mremap(&mut self, pid: Pid, old: u64, old_len: u64, new_len: u64, flags: u64, to: u64) -> R {
        const MAYMOVE: u64 = 1;
        const FIXED: u64 = 2;
        if flags & !(MAYMOVE | FIXED) != 0 {
            return Err(Errno::EINVAL);
        }
        let fixed = (flags & FIXED != 0).then_some(to);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let remap = p
            .space
            .layout
            .mremap(old, old_len, new_len, flags & MAYMOVE != 0, fixed)?;
        match remap {
            posix::vm::Remap::InPlace { dropped } => {
                p.space.drop_pages(&mut self.broker, &dropped);
                self.shm_collect();
                Ok(old)
            }
            posix::vm::Remap::Moved { to, replaced } => {
                p.space.drop_pages(&mut self.broker, &replaced);
                let keep = old_len.min(new_len).div_ceil(posix::vm::PAGE) * posix::vm::PAGE;
                p.space
                    .move_pages(&mut self.broker, old..old + keep, to.start)?;
                let dropped = p.space.layout.munmap(old, old_len)?;
                p.space.drop_pages(&mut self.broker, &dropped);
                self.shm_collect();
                Ok(to.start)
            }
        }
    }

    fn munmap(&mut self, pid: Pid, addr: u64, len: u64) -> R {
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let dropped = p.space.layout.munmap(addr, len)?;
        p.space.drop_pages(&mut self.broker, &dropped);
        self.shm_collect();
        Ok(0)
    }

    fn mprotect(&mut self, pid: Pid, addr: u64, len: u64, prot: u64) -> R {
        let prot = Prot::from_bits(prot)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let changed = p.space.layout.mprotect(addr, len, prot)?;
        p.space.reprotect(&mut self.broker, &changed)?;
        Ok(0)
    }

    fn arch_prctl(&mut self, pid: Pid, code: u64, addr: u64) -> R {
        const ARCH_SET_FS: u64 = 0x1002;
        const ARCH_GET_FS: u64 = 0x1003;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        match code {
            ARCH_SET_FS => {
                // The fault reply cannot set the TLS base: write it into
                // the thread (suspended in its fault, so nothing else of its
                // registers changes but what the reply then writes).
                let mut regs = p.tcb.read_registers(false).map_err(|_| Errno::EINVAL)?;
                regs.tls_base = addr;
                // SAFETY: the thread runs in its own address space.
                unsafe { p.tcb.write_registers(false, &regs) }.map_err(|_| Errno::EINVAL)?;
                p.fs_base = addr;
                Ok(0)
            }
            ARCH_GET_FS => {
                let fs = p.fs_base;
                self.user_write(pid, addr, &fs.to_le_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    // ---- information -----------------------------------------------------

    fn uname(&mut self, pid: Pid, buf: u64) -> R {
        let u = abi::utsname([
            b"Linux",
            b"kaal",
            b"6.1.0-kaal",
            b"#1 KaaL process server on seL4 5.0.0",
            b"x86_64",
            b"(none)",
        ]);
        self.user_write(pid, buf, &u)?;
        Ok(0)
    }

    /// `/proc/meminfo`: the server's untyped budget as the machine's
    /// memory (what `free` reads).
    fn meminfo(&mut self) -> Vec<u8> {
        let _ = self.broker.coalesce();
        let total = self.budget_bytes >> 10;
        let free = self.broker.free_ram_bytes() >> 10;
        alloc::format!(
            "MemTotal: {total:8} kB\nMemFree: {free:8} kB\nMemAvailable: {free:8} kB\nBuffers: {:8} kB\nCached: {:8} kB\nSwapTotal: {:8} kB\nSwapFree: {:8} kB\nShmem: {:8} kB\nSReclaimable: {:8} kB\n",
            0, 0, 0, 0, 0, 0
        )
        .into_bytes()
    }

    /// `sysinfo`: uptime, and the server's memory as the machine's (what
    /// `free` shows: the untyped budget and what of it is free).
    fn sysinfo(&mut self, pid: Pid, buf: u64) -> R {
        let _ = self.broker.coalesce();
        let mut b = [0u8; 112];
        let put = |b: &mut [u8; 112], at: usize, v: u64| {
            if let Some(d) = b.get_mut(at..at + 8) {
                d.copy_from_slice(&v.to_le_bytes());
            }
        };
        put(&mut b, 0, self.uptime().as_secs());
        put(&mut b, 32, self.budget_bytes);
        put(&mut b, 40, self.broker.free_ram_bytes());
        let procs = self.live() as u16;
        if let Some(d) = b.get_mut(80..82) {
            d.copy_from_slice(&procs.to_le_bytes());
        }
        if let Some(d) = b.get_mut(104..108) {
            d.copy_from_slice(&1u32.to_le_bytes());
        }
        self.user_write(pid, buf, &b)?;
        Ok(0)
    }

    fn prlimit(&mut self, pid: Pid, resource: u64, old: u64) -> R {
        if old == 0 {
            return Ok(0);
        }
        const INF: u64 = u64::MAX;
        let (cur, max) = match resource as u32 {
            g::RLIMIT_STACK => (posix::vm::STACK_BYTES, INF),
            g::RLIMIT_NOFILE => (u64::from(posix::fd::FD_MAX), u64::from(posix::fd::FD_MAX)),
            g::RLIMIT_NPROC => (1024, 1024),
            r if r < 16 => (INF, INF),
            _ => return Err(Errno::EINVAL),
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&cur.to_le_bytes());
        b[8..].copy_from_slice(&max.to_le_bytes());
        self.user_write(pid, old, &b)?;
        Ok(0)
    }

    /// `prctl`: the thread's name (`PR_SET_NAME`, `PR_GET_NAME`); other
    /// options are `EINVAL`, as for an option Linux does not know.
    fn prctl(&mut self, pid: Pid, option: u64, arg: u64) -> R {
        use linux_raw_sys::prctl::{PR_GET_NAME, PR_SET_NAME};
        match option as u32 {
            PR_SET_NAME => {
                // Up to 16 bytes, a byte at a time (a short name may end
                // its mapping); a longer name is cut to 15, as Linux does.
                let mut name = [0u8; 16];
                for (i, b) in (0u64..).zip(name.iter_mut()) {
                    let mut one = [0u8; 1];
                    self.user_read(pid, arg.wrapping_add(i), &mut one)?;
                    *b = one[0];
                    if *b == 0 {
                        break;
                    }
                }
                let end = name.iter().position(|&b| b == 0).unwrap_or(15);
                let comm = crate::process::comm(name.get(..end).unwrap_or(&[]));
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.comm = comm;
                }
                Ok(0)
            }
            PR_GET_NAME => {
                let comm = self.procs.get(&pid).ok_or(Errno::ESRCH)?.comm;
                self.user_write(pid, arg, &comm)?;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn sched_getaffinity(&mut self, pid: Pid, len: u64, mask: u64) -> R {
        if len < 8 {
            return Err(Errno::EINVAL);
        }
        self.user_write(pid, mask, &1u64.to_le_bytes())?;
        Ok(8)
    }

    fn getrandom(&mut self, pid: Pid, buf: u64, len: u64) -> R {
        let mut out = alloc::vec![0u8; (len as usize).min(IO_MAX)];
        self.random.fill(kaal_rt::rdtsc(), &mut out);
        self.user_write(pid, buf, &out)?;
        ok(out.len() as u64)
    }

    // ---- time --------------------------------------------------------------

    /// Time since the machine started: `CLOCK_MONOTONIC`, `sysinfo`'s
    /// uptime, and with [`EPOCH_AT_BOOT`] the wall clock the VFS stamps
    /// files with too.
    pub(crate) fn uptime(&self) -> Duration {
        self.clock.since_boot(Instant::now())
    }

    /// [`Self::uptime`] in nanoseconds: the monotonic clock.
    pub(crate) fn uptime_ns(&self) -> u64 {
        u64::try_from(self.uptime().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A `struct timespec` of the program's, in nanoseconds.
    pub(crate) fn user_timespec(&mut self, pid: Pid, at: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 16];
        self.user_read(pid, at, &mut b)?;
        abi::read_timespec(&b).ok_or(Errno::EINVAL)
    }

    /// When a wait for `nanos` ends: that long after now, or (`clock`
    /// given) when that clock reads `nanos`. `None` when that is no later
    /// than now; `ENOSYS` without a timer, which alone would end the wait.
    pub(crate) fn wait_until(
        &self,
        nanos: u64,
        clock: Option<u32>,
    ) -> Result<Option<Instant>, Errno> {
        let wait = match clock {
            None => nanos,
            Some(c) => nanos.saturating_sub(clock_start(c).saturating_add(self.uptime_ns())),
        };
        let now = Instant::now();
        let at = self.clock.after(now, Duration::from_nanos(wait));
        if at.ticks() <= now.ticks() {
            return Ok(None);
        }
        if self.timer.is_none() {
            return Err(Errno::ENOSYS);
        }
        Ok(Some(at))
    }

    fn clock_gettime(&mut self, pid: Pid, clock: u64, ts: u64) -> R {
        let up = self.uptime_ns();
        let nanos = match clock as u32 {
            c @ (g::CLOCK_REALTIME | g::CLOCK_REALTIME_COARSE) => clock_start(c) + up,
            g::CLOCK_MONOTONIC
            | g::CLOCK_MONOTONIC_RAW
            | g::CLOCK_MONOTONIC_COARSE
            | g::CLOCK_BOOTTIME
            | g::CLOCK_PROCESS_CPUTIME_ID
            | g::CLOCK_THREAD_CPUTIME_ID => up,
            _ => return Err(Errno::EINVAL),
        };
        self.user_write(pid, ts, &abi::timespec(nanos))?;
        Ok(0)
    }

    fn clock_getres(&mut self, pid: Pid, ts: u64) -> R {
        if ts != 0 {
            self.user_write(pid, ts, &abi::timespec(1))?;
        }
        Ok(0)
    }

    fn gettimeofday(&mut self, pid: Pid, tv: u64) -> R {
        if tv != 0 {
            let up = self.uptime().as_micros() as u64;
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(EPOCH_AT_BOOT + up / 1_000_000).to_le_bytes());
            b[8..].copy_from_slice(&(up % 1_000_000).to_le_bytes());
            self.user_write(pid, tv, &b)?;
        }
        Ok(0)
    }

    fn time(&mut self, pid: Pid, t: u64) -> R {
        let now = EPOCH_AT_BOOT + self.uptime().as_secs();
        if t != 0 {
            self.user_write(pid, t, &now.to_le_bytes())?;
        }
        Ok(now)
    }

    /// `nanosleep` and `clock_nanosleep` (`absolute`: TIMER_ABSTIME on
    /// `clock`): the first run sets the deadline, runs after it check it.
    fn sleep(&mut self, pid: Pid, req: u64, absolute: bool, clock: u64) -> R {
        let deadline = self.procs.get(&pid).and_then(|p| p.deadline);
        let deadline = match deadline {
            Some(d) => d,
            None => {
                let nanos = self.user_timespec(pid, req)?;
                match self.wait_until(nanos, absolute.then_some(clock as u32))? {
                    Some(d) => d,
                    None => return Ok(0),
                }
            }
        };
        if Instant::now().ticks() >= deadline.ticks() {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.deadline = None;
            }
            return Ok(0);
        }
        Err(self.wait(pid, Some(deadline)))
    }
}

/// A buffer as long as the iovecs `vecs` together (lengths a program gives:
/// the sum saturates), at most `IO_MAX`.
pub(crate) fn iov_buffer(vecs: &[(u64, u64)]) -> Vec<u8> {
    let total = vecs.iter().fold(0u64, |t, &(_, l)| t.saturating_add(l));
    alloc::vec![0u8; (total as usize).min(IO_MAX)]
}
