//! What a component sees: its name, and the capabilities its manifest entry
//! granted, looked up by name (never by slot number).

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use kaal_ring::{Consumer, Notify, Producer, RingError, SharedRing};
use kaal_sel4::cap::{AsidPool, CNode, Cap, Endpoint, IoPort, IrqHandler, Notification, Pml4};
use kaal_sel4::ipc::{Badge, MessageInfo};

use crate::start::{self, slot, CapEntry, CapKind, PciConfigPage, StartInfo};

/// Why a capability could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError<'a> {
    /// The manifest grants no capability of this name.
    NotGranted(&'a str),
    /// It is granted, but as something else.
    WrongKind { name: &'a str, found: u64 },
    /// A ring's element type or slot count does not fit its shared memory.
    RingShape {
        name: &'a str,
        slots: u64,
        bytes: u64,
    },
    /// A ring end or private memory was already taken: each has one handle.
    Taken(&'a str),
}

impl fmt::Display for CapError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapError::NotGranted(n) => write!(f, "no capability `{n}` was granted"),
            CapError::WrongKind { name, found } => {
                write!(f, "capability `{name}` is of another kind ({found})")
            }
            CapError::Taken(n) => write!(f, "`{n}` was already taken (it has one handle)"),
            CapError::RingShape { name, slots, bytes } => write!(
                f,
                "ring `{name}` has {slots} slots in {bytes} bytes, which does not fit this type"
            ),
        }
    }
}

/// A component's view of what it was given.
#[derive(Clone, Copy)]
pub struct Env {
    info: &'static StartInfo,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("name", &self.name()).finish()
    }
}

/// An interrupt granted to a component.
#[derive(Clone, Copy, Debug)]
pub struct IrqGrant {
    /// Acknowledges it, so the kernel delivers the next one.
    pub handler: IrqHandler,
    /// The badge bit it arrives with on this component's notification.
    pub bit: Badge,
    /// How the line signals, as the broker programmed it: ISA lines (COM
    /// ports, the PIT) edge triggered, PCI INTx level triggered.
    pub level_triggered: bool,
}

/// One block of an untyped budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedGrant {
    pub cptr: kaal_sel4::CPtr,
    pub paddr: u64,
    /// log2 of its bytes.
    pub size_bits: u8,
}

/// An untyped budget (the manifest's `untyped`) and what it takes to make
/// objects from it: enough to run a capability broker of the component's
/// own (`kaal_broker::BrokerConfig::for_component`).
#[derive(Clone, Debug)]
pub struct Budget {
    /// The component's own CNode, resolving slot numbers at depth 64.
    pub cnode: CNode,
    /// log2 of its slots.
    pub cspace_bits: u8,
    /// The component's own address space.
    pub vspace: Pml4,
    /// An ASID pool for the address spaces it makes.
    pub asid_pool: AsidPool,
    /// The empty slots of its CSpace (after everything granted).
    pub free_slots: core::ops::Range<kaal_sel4::CPtr>,
    info: &'static StartInfo,
}

impl Budget {
    /// The untyped blocks, in grant order (largest first).
    pub fn untypeds(&self) -> impl Iterator<Item = UntypedGrant> + '_ {
        self.info
            .caps_of(start::UNTYPED_NAME, CapKind::Untyped)
            .filter_map(|e| {
                Some(UntypedGrant {
                    cptr: e.slot,
                    paddr: e.value,
                    size_bits: u8::try_from(e.size).ok().filter(|b| *b < 64)?,
                })
            })
    }

    /// Bytes of all its blocks.
    pub fn bytes(&self) -> u64 {
        self.untypeds().map(|u| 1u64 << u.size_bits).sum()
    }
}

/// A notification used as a ring's wake-up signal.
#[derive(Clone, Copy, Debug)]
pub struct Signal(pub Notification);

impl Notify for Signal {
    #[inline]
    fn notify(&self) {
        self.0.signal();
    }
}

/// The producer end of a ring channel.
#[derive(Debug)]
pub struct RingTx<T: 'static, const N: usize> {
    pub ring: Producer<'static, T, N>,
    /// Signals the consumer.
    pub peer: Signal,
    /// This component's notification, waited on when the ring is full.
    pub wait: Notification,
    /// The badge bit the consumer's signals carry there.
    pub bit: u64,
}

/// The consumer end of a ring channel.
#[derive(Debug)]
pub struct RingRx<T: 'static, const N: usize> {
    pub ring: Consumer<'static, T, N>,
    /// Signals the producer.
    pub peer: Signal,
    /// This component's notification, waited on when the ring is empty.
    pub wait: Notification,
    /// The badge bit the producer's signals carry there.
    pub bit: u64,
}

/// Ring ends and private memory handed out, one bit per start-info entry:
/// the ring's single-producer, single-consumer contract needs one handle
/// per end, and private memory is handed out as `&mut`, so once.
static TAKEN: AtomicU64 = AtomicU64::new(0);

const _: () = assert!(start::MAX_CAPS <= 64);

impl<T: bytemuck::Pod, const N: usize> RingTx<T, N> {
    /// Sends all of `items`, in batches as room allows, sleeping on the
    /// component's notification (by the ring's protocol) while the ring is
    /// full.
    pub fn send_all(&mut self, items: &[T]) -> Result<(), RingError> {
        let mut sent = 0;
        while let Some(rest) = items.get(sent..).filter(|r| !r.is_empty()) {
            sent += self.ring.send_batch(rest, &self.peer)?;
            if sent < items.len() && !self.ring.prepare_wait()? {
                self.wait.wait();
                self.ring.cancel_wait();
            }
        }
        Ok(())
    }
}

impl<T: bytemuck::Pod, const N: usize> RingTx<T, N> {
    /// Makes the pushed items visible, signalling the consumer if it sleeps
    /// waiting for them.
    pub fn publish(&mut self) {
        if self.ring.publish() {
            self.peer.notify();
        }
    }
}

impl<T: bytemuck::Pod, const N: usize> RingRx<T, N> {
    /// The next item, sleeping on the component's notification (by the
    /// ring's protocol, slots released first) while the ring is empty.
    pub fn recv(&mut self) -> Result<T, RingError> {
        loop {
            if let Some(item) = self.ring.pop()? {
                return Ok(item);
            }
            self.release();
            if !self.ring.prepare_sleep()? {
                self.wait.wait();
                self.ring.cancel_sleep();
            }
        }
    }

    /// The next item if one is there, without sleeping.
    pub fn try_recv(&mut self) -> Result<Option<T>, RingError> {
        self.ring.pop()
    }

    /// For a component that sleeps elsewhere (on an endpoint its
    /// notification is bound to): releases the popped slots and tells the
    /// producer this end sleeps. `true` if items arrived meanwhile (then do
    /// not sleep); after a sleep, [`RingRx::cancel_sleep`].
    pub fn prepare_sleep(&mut self) -> Result<bool, RingError> {
        self.release();
        self.ring.prepare_sleep()
    }

    /// Ends a sleep [`RingRx::prepare_sleep`] announced.
    pub fn cancel_sleep(&mut self) {
        self.ring.cancel_sleep();
    }

    /// Gives the popped items' slots back, signalling the producer if it
    /// waits for them.
    pub fn release(&mut self) {
        if self.ring.release() {
            self.peer.notify();
        }
    }
}

impl Env {
    /// Marks entry `e` (one of this page's entries) taken; `false` if it
    /// already was.
    fn take(&self, e: &CapEntry) -> bool {
        let base = self.info.caps.as_ptr() as usize;
        let offset = (e as *const CapEntry as usize).wrapping_sub(base);
        let index = offset / core::mem::size_of::<CapEntry>();
        let bit = 1u64 << (index % 64);
        TAKEN.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// # Safety
    /// `info` must point at this component's start-info page, mapped for the
    /// life of the program.
    pub(crate) unsafe fn from_ptr(info: *const StartInfo) -> Option<Env> {
        // SAFETY: the caller's contract; the root task maps the page
        // read-only before the component starts.
        let info = unsafe { info.as_ref()? };
        (info.magic == start::START_MAGIC).then_some(Env { info })
    }

    pub fn name(&self) -> &'static str {
        self.info.name()
    }

    /// The component's number in the manifest (the badge its supervisor
    /// messages carry).
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// How often the supervisor has restarted this component.
    pub fn restarts(&self) -> u64 {
        self.info.restarts
    }

    /// The bytes of the heap the manifest gave this component.
    pub fn heap_size(&self) -> u64 {
        self.info.heap_size
    }

    /// log2 of the slots of this component's CSpace.
    pub fn cspace_bits(&self) -> u8 {
        u8::try_from(self.info.cspace_bits).unwrap_or(start::CSPACE_BITS)
    }

    /// The untyped budget the manifest gave this component (`untyped`):
    /// its blocks, ASID pool, own VSpace and CNode, and free slots.
    pub fn budget(&self) -> Result<Budget, CapError<'static>> {
        let name = start::UNTYPED_NAME;
        let cnode = self.entry(name, CapKind::OwnCNode)?;
        let vspace = self.entry(name, CapKind::OwnVSpace)?;
        let pool = self.entry(name, CapKind::AsidPool)?;
        let end = cnode.value.saturating_add(cnode.size);
        Ok(Budget {
            cnode: CNode::from_cptr(cnode.slot),
            cspace_bits: self.cspace_bits(),
            vspace: Pml4::from_cptr(vspace.slot),
            asid_pool: AsidPool::from_cptr(pool.slot),
            free_slots: cnode.value..end,
            info: self.info,
        })
    }

    /// The command line the manifest gives (`args`), word by word.
    pub fn args(&self) -> impl Iterator<Item = &'static str> {
        let len = usize::try_from(self.info.args_bytes)
            .unwrap_or(0)
            .min(crate::start::PAGE_BYTES);
        let bytes: &'static [u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the root task maps the read-only command line page at
            // `layout::ARGS` whenever it says `args_bytes` is not 0, and it
            // stays mapped for the component's life; the length is
            // clamped to the page.
            unsafe { core::slice::from_raw_parts(start::layout::ARGS as *const u8, len) }
        };
        // Each word ends with a NUL: split what comes before the last one.
        let body = bytes.strip_suffix(&[0]).unwrap_or(&[]);
        body.split(|&b| b == 0)
            .take(if len == 0 { 0 } else { usize::MAX })
            .filter_map(|w| core::str::from_utf8(w).ok())
    }

    /// The TSC frequency in MHz (0 if the kernel did not say).
    pub fn tsc_mhz(&self) -> u64 {
        self.info.tsc_mhz
    }

    /// The monotonic clock, `None` if the TSC frequency is unknown.
    pub fn clock(&self) -> Option<crate::time::Clock> {
        crate::time::Clock::new(self.tsc_mhz())
    }

    /// The entry `name` of `kind`; `WrongKind` names the kind of the first
    /// entry of that name when none is of `kind`.
    fn entry<'n>(&self, name: &'n str, kind: CapKind) -> Result<&'static CapEntry, CapError<'n>> {
        let info: &'static StartInfo = self.info;
        if let Some(e) = info.find_kind(name, kind) {
            return Ok(e);
        }
        let first = info.find(name).ok_or(CapError::NotGranted(name))?;
        Err(CapError::WrongKind {
            name,
            found: first.kind,
        })
    }

    /// The client end of endpoint channel `name`, with this client's badge.
    pub fn client<'n>(&self, name: &'n str) -> Result<(Endpoint, Badge), CapError<'n>> {
        let e = self.entry(name, CapKind::EndpointClient)?;
        Ok((Endpoint::from_cptr(e.slot), e.value))
    }

    /// The server end of endpoint channel `name`.
    pub fn server<'n>(&self, name: &'n str) -> Result<Endpoint, CapError<'n>> {
        Ok(Endpoint::from_cptr(
            self.entry(name, CapKind::EndpointServer)?.slot,
        ))
    }

    fn ring_memory<'n, T: bytemuck::Pod, const N: usize>(
        &self,
        name: &'n str,
        e: &CapEntry,
    ) -> Result<NonNull<SharedRing<T, N>>, CapError<'n>> {
        let fits = e.value == N as u64
            && core::mem::size_of::<SharedRing<T, N>>() as u64 <= e.size
            && e.vaddr
                .is_multiple_of(core::mem::align_of::<SharedRing<T, N>>() as u64);
        let ptr = NonNull::new(e.vaddr as *mut SharedRing<T, N>);
        match ptr {
            Some(p) if fits => Ok(p),
            _ => Err(CapError::RingShape {
                name,
                slots: e.value,
                bytes: e.size,
            }),
        }
    }

    /// The producer end of ring channel `name`, as a ring of `N` `T`s.
    pub fn ring_tx<'n, T: bytemuck::Pod, const N: usize>(
        &self,
        name: &'n str,
    ) -> Result<RingTx<T, N>, CapError<'n>> {
        let e = self.entry(name, CapKind::RingProducer)?;
        let mem = self.ring_memory::<T, N>(name, e)?;
        if !self.take(e) {
            return Err(CapError::Taken(name));
        }
        Ok(RingTx {
            // SAFETY: the root task mapped `size` bytes of memory shared with
            // the peer only at `vaddr` for the life of the program, and this
            // is the only producer handle made from it (`take` above).
            ring: unsafe { Producer::from_raw(mem) },
            peer: Signal(Notification::from_cptr(e.slot2)),
            wait: self.notification(),
            bit: e.bit,
        })
    }

    /// The consumer end of ring channel `name`, as a ring of `N` `T`s.
    pub fn ring_rx<'n, T: bytemuck::Pod, const N: usize>(
        &self,
        name: &'n str,
    ) -> Result<RingRx<T, N>, CapError<'n>> {
        let e = self.entry(name, CapKind::RingConsumer)?;
        let mem = self.ring_memory::<T, N>(name, e)?;
        if !self.take(e) {
            return Err(CapError::Taken(name));
        }
        Ok(RingRx {
            // SAFETY: as for `ring_tx`, for the consumer end (taken once).
            ring: unsafe { Consumer::from_raw(mem) },
            peer: Signal(Notification::from_cptr(e.slot2)),
            wait: self.notification(),
            bit: e.bit,
        })
    }

    /// The shared memory of channel `name` (a memory channel, either end of
    /// a ring, or a lending endpoint's first region): address and size. For a ring this is for a component that
    /// lays out the memory itself, and for tests that play a hostile peer;
    /// `ring_tx`/`ring_rx` are the safe way in.
    pub fn shared_memory<'n>(&self, name: &'n str) -> Result<(u64, u64), CapError<'n>> {
        let e = self
            .entry(name, CapKind::SharedMemory)
            .or_else(|_| self.entry(name, CapKind::RingProducer))
            .or_else(|_| self.entry(name, CapKind::RingConsumer))?;
        Ok((e.vaddr, e.size))
    }

    /// Memory channel `name`, to copy data in and out of.
    pub fn shared_region<'n>(&self, name: &'n str) -> Result<crate::SharedRegion, CapError<'n>> {
        let e = self.entry(name, CapKind::SharedMemory)?;
        // SAFETY: the root task mapped the channel read-write at this address
        // for the component's life; the runtime makes no reference to it.
        Ok(unsafe { crate::SharedRegion::new(e.vaddr, e.size) })
    }

    /// The region this client lends the server of lending endpoint channel
    /// `name` (protocol `file`), where its `Lent` ranges lie. Only a client
    /// has one; the server sees them all through [`Env::client_regions`].
    pub fn lent_region<'n>(&self, name: &'n str) -> Result<crate::SharedRegion, CapError<'n>> {
        self.entry(name, CapKind::EndpointClient)?;
        let e = self.entry(name, CapKind::SharedMemory)?;
        // SAFETY: the root task mapped the region read-write at this address
        // for the component's life; the runtime makes no reference to it.
        Ok(unsafe { crate::SharedRegion::new(e.vaddr, e.size) })
    }

    /// The server's view of lending endpoint channel `name`: each client's
    /// badge and the region it lends, in the manifest's client order (an
    /// endpoint without lent regions yields none). `NotGranted` or
    /// `WrongKind` unless this component serves `name`.
    pub fn client_regions<'n>(
        &self,
        name: &'n str,
    ) -> Result<impl Iterator<Item = (Badge, crate::SharedRegion)> + 'n, CapError<'n>> {
        self.entry(name, CapKind::EndpointServer)?;
        let info: &'static StartInfo = self.info;
        Ok(info.caps_of(name, CapKind::SharedMemory).map(|e| {
            // SAFETY: as in `lent_region`: mapped read-write for the
            // component's life, and only ever copied through.
            (e.value, unsafe {
                crate::SharedRegion::new(e.vaddr, e.size)
            })
        }))
    }

    /// The server of lending endpoint `name`: its own CNode and the empty
    /// slots (one per client) it may save callers' reply capabilities in.
    pub fn reply_slots<'n>(
        &self,
        name: &'n str,
    ) -> Result<(CNode, core::ops::Range<kaal_sel4::Word>), CapError<'n>> {
        let e = self.entry(name, CapKind::ReplySlots)?;
        let end = e.value.saturating_add(e.size);
        Ok((CNode::from_cptr(e.slot), e.value..end))
    }

    /// Private memory `name` (the manifest's `memory`), zeroed at start and
    /// this component's alone. It is handed out once: a second call for the
    /// same name fails with `Taken`, since two `&mut` to it would alias.
    pub fn private_memory<'n>(&self, name: &'n str) -> Result<&'static mut [u8], CapError<'n>> {
        let e = self.entry(name, CapKind::PrivateMemory)?;
        let len = usize::try_from(e.size)
            .ok()
            .filter(|_| e.vaddr != 0)
            .ok_or(CapError::WrongKind {
                name,
                found: e.kind,
            })?;
        if !self.take(e) {
            return Err(CapError::Taken(name));
        }
        // SAFETY: the root task mapped `size` bytes read-write at `vaddr`
        // into this component only, for its whole life; `take` above makes
        // this the only reference ever made to them.
        Ok(unsafe { core::slice::from_raw_parts_mut(e.vaddr as *mut u8, len) })
    }

    /// The configuration space of PCI device `name`, as the broker read it.
    pub fn pci_config<'n>(&self, name: &'n str) -> Result<&'static PciConfigPage, CapError<'n>> {
        let e = self.entry(name, CapKind::PciConfig)?;
        if e.size < core::mem::size_of::<PciConfigPage>() as u64
            || !e
                .vaddr
                .is_multiple_of(core::mem::align_of::<PciConfigPage>() as u64)
        {
            return Err(CapError::WrongKind {
                name,
                found: e.kind,
            });
        }
        // SAFETY: the root task (trusted) mapped a read-only page holding a
        // `PciConfigPage` at this aligned address for the component's
        // lifetime; the type is plain integers, so any bytes are valid.
        Ok(unsafe { &*(e.vaddr as *const PciConfigPage) })
    }

    /// I/O ports granted as `name`: the capability and its first and last port.
    pub fn io_ports<'n>(&self, name: &'n str) -> Result<(IoPort, u16, u16), CapError<'n>> {
        let e = self.entry(name, CapKind::IoPort)?;
        Ok((
            IoPort::from_cptr(e.slot),
            (e.value & 0xffff) as u16,
            ((e.value >> 16) & 0xffff) as u16,
        ))
    }

    /// Interrupt `name`: its handler, its badge bit and its trigger mode.
    pub fn irq<'n>(&self, name: &'n str) -> Result<IrqGrant, CapError<'n>> {
        let e = self.entry(name, CapKind::Irq)?;
        Ok(IrqGrant {
            handler: IrqHandler::from_cptr(e.slot),
            bit: e.bit,
            level_triggered: e.value != 0,
        })
    }

    /// This component's notification: every ring signal and interrupt for
    /// it arrives here, told apart by badge bit.
    pub fn notification(&self) -> Notification {
        Notification::from_cptr(slot::NOTIFICATION)
    }

    /// Device registers of `name` (PCI BAR `bar`; 0 for others): address
    /// and size.
    pub fn mmio<'n>(&self, name: &'n str, bar: u8) -> Result<(u64, u64), CapError<'n>> {
        let info: &'static StartInfo = self.info;
        info.caps()
            .iter()
            .find(|e| {
                start::name_str(&e.name) == name
                    && e.kind == CapKind::Mmio as u64
                    && e.value == u64::from(bar)
            })
            .map(|e| (e.vaddr, e.size))
            .ok_or(CapError::NotGranted(name))
    }

    /// Register BAR `bar` of device `name` (0 for others), for checked
    /// volatile access.
    pub fn registers<'n>(&self, name: &'n str, bar: u8) -> Result<crate::mmio::Mmio, CapError<'n>> {
        let (base, len) = self.mmio(name, bar)?;
        // SAFETY: the root task mapped the BAR uncached at this page-aligned
        // address for the component's life.
        Ok(unsafe { crate::mmio::Mmio::new(base, len) })
    }

    /// The DMA buffer of device `name`: address, size, and the bus address
    /// the device sees it at.
    pub fn dma<'n>(&self, name: &'n str) -> Result<(u64, u64, u64), CapError<'n>> {
        let e = self.entry(name, CapKind::Dma)?;
        Ok((e.vaddr, e.size, e.value))
    }
}

/// Tells the supervisor this component is done (or broken); never returns,
/// since the supervisor does not answer.
pub fn report(label: kaal_sel4::Word, code: kaal_sel4::Word) -> ! {
    let sup = Endpoint::from_cptr(slot::SUPERVISOR);
    loop {
        let mut mrs = [code, 0, 0, 0];
        let _ = sup.call_regs(MessageInfo::new(label, 1), &mut mrs);
    }
}
