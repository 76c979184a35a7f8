//! The start-up contract between the root task and a component: where the
//! root task puts things in a component's address space and CSpace, and the
//! read-only start-info page that lists the component's capabilities by name.
//!
//! Only the root task writes these structures, and it is trusted, but the
//! component still reads them through checked accessors.

use kaal_sel4::Word;

/// Where the root task maps a component's pieces (the image itself is linked
/// at 0x400000, inside [`IMAGE_WINDOW`]).
pub mod layout {
    use core::ops::Range;
    /// Addresses an image's segments may use.
    pub const IMAGE_WINDOW: Range<u64> = 0x1000..0x1000_0000;
    /// The start-info page (read-only).
    pub const START_INFO: u64 = 0x1000_0000;
    /// The command line page (read-only): the manifest's `args`, each
    /// word followed by a NUL; `StartInfo::args_bytes` long.
    pub const ARGS: u64 = 0x1000_1000;
    /// The IPC buffer page.
    pub const IPC_BUFFER: u64 = 0x1000_2000;
    /// The stack grows down from here; the page below its end stays unmapped.
    pub const STACK_TOP: u64 = 0x1100_0000;
    /// The heap starts here.
    pub const HEAP_BASE: u64 = 0x2000_0000;
    /// Shared memory (rings, memory channels, lent regions) and then private
    /// memory from here, each region followed by an unmapped guard page.
    pub const SHARED_BASE: u64 = 0x4000_0000;
    /// Device memory and DMA buffers from here, each region followed by an
    /// unmapped guard page, up to [`DEVICE_END`].
    pub const DEVICE_BASE: u64 = 0x6000_0000;
    pub const DEVICE_END: u64 = 0x8000_0000;
}

/// CSpace slots every component has. The CSpace is one CNode of
/// 2^[`StartInfo::cspace_bits`] slots ([`CSPACE_BITS`], or
/// [`BUDGET_CSPACE_BITS`] with an untyped budget); the granted capabilities
/// follow these.
pub mod slot {
    use kaal_sel4::CPtr;
    /// The supervisor endpoint (badged with the component's id). It is also
    /// the thread's fault endpoint.
    pub const SUPERVISOR: CPtr = 1;
    /// The component's notification (receive right): every event for it
    /// arrives here, each source with its own badge bit (see
    /// [`super::CapEntry::bit`]), so one wait covers rings and interrupts.
    pub const NOTIFICATION: CPtr = 2;
    /// The first slot of the capabilities listed in the start-info page.
    pub const FIRST_GRANTED: CPtr = 3;
}

/// Bytes of a page (the command line page holds at most this).
pub const PAGE_BYTES: usize = 4096;

/// log2 of the number of slots in a component's CSpace.
pub const CSPACE_BITS: u8 = 8;
/// ... in the CSpace of a component with an untyped budget: room for the
/// thousands of objects it makes itself.
pub const BUDGET_CSPACE_BITS: u8 = 16;
/// The name the entries of an untyped budget go by (the manifest's
/// `kaal_manifest::UNTYPED_LOCAL_NAME`).
pub const UNTYPED_NAME: &str = "untyped";

/// Marks a valid start-info page.
pub const START_MAGIC: u64 = 0x4b61_614c_5374_6172; // "KaaLStar"
/// Longest component or capability name.
pub const NAME_BYTES: usize = 32;
/// Most capabilities a component can be granted.
pub const MAX_CAPS: usize = 44;
/// Badge bits of a component's notification: rings take bits from 0, the
/// interrupts of its devices from [`IRQ_BITS`]; seL4 5.0 badges have 28 bits.
pub const RING_BITS: core::ops::Range<u32> = 0..20;
pub const IRQ_BITS: core::ops::Range<u32> = 20..27;
/// The last badge bit: set on the calls of a server whose notification is
/// bound to its thread, where a notification word (ring and interrupt
/// bits only) also ends a wait for calls.
pub const CALL_BIT: u32 = 27;

/// What a granted capability is, and how the entry's fields are used.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// The client end of an endpoint channel: `slot`, own badge in `value`.
    EndpointClient = 1,
    /// The server end of an endpoint channel: `slot`.
    EndpointServer = 2,
    /// The producer end of a ring: memory at `vaddr`/`size`, `slot2` = the
    /// consumer's notification (signal only), `value` = slots in the ring;
    /// the consumer's signals arrive with `bit`.
    RingProducer = 3,
    /// The consumer end of a ring: `slot2` = the producer's notification;
    /// the producer's signals arrive with `bit`.
    RingConsumer = 4,
    /// I/O ports `value & 0xffff ..= value >> 16` through `slot`.
    IoPort = 5,
    /// An interrupt: handler in `slot` (to acknowledge); it arrives on the
    /// component's notification with `bit`; `value` is 1 for a
    /// level-triggered line, 0 for an edge-triggered one.
    Irq = 6,
    /// Device registers mapped uncached at `vaddr`/`size`, PCI BAR number
    /// in `value`.
    Mmio = 7,
    /// A DMA buffer at `vaddr`/`size`, bus address in `value`.
    Dma = 8,
    /// A PCI function's configuration space as the broker read it when it
    /// granted the device: a read-only [`PciConfigPage`] at `vaddr`.
    PciConfig = 9,
    /// A memory channel (either end): read-write at `vaddr`/`size`. Also a
    /// lent region of a lending endpoint (`file`), under the endpoint's
    /// name: a client has its own (`value` = its badge), the server one
    /// per client (`value` = that client's badge).
    SharedMemory = 10,
    /// Private memory (the manifest's `memory`): read-write at
    /// `vaddr`/`size`, mapped into this component only, zeroed at start.
    PrivateMemory = 11,
    /// For the server of a lending endpoint, under the endpoint's name:
    /// `slot` holds a capability to the component's own CNode and slots
    /// `value .. value + size` of it are left empty, one per client, to
    /// keep callers' reply capabilities in (`SaveCaller`).
    ReplySlots = 12,
    /// One block of the untyped budget (under [`UNTYPED_NAME`]): untyped
    /// capability in `slot`, its physical address in `value`, log2 of its
    /// bytes in `size`. Everything made from it goes when the component
    /// stops.
    Untyped = 13,
    /// The budget's ASID pool, made for this component alone: `slot`.
    AsidPool = 14,
    /// The component's own address space (its PML4): `slot`.
    OwnVSpace = 15,
    /// The component's own CNode in `slot`, resolving slot numbers at depth
    /// 64 (a guard covers the bits above its size); slots `value .. value +
    /// size` of it are empty, for the objects it makes.
    OwnCNode = 16,
}

/// The page behind a [`CapKind::PciConfig`] entry. A driver never touches
/// configuration space itself (one function's access would reach every
/// device); the broker has enabled memory decoding and bus mastering.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PciConfigPage {
    /// The first 256 bytes of configuration space, as 32-bit registers.
    pub regs: [u32; 64],
    /// The size of each BAR in bytes (0: not implemented; the upper half of
    /// a 64-bit BAR also reads 0).
    pub bar_sizes: [u64; 6],
}

impl CapKind {
    pub fn from_raw(v: u64) -> Option<CapKind> {
        Some(match v {
            1 => CapKind::EndpointClient,
            2 => CapKind::EndpointServer,
            3 => CapKind::RingProducer,
            4 => CapKind::RingConsumer,
            5 => CapKind::IoPort,
            6 => CapKind::Irq,
            7 => CapKind::Mmio,
            8 => CapKind::Dma,
            9 => CapKind::PciConfig,
            10 => CapKind::SharedMemory,
            11 => CapKind::PrivateMemory,
            12 => CapKind::ReplySlots,
            13 => CapKind::Untyped,
            14 => CapKind::AsidPool,
            15 => CapKind::OwnVSpace,
            16 => CapKind::OwnCNode,
            _ => return None,
        })
    }
}

/// One granted capability.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CapEntry {
    pub name: [u8; NAME_BYTES],
    pub kind: u64,
    pub slot: Word,
    pub slot2: Word,
    pub vaddr: u64,
    pub size: u64,
    pub value: u64,
    /// The badge bit this grant's events carry on the component's
    /// notification (0: none).
    pub bit: u64,
}

/// The start-info page.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StartInfo {
    pub magic: u64,
    pub name: [u8; NAME_BYTES],
    /// The component's number in the manifest (its supervisor badge).
    pub id: u64,
    /// How often the supervisor has restarted it.
    pub restarts: u64,
    pub heap_base: u64,
    pub heap_size: u64,
    pub stack_top: u64,
    pub stack_size: u64,
    /// The TSC frequency in MHz the kernel calibrated at boot (0: unknown).
    pub tsc_mhz: u64,
    /// log2 of the slots of the component's CSpace.
    pub cspace_bits: u64,
    /// Bytes of the command line page at [`layout::ARGS`] (0: no page).
    pub args_bytes: u64,
    pub cap_count: u64,
    pub caps: [CapEntry; MAX_CAPS],
}

const _: () = assert!(core::mem::size_of::<StartInfo>() <= 4096);

impl Default for StartInfo {
    fn default() -> Self {
        StartInfo {
            magic: START_MAGIC,
            name: [0; NAME_BYTES],
            id: 0,
            restarts: 0,
            heap_base: 0,
            heap_size: 0,
            stack_top: 0,
            stack_size: 0,
            tsc_mhz: 0,
            cspace_bits: CSPACE_BITS as u64,
            args_bytes: 0,
            cap_count: 0,
            caps: [CapEntry::default(); MAX_CAPS],
        }
    }
}

/// Stores `s` as a fixed-size name; `None` if it is too long.
pub fn name_bytes(s: &str) -> Option<[u8; NAME_BYTES]> {
    let mut out = [0; NAME_BYTES];
    out.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
    Some(out)
}

/// The text of a fixed-size name (up to its first NUL).
pub fn name_str(b: &[u8; NAME_BYTES]) -> &str {
    let len = b.iter().position(|&c| c == 0).unwrap_or(NAME_BYTES);
    core::str::from_utf8(b.get(..len).unwrap_or(&[])).unwrap_or("?")
}

impl StartInfo {
    pub fn name(&self) -> &str {
        name_str(&self.name)
    }

    /// The granted capabilities.
    pub fn caps(&self) -> &[CapEntry] {
        let n = usize::try_from(self.cap_count).unwrap_or(0).min(MAX_CAPS);
        self.caps.get(..n).unwrap_or(&[])
    }

    /// Adds a capability entry; `false` if the table is full.
    pub fn push(&mut self, entry: CapEntry) -> bool {
        let n = usize::try_from(self.cap_count).unwrap_or(MAX_CAPS);
        match self.caps.get_mut(n) {
            Some(e) => {
                *e = entry;
                self.cap_count += 1;
                true
            }
            None => false,
        }
    }

    /// The first entry named `name`, of any kind. One name can carry
    /// several entries (a device's ports and interrupt, a lending
    /// endpoint's endpoint and regions): [`Self::find_kind`] picks one.
    pub fn find(&self, name: &str) -> Option<&CapEntry> {
        self.caps().iter().find(|e| name_str(&e.name) == name)
    }

    /// The first entry named `name` of kind `kind`.
    pub fn find_kind(&self, name: &str, kind: CapKind) -> Option<&CapEntry> {
        self.caps()
            .iter()
            .find(|e| e.kind == kind as u64 && name_str(&e.name) == name)
    }

    /// Every entry named `name` of kind `kind`, in grant order.
    pub fn caps_of<'s>(
        &'s self,
        name: &'s str,
        kind: CapKind,
    ) -> impl Iterator<Item = &'s CapEntry> + 's {
        self.caps()
            .iter()
            .filter(move |e| e.kind == kind as u64 && name_str(&e.name) == name)
    }
}
