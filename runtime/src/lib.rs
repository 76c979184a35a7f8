//! The KaaL runtime: the `_start` entry with its stack, the panic handler,
//! and the exit protocol a test harness reads.
//!
//! A root task names its `main` with [`root_task!`]; `main` gets the parsed
//! BootInfo and returns a `Result`. An `Err` or a panic prints its message
//! and ends the system with the failure status.
#![no_std]

use core::fmt::Display;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::init;
use kaal_sel4::println;

/// Bytes of heap for the root task (the capability broker's bookkeeping).
pub const ROOT_HEAP_BYTES: usize = 8 * 1024 * 1024;

// A maintained allocator over a static arena; the root task is the only
// thread that allocates (helper threads do not).
#[global_allocator]
static HEAP: talc::TalcLock<spinning_top::RawSpinlock, talc::source::Claim> =
    talc::TalcLock::new({
        static mut ARENA: [u8; ROOT_HEAP_BYTES] = [0; ROOT_HEAP_BYTES];
        // SAFETY: the arena is used by nothing but this allocator.
        unsafe { talc::source::Claim::array(&raw mut ARENA) }
    });

/// Bytes of stack for the root task's initial thread.
pub const ROOT_STACK_BYTES: usize = 256 * 1024;

#[repr(C, align(16))]
struct Stack([u8; ROOT_STACK_BYTES]);

#[unsafe(no_mangle)]
static mut __KAAL_ROOT_STACK: Stack = Stack([0; ROOT_STACK_BYTES]);

// seL4 enters the root task with rdi = BootInfo and rsp = 0: set a stack
// first, then call the Rust entry named by `root_task!`.
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + {stack} + {size}]",
    "    xor rbp, rbp",
    "    call __kaal_root_main",
    "    ud2",
    stack = sym __KAAL_ROOT_STACK,
    size = const ROOT_STACK_BYTES,
);

/// How a KaaL system ends under a test harness.
///
/// QEMU's `isa-debug-exit` device at port 0xf4 ends QEMU with status `2v+1`
/// for a written value `v`; `cargo xtask test` reads 33 as success and 35 as
/// failure (keep `xtask` in step with these values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0x10,
    Failure = 0x11,
}

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends the system: under QEMU with the given status; on hardware, or if the
/// root task has no I/O port capability, the thread stops instead.
pub fn exit(code: Exit) -> ! {
    let _ = init::IO_PORT.out32(DEBUG_EXIT_PORT, code as u32);
    halt()
}

/// Stops the calling thread for good.
pub fn halt() -> ! {
    loop {
        let _ = init::TCB.suspend();
    }
}

/// Runs a root task's `main` and ends the system: with success when it
/// returns `Ok`, with failure on `Err` or a panic.
///
/// # Safety
/// `bootinfo` must be the BootInfo address seL4 passed to the root task.
pub unsafe fn start_root<E: Display>(
    bootinfo: *const u8,
    main: fn(&BootInfo) -> Result<(), E>,
) -> ! {
    // SAFETY: the caller's contract.
    let bi = match unsafe { BootInfo::from_ptr(bootinfo) } {
        Ok(bi) => bi,
        Err(e) => {
            println!("KaaL: unusable BootInfo: {e}");
            exit(Exit::Failure)
        }
    };
    match main(&bi) {
        Ok(()) => exit(Exit::Success),
        Err(e) => {
            println!("KaaL: root task failed: {e}");
            exit(Exit::Failure)
        }
    }
}

/// Declares the root task's `main: fn(&BootInfo) -> Result<(), E>`.
#[macro_export]
macro_rules! root_task {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn __kaal_root_main(bootinfo: *const u8) -> ! {
            // SAFETY: `_start` passes on the BootInfo address seL4 gave it.
            unsafe { $crate::start_root(bootinfo, $main) }
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => println!(
            "KaaL: panicked at {}:{}: {}",
            l.file(),
            l.line(),
            info.message()
        ),
        None => println!("KaaL: panicked: {}", info.message()),
    }
    exit(Exit::Failure)
}

/// Reads the time-stamp counter (under `-icount` it counts virtual time
/// exactly; see the benchmark notes).
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads a counter and touches no memory.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}
