//! The broker's kernel operations on seL4: through the root task's initial
//! capabilities, or through a component's own CNode and ASID pool (a
//! component that holds an untyped budget runs a broker of its own).

use crate::kernel::{Access, Cache, IoApicLine, Kernel, ObjSpec, ObjectType};
use kaal_sel4::cap::{
    init, AsidPool, CNode, CacheMode, Cap, Frame, IoPort, IrqControl, IrqHandler, Notification,
    PageDirectory, PageTable, Pdpt, Pml4, Rights, Untyped,
};
use kaal_sel4::{CPtr, Error, Word};

/// seL4 as the broker's holder sees it.
#[derive(Clone, Copy, Debug)]
pub struct Sel4Kernel {
    cnode: CNode,
    asid_pool: AsidPool,
    /// The root task's only: a component's broker claims no devices.
    irq_control: Option<IrqControl>,
    ports: Option<IoPort>,
}

/// Depth at which the holder's CNode resolves a slot number (a component's
/// CNode capability carries the guard that makes this work).
const DEPTH: u8 = 64;

impl Sel4Kernel {
    /// The root task's own CNode, ASID pool, IRQ control and all-ports capability.
    pub fn root() -> Self {
        Sel4Kernel {
            cnode: init::CNODE,
            asid_pool: init::ASID_POOL,
            irq_control: Some(init::IRQ_CONTROL),
            ports: Some(init::IO_PORT),
        }
    }

    /// A component's: its own CNode (a capability minted with the guard
    /// that resolves slot numbers at depth 64, as `kaal_rt`'s budget hands
    /// it out) and the ASID pool the root task made for it. Interrupt and
    /// I/O port operations fail with `IllegalOperation`.
    pub fn component(cnode: CNode, asid_pool: AsidPool) -> Self {
        Sel4Kernel {
            cnode,
            asid_pool,
            irq_control: None,
            ports: None,
        }
    }

    fn ports(&self) -> Result<IoPort, Error> {
        self.ports.ok_or(Error::IllegalOperation)
    }
}

impl Kernel for Sel4Kernel {
    fn retype(
        &mut self,
        untyped: CPtr,
        spec: ObjSpec,
        dest: CPtr,
        count: usize,
    ) -> Result<(), Error> {
        Untyped::from_cptr(untyped).retype(
            spec.kernel_type(),
            spec.retype_size(),
            self.cnode,
            dest,
            count as Word,
        )
    }

    fn delete(&mut self, slot: CPtr) -> Result<(), Error> {
        // SAFETY: the broker deletes only capabilities it created; memory
        // they back was handed out as addresses the holder gave back.
        unsafe { self.cnode.delete(slot, DEPTH) }
    }

    fn revoke(&mut self, slot: CPtr) -> Result<(), Error> {
        // SAFETY: as for `delete`, for everything derived from the slot.
        unsafe { self.cnode.revoke(slot, DEPTH) }
    }

    fn frame_paddr(&mut self, frame: CPtr) -> Result<Word, Error> {
        Frame::from_cptr(frame).physical_address()
    }

    fn map_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        vaddr: Word,
        access: Access,
        cache: Cache,
    ) -> Result<(), Error> {
        let (rights, mode) = rights_mode(access, cache);
        Frame::from_cptr(frame).map(Pml4::from_cptr(vspace), vaddr, rights, mode)
    }

    fn remap_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        access: Access,
        cache: Cache,
    ) -> Result<(), Error> {
        let (rights, mode) = rights_mode(access, cache);
        Frame::from_cptr(frame).remap(Pml4::from_cptr(vspace), rights, mode)
    }

    fn map_table(
        &mut self,
        vspace: CPtr,
        ty: ObjectType,
        table: CPtr,
        vaddr: Word,
    ) -> Result<(), Error> {
        let vspace = Pml4::from_cptr(vspace);
        match ty {
            ObjectType::PageTable => PageTable::from_cptr(table).map(vspace, vaddr),
            ObjectType::PageDirectory => PageDirectory::from_cptr(table).map(vspace, vaddr),
            ObjectType::Pdpt => Pdpt::from_cptr(table).map(vspace, vaddr),
            _ => Err(Error::InvalidArgument),
        }
    }

    fn assign_asid(&mut self, vspace: CPtr) -> Result<(), Error> {
        self.asid_pool.assign(Pml4::from_cptr(vspace))
    }

    fn irq_ioapic(&mut self, dest: CPtr, line: IoApicLine, vector: u8) -> Result<(), Error> {
        self.irq_control
            .ok_or(Error::IllegalOperation)?
            .get_ioapic(self.cnode, dest, line, Word::from(vector))
            .map(|_| ())
    }

    fn irq_set_notification(&mut self, irq: CPtr, ntfn: CPtr) -> Result<(), Error> {
        IrqHandler::from_cptr(irq).set_notification(Notification::from_cptr(ntfn))
    }

    fn mint_badge(&mut self, dest: CPtr, src: CPtr, badge: Word) -> Result<(), Error> {
        self.cnode.mint(dest, src, DEPTH, Rights::all(), badge)
    }

    fn copy_cap(&mut self, dest: CPtr, src: CPtr) -> Result<(), Error> {
        self.cnode.copy(dest, src, DEPTH, Rights::all())
    }

    fn unmap_frame(&mut self, frame: CPtr) -> Result<(), Error> {
        // SAFETY: the broker unmaps only frames whose holder gave them back
        // (or handed them on to another address space), so nothing of this
        // program uses the mapping any more.
        unsafe { Frame::from_cptr(frame).unmap() }
    }

    fn mint_ioports(&mut self, dest: CPtr, first: u16, last: u16) -> Result<(), Error> {
        self.ports()?
            .mint_range(self.cnode, dest, first, last)
            .map(|_| ())
    }

    fn port_in32(&mut self, port: u16) -> Result<u32, Error> {
        self.ports()?.in32(port)
    }

    fn port_out32(&mut self, port: u16, value: u32) -> Result<(), Error> {
        self.ports()?.out32(port, value)
    }
}

/// The kernel's rights and cache mode for a mapping.
fn rights_mode(access: Access, cache: Cache) -> (Rights, CacheMode) {
    let mode = match cache {
        Cache::WriteBack => CacheMode::WriteBack,
        Cache::Uncached => CacheMode::Uncached,
    };
    let rights = match access {
        Access::ReadOnly => Rights::read_only(),
        Access::ReadWrite => Rights::read_write(),
    };
    (rights, mode)
}
