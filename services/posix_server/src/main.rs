//! The process server (the guide's POSIX server): runs unmodified static
//! Linux x86_64 programs from the VFS as seL4 processes, each in its own
//! VSpace with a CSpace holding nothing but its fault endpoint, built over
//! the untyped memory the manifest grants this component. Every Linux
//! system call arrives here as a fault (the `syscall` instructions were
//! rewritten to `int $0xa0` at load) and is answered with Linux's
//! semantics; see docs/posix.md.
#![no_std]
#![no_main]

extern crate alloc;

mod alarms;
mod attrs;
mod deliver;
mod events;
mod files;
mod futex;
mod inet;
mod jobs;
mod pool;
mod process;
mod programs;
mod readiness;
mod shmfile;
mod signals;
mod space;
mod syscall;
mod threads;
mod unix;
mod window;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use kaal_broker::sel4::Sel4Kernel;
use kaal_client::file::Files;
use kaal_client::serial::SerialClient;
use kaal_client::timer::TimerClient;
use kaal_rt::start::CALL_BIT;
use kaal_rt::time::Clock;
use kaal_rt::{println, Env};
use kaal_sel4::cap::{CNode, Cap, Endpoint};
use kaal_sel4::fault::label;
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::Word;
use posix::random::Random;
use posix::regs::{Regs, FAULT_WORDS};

use process::{Pid, Process};

pub use pool::Broker;

/// Why the server could not start.
#[derive(Debug)]
enum StartError {
    Budget,
    Files,
    Broker(kaal_broker::BrokerError),
    NoProgram,
    Spawn(posix::errno::Errno),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Budget => f.write_str("no untyped budget granted (manifest `untyped`)"),
            StartError::Files => f.write_str("no `fs` file channel to the VFS"),
            StartError::Broker(e) => write!(f, "broker: {e}"),
            StartError::NoProgram => {
                f.write_str("no program to run: the manifest's `args` name none")
            }
            StartError::Spawn(e) => write!(f, "the first program could not start: errno {}", e.0),
        }
    }
}

/// The console: the line discipline over the serial driver's rings, or,
/// with no serial channel, output printed line by line through the
/// supervisor (and no input).
pub struct Console {
    serial: Option<SerialClient>,
    pub tty: posix::tty::Tty,
    /// Output not yet ended by a newline, when printing through the
    /// supervisor.
    line: Vec<u8>,
    /// A signal typed while a call was running, raised after it.
    pending_signal: Option<posix::tty::Signal>,
}

impl Console {
    /// Processes `data` as the tty's output and sends it on; returns the
    /// bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let mut done = 0;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            match self.tty.write(rest) {
                Ok((0, _)) | Err(_) => {
                    if self.tty.pending_output().is_empty() {
                        break;
                    }
                }
                Ok((n, _)) => done += n,
            }
            self.flush();
        }
        self.flush();
        done
    }

    /// Sends what the tty has for the driver (echo included).
    pub fn flush(&mut self) {
        let out = self.tty.pending_output().to_vec();
        if out.is_empty() {
            return;
        }
        if let Some(s) = self.serial.as_mut() {
            let _ = s.send(&out);
        } else {
            for &b in &out {
                match b {
                    b'\n' => {
                        let text = String::from_utf8_lossy(&self.line);
                        println!("{text}");
                        self.line.clear();
                    }
                    b'\r' => {}
                    _ if self.line.len() < 512 => self.line.push(b),
                    _ => {}
                }
            }
        }
        self.tty.consume_output(out.len());
    }

    /// Takes input for a call that looks at it; a signal typed is raised
    /// at the next wake-up, not inside the call.
    pub fn poll_input_only(&mut self) {
        if let Some(sig) = self.poll_input() {
            self.pending_signal = Some(sig);
        }
    }

    /// Feeds what the driver delivered to the line discipline; returns the
    /// signal typed (^C, ^\\, ^Z), if any.
    fn poll_input(&mut self) -> Option<posix::tty::Signal> {
        let mut signal = None;
        if let Some(s) = self.serial.as_mut() {
            while self.tty.accepts_input() {
                let Ok(Some(chunk)) = s.rx.try_recv() else {
                    break;
                };
                let fx = self.tty.input_bytes(chunk.bytes());
                signal = fx.signal.or(signal);
            }
        }
        self.flush();
        signal
    }
}

pub struct Server {
    pub broker: Broker,
    /// This component's own CNode (to mint fault endpoints from).
    pub cnode: CNode,
    /// The endpoint every process faults to.
    pub ep: Endpoint,
    pub files: Files,
    pub console: Console,
    pub timer: Option<TimerClient>,
    /// Every timerfd made: their expiries wake the server.
    pub timerfds: Vec<alloc::rc::Weak<core::cell::RefCell<posix::events::TimerFd>>>,
    /// Every epoll made: their interests together are bounded.
    pub epolls: events::Epolls,
    /// The deadline the timer was last asked for and has not answered:
    /// asking again for it would only fill the driver's queue (each wake
    /// would ask, and a full queue's refusal wakes the server again).
    pub timer_asked: Option<u64>,
    /// The network service's sockets, when the manifest grants them
    /// (boxed: the server lives on the stack).
    pub inet: Option<alloc::boxed::Box<inet::Inet>>,
    /// Bound AF_UNIX names and live connections.
    pub unix_names: unix::Names,
    pub clock: Clock,
    pub random: Random,
    pub procs: BTreeMap<Pid, Process>,
    /// The threads of processes with more than one, by tid.
    pub threads: BTreeMap<Pid, threads::Thread>,
    /// Threads parked in `futex` waits, per futex word.
    pub futexes: posix::futex::Futexes,
    /// The shared pages of `MAP_SHARED` file mappings (`shmfile.rs`).
    pub shm: shmfile::Cache,
    /// Bytes of the untyped budget.
    pub budget_bytes: u64,
    /// Programs loaded before, with their read-only frames.
    pub programs: programs::Programs,
    pub next_pid: Pid,
    /// Unimplemented system calls asked for: number to count.
    pub missing: BTreeMap<u64, u64>,
    /// Exit status of the first process, when it has ended.
    pub init_status: Option<i32>,
    /// Something a parked call may wait for changed (a process ended, a
    /// pipe end closed): parked calls run again before the next sleep.
    pub changed: bool,
    /// The process whose system call is being answered (its signals are
    /// taken on the answer).
    pub current: Option<Pid>,
    /// Process groups an ending process may have orphaned, for the loop
    /// to look at (`jobs::hang_up_orphans`).
    pub orphan_checks: Vec<Pid>,
    /// An answer to the fault just served, its words in the IPC buffer:
    /// it goes with the next receive (one system call for both), and
    /// nothing may use the IPC buffer before.
    pub reply: Option<MessageInfo>,
    /// Say so when any process exits (not only pid 1).
    pub verbose_exits: bool,
    /// Print every system call and its result (`--strace` first in
    /// `args`).
    pub strace: bool,
}

impl Server {
    fn dispatch_fault(&mut self, badge: Word, info: MessageInfo) {
        // The badge names the thread; its state is put in force.
        let tid = (badge & ((1 << CALL_BIT) - 1)) as Pid;
        let Some(pid) = self.install(tid) else {
            return;
        };
        if self.procs.get(&pid).is_none_or(|p| p.zombie.is_some()) {
            return;
        }
        match info.label() {
            label::UNKNOWN_SYSCALL if info.length() > FAULT_WORDS => {
                let words: [u64; FAULT_WORDS] = core::array::from_fn(ipc::mr);
                let regs = Regs::from_fault(words);
                self.current = Some(pid);
                self.syscall(pid, regs);
                self.current = None;
            }
            label::VM_FAULT => {
                let addr = ipc::mr(kaal_sel4::sys::seL4_VMFault_Addr as usize);
                let fsr = ipc::mr(kaal_sel4::sys::seL4_VMFault_FSR as usize);
                let exec = ipc::mr(kaal_sel4::sys::seL4_VMFault_PrefetchFault as usize) != 0;
                let ip = ipc::mr(kaal_sel4::sys::seL4_VMFault_IP as usize);
                if self.strace {
                    println!("posix: [{pid}] page fault at {addr:#x} (ip {ip:#x}, fsr {fsr:#x})");
                }
                self.page_fault(pid, ip, addr, fsr & 2 != 0, exec);
            }
            label::USER_EXCEPTION => {
                let vector = ipc::mr(kaal_sel4::sys::seL4_UserException_Number as usize);
                // #DE and #MF/#XM are arithmetic (SIGFPE), the rest SIGILL
                // (#UD) or SIGSEGV (#GP and the others).
                let ip = ipc::mr(kaal_sel4::sys::seL4_UserException_FaultIP as usize);
                println!("posix: pid {pid}: CPU exception {vector} at ip {ip:#x}");
                let sig = match vector {
                    0 | 16 | 19 => process::SIGFPE,
                    6 => process::SIGILL,
                    _ => process::SIGSEGV,
                };
                self.kill_by_signal(pid, sig);
            }
            label::CAP_FAULT => {
                // A raw `syscall` that escaped rewriting with rdx naming a
                // seL4 call that looks a capability up: patch the site and
                // run it again as a Linux call.
                let ip = ipc::mr(0);
                self.late_patch(pid, ip);
            }
            // A fault the server does not serve, or a message the kernel
            // did not make (the process called its fault endpoint through
            // a raw `syscall`): the process dies as of a bad instruction.
            _ => {
                println!(
                    "posix: pid {pid}: unexpected message (label {})",
                    info.label()
                );
                self.kill_by_signal(pid, process::SIGSEGV);
            }
        }
    }

    fn page_fault(&mut self, pid: Pid, ip: u64, addr: u64, write: bool, exec: bool) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        match p.space.fault(&mut self.broker, addr, write, exec) {
            Ok(()) => self.reply = Some(MessageInfo::new(0, 0)),
            Err(posix::errno::Errno::ENOMEM) => {
                println!("posix: pid {pid}: out of memory at {addr:#x}");
                self.kill_by_signal(pid, process::SIGKILL);
            }
            Err(posix::errno::Errno::ENXIO) => {
                match self.shm_fault(pid, addr) {
                    Ok(()) => self.reply = Some(MessageInfo::new(0, 0)),
                    Err(posix::errno::Errno::ENOMEM) => {
                        println!("posix: pid {pid}: out of memory at {addr:#x}");
                        self.kill_by_signal(pid, process::SIGKILL);
                    }
                    Err(_) => {
                        println!("posix: pid {pid}: bus error: {addr:#x} lies beyond the mapped file's end");
                        self.kill_by_signal(pid, process::SIGBUS);
                    }
                }
            }
            Err(_) => {
                let what = if write {
                    "write"
                } else if exec {
                    "fetch"
                } else {
                    "read"
                };
                println!("posix: pid {pid}: segmentation fault: {what} at {addr:#x} (ip {ip:#x})");
                self.kill_by_signal(pid, process::SIGSEGV);
            }
        }
    }

    /// Answers a parked call through the reply capability saved in `slot`.
    pub fn reply_saved(slot: u64, regs: &Regs) {
        for (i, w) in regs.to_fault().into_iter().enumerate() {
            ipc::set_mr(i, w);
        }
        Endpoint::from_cptr(slot).send(MessageInfo::new(0, FAULT_WORDS));
    }

    /// Answers a system call through the reply capability the kernel
    /// holds for the caller: the words go into the IPC buffer now, and
    /// the answer with the server's next receive ([`Server::serve`]).
    pub fn reply_now(&mut self, regs: &Regs) {
        for (i, w) in regs.to_fault().into_iter().enumerate() {
            ipc::set_mr(i, w);
        }
        self.reply = Some(MessageInfo::new(0, FAULT_WORDS));
    }

    /// Something changed (input, a timer, a child): runs every blocked
    /// call again.
    fn wake(&mut self) {
        let typed = self
            .console
            .poll_input()
            .or(self.console.pending_signal.take());
        if let Some(sig) = typed {
            self.tty_signal(sig.number());
        }
        if let Some(t) = self.timer.as_mut() {
            while let Ok(Some(_)) = t.poll_answer() {
                self.timer_asked = None;
            }
        }
        self.inet_drain();
        self.fire_alarms();
        self.deliver_threads();
        let blocked: Vec<Pid> = self
            .procs
            .iter()
            .filter(|(_, p)| p.blocked.is_some() && p.stopped.is_none())
            .map(|(&pid, _)| pid)
            .collect();
        for pid in blocked {
            self.retry(pid);
        }
        self.retry_threads();
        self.arm_timer();
    }

    /// Whether a call of any process or thread waits.
    fn any_parked(&self) -> bool {
        self.procs.values().any(|p| p.blocked.is_some()) || self.parked_threads().next().is_some()
    }

    /// Asks the timer for the earliest deadline a blocked call waits for.
    fn arm_timer(&mut self) {
        // A stopped process's deadline waits until it continues (asking
        // for a time past would wake the server again at once).
        let next = self
            .procs
            .values()
            .filter(|p| p.stopped.is_none())
            .filter_map(|p| p.deadline)
            .chain(self.parked_threads().filter_map(|(_, d)| d))
            .min();
        // A timerfd's expiry wakes parked readers, pollers and epolls; a
        // process's interval timer sends SIGALRM, parked or not.
        let timerfd = self.any_parked().then(|| self.timerfd_next()).flatten();
        let next = [next, timerfd, self.next_alarm()]
            .into_iter()
            .flatten()
            .min();
        // Only a deadline earlier than the one asked for and not yet
        // answered is asked for: the earlier answer wakes the server in
        // time for a later one, and later deadlines asked each time (an
        // `alarm` per forked child) would fill the driver's queue, whose
        // refusals wake the server again and again.
        if let (Some(t), Some(at)) = (self.timer.as_mut(), next) {
            let earlier = self.timer_asked.is_none_or(|asked| at.ticks() < asked);
            if earlier && t.ask(at).is_ok() {
                self.timer_asked = Some(at.ticks());
            }
        }
    }

    /// Tells the console's and the timer's drivers this server sleeps;
    /// false if something arrived meanwhile (then it must not sleep).
    fn prepare_sleep(&mut self) -> bool {
        let mut quiet = true;
        if let Some(s) = self.console.serial.as_mut() {
            quiet &= matches!(s.rx.prepare_sleep(), Ok(false));
        }
        if let Some(t) = self.timer.as_mut() {
            quiet &= matches!(t.fired_ring().prepare_sleep(), Ok(false));
        }
        if let Some(i) = self.inet.as_mut() {
            quiet &= matches!(i.net.prepare_sleep(), Ok(false));
        }
        quiet
    }

    fn cancel_sleep(&mut self) {
        if let Some(s) = self.console.serial.as_mut() {
            s.rx.cancel_sleep();
        }
        if let Some(t) = self.timer.as_mut() {
            t.fired_ring().cancel_sleep();
        }
        if let Some(i) = self.inet.as_mut() {
            i.net.cancel_sleep();
        }
    }

    fn serve(&mut self) -> i32 {
        loop {
            self.changed |= self.inet_news();
            if let Some(reply) = self.reply.take() {
                let quiet = !self.changed && self.live() > 0;
                if quiet && self.prepare_sleep() {
                    let (info, badge) = self.ep.reply_recv(reply);
                    self.cancel_sleep();
                    self.received(info, badge);
                    continue;
                }
                if quiet {
                    self.cancel_sleep();
                }
                ipc::reply(reply);
            }
            if !self.orphan_checks.is_empty() {
                let groups = core::mem::take(&mut self.orphan_checks);
                self.hang_up_orphans(&groups);
                continue;
            }
            if self.live() == 0 {
                return self.init_status.unwrap_or(0);
            }
            if core::mem::take(&mut self.changed) {
                self.wake();
                continue;
            }
            if !self.prepare_sleep() {
                self.cancel_sleep();
                self.wake();
                continue;
            }
            let (info, badge) = self.ep.recv();
            self.cancel_sleep();
            self.received(info, badge);
        }
    }

    /// A message or a notification came.
    fn received(&mut self, info: MessageInfo, badge: Word) {
        if badge & (1 << CALL_BIT) == 0 {
            // A signal on the bound notification: serial input or a timer.
            self.wake();
            return;
        }
        self.dispatch_fault(badge, info);
        if self.any_parked() {
            self.arm_timer();
        }
    }
}

/// The component's command line (`args` in the manifest): leading
/// `NAME=value` words are the environment, then the program and its
/// arguments.
fn command(env: &Env) -> (Vec<String>, Vec<String>) {
    let mut envp = Vec::new();
    let mut argv = Vec::new();
    for a in env.args() {
        if argv.is_empty() && envp.is_empty() && a == "--strace" {
            continue;
        }
        if argv.is_empty() && a.contains('=') && !a.starts_with('/') {
            envp.push(String::from(a));
        } else {
            argv.push(String::from(a));
        }
    }
    (argv, envp)
}

fn main(env: &Env) -> Result<(), StartError> {
    let budget = env.budget().map_err(|_| StartError::Budget)?;
    let cnode = budget.cnode;
    let blocks = budget
        .untypeds()
        .map(|u| kaal_broker::untyped::UntypedRoot {
            cptr: u.cptr,
            paddr: u.paddr,
            bits: u.size_bits,
            device: false,
        });
    let cfg =
        kaal_broker::BrokerConfig::for_component(budget.vspace, budget.free_slots.clone(), blocks);
    let mut broker = Broker::new(kaal_broker::Broker::new(
        Sel4Kernel::component(budget.cnode, budget.asid_pool),
        cfg,
    ));
    let ep: Endpoint = broker.alloc().map_err(StartError::Broker)?;
    let files = Files::new(env, "fs").map_err(|_| StartError::Files)?;
    let serial = SerialClient::new(env).ok();
    let timer = TimerClient::new(env).ok();
    // Without the sockets channels, `socket` is EAFNOSUPPORT.
    let inet = kaal_client::socket::Sockets::new(env)
        .ok()
        .map(|s| alloc::boxed::Box::new(inet::Inet::new(s)));
    let clock = env
        .clock()
        .or_else(|| Clock::new(1000))
        .ok_or(StartError::Budget)?;
    let (argv, envp) = command(env);
    if argv.is_empty() {
        return Err(StartError::NoProgram);
    }
    let mut server = Server {
        broker,
        cnode,
        ep,
        files,
        console: Console {
            serial,
            tty: posix::tty::Tty::new(),
            line: Vec::new(),
            pending_signal: None,
        },
        timer,
        timerfds: Vec::new(),
        epolls: Default::default(),
        timer_asked: None,
        inet,
        unix_names: unix::Names::default(),
        clock,
        random: Random::new(kaal_rt::rdtsc()),
        procs: BTreeMap::new(),
        threads: BTreeMap::new(),
        futexes: posix::futex::Futexes::new(),
        shm: shmfile::Cache::new(shmfile::MAX_PAGES),
        programs: programs::Programs::default(),
        budget_bytes: budget.bytes(),
        next_pid: 1,
        missing: BTreeMap::new(),
        init_status: None,
        strace: env.args().next() == Some("--strace"),
        changed: false,
        current: None,
        verbose_exits: false,
        reply: None,
        orphan_checks: Vec::new(),
    };
    let free = server.broker.free_ram_bytes();
    println!(
        "posix: serving Linux programs ({} MiB of memory); starting {}",
        free >> 20,
        argv.join(" ")
    );
    server.exec_first(&argv, &envp).map_err(StartError::Spawn)?;
    let status = server.serve();
    if !server.missing.is_empty() {
        let list: Vec<String> = server
            .missing
            .iter()
            .map(|(n, c)| alloc::format!("{n} ({c}x)"))
            .collect();
        println!(
            "posix: system calls asked for and missing: {}",
            list.join(", ")
        );
    }
    for p in server.programs.clear() {
        server.forget(p);
    }
    server.broker.drain();
    let _ = server.broker.coalesce();
    println!(
        "posix: the first process ended with wait status {status:#x}; memory {} of {} bytes back",
        server.broker.free_ram_bytes(),
        free
    );
    Ok(())
}

kaal_rt::component!(main);
