//! Raw seL4 ABI for x86_64, generated at build time from the kernel tree KaaL
//! boots (syscall numbers, invocation labels and stubs, object types, errors,
//! bitfield types), plus the hand-written parts of the ABI: the `syscall`
//! instruction sequences, IPC-buffer access and the BootInfo layout.
//!
//! Names follow libsel4 so that the seL4 manual applies directly. Everything
//! here is `unsafe` to call; `kaal-sel4` is the safe layer on top.
#![no_std]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::too_many_arguments,
    clippy::identity_op
)]

use core::arch::asm;
use core::mem::offset_of;

pub type seL4_Word = u64;
pub type seL4_CPtr = seL4_Word;

include!(concat!(env!("OUT_DIR"), "/abi.rs"));

/// Extra capabilities one message can carry.
pub const seL4_MsgMaxExtraCaps: usize = (1 << seL4_MsgExtraCapBits) - 1;
const MSG_MAX: usize = seL4_MsgMaxLength as usize;

/// A thread's IPC buffer, as libsel4 lays it out.
#[repr(C)]
pub struct seL4_IPCBuffer {
    pub tag: seL4_MessageInfo_t,
    pub msg: [seL4_Word; MSG_MAX],
    pub userData: seL4_Word,
    pub caps_or_badges: [seL4_Word; seL4_MsgMaxExtraCaps],
    pub receiveCNode: seL4_CPtr,
    pub receiveIndex: seL4_CPtr,
    pub receiveDepth: seL4_Word,
}

/// A range of capability slots: `start` inclusive, `end` exclusive.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct seL4_SlotRegion {
    pub start: seL4_Word,
    pub end: seL4_Word,
}

/// One untyped capability handed to the root task.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct seL4_UntypedDesc {
    pub paddr: seL4_Word,
    pub padding1: u8,
    pub padding2: u8,
    pub sizeBits: u8,
    pub isDevice: u8,
}

/// Untyped descriptors BootInfo has room for.
pub const MAX_BOOTINFO_UNTYPEDS: usize = config::CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS as usize;

/// The BootInfo frame of seL4 5.0 (packed, as the kernel writes it).
/// Read fields by copy: they may be unaligned.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct seL4_BootInfo {
    pub extraLen: seL4_Word,
    pub nodeID: seL4_Word,
    pub numNodes: seL4_Word,
    pub numIOPTLevels: seL4_Word,
    pub ipcBuffer: seL4_Word,
    pub empty: seL4_SlotRegion,
    pub sharedFrames: seL4_SlotRegion,
    pub userImageFrames: seL4_SlotRegion,
    pub userImagePaging: seL4_SlotRegion,
    pub ioSpaceCaps: seL4_SlotRegion,
    pub extraBIPages: seL4_SlotRegion,
    pub initThreadCNodeSizeBits: u8,
    pub initThreadDomain: seL4_Word,
    pub archInfo: seL4_Word,
    pub untyped: seL4_SlotRegion,
    pub untypedList: [seL4_UntypedDesc; MAX_BOOTINFO_UNTYPEDS],
}

/// The one `syscall` sequence. The kernel reads and writes rdi, rsi and the
/// four register MRs (r10, r8, r9, r15), clobbers rcx and r11, and does not
/// preserve rsp, which is kept in r12 across the instruction.
///
/// # Safety
/// The calling thread's IPC buffer must be mapped (the kernel uses it for
/// long messages), and the syscall must not break memory this program uses.
#[inline(always)]
pub unsafe fn raw_syscall(
    sys: i64,
    rdi: &mut seL4_Word,
    rsi: &mut seL4_Word,
    mr: &mut [seL4_Word; 4],
) {
    let [m0, m1, m2, m3] = mr;
    // SAFETY: the register contract above is the kernel's; rsp is restored
    // from r12, which the kernel preserves.
    unsafe {
        asm!(
            "mov r12, rsp",
            "syscall",
            "mov rsp, r12",
            inout("rdx") sys => _,
            inout("rdi") *rdi,
            inout("rsi") *rsi,
            inout("r10") *m0,
            inout("r8") *m1,
            inout("r9") *m2,
            inout("r15") *m3,
            out("rcx") _,
            out("r11") _,
            out("r12") _,
        );
    }
}

/// Reads message register `i` from the IPC buffer (0 when out of range).
///
/// # Safety
/// The kernel must have set this thread's IPC buffer (it sets the gs base).
#[inline(always)]
pub unsafe fn seL4_GetMR(i: usize) -> seL4_Word {
    if i >= MSG_MAX {
        return 0;
    }
    let v: seL4_Word;
    // SAFETY: gs points at this thread's IPC buffer; i is in range.
    unsafe {
        asm!("mov {v}, qword ptr gs:[{i} * 8 + {off}]", v = out(reg) v, i = in(reg) i,
             off = const offset_of!(seL4_IPCBuffer, msg), options(nostack, readonly, preserves_flags));
    }
    v
}

/// Writes message register `i` of the IPC buffer (ignored when out of range).
///
/// # Safety
/// As for [`seL4_GetMR`].
#[inline(always)]
pub unsafe fn seL4_SetMR(i: usize, v: seL4_Word) {
    if i >= MSG_MAX {
        return;
    }
    // SAFETY: gs points at this thread's IPC buffer; i is in range.
    unsafe {
        asm!("mov qword ptr gs:[{i} * 8 + {off}], {v}", v = in(reg) v, i = in(reg) i,
             off = const offset_of!(seL4_IPCBuffer, msg), options(nostack, preserves_flags));
    }
}

/// Sets extra capability `i` of the next message (ignored when out of range).
///
/// # Safety
/// As for [`seL4_GetMR`].
#[inline(always)]
pub unsafe fn seL4_SetCap(i: usize, cptr: seL4_CPtr) {
    if i >= seL4_MsgMaxExtraCaps {
        return;
    }
    // SAFETY: gs points at this thread's IPC buffer; i is in range.
    unsafe {
        asm!("mov qword ptr gs:[{i} * 8 + {off}], {v}", v = in(reg) cptr, i = in(reg) i,
             off = const offset_of!(seL4_IPCBuffer, caps_or_badges), options(nostack, preserves_flags));
    }
}

/// Reads the badge of received capability `i` (0 when out of range).
///
/// # Safety
/// As for [`seL4_GetMR`].
#[inline(always)]
pub unsafe fn seL4_GetBadge(i: usize) -> seL4_Word {
    if i >= seL4_MsgMaxExtraCaps {
        return 0;
    }
    let v: seL4_Word;
    // SAFETY: gs points at this thread's IPC buffer; i is in range.
    unsafe {
        asm!("mov {v}, qword ptr gs:[{i} * 8 + {off}]", v = out(reg) v, i = in(reg) i,
             off = const offset_of!(seL4_IPCBuffer, caps_or_badges), options(nostack, readonly, preserves_flags));
    }
    v
}

/// Where a received capability is stored: slot `index` at `depth` in `cnode`.
///
/// # Safety
/// As for [`seL4_GetMR`].
#[inline(always)]
pub unsafe fn seL4_SetCapReceivePath(cnode: seL4_CPtr, index: seL4_CPtr, depth: seL4_Word) {
    // SAFETY: gs points at this thread's IPC buffer.
    unsafe {
        asm!(
            "mov qword ptr gs:[{o1}], {a}",
            "mov qword ptr gs:[{o2}], {b}",
            "mov qword ptr gs:[{o3}], {c}",
            a = in(reg) cnode, b = in(reg) index, c = in(reg) depth,
            o1 = const offset_of!(seL4_IPCBuffer, receiveCNode),
            o2 = const offset_of!(seL4_IPCBuffer, receiveIndex),
            o3 = const offset_of!(seL4_IPCBuffer, receiveDepth),
            options(nostack, preserves_flags)
        );
    }
}

fn load_mrs() -> [seL4_Word; 4] {
    // SAFETY: every caller is itself an unsafe fn whose contract includes a
    // valid IPC buffer.
    unsafe { [seL4_GetMR(0), seL4_GetMR(1), seL4_GetMR(2), seL4_GetMR(3)] }
}

fn store_mrs(mr: &[seL4_Word; 4]) {
    for (i, v) in mr.iter().enumerate() {
        // SAFETY: as in `load_mrs`.
        unsafe { seL4_SetMR(i, *v) };
    }
}

/// Call with the first four MRs passed in registers (as the stubs use it).
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_CallWithMRs(
    dest: seL4_CPtr,
    info: seL4_MessageInfo_t,
    mr0: &mut seL4_Word,
    mr1: &mut seL4_Word,
    mr2: &mut seL4_Word,
    mr3: &mut seL4_Word,
) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (dest, info.words[0]);
    let mut mr = [*mr0, *mr1, *mr2, *mr3];
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysCall, &mut rdi, &mut rsi, &mut mr) };
    [*mr0, *mr1, *mr2, *mr3] = mr;
    seL4_MessageInfo_t { words: [rsi] }
}

/// Call: send the message in the IPC buffer and wait for the reply.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Call(dest: seL4_CPtr, info: seL4_MessageInfo_t) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (dest, info.words[0]);
    let mut mr = load_mrs();
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysCall, &mut rdi, &mut rsi, &mut mr) };
    store_mrs(&mr);
    seL4_MessageInfo_t { words: [rsi] }
}

/// Send (blocking) the message in the IPC buffer.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Send(dest: seL4_CPtr, info: seL4_MessageInfo_t) {
    let (mut rdi, mut rsi) = (dest, info.words[0]);
    let mut mr = load_mrs();
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysSend, &mut rdi, &mut rsi, &mut mr) };
}

/// Send without blocking; dropped if nobody waits.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_NBSend(dest: seL4_CPtr, info: seL4_MessageInfo_t) {
    let (mut rdi, mut rsi) = (dest, info.words[0]);
    let mut mr = load_mrs();
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysNBSend, &mut rdi, &mut rsi, &mut mr) };
}

/// Reply to the last caller with the message in the IPC buffer.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Reply(info: seL4_MessageInfo_t) {
    let (mut rdi, mut rsi) = (0, info.words[0]);
    let mut mr = load_mrs();
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysReply, &mut rdi, &mut rsi, &mut mr) };
}

fn receive(sys: i64, src: seL4_CPtr, sender: &mut seL4_Word) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (src, 0);
    let mut mr = [0; 4];
    // SAFETY: the callers are unsafe fns with the raw_syscall contract.
    unsafe { raw_syscall(sys, &mut rdi, &mut rsi, &mut mr) };
    store_mrs(&mr);
    *sender = rdi;
    seL4_MessageInfo_t { words: [rsi] }
}

/// Receive (blocking) on an endpoint or notification; `sender` gets the badge.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Recv(src: seL4_CPtr, sender: &mut seL4_Word) -> seL4_MessageInfo_t {
    receive(seL4_SysRecv, src, sender)
}

/// Receive without blocking.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_NBRecv(src: seL4_CPtr, sender: &mut seL4_Word) -> seL4_MessageInfo_t {
    receive(seL4_SysNBRecv, src, sender)
}

/// Reply to the last caller, then wait on `src`.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_ReplyRecv(
    src: seL4_CPtr,
    info: seL4_MessageInfo_t,
    sender: &mut seL4_Word,
) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (src, info.words[0]);
    let mut mr = load_mrs();
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysReplyRecv, &mut rdi, &mut rsi, &mut mr) };
    store_mrs(&mr);
    *sender = rdi;
    seL4_MessageInfo_t { words: [rsi] }
}

/// ReplyRecv with the first four message registers in CPU registers only
/// (the IPC buffer is not touched for them).
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_ReplyRecvWithMRs(
    src: seL4_CPtr,
    info: seL4_MessageInfo_t,
    sender: &mut seL4_Word,
    mrs: &mut [seL4_Word; 4],
) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (src, info.words[0]);
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysReplyRecv, &mut rdi, &mut rsi, mrs) };
    *sender = rdi;
    seL4_MessageInfo_t { words: [rsi] }
}

/// Recv with the first four message registers delivered in CPU registers
/// only.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_RecvWithMRs(
    src: seL4_CPtr,
    sender: &mut seL4_Word,
    mrs: &mut [seL4_Word; 4],
) -> seL4_MessageInfo_t {
    let (mut rdi, mut rsi) = (src, 0);
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysRecv, &mut rdi, &mut rsi, mrs) };
    *sender = rdi;
    seL4_MessageInfo_t { words: [rsi] }
}

/// Signal a notification.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Signal(dest: seL4_CPtr) {
    let (mut rdi, mut rsi) = (dest, seL4_MessageInfo_t::new(0, 0, 0, 1).words[0]);
    let mut mr = [0; 4];
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysSend, &mut rdi, &mut rsi, &mut mr) };
}

/// Wait on a notification; `sender` gets the accumulated badge bits.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Wait(src: seL4_CPtr, sender: &mut seL4_Word) {
    receive(seL4_SysRecv, src, sender);
}

/// Give up the rest of this time slice.
///
/// # Safety
/// As for [`raw_syscall`].
#[inline(always)]
pub unsafe fn seL4_Yield() {
    let (mut rdi, mut rsi, mut mr) = (0, 0, [0; 4]);
    // SAFETY: forwarded contract.
    unsafe { raw_syscall(seL4_SysYield, &mut rdi, &mut rsi, &mut mr) };
}

/// Whether this kernel has the debug syscalls (`CONFIG_DEBUG_BUILD`). KaaL
/// makes none of them (its default kernel has none): no wrappers here.
pub const HAS_DEBUG_SYSCALLS: bool = DEBUG_PUT_CHAR.is_some();

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Unknown(code) => write!(f, "unknown seL4 error {code}"),
            e => f.write_str(e.name()),
        }
    }
}
