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
use crate::space::Space;
use crate::Server;

pub type Pid = u32;

pub const SIGILL: u32 = 4;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGSEGV: u32 = 11;

/// Priority of Linux threads: below every driver and service.
const PRIORITY: u8 = 50;
/// The process CNode: 2^1 slots, the fault endpoint in slot 1.
const CNODE_BITS: u8 = 1;
const FAULT_SLOT: CPtr = 1;
/// The server's own CNode resolves its slots at depth 64 (its capability
/// carries the guard).
const CSPACE_DEPTH: u8 = 64;
/// Largest program the server loads.
const MAX_IMAGE: u64 = 64 << 20;
/// Where a program's segments may lie: above the lowest mapping address,
/// below the `mmap` area.
const USER_WINDOW: core::ops::Range<u64> = posix::vm::MIN_ADDR..posix::vm::MMAP_TOP;

/// A Linux process (one thread for now: its pid is its thread id).
pub struct Process {
    pub pid: Pid,
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
    /// Signal actions as the process set them (handlers are not yet run).
    pub sigactions: [[u8; 32]; 64],
    pub sigmask: u64,
}

impl Process {
    /// The handler word of the signal's action as the process set it.
    fn handler(&self, sig: u32) -> u64 {
        let i = (sig as usize).wrapping_sub(1);
        self.sigactions
            .get(i)
            .and_then(|a| a.get(..8))
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    /// True if the process ignores `sig` (SIG_IGN) or blocks it.
    pub fn ignores(&self, sig: u32) -> bool {
        self.handler(sig) == 1 || self.sigmask & (1u64 << (sig.wrapping_sub(1) & 63)) != 0
    }

    /// True if `sig` takes its default action (no handler, not ignored).
    pub fn default_action(&self, sig: u32) -> bool {
        self.handler(sig) == 0 && !self.ignores(sig)
    }
}

fn nomem<E>(_: E) -> Errno {
    Errno::ENOMEM
}

impl Server {
    /// Reads a whole program file from the VFS.
    fn read_program(&mut self, path: &str) -> Result<Vec<u8>, Errno> {
        let st = self.files.stat(path).map_err(crate::files::file_errno)?;
        if st.kind != kaal_protocols::file::kind::REGULAR {
            return Err(Errno::EACCES);
        }
        if st.size > MAX_IMAGE {
            return Err(Errno::ENOMEM);
        }
        let fd = self
            .files
            .open(path, kaal_client::file::flags::READ_ONLY, 0)
            .map_err(crate::files::file_errno)?;
        let mut bytes = alloc::vec![0u8; st.size as usize];
        let r = self.files.read(fd, &mut bytes);
        let _ = self.files.close(fd);
        let n = r.map_err(crate::files::file_errno)?;
        bytes.truncate(n);
        Ok(bytes)
    }

    /// Loads `path` into a fresh address space with its initial stack;
    /// returns the space and the entry registers.
    pub fn load(
        &mut self,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<(Space, u64, u64), Errno> {
        let elf = self.read_program(path)?;
        let image =
            posix::image::Image::load(&elf, USER_WINDOW, PIE_BASE).map_err(|_| Errno::ENOEXEC)?;
        let mut space = Space::new(&mut self.broker)?;
        let r = self.fill(&mut space, &elf, &image, path, argv, envp);
        match r {
            Ok(sp) => Ok((space, image.entry(), sp)),
            Err(e) => {
                space.destroy(&mut self.broker);
                Err(e)
            }
        }
    }

    fn fill(
        &mut self,
        space: &mut Space,
        elf: &[u8],
        image: &posix::image::Image,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<u64, Errno> {
        for seg in image.plan().segments() {
            let pages = seg.pages();
            let prot = match seg.perm {
                kaal_loader::Perm::ReadWrite => Prot::RW,
                kaal_loader::Perm::ReadOnly => Prot::R,
                kaal_loader::Perm::ReadExecute => Prot::RX,
            };
            space.layout.reserve(pages.clone(), prot, Kind::Image)?;
            let mut page = [0u8; PAGE as usize];
            let mut at = pages.start;
            while at < pages.end {
                image.fill_page(elf, seg, at, &mut page);
                space.write_as(&mut self.broker, at, &page, true)?;
                at += PAGE;
            }
        }
        space.layout.set_brk_start(image.brk_start());
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
            program: image.program(),
        })
        .map_err(|_| Errno::E2BIG)?;
        space.write_as(&mut self.broker, stack.rsp, &stack.bytes, true)?;
        let sp = stack.rsp;
        Ok(sp)
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
        // The first process leads the console's session.
        self.console.tty.attach(pid as i32, pid as i32);
        match self.start_thread(pid, space, entry, sp) {
            Ok((space, cnode, tcb)) => {
                self.next_pid += 1;
                self.procs.insert(
                    pid,
                    Process {
                        pid,
                        ppid: 0,
                        pgid: pid,
                        sid: pid,
                        space,
                        cnode,
                        tcb,
                        fds,
                        cwd: String::from("/"),
                        exe: path,
                        umask: 0o022,
                        blocked: None,
                        deadline: None,
                        wait_now: false,
                        fs_base: 0,
                        clear_tid: 0,
                        sigactions: [[0; 32]; 64],
                        sigmask: 0,
                    },
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The CSpace (the fault endpoint, badged with the pid) and thread of
    /// a process; the thread runs from `entry` with stack `sp`.
    fn start_thread(
        &mut self,
        pid: Pid,
        mut space: Space,
        entry: u64,
        sp: u64,
    ) -> Result<(Space, CNode, Tcb), Errno> {
        let made = (|| -> Result<(CNode, Tcb), Errno> {
            let cnode = self.broker.alloc_cnode(CNODE_BITS).map_err(nomem)?;
            let tcb: Tcb = self.broker.alloc().map_err(nomem)?;
            cnode
                .mint_from(
                    FAULT_SLOT,
                    CNODE_BITS,
                    self.cnode,
                    self.ep.cptr(),
                    CSPACE_DEPTH,
                    Rights::call_only(),
                    u64::from(pid) | (1 << CALL_BIT),
                )
                .map_err(nomem)?;
            let spaces = Spaces {
                cspace: cnode,
                radix_bits: CNODE_BITS,
                vspace: space.vspace,
            };
            tcb.configure_thread(FAULT_SLOT, PRIORITY, spaces)
                .map_err(nomem)?;
            let regs = UserContext {
                rip: entry,
                rsp: sp,
                ..Default::default()
            };
            // SAFETY: the thread runs in its own address space and CSpace,
            // built above; it cannot touch the server's memory.
            unsafe { tcb.write_registers(true, &regs) }.map_err(nomem)?;
            Ok((cnode, tcb))
        })();
        match made {
            Ok((cnode, tcb)) => Ok((space, cnode, tcb)),
            Err(e) => {
                core::mem::take(&mut space.layout);
                space.destroy(&mut self.broker);
                Err(e)
            }
        }
    }

    /// Ends process `pid` with wait status `status` (Linux encoding) and
    /// gives back everything it held.
    pub fn end(&mut self, pid: Pid, status: i32) {
        let Some(mut p) = self.procs.remove(&pid) else {
            return;
        };
        let _ = self.broker.free(p.tcb.cptr());
        let _ = self.broker.free(p.cnode.cptr());
        if let Some((_, slot)) = p.blocked.take() {
            let _ = self.broker.free_slot(slot);
        }
        for f in p.fds.drain() {
            self.release(f);
        }
        p.space.destroy(&mut self.broker);
        if pid == 1 {
            self.init_status = Some(status);
        }
        let code = (status >> 8) & 0xff;
        let sig = status & 0x7f;
        if sig != 0 {
            kaal_rt::println!("posix: pid {pid} ({}) killed by signal {sig}", p.exe);
        } else {
            kaal_rt::println!("posix: pid {pid} ({}) exited with status {code}", p.exe);
        }
    }

    pub fn kill_by_signal(&mut self, pid: Pid, sig: u32) {
        self.end(pid, (sig & 0x7f) as i32);
    }

    /// Drops a descriptor's reference to an open file description; the
    /// last one closes what it holds.
    pub fn release(&mut self, f: OpenRef) {
        if let Ok(open) = alloc::rc::Rc::try_unwrap(f) {
            if let Object::Vfs { fd, .. } = open.into_inner().object {
                let _ = self.files.close(fd);
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
        let Ok(slot) = self.broker.alloc_slot() else {
            self.kill_by_signal(pid, SIGKILL);
            return;
        };
        if self.cnode.save_caller(slot, CSPACE_DEPTH).is_err() {
            let _ = self.broker.free_slot(slot);
            self.kill_by_signal(pid, SIGKILL);
            return;
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.blocked = Some((regs, slot));
        }
    }

    /// Runs a parked call again; answers it if it completes.
    pub fn retry(&mut self, pid: Pid) {
        let Some((regs, slot)) = self.procs.get_mut(&pid).and_then(|p| p.blocked.take()) else {
            return;
        };
        match self.run_syscall(pid, regs) {
            crate::syscall::Outcome::Done(regs) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.deadline = None;
                }
                for (i, w) in regs.to_fault().into_iter().enumerate() {
                    kaal_sel4::ipc::set_mr(i, w);
                }
                kaal_sel4::cap::Endpoint::from_cptr(slot).send(kaal_sel4::ipc::MessageInfo::new(
                    0,
                    posix::regs::FAULT_WORDS,
                ));
                let _ = self.broker.free_slot(slot);
            }
            crate::syscall::Outcome::Block(regs) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.blocked = Some((regs, slot));
                }
            }
            crate::syscall::Outcome::Gone => {
                let _ = self.broker.free_slot(slot);
            }
        }
    }
}
