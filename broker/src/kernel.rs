//! The kernel operations the broker needs, as a trait: implemented over seL4
//! by [`crate::sel4::Sel4Kernel`], and by [`crate::model::Model`] for fast
//! host tests of the broker's logic.

use kaal_sel4::{sys, CPtr, Error, Word};

/// Kernel objects the broker creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    Untyped,
    Tcb,
    Endpoint,
    Notification,
    CNode,
    Frame4K,
    Frame2M,
    PageTable,
    PageDirectory,
    Pdpt,
    Pml4,
}

/// What to retype: a type and, for the variable-size ones, a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjSpec {
    pub ty: ObjectType,
    /// log2 bytes for `Untyped`, log2 slots for `CNode`, else 0.
    pub size_bits: u8,
}

impl ObjSpec {
    pub const fn of(ty: ObjectType) -> Self {
        ObjSpec { ty, size_bits: 0 }
    }
    pub const fn untyped(bits: u8) -> Self {
        ObjSpec {
            ty: ObjectType::Untyped,
            size_bits: bits,
        }
    }
    pub const fn cnode(slot_bits: u8) -> Self {
        ObjSpec {
            ty: ObjectType::CNode,
            size_bits: slot_bits,
        }
    }

    /// The fixed-size object of a kernel object-type number.
    pub fn fixed(kernel_type: Word) -> Option<Self> {
        const FIXED: [ObjectType; 9] = [
            ObjectType::Tcb,
            ObjectType::Endpoint,
            ObjectType::Notification,
            ObjectType::Frame4K,
            ObjectType::Frame2M,
            ObjectType::PageTable,
            ObjectType::PageDirectory,
            ObjectType::Pdpt,
            ObjectType::Pml4,
        ];
        FIXED
            .iter()
            .map(|&ty| ObjSpec::of(ty))
            .find(|s| s.kernel_type() == kernel_type)
    }

    /// log2 of the memory one object takes.
    pub const fn mem_bits(self) -> u8 {
        (match self.ty {
            ObjectType::Untyped => self.size_bits as Word,
            ObjectType::Tcb => sys::seL4_TCBBits,
            ObjectType::Endpoint => sys::seL4_EndpointBits,
            ObjectType::Notification => sys::seL4_NotificationBits,
            ObjectType::CNode => sys::seL4_SlotBits + self.size_bits as Word,
            ObjectType::Frame4K => sys::seL4_PageBits,
            ObjectType::Frame2M => sys::seL4_LargePageBits,
            ObjectType::PageTable => sys::seL4_PageTableBits,
            ObjectType::PageDirectory => sys::seL4_PageDirBits,
            ObjectType::Pdpt => sys::seL4_PDPTBits,
            ObjectType::Pml4 => sys::seL4_PML4Bits,
        }) as u8
    }

    /// The kernel's object-type number.
    pub const fn kernel_type(self) -> Word {
        match self.ty {
            ObjectType::Untyped => sys::seL4_UntypedObject,
            ObjectType::Tcb => sys::seL4_TCBObject,
            ObjectType::Endpoint => sys::seL4_EndpointObject,
            ObjectType::Notification => sys::seL4_NotificationObject,
            ObjectType::CNode => sys::seL4_CapTableObject,
            ObjectType::Frame4K => sys::seL4_X86_4K,
            ObjectType::Frame2M => sys::seL4_X86_LargePageObject,
            ObjectType::PageTable => sys::seL4_X86_PageTableObject,
            ObjectType::PageDirectory => sys::seL4_X86_PageDirectoryObject,
            ObjectType::Pdpt => sys::seL4_X86_PDPTObject,
            ObjectType::Pml4 => sys::seL4_X64_PML4Object,
        }
    }

    /// The size argument the kernel's retype expects.
    pub const fn retype_size(self) -> Word {
        match self.ty {
            ObjectType::Untyped | ObjectType::CNode => self.size_bits as Word,
            _ => 0,
        }
    }
}

/// What a mapping allows. seL4 5.0 on x86 has no execute-disable attribute,
/// so read-only is the strongest restriction (code and constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// Caching of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    WriteBack,
    Uncached,
}

pub use kaal_sel4::cap::IoApicLine;

/// What the broker asks of the kernel. Every slot named is a slot of the
/// root task's CNode; the broker owns the slots it passes.
pub trait Kernel {
    /// Retypes `count` objects from `untyped` into slots `dest..dest+count`.
    fn retype(
        &mut self,
        untyped: CPtr,
        spec: ObjSpec,
        dest: CPtr,
        count: usize,
    ) -> Result<(), Error>;
    /// Deletes the capability in `slot`.
    fn delete(&mut self, slot: CPtr) -> Result<(), Error>;
    /// Deletes every capability derived from the one in `slot`.
    fn revoke(&mut self, slot: CPtr) -> Result<(), Error>;
    /// The physical address of a frame.
    fn frame_paddr(&mut self, frame: CPtr) -> Result<Word, Error>;
    /// Maps a 4 KiB frame into `vspace`; `FailedLookup` when a paging
    /// structure above it is missing.
    fn map_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        vaddr: Word,
        access: Access,
        cache: Cache,
    ) -> Result<(), Error>;
    /// Changes the access of `frame`'s mapping in `vspace`, where it is
    /// mapped already.
    fn remap_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        access: Access,
        cache: Cache,
    ) -> Result<(), Error>;
    /// Maps a paging structure (page table, directory or PDPT) over `vaddr`.
    fn map_table(
        &mut self,
        vspace: CPtr,
        ty: ObjectType,
        table: CPtr,
        vaddr: Word,
    ) -> Result<(), Error>;
    /// Gives a new address space an ASID.
    fn assign_asid(&mut self, vspace: CPtr) -> Result<(), Error>;
    /// Creates the handler for an IOAPIC line in `dest`.
    fn irq_ioapic(&mut self, dest: CPtr, line: IoApicLine, vector: u8) -> Result<(), Error>;
    /// Delivers an IRQ handler's interrupts to a notification.
    fn irq_set_notification(&mut self, irq: CPtr, ntfn: CPtr) -> Result<(), Error>;
    /// Copies the capability in `src` to `dest` with a badge.
    fn mint_badge(&mut self, dest: CPtr, src: CPtr, badge: Word) -> Result<(), Error>;
    /// Copies the capability in `src` to `dest` (to map a frame twice, say).
    fn copy_cap(&mut self, dest: CPtr, src: CPtr) -> Result<(), Error>;
    /// Removes a frame's mapping (a no-op if it has none).
    fn unmap_frame(&mut self, frame: CPtr) -> Result<(), Error>;
    /// Copies the I/O port capability, restricted to `first..=last`, to `dest`.
    fn mint_ioports(&mut self, dest: CPtr, first: u16, last: u16) -> Result<(), Error>;
    /// 32-bit port input and output through the broker's own port capability
    /// (PCI configuration space).
    fn port_in32(&mut self, port: u16) -> Result<u32, Error>;
    fn port_out32(&mut self, port: u16, value: u32) -> Result<(), Error>;
}
