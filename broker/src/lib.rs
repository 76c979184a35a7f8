//! The capability broker: KaaL's single interface to seL4 capabilities.
//!
//! Built from BootInfo, it owns every untyped capability and the free slots of
//! the root CNode, and serves: kernel objects of any type (as typed
//! capabilities), mapped memory, physically contiguous DMA regions, and
//! device bundles (MMIO mapped uncached, an IRQ bound to a notification, I/O
//! ports, a DMA region) for the devices of a pc99 machine. See the README for
//! the allocation model.
//!
//! The broker is generic over [`kernel::Kernel`]: on seL4 it runs over
//! [`sel4::Sel4Kernel`], on the host over [`model::Model`], so the same
//! logic is property-tested on the host and shown on seL4 in QEMU.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod device;
pub mod dma;
pub mod kernel;
pub mod model;
pub mod pci;
pub mod ranges;
pub mod sel4;
pub mod slots;
pub mod untyped;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use device::{DeviceBundle, DeviceInfo, DeviceKey, DeviceResources, DeviceSpec, Holder};
use dma::DmaRegion;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::{Cap, Frame, Object, Pml4};
use kaal_sel4::{CPtr, Error, Word};
use kernel::{Access, Cache, Kernel, ObjSpec, ObjectType};
use ranges::RangeAllocator;
use slots::SlotAllocator;
use untyped::{NodeId, UntypedRoot, UntypedTree};

/// What the broker could not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerError {
    /// No free untyped block of 2^bits bytes.
    OutOfMemory {
        bits: u8,
    },
    OutOfSlots,
    OutOfVirtualSpace,
    /// The kernel refused an operation.
    Kernel {
        op: &'static str,
        error: Error,
    },
    NoSuchDevice(DeviceSpec),
    /// The device is held by someone else.
    AlreadyClaimed {
        device: DeviceSpec,
        holder: Holder,
    },
    /// Releasing a device this holder does not hold.
    NotHeld(DeviceSpec),
    /// The address lies in no device untyped.
    NotDeviceMemory {
        paddr: Word,
    },
    /// Device memory already handed out.
    DeviceMemoryInUse {
        paddr: Word,
    },
    /// Freeing something the broker did not hand out (or already took back).
    UnknownObject(CPtr),
    InvalidRequest(&'static str),
    /// The device's interrupt line is bound for another device already, and
    /// seL4 delivers a line to one handler.
    IrqLineShared {
        line: u8,
        with: DeviceKey,
    },
    /// The holder holds the device with its interrupt bound to another
    /// notification or badge than the one it names now.
    IrqBoundElsewhere(DeviceSpec),
    /// The broker's own bookkeeping is inconsistent (a bug).
    Internal(&'static str),
}

impl BrokerError {
    pub(crate) fn kernel(op: &'static str, error: Error) -> Self {
        BrokerError::Kernel { op, error }
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::OutOfMemory { bits } => {
                write!(f, "out of memory for a 2^{bits}-byte block")
            }
            BrokerError::OutOfSlots => f.write_str("out of capability slots"),
            BrokerError::OutOfVirtualSpace => f.write_str("out of virtual address space"),
            BrokerError::Kernel { op, error } => write!(f, "{op}: {error}"),
            BrokerError::NoSuchDevice(id) => write!(f, "no device {id:?}"),
            BrokerError::AlreadyClaimed { device, holder } => {
                write!(f, "{device:?} is already claimed by holder {}", holder.0)
            }
            BrokerError::NotHeld(id) => write!(f, "{id:?} is not held by the caller"),
            BrokerError::NotDeviceMemory { paddr } => write!(f, "{paddr:#x} is not device memory"),
            BrokerError::DeviceMemoryInUse { paddr } => {
                write!(f, "device memory at {paddr:#x} is in use")
            }
            BrokerError::UnknownObject(c) => {
                write!(f, "slot {c:#x} holds nothing the broker handed out")
            }
            BrokerError::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            BrokerError::IrqLineShared { line, with } => write!(
                f,
                "interrupt line {line} is already bound for {with:?} (one handler per line)"
            ),
            BrokerError::IrqBoundElsewhere(spec) => write!(
                f,
                "{spec:?} is held with its interrupt bound to another notification or badge"
            ),
            BrokerError::Internal(what) => write!(f, "broker bookkeeping: {what}"),
        }
    }
}

pub type Result<T> = core::result::Result<T, BrokerError>;

const PAGE_BITS: u8 = 12;
const PAGE: u64 = 1 << PAGE_BITS;
/// seL4 IRQ numbers handed to IOAPIC lines: this base plus the pin. Under
/// QEMU TCG with seL4 5.0.0 the first delivery on a low number (pin 4 as
/// IRQ 4, CPU vector 52) sometimes ended in a general-protection fault during
/// interrupt delivery (5 of 40 runs); with this base, none did in 70 runs.
pub const IRQ_VECTOR_BASE: u8 = 40;

/// The badge a device interrupt arrives with on the notification the broker
/// makes for it ([`Broker::request_device`]).
pub const IRQ_BADGE: Word = 1;
/// DMA region every PCI bundle comes with: room for a driver's queues and
/// a 64 KiB transfer in flight while the next is prepared.
pub const PCI_DMA_BYTES: u64 = 256 * 1024;

/// What the broker is built from.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Free slots of the holder's CNode.
    pub free_slots: Range<CPtr>,
    pub untypeds: Vec<UntypedRoot>,
    /// The holder's own address space, where the broker maps for it.
    pub vspace: CPtr,
    /// Where the broker may map memory in that address space.
    pub vspace_window: Range<Word>,
}

/// The default window for mappings in the root task (above the image, the
/// guide's MMIO/heap area).
pub const ROOT_VSPACE_WINDOW: Range<Word> = 0x2000_0000..0x7f00_0000_0000;

/// The window for a component's broker's mappings in the component's own
/// address space: above everything the runtime lays out (`kaal_rt::start::
/// layout` ends at 0x8000_0000).
pub const COMPONENT_VSPACE_WINDOW: Range<Word> = 0x1_0000_0000..0x7f00_0000_0000;

impl BrokerConfig {
    /// A component's budget: its untyped blocks (RAM), the free slots of
    /// its CSpace and its own address space. The broker over it runs on
    /// [`sel4::Sel4Kernel::component`] and maps in
    /// [`COMPONENT_VSPACE_WINDOW`].
    pub fn for_component(
        vspace: Pml4,
        free_slots: Range<CPtr>,
        untypeds: impl IntoIterator<Item = UntypedRoot>,
    ) -> Self {
        BrokerConfig {
            free_slots,
            untypeds: untypeds.into_iter().collect(),
            vspace: vspace.cptr(),
            vspace_window: COMPONENT_VSPACE_WINDOW,
        }
    }

    /// Every untyped and every free slot BootInfo lists.
    pub fn from_bootinfo(bi: &BootInfo) -> Self {
        BrokerConfig {
            vspace: kaal_sel4::sys::seL4_CapInitThreadVSpace,
            free_slots: bi.empty(),
            untypeds: bi
                .untypeds()
                .map(|u| UntypedRoot {
                    cptr: u.cptr,
                    paddr: u.paddr,
                    bits: u.size_bits,
                    device: u.is_device,
                })
                .collect(),
            vspace_window: ROOT_VSPACE_WINDOW,
        }
    }
}

/// Live object allocations, indexed by their first slot: each records the
/// untyped node it was retyped from and how many objects (log2). A flat
/// table, since freeing is on the hot path.
#[derive(Clone, Debug)]
struct Objects {
    base: CPtr,
    /// 0: none; else `(node + 1) << 8 | log2(count)`.
    entries: Vec<u64>,
}

impl Objects {
    fn new(slots: &Range<CPtr>) -> Self {
        let len = slots.end.saturating_sub(slots.start) as usize;
        Objects {
            base: slots.start,
            entries: alloc::vec![0; len],
        }
    }
    fn entry(&mut self, first: CPtr) -> Option<&mut u64> {
        let i = usize::try_from(first.checked_sub(self.base)?).ok()?;
        self.entries.get_mut(i)
    }
    fn insert(&mut self, first: CPtr, node: NodeId, count: u64) -> Result<()> {
        let e = self.entry(first).ok_or(BrokerError::Internal(
            "object slot outside the broker's range",
        ))?;
        *e = ((node as u64 + 1) << 8) | u64::from(count.ilog2());
        Ok(())
    }
    fn get(&self, first: CPtr) -> Option<(NodeId, u64)> {
        let i = usize::try_from(first.checked_sub(self.base)?).ok()?;
        let e = *self.entries.get(i)?;
        (e != 0).then(|| (((e >> 8) - 1) as NodeId, 1u64 << (e & 0xff)))
    }
    fn remove(&mut self, first: CPtr) {
        if let Some(e) = self.entry(first) {
            *e = 0;
        }
    }
    fn iter(&self) -> impl Iterator<Item = (CPtr, NodeId, u64)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| **e != 0)
            .map(|(i, e)| {
                (
                    self.base + i as u64,
                    ((e >> 8) - 1) as NodeId,
                    1u64 << (e & 0xff),
                )
            })
    }
}

/// Memory mapped for a holder by [`Broker::allocate_memory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    pub vaddr: Word,
    pub size: u64,
    /// First frame slot of each power-of-two chunk, with its page count.
    chunks: Vec<(CPtr, u64)>,
    /// Mapped in the root task's window (else given to another space).
    in_root: bool,
}

impl Memory {
    /// Mapped in the holder's own window (not given to another space).
    pub fn in_root(&self) -> bool {
        self.in_root
    }

    /// The frame capability of each page, in address order.
    pub fn frames(&self) -> impl Iterator<Item = CPtr> + '_ {
        self.chunks.iter().flat_map(|&(first, n)| first..first + n)
    }
}

/// The capability broker over a kernel `K`.
pub struct Broker<K: Kernel> {
    k: K,
    /// The holder's own address space, where the broker maps for it.
    root_vspace: CPtr,
    slots: SlotAllocator,
    untyped: UntypedTree,
    vspace: RangeAllocator,
    objects: Objects,
    dma: BTreeMap<Word, CPtr>,
    devices: Vec<DeviceInfo>,
    claims: BTreeMap<DeviceKey, (Holder, DeviceSpec)>,
    cache: BTreeMap<(Holder, DeviceSpec), DeviceBundle>,
    resources: BTreeMap<DeviceKey, DeviceResources>,
    /// DMA regions of released PCI devices, kept for the device's next
    /// holder: a device that was not reset may still write to the queue
    /// addresses its last driver gave it, so that memory never goes to
    /// anything else.
    dma_kept: BTreeMap<DeviceKey, DmaRegion>,
    /// Paging structures made for each address space from `new_vspace`.
    tables: BTreeMap<CPtr, Vec<CPtr>>,
}

impl<K: Kernel> fmt::Debug for Broker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("free_slots", &self.free_slots())
            .field("free_ram", &self.free_ram_bytes())
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl<K: Kernel> Broker<K> {
    /// Takes ownership of the untypeds and slots in `cfg`. Devices are
    /// registered by [`Broker::discover_devices`].
    pub fn new(k: K, cfg: BrokerConfig) -> Self {
        Broker {
            k,
            root_vspace: cfg.vspace,
            slots: SlotAllocator::new(cfg.free_slots.start, cfg.free_slots.end),
            untyped: UntypedTree::new(cfg.untypeds),
            vspace: RangeAllocator::new(cfg.vspace_window.start, cfg.vspace_window.end),
            objects: Objects::new(&cfg.free_slots),
            dma: BTreeMap::new(),
            devices: Vec::new(),
            claims: BTreeMap::new(),
            cache: BTreeMap::new(),
            resources: BTreeMap::new(),
            tables: BTreeMap::new(),
            dma_kept: BTreeMap::new(),
        }
    }

    pub fn kernel(&mut self) -> &mut K {
        &mut self.k
    }

    pub fn free_slots(&self) -> u64 {
        self.slots.free_count()
    }

    pub fn free_ram_bytes(&self) -> u64 {
        self.untyped.ram_free()
    }

    pub fn total_ram_bytes(&self) -> u64 {
        self.untyped.ram_total()
    }

    /// Merges free buddies now (allocation does this on demand).
    pub fn coalesce(&mut self) -> Result<()> {
        self.untyped.coalesce(&mut self.k, &mut self.slots)
    }

    /// One free slot of the root CNode, for the caller to fill.
    pub fn alloc_slot(&mut self) -> Result<CPtr> {
        self.slots.alloc_one().ok_or(BrokerError::OutOfSlots)
    }

    /// Gives back an empty slot from [`Broker::alloc_slot`].
    pub fn free_slot(&mut self, slot: CPtr) -> Result<()> {
        self.slots
            .free(slot, 1)
            .map_err(|_| BrokerError::UnknownObject(slot))
    }

    // ---- objects -------------------------------------------------------

    /// Retypes `count` (a power of two) objects into consecutive fresh slots
    /// from one block of exactly their size; returns the first slot.
    pub fn alloc_objects(&mut self, spec: ObjSpec, count: u64) -> Result<CPtr> {
        if !count.is_power_of_two() {
            return Err(BrokerError::InvalidRequest(
                "object count must be a power of two",
            ));
        }
        let bits = u32::from(spec.mem_bits()) + count.ilog2();
        let bits =
            u8::try_from(bits).map_err(|_| BrokerError::InvalidRequest("object too large"))?;
        let first = self.slots.alloc(count).ok_or(BrokerError::OutOfSlots)?;
        let block = match self.untyped.alloc(&mut self.k, &mut self.slots, bits) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.slots.free(first, count);
                return Err(e);
            }
        };
        let fan_out = kaal_sel4::sys::config::CONFIG_RETYPE_FAN_OUT_LIMIT;
        let mut done = 0;
        while done < count {
            let n = (count - done).min(fan_out);
            if let Err(e) = self.k.retype(block.cptr, spec, first + done, n as usize) {
                // Take back what was made, then the block and the slots.
                let _ = self.k.revoke(block.cptr);
                let _ = self.untyped.free(block.node);
                let _ = self.slots.free(first, count);
                return Err(BrokerError::kernel("Untyped_Retype", e));
            }
            done += n;
        }
        self.objects.insert(first, block.node, count)?;
        Ok(first)
    }

    pub fn alloc_object(&mut self, spec: ObjSpec) -> Result<CPtr> {
        self.alloc_objects(spec, 1)
    }

    /// A fixed-size object as a typed capability.
    pub fn alloc<T: Object>(&mut self) -> Result<T> {
        let spec = ObjSpec::fixed(T::TYPE)
            .ok_or(BrokerError::InvalidRequest("not a fixed-size object type"))?;
        Ok(T::from_cptr(self.alloc_object(spec)?))
    }

    /// A CNode of 2^slot_bits slots.
    pub fn alloc_cnode(&mut self, slot_bits: u8) -> Result<kaal_sel4::cap::CNode> {
        Ok(kaal_sel4::cap::CNode::from_cptr(
            self.alloc_object(ObjSpec::cnode(slot_bits))?,
        ))
    }

    /// A raw untyped block of 2^`bits` bytes (at least the kernel's
    /// minimum) in a fresh slot, for its holder to retype itself: a
    /// component's budget, or the memory of an ASID pool. Returns the
    /// capability and its physical address. [`Broker::free`] of the
    /// capability revokes it, which destroys everything made from it
    /// (every object and copy, in whatever CSpace), and takes the memory
    /// back.
    pub fn alloc_untyped(&mut self, bits: u8) -> Result<(CPtr, Word)> {
        let bits = bits.max(kaal_sel4::sys::seL4_MinUntypedBits as u8);
        if u64::from(bits) > kaal_sel4::sys::seL4_MaxUntypedBits {
            return Err(BrokerError::InvalidRequest("untyped block too large"));
        }
        let cptr = self.alloc_object(ObjSpec::untyped(bits))?;
        let paddr = self.object_paddr(cptr)?;
        Ok((cptr, paddr))
    }

    /// The physical address of the block behind an allocation.
    pub fn object_paddr(&self, first: CPtr) -> Result<Word> {
        let (node, _) = self
            .objects
            .get(first)
            .ok_or(BrokerError::UnknownObject(first))?;
        Ok(self.untyped.block(node)?.paddr)
    }

    /// Destroys what [`Broker::alloc_objects`] made (every copy of it too)
    /// and takes back its memory and slots.
    pub fn free(&mut self, first: CPtr) -> Result<()> {
        let (node, count) = self
            .objects
            .get(first)
            .ok_or(BrokerError::UnknownObject(first))?;
        let block = self.untyped.block(node)?;
        self.k
            .revoke(block.cptr)
            .map_err(|e| BrokerError::kernel("CNode_Revoke", e))?;
        self.objects.remove(first);
        self.untyped.free(node)?;
        self.slots
            .free(first, count)
            .map_err(|_| BrokerError::Internal("object slots"))
    }

    /// Live allocations: first slot, physical address, log2 size, count.
    pub fn live_objects(&self) -> impl Iterator<Item = (CPtr, Word, u8, u64)> + '_ {
        self.objects.iter().filter_map(|(c, node, count)| {
            let b = self.untyped.block(node).ok()?;
            Some((c, b.paddr, b.bits, count))
        })
    }

    // ---- address space -------------------------------------------------

    /// A new, empty address space with an ASID, ready for mappings.
    pub fn new_vspace(&mut self) -> Result<Pml4> {
        let vspace: Pml4 = self.alloc()?;
        if let Err(e) = self.k.assign_asid(vspace.cptr()) {
            let _ = self.free(vspace.cptr());
            return Err(BrokerError::kernel("X86_ASIDPool_Assign", e));
        }
        self.tables.insert(vspace.cptr(), Vec::new());
        Ok(vspace)
    }

    /// Frees an address space from [`Broker::new_vspace`] and the paging
    /// structures made for it (not the frames mapped in it: their holder
    /// frees those).
    pub fn free_vspace(&mut self, vspace: Pml4) -> Result<()> {
        let tables = self
            .tables
            .remove(&vspace.cptr())
            .ok_or(BrokerError::UnknownObject(vspace.cptr()))?;
        for t in tables {
            self.free(t)?;
        }
        self.free(vspace.cptr())
    }

    /// Maps `frame` at `vaddr` in `vspace`, creating the paging structures
    /// above it on demand (they belong to that address space from then on).
    pub fn map_into(
        &mut self,
        vspace: Pml4,
        frame: Frame,
        vaddr: Word,
        access: Access,
    ) -> Result<()> {
        self.map_in(vspace.cptr(), frame.cptr(), vaddr, access, Cache::WriteBack)
    }

    fn map_frame(&mut self, frame: CPtr, vaddr: Word, cache: Cache) -> Result<()> {
        self.map_in(self.root_vspace, frame, vaddr, Access::ReadWrite, cache)
    }

    fn map_in(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        vaddr: Word,
        access: Access,
        cache: Cache,
    ) -> Result<()> {
        match self.k.map_frame(vspace, frame, vaddr, access, cache) {
            Err(Error::FailedLookup) => {
                self.map_tables(vspace, vaddr)?;
                self.k
                    .map_frame(vspace, frame, vaddr, access, cache)
                    .map_err(|e| BrokerError::kernel("X86_Page_Map", e))
            }
            r => r.map_err(|e| BrokerError::kernel("X86_Page_Map", e)),
        }
    }

    /// Creates the missing paging structures over `vaddr` in `vspace`.
    fn map_tables(&mut self, vspace: CPtr, vaddr: Word) -> Result<()> {
        let levels = [
            ObjectType::PageTable,
            ObjectType::PageDirectory,
            ObjectType::Pdpt,
        ];
        // Find the lowest level that maps, then map the ones below it.
        let mut made = Vec::new();
        for ty in levels {
            let t = self.alloc_object(ObjSpec::of(ty))?;
            if let Some(list) = self.tables.get_mut(&vspace) {
                list.push(t);
            }
            match self.k.map_table(vspace, ty, t, vaddr) {
                Ok(()) => {
                    made.push((ty, t, true));
                    break;
                }
                Err(Error::FailedLookup) => made.push((ty, t, false)),
                Err(e) => return Err(BrokerError::kernel("map paging structure", e)),
            }
        }
        for (ty, t, mapped) in made.into_iter().rev() {
            if !mapped {
                self.k
                    .map_table(vspace, ty, t, vaddr)
                    .map_err(|e| BrokerError::kernel("map paging structure", e))?;
            }
        }
        Ok(())
    }

    /// Maps `count` frames from slot `first` at `vaddr`.
    fn map_frames(&mut self, first: CPtr, count: u64, vaddr: Word, cache: Cache) -> Result<()> {
        for i in 0..count {
            self.map_frame(first + i, vaddr + i * PAGE, cache)?;
        }
        Ok(())
    }

    /// Reserves `bytes` of address space followed by an unmapped guard page.
    fn reserve(&mut self, bytes: u64) -> Result<Word> {
        self.vspace
            .alloc(bytes + PAGE, PAGE)
            .ok_or(BrokerError::OutOfVirtualSpace)
    }

    /// `size` bytes of fresh zeroed memory mapped read-write into the root
    /// task's address space.
    pub fn allocate_memory(&mut self, size: u64) -> Result<Memory> {
        let pages = size.div_ceil(PAGE);
        if pages == 0 {
            return Err(BrokerError::InvalidRequest("zero-sized memory"));
        }
        let vaddr = self.reserve(pages * PAGE)?;
        let mut mem = Memory {
            vaddr,
            size: pages * PAGE,
            chunks: Vec::new(),
            in_root: true,
        };
        let mut at = vaddr;
        let mut left = pages;
        while left > 0 {
            let n = 1u64 << left.ilog2();
            let r = self
                .alloc_objects(ObjSpec::of(ObjectType::Frame4K), n)
                .and_then(|first| {
                    mem.chunks.push((first, n));
                    self.map_frames(first, n, at, Cache::WriteBack)
                });
            if let Err(e) = r {
                let _ = self.free_memory(mem);
                return Err(e);
            }
            at += n * PAGE;
            left -= n;
        }
        Ok(mem)
    }

    /// Unmaps and takes back memory from [`Broker::allocate_memory`]; the
    /// caller must no longer use it.
    pub fn free_memory(&mut self, mem: Memory) -> Result<()> {
        for (first, _) in &mem.chunks {
            self.free(*first)?;
        }
        if !mem.in_root {
            return Ok(());
        }
        self.vspace
            .free(mem.vaddr, mem.size + PAGE)
            .map_err(|_| BrokerError::Internal("vspace"))
    }

    /// Moves memory from the root task's window to `vaddr` in `vspace` (the
    /// root task fills it first: a program's segments, say). The result is
    /// freed with [`Broker::free_memory`] like any other.
    pub fn give_memory(
        &mut self,
        mut mem: Memory,
        vspace: Pml4,
        vaddr: Word,
        access: Access,
    ) -> Result<Memory> {
        if !mem.in_root {
            return Err(BrokerError::InvalidRequest("memory was already given away"));
        }
        let frames: Vec<CPtr> = mem.frames().collect();
        for f in &frames {
            self.k
                .unmap_frame(*f)
                .map_err(|e| BrokerError::kernel("X86_Page_Unmap", e))?;
        }
        self.vspace
            .free(mem.vaddr, mem.size + PAGE)
            .map_err(|_| BrokerError::Internal("vspace"))?;
        mem.in_root = false;
        mem.vaddr = vaddr;
        for (i, f) in frames.into_iter().enumerate() {
            self.map_in(
                vspace.cptr(),
                f,
                vaddr + i as u64 * PAGE,
                access,
                Cache::WriteBack,
            )?;
        }
        Ok(mem)
    }

    /// Maps `mem` also at `vaddr` in `vspace`, through copies of its frame
    /// capabilities; returns the copies, to pass to [`Broker::unshare`] (they
    /// go anyway when `mem` is freed, but their slots do not).
    pub fn share_memory(
        &mut self,
        mem: &Memory,
        vspace: Pml4,
        vaddr: Word,
        access: Access,
    ) -> Result<Vec<CPtr>> {
        let frames: Vec<CPtr> = mem.frames().collect();
        self.share_frames(&frames, vspace, vaddr, access, Cache::WriteBack)
    }

    /// Maps `frames` (the broker's, in address order) also at `vaddr` in
    /// `vspace` through copies of their capabilities, as
    /// [`Broker::share_memory`] does.
    pub fn share_frames(
        &mut self,
        frames: &[CPtr],
        vspace: Pml4,
        vaddr: Word,
        access: Access,
        cache: Cache,
    ) -> Result<Vec<CPtr>> {
        let mut copies = Vec::new();
        for (i, &f) in frames.iter().enumerate() {
            let r = self.alloc_slot().and_then(|slot| {
                copies.push(slot);
                self.k
                    .copy_cap(slot, f)
                    .map_err(|e| BrokerError::kernel("CNode_Copy", e))?;
                self.map_in(vspace.cptr(), slot, vaddr + i as u64 * PAGE, access, cache)
            });
            if let Err(e) = r {
                let _ = self.unshare(copies);
                return Err(e);
            }
        }
        Ok(copies)
    }

    /// Changes the access of a copy that `share_frames` mapped in `vspace`
    /// (copy-on-write: a private page becomes read-only while two
    /// processes hold its frame, writable again when one is left).
    pub fn remap(&mut self, copy: CPtr, vspace: Pml4, access: Access) -> Result<()> {
        self.k
            .remap_frame(vspace.cptr(), copy, access, Cache::WriteBack)
            .map_err(|e| BrokerError::kernel("X86_Page_Remap", e))
    }

    /// Deletes capability copies mapped in an address space already freed
    /// (its mappings went with it) and frees their slots: `unshare`
    /// without the unmapping.
    pub fn drop_copies(&mut self, copies: Vec<CPtr>) -> Result<()> {
        for c in copies {
            self.k
                .delete(c)
                .map_err(|e| BrokerError::kernel("CNode_Delete", e))?;
            self.free_slot(c)?;
        }
        Ok(())
    }

    /// Unmaps and deletes capability copies and frees their slots.
    pub fn unshare(&mut self, copies: Vec<CPtr>) -> Result<()> {
        for c in copies {
            // Deleting a copy unmaps it only when it is the frame's last
            // capability (x86 `Mode_finaliseCap` unmaps on the final
            // delete): the original lives on, so unmap first. An empty slot
            // (the original was freed first) has nothing to unmap.
            let _ = self.k.unmap_frame(c);
            // An empty slot deletes fine.
            self.k
                .delete(c)
                .map_err(|e| BrokerError::kernel("CNode_Delete", e))?;
            self.free_slot(c)?;
        }
        Ok(())
    }

    /// A physically contiguous region of at least `size` bytes (a power of
    /// two of pages), mapped uncached; each frame's address is confirmed by
    /// the kernel.
    pub fn allocate_dma(&mut self, size: u64) -> Result<DmaRegion> {
        let pages = size.div_ceil(PAGE).max(1).next_power_of_two();
        let first = self.alloc_objects(ObjSpec::of(ObjectType::Frame4K), pages)?;
        let r = self.map_dma(first, pages);
        if r.is_err() {
            let _ = self.free(first);
        }
        r
    }

    fn map_dma(&mut self, first: CPtr, pages: u64) -> Result<DmaRegion> {
        let paddr = self.object_paddr(first)?;
        for i in 0..pages {
            let got = self
                .k
                .frame_paddr(first + i)
                .map_err(|e| BrokerError::kernel("X86_Page_GetAddress", e))?;
            if got != paddr + i * PAGE {
                return Err(BrokerError::Internal("DMA frames are not contiguous"));
            }
        }
        let vaddr = self.reserve(pages * PAGE)?;
        if let Err(e) = self.map_frames(first, pages, vaddr, Cache::Uncached) {
            let _ = self.vspace.free(vaddr, pages * PAGE + PAGE);
            return Err(e);
        }
        self.dma.insert(vaddr, first);
        Ok(DmaRegion {
            vaddr,
            paddr,
            size: pages * PAGE,
        })
    }

    /// The frame capabilities of a DMA region, in address order.
    pub fn dma_frames(&self, region: &DmaRegion) -> Vec<CPtr> {
        (0..region.size / PAGE)
            .filter_map(|p| self.dma_frame(region, p))
            .collect()
    }

    /// The frame capability of page `page` of a DMA region (to ask the kernel
    /// for its physical address, say).
    pub fn dma_frame(&self, region: &DmaRegion, page: u64) -> Option<CPtr> {
        let first = *self.dma.get(&region.vaddr)?;
        (page < region.size / PAGE).then_some(first + page)
    }

    /// Takes back a DMA region; nothing (no device either) may use it after.
    pub fn free_dma(&mut self, region: DmaRegion) -> Result<()> {
        let first = self
            .dma
            .remove(&region.vaddr)
            .ok_or(BrokerError::UnknownObject(region.vaddr))?;
        self.free(first)?;
        self.vspace
            .free(region.vaddr, region.size + PAGE)
            .map_err(|_| BrokerError::Internal("vspace"))
    }
}
