//! Processes: creating one from a program in the VFS (its address space,
//! the tiny CSpace with its fault endpoint, its thread), ending one, and
//! the calls that wait.

use alloc::string::String;
use alloc::vec::Vec;

use kaal_rt::start::CALL_BIT;
use kaal_rt::time::Instant;
use kaal_sel4::cap::{CNode, Cap, Rights, Spaces, Tcb, UserContext};
use kaal_sel4::CPtr;
use posix::errno::Errno;
use posix::fd::FdTable;
use posix::image::PIE_BASE;
use posix::regs::Regs;
use posix::vm::{Kind, Prot, PAGE, STACK_BYTES, STACK_TOP};

use crate::files::{open_ref, Object, OpenRef};
use crate::programs::{FileId, Program};
use crate::space::{ImageFrames, Space};
use crate::Server;
use alloc::rc::Rc;
use posix::image::Image;
use posix::signal::Signals;

pub type Pid = u32;

pub const SIGILL: u32 = 4;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGHUP: u32 = 1;
pub const SIGSEGV: u32 = 11;
pub const SIGBUS: u32 = 7;

/// Priority of Linux threads: below every driver and service.
const PRIORITY: u8 = 50;
/// The process CNode: 2^1 slots, the fault endpoint in slot 1.
const CNODE_BITS: u8 = 1;
const FAULT_SLOT: CPtr = 1;
/// The server's own CNode resolves its slots at depth 64 (its capability
/// carries the guard).
const CSPACE_DEPTH: u8 = 64;
/// Largest program the server loads: its file is read whole into the
/// server's heap (16 MiB in the manifests), and two are kept.
const MAX_IMAGE: u64 = 4 << 20;
/// Where a program's segments may lie: above the lowest mapping address,
/// below the `mmap` area.
const USER_WINDOW: core::ops::Range<u64> = posix::vm::MIN_ADDR..posix::vm::MMAP_TOP;

/// A Linux process: its pid is its first thread's tid (the tgid). The
/// per-thread fields are those of the thread in force (`threads`).
pub struct Process {
    pub pid: Pid,
    /// The thread in force: whose call is served, whose state is here.
    pub tid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub space: Space,
    pub cnode: CNode,
    pub tcb: Tcb,
    pub fds: FdTable<OpenRef>,
    pub cwd: String,
    /// The program's path (`/proc/self/exe`).
    pub exe: String,
    /// The thread's name (`prctl(PR_SET_NAME)`): at most 15 bytes, at
    /// first the program's file name.
    pub comm: [u8; 16],
    pub umask: u32,
    /// Registers of a call that waits, with the slot holding the reply
    /// capability (`SaveCaller`).
    pub blocked: Option<(Regs, CPtr)>,
    /// When a waiting call gives up (a sleep's end, a poll's timeout).
    pub deadline: Option<Instant>,
    /// Set by a call that found it must wait: its `EAGAIN` parks it.
    pub wait_now: bool,
    /// The TLS base (`arch_prctl(ARCH_SET_FS)`).
    pub fs_base: u64,
    /// `set_tid_address`.
    pub clear_tid: u64,
    /// A `futex` wake took this thread: its parked wait answers 0.
    pub futex_woken: bool,
    /// Signal actions as the process set them (handlers are not yet run).
    /// Actions, the blocked mask, pending signals, the alternate stack.
    pub signals: Signals,
    /// The wait status once it ended (a zombie until its parent waits).
    pub zombie: Option<i32>,
    /// The parent a vfork child keeps waiting until it execs or ends.
    pub vfork_parent: Option<Pid>,
    /// A vfork parent's child, whose pid its call answers once the child
    /// has exec'd or ended.
    pub vfork_child: Option<Pid>,
    /// Stopped by a stop signal until `SIGCONT` or `SIGKILL` (job control),
    /// and how it goes on.
    pub stopped: Option<crate::jobs::Stopped>,
    /// A stop or continue its parent's `wait4` has not seen yet
    /// (`WUNTRACED`, `WCONTINUED`): the wait status.
    pub report: Option<i32>,
    /// The real-time interval timer (`alarm`, `setitimer`): when it
    /// expires next, and its interval (zero: once).
    pub itimer: Option<(Instant, core::time::Duration)>,
}

impl Process {
    /// True if the process ignores `sig` (SIG_IGN) or blocks it.
    pub fn ignores(&self, sig: u32) -> bool {
        self.signals.action(sig).handler == posix::signal::SIG_IGN
            || self.signals.blocked() & posix::signal::bit(sig) != 0
    }
}

/// A thread name as Linux gives one at exec: the file name, cut to 15
/// bytes and NUL-terminated.
pub fn comm_of(path: &str) -> [u8; 16] {
    comm(path.rsplit('/').next().unwrap_or(path).as_bytes())
}

/// A thread name from `name`, cut to 15 bytes and NUL-terminated.
pub fn comm(name: &[u8]) -> [u8; 16] {
    let mut comm = [0u8; 16];
    for (c, &b) in comm.iter_mut().zip(name.iter().take(15)) {
        *c = b;
    }
    comm
}

fn nomem<E>(_: E) -> Errno {
    Errno::ENOMEM
}

impl Server {
    /// The program at `path`: kept from an earlier load when its file is
    /// unchanged, else read from the VFS, planned and kept.
    fn program(&mut self, path: &str) -> Result<Rc<Program>, Errno> {
        let st = self.files.stat(path).map_err(crate::files::file_errno)?;
        if st.kind != kaal_protocols::file::kind::REGULAR {
            return Err(Errno::EACCES);
        }
        if st.size > MAX_IMAGE {
            return Err(Errno::ENOMEM);
        }
        let id = FileId {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime: st.mtime,
        };
        if let Some(p) = self.programs.get(id) {
            return Ok(p);
        }
        let fd = self
            .files
            .open(path, kaal_client::file::flags::READ_ONLY, 0)
            .map_err(crate::files::file_errno)?;
        let mut elf = alloc::vec![0u8; st.size as usize];
        let r = self.files.read(fd, &mut elf);
        let _ = self.files.close(fd);
        let n = r.map_err(crate::files::file_errno)?;
        elf.truncate(n);
        let image = Image::load(&elf, USER_WINDOW, PIE_BASE).map_err(|_| Errno::ENOEXEC)?;
        let frames = self.load_frames(&elf, &image)?;
        let program = Rc::new(Program { image, frames });
        if let Some(old) = self.programs.insert(id, program.clone()) {
            self.forget(old);
        }
        Ok(program)
    }

    /// The frames of the program's pages as loaded (text patched), but
    /// for pages past a segment's file bytes: those are zeros, which a
    /// touch gets anyway.
    fn load_frames(&mut self, elf: &[u8], image: &Image) -> Result<Rc<ImageFrames>, Errno> {
        let frames: Rc<ImageFrames> = Default::default();
        let mut page = [0u8; PAGE as usize];
        for seg in image.plan().segments() {
            let pages = seg.pages();
            let file_end = (seg.vaddr.saturating_add(seg.file.len() as u64))
                .saturating_add(PAGE - 1)
                & !(PAGE - 1);
            for at in (pages.start..pages.end.min(file_end)).step_by(PAGE as usize) {
                let frame = match Space::fresh(&mut self.broker) {
                    Ok(f) => f,
                    Err(e) => {
                        crate::space::release_image(&mut self.broker, frames);
                        return Err(e);
                    }
                };
                image.fill_page(elf, seg, at, &mut page);
                frame.write(0, &page);
                frames.borrow_mut().insert(at, frame);
            }
        }
        Ok(frames)
    }

    /// Lets a program go: its frames are freed with the last process that
    /// runs it (now if none does).
    pub fn forget(&mut self, program: Rc<Program>) {
        if let Ok(p) = Rc::try_unwrap(program) {
            crate::space::release_image(&mut self.broker, p.frames);
        }
    }

    /// Loads `path` into a fresh address space with its initial stack;
    /// returns the space and the entry registers.
    pub fn load(
        &mut self,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<(Space, u64, u64), Errno> {
        let program = self.program(path)?;
        let mut space = Space::new(&mut self.broker)?;
        match self.fill(&mut space, &program, path, argv, envp) {
            Ok(sp) => Ok((space, program.image.entry(), sp)),
            Err(e) => {
                space.destroy(&mut self.broker);
                Err(e)
            }
        }
    }

    /// The program's segments (their pages come from the program's frames
    /// when touched) and the initial stack; returns the stack pointer.
    fn fill(
        &mut self,
        space: &mut Space,
        program: &Program,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<u64, Errno> {
        let mut segments = Vec::new();
        for seg in program.image.plan().segments() {
            let prot = match seg.perm {
                kaal_loader::Perm::ReadWrite => Prot::RW,
                kaal_loader::Perm::ReadOnly => Prot::R,
                kaal_loader::Perm::ReadExecute => Prot::RX,
            };
            space.layout.reserve(seg.pages(), prot, Kind::Image)?;
            segments.push(seg.pages());
        }
        space.set_image(program.frames.clone(), segments);
        space.layout.set_brk_start(program.image.brk_start());
        space
            .layout
            .reserve(STACK_TOP - STACK_BYTES..STACK_TOP, Prot::RW, Kind::Stack)?;
        let mut random = [0u8; 16];
        self.random.fill(kaal_rt::rdtsc(), &mut random);
        let argv: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        let envp: Vec<&[u8]> = envp.iter().map(|s| s.as_bytes()).collect();
        let stack = posix::image::initial_stack(&posix::image::StackRequest {
            top: STACK_TOP,
            argv: &argv,
            envp: &envp,
            execfn: path.as_bytes(),
            random,
            program: program.image.program(),
        })
        .map_err(|_| Errno::E2BIG)?;
        space.write_as(&mut self.broker, stack.rsp, &stack.bytes, true)?;
        Ok(stack.rsp)
    }

    /// Starts the first process: `argv[0]` with its arguments, on the
    /// console.
    pub fn exec_first(&mut self, argv: &[String], envp: &[String]) -> Result<(), Errno> {
        let path = argv.first().cloned().ok_or(Errno::ENOENT)?;
        let (space, entry, sp) = self.load(&path, argv, envp)?;
        let pid = self.next_pid;
        let mut fds = FdTable::new();
        let tty = open_ref(Object::Tty, 2);
        for _ in 0..3 {
            fds.insert(tty.clone(), false)?;
        }
        // Like Linux's init, the first process has the console open but
        // not as its controlling terminal: a session it starts takes it
        // (`setsid` and `TIOCSCTTY`, as busybox init does for its shell).
        let ctx = UserContext {
            rip: entry,
            rsp: sp,
            ..Default::default()
        };
        match self.make_thread(pid, space, ctx) {
            Ok((space, cnode, tcb)) => {
                let _ = tcb.resume();
                self.next_pid += 1;
                self.procs.insert(
                    pid,
                    Process {
                        pid,
                        tid: pid,
                        futex_woken: false,
                        ppid: 0,
                        pgid: pid,
                        sid: pid,
                        space,
                        cnode,
                        tcb,
                        fds,
                        cwd: String::from("/"),
                        comm: comm_of(&path),
                        exe: path,
                        umask: 0o022,
                        blocked: None,
                        deadline: None,
                        wait_now: false,
                        fs_base: 0,
                        clear_tid: 0,
                        signals: Signals::new(),
                        zombie: None,
                        vfork_parent: None,
                        vfork_child: None,
                        stopped: None,
                        report: None,
                        itimer: None,
                    },
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Ends process `pid` with wait status `status` (Linux encoding):
    /// gives back everything it held and leaves a zombie for its parent's
    /// `wait4` (none when its parent is the server). Its children go to
    /// pid 1; when pid 1 ends, every process ends.
    pub fn end(&mut self, pid: Pid, status: i32) {
        if self.procs.get(&pid).is_none_or(|p| p.zombie.is_some()) {
            return;
        }
        // Its other threads first; the one in force goes below.
        self.end_threads(pid);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.zombie = Some(status);
        let (tcb, cnode) = (p.tcb, p.cnode);
        let blocked = p.blocked.take();
        let held = p.stopped.take().and_then(crate::jobs::Stopped::held_slot);
        let fds = p.fds.drain();
        let space = core::mem::replace(&mut p.space, Space::empty());
        let (ppid, exe) = (p.ppid, p.exe.clone());
        let _ = self.broker.free(tcb.cptr());
        let _ = self.broker.free(cnode.cptr());
        for slot in blocked.map(|(_, slot)| slot).into_iter().chain(held) {
            let _ = self.broker.free_slot(slot);
        }
        for f in fds {
            self.release(f);
        }
        space.destroy(&mut self.broker);
        self.shm_collect();
        let code = (status >> 8) & 0xff;
        let sig = status & 0x7f;
        // A shell reports its children's deaths itself; the server says so
        // for the first process and for faults (SIGILL, SIGBUS, SIGFPE,
        // SIGSEGV), whose cause it printed.
        if sig != 0 && (pid == 1 || [4, 7, 8, 11].contains(&sig) || self.verbose_exits) {
            kaal_rt::println!("posix: pid {pid} ({exe}) killed by signal {sig}");
        } else if pid == 1 || self.verbose_exits {
            kaal_rt::println!("posix: pid {pid} ({exe}) exited with status {code}");
        }
        let orphans: Vec<Pid> = self
            .procs
            .values()
            .filter(|c| c.ppid == pid)
            .map(|c| c.pid)
            .collect();
        // Its group and its children's may be orphaned by this end.
        let mut groups: Vec<Pid> = orphans
            .iter()
            .filter_map(|c| self.procs.get(c).map(|c| c.pgid))
            .collect();
        groups.extend(self.procs.get(&pid).map(|p| p.pgid));
        for c in orphans {
            // A zombie nobody will wait for goes; a live child's parent
            // becomes pid 1.
            if self.procs.get(&c).is_some_and(|c| c.zombie.is_some()) {
                self.procs.remove(&c);
            } else if let Some(child) = self.procs.get_mut(&c) {
                child.ppid = 1;
            }
        }
        if pid != 1 {
            // Looked at from the server's loop: the signals may end more
            // processes, whose ends would nest here without bound.
            self.orphan_checks.extend(groups);
        }
        if pid == 1 {
            self.init_status = Some(status);
            let rest: Vec<Pid> = self.procs.keys().copied().filter(|&p| p != 1).collect();
            for p in rest {
                self.end(p, SIGKILL as i32);
                self.procs.remove(&p);
            }
        }
        let parent_alive = self.procs.get(&ppid).is_some_and(|p| p.zombie.is_none());
        if ppid == 0 || !parent_alive {
            self.procs.remove(&pid);
        } else if self
            .procs
            .get(&ppid)
            .is_some_and(|p| p.signals.reaps_children())
        {
            // SIGCHLD ignored or SA_NOCLDWAIT: nobody waits for it.
            self.procs.remove(&pid);
        } else {
            // The parent's wait4 sees the child first, then SIGCHLD comes.
            let code = if sig != 0 {
                posix::signal::CLD_KILLED
            } else {
                posix::signal::CLD_EXITED
            };
            if self.procs.get(&ppid).is_some_and(|p| p.blocked.is_some()) {
                self.retry(ppid);
            }
            self.send_child_signal(ppid, pid, code, status);
        }
        // The parent's wait4, a pipe's other end: anything may go on now.
        self.changed = true;
    }

    /// `reboot(magic, magic2, cmd)`. The process server's processes live
    /// as in a Linux PID namespace, where power-off, halt and restart end
    /// its init: pid 1 ends (status 0 for power-off and halt, SIGHUP for
    /// restart) and with it every process; what the server's end does to
    /// the machine is the manifest's choice (`poweroff`). Other commands
    /// (Ctrl-Alt-Del's setting among them) are `EINVAL`, as in a namespace.
    pub fn reboot(&mut self, magic: u64, magic2: u64, cmd: u64) -> Result<u64, Errno> {
        use linux_raw_sys::general as g;
        let magic2_ok = [
            g::LINUX_REBOOT_MAGIC2,
            g::LINUX_REBOOT_MAGIC2A,
            g::LINUX_REBOOT_MAGIC2B,
            g::LINUX_REBOOT_MAGIC2C,
        ]
        .contains(&(magic2 as u32));
        if magic as u32 != g::LINUX_REBOOT_MAGIC1 || !magic2_ok {
            return Err(Errno::EINVAL);
        }
        let (what, status) = match cmd as u32 {
            g::LINUX_REBOOT_CMD_POWER_OFF => ("power-off", 0),
            g::LINUX_REBOOT_CMD_HALT => ("halt", 0),
            g::LINUX_REBOOT_CMD_RESTART | g::LINUX_REBOOT_CMD_RESTART2 => {
                ("restart", SIGHUP as i32)
            }
            _ => return Err(Errno::EINVAL),
        };
        kaal_rt::println!("posix: reboot ({what}): every process ends");
        self.end(1, status);
        Ok(0)
    }

    pub fn kill_by_signal(&mut self, pid: Pid, sig: u32) {
        self.end(pid, (sig & 0x7f) as i32);
    }

    /// Processes that have not ended.
    pub fn live(&self) -> usize {
        self.procs.values().filter(|p| p.zombie.is_none()).count()
    }

    /// Drops a descriptor's reference to an open file description; the
    /// last one closes what it holds.
    pub fn release(&mut self, f: OpenRef) {
        if let Ok(open) = alloc::rc::Rc::try_unwrap(f) {
            match open.into_inner().object {
                Object::Vfs { fd, .. } => {
                    let _ = self.files.close(fd);
                }
                Object::PipeRead(p) => {
                    p.borrow_mut().close_reader();
                    self.changed = true;
                }
                Object::PipeWrite(p) => {
                    p.borrow_mut().close_writer();
                    self.changed = true;
                }
                Object::Socket(s) => self.inet_close(&s),
                // Dropping the socket closes its end or its listener.
                Object::Unix(_) => self.changed = true,
                _ => {}
            }
        }
    }

    /// A raw `syscall` found at a fault (`ip`): patched to `int $0xa0` and
    /// run again from there; anything else there is SIGSEGV.
    pub fn late_patch(&mut self, pid: Pid, ip: u64) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let mut site = [0u8; 2];
        let ok = p.space.read(&mut self.broker, ip, &mut site).is_ok()
            && posix::rewrite::is_syscall_site(&site)
            && p.space
                .write_as(&mut self.broker, ip, &posix::rewrite::REPLACEMENT, true)
                .is_ok();
        if !ok {
            self.kill_by_signal(pid, SIGSEGV);
            return;
        }
        match p.tcb.read_registers(false) {
            Ok(mut regs) => {
                regs.rip = ip;
                // SAFETY: the thread runs in its own address space.
                let _ = unsafe { p.tcb.write_registers(true, &regs) };
            }
            Err(_) => self.kill_by_signal(pid, SIGSEGV),
        }
    }

    /// Parks the current call of `pid`: its reply capability is kept, and
    /// the call runs again when something changes.
    pub fn block(&mut self, pid: Pid, regs: Regs) {
        if let Some(slot) = self.save_reply(pid) {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.blocked = Some((regs, slot));
            }
        }
    }

    /// Keeps the reply capability of the call being answered in a slot of
    /// its own, to answer later; without a slot the process is killed.
    pub fn save_reply(&mut self, pid: Pid) -> Option<CPtr> {
        let Ok(slot) = self.broker.alloc_slot() else {
            self.kill_by_signal(pid, SIGKILL);
            return None;
        };
        if self.cnode.save_caller(slot, CSPACE_DEPTH).is_err() {
            let _ = self.broker.free_slot(slot);
            self.kill_by_signal(pid, SIGKILL);
            return None;
        }
        Some(slot)
    }

    /// Runs a parked call again; answers it if it completes.
    pub fn retry(&mut self, pid: Pid) {
        let Some((regs, slot)) = self
            .procs
            .get_mut(&pid)
            .filter(|p| p.stopped.is_none())
            .and_then(|p| p.blocked.take())
        else {
            return;
        };
        // A retry may run inside another process's call (its parent's
        // `wait4` when it ends or stops): that one stays current after.
        let outer = self.current.replace(pid);
        let outcome = match self.procs.get(&pid).and_then(|p| p.vfork_child) {
            Some(child) if self.vfork_waiting(pid) => {
                let _ = child;
                crate::syscall::Outcome::Block(regs)
            }
            Some(child) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.vfork_child = None;
                }
                let mut regs = regs;
                regs.finish(u64::from(child));
                crate::syscall::Outcome::Done(regs)
            }
            None => self.run_syscall(pid, regs),
        };
        self.current = outer;
        match outcome {
            crate::syscall::Outcome::Done(regs) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.deadline = None;
                }
                Server::reply_saved(slot, &regs);
                let _ = self.broker.free_slot(slot);
            }
            crate::syscall::Outcome::Block(regs) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.blocked = Some((regs, slot));
                }
            }
            crate::syscall::Outcome::Stopped(regs, sig) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.deadline = None;
                }
                self.stop(pid, sig, crate::jobs::Stopped::Answered(regs, slot));
            }
            crate::syscall::Outcome::Gone => {
                let _ = self.broker.free_slot(slot);
            }
        }
    }
}

/// `clone` flags the server understands (fork and vfork shapes).
const CLONE_VM: u64 = linux_raw_sys::general::CLONE_VM as u64;
const CLONE_VFORK: u64 = linux_raw_sys::general::CLONE_VFORK as u64;
const CLONE_THREAD: u64 = linux_raw_sys::general::CLONE_THREAD as u64;
const CLONE_PARENT_SETTID: u64 = linux_raw_sys::general::CLONE_PARENT_SETTID as u64;
const CLONE_CHILD_CLEARTID: u64 = linux_raw_sys::general::CLONE_CHILD_CLEARTID as u64;
const CLONE_CHILD_SETTID: u64 = linux_raw_sys::general::CLONE_CHILD_SETTID as u64;

/// Most processes at once (live and zombie).
const MAX_PROCS: usize = 256;

impl Server {
    /// `fork`, `vfork` and `clone` without `CLONE_THREAD`: a child with a
    /// copy of the address space (text frames shared, the rest copied
    /// now), the same open files, working directory and signal state. A
    /// `CLONE_VM` child (vfork, `posix_spawn`) gets a copy too, running on
    /// the stack it was given; the parent then waits until the child
    /// execs or ends, as with a shared address space.
    pub fn fork(
        &mut self,
        pid: Pid,
        regs: &Regs,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
    ) -> Result<Pid, Errno> {
        if flags & CLONE_THREAD != 0 {
            return Err(Errno::EINVAL);
        }
        if self.procs.len() >= MAX_PROCS {
            return Err(Errno::EAGAIN);
        }
        let child_pid = self.next_pid;
        let parent = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let space = parent.space.fork(&mut self.broker)?;
        let fs_base = parent.fs_base;
        let mut cregs = *regs;
        cregs.finish(0);
        if stack != 0 {
            cregs.rsp = stack;
        }
        let ctx = UserContext {
            rip: cregs.rip,
            rsp: cregs.rsp,
            rflags: cregs.rflags,
            rax: 0,
            rbx: cregs.rbx,
            rcx: cregs.rcx,
            rdx: cregs.rdx,
            rsi: cregs.rsi,
            rdi: cregs.rdi,
            rbp: cregs.rbp,
            r8: cregs.r8,
            r9: cregs.r9,
            r10: cregs.r10,
            r11: cregs.r11,
            r12: cregs.r12,
            r13: cregs.r13,
            r14: cregs.r14,
            r15: cregs.r15,
            tls_base: fs_base,
        };
        let (mut space, cnode, tcb) = self.make_thread(child_pid, space, ctx)?;
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = space.write(&mut self.broker, ctid, &child_pid.to_le_bytes());
        }
        let parent = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let child = Process {
            pid: child_pid,
            tid: child_pid,
            futex_woken: false,
            ppid: pid,
            pgid: parent.pgid,
            sid: parent.sid,
            space,
            cnode,
            tcb,
            fds: parent.fds.clone(),
            cwd: parent.cwd.clone(),
            exe: parent.exe.clone(),
            comm: parent.comm,
            umask: parent.umask,
            blocked: None,
            deadline: None,
            wait_now: false,
            fs_base,
            clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                ctid
            } else {
                0
            },
            signals: parent.signals.fork(),
            zombie: None,
            vfork_parent: (flags & (CLONE_VM | CLONE_VFORK) != 0).then_some(pid),
            vfork_child: None,
            stopped: None,
            report: None,
            // A child does not inherit its parent's timer.
            itimer: None,
        };
        self.next_pid += 1;
        self.procs.insert(child_pid, child);
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = self.user_write(pid, ptid, &child_pid.to_le_bytes());
        }
        if let Some(c) = self.procs.get(&child_pid) {
            let _ = c.tcb.resume();
        }
        Ok(child_pid)
    }

    /// True while a vfork child of `pid` has neither exec'd nor ended.
    pub fn vfork_waiting(&self, pid: Pid) -> bool {
        self.procs
            .values()
            .any(|c| c.vfork_parent == Some(pid) && c.zombie.is_none())
    }

    /// `execve`: the program at `path` replaces the process's image; on
    /// success the call does not return (the thread starts at the new
    /// entry), on failure the old image is untouched.
    pub fn execve(
        &mut self,
        pid: Pid,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<(), Errno> {
        let (space, entry, sp) = self.load(path, argv, envp)?;
        let ctx = UserContext {
            rip: entry,
            rsp: sp,
            ..Default::default()
        };
        let (space, cnode, tcb) = self.make_thread(pid, space, ctx)?;
        // The other threads end; the caller goes on as the first, with
        // the tgid as its tid.
        self.end_threads(pid);
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.tid = pid;
        p.futex_woken = false;
        let old_space = core::mem::replace(&mut p.space, space);
        let old_tcb = core::mem::replace(&mut p.tcb, tcb);
        let old_cnode = core::mem::replace(&mut p.cnode, cnode);
        p.exe = String::from(path);
        p.comm = comm_of(path);
        p.fs_base = 0;
        p.clear_tid = 0;
        p.vfork_parent = None;
        // Handled signals go back to their default; ignored ones stay.
        p.signals.exec();
        let closed = p.fds.close_on_exec();
        let _ = self.broker.free(old_tcb.cptr());
        let _ = self.broker.free(old_cnode.cptr());
        old_space.destroy(&mut self.broker);
        self.shm_collect();
        for f in closed {
            self.release(f);
        }
        if let Some(p) = self.procs.get(&pid) {
            let _ = p.tcb.resume();
        }
        self.changed = true;
        Ok(())
    }

    /// The CSpace and thread of process `pid` in `space`, with registers
    /// `ctx`, not yet running (`resume` starts it).
    fn make_thread(
        &mut self,
        pid: Pid,
        mut space: Space,
        ctx: UserContext,
    ) -> Result<(Space, CNode, Tcb), Errno> {
        let made = self.make_tcb(pid, space.vspace, &ctx);
        match made {
            Ok((cnode, tcb)) => Ok((space, cnode, tcb)),
            Err(e) => {
                core::mem::take(&mut space.layout);
                space.destroy(&mut self.broker);
                Err(e)
            }
        }
    }

    /// The CSpace (its fault endpoint badged `tid`) and TCB of thread
    /// `tid` in `vspace`, with registers `ctx`, not yet running.
    pub fn make_tcb(
        &mut self,
        tid: Pid,
        vspace: kaal_sel4::cap::Pml4,
        ctx: &UserContext,
    ) -> Result<(CNode, Tcb), Errno> {
        let cnode = self.broker.alloc_cnode(CNODE_BITS).map_err(nomem)?;
        let tcb: Tcb = match self.broker.alloc() {
            Ok(t) => t,
            Err(e) => {
                let _ = self.broker.free(cnode.cptr());
                return Err(nomem(e));
            }
        };
        let r = (|| -> Result<(), Errno> {
            cnode
                .mint_from(
                    FAULT_SLOT,
                    CNODE_BITS,
                    self.cnode,
                    self.ep.cptr(),
                    CSPACE_DEPTH,
                    Rights::call_only(),
                    u64::from(tid) | (1 << CALL_BIT),
                )
                .map_err(nomem)?;
            let spaces = Spaces {
                cspace: cnode,
                radix_bits: CNODE_BITS,
                vspace,
            };
            tcb.configure_thread(FAULT_SLOT, PRIORITY, spaces)
                .map_err(nomem)?;
            // SAFETY: the thread runs in a Linux process's address space
            // and CSpace; it cannot touch the server's memory.
            unsafe { tcb.write_registers(false, ctx) }.map_err(nomem)
        })();
        if let Err(e) = r {
            let _ = self.broker.free(tcb.cptr());
            let _ = self.broker.free(cnode.cptr());
            return Err(e);
        }
        Ok((cnode, tcb))
    }

    /// `wait4`: a child that ended (its pid, status written to `status`
    /// if not 0), 0 with WNOHANG when none has yet, `ECHILD` when there is
    /// no such child; otherwise the call waits.
    pub fn wait4(
        &mut self,
        pid: Pid,
        which: i64,
        status: u64,
        options: u64,
        rusage: u64,
    ) -> Result<u64, Errno> {
        const WNOHANG: u64 = 1;
        const WUNTRACED: u64 = 2;
        const WCONTINUED: u64 = 8;
        if options & !(WNOHANG | WUNTRACED | WCONTINUED | 0x4000_0000 | 0x8000_0000 | 0x2000_0000)
            != 0
        {
            return Err(Errno::EINVAL);
        }
        let pgid = self.procs.get(&pid).map(|p| p.pgid).ok_or(Errno::ESRCH)?;
        let matches = |c: &Process| {
            c.ppid == pid
                && match which {
                    -1 => true,
                    0 => c.pgid == pgid,
                    w if w < -1 => i64::from(c.pgid) == -w,
                    w => i64::from(c.pid) == w,
                }
        };
        // An ended child is reaped; a stop or continue is reported (once)
        // when the options ask for it, and the child stays.
        let wanted = |st: i32| {
            if posix::signal::wait::is_stopped(st as u32) {
                options & WUNTRACED != 0
            } else {
                options & WCONTINUED != 0
            }
        };
        let mut any = false;
        let mut found = None;
        for c in self.procs.values() {
            if matches(c) {
                any = true;
                if let Some(st) = c.zombie {
                    found = Some((c.pid, st, true));
                    break;
                }
                if let Some(st) = c.report.filter(|&st| wanted(st)) {
                    found = Some((c.pid, st, false));
                    break;
                }
            }
        }
        let Some((child, st, ended)) = found else {
            if !any {
                return Err(Errno::ECHILD);
            }
            if options & WNOHANG != 0 {
                return Ok(0);
            }
            return Err(self.wait_for(pid));
        };
        if status != 0 {
            self.user_write(pid, status, &st.to_le_bytes())?;
        }
        if rusage != 0 {
            self.user_write(pid, rusage, &[0u8; 144])?;
        }
        if ended {
            self.procs.remove(&child);
        } else if let Some(c) = self.procs.get_mut(&child) {
            c.report = None;
        }
        Ok(u64::from(child))
    }
}
