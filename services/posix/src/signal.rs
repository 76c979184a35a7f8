//! Linux signals for one process: the actions (`rt_sigaction`), the blocked
//! and pending sets (`rt_sigprocmask`, `rt_sigpending`), the alternate stack
//! (`sigaltstack`), which signal to act on next and how, and the x86_64
//! signal frame a handler runs on and `rt_sigreturn` unwinds
//! (`kernel/signal.c`, `arch/x86/kernel/signal.c`, `signal_64.c`).
//!
//! ```text
//!   higher addresses   interrupted stack (rsp), then 128 bytes of red zone
//!                      (or the top of the alternate stack)
//!   frame + 312        siginfo_t (128 bytes)        <- rsi
//!   frame + 8          struct ucontext (304 bytes)  <- rdx
//!   frame              pretcode = sa_restorer       <- rsp, (rsp + 8) % 16 == 0
//! ```
//!
//! What follows Linux, and where it differs:
//! - The process server sees a thread as the 18 integer registers of a seL4
//!   fault; a fault reply cannot set FP/SSE state, and no seL4 5.0 TCB
//!   invocation reads or writes it (docs/posix.md). The frame therefore has
//!   no FP area: `uc_mcontext.fpstate` is NULL (which Linux's
//!   `rt_sigreturn`, musl and glibc accept: the kernel then resets the FP
//!   state, and `uc_flags` lacks `UC_FP_XSTATE`), and a non-NULL `fpstate`
//!   given back to `rt_sigreturn` is ignored. So the interrupted code's
//!   FP/SSE registers are whatever the handler left: under the System V ABI
//!   every xmm register is caller-saved, so a handler that calls functions
//!   or does floating point may change them. Handlers that only set a flag
//!   or call `write`/`_exit` (the common case) touch none.
//! - Pending signals are the process's (shared: `kill`) and each thread's
//!   own (`tgkill`, a thread's fault), as Linux keeps them; a thread takes
//!   its own first. The server chooses which thread takes a shared one.
//! - Real-time signals (32..=64) are not queued: one pending instance each,
//!   like the standard signals.
//! - `err`, `trapno` and `cr2` of the frame: `cr2` is the fault address of a
//!   fault's `siginfo`, the others 0. `cs` is 0x33 and `ss` 0x2b (Linux's
//!   user selectors); `rt_sigreturn` ignores both (seL4 owns them).
//! - `siginfo` is always written into the frame (Linux writes it only with
//!   `SA_SIGINFO` and leaves stack garbage otherwise).
//! - The server decides what the process-wide parts mean: stopping,
//!   continuing, reaping, and Linux's rule that `SIGTSTP`, `SIGTTIN` and
//!   `SIGTTOU` are discarded in an orphaned process group.

use linux_raw_sys::general as g;

use crate::errno::Errno;
use crate::regs::Regs;

/// Signal numbers are 1..=NSIG.
pub const NSIG: u32 = g::_NSIG;
/// `sa_handler` values that are not addresses.
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// The kernel's `sigset_t` size: `rt_sig*` calls insist on it.
pub const SIGSET_SIZE: u64 = 8;
/// Linux's floor for an alternate stack.
pub const MINSIGSTKSZ: u64 = g::MINSIGSTKSZ as u64;

/// `si_code` values of `SIGCHLD`, for the parent's `siginfo` and `waitid`.
pub const CLD_EXITED: i32 = g::CLD_EXITED as i32;
pub const CLD_KILLED: i32 = g::CLD_KILLED as i32;
pub const CLD_DUMPED: i32 = g::CLD_DUMPED as i32;
pub const CLD_STOPPED: i32 = g::CLD_STOPPED as i32;
pub const CLD_CONTINUED: i32 = g::CLD_CONTINUED as i32;

/// Other `si_code` values the server sends.
pub const SI_USER: i32 = g::SI_USER as i32;
pub const SI_KERNEL: i32 = g::SI_KERNEL as i32;
pub const SI_TKILL: i32 = g::SI_TKILL;

/// The flag bits `rt_sigaction` keeps (Linux's `UAPI_SA_FLAGS` on x86);
/// others are dropped so a program can probe for support.
pub const SA_FLAGS: u64 = (g::SA_NOCLDSTOP
    | g::SA_NOCLDWAIT
    | g::SA_SIGINFO
    | g::SA_ONSTACK
    | g::SA_RESTART
    | g::SA_NODEFER
    | g::SA_RESETHAND
    | g::SA_EXPOSE_TAGBITS
    | g::SA_RESTORER) as u64;

/// The bit of `sig` in a signal set (0 for a number out of range).
pub const fn bit(sig: u32) -> u64 {
    if sig >= 1 && sig <= NSIG {
        1 << (sig - 1)
    } else {
        0
    }
}

/// Signals no mask holds back.
pub const UNBLOCKABLE: u64 = bit(g::SIGKILL) | bit(g::SIGSTOP);
const STOP_SIGNALS: u64 = bit(g::SIGSTOP) | bit(g::SIGTSTP) | bit(g::SIGTTIN) | bit(g::SIGTTOU);
/// Faults the thread raised itself: Linux delivers them before the others
/// so the handler sees the faulting context (`next_signal`'s
/// `SYNCHRONOUS_MASK`).
const SYNCHRONOUS: u64 = bit(g::SIGSEGV)
    | bit(g::SIGBUS)
    | bit(g::SIGILL)
    | bit(g::SIGTRAP)
    | bit(g::SIGFPE)
    | bit(g::SIGSYS);

fn valid(sig: u32) -> bool {
    bit(sig) != 0
}

/// A signal's action: the kernel's x86_64 `struct sigaction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: u64,
    /// `SA_*` bits.
    pub flags: u64,
    /// Where the handler returns: the C library's `rt_sigreturn` stub.
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

impl Action {
    /// Bytes of the kernel's `struct sigaction` (handler, flags, restorer,
    /// an 8-byte mask).
    pub const SIZE: usize = 32;

    pub fn decode(b: &[u8; Action::SIZE]) -> Action {
        Action {
            handler: u64_at(b, 0),
            flags: u64_at(b, 8),
            restorer: u64_at(b, 16),
            mask: u64_at(b, 24),
        }
    }

    pub fn encode(&self) -> [u8; Action::SIZE] {
        let mut b = [0; Action::SIZE];
        put(&mut b, 0, self.handler);
        put(&mut b, 8, self.flags);
        put(&mut b, 16, self.restorer);
        put(&mut b, 24, self.mask);
        b
    }

    fn has(&self, flag: u32) -> bool {
        self.flags & u64::from(flag) != 0
    }
}

/// What a signal does when its action is `SIG_DFL` (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate and report a core dump (0x80 in the wait status).
    Core,
    Ignore,
    Stop,
    /// `SIGCONT`: the process resumed when the signal was sent; delivery
    /// itself does nothing more.
    Continue,
}

/// The default action of `sig` (real-time signals terminate).
pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        g::SIGQUIT
        | g::SIGILL
        | g::SIGTRAP
        | g::SIGABRT
        | g::SIGBUS
        | g::SIGFPE
        | g::SIGSEGV
        | g::SIGXCPU
        | g::SIGXFSZ
        | g::SIGSYS => DefaultAction::Core,
        g::SIGCHLD | g::SIGURG | g::SIGWINCH => DefaultAction::Ignore,
        g::SIGSTOP | g::SIGTSTP | g::SIGTTIN | g::SIGTTOU => DefaultAction::Stop,
        g::SIGCONT => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

/// Linux's `sig_kernel_ignore`: a `SIG_DFL` that drops the signal when sent.
fn ignored_by_default(sig: u32) -> bool {
    matches!(
        default_action(sig),
        DefaultAction::Ignore | DefaultAction::Continue
    )
}

/// The alternate signal stack: the kernel's `stack_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    /// `SS_ONSTACK`, `SS_DISABLE`, `SS_AUTODISARM` bits.
    pub flags: u32,
    pub size: u64,
}

impl AltStack {
    /// Bytes of `stack_t` (the `int` flags padded to 8).
    pub const SIZE: usize = 24;
    /// None set: Linux's state at exec.
    pub const DISABLED: AltStack = AltStack {
        sp: 0,
        flags: g::SS_DISABLE,
        size: 0,
    };

    pub fn decode(b: &[u8; AltStack::SIZE]) -> AltStack {
        AltStack {
            sp: u64_at(b, 0),
            flags: u32_at(b, 8),
            size: u64_at(b, 16),
        }
    }

    pub fn encode(&self) -> [u8; AltStack::SIZE] {
        let mut b = [0; AltStack::SIZE];
        put(&mut b, 0, self.sp);
        put_bytes(&mut b, 8, &self.flags.to_le_bytes());
        put(&mut b, 16, self.size);
        b
    }

    /// Whether `sp` lies on it, whatever its flags (`__on_sig_stack`).
    fn holds(&self, sp: u64) -> bool {
        sp > self.sp && sp - self.sp <= self.size
    }
}

/// The union part of a `siginfo_t` the server fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigFields {
    None,
    /// `kill`, `tkill`, `tgkill`: the sender.
    Kill {
        pid: u32,
        uid: u32,
    },
    /// `SIGCHLD`: the child and its exit code or signal; times in clock ticks.
    Child {
        pid: u32,
        uid: u32,
        status: i32,
        utime: i64,
        stime: i64,
    },
    /// `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`: the faulting address.
    Fault {
        addr: u64,
    },
}

/// A signal's `siginfo_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub fields: SigFields,
}

impl SigInfo {
    /// Bytes of `siginfo_t`.
    pub const SIZE: usize = 128;

    /// Sent by `kill` from `pid`.
    pub fn user(sig: u32, pid: u32, uid: u32) -> SigInfo {
        SigInfo::sent(sig, SI_USER, pid, uid)
    }

    /// Sent by `tkill`/`tgkill` from `pid`.
    pub fn tkill(sig: u32, pid: u32, uid: u32) -> SigInfo {
        SigInfo::sent(sig, SI_TKILL, pid, uid)
    }

    fn sent(sig: u32, code: i32, pid: u32, uid: u32) -> SigInfo {
        SigInfo {
            signo: sig,
            errno: 0,
            code,
            fields: SigFields::Kill { pid, uid },
        }
    }

    /// Raised by the kernel (here the server) with nothing more to say:
    /// the tty's `SIGINT`, `SIGPIPE`, a failed delivery's `SIGSEGV`.
    pub fn kernel(sig: u32) -> SigInfo {
        SigInfo {
            signo: sig,
            errno: 0,
            code: SI_KERNEL,
            fields: SigFields::None,
        }
    }

    /// `SIGCHLD` for the parent: `code` is a `CLD_*`, `status` the exit code
    /// (`CLD_EXITED`) or the signal.
    pub fn child(code: i32, pid: u32, uid: u32, status: i32) -> SigInfo {
        SigInfo {
            signo: g::SIGCHLD,
            errno: 0,
            code,
            fields: SigFields::Child {
                pid,
                uid,
                status,
                utime: 0,
                stime: 0,
            },
        }
    }

    /// A fault at `addr` (`code` e.g. `SEGV_MAPERR`, `SEGV_ACCERR`).
    pub fn fault(sig: u32, code: i32, addr: u64) -> SigInfo {
        SigInfo {
            signo: sig,
            errno: 0,
            code,
            fields: SigFields::Fault { addr },
        }
    }

    /// The kernel's 128 bytes: signo, errno, code, then the union at 16.
    pub fn encode(&self) -> [u8; SigInfo::SIZE] {
        let mut b = [0; SigInfo::SIZE];
        put_bytes(&mut b, 0, &self.signo.to_le_bytes());
        put_bytes(&mut b, 4, &self.errno.to_le_bytes());
        put_bytes(&mut b, 8, &self.code.to_le_bytes());
        match self.fields {
            SigFields::None => {}
            SigFields::Kill { pid, uid } => {
                put_bytes(&mut b, 16, &pid.to_le_bytes());
                put_bytes(&mut b, 20, &uid.to_le_bytes());
            }
            SigFields::Child {
                pid,
                uid,
                status,
                utime,
                stime,
            } => {
                put_bytes(&mut b, 16, &pid.to_le_bytes());
                put_bytes(&mut b, 20, &uid.to_le_bytes());
                put_bytes(&mut b, 24, &status.to_le_bytes());
                put_bytes(&mut b, 32, &utime.to_le_bytes());
                put_bytes(&mut b, 40, &stime.to_le_bytes());
            }
            SigFields::Fault { addr } => put(&mut b, 16, addr),
        }
        b
    }
}

/// The process's memory, as the server reaches it. Any failure is `EFAULT`
/// to the caller.
pub trait UserMem {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Errno>;
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno>;
}

/// What sending a signal asks of the server beyond recording it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// It is pending now (not discarded as ignored or already pending).
    pub pending: bool,
    /// `SIGCONT` or `SIGKILL`: a stopped process runs again (Linux resumes
    /// on sending, whatever the mask or handler).
    pub resume: bool,
}

/// What the server does with the next signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// End the process; its wait status is `wait::signaled(sig, core)`.
    Terminate { sig: u32, core: bool },
    /// Stop the process (`wait::stopped(sig)`, `CLD_STOPPED` to the parent).
    Stop { sig: u32 },
    /// `SIGCONT` by default: nothing beyond what sending it did.
    Continue,
    /// Dropped.
    Ignore { sig: u32 },
    /// Run the handler: `push_frame` with these.
    Handle {
        sig: u32,
        action: Action,
        info: SigInfo,
    },
}

/// A set of pending signals and the information of each (one instance
/// per signal: real-time signals are not queued).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    set: u64,
    infos: [Option<SigInfo>; NSIG as usize],
}

impl Pending {
    const EMPTY: Pending = Pending {
        set: 0,
        infos: [None; NSIG as usize],
    };

    fn add(&mut self, info: SigInfo) {
        self.set |= bit(info.signo);
        if let Some(slot) = self.infos.get_mut(info.signo.wrapping_sub(1) as usize) {
            *slot = Some(info);
        }
    }

    /// Takes `sig` out; its information, or the kernel's when none was kept.
    fn take(&mut self, sig: u32) -> SigInfo {
        self.set &= !bit(sig);
        self.infos
            .get_mut(sig.wrapping_sub(1) as usize)
            .and_then(Option::take)
            .unwrap_or(SigInfo::kernel(sig))
    }

    fn discard(&mut self, set: u64) {
        self.set &= !set;
        for (i, info) in self.infos.iter_mut().enumerate() {
            if set & (1 << i) != 0 {
                *info = None;
            }
        }
    }
}

/// One process's signal state, with the thread in force's own part.
#[derive(Clone, Debug)]
pub struct Signals {
    actions: [Action; NSIG as usize],
    /// The process's pending signals (`kill`: any thread may take them).
    shared: Pending,
    /// The thread in force's part.
    thread: ThreadMask,
}

/// A thread's own part of the signal state (a thread of a process keeps
/// it while another thread's is in force): the blocked mask, its own
/// pending signals, the alternate stack, a waiting call's saved mask.
/// Actions and shared pending signals are the process's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadMask {
    blocked: u64,
    /// Its own pending signals (`tgkill`, its faults).
    own: Pending,
    alt: AltStack,
    /// The mask to restore after a handler when a call that waits with a
    /// temporary mask (`rt_sigsuspend`, `ppoll`, `pselect6`) was interrupted.
    saved: Option<u64>,
}

impl ThreadMask {
    /// Nothing blocked or pending, no alternate stack.
    const FRESH: ThreadMask = ThreadMask {
        blocked: 0,
        own: Pending::EMPTY,
        alt: AltStack::DISABLED,
        saved: None,
    };

    /// A new thread's: the creator's blocked mask, no alternate stack (as
    /// Linux's `clone` with `CLONE_VM`).
    pub fn inherit(from: &Signals) -> ThreadMask {
        ThreadMask {
            blocked: from.thread.blocked,
            ..ThreadMask::FRESH
        }
    }

    pub fn blocked(&self) -> u64 {
        self.blocked
    }

    /// Its own pending signals.
    pub fn pending(&self) -> u64 {
        self.own.set
    }

    /// Whether this thread would act on a signal now, its own or one of
    /// the process's `shared` ones.
    pub fn has_deliverable(&self, shared: u64) -> bool {
        (self.own.set | shared) & !self.blocked != 0
    }
}

/// A thread as [`pick_thread`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub tid: u32,
    pub blocked: u64,
    /// It has a signal to act on already (Linux's `wants_signal` passes
    /// over such a thread: it will look at the shared set anyway).
    pub busy: bool,
}

/// The thread to take process-directed signal `sig` (`complete_signal`):
/// the first of `threads` that does not block it and has nothing to act on
/// yet, else the first that does not block it, in the order given (Linux's:
/// the thread in force when it is the sender, the main thread, the others);
/// None when every thread blocks it: it stays pending for the process
/// until one unblocks it.
pub fn pick_thread(sig: u32, threads: &[Candidate]) -> Option<u32> {
    let takes = |c: &&Candidate| c.blocked & bit(sig) == 0;
    threads
        .iter()
        .filter(takes)
        .find(|c| !c.busy)
        .or(threads.iter().find(takes))
        .map(|c| c.tid)
}

impl Default for Signals {
    fn default() -> Signals {
        Signals::new()
    }
}

impl Signals {
    /// A first process's state: every action `SIG_DFL`, nothing blocked.
    pub fn new() -> Signals {
        Signals {
            actions: [Action::default(); NSIG as usize],
            shared: Pending::EMPTY,
            thread: ThreadMask::FRESH,
        }
    }

    /// Puts thread state `t` in force and keeps the one that was in `t`.
    pub fn swap_thread(&mut self, t: &mut ThreadMask) {
        core::mem::swap(&mut self.thread, t);
    }

    /// The child's state after `fork`: the calling thread's mask and the
    /// actions; no pending signal, neither shared nor its own.
    pub fn fork(&self) -> Signals {
        Signals {
            shared: Pending::EMPTY,
            thread: ThreadMask {
                own: Pending::EMPTY,
                saved: None,
                ..self.thread
            },
            ..self.clone()
        }
    }

    /// After `execve`: handled signals go back to `SIG_DFL`, ignored ones
    /// stay ignored, every action loses its flags, restorer and mask; the
    /// blocked and pending sets stay; the alternate stack is gone (it was in
    /// the old image).
    pub fn exec(&mut self) {
        for a in self.actions.iter_mut() {
            let handler = if a.handler == SIG_IGN {
                SIG_IGN
            } else {
                SIG_DFL
            };
            *a = Action {
                handler,
                ..Action::default()
            };
        }
        self.thread.alt = AltStack::DISABLED;
        self.thread.saved = None;
    }

    /// The action of `sig` (`SIG_DFL` for a number out of range).
    pub fn action(&self, sig: u32) -> Action {
        self.slot(sig)
            .and_then(|i| self.actions.get(i))
            .copied()
            .unwrap_or_default()
    }

    fn slot(&self, sig: u32) -> Option<usize> {
        valid(sig).then(|| (sig - 1) as usize)
    }

    pub fn blocked(&self) -> u64 {
        self.thread.blocked
    }

    /// Replaces the blocked set; `SIGKILL` and `SIGSTOP` are never blocked.
    pub fn set_blocked(&mut self, mask: u64) {
        self.thread.blocked = mask & !UNBLOCKABLE;
    }

    /// All pending signals of the thread in force, blocked or not: its own
    /// and the process's.
    pub fn pending(&self) -> u64 {
        self.thread.own.set | self.shared.set
    }

    /// The process's pending signals (any thread may take them).
    pub fn shared_pending(&self) -> u64 {
        self.shared.set
    }

    pub fn altstack(&self) -> AltStack {
        self.thread.alt
    }

    /// Whether `sp` is on the alternate stack as Linux counts it (never
    /// with `SS_AUTODISARM`).
    pub fn on_altstack(&self, sp: u64) -> bool {
        self.thread.alt.flags & g::SS_AUTODISARM == 0 && self.thread.alt.holds(sp)
    }

    /// `sas_ss_flags`: `SS_DISABLE`, `SS_ONSTACK` or 0.
    fn ss_flags(&self, sp: u64) -> u32 {
        if self.thread.alt.size == 0 {
            g::SS_DISABLE
        } else if self.on_altstack(sp) {
            g::SS_ONSTACK
        } else {
            0
        }
    }

    /// Linux's `sig_handler_ignored`.
    fn ignores(&self, sig: u32) -> bool {
        let h = self.action(sig).handler;
        h == SIG_IGN || (h == SIG_DFL && ignored_by_default(sig))
    }

    /// Whether terminated children are reaped without a zombie: `SIGCHLD`
    /// ignored or `SA_NOCLDWAIT`.
    pub fn reaps_children(&self) -> bool {
        let a = self.action(g::SIGCHLD);
        a.handler == SIG_IGN || a.has(g::SA_NOCLDWAIT)
    }

    /// Whether a child's stop or continue sends `SIGCHLD` (no `SA_NOCLDSTOP`).
    pub fn notifies_stop(&self) -> bool {
        !self.action(g::SIGCHLD).has(g::SA_NOCLDSTOP)
    }

    /// `do_sigaction`: installs `new` if given and returns the old action.
    /// `EINVAL` for a number out of range or an action for `SIGKILL` or
    /// `SIGSTOP`. Installing an ignoring action drops the pending signal.
    pub fn set_action(&mut self, sig: u32, new: Option<Action>) -> Result<Action, Errno> {
        let i = self.slot(sig).ok_or(Errno::EINVAL)?;
        if new.is_some() && bit(sig) & UNBLOCKABLE != 0 {
            return Err(Errno::EINVAL);
        }
        let slot = self.actions.get_mut(i).ok_or(Errno::EINVAL)?;
        let mut old = *slot;
        old.flags &= SA_FLAGS;
        if let Some(mut a) = new {
            a.flags &= SA_FLAGS;
            a.mask &= !UNBLOCKABLE;
            *slot = a;
            if self.ignores(sig) {
                self.discard(bit(sig));
            }
        }
        Ok(old)
    }

    /// After an action changed: drops from thread `t`'s own pending set
    /// what is now ignored, as `set_action` does for the thread in force
    /// and the process (Linux flushes every thread's queue).
    pub fn drop_ignored(&self, t: &mut ThreadMask) {
        let mut set = 0;
        let mut rest = t.own.set;
        while rest != 0 {
            let sig = rest.trailing_zeros() + 1;
            rest &= rest - 1;
            if self.ignores(sig) {
                set |= bit(sig);
            }
        }
        t.own.discard(set);
    }

    /// The `rt_sigaction(sig, act, oact, sigsetsize)` system call.
    pub fn rt_sigaction(
        &mut self,
        sig: u64,
        act: u64,
        oact: u64,
        sigsetsize: u64,
        mem: &mut dyn UserMem,
    ) -> Result<(), Errno> {
        if sigsetsize != SIGSET_SIZE {
            return Err(Errno::EINVAL);
        }
        let new = if act != 0 {
            let mut b = [0; Action::SIZE];
            mem.read(act, &mut b).map_err(|_| Errno::EFAULT)?;
            Some(Action::decode(&b))
        } else {
            None
        };
        // `int sig`: the upper half of the register is not looked at.
        let old = self.set_action(sig as u32, new)?;
        if oact != 0 {
            mem.write(oact, &old.encode()).map_err(|_| Errno::EFAULT)?;
        }
        Ok(())
    }

    /// `sigprocmask(how, set)`: returns the old mask; `EINVAL` for an unknown
    /// `how`.
    pub fn sigprocmask(&mut self, how: u32, set: u64) -> Result<u64, Errno> {
        let old = self.thread.blocked;
        let new = match how {
            g::SIG_BLOCK => old | set,
            g::SIG_UNBLOCK => old & !set,
            g::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        self.set_blocked(new);
        Ok(old)
    }

    /// The `rt_sigprocmask(how, set, oset, sigsetsize)` system call (`how`
    /// is looked at only when `set` is given, as Linux does).
    pub fn rt_sigprocmask(
        &mut self,
        how: u64,
        set: u64,
        oset: u64,
        sigsetsize: u64,
        mem: &mut dyn UserMem,
    ) -> Result<(), Errno> {
        if sigsetsize != SIGSET_SIZE {
            return Err(Errno::EINVAL);
        }
        let old = self.thread.blocked;
        if set != 0 {
            let new = read_u64(mem, set)?;
            self.sigprocmask(how as u32, new)?;
        }
        if oset != 0 {
            mem.write(oset, &old.to_le_bytes())
                .map_err(|_| Errno::EFAULT)?;
        }
        Ok(())
    }

    /// The `rt_sigpending(set, sigsetsize)` system call: the pending signals
    /// that are blocked.
    pub fn rt_sigpending(
        &self,
        set: u64,
        sigsetsize: u64,
        mem: &mut dyn UserMem,
    ) -> Result<(), Errno> {
        if sigsetsize > SIGSET_SIZE {
            return Err(Errno::EINVAL);
        }
        let bytes = (self.pending() & self.thread.blocked).to_le_bytes();
        let part = bytes.get(..sigsetsize as usize).ok_or(Errno::EINVAL)?;
        mem.write(set, part).map_err(|_| Errno::EFAULT)
    }

    /// `do_sigaltstack`: installs `new` if given, returns the old settings
    /// as `sigaltstack` reports them (`SS_ONSTACK` when `sp` is on it).
    /// `EPERM` while `sp` is on it, `EINVAL` for unknown flags, `ENOMEM` for
    /// a size below `MINSIGSTKSZ`.
    pub fn set_altstack(&mut self, new: Option<AltStack>, sp: u64) -> Result<AltStack, Errno> {
        let old = AltStack {
            flags: self.ss_flags(sp) | (self.thread.alt.flags & g::SS_FLAG_BITS),
            ..self.thread.alt
        };
        if let Some(ss) = new {
            if self.on_altstack(sp) {
                return Err(Errno::EPERM);
            }
            let mode = ss.flags & !g::SS_FLAG_BITS;
            if mode != g::SS_DISABLE && mode != g::SS_ONSTACK && mode != 0 {
                return Err(Errno::EINVAL);
            }
            if ss == self.thread.alt {
                return Ok(old);
            }
            self.thread.alt = if mode == g::SS_DISABLE {
                AltStack {
                    sp: 0,
                    size: 0,
                    flags: ss.flags,
                }
            } else if ss.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            } else {
                ss
            };
        }
        Ok(old)
    }

    /// The `sigaltstack(ss, oss)` system call; `sp` is the caller's stack
    /// pointer.
    pub fn sigaltstack(
        &mut self,
        ss: u64,
        oss: u64,
        sp: u64,
        mem: &mut dyn UserMem,
    ) -> Result<(), Errno> {
        let new = if ss != 0 {
            let mut b = [0; AltStack::SIZE];
            mem.read(ss, &mut b).map_err(|_| Errno::EFAULT)?;
            Some(AltStack::decode(&b))
        } else {
            None
        };
        let old = self.set_altstack(new, sp)?;
        if oss != 0 {
            mem.write(oss, &old.encode()).map_err(|_| Errno::EFAULT)?;
        }
        Ok(())
    }

    /// Sends a process-directed signal (`prepare_signal` and
    /// `send_signal`): a stop signal cancels a pending `SIGCONT` and
    /// `SIGCONT` cancels pending stops; an ignored, unblocked signal or one
    /// already pending is dropped.
    pub fn send(&mut self, info: SigInfo) -> Sent {
        self.queue(info, None)
    }

    /// Sends a signal to the thread in force alone (`tgkill`, a fault of
    /// its own).
    pub fn send_thread(&mut self, info: SigInfo) -> Sent {
        let mut own = self.thread.own;
        let sent = self.queue(info, Some((&mut own, self.thread.blocked)));
        self.thread.own = own;
        sent
    }

    /// Sends a signal to thread `t`, not in force.
    pub fn send_to(&mut self, t: &mut ThreadMask, info: SigInfo) -> Sent {
        self.queue(info, Some((&mut t.own, t.blocked)))
    }

    /// Queues `info` on `to` (a thread's own set and its mask), or on the
    /// process's set judged by the mask in force.
    fn queue(&mut self, info: SigInfo, to: Option<(&mut Pending, u64)>) -> Sent {
        let sig = info.signo;
        let b = bit(sig);
        if b == 0 {
            return Sent {
                pending: false,
                resume: false,
            };
        }
        let mut to = to;
        // Stops and SIGCONT cancel each other in the process's set and
        // the target thread's (other threads' own sets hold them rarely:
        // only `tgkill` puts them there).
        let cancel = if b & STOP_SIGNALS != 0 {
            bit(g::SIGCONT)
        } else if sig == g::SIGCONT {
            STOP_SIGNALS
        } else {
            0
        };
        if cancel != 0 {
            self.discard(cancel);
            if let Some((p, _)) = to.as_mut() {
                p.discard(cancel);
            }
        }
        let resume = sig == g::SIGCONT || sig == g::SIGKILL;
        let ignored = self.ignores(sig);
        let (pending, blocked) = match to {
            Some((p, blocked)) => (p, blocked),
            None => (&mut self.shared, self.thread.blocked),
        };
        // A blocked signal is kept: its action may change before unblocking.
        let dropped = pending.set & b != 0 || (blocked & b == 0 && ignored);
        if !dropped {
            pending.add(info);
        }
        Sent {
            pending: !dropped,
            resume,
        }
    }

    /// A fault the thread caused (`force_sig_info`): if the signal is
    /// blocked or ignored, its action becomes `SIG_DFL` and it is unblocked,
    /// so a fault is never silently lost.
    pub fn force(&mut self, info: SigInfo) -> Sent {
        let sig = info.signo;
        let b = bit(sig);
        if let Some(a) = self.slot(sig).and_then(|i| self.actions.get_mut(i)) {
            if self.thread.blocked & b != 0 || a.handler == SIG_IGN {
                a.handler = SIG_DFL;
                self.thread.blocked &= !b;
            }
        }
        self.send_thread(info)
    }

    /// `force_sigsegv`: what follows a failed `push_frame` for `sig` (or a
    /// bad `rt_sigreturn`, with `sig` = 0). A failure to deliver `SIGSEGV`
    /// itself is fatal: its action becomes `SIG_DFL`.
    pub fn force_sigsegv(&mut self, sig: u32) -> Sent {
        if sig == g::SIGSEGV {
            if let Some(a) = self.slot(sig).and_then(|i| self.actions.get_mut(i)) {
                a.handler = SIG_DFL;
            }
            self.thread.blocked &= !bit(sig);
        }
        self.force(SigInfo::kernel(g::SIGSEGV))
    }

    /// Whether a signal would be acted on now: a waiting call is then
    /// interrupted (`EINTR`, or restarted under `SA_RESTART`).
    pub fn has_deliverable(&self) -> bool {
        self.pending() & !self.thread.blocked != 0
    }

    /// `rt_sigsuspend`, `ppoll`, `pselect6`: wait with `mask` in force; the
    /// old mask comes back after the handler that ends the wait
    /// (`push_frame` saves it in the frame) or through `restore_saved_mask`.
    pub fn suspend(&mut self, mask: u64) {
        if self.thread.saved.is_none() {
            self.thread.saved = Some(self.thread.blocked);
        }
        self.set_blocked(mask);
    }

    /// Ends a `suspend` that ran no handler.
    pub fn restore_saved_mask(&mut self) {
        if let Some(m) = self.thread.saved.take() {
            self.set_blocked(m);
        }
    }

    /// Drops `set` from the process's pending signals and the thread in
    /// force's.
    fn discard(&mut self, set: u64) {
        self.shared.discard(set);
        self.thread.own.discard(set);
    }

    /// The signal [`Signals::next_deliverable`] takes next, if any: the
    /// thread's own before the process's (`dequeue_signal`).
    fn next_signal(&self) -> Option<u32> {
        let own = self.thread.own.set & !self.thread.blocked;
        let ready = if own != 0 {
            own
        } else {
            self.shared.set & !self.thread.blocked
        };
        if ready == 0 {
            return None;
        }
        let pick = if ready & bit(g::SIGKILL) != 0 {
            bit(g::SIGKILL)
        } else if ready & bit(g::SIGSTOP) != 0 {
            bit(g::SIGSTOP)
        } else if ready & SYNCHRONOUS != 0 {
            ready & SYNCHRONOUS
        } else {
            ready
        };
        Some(pick.trailing_zeros() + 1)
    }

    /// The handler's action of the signal taken next, when it has one
    /// (whether an interrupted call restarts depends on its `SA_RESTART`).
    pub fn next_pending_action(&self) -> Option<Action> {
        let a = self.action(self.next_signal()?);
        (a.handler > SIG_IGN).then_some(a)
    }

    /// `rt_sigtimedwait`: takes the lowest pending signal of `set`, blocked
    /// or not (never `SIGKILL` or `SIGSTOP`), with its information; the
    /// thread's own first.
    pub fn take_from(&mut self, set: u64) -> Option<SigInfo> {
        let set = set & !(bit(g::SIGKILL) | bit(g::SIGSTOP));
        for p in [&mut self.thread.own, &mut self.shared] {
            let ready = p.set & set;
            if ready != 0 {
                return Some(p.take(ready.trailing_zeros() + 1));
            }
        }
        None
    }

    /// Takes `sig` from the thread's own set if there, else the process's.
    fn take(&mut self, sig: u32) -> SigInfo {
        if self.thread.own.set & bit(sig) != 0 {
            self.thread.own.take(sig)
        } else {
            self.shared.take(sig)
        }
    }

    /// Whether the signal taken next stops the process (`SIGSTOP`, or a
    /// stop signal whose action is the default): a call it interrupts is
    /// not ended but runs again once the process continues.
    pub fn next_stops(&self) -> bool {
        self.next_signal().is_some_and(|sig| {
            sig == g::SIGSTOP
                || (self.action(sig).handler == SIG_DFL
                    && default_action(sig) == DefaultAction::Stop)
        })
    }

    /// Takes the next pending, unblocked signal and says what to do with it:
    /// `SIGKILL`, then `SIGSTOP`, then a synchronous fault (`SIGSEGV`,
    /// `SIGBUS`, `SIGILL`, `SIGTRAP`, `SIGFPE`, `SIGSYS`), then the lowest
    /// number. `SA_RESETHAND` resets the handler to `SIG_DFL` as it is taken.
    pub fn next_deliverable(&mut self) -> Option<Delivery> {
        let sig = self.next_signal()?;
        let i = self.slot(sig)?;
        let info = self.take(sig);
        if sig == g::SIGKILL {
            return Some(Delivery::Terminate { sig, core: false });
        }
        if sig == g::SIGSTOP {
            return Some(Delivery::Stop { sig });
        }
        let slot = self.actions.get_mut(i)?;
        let action = *slot;
        Some(match action.handler {
            SIG_IGN => Delivery::Ignore { sig },
            SIG_DFL => match default_action(sig) {
                DefaultAction::Terminate => Delivery::Terminate { sig, core: false },
                DefaultAction::Core => Delivery::Terminate { sig, core: true },
                DefaultAction::Ignore => Delivery::Ignore { sig },
                DefaultAction::Stop => Delivery::Stop { sig },
                DefaultAction::Continue => Delivery::Continue,
            },
            _ => {
                if action.has(g::SA_RESETHAND) {
                    slot.handler = SIG_DFL;
                }
                Delivery::Handle { sig, action, info }
            }
        })
    }
}

/// Layout of the x86_64 `struct rt_sigframe` (pretcode, `struct ucontext`,
/// `siginfo_t`), offsets from the frame's start.
pub mod frame {
    /// The whole frame.
    pub const SIZE: usize = UC + UC_SIZE + super::SigInfo::SIZE;
    pub const PRETCODE: usize = 0;
    /// `struct ucontext`: flags, link, `stack_t`, `struct sigcontext`, mask.
    pub const UC: usize = 8;
    pub const UC_SIZE: usize = 304;
    pub const UC_FLAGS: usize = UC;
    pub const UC_LINK: usize = UC + 8;
    pub const UC_STACK: usize = UC + 16;
    pub const UC_MCONTEXT: usize = UC + 40;
    pub const UC_SIGMASK: usize = UC + 296;
    pub const INFO: usize = UC + UC_SIZE;

    /// `struct sigcontext` (256 bytes), offsets inside it.
    pub const SC_SIZE: usize = 256;
    /// r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags: the
    /// kernel's order, 8 bytes each from 0.
    pub const SC_R8: usize = 0;
    pub const SC_RDI: usize = 64;
    pub const SC_RSI: usize = 72;
    pub const SC_RBP: usize = 80;
    pub const SC_RBX: usize = 88;
    pub const SC_RDX: usize = 96;
    pub const SC_RAX: usize = 104;
    pub const SC_RCX: usize = 112;
    pub const SC_RSP: usize = 120;
    pub const SC_RIP: usize = 128;
    pub const SC_EFLAGS: usize = 136;
    /// cs, gs, fs, ss: 2 bytes each.
    pub const SC_CS: usize = 144;
    pub const SC_GS: usize = 146;
    pub const SC_FS: usize = 148;
    pub const SC_SS: usize = 150;
    pub const SC_ERR: usize = 152;
    pub const SC_TRAPNO: usize = 160;
    pub const SC_OLDMASK: usize = 168;
    pub const SC_CR2: usize = 176;
    pub const SC_FPSTATE: usize = 184;

    /// `uc_flags`: ss is saved and restored strictly (no FP state:
    /// no `UC_FP_XSTATE`).
    pub const UC_SIGCONTEXT_SS: u64 = 0x2;
    pub const UC_STRICT_RESTORE_SS: u64 = 0x4;
    /// Linux's 64-bit user code and stack selectors.
    pub const USER_CS: u16 = 0x33;
    pub const USER_DS: u16 = 0x2b;
    /// The System V ABI's red zone below rsp, which a frame must skip.
    pub const RED_ZONE: u64 = 128;
}

/// rflags bits `rt_sigreturn` takes from the frame: the arithmetic flags,
/// direction and alignment check (Linux's `FIX_EFLAGS` without TF and RF:
/// a single-step trap would reach the server as an seL4 debug fault, not a
/// Linux `SIGTRAP`).
pub const USER_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4_0000;
/// DF, TF, RF: cleared at a handler's entry (the ABI wants DF clear).
const ENTRY_CLEAR: u64 = 0x400 | 0x100 | 0x1_0000;

/// Sets the thread up to run `action`'s handler for `sig`, as Linux's
/// `setup_rt_frame` and `signal_delivered` do: writes the frame below rsp
/// (past the red zone) or at the top of the alternate stack (`SA_ONSTACK`,
/// not already on it), points the registers at the handler (rdi = sig,
/// rsi = &info, rdx = &uc, rax = 0, rsp = frame with (rsp + 8) % 16 == 0),
/// and blocks `action.mask` and `sig` (unless `SA_NODEFER`).
///
/// `EFAULT` with nothing changed but maybe memory: no `SA_RESTORER`
/// (x86_64 requires one; musl and glibc always give it), a frame that does
/// not fit the alternate stack, or memory that cannot be written. The
/// server then calls `signals.force_sigsegv(sig)`.
pub fn push_frame(
    regs: &mut Regs,
    sig: u32,
    action: &Action,
    info: &SigInfo,
    mem: &mut dyn UserMem,
    signals: &mut Signals,
) -> Result<(), Errno> {
    use frame::*;
    if !action.has(g::SA_RESTORER) || !valid(sig) {
        return Err(Errno::EFAULT);
    }
    let nested = signals.on_altstack(regs.rsp);
    let mut sp = regs.rsp.checked_sub(RED_ZONE).ok_or(Errno::EFAULT)?;
    let mut entering = false;
    if action.has(g::SA_ONSTACK) && signals.ss_flags(sp) == 0 {
        sp = signals
            .thread
            .alt
            .sp
            .checked_add(signals.thread.alt.size)
            .ok_or(Errno::EFAULT)?;
        entering = true;
    }
    let base = sp.checked_sub(SIZE as u64).ok_or(Errno::EFAULT)? & !15;
    let at = base.checked_sub(8).ok_or(Errno::EFAULT)?;
    if (nested || entering) && !signals.thread.alt.holds(at) {
        return Err(Errno::EFAULT);
    }
    let old_mask = signals.thread.saved.unwrap_or(signals.thread.blocked);

    let mut f = [0u8; SIZE];
    put(&mut f, PRETCODE, action.restorer);
    put(&mut f, UC_FLAGS, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
    put(&mut f, UC_LINK, 0);
    put_bytes(&mut f, UC_STACK, &signals.thread.alt.encode());
    let sc = UC_MCONTEXT;
    let gprs = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.rflags,
    ];
    for (n, v) in gprs.iter().enumerate() {
        put(&mut f, sc + SC_R8 + 8 * n, *v);
    }
    put_bytes(&mut f, sc + SC_CS, &USER_CS.to_le_bytes());
    put_bytes(&mut f, sc + SC_SS, &USER_DS.to_le_bytes());
    put(&mut f, sc + SC_OLDMASK, old_mask);
    if let SigFields::Fault { addr } = info.fields {
        put(&mut f, sc + SC_CR2, addr);
    }
    put(&mut f, sc + SC_FPSTATE, 0);
    put(&mut f, UC_SIGMASK, old_mask);
    put_bytes(&mut f, INFO, &info.encode());
    mem.write(at, &f).map_err(|_| Errno::EFAULT)?;

    regs.rdi = u64::from(sig);
    regs.rsi = at + INFO as u64;
    regs.rdx = at + UC as u64;
    // For handlers declared without a prototype (varargs convention).
    regs.rax = 0;
    regs.rip = action.handler;
    regs.rsp = at;
    regs.rflags &= !ENTRY_CLEAR;

    let mut blocked = signals.thread.blocked | action.mask;
    if !action.has(g::SA_NODEFER) {
        blocked |= bit(sig);
    }
    signals.set_blocked(blocked);
    signals.thread.saved = None;
    if signals.thread.alt.flags & g::SS_AUTODISARM != 0 {
        signals.thread.alt = AltStack::DISABLED;
    }
    Ok(())
}

/// `rt_sigreturn`: the restorer called it with rsp just past the
/// `pretcode` the handler's `ret` popped, so the frame is at rsp - 8.
/// Restores every register (rflags only in `USER_FLAGS`), the blocked mask
/// (never `SIGKILL`/`SIGSTOP`) and the alternate stack settings (ignored
/// if refused, as Linux does). The server replies with `regs` as they are
/// (no `Regs::finish`: rax, rcx, r11 and rip are the interrupted code's).
///
/// `EFAULT` with nothing changed when the frame cannot be read; the server
/// then forces `SIGSEGV` (`signals.force_sigsegv(0)`).
pub fn sigreturn(
    regs: &mut Regs,
    mem: &mut dyn UserMem,
    signals: &mut Signals,
) -> Result<(), Errno> {
    use frame::*;
    let at = regs.rsp.checked_sub(8).ok_or(Errno::EFAULT)?;
    let uc_addr = at.checked_add(UC as u64).ok_or(Errno::EFAULT)?;
    let mut uc = [0u8; UC_SIZE];
    mem.read(uc_addr, &mut uc).map_err(|_| Errno::EFAULT)?;
    // Offsets relative to the ucontext buffer.
    let sc = UC_MCONTEXT - UC;
    let r = |n: usize| u64_at(&uc, sc + SC_R8 + 8 * n);
    let restored = Regs {
        r8: r(0),
        r9: r(1),
        r10: r(2),
        r11: r(3),
        r12: r(4),
        r13: r(5),
        r14: r(6),
        r15: r(7),
        rdi: u64_at(&uc, sc + SC_RDI),
        rsi: u64_at(&uc, sc + SC_RSI),
        rbp: u64_at(&uc, sc + SC_RBP),
        rbx: u64_at(&uc, sc + SC_RBX),
        rdx: u64_at(&uc, sc + SC_RDX),
        rax: u64_at(&uc, sc + SC_RAX),
        rcx: u64_at(&uc, sc + SC_RCX),
        rsp: u64_at(&uc, sc + SC_RSP),
        rip: u64_at(&uc, sc + SC_RIP),
        rflags: (regs.rflags & !USER_FLAGS) | (u64_at(&uc, sc + SC_EFLAGS) & USER_FLAGS),
    };
    signals.set_blocked(u64_at(&uc, UC_SIGMASK - UC));
    *regs = restored;
    let mut ss = [0u8; AltStack::SIZE];
    put_bytes(
        &mut ss,
        0,
        uc.get(UC_STACK - UC..UC_STACK - UC + AltStack::SIZE)
            .unwrap_or(&[0; AltStack::SIZE]),
    );
    // Linux checks against the restored stack pointer and squashes errors.
    let _ = signals.set_altstack(Some(AltStack::decode(&ss)), regs.rsp);
    Ok(())
}

/// How a system call that was waiting when a signal came wants to end
/// (Linux's internal `-ERESTART*` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// `ERESTARTSYS`: restarted unless a handler without `SA_RESTART` runs
    /// (`read`, `write`, `wait4`, `futex` wait...).
    Sys,
    /// `ERESTARTNOINTR`: always restarted.
    NoIntr,
    /// `ERESTARTNOHAND` and `ERESTART_RESTARTBLOCK`: `EINTR` if a handler
    /// runs, else restarted (`pause`, `rt_sigsuspend`, `nanosleep`, `poll`).
    NoHand,
}

/// Whether the interrupted call runs again (the server leaves rip on the
/// instruction and rax = the call's number) rather than returning `EINTR`.
/// `handler` is the action about to run, `None` when the signal was
/// ignored, stopped or continued the process.
/// Whether `sig` is one a fault raises (`SIGSEGV`, `SIGBUS`, `SIGILL`,
/// `SIGTRAP`, `SIGFPE`, `SIGSYS`): it ends even the first process.
pub fn is_fault(sig: u32) -> bool {
    bit(sig) & SYNCHRONOUS != 0
}

/// How Linux restarts system call `nr` interrupted by a signal: the waits
/// whose end a handler is ([`Restart::NoHand`]), the others as
/// [`Restart::Sys`].
pub fn restart_kind(nr: u64) -> Restart {
    match nr as u32 {
        g::__NR_poll
        | g::__NR_ppoll
        | g::__NR_select
        | g::__NR_pselect6
        | g::__NR_pause
        | g::__NR_rt_sigsuspend
        | g::__NR_rt_sigtimedwait
        | g::__NR_nanosleep
        | g::__NR_clock_nanosleep => Restart::NoHand,
        _ => Restart::Sys,
    }
}

pub fn restarts(kind: Restart, handler: Option<&Action>) -> bool {
    match (kind, handler) {
        (Restart::NoIntr, _) | (_, None) => true,
        (Restart::Sys, Some(a)) => a.has(g::SA_RESTART),
        (Restart::NoHand, Some(_)) => false,
    }
}

/// Wait statuses as `wait4` reports them.
pub mod wait {
    /// `exit(code)`: the low 8 bits of the code, in bits 8..16.
    pub fn exited(code: u32) -> u32 {
        (code & 0xff) << 8
    }

    /// Killed by `sig`, 0x80 if it dumped core.
    pub fn signaled(sig: u32, core: bool) -> u32 {
        (sig & 0x7f) | if core { 0x80 } else { 0 }
    }

    /// Stopped by `sig`.
    pub fn stopped(sig: u32) -> u32 {
        ((sig & 0xff) << 8) | 0x7f
    }

    /// Resumed by `SIGCONT` (`WCONTINUED`).
    pub const CONTINUED: u32 = 0xffff;

    /// `WIFSTOPPED`.
    pub fn is_stopped(status: u32) -> bool {
        status & 0xff == 0x7f
    }
}

fn read_u64(mem: &mut dyn UserMem, addr: u64) -> Result<u64, Errno> {
    let mut b = [0; 8];
    mem.read(addr, &mut b).map_err(|_| Errno::EFAULT)?;
    Ok(u64::from_le_bytes(b))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0; 8];
    if let Some(s) = b.get(off..off + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn put(b: &mut [u8], off: usize, v: u64) {
    put_bytes(b, off, &v.to_le_bytes());
}

/// Writes at a fixed offset of a fixed-size buffer; the layouts above keep
/// every offset in range, so a miss is a bug the tests catch, not a panic.
fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::mem::{offset_of, size_of};
    use g::{SIGCHLD, SIGCONT, SIGKILL, SIGSEGV, SIGSTOP, SIGTERM, SIGTSTP, SIGUSR1, SIGUSR2};

    /// One writable range of a process's memory; anything else faults.
    struct Mem {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Mem {
        fn new(base: u64, len: usize) -> Mem {
            Mem {
                base,
                bytes: vec![0; len],
            }
        }

        fn range(&mut self, addr: u64, len: usize) -> Result<&mut [u8], Errno> {
            let off = usize::try_from(addr.checked_sub(self.base).ok_or(Errno::EFAULT)?)
                .map_err(|_| Errno::EFAULT)?;
            self.bytes
                .get_mut(off..off.checked_add(len).ok_or(Errno::EFAULT)?)
                .ok_or(Errno::EFAULT)
        }

        fn u64(&mut self, addr: u64) -> u64 {
            let mut b = [0; 8];
            self.read(addr, &mut b).expect("readable");
            u64::from_le_bytes(b)
        }

        fn u32(&mut self, addr: u64) -> u32 {
            let mut b = [0; 4];
            self.read(addr, &mut b).expect("readable");
            u32::from_le_bytes(b)
        }
    }

    impl UserMem for Mem {
        fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
            out.copy_from_slice(self.range(addr, out.len())?);
            Ok(())
        }

        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
            self.range(addr, data.len())?.copy_from_slice(data);
            Ok(())
        }
    }

    const BASE: u64 = 0x10_0000;
    const HANDLER: u64 = 0x40_1000;
    const RESTORER: u64 = 0x40_2000;

    fn handled(flags: u32) -> Action {
        Action {
            handler: HANDLER,
            flags: u64::from(flags | g::SA_RESTORER | g::SA_SIGINFO),
            restorer: RESTORER,
            mask: bit(SIGUSR2),
        }
    }

    fn regs(rsp: u64) -> Regs {
        Regs {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rbp: 7,
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 11,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            rip: 0x40_0123,
            rsp,
            rflags: 0x202 | 0x1 | 0x40 | 0x400,
        }
    }

    #[test]
    fn layouts_match_linux_raw_sys() {
        use g::{sigaction, siginfo, siginfo__bindgen_ty_1__bindgen_ty_1 as head, stack_t};
        assert_eq!(size_of::<sigaction>(), Action::SIZE);
        assert_eq!(offset_of!(sigaction, sa_handler), 0);
        assert_eq!(offset_of!(sigaction, sa_flags), 8);
        assert_eq!(offset_of!(sigaction, sa_restorer), 16);
        assert_eq!(offset_of!(sigaction, sa_mask), 24);
        assert_eq!(size_of::<stack_t>(), AltStack::SIZE);
        assert_eq!(offset_of!(stack_t, ss_sp), 0);
        assert_eq!(offset_of!(stack_t, ss_flags), 8);
        assert_eq!(offset_of!(stack_t, ss_size), 16);
        assert_eq!(size_of::<siginfo>(), SigInfo::SIZE);
        assert_eq!(offset_of!(head, si_signo), 0);
        assert_eq!(offset_of!(head, si_errno), 4);
        assert_eq!(offset_of!(head, si_code), 8);
        let u = offset_of!(head, _sifields);
        assert_eq!(u, 16);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_1, _pid), 0);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_1, _uid), 4);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_4, _status), 8);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_4, _utime), 16);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_4, _stime), 24);
        assert_eq!(offset_of!(g::__sifields__bindgen_ty_5, _addr), 0);
        assert_eq!(frame::SIZE, 440);
    }

    /// The ucontext and sigcontext offsets against the kernel's own uapi
    /// headers, when a C compiler and the headers are on the host.
    #[test]
    fn frame_layout_matches_kernel_headers() {
        use std::process::Command;
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("o.c");
        let exe = dir.path().join("o");
        let fields = [
            ("ucontext", "uc_flags", frame::UC_FLAGS - frame::UC),
            ("ucontext", "uc_link", frame::UC_LINK - frame::UC),
            ("ucontext", "uc_stack", frame::UC_STACK - frame::UC),
            ("ucontext", "uc_mcontext", frame::UC_MCONTEXT - frame::UC),
            ("ucontext", "uc_sigmask", frame::UC_SIGMASK - frame::UC),
            ("sigcontext", "r8", frame::SC_R8),
            ("sigcontext", "r15", frame::SC_R8 + 56),
            ("sigcontext", "rdi", frame::SC_RDI),
            ("sigcontext", "rsi", frame::SC_RSI),
            ("sigcontext", "rbp", frame::SC_RBP),
            ("sigcontext", "rbx", frame::SC_RBX),
            ("sigcontext", "rdx", frame::SC_RDX),
            ("sigcontext", "rax", frame::SC_RAX),
            ("sigcontext", "rcx", frame::SC_RCX),
            ("sigcontext", "rsp", frame::SC_RSP),
            ("sigcontext", "rip", frame::SC_RIP),
            ("sigcontext", "eflags", frame::SC_EFLAGS),
            ("sigcontext", "cs", frame::SC_CS),
            ("sigcontext", "gs", frame::SC_GS),
            ("sigcontext", "fs", frame::SC_FS),
            ("sigcontext", "ss", frame::SC_SS),
            ("sigcontext", "err", frame::SC_ERR),
            ("sigcontext", "trapno", frame::SC_TRAPNO),
            ("sigcontext", "oldmask", frame::SC_OLDMASK),
            ("sigcontext", "cr2", frame::SC_CR2),
            ("sigcontext", "fpstate", frame::SC_FPSTATE),
        ];
        let mut c = std::string::String::from(
            "#include <stddef.h>\n#include <stdio.h>\n#include <asm/signal.h>\n\
             #include <asm/sigcontext.h>\n#include <asm/ucontext.h>\nint main(void) {\n\
             printf(\"%zu %zu\\n\", sizeof(struct ucontext), sizeof(struct sigcontext));\n",
        );
        for (s, f, _) in fields {
            c.push_str(&std::format!(
                "printf(\"%zu\\n\", offsetof(struct {s}, {f}));\n"
            ));
        }
        c.push_str("return 0; }\n");
        std::fs::write(&src, c).expect("write");
        let built = Command::new("cc").arg("-o").arg(&exe).arg(&src).status();
        if !built.is_ok_and(|s| s.success()) {
            std::println!("skipped: no C compiler or no Linux uapi headers");
            return;
        }
        let out = Command::new(&exe).output().expect("run");
        let text = std::string::String::from_utf8(out.stdout).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(std::format!("{} {}", frame::UC_SIZE, frame::SC_SIZE).as_str())
        );
        for ((s, f, ours), line) in fields.iter().zip(lines) {
            assert_eq!(line, std::format!("{ours}"), "{s}.{f}");
        }
    }

    #[test]
    fn sigaction_round_trips_through_kernel_bytes() {
        let a = Action {
            handler: 0x1122_3344_5566_7788,
            flags: 0x0400_0004,
            restorer: 0x99aa_bbcc_ddee_ff00,
            mask: 0x8000_0000_0000_0001,
        };
        let b = a.encode();
        assert_eq!(b[..8], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[24..], 0x8000_0000_0000_0001u64.to_le_bytes());
        assert_eq!(Action::decode(&b), a);

        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 4096);
        let mut new = handled(g::SA_RESTART);
        // An unknown flag is dropped; SIGKILL and SIGSTOP leave the mask.
        new.flags |= 0x100_0000_0000;
        new.mask |= UNBLOCKABLE | bit(SIGTERM);
        m.write(BASE, &new.encode()).expect("write");
        s.rt_sigaction(u64::from(SIGUSR1), BASE, BASE + 64, 8, &mut m)
            .expect("set");
        assert_eq!(m.u64(BASE + 64), SIG_DFL);
        s.rt_sigaction(u64::from(SIGUSR1), 0, BASE + 64, 8, &mut m)
            .expect("get");
        let mut got = [0; Action::SIZE];
        m.read(BASE + 64, &mut got).expect("read");
        let got = Action::decode(&got);
        assert_eq!(got.flags, new.flags & SA_FLAGS);
        assert_eq!(got.mask, bit(SIGUSR2) | bit(SIGTERM));
        assert_eq!((got.handler, got.restorer), (HANDLER, RESTORER));
        assert_eq!(s.action(SIGUSR1), got);
    }

    #[test]
    fn sigaction_errors() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 4096);
        m.write(BASE, &handled(0).encode()).expect("write");
        let k = u64::from(SIGKILL);
        assert_eq!(s.rt_sigaction(10, BASE, 0, 4, &mut m), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigaction(k, BASE, 0, 8, &mut m), Err(Errno::EINVAL));
        assert_eq!(
            s.rt_sigaction(u64::from(SIGSTOP), BASE, 0, 8, &mut m),
            Err(Errno::EINVAL)
        );
        assert_eq!(s.rt_sigaction(k, 0, BASE + 64, 8, &mut m), Ok(()));
        assert_eq!(s.rt_sigaction(0, 0, 0, 8, &mut m), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigaction(65, 0, 0, 8, &mut m), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigaction(64, 0, 0, 8, &mut m), Ok(()));
        assert_eq!(s.rt_sigaction(10, 8, 0, 8, &mut m), Err(Errno::EFAULT));
        assert_eq!(s.rt_sigaction(10, 0, 8, 8, &mut m), Err(Errno::EFAULT));
    }

    #[test]
    fn masks_never_hold_sigkill_or_sigstop() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 4096);
        m.write(BASE, &u64::MAX.to_le_bytes()).expect("write");
        s.rt_sigprocmask(u64::from(g::SIG_BLOCK), BASE, BASE + 8, 8, &mut m)
            .expect("block");
        assert_eq!(m.u64(BASE + 8), 0);
        assert_eq!(s.blocked(), !UNBLOCKABLE);
        assert_eq!(
            s.sigprocmask(g::SIG_UNBLOCK, bit(SIGUSR1)),
            Ok(!UNBLOCKABLE)
        );
        assert_eq!(s.blocked() & bit(SIGUSR1), 0);
        assert_eq!(
            s.sigprocmask(g::SIG_SETMASK, bit(SIGTERM)),
            Ok(!UNBLOCKABLE & !bit(SIGUSR1))
        );
        assert_eq!(s.blocked(), bit(SIGTERM));
        assert_eq!(s.sigprocmask(3, 0), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigprocmask(3, BASE, 0, 8, &mut m), Err(Errno::EINVAL));
        // Without a new set, `how` is not looked at.
        assert_eq!(s.rt_sigprocmask(3, 0, BASE + 8, 8, &mut m), Ok(()));
        assert_eq!(m.u64(BASE + 8), bit(SIGTERM));
        assert_eq!(s.rt_sigprocmask(0, 0, 0, 16, &mut m), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigprocmask(0, 8, 0, 8, &mut m), Err(Errno::EFAULT));

        // A forced fault overrides both the mask and SIG_IGN.
        s.set_blocked(bit(SIGSEGV));
        assert!(s.force(SigInfo::fault(SIGSEGV, 1, 0x10)).pending);
        assert_eq!(s.blocked() & bit(SIGSEGV), 0);
    }

    #[test]
    fn sigpending_reports_blocked_pending() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 4096);
        s.set_action(SIGUSR1, Some(handled(0))).expect("set");
        s.set_action(SIGTERM, Some(handled(0))).expect("set");
        s.set_blocked(bit(SIGUSR1));
        s.send(SigInfo::user(SIGUSR1, 5, 0));
        s.send(SigInfo::user(SIGTERM, 5, 0));
        s.rt_sigpending(BASE, 8, &mut m).expect("pending");
        assert_eq!(m.u64(BASE), bit(SIGUSR1));
        assert_eq!(s.rt_sigpending(BASE, 9, &mut m), Err(Errno::EINVAL));
        assert_eq!(s.rt_sigpending(8, 8, &mut m), Err(Errno::EFAULT));
    }

    #[test]
    fn delivery_order_and_defaults() {
        let mut s = Signals::new();
        for sig in [SIGTERM, SIGUSR1, SIGSEGV, 40] {
            s.set_action(sig, Some(handled(0))).expect("set");
        }
        for sig in [40, SIGTERM, SIGUSR1, SIGSTOP, SIGSEGV, SIGKILL, SIGUSR2] {
            assert!(s.send(SigInfo::user(sig, 7, 0)).pending);
        }
        s.set_blocked(bit(SIGUSR2));
        let mut order = Vec::new();
        while let Some(d) = s.next_deliverable() {
            order.push(d);
        }
        let h = |sig| Delivery::Handle {
            sig,
            action: handled(0),
            info: SigInfo::user(sig, 7, 0),
        };
        assert_eq!(
            order,
            [
                Delivery::Terminate {
                    sig: SIGKILL,
                    core: false
                },
                Delivery::Stop { sig: SIGSTOP },
                h(SIGSEGV),
                h(SIGUSR1),
                h(SIGTERM),
                h(40),
            ]
        );
        // Still pending, blocked; unblocked, its default terminates.
        assert_eq!(s.pending(), bit(SIGUSR2));
        s.set_blocked(0);
        assert_eq!(
            s.next_deliverable(),
            Some(Delivery::Terminate {
                sig: SIGUSR2,
                core: false
            })
        );
        s.send(SigInfo::kernel(g::SIGQUIT));
        assert_eq!(
            s.next_deliverable(),
            Some(Delivery::Terminate {
                sig: g::SIGQUIT,
                core: true
            })
        );
        s.send(SigInfo::kernel(SIGTSTP));
        assert!(s.next_stops());
        assert_eq!(s.next_deliverable(), Some(Delivery::Stop { sig: SIGTSTP }));
        assert!(!s.next_stops());
        assert_eq!(s.next_deliverable(), None);
        assert_eq!(default_action(g::SIGWINCH), DefaultAction::Ignore);
        assert_eq!(default_action(SIGCONT), DefaultAction::Continue);
        assert_eq!(default_action(64), DefaultAction::Terminate);
    }

    #[test]
    fn sending_drops_ignored_and_cancels_stop_and_continue() {
        let mut s = Signals::new();
        // Ignored by default, not blocked: dropped when sent.
        assert!(!s.send(SigInfo::child(CLD_EXITED, 3, 0, 0)).pending);
        // Blocked: kept, the action may change before it is unblocked.
        s.set_blocked(bit(SIGCHLD));
        assert!(s.send(SigInfo::child(CLD_EXITED, 3, 0, 0)).pending);
        // Already pending: not queued twice.
        assert!(!s.send(SigInfo::child(CLD_EXITED, 4, 0, 0)).pending);
        // SIG_IGN on SIGCHLD discards the pending one and reaps children.
        let ign = Action {
            handler: SIG_IGN,
            ..Action::default()
        };
        s.set_action(SIGCHLD, Some(ign)).expect("set");
        assert_eq!(s.pending(), 0);
        assert!(s.reaps_children());
        assert!(s.notifies_stop());

        s.set_blocked(!0);
        s.send(SigInfo::kernel(SIGTSTP));
        let sent = s.send(SigInfo::user(SIGCONT, 1, 0));
        assert!(sent.resume && sent.pending);
        assert_eq!(s.pending(), bit(SIGCONT));
        s.send(SigInfo::kernel(g::SIGTTIN));
        assert_eq!(s.pending(), bit(g::SIGTTIN));
        assert!(s.send(SigInfo::user(SIGKILL, 1, 0)).resume);
        s.set_blocked(0);
        assert!(matches!(
            s.next_deliverable(),
            Some(Delivery::Terminate { sig: SIGKILL, .. })
        ));
        s.send(SigInfo::user(SIGCONT, 1, 0));
        assert_eq!(s.pending(), 0, "SIGCONT's default drops it once sent");
    }

    #[test]
    fn sa_resethand_resets_as_taken() {
        let mut s = Signals::new();
        s.set_action(SIGUSR1, Some(handled(g::SA_RESETHAND)))
            .expect("set");
        s.send(SigInfo::user(SIGUSR1, 1, 0));
        assert!(matches!(
            s.next_deliverable(),
            Some(Delivery::Handle { sig: SIGUSR1, .. })
        ));
        assert_eq!(s.action(SIGUSR1).handler, SIG_DFL);
        s.send(SigInfo::user(SIGUSR1, 1, 0));
        assert!(matches!(
            s.next_deliverable(),
            Some(Delivery::Terminate { sig: SIGUSR1, .. })
        ));
    }

    #[test]
    fn frame_then_sigreturn_restores_registers_and_mask() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 0x4000);
        let top = BASE + 0x3ff3;
        let before = regs(top);
        let mut r = before;
        s.set_blocked(bit(SIGTERM));
        let action = handled(0);
        let info = SigInfo::user(SIGUSR1, 42, 1000);
        push_frame(&mut r, SIGUSR1, &action, &info, &mut m, &mut s).expect("push");

        let f = r.rsp;
        assert_eq!((f + 8) % 16, 0);
        assert!(f + frame::SIZE as u64 <= top - frame::RED_ZONE);
        assert_eq!(
            (r.rip, r.rdi, r.rsi, r.rdx, r.rax),
            (HANDLER, u64::from(SIGUSR1), f + 312, f + 8, 0)
        );
        assert_eq!(r.rflags & 0x400, 0, "DF clear at entry");
        assert_eq!(s.blocked(), bit(SIGTERM) | bit(SIGUSR1) | bit(SIGUSR2));
        assert_eq!(m.u64(f), RESTORER);
        let sc = f + frame::UC_MCONTEXT as u64;
        assert_eq!(m.u64(sc + frame::SC_RIP as u64), before.rip);
        assert_eq!(m.u64(sc + frame::SC_RSP as u64), top);
        assert_eq!(m.u64(sc + frame::SC_R8 as u64), 8);
        assert_eq!(m.u64(sc + frame::SC_RCX as u64), 3);
        assert_eq!(m.u64(sc + frame::SC_FPSTATE as u64), 0);
        assert_eq!(m.u64(sc + frame::SC_OLDMASK as u64), bit(SIGTERM));
        assert_eq!(m.u64(f + frame::UC_SIGMASK as u64), bit(SIGTERM));
        assert_eq!(m.u32(f + frame::UC_STACK as u64 + 8), g::SS_DISABLE);
        assert_eq!(m.u32(r.rsi), SIGUSR1);
        assert_eq!(m.u32(r.rsi + 8), SI_USER as u32);
        assert_eq!(m.u32(r.rsi + 16), 42);
        assert_eq!(m.u32(r.rsi + 20), 1000);

        // The handler runs, clobbers registers, `ret` pops pretcode into
        // rip, and the restorer's `syscall` brings rt_sigreturn.
        let mut after = Regs {
            rsp: r.rsp + 8,
            rip: RESTORER,
            rflags: 0x246,
            ..Regs::default()
        };
        sigreturn(&mut after, &mut m, &mut s).expect("sigreturn");
        assert_eq!(after, before);
        assert_eq!(s.blocked(), bit(SIGTERM));
    }

    #[test]
    fn sigreturn_sanitises_flags_and_mask() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 0x4000);
        let mut r = regs(BASE + 0x4000);
        push_frame(
            &mut r,
            SIGUSR1,
            &handled(0),
            &SigInfo::kernel(SIGUSR1),
            &mut m,
            &mut s,
        )
        .expect("push");
        let sc = r.rsp + frame::UC_MCONTEXT as u64;
        m.write(sc + frame::SC_EFLAGS as u64, &u64::MAX.to_le_bytes())
            .expect("write");
        m.write(r.rsp + frame::UC_SIGMASK as u64, &u64::MAX.to_le_bytes())
            .expect("write");
        r.rsp += 8;
        r.rflags = 0x202;
        sigreturn(&mut r, &mut m, &mut s).expect("sigreturn");
        assert_eq!(r.rflags, 0x202 | USER_FLAGS);
        assert_eq!(s.blocked(), !UNBLOCKABLE);
    }

    #[test]
    fn alignment_for_every_stack_pointer() {
        for low in 0..64u64 {
            let mut s = Signals::new();
            let mut m = Mem::new(BASE, 0x2000);
            let mut r = regs(BASE + 0x1f00 + low);
            push_frame(
                &mut r,
                SIGUSR1,
                &handled(0),
                &SigInfo::kernel(SIGUSR1),
                &mut m,
                &mut s,
            )
            .expect("push");
            assert_eq!((r.rsp + 8) % 16, 0, "rsp low bits {low}");
            assert!(r.rsp + frame::SIZE as u64 <= BASE + 0x1f00 + low - 128);
        }
    }

    #[test]
    fn alternate_stack_use_and_nesting() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 0x10000);
        let alt = AltStack {
            sp: BASE + 0x8000,
            flags: 0,
            size: 0x4000,
        };
        let normal = BASE + 0x4000;
        let mut io = Mem::new(0x1000, 64);
        io.write(0x1000, &alt.encode()).expect("write");
        s.sigaltstack(0x1000, 0x1020, normal, &mut io).expect("set");
        assert_eq!(
            AltStack::decode(&{
                let mut b = [0; 24];
                io.read(0x1020, &mut b).expect("read");
                b
            }),
            AltStack::DISABLED
        );
        let onstack = handled(g::SA_ONSTACK);
        let mut r = regs(normal);
        push_frame(
            &mut r,
            SIGUSR1,
            &onstack,
            &SigInfo::kernel(SIGUSR1),
            &mut m,
            &mut s,
        )
        .expect("push");
        assert!(r.rsp > alt.sp && r.rsp + frame::SIZE as u64 <= alt.sp + alt.size);
        assert_eq!((r.rsp + 8) % 16, 0);
        // Saved as it was; reported as in use from the handler.
        assert_eq!(m.u64(r.rsp + frame::UC_STACK as u64), alt.sp);
        assert_eq!(
            s.set_altstack(None, r.rsp).map(|a| a.flags),
            Ok(g::SS_ONSTACK)
        );
        assert_eq!(
            s.set_altstack(Some(AltStack::DISABLED), r.rsp),
            Err(Errno::EPERM)
        );

        // A nested signal on the alternate stack goes below the current
        // frame, even without SA_ONSTACK.
        let first = r.rsp;
        let mut r2 = r;
        push_frame(
            &mut r2,
            SIGUSR2,
            &handled(0),
            &SigInfo::kernel(SIGUSR2),
            &mut m,
            &mut s,
        )
        .expect("nested");
        assert!(r2.rsp + frame::SIZE as u64 <= first - 128 && r2.rsp > alt.sp);

        // Returning from both leaves the stack and its settings as they were.
        r2.rsp += 8;
        sigreturn(&mut r2, &mut m, &mut s).expect("inner");
        assert_eq!(r2.rsp, first);
        r2.rsp += 8;
        sigreturn(&mut r2, &mut m, &mut s).expect("outer");
        assert_eq!(r2.rsp, normal);
        assert_eq!(s.altstack(), alt);
        assert_eq!(s.blocked(), 0);

        // Too deep on the alternate stack: no frame, the server sends SIGSEGV.
        let mut deep = regs(alt.sp + 0x100);
        assert_eq!(
            push_frame(
                &mut deep,
                SIGUSR1,
                &onstack,
                &SigInfo::kernel(SIGUSR1),
                &mut m,
                &mut s
            ),
            Err(Errno::EFAULT)
        );
        assert_eq!(deep, regs(alt.sp + 0x100));
    }

    #[test]
    fn sigaltstack_errors_and_autodisarm() {
        let mut s = Signals::new();
        let sp = 0x7000_0000;
        let small = AltStack {
            sp: 0x1000,
            flags: 0,
            size: MINSIGSTKSZ - 1,
        };
        assert_eq!(s.set_altstack(Some(small), sp), Err(Errno::ENOMEM));
        let bad = AltStack {
            flags: 4,
            size: MINSIGSTKSZ,
            ..small
        };
        assert_eq!(s.set_altstack(Some(bad), sp), Err(Errno::EINVAL));
        let auto = AltStack {
            sp: 0x1_0000,
            flags: g::SS_AUTODISARM,
            size: 0x4000,
        };
        assert_eq!(s.set_altstack(Some(auto), sp), Ok(AltStack::DISABLED));
        let mut io = Mem::new(0x1000, 24);
        assert_eq!(s.sigaltstack(0x2000, 0, sp, &mut io), Err(Errno::EFAULT));

        // SS_AUTODISARM: the stack is disarmed while the handler runs (so
        // sigaltstack is allowed from it) and comes back at sigreturn.
        let mut m = Mem::new(0x1_0000, 0x10000);
        let mut r = regs(0x1_c000);
        push_frame(
            &mut r,
            SIGUSR1,
            &handled(g::SA_ONSTACK),
            &SigInfo::kernel(SIGUSR1),
            &mut m,
            &mut s,
        )
        .expect("push");
        assert!(r.rsp < 0x1_4000);
        assert_eq!(s.altstack(), AltStack::DISABLED);
        r.rsp += 8;
        sigreturn(&mut r, &mut m, &mut s).expect("sigreturn");
        assert_eq!(s.altstack(), auto);
        assert_eq!(
            s.set_altstack(Some(AltStack::DISABLED), sp),
            Ok(AltStack {
                flags: g::SS_AUTODISARM,
                ..auto
            })
        );
        assert_eq!(s.altstack().size, 0);
    }

    #[test]
    fn damaged_or_impossible_frames_fail() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 0x1000);
        s.set_blocked(bit(SIGTERM));
        let mut r = regs(0x9000_0000);
        assert_eq!(sigreturn(&mut r, &mut m, &mut s), Err(Errno::EFAULT));
        assert_eq!(r, regs(0x9000_0000));
        assert_eq!(s.blocked(), bit(SIGTERM));
        // A frame cut off by the end of memory.
        let mut r = regs(BASE + 0x1000 - 100);
        assert_eq!(sigreturn(&mut r, &mut m, &mut s), Err(Errno::EFAULT));
        // rsp below the frame size.
        let mut r = regs(4);
        assert_eq!(sigreturn(&mut r, &mut m, &mut s), Err(Errno::EFAULT));

        // No SA_RESTORER, or no memory for the frame: nothing changes.
        let mut r = regs(BASE + 0x1000);
        let mut no_restorer = handled(0);
        no_restorer.flags &= !u64::from(g::SA_RESTORER);
        let info = SigInfo::kernel(SIGUSR1);
        assert_eq!(
            push_frame(&mut r, SIGUSR1, &no_restorer, &info, &mut m, &mut s),
            Err(Errno::EFAULT)
        );
        let mut r = regs(0x9000_0000);
        assert_eq!(
            push_frame(&mut r, SIGUSR1, &handled(0), &info, &mut m, &mut s),
            Err(Errno::EFAULT)
        );
        assert_eq!((r, s.blocked()), (regs(0x9000_0000), bit(SIGTERM)));

        // Failing to deliver SIGSEGV itself is fatal.
        s.set_action(SIGSEGV, Some(handled(0))).expect("set");
        s.force_sigsegv(SIGSEGV);
        assert!(matches!(
            s.next_deliverable(),
            Some(Delivery::Terminate {
                sig: SIGSEGV,
                core: true
            })
        ));
        // Failing another signal sends a SIGSEGV its handler may catch.
        s.set_action(SIGSEGV, Some(handled(0))).expect("set");
        s.force_sigsegv(SIGUSR1);
        assert!(matches!(
            s.next_deliverable(),
            Some(Delivery::Handle { sig: SIGSEGV, .. })
        ));
    }

    #[test]
    fn suspend_mask_is_saved_in_the_frame() {
        let mut s = Signals::new();
        let mut m = Mem::new(BASE, 0x4000);
        s.set_action(SIGUSR1, Some(handled(0))).expect("set");
        s.set_blocked(bit(SIGUSR1) | bit(SIGTERM));
        s.suspend(bit(SIGTERM));
        s.send(SigInfo::user(SIGUSR1, 1, 0));
        assert!(s.has_deliverable());
        let Some(Delivery::Handle { sig, action, info }) = s.next_deliverable() else {
            panic!("expected a handler");
        };
        let mut r = regs(BASE + 0x4000);
        push_frame(&mut r, sig, &action, &info, &mut m, &mut s).expect("push");
        assert_eq!(
            m.u64(r.rsp + frame::UC_SIGMASK as u64),
            bit(SIGUSR1) | bit(SIGTERM)
        );
        r.rsp += 8;
        sigreturn(&mut r, &mut m, &mut s).expect("sigreturn");
        assert_eq!(s.blocked(), bit(SIGUSR1) | bit(SIGTERM));

        s.suspend(0);
        s.restore_saved_mask();
        assert_eq!(s.blocked(), bit(SIGUSR1) | bit(SIGTERM));
    }

    #[test]
    fn fork_and_exec() {
        let mut s = Signals::new();
        s.set_action(SIGUSR1, Some(handled(0))).expect("set");
        let ign = Action {
            handler: SIG_IGN,
            flags: u64::from(g::SA_RESTART),
            ..Action::default()
        };
        s.set_action(SIGTERM, Some(ign)).expect("set");
        s.set_blocked(bit(SIGUSR2));
        s.send(SigInfo::user(SIGUSR2, 1, 0));
        s.set_altstack(
            Some(AltStack {
                sp: 0x1000,
                flags: 0,
                size: 0x4000,
            }),
            0x9000_0000,
        )
        .expect("altstack");
        let child = s.fork();
        assert_eq!(child.pending(), 0);
        assert_eq!(child.action(SIGUSR1), s.action(SIGUSR1));
        assert_eq!(
            (child.blocked(), child.altstack()),
            (s.blocked(), s.altstack())
        );

        s.exec();
        assert_eq!(s.action(SIGUSR1), Action::default());
        assert_eq!(
            s.action(SIGTERM),
            Action {
                handler: SIG_IGN,
                ..Action::default()
            }
        );
        assert_eq!((s.blocked(), s.pending()), (bit(SIGUSR2), bit(SIGUSR2)));
        assert_eq!(s.altstack(), AltStack::DISABLED);
    }

    #[test]
    fn siginfo_bytes() {
        let c = SigInfo::child(CLD_KILLED, 77, 1000, SIGTERM as i32).encode();
        assert_eq!(c[..4], SIGCHLD.to_le_bytes());
        assert_eq!(c[8..12], CLD_KILLED.to_le_bytes());
        assert_eq!(c[16..20], 77u32.to_le_bytes());
        assert_eq!(c[20..24], 1000u32.to_le_bytes());
        assert_eq!(c[24..28], (SIGTERM as i32).to_le_bytes());
        let f = SigInfo::fault(SIGSEGV, g::SEGV_MAPERR as i32, 0xdead_beef_0000).encode();
        assert_eq!(f[16..24], 0xdead_beef_0000u64.to_le_bytes());
        assert_eq!(SigInfo::tkill(SIGUSR1, 1, 0).code, -6);
    }

    #[test]
    fn restart_rules() {
        let restart = handled(g::SA_RESTART);
        let plain = handled(0);
        assert!(restarts(Restart::Sys, Some(&restart)));
        assert!(!restarts(Restart::Sys, Some(&plain)));
        assert!(restarts(Restart::Sys, None));
        assert!(!restarts(Restart::NoHand, Some(&restart)));
        assert!(restarts(Restart::NoHand, None));
        assert!(restarts(Restart::NoIntr, Some(&plain)));
    }

    #[test]
    fn wait_statuses() {
        assert_eq!(wait::exited(3), 0x300);
        assert_eq!(wait::exited(256 + 1), 0x100);
        assert_eq!(wait::signaled(SIGTERM, false), 15);
        assert_eq!(wait::signaled(SIGSEGV, true), 0x8b);
        assert_eq!(wait::stopped(SIGTSTP), 0x147f);
        assert_eq!(wait::CONTINUED, 0xffff);
        assert_eq!(
            (
                CLD_EXITED,
                CLD_KILLED,
                CLD_DUMPED,
                CLD_STOPPED,
                CLD_CONTINUED
            ),
            (1, 2, 3, 5, 6)
        );
    }

    #[test]
    fn only_a_default_stop_stops() {
        let mut s = Signals::new();
        s.send(SigInfo::kernel(SIGTSTP));
        assert!(s.next_stops());
        s.set_action(SIGTSTP, Some(handled(0))).expect("set");
        assert!(!s.next_stops(), "a handled SIGTSTP runs its handler");
        s.set_blocked(bit(SIGTSTP));
        s.send(SigInfo::user(SIGSTOP, 1, 0));
        assert!(s.next_stops(), "SIGSTOP cannot be handled or blocked");
        assert!(wait::is_stopped(wait::stopped(SIGSTOP)));
        assert!(!wait::is_stopped(wait::CONTINUED));
        assert!(!wait::is_stopped(wait::exited(0)));
        assert!(!wait::is_stopped(wait::signaled(SIGTSTP, false)));
    }

    #[test]
    fn sigtimedwait_takes_from_its_set_only() {
        let mut s = Signals::new();
        s.set_blocked(bit(SIGUSR1) | bit(SIGUSR2) | bit(SIGTERM));
        s.send(SigInfo::user(SIGUSR2, 7, 0));
        s.send(SigInfo::user(SIGTERM, 8, 0));
        assert_eq!(s.take_from(bit(SIGUSR1)), None);
        let got = s.take_from(bit(SIGUSR1) | bit(SIGUSR2)).expect("SIGUSR2");
        assert_eq!(got.signo, SIGUSR2);
        assert_eq!(got, SigInfo::user(SIGUSR2, 7, 0));
        assert_eq!(s.pending(), bit(SIGTERM));
        assert_eq!(s.take_from(u64::MAX).map(|i| i.signo), Some(SIGTERM));
        assert_eq!(s.take_from(u64::MAX), None);
        s.send(SigInfo::user(SIGKILL, 1, 0));
        assert_eq!(s.take_from(u64::MAX), None, "SIGKILL is never waited for");
    }

    #[test]
    fn waits_end_with_eintr_when_a_handler_runs() {
        let restart = Action {
            handler: 0x1000,
            flags: u64::from(g::SA_RESTART),
            ..Action::default()
        };
        for nr in [
            g::__NR_ppoll,
            g::__NR_pselect6,
            g::__NR_rt_sigsuspend,
            g::__NR_nanosleep,
        ] {
            assert!(!restarts(restart_kind(u64::from(nr)), Some(&restart)));
            assert!(restarts(restart_kind(u64::from(nr)), None));
        }
        assert!(restarts(
            restart_kind(u64::from(g::__NR_read)),
            Some(&restart)
        ));
        assert!(!restarts(
            restart_kind(u64::from(g::__NR_read)),
            Some(&handled(0))
        ));
    }
    #[test]
    fn threads_keep_their_masks() {
        let mut s = Signals::new();
        s.set_blocked(bit(g::SIGUSR1));
        let mut other = ThreadMask::inherit(&s);
        assert_eq!(other.blocked(), bit(g::SIGUSR1));
        s.set_blocked(bit(g::SIGUSR2));
        s.swap_thread(&mut other);
        assert_eq!(s.blocked(), bit(g::SIGUSR1));
        assert_eq!(other.blocked(), bit(g::SIGUSR2));
        s.swap_thread(&mut other);
        assert_eq!(s.blocked(), bit(g::SIGUSR2));
    }

    #[test]
    fn a_process_signal_goes_to_a_thread_not_blocking_it() {
        let usr1 = bit(g::SIGUSR1);
        let c = |tid, blocked, busy| Candidate { tid, blocked, busy };
        assert_eq!(
            pick_thread(
                g::SIGUSR1,
                &[c(1, usr1, false), c(2, 0, false), c(3, 0, false)]
            ),
            Some(2)
        );
        assert_eq!(
            pick_thread(g::SIGUSR1, &[c(1, 0, false), c(2, usr1, false)]),
            Some(1)
        );
        // One with a signal to act on already is passed over if another
        // can take it, and taken if none can.
        assert_eq!(
            pick_thread(g::SIGUSR1, &[c(1, 0, true), c(2, 0, false)]),
            Some(2)
        );
        assert_eq!(
            pick_thread(g::SIGUSR1, &[c(1, 0, true), c(2, usr1, false)]),
            Some(1)
        );
        // All block it: none; it waits in the process's set.
        assert_eq!(
            pick_thread(g::SIGUSR1, &[c(4, usr1, false), c(2, usr1, false)]),
            None
        );
        assert_eq!(pick_thread(g::SIGUSR1, &[]), None);
    }

    #[test]
    fn a_thread_signal_stays_with_its_thread() {
        let mut s = Signals::new();
        let mut other = ThreadMask::inherit(&s);
        // Sent to the thread not in force: only its set holds it.
        assert!(s.send_to(&mut other, SigInfo::tkill(SIGUSR1, 1, 0)).pending);
        assert_eq!(other.pending(), bit(SIGUSR1));
        assert_eq!(s.pending(), 0);
        assert!(!s.has_deliverable());
        assert!(other.has_deliverable(s.shared_pending()));
        // Already pending for that thread: dropped; for another: kept.
        assert!(!s.send_to(&mut other, SigInfo::tkill(SIGUSR1, 1, 0)).pending);
        assert!(s.send_thread(SigInfo::tkill(SIGUSR1, 1, 0)).pending);
        // rt_sigpending shows the thread's own and the process's.
        s.set_blocked(bit(SIGUSR1) | bit(SIGUSR2));
        assert!(s.send(SigInfo::user(SIGUSR2, 1, 0)).pending);
        let mut mem = Mem::new(0x1000, 8);
        s.rt_sigpending(0x1000, 8, &mut mem).unwrap();
        assert_eq!(u64_at(&mem.bytes, 0), bit(SIGUSR1) | bit(SIGUSR2));
        s.swap_thread(&mut other);
        // The other thread sees its own SIGUSR1 and the shared SIGUSR2.
        assert_eq!(s.pending(), bit(SIGUSR1) | bit(SIGUSR2));
        s.swap_thread(&mut other);
        // The thread's own is taken before the process's.
        s.set_blocked(0);
        let Some(Delivery::Terminate { sig, .. }) = s.next_deliverable() else {
            panic!("SIGUSR1 first");
        };
        assert_eq!(sig, SIGUSR1);
        assert_eq!(s.take_from(bit(SIGUSR2)).map(|i| i.signo), Some(SIGUSR2));
        assert_eq!(s.pending(), 0);
        // An action that ignores drops the signal from every thread.
        s.set_action(
            SIGUSR1,
            Some(Action {
                handler: SIG_IGN,
                ..Action::default()
            }),
        )
        .unwrap();
        s.drop_ignored(&mut other);
        assert_eq!(other.pending(), 0);
    }

    #[test]
    fn fork_keeps_the_mask_and_drops_every_pending_signal() {
        let mut s = Signals::new();
        s.set_blocked(bit(SIGUSR1) | bit(SIGUSR2));
        s.send(SigInfo::user(SIGUSR1, 1, 0));
        s.send_thread(SigInfo::tkill(SIGUSR2, 1, 0));
        let child = s.fork();
        assert_eq!(child.blocked(), bit(SIGUSR1) | bit(SIGUSR2));
        assert_eq!(child.pending(), 0);
    }

    #[test]
    fn a_fault_is_the_threads_own() {
        let mut s = Signals::new();
        let mut other = ThreadMask::inherit(&s);
        s.force(SigInfo::fault(SIGSEGV, 1, 0));
        assert_eq!(s.shared_pending(), 0);
        s.swap_thread(&mut other);
        assert_eq!(s.pending(), 0);
        s.swap_thread(&mut other);
        assert_eq!(s.pending(), bit(SIGSEGV));
    }
}
