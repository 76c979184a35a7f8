//! The KaaL runtime: the `_start` entry, stack and heap, the panic handler,
//! the exit protocol a test harness reads, and a component's capabilities by
//! name.
//!
//! A root task names its `main` with [`root_task!`]; `main` gets the parsed
//! BootInfo and returns a `Result`. An `Err` or a panic prints its message
//! and ends the system with the failure status.
//!
//! A component names its `main` with [`component!`]; `main` gets its [`Env`]
//! (the capabilities its manifest entry granted). When `main` returns, or the
//! component panics, the runtime tells the supervisor, which applies the
//! manifest's restart policy.
#![no_std]

use core::fmt::Display;
use core::sync::atomic::{AtomicBool, Ordering};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::init;

pub mod component;
pub mod console;
pub mod mmio;
pub mod shared;
pub mod start;
pub mod time;

#[doc(hidden)]
pub use spinning_top as __spinning_top;
#[doc(hidden)]
pub use talc as __talc;

pub use component::{Budget, CapError, Env, IrqGrant, RingRx, RingTx, Signal, UntypedGrant};
pub use shared::SharedRegion;

/// Bytes of heap for the root task (the capability broker's bookkeeping).
pub const ROOT_HEAP_BYTES: usize = 8 * 1024 * 1024;

/// Bytes of stack for the root task's initial thread.
pub const ROOT_STACK_BYTES: usize = 256 * 1024;

/// Whether this program is a component (set at entry; the panic handler
/// reports to the supervisor instead of ending the system).
static IS_COMPONENT: AtomicBool = AtomicBool::new(false);

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
    // The root task's console is COM1; nothing prints before this.
    kaal_sel4::console::enable();
    // SAFETY: the caller's contract.
    let bi = match unsafe { BootInfo::from_ptr(bootinfo) } {
        Ok(bi) => bi,
        Err(e) => {
            kaal_sel4::println!("KaaL: unusable BootInfo: {e}");
            exit(Exit::Failure)
        }
    };
    match main(&bi) {
        Ok(()) => exit(Exit::Success),
        Err(e) => {
            kaal_sel4::println!("KaaL: root task failed: {e}");
            exit(Exit::Failure)
        }
    }
}

/// Declares the root task's `main: fn(&BootInfo) -> Result<(), E>`, with the
/// root task's stack and heap (static: seL4 gives the root task nothing else).
#[macro_export]
macro_rules! root_task {
    ($main:path) => {
        #[global_allocator]
        static __KAAL_HEAP: $crate::__talc::TalcLock<
            $crate::__spinning_top::RawSpinlock,
            $crate::__talc::source::Claim,
        > = $crate::__talc::TalcLock::new({
            static mut ARENA: [u8; $crate::ROOT_HEAP_BYTES] = [0; $crate::ROOT_HEAP_BYTES];
            // SAFETY: the arena is used by nothing but this allocator.
            unsafe { $crate::__talc::source::Claim::array(&raw mut ARENA) }
        });

        #[repr(C, align(16))]
        struct __KaalStack([u8; $crate::ROOT_STACK_BYTES]);
        #[unsafe(no_mangle)]
        static mut __KAAL_ROOT_STACK: __KaalStack = __KaalStack([0; $crate::ROOT_STACK_BYTES]);

        // seL4 enters the root task with rdi = BootInfo and rsp = 0: set a
        // stack first.
        core::arch::global_asm!(
            ".section .text._start, \"ax\"",
            ".global _start",
            "_start:",
            "    lea rsp, [rip + {stack} + {size}]",
            "    xor rbp, rbp",
            "    call {entry}",
            "    ud2",
            stack = sym __KAAL_ROOT_STACK,
            size = const $crate::ROOT_STACK_BYTES,
            entry = sym __kaal_root_main,
        );

        extern "C" fn __kaal_root_main(bootinfo: *const u8) -> ! {
            // SAFETY: `_start` passes on the BootInfo address seL4 gave it.
            unsafe { $crate::start_root(bootinfo, $main) }
        }
    };
}

/// Declares a component's `main: fn(&Env) -> Result<(), E>`. The root task
/// starts it with its stack set and rdi = the start-info page; the heap is the
/// region the manifest sized.
#[macro_export]
macro_rules! component {
    ($main:path) => {
        #[global_allocator]
        static __KAAL_HEAP: $crate::__talc::TalcLock<
            $crate::__spinning_top::RawSpinlock,
            $crate::__talc::source::Manual,
        > = $crate::__talc::TalcLock::new($crate::__talc::source::Manual);

        core::arch::global_asm!(
            ".section .text._start, \"ax\"",
            ".global _start",
            "_start:",
            "    xor rbp, rbp",
            "    call {entry}",
            "    ud2",
            entry = sym __kaal_component_main,
        );

        extern "C" fn __kaal_component_main(info: *const $crate::start::StartInfo) -> ! {
            // SAFETY: the root task passes the start-info page in rdi and
            // maps nothing else at the heap region it lists.
            unsafe {
                $crate::start_component(info, $main, |base, size| {
                    // SAFETY: the caller passes memory used by nothing else.
                    unsafe { __KAAL_HEAP.lock().claim(base, size).is_some() }
                })
            }
        }
    };
}

/// Runs a component's `main` and reports how it ended to the supervisor.
///
/// # Safety
/// `info` must be the start-info page the root task mapped; `claim(base,
/// size)` must hand the heap region to the allocator.
pub unsafe fn start_component<E: Display>(
    info: *const start::StartInfo,
    main: fn(&Env) -> Result<(), E>,
    claim: impl FnOnce(*mut u8, usize) -> bool,
) -> ! {
    IS_COMPONENT.store(true, Ordering::Relaxed);
    // SAFETY: the caller's contract.
    let Some(env) = (unsafe { Env::from_ptr(info) }) else {
        crate::println!("KaaL: component started without a start-info page");
        component::report(kaal_protocols::supervisor::EXIT, 1)
    };
    // SAFETY: the `StartInfo` lists the heap region mapped for this program.
    let info = unsafe { &*info };
    if info.heap_size > 0 && !claim(info.heap_base as *mut u8, info.heap_size as usize) {
        crate::println!("{}: cannot claim its heap", env.name());
        component::report(kaal_protocols::supervisor::EXIT, 1)
    }
    match main(&env) {
        Ok(()) => component::report(kaal_protocols::supervisor::EXIT, 0),
        Err(e) => {
            crate::println!("{}: failed: {e}", env.name());
            component::report(kaal_protocols::supervisor::EXIT, 1)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // A component's console is its supervisor; the root task's COM1.
    let component = IS_COMPONENT.load(Ordering::Relaxed);
    let print: fn(core::fmt::Arguments<'_>) = if component {
        console::_print
    } else {
        kaal_sel4::console::_print
    };
    match info.location() {
        Some(l) => print(format_args!(
            "KaaL: panicked at {}:{}: {}\n",
            l.file(),
            l.line(),
            info.message()
        )),
        None => print(format_args!("KaaL: panicked: {}\n", info.message())),
    }
    if component {
        component::report(kaal_protocols::supervisor::PANIC, 0)
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
