//! Typed capabilities. Each type wraps a capability pointer and offers the
//! invocations that object supports; kernel errors come back as [`Error`].

use crate::ipc::{Badge, MessageInfo};
use crate::sys;
use crate::{CPtr, Result, Word};

/// Anything that names a capability.
pub trait Cap: Copy {
    fn cptr(self) -> CPtr;
    fn from_cptr(cptr: CPtr) -> Self;
}

/// A kernel object type that untyped memory can be retyped into.
pub trait Object: Cap {
    /// The kernel's object-type number.
    const TYPE: Word;
    /// log2 of the object's size in bytes.
    const SIZE_BITS: u32;
}

macro_rules! cap_types {
    ($($(#[$doc:meta])* $name:ident $(= $ty:ident, $bits:expr)?;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(transparent)]
        pub struct $name(CPtr);

        impl Cap for $name {
            #[inline]
            fn cptr(self) -> CPtr { self.0 }
            #[inline]
            fn from_cptr(cptr: CPtr) -> Self { $name(cptr) }
        }

        $(impl Object for $name {
            const TYPE: Word = sys::$ty;
            const SIZE_BITS: u32 = $bits as u32;
        })?
    )*};
}

cap_types! {
    /// Untyped memory: the raw material of every other object.
    Untyped;
    /// A synchronous IPC endpoint.
    Endpoint = seL4_EndpointObject, sys::seL4_EndpointBits;
    /// An asynchronous notification word.
    Notification = seL4_NotificationObject, sys::seL4_NotificationBits;
    /// A thread control block.
    Tcb = seL4_TCBObject, sys::seL4_TCBBits;
    /// A CNode: a table of capability slots (its size is chosen at retype).
    CNode;
    /// A 4 KiB frame.
    Frame = seL4_X86_4K, sys::seL4_PageBits;
    /// A 2 MiB frame.
    LargeFrame = seL4_X86_LargePageObject, sys::seL4_LargePageBits;
    /// The top level of an x86_64 address space.
    Pml4 = seL4_X64_PML4Object, sys::seL4_PML4Bits;
    /// An x86_64 page-directory-pointer table.
    Pdpt = seL4_X86_PDPTObject, sys::seL4_PDPTBits;
    /// An x86_64 page directory.
    PageDirectory = seL4_X86_PageDirectoryObject, sys::seL4_PageDirBits;
    /// An x86_64 page table.
    PageTable = seL4_X86_PageTableObject, sys::seL4_PageTableBits;
    /// The authority to create IRQ handlers.
    IrqControl;
    /// The authority to handle one interrupt.
    IrqHandler;
    /// A range of x86 I/O ports.
    IoPort;
    /// The authority to create ASID pools.
    AsidControl;
    /// An ASID pool, which VSpaces join before use.
    AsidPool;
}

/// The root task's initial capabilities, at the slots BootInfo defines.
pub mod init {
    use super::*;
    pub const TCB: Tcb = Tcb(sys::seL4_CapInitThreadTCB);
    pub const CNODE: CNode = CNode(sys::seL4_CapInitThreadCNode);
    pub const VSPACE: Pml4 = Pml4(sys::seL4_CapInitThreadVSpace);
    pub const IRQ_CONTROL: IrqControl = IrqControl(sys::seL4_CapIRQControl);
    pub const ASID_CONTROL: AsidControl = AsidControl(sys::seL4_CapASIDControl);
    pub const ASID_POOL: AsidPool = AsidPool(sys::seL4_CapInitThreadASIDPool);
    /// All I/O ports (seL4 5.0).
    pub const IO_PORT: IoPort = IoPort(sys::seL4_CapIOPort);
    pub const IPC_BUFFER: Frame = Frame(sys::seL4_CapInitThreadIPCBuffer);
}

/// Access rights for a mapping or a copied capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights(sys::seL4_CapRights_t);

impl Rights {
    fn with(read: bool, write: bool, grant: bool) -> Self {
        let mut r = sys::seL4_CapRights_t::default();
        r.set_capAllowRead(Word::from(read));
        r.set_capAllowWrite(Word::from(write));
        r.set_capAllowGrant(Word::from(grant));
        Rights(r)
    }
    pub fn read_only() -> Self {
        Self::with(true, false, false)
    }
    /// Send-only: enough to signal a notification or call an endpoint, not
    /// to wait on either.
    pub fn write_only() -> Self {
        Self::with(false, true, false)
    }
    /// Call (write and grant the reply) but not receive: an endpoint
    /// client's rights. seL4 5.0 needs grant for a Call to get its reply.
    pub fn call_only() -> Self {
        Self::with(false, true, true)
    }
    pub fn read_write() -> Self {
        Self::with(true, true, false)
    }
    pub fn all() -> Self {
        Self::with(true, true, true)
    }
    pub fn raw(self) -> sys::seL4_CapRights_t {
        self.0
    }
}

/// Caching attributes of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    WriteBack,
    /// For device memory (MMIO) and DMA buffers.
    Uncached,
    WriteCombining,
}

impl CacheMode {
    fn raw(self) -> Word {
        match self {
            CacheMode::WriteBack => sys::seL4_X86_WriteBack,
            CacheMode::Uncached => sys::seL4_X86_CacheDisabled,
            CacheMode::WriteCombining => sys::seL4_X86_WriteCombining,
        }
    }
}

impl Untyped {
    /// Retypes `count` objects of `ty` (size `size_bits` where the type has a
    /// variable size) into consecutive slots from `slot` of the CNode `root`.
    pub fn retype(
        self,
        ty: Word,
        size_bits: Word,
        root: CNode,
        slot: Word,
        count: Word,
    ) -> Result<()> {
        // SAFETY: creating objects cannot change memory this program uses.
        unsafe { sys::seL4_Untyped_Retype(self.0, ty, size_bits, root.0, 0, 0, slot, count) }
    }

    /// Retypes one fixed-size object into `slot` of `root` and names it.
    pub fn retype_one<T: Object>(self, root: CNode, slot: Word) -> Result<T> {
        self.retype(T::TYPE, 0, root, slot, 1)?;
        Ok(T::from_cptr(slot))
    }
}

impl Endpoint {
    /// Sends the message in the IPC buffer and waits for the reply.
    #[inline]
    pub fn call(self, info: MessageInfo) -> MessageInfo {
        // SAFETY: IPC buffer invariant; IPC changes no memory but the buffer.
        MessageInfo(unsafe { sys::seL4_Call(self.0, info.0) })
    }
    /// Sends, blocking until a receiver takes the message.
    #[inline]
    pub fn send(self, info: MessageInfo) {
        // SAFETY: as for `call`.
        unsafe { sys::seL4_Send(self.0, info.0) }
    }
    /// Waits for a message; returns it with the sender's badge.
    #[inline]
    pub fn recv(self) -> (MessageInfo, Badge) {
        let mut badge = 0;
        // SAFETY: as for `call`.
        let info = unsafe { sys::seL4_Recv(self.0, &mut badge) };
        (MessageInfo(info), badge)
    }
    /// Replies to the last caller and waits for the next message.
    #[inline]
    pub fn reply_recv(self, reply: MessageInfo) -> (MessageInfo, Badge) {
        let mut badge = 0;
        // SAFETY: as for `call`.
        let info = unsafe { sys::seL4_ReplyRecv(self.0, reply.0, &mut badge) };
        (MessageInfo(info), badge)
    }
}

/// The first four message registers, passed in CPU registers.
pub type RegisterMrs = [Word; 4];

impl Endpoint {
    /// Call with the message in `mrs` (at most four registers; the IPC
    /// buffer is not used for them); the reply's registers come back in `mrs`.
    #[inline]
    pub fn call_regs(self, info: MessageInfo, mrs: &mut RegisterMrs) -> MessageInfo {
        let [a, b, c, d] = mrs;
        // SAFETY: IPC buffer invariant; IPC changes no memory but the buffer.
        MessageInfo(unsafe { sys::seL4_CallWithMRs(self.0, info.0, a, b, c, d) })
    }
    /// Sends (blocking) with the first four words from `mrs`, the rest
    /// already in the IPC buffer. On a saved reply capability
    /// ([`CNode::save_caller`]) this is the reply, and consumes the
    /// capability.
    #[inline]
    pub fn send_regs(self, info: MessageInfo, mrs: &RegisterMrs) {
        for (i, &w) in mrs.iter().enumerate() {
            crate::ipc::set_mr(i, w);
        }
        // SAFETY: as for `call_regs`; `seL4_Send` loads MR0..3 from the
        // buffer, where they were just written.
        unsafe { sys::seL4_Send(self.0, info.0) }
    }
    /// Waits for a message whose first four registers arrive in `mrs`.
    #[inline]
    pub fn recv_regs(self, mrs: &mut RegisterMrs) -> (MessageInfo, Badge) {
        let mut badge = 0;
        // SAFETY: as for `call_regs`.
        let info = unsafe { sys::seL4_RecvWithMRs(self.0, &mut badge, mrs) };
        (MessageInfo(info), badge)
    }
    /// Replies with `mrs` and waits for the next message, received into `mrs`.
    #[inline]
    pub fn reply_recv_regs(
        self,
        reply: MessageInfo,
        mrs: &mut RegisterMrs,
    ) -> (MessageInfo, Badge) {
        let mut badge = 0;
        // SAFETY: as for `call_regs`.
        let info = unsafe { sys::seL4_ReplyRecvWithMRs(self.0, reply.0, &mut badge, mrs) };
        (MessageInfo(info), badge)
    }
}

impl Notification {
    /// Sets the badge bits of this capability in the notification word.
    #[inline]
    pub fn signal(self) {
        // SAFETY: a signal changes no memory.
        unsafe { sys::seL4_Signal(self.0) }
    }
    /// Waits until signalled; returns and clears the accumulated bits.
    #[inline]
    pub fn wait(self) -> Badge {
        let mut badge = 0;
        // SAFETY: as for `signal`.
        unsafe { sys::seL4_Wait(self.0, &mut badge) };
        badge
    }
    /// Returns the accumulated bits if signalled, without blocking. A signal
    /// through an unbadged capability carries no bits and cannot be told from
    /// no signal here: signal through badged capabilities.
    #[inline]
    pub fn poll(self) -> Option<Badge> {
        let mut badge = 0;
        // SAFETY: as for `signal`.
        unsafe { sys::seL4_NBRecv(self.0, &mut badge) };
        (badge != 0).then_some(badge)
    }
}

impl CNode {
    /// Deletes the capability in `slot` (a slot of this CNode at `depth` bits).
    ///
    /// # Safety
    /// The capability must not back memory this program still uses (a frame
    /// mapped into its own address space, say).
    pub unsafe fn delete(self, slot: Word, depth: u8) -> Result<()> {
        // SAFETY: the caller's contract.
        unsafe { sys::seL4_CNode_Delete(self.0, slot, depth) }
    }
    /// Deletes every capability derived from the one in `slot`.
    ///
    /// # Safety
    /// As for [`CNode::delete`], for every derived capability.
    pub unsafe fn revoke(self, slot: Word, depth: u8) -> Result<()> {
        // SAFETY: the caller's contract.
        unsafe { sys::seL4_CNode_Revoke(self.0, slot, depth) }
    }
    /// Moves the reply capability of the thread that last called this one
    /// into the empty slot `index` (of this CNode at `depth` bits), so the
    /// call can be answered later by a send on that slot
    /// ([`Endpoint::send_regs`] on it), after other messages were received.
    pub fn save_caller(self, index: Word, depth: u8) -> Result<()> {
        // SAFETY: moving a capability changes no memory.
        unsafe { sys::seL4_CNode_SaveCaller(self.0, index, depth) }
    }
    /// Copies the capability in `src` to the empty slot `dest` with `rights`.
    pub fn copy(self, dest: Word, src: Word, depth: u8, rights: Rights) -> Result<()> {
        self.copy_from(dest, depth, self, src, depth, rights)
    }
    /// Copies `src` to `dest` with a badge.
    pub fn mint(
        self,
        dest: Word,
        src: Word,
        depth: u8,
        rights: Rights,
        badge: Badge,
    ) -> Result<()> {
        self.mint_from(dest, depth, self, src, depth, rights, badge)
    }
}

impl CNode {
    /// Mints the capability at `src` of `src_root` (`src_depth` bits) into
    /// `dest` of this CNode (`dest_depth` bits), with `rights` and `badge`.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_from(
        self,
        dest: Word,
        dest_depth: u8,
        src_root: CNode,
        src: Word,
        src_depth: u8,
        rights: Rights,
        badge: Badge,
    ) -> Result<()> {
        let data = sys::seL4_CapData_t::Badge_new(badge);
        // SAFETY: copying a capability changes no memory.
        unsafe {
            sys::seL4_CNode_Mint(
                self.0, dest, dest_depth, src_root.0, src, src_depth, rights.0, data,
            )
        }
    }
    /// Copies the CNode capability at `src` of `src_root` into `dest` of
    /// this CNode with a guard that makes it resolve a whole 64-bit CPtr at
    /// depth 64 (`radix_bits` being the CNode's size), as a thread's CSpace
    /// root does ([`Tcb::configure_in`]).
    pub fn mint_guarded_from(
        self,
        dest: Word,
        dest_depth: u8,
        src_root: CNode,
        src: Word,
        src_depth: u8,
        radix_bits: u8,
    ) -> Result<()> {
        let guard_bits = Word::from(64u8.saturating_sub(radix_bits));
        let data = sys::seL4_CapData_t::Guard_new(0, guard_bits);
        // SAFETY: copying a capability changes no memory.
        unsafe {
            sys::seL4_CNode_Mint(
                self.0,
                dest,
                dest_depth,
                src_root.0,
                src,
                src_depth,
                Rights::all().0,
                data,
            )
        }
    }
    /// Copies the capability at `src` of `src_root` into `dest` of this CNode.
    pub fn copy_from(
        self,
        dest: Word,
        dest_depth: u8,
        src_root: CNode,
        src: Word,
        src_depth: u8,
        rights: Rights,
    ) -> Result<()> {
        // SAFETY: copying a capability changes no memory.
        unsafe {
            sys::seL4_CNode_Copy(
                self.0, dest, dest_depth, src_root.0, src, src_depth, rights.0,
            )
        }
    }
}

/// A thread's own spaces: a one-level CSpace of 2^`radix_bits` slots (its
/// guard makes every 64-bit CPtr resolve) and an address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spaces {
    pub cspace: CNode,
    pub radix_bits: u8,
    pub vspace: Pml4,
}

/// Registers of a thread, as `TCB_ReadRegisters`/`WriteRegisters` see them.
pub type UserContext = sys::seL4_UserContext;

impl Tcb {
    /// Sets the thread's CSpace, VSpace, IPC buffer and fault endpoint.
    pub fn configure(
        self,
        fault_ep: CPtr,
        cspace: CNode,
        vspace: Pml4,
        ipc_buffer_addr: Word,
        ipc_buffer: Frame,
    ) -> Result<()> {
        let spaces = (cspace, sys::seL4_CapData_t::default(), vspace);
        let prio = sys::seL4_PrioProps_t::default();
        self.configure_raw(fault_ep, prio, spaces, ipc_buffer_addr, ipc_buffer)
    }
    /// Makes the thread a component's: its own `spaces`, `fault_ep` (a CPtr
    /// in that CSpace), and `priority`, which is also the highest it may give
    /// any thread (its MCP).
    pub fn configure_in(
        self,
        fault_ep: CPtr,
        priority: u8,
        spaces: Spaces,
        ipc_buffer_addr: Word,
        ipc_buffer: Frame,
    ) -> Result<()> {
        let prio = sys::seL4_PrioProps_t::new(Word::from(priority), Word::from(priority));
        let guard_bits = Word::from(64u8.saturating_sub(spaces.radix_bits));
        let guard = sys::seL4_CapData_t::Guard_new(0, guard_bits);
        let spaces = (spaces.cspace, guard, spaces.vspace);
        self.configure_raw(fault_ep, prio, spaces, ipc_buffer_addr, ipc_buffer)
    }
    /// Makes the thread one that never invokes seL4 itself (a Linux
    /// process's thread, say): its own `spaces`, `fault_ep` (a CPtr in that
    /// CSpace), `priority` (at most the caller's own), no IPC buffer (the
    /// kernel writes its fault messages from its registers) and an MCP of 0,
    /// so it can raise no thread's priority.
    pub fn configure_thread(self, fault_ep: CPtr, priority: u8, spaces: Spaces) -> Result<()> {
        let prio = sys::seL4_PrioProps_t::new(0, Word::from(priority));
        let guard_bits = Word::from(64u8.saturating_sub(spaces.radix_bits));
        let guard = sys::seL4_CapData_t::Guard_new(0, guard_bits);
        let spaces = (spaces.cspace, guard, spaces.vspace);
        self.configure_raw(fault_ep, prio, spaces, 0, Frame(0))
    }
    /// `TCB_Configure` with a CSpace (and its guard data) and a VSpace.
    fn configure_raw(
        self,
        fault_ep: CPtr,
        prio: sys::seL4_PrioProps_t,
        (cspace, cspace_data, vspace): (CNode, sys::seL4_CapData_t, Pml4),
        ipc_buffer_addr: Word,
        ipc_buffer: Frame,
    ) -> Result<()> {
        // SAFETY: configuring a thread that is not running changes no memory
        // of this program (the spaces are given, not changed).
        unsafe {
            sys::seL4_TCB_Configure(
                self.0,
                fault_ep,
                prio,
                cspace.0,
                cspace_data,
                vspace.0,
                sys::seL4_CapData_t::default(),
                ipc_buffer_addr,
                ipc_buffer.0,
            )
        }
    }
    /// Sets the thread's priority (at most the caller's MCP).
    pub fn set_priority(self, priority: u8) -> Result<()> {
        // SAFETY: changes no memory.
        unsafe { sys::seL4_TCB_SetPriority(self.0, priority) }
    }
    /// Writes the thread's registers and optionally resumes it.
    ///
    /// # Safety
    /// The thread will run the code at `regs.rip` with stack `regs.rsp`; if it
    /// shares this address space, it must not break this program's memory.
    pub unsafe fn write_registers(self, resume: bool, regs: &UserContext) -> Result<()> {
        let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
        // SAFETY: the caller's contract.
        unsafe { sys::seL4_TCB_WriteRegisters(self.0, resume, 0, count, regs) }
    }
    /// Reads the thread's registers (suspending it first if `suspend`).
    pub fn read_registers(self, suspend: bool) -> Result<UserContext> {
        let mut regs = UserContext::default();
        let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
        // SAFETY: reading registers changes no memory of ours but `regs`.
        unsafe { sys::seL4_TCB_ReadRegisters(self.0, suspend, 0, count, &mut regs)? };
        Ok(regs)
    }
    pub fn resume(self) -> Result<()> {
        // SAFETY: resuming runs code set up by `write_registers`, whose
        // contract covered it.
        unsafe { sys::seL4_TCB_Resume(self.0) }
    }
    pub fn suspend(self) -> Result<()> {
        // SAFETY: stopping a thread changes no memory.
        unsafe { sys::seL4_TCB_Suspend(self.0) }
    }
    /// Lets the thread receive `ntfn`'s signals while waiting on an endpoint.
    pub fn bind_notification(self, ntfn: Notification) -> Result<()> {
        // SAFETY: changes no memory.
        unsafe { sys::seL4_TCB_BindNotification(self.0, ntfn.0) }
    }
    /// Undoes `bind_notification`.
    pub fn unbind_notification(self) -> Result<()> {
        // SAFETY: changes no memory.
        unsafe { sys::seL4_TCB_UnbindNotification(self.0) }
    }
}

// `Frame::remap` to fewer rights relies on the old TLB entry dying with
// the next switch into the address space: one core, so no other core
// runs it meanwhile (and no PCIDs, which `kernel/pc99.h` leaves out).
const _: () = assert!(
    sys::config::CONFIG_MAX_NUM_NODES == 1,
    "Frame::remap's callers assume a single-core kernel"
);

impl Frame {
    /// Maps the frame at `vaddr` in `vspace`. The kernel refuses to map over
    /// an existing mapping, so this cannot replace memory in use.
    pub fn map(self, vspace: Pml4, vaddr: Word, rights: Rights, cache: CacheMode) -> Result<()> {
        // SAFETY: see above; a new mapping adds memory, it removes none.
        unsafe { sys::seL4_X86_Page_Map(self.0, vspace.0, vaddr, rights.0, cache.raw()) }
    }
    /// Changes the rights of the frame's mapping in `vspace` (where it must
    /// be mapped already), within the capability's own rights. The kernel
    /// invalidates only the paging-structure cache, not the page's TLB
    /// entry: on a single core without PCIDs that entry cannot outlive
    /// the next switch into `vspace`, but a thread running in `vspace`
    /// now may keep its old rights until then.
    pub fn remap(self, vspace: Pml4, rights: Rights, cache: CacheMode) -> Result<()> {
        // SAFETY: the mapping keeps its frame; only its rights change.
        unsafe { sys::seL4_X86_Page_Remap(self.0, vspace.0, rights.0, cache.raw()) }
    }
    /// Unmaps the frame.
    ///
    /// # Safety
    /// Nothing may use the memory the mapping provided.
    pub unsafe fn unmap(self) -> Result<()> {
        // SAFETY: the caller's contract.
        unsafe { sys::seL4_X86_Page_Unmap(self.0) }
    }
    /// The physical address of the frame, as the kernel reports it.
    pub fn physical_address(self) -> Result<Word> {
        // SAFETY: a query changes no memory.
        Ok(unsafe { sys::seL4_X86_Page_GetAddress(self.0)? }.paddr)
    }
}

impl PageTable {
    /// Maps the page table so it covers `vaddr` in `vspace`.
    pub fn map(self, vspace: Pml4, vaddr: Word) -> Result<()> {
        // SAFETY: a new paging structure removes no mapping.
        unsafe {
            sys::seL4_X86_PageTable_Map(self.0, vspace.0, vaddr, sys::seL4_X86_Default_VMAttributes)
        }
    }
}

impl PageDirectory {
    /// Maps the page directory so it covers `vaddr` in `vspace`.
    pub fn map(self, vspace: Pml4, vaddr: Word) -> Result<()> {
        // SAFETY: as for `PageTable::map`.
        unsafe {
            sys::seL4_X86_PageDirectory_Map(
                self.0,
                vspace.0,
                vaddr,
                sys::seL4_X86_Default_VMAttributes,
            )
        }
    }
}

impl Pdpt {
    /// Maps the PDPT so it covers `vaddr` in `vspace`.
    pub fn map(self, vspace: Pml4, vaddr: Word) -> Result<()> {
        // SAFETY: as for `PageTable::map`.
        unsafe {
            sys::seL4_X86_PDPT_Map(self.0, vspace.0, vaddr, sys::seL4_X86_Default_VMAttributes)
        }
    }
}

impl IoPort {
    pub fn in8(self, port: u16) -> Result<u8> {
        // SAFETY: port I/O through the kernel touches no memory.
        Ok(unsafe { sys::seL4_X86_IOPort_In8(self.0, port)? }.result)
    }
    pub fn in16(self, port: u16) -> Result<u16> {
        // SAFETY: as for `in8`.
        Ok(unsafe { sys::seL4_X86_IOPort_In16(self.0, port)? }.result)
    }
    pub fn in32(self, port: u16) -> Result<u32> {
        // SAFETY: as for `in8`.
        Ok(unsafe { sys::seL4_X86_IOPort_In32(self.0, port)? }.result)
    }
    pub fn out8(self, port: u16, value: u8) -> Result<()> {
        // SAFETY: as for `in8` (KaaL gives no component a DMA-capable port).
        unsafe { sys::seL4_X86_IOPort_Out8(self.0, port as Word, value as Word) }
    }
    pub fn out16(self, port: u16, value: u16) -> Result<()> {
        // SAFETY: as for `out8`.
        unsafe { sys::seL4_X86_IOPort_Out16(self.0, port as Word, value as Word) }
    }
    pub fn out32(self, port: u16, value: u32) -> Result<()> {
        // SAFETY: as for `out8`.
        unsafe { sys::seL4_X86_IOPort_Out32(self.0, port as Word, value as Word) }
    }
}

/// An interrupt line of the (first) IOAPIC and how it signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IoApicLine {
    pub pin: u8,
    /// ISA interrupts are edge triggered; PCI INTx lines are level triggered.
    pub level_triggered: bool,
    /// ISA interrupts are active high; PCI INTx lines are active low.
    pub active_low: bool,
}

impl IrqControl {
    /// Creates, in `slot` of `root`, the handler for an IOAPIC line,
    /// delivered on `vector` (an seL4 IRQ number).
    pub fn get_ioapic(
        self,
        root: CNode,
        slot: Word,
        line: IoApicLine,
        vector: Word,
    ) -> Result<IrqHandler> {
        // SAFETY: creating a capability changes no memory.
        unsafe {
            sys::seL4_IRQControl_GetIOAPIC(
                self.0,
                root.0,
                slot,
                64,
                0,
                Word::from(line.pin),
                Word::from(line.level_triggered),
                Word::from(line.active_low),
                vector,
            )?
        };
        Ok(IrqHandler(slot))
    }
}

impl IoPort {
    /// Copies this capability into `slot` of `root`, restricted to the ports
    /// `first..=last` (which must lie within this capability's range).
    pub fn mint_range(self, root: CNode, slot: Word, first: u16, last: u16) -> Result<IoPort> {
        let range = sys::io_port_capdata_t::new(Word::from(first), Word::from(last));
        let data = sys::seL4_CapData_t { words: range.words };
        // SAFETY: copying a capability changes no memory.
        unsafe {
            sys::seL4_CNode_Mint(root.0, slot, 64, root.0, self.0, 64, Rights::all().0, data)?
        };
        Ok(IoPort(slot))
    }
}

impl AsidControl {
    /// Turns `untyped` (exactly 4 KiB, without children) into a new ASID
    /// pool in the empty slot `slot` of `root` (at `depth` bits); seL4
    /// 5.0 on x86_64 has room for 8 pools, the root task's among them.
    pub fn make_pool(
        self,
        untyped: Untyped,
        root: CNode,
        slot: Word,
        depth: u8,
    ) -> Result<AsidPool> {
        // SAFETY: creating an object in fresh memory changes no memory of
        // this program.
        unsafe { sys::seL4_X86_ASIDControl_MakePool(self.0, untyped.0, root.0, slot, depth)? };
        Ok(AsidPool(slot))
    }
}

impl AsidPool {
    /// Gives a new address space an ASID, which it needs before any mapping.
    pub fn assign(self, vspace: Pml4) -> Result<()> {
        // SAFETY: assigning an ASID changes no memory of this program.
        unsafe { sys::seL4_X86_ASIDPool_Assign(self.0, vspace.0) }
    }
}

impl IrqHandler {
    /// Acknowledges the interrupt so the kernel delivers the next one.
    pub fn ack(self) -> Result<()> {
        // SAFETY: changes no memory.
        unsafe { sys::seL4_IRQHandler_Ack(self.0) }
    }
    /// Delivers this interrupt as a signal on `ntfn`.
    pub fn set_notification(self, ntfn: Notification) -> Result<()> {
        // SAFETY: changes no memory.
        unsafe { sys::seL4_IRQHandler_SetNotification(self.0, ntfn.0) }
    }
}
