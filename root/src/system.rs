//! Spawning and supervising the components of a packed system image.
//!
//! For each component the root task builds a fresh address space from its
//! ELF program (text read-only, data read-write), a one-level CSpace, a TCB,
//! IPC buffer, stack, heap and start-info page, grants exactly the channels
//! and devices the manifest names, and starts it. Every component's fault
//! endpoint is the root task's supervisor endpoint, badged with the
//! component's number, so faults and exits arrive here with their sender.

use alloc::vec::Vec;
use core::fmt;

use kaal_broker::device::{DeviceId, DeviceInfo, DeviceKey, Holder};
use kaal_broker::kernel::{Access, Cache};
use kaal_broker::{BrokerError, Memory};
use kaal_loader::{LoadError, LoadPlan, Perm};
use kaal_manifest::image::{ChannelImage, ComponentImage, ImageError, SystemImage};
use kaal_manifest::{ChannelKind, DeviceSpec, Restart};
use kaal_protocols::console::{Chunk, CHUNK_BYTES, RING_SLOTS as SERIAL_SLOTS};
use kaal_ring::{Consumer, Notify, Producer, SharedRing};
use kaal_rt::start::{
    self, layout, slot, CapEntry, CapKind, PciConfigPage, StartInfo, CSPACE_BITS,
};
use kaal_rt::Signal;
use kaal_sel4::cap::{
    init, CNode, Cap, Endpoint, Frame, Notification, Pml4, Rights, Spaces, Tcb, UserContext,
};
use kaal_sel4::fault::Fault;
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::{println, CPtr, Word};

use crate::{Context, RootBroker, RootError};

const PAGE: u64 = 4096;

/// Why a component could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The program is not a loadable image.
    Image(LoadError),
    /// The broker or kernel refused a step.
    Root(RootError),
    /// The manifest asks for something the start-info page cannot hold.
    TooMany(&'static str),
    /// The manifest names a device this machine does not have.
    NoDevice(DeviceSpec),
    /// The device needs a grant not yet supported for components.
    Unsupported(&'static str),
}

impl From<RootError> for SpawnError {
    fn from(e: RootError) -> Self {
        SpawnError::Root(e)
    }
}

impl From<BrokerError> for SpawnError {
    fn from(e: BrokerError) -> Self {
        SpawnError::Root(RootError::Broker(e))
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Image(e) => write!(f, "bad program: {e}"),
            SpawnError::Root(e) => write!(f, "{e}"),
            SpawnError::TooMany(what) => write!(f, "too many {what}"),
            SpawnError::NoDevice(d) => write!(f, "no device {d:?} on this machine"),
            SpawnError::Unsupported(what) => write!(f, "{what}"),
        }
    }
}

/// What a component holds while it runs; all of it goes back on stop.
#[derive(Debug)]
struct Running {
    tcb: Tcb,
    cnode: CNode,
    vspace: Pml4,
    memory: Vec<Memory>,
    /// Root-CNode copies of shared frames, mapped into this component.
    copies: Vec<CPtr>,
    /// Its slot for each endpoint channel it is a client of.
    endpoint_slots: Vec<(usize, CPtr)>,
    /// Where the next device region goes in its address space.
    device_at: u64,
    /// Where its program was loaded (to recognise its `syscall`s).
    plan: LoadPlan,
    devices: Vec<DeviceId>,
}

/// A channel's kernel objects, owned by the root task for the life of the
/// system (they outlive a restart of either end).
#[derive(Debug)]
enum ChannelObjects {
    Endpoint(Endpoint),
    /// Its shared memory; each end signals the other's notification.
    Ring {
        memory: Memory,
    },
    /// A region both ends map read-write.
    Shared {
        memory: Memory,
    },
}

/// Where a component stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// `main` returned (`Ok` if the code is 0).
    Exited(Word),
    /// Stopped after a fault or panic (restart policy `stop`).
    Stopped,
    /// Could not be started.
    Failed,
}

/// What the supervisor saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Exited {
        component: usize,
        code: Word,
    },
    Faulted {
        component: usize,
        fault: Fault,
    },
    Panicked {
        component: usize,
    },
    /// A capability fault answered with an error; the component goes on.
    CapRefused {
        component: usize,
        fault: Fault,
    },
    Restarted {
        component: usize,
        restarts: u64,
    },
    Stopped {
        component: usize,
    },
}

/// What the caller of [`System::supervise`] wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Finish,
}

#[derive(Debug)]
struct Slot {
    state: State,
    restarts: u64,
    /// Capability faults answered with an error in this incarnation.
    refusals: u64,
    running: Option<Running>,
    /// It exited, faulted or panicked, and has not been stopped or
    /// restarted yet: its thread does no more work.
    ended: bool,
}

/// Restarts after which a component that keeps failing is stopped instead.
pub const RESTART_LIMIT: u64 = 1000;

/// Capability faults answered with an error, per incarnation, after which
/// the next one is treated as a fault (a component looping on one).
pub const REFUSAL_LIMIT: u64 = 10_000;

/// A running system: its image, components and channels.
#[derive(Debug)]
pub struct System<'a> {
    image: SystemImage<'a>,
    supervisor: Endpoint,
    channels: Vec<ChannelObjects>,
    components: Vec<Slot>,
    /// Each component's notification; it outlives restarts, so the peers'
    /// signalling capabilities stay valid.
    notifications: Vec<Notification>,
    console: Option<Console>,
}

/// The ring on which the root task hands components' console lines to the
/// serial driver the manifest names as `console`.
#[derive(Debug)]
struct Console {
    component: usize,
    memory: Memory,
    ring: Producer<'static, Chunk, SERIAL_SLOTS>,
    /// Signals the driver (its notification, with the ring's bit).
    signal: Signal,
    /// The bit the ring's signals carry at the driver.
    bit: Word,
    /// The producer's notification, which the driver signals as it releases
    /// slots; bound to the root task's thread only while it waits for the
    /// ring to drain (the supervisor never blocks on a full ring).
    own: Notification,
    /// Lines that went through the driver, and lines printed directly (the
    /// driver not running, or the ring full).
    forwarded: u64,
    direct: u64,
}

/// The badge of the console driver's "slots released" signal: above every
/// component's supervisor badge, so the supervisor, waiting with `own`
/// bound, tells it from their messages.
const CONSOLE_DRAINED: Word = 1 << 27;

/// The badge on a component's supervisor capability (0 stays "no badge").
fn badge_of(index: usize) -> Word {
    index as Word + 1
}

/// A client's badge on an endpoint channel: its place among the clients.
pub fn client_badge(position: usize) -> Word {
    position as Word + 1
}

impl<'a> System<'a> {
    /// Decodes the embedded image and makes every channel's objects; starts
    /// nothing yet.
    pub fn new(broker: &mut RootBroker, bytes: &'a [u8]) -> Result<Self, SystemError> {
        let image = SystemImage::decode(bytes).map_err(SystemError::Image)?;
        let supervisor: Endpoint = broker.alloc().map_err(RootError::from)?;
        let mut channels = Vec::new();
        for ch in &image.channels {
            channels.push(make_channel(broker, ch)?);
        }
        let mut notifications = Vec::new();
        for _ in &image.components {
            notifications.push(broker.alloc::<Notification>()?);
        }
        let components = image
            .components
            .iter()
            .map(|_| Slot {
                state: State::Failed,
                restarts: 0,
                refusals: 0,
                running: None,
                ended: false,
            })
            .collect();
        let console = match image.console {
            Some(c) => Some(make_console(
                broker,
                &image,
                usize::from(c),
                &notifications,
            )?),
            None => None,
        };
        Ok(System {
            notifications,
            image,
            supervisor,
            channels,
            components,
            console,
        })
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// The component's name.
    pub fn name(&self, i: usize) -> &'a str {
        self.image.components.get(i).map(|c| c.name).unwrap_or("?")
    }

    /// The index of the component called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.image.component(name).map(|(i, _)| i)
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.components.get(i).map(|s| s.state)
    }

    /// Starts every component; one that cannot start is reported and
    /// skipped, and the rest still start.
    pub fn start_all(&mut self, broker: &mut RootBroker) {
        for i in 0..self.components.len() {
            if let Err(e) = self.spawn(broker, i) {
                println!("KaaL: component `{}` not started: {e}", self.name(i));
            }
        }
    }

    /// Starts component `i` (which must not be running).
    pub fn spawn(&mut self, broker: &mut RootBroker, i: usize) -> Result<(), SpawnError> {
        let comp = self
            .image
            .components
            .get(i)
            .ok_or(SpawnError::TooMany("components"))?;
        let slot = self
            .components
            .get_mut(i)
            .ok_or(SpawnError::TooMany("components"))?;
        if slot.running.is_some() {
            return Err(SpawnError::Unsupported("component is already running"));
        }
        let plan = match kaal_loader::plan(comp.elf, layout::IMAGE_WINDOW) {
            Ok(p) => p,
            Err(e) => {
                slot.state = State::Failed;
                return Err(SpawnError::Image(e));
            }
        };
        let mut r = Running {
            plan,
            tcb: Tcb::from_cptr(0),
            cnode: CNode::from_cptr(0),
            vspace: Pml4::from_cptr(0),
            memory: Vec::new(),
            copies: Vec::new(),
            endpoint_slots: Vec::new(),
            device_at: layout::DEVICE_BASE,
            devices: Vec::new(),
        };
        let ctx = SpawnContext {
            index: i,
            restarts: slot.restarts,
            comp,
            channels: &self.image.channels,
            objects: &self.channels,
            supervisor: self.supervisor,
            notifications: &self.notifications,
            console: self.console.as_ref().filter(|c| c.component == i),
        };
        match build(broker, &ctx, &mut r) {
            Ok(()) => {
                slot.running = Some(r);
                slot.state = State::Running;
                slot.refusals = 0;
                slot.ended = false;
                Ok(())
            }
            Err(e) => {
                slot.state = State::Failed;
                if let Err(t) = teardown(broker, i, r) {
                    println!("KaaL: cleaning up after `{}`: {t}", comp.name);
                }
                Err(e)
            }
        }
    }

    /// Stops component `i` and gives everything it held back to the broker.
    pub fn stop(&mut self, broker: &mut RootBroker, i: usize) -> Result<(), RootError> {
        let Some(slot) = self.components.get_mut(i) else {
            return Ok(());
        };
        if slot.state == State::Running {
            slot.state = State::Stopped;
        }
        let Some(r) = slot.running.take() else {
            return Ok(());
        };
        teardown(broker, i, r)?;
        self.drain_console(i);
        self.release_callers(i)
    }

    /// After server `i` stopped: every call its clients had in flight to it
    /// (queued, or received and waiting for the reply that will not come)
    /// returns [`kaal_rpc::RpcError::ServerGone`]. A client blocked in that
    /// call is recognised by its registers: the `syscall` it is in is a Call
    /// on its capability to this server's endpoint.
    fn release_callers(&mut self, i: usize) -> Result<(), RootError> {
        let Ok(server) = u16::try_from(i) else {
            return Ok(());
        };
        for (c, ch) in self.image.channels.iter().enumerate() {
            if ch.to.component != server || ch.kind != ChannelKind::Endpoint {
                continue;
            }
            for end in &ch.from {
                let client = usize::from(end.component);
                let Some(r) = self.components.get(client).and_then(|s| s.running.as_ref()) else {
                    continue;
                };
                let Some(elf) = self.image.components.get(client).map(|c| c.elf) else {
                    continue;
                };
                let Some(slot) = r
                    .endpoint_slots
                    .iter()
                    .find(|(n, _)| *n == c)
                    .map(|(_, s)| *s)
                else {
                    continue;
                };
                let in_call = |regs: &UserContext| {
                    regs.rdx == kaal_sel4::sys::seL4_SysCall as Word && regs.rdi == slot
                };
                // Resumed at once: it was blocked in its own Call.
                r.fail_syscall(elf, in_call, kaal_rpc::RpcError::ServerGone.label(), true)?;
            }
        }
        Ok(())
    }

    /// Waits for components' reports and faults, applies each component's
    /// restart policy, and tells `on_event` what happened until it says
    /// `Finish` (or no component is left running).
    pub fn supervise(
        &mut self,
        broker: &mut RootBroker,
        mut on_event: impl FnMut(&Self, Event) -> Control,
    ) -> Result<(), RootError> {
        while self.components.iter().any(|s| s.state == State::Running) {
            let (info, badge) = self.supervisor.recv();
            let Some(i) = (badge as usize).checked_sub(1).filter(|i| *i < self.len()) else {
                continue; // not from a component of ours: nothing to answer
            };
            let label = info.label();
            let event = if let Some(fault) = Fault::decode(label, info.length(), ipc::mr) {
                match fault {
                    Fault::Cap {
                        receiving: false, ..
                    } if self.refuse_cap(i, fault)? => Event::CapRefused {
                        component: i,
                        fault,
                    },
                    _ => {
                        println!("KaaL: component `{}` faulted: {fault}", self.name(i));
                        Event::Faulted {
                            component: i,
                            fault,
                        }
                    }
                }
            } else if label == kaal_protocols::supervisor::EXIT {
                let code = ipc::mr(0);
                println!("KaaL: component `{}` exited ({code})", self.name(i));
                Event::Exited { component: i, code }
            } else if label == kaal_protocols::supervisor::CONSOLE {
                self.print_line(info.length());
                ipc::reply(MessageInfo::new(0, 0));
                continue;
            } else if label == kaal_protocols::supervisor::PANIC {
                println!("KaaL: component `{}` panicked", self.name(i));
                Event::Panicked { component: i }
            } else {
                // Not a request the supervisor knows: answer with an error.
                ipc::reply(MessageInfo::new(
                    kaal_sel4::Error::IllegalOperation.code(),
                    0,
                ));
                continue;
            };
            if let Event::Exited { component, .. }
            | Event::Faulted { component, .. }
            | Event::Panicked { component } = event
            {
                if let Some(s) = self.components.get_mut(component) {
                    s.ended = true;
                }
            }
            if on_event(self, event) == Control::Finish {
                return Ok(());
            }
            match self.apply_policy(broker, event) {
                Ok(Some(next)) => {
                    if on_event(self, next) == Control::Finish {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                // One component's trouble does not end the system's
                // supervision; what could not be freed stays lost.
                Err(e) => println!("KaaL: stopping `{}`: {e}", self.name(i)),
            }
        }
        Ok(())
    }

    /// Supervises until every component in `names` has exited with `Ok`.
    /// Anything else that happens first (a fault, a failed exit, another
    /// component ending) is printed and fails.
    pub fn expect_clean_exits(
        &mut self,
        broker: &mut RootBroker,
        names: &[&str],
    ) -> Result<(), RootError> {
        let mut waiting = Vec::new();
        for n in names {
            waiting.push(self.index(n).ok_or(RootError::Check("no such component"))?);
        }
        let mut bad = false;
        self.supervise(broker, |_, e| {
            match e {
                Event::Exited { component, code: 0 } if waiting.contains(&component) => {
                    waiting.retain(|&w| w != component);
                }
                e => {
                    println!("KaaL: unexpected while waiting for exits: {e:?}");
                    bad = true;
                }
            }
            if bad || waiting.is_empty() {
                Control::Finish
            } else {
                Control::Continue
            }
        })?;
        self.flush_console();
        if bad || !waiting.is_empty() {
            return Err(RootError::Check("the components did not all exit cleanly"));
        }
        Ok(())
    }

    /// After an exit, fault or panic: restart or stop per the manifest.
    fn apply_policy(
        &mut self,
        broker: &mut RootBroker,
        event: Event,
    ) -> Result<Option<Event>, RootError> {
        let (i, failed) = match event {
            Event::Exited { component, code } => (component, code != 0),
            Event::Faulted { component, .. } | Event::Panicked { component } => (component, true),
            _ => return Ok(None),
        };
        self.stop(broker, i)?;
        let policy = self
            .image
            .components
            .get(i)
            .map(|c| c.restart)
            .unwrap_or_default();
        let Some(slot) = self.components.get_mut(i) else {
            return Ok(None);
        };
        if let Event::Exited { code, .. } = event {
            if !failed {
                slot.state = State::Exited(code);
                return Ok(None);
            }
        }
        if policy == Restart::Restart && slot.restarts < RESTART_LIMIT {
            slot.restarts += 1;
            let restarts = slot.restarts;
            println!("KaaL: restarting `{}` (restart {restarts})", self.name(i));
            if let Err(e) = self.spawn(broker, i) {
                println!("KaaL: component `{}` not restarted: {e}", self.name(i));
                return Ok(Some(Event::Stopped { component: i }));
            }
            Ok(Some(Event::Restarted {
                component: i,
                restarts,
            }))
        } else {
            slot.state = match event {
                Event::Exited { code, .. } => State::Exited(code),
                _ => State::Stopped,
            };
            println!("KaaL: component `{}` stopped", self.name(i));
            Ok(Some(Event::Stopped { component: i }))
        }
    }

    /// Answers a capability fault with an `InvalidCapability` error: the
    /// component's invocation returns that error and it carries on. (seL4
    /// turns an invocation of a CPtr outside the CSpace into a fault; KaaL
    /// hands it back to the caller as an ordinary error.) Returns `false`
    /// when it must be handled as a fault instead: the thread is not where
    /// the message says (a forged report) or it keeps doing this.
    fn refuse_cap(&mut self, i: usize, fault: Fault) -> Result<bool, RootError> {
        let elf = self.image.components.get(i).map(|c| c.elf).unwrap_or(&[]);
        let Some(slot) = self.components.get_mut(i) else {
            return Ok(false);
        };
        let Some(r) = slot.running.as_ref() else {
            return Ok(false);
        };
        slot.refusals += 1;
        if slot.refusals > REFUSAL_LIMIT {
            return Ok(false);
        }
        let at_fault = |regs: &UserContext| regs.rip == fault.ip();
        let code = kaal_sel4::Error::InvalidCapability.code();
        // Not resumed here: the reply to the fault resumes it.
        if !r.fail_syscall(elf, at_fault, code, false)? {
            return Ok(false);
        }
        ipc::reply(MessageInfo::new(0, 0));
        Ok(true)
    }
}

impl System<'_> {
    /// Prints a component's console line from the message registers (MR0
    /// the byte count, then the bytes), at most what the message carries:
    /// through the console driver when there is one and it runs, else (or
    /// for what its ring has no room for) on the kernel's debug console.
    fn print_line(&mut self, length: usize) {
        let mut out = [0u8; kaal_protocols::supervisor::LINE_BYTES];
        let line = kaal_protocols::supervisor::decode_line(length, ipc::mr, &mut out);
        let live = self.console_running();
        if let Some(c) = self.console.as_mut().filter(|_| live) {
            // The whole line one way: through the driver if its ring has
            // room for all of it, else directly.
            let chunks = line.len().div_ceil(CHUNK_BYTES).max(1);
            if c.ring.free().is_ok_and(|f| f >= chunks) {
                let mut rest = line;
                for _ in 0..chunks {
                    let (chunk, took) = Chunk::from_bytes(rest);
                    // Room was checked; the ring is ours to fill.
                    let _ = c.ring.push(chunk);
                    rest = rest.get(took..).unwrap_or(&[]);
                }
                if c.ring.publish() {
                    c.signal.notify();
                }
                c.forwarded += 1;
                return;
            }
            c.direct += 1;
        }
        kaal_sel4::console::DebugConsole.write_bytes(line);
    }

    /// Whether the console driver runs (and has not just ended: an exit or
    /// fault the caller of `supervise` has not yet had applied).
    fn console_running(&self) -> bool {
        self.console
            .as_ref()
            .and_then(|c| self.components.get(c.component))
            .is_some_and(|s| s.running.is_some() && !s.ended)
    }

    /// Waits until the console driver has taken every line handed to it:
    /// before the system ends, or they would be lost. Returns at once when
    /// the driver is not running.
    ///
    /// While it waits, it still answers console lines (the driver's own
    /// among them); any other message to the supervisor (the driver
    /// faulting, say) ends the wait, unanswered.
    pub fn flush_console(&mut self) {
        if !self.console_running() {
            return;
        }
        let Some(own) = self.console.as_ref().map(|c| c.own) else {
            return;
        };
        // The driver's release signals arrive on the supervisor endpoint.
        if init::TCB.bind_notification(own).is_err() {
            return;
        }
        loop {
            let drained = self.console.as_mut().map(|c| c.ring.prepare_drain());
            if !matches!(drained, Some(Ok(false))) {
                break;
            }
            let (info, badge) = self.supervisor.recv();
            if badge == CONSOLE_DRAINED {
                continue;
            }
            if badge != 0 && info.label() == kaal_protocols::supervisor::CONSOLE {
                self.print_line(info.length());
                ipc::reply(MessageInfo::new(0, 0));
                continue;
            }
            let who = (badge as usize)
                .checked_sub(1)
                .map_or("?", |i| self.name(i));
            println!("KaaL: console flush ended by a message from `{who}`");
            break;
        }
        let _ = init::TCB.unbind_notification();
    }

    /// After the console driver stopped: prints the lines it had not taken
    /// on the debug console, so none is lost, and leaves the ring empty for
    /// its next incarnation.
    fn drain_console(&mut self, i: usize) {
        let Some(c) = self.console.as_mut().filter(|c| c.component == i) else {
            return;
        };
        let Some(ptr) =
            core::ptr::NonNull::new(c.memory.vaddr as *mut SharedRing<Chunk, SERIAL_SLOTS>)
        else {
            return;
        };
        // SAFETY: the ring memory is the root task's; its only consumer, the
        // driver, has just been torn down, so this is the one consumer handle
        // while it lives (dropped at the end of this function).
        let mut rx = unsafe { Consumer::<Chunk, SERIAL_SLOTS>::from_raw(ptr) };
        while let Ok(Some(chunk)) = rx.pop() {
            kaal_sel4::console::DebugConsole.write_bytes(chunk.bytes());
        }
        let _ = rx.release();
    }

    /// Console lines that went through the console driver, and lines (or
    /// their rest) printed on the kernel's debug console instead.
    pub fn console_lines(&self) -> Option<(u64, u64)> {
        self.console.as_ref().map(|c| (c.forwarded, c.direct))
    }
}

/// Sets up the console ring for component `index`.
fn make_console(
    broker: &mut RootBroker,
    image: &SystemImage<'_>,
    index: usize,
    notifications: &[Notification],
) -> Result<Console, SystemError> {
    let me = u16::try_from(index).map_err(|_| RootError::Check("console index"))?;
    // After the bits of the component's own rings.
    let bit = nth_ring_bit(rings_of(&image.channels, me).count())
        .ok_or(RootError::Check("the console driver has too many rings"))?;
    let driver = *notifications
        .get(index)
        .ok_or(RootError::Check("console index"))?;
    let bytes = SharedRing::<Chunk, SERIAL_SLOTS>::BYTES as u64;
    let memory = broker.allocate_memory(bytes)?;
    let own: Notification = broker.alloc()?;
    let slot = broker.alloc_slot()?;
    init::CNODE
        .mint(slot, driver.cptr(), 64, Rights::write_only(), bit)
        .context("CNode_Mint console signal")?;
    let ptr = core::ptr::NonNull::new(memory.vaddr as *mut SharedRing<Chunk, SERIAL_SLOTS>)
        .ok_or(RootError::Check("console ring memory"))?;
    // SAFETY: the broker mapped `bytes` (at least a `SharedRing` of this
    // shape, page aligned, zeroed: an empty ring) at `memory.vaddr` for the
    // root task alone until it is shared with the driver, which only takes
    // the consumer end; this is the one producer handle, kept for the life
    // of the system.
    let ring = unsafe { Producer::from_raw(ptr) };
    Ok(Console {
        component: index,
        memory,
        ring,
        signal: Signal(Notification::from_cptr(slot)),
        bit,
        own,
        forwarded: 0,
        direct: 0,
    })
}

/// Bytes of the x86_64 `syscall` instruction (0f 05).
const SYSCALL_BYTES: Word = 2;

impl Running {
    /// Makes the component's thread return from the system call it stands
    /// at with an error (`label` in the message-info register), if `is_it`
    /// holds for its registers and it really stands at a `syscall` of its
    /// program. Returns whether it did.
    fn fail_syscall(
        &self,
        elf: &[u8],
        is_it: impl Fn(&UserContext) -> bool,
        label: Word,
        resume: bool,
    ) -> Result<bool, RootError> {
        let mut regs = self
            .tcb
            .read_registers(false)
            .context("TCB_ReadRegisters")?;
        if !is_it(&regs) || !self.at_syscall(elf, regs.rip) {
            return Ok(false);
        }
        let Some(next) = regs.rip.checked_add(SYSCALL_BYTES) else {
            return Ok(false);
        };
        regs.rip = next;
        regs.rsi = MessageInfo::new(label, 0).raw().words[0];
        // SAFETY: the thread is another component's, in its own address
        // space; it goes on just past its own system call with an error
        // result, which its code handles like any error of that call.
        unsafe { self.tcb.write_registers(resume, &regs) }.context("TCB_WriteRegisters")?;
        Ok(true)
    }

    /// Whether `rip` is at a `syscall` instruction in the program's text
    /// (which the component cannot change: it is mapped read-only).
    fn at_syscall(&self, elf: &[u8], rip: Word) -> bool {
        self.plan.segments().iter().any(|seg| {
            let Some(off) = rip.checked_sub(seg.vaddr) else {
                return false;
            };
            let Some(at) = usize::try_from(off)
                .ok()
                .and_then(|o| seg.file.start.checked_add(o))
            else {
                return false;
            };
            seg.perm == Perm::ReadExecute
                && at.checked_add(2).is_some_and(|end| end <= seg.file.end)
                && elf.get(at..at + 2) == Some(&[0x0f, 0x05][..])
        })
    }
}

/// Decodes the embedded system image and makes its channels; on an
/// unusable image says why and fails.
pub fn load<'a>(broker: &mut RootBroker, bytes: &'a [u8]) -> Result<System<'a>, RootError> {
    System::new(broker, bytes).map_err(|e| {
        println!("KaaL: cannot load the system: {e}");
        RootError::Check("the embedded system image is unusable")
    })
}

/// Embeds the system image `cargo xtask` packed from a manifest: `"system"`
/// for `systems/default.toml`, else the stem of another manifest in
/// `systems/` or `tests/system/systems/`.
#[macro_export]
macro_rules! include_system {
    ($name:literal) => {
        include_bytes!(concat!(env!("KAAL_SYSTEMS_DIR"), "/", $name, ".kaal"))
    };
}

/// Why a system could not be set up at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemError {
    Image(ImageError),
    Root(RootError),
}

impl From<RootError> for SystemError {
    fn from(e: RootError) -> Self {
        SystemError::Root(e)
    }
}

impl From<BrokerError> for SystemError {
    fn from(e: BrokerError) -> Self {
        SystemError::Root(RootError::Broker(e))
    }
}

impl fmt::Display for SystemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemError::Image(e) => write!(f, "{e}"),
            SystemError::Root(e) => write!(f, "{e}"),
        }
    }
}

fn make_channel(
    broker: &mut RootBroker,
    ch: &ChannelImage<'_>,
) -> Result<ChannelObjects, SystemError> {
    Ok(match ch.kind {
        ChannelKind::Endpoint => ChannelObjects::Endpoint(broker.alloc()?),
        ChannelKind::Ring => ChannelObjects::Ring {
            memory: broker.allocate_memory(ch.shared_bytes())?,
        },
        ChannelKind::Memory => ChannelObjects::Shared {
            memory: broker.allocate_memory(ch.shared_bytes())?,
        },
    })
}

struct SpawnContext<'s, 'a> {
    index: usize,
    restarts: u64,
    comp: &'s ComponentImage<'a>,
    channels: &'s [ChannelImage<'a>],
    objects: &'s [ChannelObjects],
    supervisor: Endpoint,
    notifications: &'s [Notification],
    console: Option<&'s Console>,
}

/// The badge bit with which ring channel `channel`'s signals reach
/// component `me`: its rings in manifest order take the ring bits.
fn ring_bit(channels: &[ChannelImage<'_>], me: u16, channel: usize) -> Result<Word, SpawnError> {
    let pos = rings_of(channels, me)
        .position(|i| i == channel)
        .ok_or(SpawnError::TooMany("ring ends (not an end of this ring)"))?;
    nth_ring_bit(pos).ok_or(SpawnError::TooMany("rings for one component"))
}

/// The ring channels component `me` is an end of, in manifest order.
fn rings_of<'c>(channels: &'c [ChannelImage<'_>], me: u16) -> impl Iterator<Item = usize> + 'c {
    channels
        .iter()
        .enumerate()
        .filter(move |(_, c)| c.kind == ChannelKind::Ring && c.has_end(me))
        .map(|(i, _)| i)
}

/// The badge of a component's `n`th ring; `None` past the ring bits.
fn nth_ring_bit(n: usize) -> Option<Word> {
    let bit = start::RING_BITS.start + u32::try_from(n).ok()?;
    start::RING_BITS.contains(&bit).then(|| 1 << bit)
}

/// Fresh memory, filled by `fill` in the root task's window, then moved to
/// `vaddr` in `vspace` with `access`.
fn place(
    broker: &mut RootBroker,
    r: &mut Running,
    bytes: u64,
    vaddr: u64,
    access: Access,
    fill: impl FnOnce(&mut [u8]),
) -> Result<Frame, SpawnError> {
    let mem = broker.allocate_memory(bytes)?;
    // SAFETY: the broker just mapped `mem.size` bytes at `mem.vaddr` in this
    // address space for us alone; nothing else refers to them.
    let window =
        unsafe { core::slice::from_raw_parts_mut(mem.vaddr as *mut u8, mem.size as usize) };
    fill(window);
    let first = mem.frames().next().map(Frame::from_cptr);
    let mem = match broker.give_memory(mem.clone(), r.vspace, vaddr, access) {
        Ok(m) => m,
        Err(e) => {
            let _ = broker.free_memory(mem);
            return Err(e.into());
        }
    };
    r.memory.push(mem);
    first.ok_or(SpawnError::Unsupported("empty memory"))
}

/// Grants one capability: mints `src` into the component's next slot.
struct Granter {
    cnode: CNode,
    next: CPtr,
}

impl Granter {
    /// Fills the next slot with `put(slot)`.
    fn next_slot(
        &mut self,
        put: impl FnOnce(CNode, CPtr) -> kaal_sel4::Result<()>,
        what: &'static str,
    ) -> Result<CPtr, SpawnError> {
        let dest = self.next;
        if dest >= 1 << CSPACE_BITS {
            return Err(SpawnError::TooMany("capabilities for one CSpace"));
        }
        put(self.cnode, dest).context(what)?;
        self.next += 1;
        Ok(dest)
    }

    /// Grants `src` minted with `rights` and `badge`.
    fn grant(&mut self, src: CPtr, rights: Rights, badge: Word) -> Result<CPtr, SpawnError> {
        self.next_slot(
            |cn, dest| cn.mint_from(dest, CSPACE_BITS, init::CNODE, src, 64, rights, badge),
            "CNode_Mint",
        )
    }

    /// Grants `src` as it is (no badge or range change), with `rights`: for
    /// I/O port capabilities, whose mint data would be a port range, and
    /// capabilities that already carry their badge.
    fn copy(&mut self, src: CPtr, rights: Rights) -> Result<CPtr, SpawnError> {
        self.next_slot(
            |cn, dest| cn.copy_from(dest, CSPACE_BITS, init::CNODE, src, 64, rights),
            "CNode_Copy",
        )
    }
}

fn entry(name: &str, kind: CapKind) -> Result<CapEntry, SpawnError> {
    Ok(CapEntry {
        name: start::name_bytes(name)
            .ok_or(SpawnError::TooMany("characters in a capability name"))?,
        kind: kind as u64,
        ..CapEntry::default()
    })
}

fn build(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    r: &mut Running,
) -> Result<(), SpawnError> {
    let plan = r.plan.clone();
    r.vspace = broker.new_vspace()?;
    r.cnode = broker.alloc_cnode(CSPACE_BITS)?;
    r.tcb = broker.alloc()?;

    // The program: each segment with its own permissions (text read-only).
    for seg in plan.segments() {
        let pages = seg.pages();
        let access = match seg.perm {
            Perm::ReadWrite => Access::ReadWrite,
            Perm::ReadOnly | Perm::ReadExecute => Access::ReadOnly,
        };
        let elf = cx.comp.elf;
        place(
            broker,
            r,
            pages.end - pages.start,
            pages.start,
            access,
            |w| {
                for (k, page) in w.chunks_exact_mut(PAGE as usize).enumerate() {
                    if let Ok(page) = <&mut [u8; 4096]>::try_from(page) {
                        seg.fill_page(elf, pages.start + k as u64 * PAGE, page);
                    }
                }
            },
        )?;
    }

    // Stack (below it an unmapped guard page), IPC buffer, heap.
    let stack_base = layout::STACK_TOP - cx.comp.stack;
    place(
        broker,
        r,
        cx.comp.stack,
        stack_base,
        Access::ReadWrite,
        |_| {},
    )?;
    let ipc_frame = place(
        broker,
        r,
        PAGE,
        layout::IPC_BUFFER,
        Access::ReadWrite,
        |_| {},
    )?;
    if cx.comp.heap > 0 {
        place(
            broker,
            r,
            cx.comp.heap,
            layout::HEAP_BASE,
            Access::ReadWrite,
            |_| {},
        )?;
    }

    // The CSpace: the supervisor endpoint, then the manifest's grants.
    let mut info = StartInfo {
        name: start::name_bytes(cx.comp.name).ok_or(SpawnError::TooMany("characters in a name"))?,
        id: cx.index as u64,
        restarts: cx.restarts,
        heap_base: layout::HEAP_BASE,
        heap_size: cx.comp.heap,
        stack_top: layout::STACK_TOP,
        stack_size: cx.comp.stack,
        tsc_mhz: crate::tsc_mhz(),
        ..StartInfo::default()
    };
    r.cnode
        .mint_from(
            slot::SUPERVISOR,
            CSPACE_BITS,
            init::CNODE,
            cx.supervisor.cptr(),
            64,
            Rights::call_only(),
            badge_of(cx.index),
        )
        .context("CNode_Mint supervisor")?;
    let own = *cx
        .notifications
        .get(cx.index)
        .ok_or(SpawnError::TooMany("components"))?;
    r.cnode
        .copy_from(
            slot::NOTIFICATION,
            CSPACE_BITS,
            init::CNODE,
            own.cptr(),
            64,
            Rights::read_only(),
        )
        .context("CNode_Copy notification")?;
    let mut g = Granter {
        cnode: r.cnode,
        next: slot::FIRST_GRANTED,
    };
    let me = u16::try_from(cx.index).map_err(|_| SpawnError::TooMany("components"))?;
    let mut shared_at = layout::SHARED_BASE;
    if let Some(c) = cx.console {
        share_at(broker, r, &c.memory, shared_at)?;
        let mut e = entry(kaal_protocols::console::LOCAL_NAME, CapKind::RingConsumer)?;
        e.slot2 = g.grant(c.own.cptr(), Rights::write_only(), CONSOLE_DRAINED)?;
        e.bit = c.bit;
        e.vaddr = shared_at;
        e.size = c.memory.size;
        e.value = SERIAL_SLOTS as u64;
        push(&mut info, e)?;
        shared_at += c.memory.size + PAGE;
    }
    for (c, (ch, obj)) in cx.channels.iter().zip(cx.objects).enumerate() {
        let client_pos = ch.from.iter().position(|e| e.component == me);
        let server = ch.to.component == me;
        // This component's local name for the channel.
        let local = match client_pos.and_then(|p| ch.from.get(p)) {
            Some(end) => end.local,
            None => ch.to.local,
        };
        match obj {
            ChannelObjects::Endpoint(ep) => {
                if let Some(pos) = client_pos {
                    let badge = client_badge(pos);
                    let mut e = entry(local, CapKind::EndpointClient)?;
                    e.slot = g.grant(ep.cptr(), Rights::call_only(), badge)?;
                    r.endpoint_slots.push((c, e.slot));
                    e.value = badge;
                    push(&mut info, e)?;
                }
                if server {
                    let mut e = entry(ch.to.local, CapKind::EndpointServer)?;
                    // Receive only: replies go through the reply capability.
                    e.slot = g.copy(ep.cptr(), Rights::read_only())?;
                    push(&mut info, e)?;
                }
            }
            ChannelObjects::Shared { memory } => {
                if client_pos.is_none() && !server {
                    continue;
                }
                share_at(broker, r, memory, shared_at)?;
                let mut e = entry(local, CapKind::SharedMemory)?;
                e.vaddr = shared_at;
                e.size = memory.size;
                push(&mut info, e)?;
                shared_at += memory.size + PAGE;
            }
            ChannelObjects::Ring { memory } => {
                if client_pos.is_none() && !server {
                    continue;
                }
                share_at(broker, r, memory, shared_at)?;
                let (kind, peer) = if server {
                    (
                        CapKind::RingConsumer,
                        ch.from.first().map_or(ch.to.component, |e| e.component),
                    )
                } else {
                    (CapKind::RingProducer, ch.to.component)
                };
                let peer_ntfn = cx
                    .notifications
                    .get(usize::from(peer))
                    .ok_or(SpawnError::TooMany("components"))?;
                let mut e = entry(local, kind)?;
                e.slot2 = g.grant(
                    peer_ntfn.cptr(),
                    Rights::write_only(),
                    ring_bit(cx.channels, peer, c)?,
                )?;
                e.bit = ring_bit(cx.channels, me, c)?;
                e.vaddr = shared_at;
                e.size = memory.size;
                e.value = u64::from(ch.slots);
                push(&mut info, e)?;
                shared_at += memory.size + PAGE;
            }
        }
    }
    for (k, &(local, spec)) in cx.comp.devices.iter().enumerate() {
        let bit = start::IRQ_BITS.start + u32::try_from(k).unwrap_or(u32::MAX);
        if !start::IRQ_BITS.contains(&bit) {
            return Err(SpawnError::TooMany("devices for one component"));
        }
        let dev = DeviceGrant {
            local,
            spec,
            notification: own,
            bit: 1 << bit,
        };
        grant_device(broker, cx.index, dev, &mut g, &mut info, r)?;
    }

    // The start-info page, read-only.
    place(broker, r, PAGE, layout::START_INFO, Access::ReadOnly, |w| {
        let bytes = bytemuck::bytes_of(&info);
        if let Some(dst) = w.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    })?;

    let spaces = Spaces {
        cspace: r.cnode,
        radix_bits: CSPACE_BITS,
        vspace: r.vspace,
    };
    r.tcb
        .configure_in(
            slot::SUPERVISOR,
            cx.comp.priority,
            spaces,
            layout::IPC_BUFFER,
            ipc_frame,
        )
        .context("TCB_Configure")?;
    let regs = UserContext {
        rip: plan.entry(),
        rsp: layout::STACK_TOP,
        rdi: layout::START_INFO,
        ..Default::default()
    };
    // SAFETY: the thread runs in its own address space and CSpace, built
    // above; it cannot touch the root task's memory.
    unsafe { r.tcb.write_registers(true, &regs) }.context("TCB_WriteRegisters")?;
    Ok(())
}

/// Maps a channel's memory read-write at `at` in the component (checking it
/// stays below the device window).
fn share_at(
    broker: &mut RootBroker,
    r: &mut Running,
    memory: &Memory,
    at: u64,
) -> Result<(), SpawnError> {
    let end = at.checked_add(memory.size + PAGE);
    if end.is_none_or(|e| e > layout::DEVICE_BASE) {
        return Err(SpawnError::TooMany("bytes of shared memory"));
    }
    let copies = broker.share_memory(memory, r.vspace, at, Access::ReadWrite)?;
    r.copies.extend(copies);
    Ok(())
}

fn push(info: &mut StartInfo, e: CapEntry) -> Result<(), SpawnError> {
    if info.push(e) {
        Ok(())
    } else {
        Err(SpawnError::TooMany("capabilities for the start-info page"))
    }
}

/// A device to grant, and where its interrupt goes.
struct DeviceGrant<'a> {
    /// The component's name for it.
    local: &'a str,
    spec: DeviceSpec,
    /// The component's notification.
    notification: Notification,
    /// The badge bit its interrupt carries there.
    bit: Word,
}

/// Claims a device for the component and grants what its bundle holds:
/// registers, DMA buffer, configuration snapshot, I/O ports, interrupt.
fn grant_device(
    broker: &mut RootBroker,
    index: usize,
    dev: DeviceGrant<'_>,
    g: &mut Granter,
    info: &mut StartInfo,
    r: &mut Running,
) -> Result<(), SpawnError> {
    let spec = dev.spec;
    let name = dev.local;
    let id = match spec {
        DeviceSpec::Serial { port } => DeviceId::Serial { port },
        DeviceSpec::Pci { vendor, device } => DeviceId::Pci { vendor, device },
        DeviceSpec::PciClass { class, subclass } => DeviceId::PciClass { class, subclass },
        DeviceSpec::Pit => DeviceId::Pit,
    };
    let holder = Holder(index as u32 + 1);
    let bundle = broker.request_device(holder, id).map_err(|e| match e {
        BrokerError::NoSuchDevice(_) => SpawnError::NoDevice(spec),
        e => e.into(),
    })?;
    r.devices.push(id);
    for m in &bundle.mmio {
        let frames = broker.mmio_frames(m);
        let at = r.device_at;
        r.device_at = place_device(r.device_at, m.size)?;
        let copies =
            broker.share_frames(&frames, r.vspace, at, Access::ReadWrite, Cache::Uncached)?;
        r.copies.extend(copies);
        let mut e = entry(name, CapKind::Mmio)?;
        e.vaddr = at;
        e.size = m.size;
        e.value = u64::from(m.bar);
        push(info, e)?;
    }
    if let Some(d) = bundle.dma {
        // A device's DMA region passes from holder to holder (the broker
        // keeps it for the device): nothing of the last one's for the next.
        // SAFETY: the broker maps every DMA region read-write in the root
        // task's window at `d.vaddr`; the device's last holder is gone and
        // the new one does not run yet.
        unsafe { core::ptr::write_bytes(d.vaddr as *mut u8, 0, d.size as usize) };
        let frames = broker.dma_frames(&d);
        let at = r.device_at;
        r.device_at = place_device(r.device_at, d.size)?;
        let copies =
            broker.share_frames(&frames, r.vspace, at, Access::ReadWrite, Cache::Uncached)?;
        r.copies.extend(copies);
        let mut e = entry(name, CapKind::Dma)?;
        e.vaddr = at;
        e.size = d.size;
        e.value = d.paddr;
        push(info, e)?;
    }
    if let Some(regs) = bundle.config {
        let mut page = PciConfigPage {
            regs,
            bar_sizes: [0; 6],
        };
        if let Some(d) = broker.devices().iter().find_map(|d| match d {
            DeviceInfo::Pci(p) if DeviceKey::Pci(p.at) == bundle.key => Some(p),
            _ => None,
        }) {
            for bar in &d.bars {
                if let Some(s) = page.bar_sizes.get_mut(usize::from(bar.index)) {
                    *s = bar.size;
                }
            }
        }
        let at = r.device_at;
        r.device_at = place_device(r.device_at, PAGE)?;
        place(broker, r, PAGE, at, Access::ReadOnly, |w| {
            let bytes = bytemuck::bytes_of(&page);
            if let Some(dst) = w.get_mut(..bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        })?;
        let mut e = entry(name, CapKind::PciConfig)?;
        e.vaddr = at;
        e.size = PAGE;
        push(info, e)?;
    }
    for ports in &bundle.ioports {
        let mut e = entry(name, CapKind::IoPort)?;
        e.slot = g.copy(ports.cap.cptr(), Rights::all())?;
        e.value = u64::from(ports.first) | (u64::from(ports.last) << 16);
        push(info, e)?;
    }
    if let Some(irq) = bundle.irq {
        // Deliver the interrupt to the component's notification, with its
        // bit (the kernel keeps its own copy of the badged capability).
        let tmp = broker.alloc_slot()?;
        let bound = init::CNODE
            .mint(
                tmp,
                dev.notification.cptr(),
                64,
                Rights::write_only(),
                dev.bit,
            )
            .context("CNode_Mint interrupt badge")
            .and_then(|()| {
                irq.handler
                    .set_notification(Notification::from_cptr(tmp))
                    .context("IRQHandler_SetNotification")
            });
        // SAFETY: `tmp` holds only the badged notification capability just
        // minted, which maps no memory.
        let _ = unsafe { init::CNODE.delete(tmp, 64) };
        let _ = broker.free_slot(tmp);
        bound?;
        let mut e = entry(name, CapKind::Irq)?;
        e.slot = g.copy(irq.handler.cptr(), Rights::all())?;
        e.bit = dev.bit;
        // The trigger mode the broker programmed the line with, so the
        // driver acknowledges at the right time without restating it.
        e.value = u64::from(bundle.key.irq_level_triggered());
        push(info, e)?;
    }
    Ok(())
}

/// The next free device address after a region of `size` bytes at `at`
/// (and a guard page).
fn place_device(at: u64, size: u64) -> Result<u64, SpawnError> {
    at.checked_add(size)
        .and_then(|a| a.checked_add(PAGE))
        .filter(|&a| a <= layout::DEVICE_END)
        .ok_or(SpawnError::TooMany("bytes of device memory"))
}

/// Gives back everything a component held: its thread first, so it stops.
/// Every step runs even if one fails; the first error is returned.
fn teardown(broker: &mut RootBroker, index: usize, r: Running) -> Result<(), RootError> {
    let mut first: Result<(), RootError> = Ok(());
    let mut note = |res: Result<(), BrokerError>| {
        if let Err(e) = res {
            if first.is_ok() {
                first = Err(e.into());
            }
        }
    };
    if r.tcb.cptr() != 0 {
        note(broker.free(r.tcb.cptr()));
    }
    if r.cnode.cptr() != 0 {
        note(broker.free(r.cnode.cptr()));
    }
    note(broker.unshare(r.copies));
    for m in r.memory {
        note(broker.free_memory(m));
    }
    if r.vspace.cptr() != 0 {
        note(broker.free_vspace(r.vspace));
    }
    let holder = Holder(index as u32 + 1);
    for id in r.devices {
        note(broker.release_device(holder, id));
    }
    first
}
