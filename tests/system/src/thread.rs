//! Threads in the root task's own address space and CSpace, each with its
//! own stack and IPC buffer.

use kaal_root::{Context, RootBroker, RootError};
use kaal_sel4::cap::{init, Cap, Frame, Tcb, UserContext};
use kaal_sel4::{CPtr, Word};

/// Entry point of a thread: `(argument, own TCB)`.
pub type ThreadEntry = extern "C" fn(arg: Word, tcb: CPtr) -> !;

/// Stack pages per thread.
pub const STACK_PAGES: usize = 4;

/// Starts `entry(arg, tcb)` on a new thread at `priority`.
pub fn spawn(
    broker: &mut RootBroker,
    entry: ThreadEntry,
    arg: Word,
    priority: u8,
) -> Result<Tcb, RootError> {
    let tcb: Tcb = broker.alloc()?;
    let stack = broker.allocate_memory(STACK_PAGES as u64 * 4096)?;
    let ipc = broker.allocate_memory(4096)?;
    let ipc_frame = ipc
        .frames()
        .next()
        .map(Frame::from_cptr)
        .ok_or(RootError::Check("IPC buffer frame"))?;
    tcb.configure(0, init::CNODE, init::VSPACE, ipc.vaddr, ipc_frame)
        .context("TCB_Configure")?;
    tcb.set_priority(priority).context("TCB_SetPriority")?;
    let regs = UserContext {
        rip: entry as usize as Word,
        // As if `call` had pushed a return address: rsp + 8 is 16-aligned.
        rsp: stack.vaddr + stack.size - 8,
        rdi: arg,
        rsi: tcb.cptr(),
        ..UserContext::default()
    };
    // SAFETY: the thread runs `entry`, safe Rust, on a stack and IPC buffer
    // that nothing else uses.
    unsafe { tcb.write_registers(true, &regs) }.context("TCB_WriteRegisters")?;
    Ok(tcb)
}

/// Ends the calling thread (given its own TCB).
pub fn exit_thread(tcb: CPtr) -> ! {
    loop {
        let _ = Tcb::from_cptr(tcb).suspend();
    }
}
