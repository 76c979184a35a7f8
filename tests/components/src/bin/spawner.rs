//! Builds processes the way a process server will: from its untyped budget
//! (the manifest's `untyped`), through a capability broker of its own, with
//! no help from the root task. Each process gets a fresh address space, a
//! 4-slot CNode holding only a badged endpoint (its fault endpoint), a TCB
//! with no IPC buffer and one page of code:
//!
//! ```text
//! mov eax, 39 ; mov rdx, -10 ; int 0xa0 ; mov rbx, fs:[0] ; ud2
//! ```
//!
//! `int 0xa0` arrives as an UnknownSyscall fault whatever rdx holds; the
//! reply sets rax and steps over the `int`; `ud2` then arrives as a
//! UserException, and rax shows the reply took effect, rbx that the FS
//! base is the `tls_base` written with the thread's registers (the code
//! page itself). Everything is freed
//! after each process; after the last the broker's free RAM and slots are
//! what they were after the first. Component `spawner` builds 100 processes,
//! any other name for this program one (the root task restarts that one
//! often, to show a restart gets a fresh budget and ASID pool).
#![no_std]
#![no_main]

extern crate alloc;

use kaal_broker::kernel::Access;
use kaal_broker::sel4::Sel4Kernel;
use kaal_broker::untyped::UntypedRoot;
use kaal_broker::{Broker, BrokerConfig, BrokerError};
use kaal_rt::{println, Env};
use kaal_sel4::cap::{CNode, Cap, Endpoint, Rights, Spaces, Tcb, UserContext};
use kaal_sel4::fault::Fault;
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::sys;

/// Where each process's code page is.
const CODE_AT: u64 = 0x40_0000;
const CODE: [u8; 25] = [
    0xb8, 39, 0, 0, 0, // mov eax, 39 (getpid)
    0x48, 0xc7, 0xc2, 0xf6, 0xff, 0xff, 0xff, // mov rdx, -10 (DebugHalt's number)
    0xcd, 0xa0, // int 0xa0
    0x64, 0x48, 0x8b, 0x1c, 0x25, 0, 0, 0, 0, // mov rbx, qword ptr fs:[0]
    0x0f, 0x0b, // ud2
];
const INT_AT: u64 = CODE_AT + 12;
const UD2_AT: u64 = CODE_AT + 23;
/// What `mov rbx, fs:[0]` reads with the FS base at the code page.
const CODE_WORD: u64 = u64::from_le_bytes([0xb8, 39, 0, 0, 0, 0x48, 0xc7, 0xc2]);
/// The value the "system call" returns.
const ANSWER: u64 = 0x5eed_0000_0027;
/// The fault endpoint's slot in a process's CNode.
const FAULT_SLOT: u64 = 1;
/// Below this component's (100 in its manifest): the process runs only
/// once this component waits for its fault.
const PROCESS_PRIORITY: u8 = 50;
/// Registers a fault reply writes back (UnknownSyscall: RAX .. FLAGS).
const REPLY_REGS: usize = sys::seL4_UnknownSyscall_Syscall as usize;
const INVALID_OPCODE: u64 = 6;

type Error = &'static str;

fn broker_err(e: BrokerError) -> Error {
    println!("spawner: broker: {e}");
    "the broker refused"
}

fn kernel_err(what: &'static str) -> impl Fn(kaal_sel4::Error) -> Error {
    move |e| {
        println!("spawner: {what}: {e:?}");
        what
    }
}

/// Builds, runs and frees process `n`.
fn process(b: &mut Broker<Sel4Kernel>, own: CNode, n: u64) -> Result<(), Error> {
    let badge = n + 1;
    let vspace = b.new_vspace().map_err(broker_err)?;
    let code = b.allocate_memory(4096).map_err(broker_err)?;
    // SAFETY: the broker just mapped this page at `code.vaddr` in this
    // address space for us alone.
    let page = unsafe { core::slice::from_raw_parts_mut(code.vaddr as *mut u8, 4096) };
    page.fill(0);
    if let Some(dst) = page.get_mut(..CODE.len()) {
        dst.copy_from_slice(&CODE);
    }
    let code = b
        .give_memory(code, vspace, CODE_AT, Access::ReadOnly)
        .map_err(broker_err)?;
    let ep: Endpoint = b.alloc().map_err(broker_err)?;
    let cnode = b.alloc_cnode(2).map_err(broker_err)?;
    // The process holds nothing but this: send and grant, as a fault
    // endpoint needs.
    cnode
        .mint_from(
            FAULT_SLOT,
            2,
            own,
            ep.cptr(),
            64,
            Rights::call_only(),
            badge,
        )
        .map_err(kernel_err("CNode_Mint fault endpoint"))?;
    let tcb: Tcb = b.alloc().map_err(broker_err)?;
    let spaces = Spaces {
        cspace: cnode,
        radix_bits: 2,
        vspace,
    };
    tcb.configure_thread(FAULT_SLOT, PROCESS_PRIORITY, spaces)
        .map_err(kernel_err("TCB_Configure"))?;
    let regs = UserContext {
        rip: CODE_AT,
        tls_base: CODE_AT,
        ..Default::default()
    };
    // SAFETY: the thread runs in its own address space, which holds only
    // its code page.
    unsafe { tcb.write_registers(true, &regs) }.map_err(kernel_err("TCB_WriteRegisters"))?;

    let (info, got) = ep.recv();
    let fault = Fault::decode(info.label(), info.length(), ipc::mr);
    let (rax, rdx) = (
        ipc::mr(sys::seL4_UnknownSyscall_RAX as usize),
        ipc::mr(sys::seL4_UnknownSyscall_RDX as usize),
    );
    if !matches!(fault, Some(Fault::UnknownSyscall { ip: INT_AT, .. }))
        || got != badge
        || rax != 39
        || rdx != -10i64 as u64
    {
        println!("spawner: process {n}: {fault:?}, badge {got}, rax {rax}, rdx {rdx:#x}");
        return Err("the first fault was not the int 0xa0 with its registers");
    }
    // The registers as they were, but for the result and the next
    // instruction (FaultIP points at the `int`).
    let ip = sys::seL4_UnknownSyscall_FaultIP as usize;
    ipc::set_mr(sys::seL4_UnknownSyscall_RAX as usize, ANSWER);
    ipc::set_mr(ip, INT_AT + 2);
    ipc::reply(MessageInfo::new(0, REPLY_REGS));

    let (info, got) = ep.recv();
    let fault = Fault::decode(info.label(), info.length(), ipc::mr);
    let after = tcb
        .read_registers(false)
        .map_err(kernel_err("TCB_ReadRegisters"))?;
    if !matches!(
        fault,
        Some(Fault::UserException {
            ip: UD2_AT,
            number: INVALID_OPCODE,
            ..
        })
    ) || got != badge
        || after.rax != ANSWER
        || after.rbx != CODE_WORD
    {
        println!(
            "spawner: process {n}: {fault:?}, badge {got}, rax {:#x}, rbx {:#x}",
            after.rax, after.rbx
        );
        return Err("the second fault was not the ud2 after the reply");
    }

    // The thread first: it must not run on while its spaces go.
    for c in [tcb.cptr(), cnode.cptr(), ep.cptr()] {
        b.free(c).map_err(broker_err)?;
    }
    b.free_memory(code).map_err(broker_err)?;
    b.free_vspace(vspace).map_err(broker_err)
}

fn main(env: &Env) -> Result<(), Error> {
    let budget = env.budget().map_err(|e| {
        println!("spawner: {e}");
        "no untyped budget"
    })?;
    let blocks = budget.untypeds().map(|u| UntypedRoot {
        cptr: u.cptr,
        paddr: u.paddr,
        bits: u.size_bits,
        device: false,
    });
    let cfg = BrokerConfig::for_component(budget.vspace, budget.free_slots.clone(), blocks);
    let kernel = Sel4Kernel::component(budget.cnode, budget.asid_pool);
    let mut b = Broker::new(kernel, cfg);
    let processes = if env.name() == "spawner" { 100 } else { 1 };

    process(&mut b, budget.cnode, 0)?;
    b.coalesce().map_err(broker_err)?;
    let (ram, slots) = (b.free_ram_bytes(), b.free_slots());
    for n in 1..processes {
        process(&mut b, budget.cnode, n)?;
    }
    b.coalesce().map_err(broker_err)?;
    let (ram2, slots2) = (b.free_ram_bytes(), b.free_slots());
    println!(
        "{}: {processes} process{} built from a budget of {} KiB (CSpace 2^{}), each faulted with its badge, was answered and freed; free RAM {ram} -> {ram2} bytes, free slots {slots} -> {slots2}",
        env.name(),
        if processes == 1 { "" } else { "es" },
        budget.bytes() >> 10,
        budget.cspace_bits,
    );
    if (ram, slots) != (ram2, slots2) {
        return Err("building and freeing processes leaked");
    }
    Ok(())
}

kaal_rt::component!(main);
