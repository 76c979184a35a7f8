//! Starting a component: its address space, CSpace, thread and start-info
//! page built from the image; and giving all of it back when it stops.

use alloc::vec::Vec;
use core::fmt;

use kaal_broker::kernel::Access;
use kaal_broker::{BrokerError, Memory};
use kaal_loader::{LoadError, LoadPlan, Perm};
use kaal_manifest::image::{ChannelImage, ComponentImage};
use kaal_manifest::DeviceSpec;
use kaal_rt::start::{
    self, layout, slot, CapEntry, CapKind, StartInfo, BUDGET_CSPACE_BITS, CSPACE_BITS,
};
use kaal_sel4::cap::{
    init, CNode, Cap, Endpoint, Frame, Notification, Pml4, Rights, Spaces, Tcb, UserContext,
};
use kaal_sel4::{println, CPtr};

use super::console::Console;
use super::grant::{
    grant_budget, grant_channels, grant_devices, serves_lending, ChannelObjects, Granter,
};
use super::{badge_of, holder_of, State, System, PAGE};
use crate::{Context, RootBroker, RootError};

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
pub(super) struct Running {
    pub(super) tcb: Tcb,
    pub(super) cnode: CNode,
    /// log2 of its CNode's slots.
    pub(super) cspace_bits: u8,
    pub(super) vspace: Pml4,
    /// The blocks of its untyped budget (root-CNode capabilities; freeing
    /// one destroys everything the component made from it).
    pub(super) budget: Vec<CPtr>,
    /// Its ASID pool: the block it was made from, and the root-CNode slot
    /// it is in.
    pub(super) asid_pool: Option<(CPtr, CPtr)>,
    pub(super) memory: Vec<Memory>,
    /// Root-CNode copies of shared frames, mapped into this component.
    pub(super) copies: Vec<CPtr>,
    /// Its slot for each endpoint channel it is a client of.
    pub(super) endpoint_slots: Vec<(usize, CPtr)>,
    /// Where the next device region goes in its address space.
    pub(super) device_at: u64,
    /// Where its program was loaded (to recognise its `syscall`s).
    pub(super) plan: LoadPlan,
    /// The devices it claimed.
    pub(super) devices: Vec<DeviceSpec>,
}

/// What building component `index` needs from the system.
pub(super) struct SpawnContext<'s, 'a> {
    pub(super) index: usize,
    pub(super) restarts: u64,
    pub(super) comp: &'s ComponentImage<'a>,
    pub(super) channels: &'s [ChannelImage<'a>],
    pub(super) objects: &'s [ChannelObjects],
    pub(super) supervisor: Endpoint,
    pub(super) notifications: &'s [Notification],
    /// The console ring, when this component is the console driver.
    pub(super) console: Option<&'s Console>,
}

impl System<'_> {
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
            cspace_bits: CSPACE_BITS,
            vspace: Pml4::from_cptr(0),
            budget: Vec::new(),
            asid_pool: None,
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
}

/// Fresh memory, filled by `fill` in the root task's window, then moved to
/// `vaddr` in `vspace` with `access`.
pub(super) fn place(
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

pub(super) fn entry(name: &str, kind: CapKind) -> Result<CapEntry, SpawnError> {
    Ok(CapEntry {
        name: start::name_bytes(name)
            .ok_or(SpawnError::TooMany("characters in a capability name"))?,
        kind: kind as u64,
        ..CapEntry::default()
    })
}

pub(super) fn push(info: &mut StartInfo, e: CapEntry) -> Result<(), SpawnError> {
    if info.push(e) {
        Ok(())
    } else {
        Err(SpawnError::TooMany("capabilities for the start-info page"))
    }
}

fn build(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    r: &mut Running,
) -> Result<(), SpawnError> {
    let plan = r.plan.clone();
    r.vspace = broker.new_vspace()?;
    if cx.comp.untyped > 0 {
        r.cspace_bits = BUDGET_CSPACE_BITS;
    }
    r.cnode = broker.alloc_cnode(r.cspace_bits)?;
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
        cspace_bits: u64::from(r.cspace_bits),
        ..StartInfo::default()
    };
    r.cnode
        .mint_from(
            slot::SUPERVISOR,
            r.cspace_bits,
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
            r.cspace_bits,
            init::CNODE,
            own.cptr(),
            64,
            Rights::read_only(),
        )
        .context("CNode_Copy notification")?;
    let mut g = Granter {
        cnode: r.cnode,
        bits: r.cspace_bits,
        next: slot::FIRST_GRANTED,
    };
    grant_channels(broker, cx, &mut g, &mut info, r)?;
    grant_devices(broker, cx, own, &mut g, &mut info, r)?;
    grant_budget(broker, cx, &mut g, &mut info, r)?;
    let me = u16::try_from(cx.index).map_err(|_| SpawnError::TooMany("components"))?;
    if serves_lending(cx, me) || cx.comp.untyped > 0 {
        // A signal (a disk completion; for a holder of a budget, anything
        // on its rings) then ends the server's wait for calls, so it can
        // answer calls it parked (a budget's holder serves the faults of
        // the threads it made on an endpoint of its own).
        r.tcb
            .bind_notification(own)
            .context("TCB_BindNotification")?;
    }

    // The command line page, read-only: each word and a NUL.
    if !cx.comp.args.is_empty() {
        let mut line = Vec::new();
        for a in &cx.comp.args {
            line.extend_from_slice(a.as_bytes());
            line.push(0);
        }
        if line.len() > start::PAGE_BYTES {
            return Err(SpawnError::TooMany("bytes of arguments"));
        }
        info.args_bytes = line.len() as u64;
        place(broker, r, PAGE, layout::ARGS, Access::ReadOnly, |w| {
            if let Some(dst) = w.get_mut(..line.len()) {
                dst.copy_from_slice(&line);
            }
        })?;
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
        radix_bits: r.cspace_bits,
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
    // Printed before the thread runs: a debugger tells the components apart
    // by this root (CR3 holds it, as the kernel has no PCID), see
    // docs/debugging.md.
    if let Ok(root) = broker.object_paddr(r.vspace.cptr()) {
        println!(
            "KaaL: component `{}` started (vspace root {root:#x})",
            cx.comp.name
        );
    }
    // SAFETY: the thread runs in its own address space and CSpace, built
    // above; it cannot touch the root task's memory.
    unsafe { r.tcb.write_registers(true, &regs) }.context("TCB_WriteRegisters")?;
    Ok(())
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
    // Revoking a block destroys what the component made from it, wherever
    // its capabilities are.
    for ut in r.budget {
        note(broker.free(ut));
    }
    if let Some((ut, slot)) = r.asid_pool {
        // The revoke deletes the pool (every address space in it loses its
        // ASID), which empties its slot.
        let freed = broker.free(ut);
        if freed.is_ok() {
            note(broker.free_slot(slot));
        }
        note(freed);
    }
    note(broker.unshare(r.copies));
    for m in r.memory {
        note(broker.free_memory(m));
    }
    if r.vspace.cptr() != 0 {
        note(broker.free_vspace(r.vspace));
    }
    for spec in r.devices {
        note(broker.release_device(holder_of(index), spec));
    }
    first
}
