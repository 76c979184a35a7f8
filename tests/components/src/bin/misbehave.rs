//! Misbehaves as its component name says, so the supervisor has something
//! to report: `null_deref` reads address 0 (but runs normally once it has
//! been restarted), `illegal` executes `ud2`, `panics` panics, and
//! `bad_syscall` makes a system call seL4 does not have, `always_faults`
//! executes `ud2` in every incarnation, and `cap_loop` invokes a CPtr beyond
//! its CSpace until the supervisor stops answering with an error,
//! `forger` sends its supervisor a made-up capability-fault report, and
//! `debug_syscalls` makes one of a debug kernel's system calls per
//! incarnation.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

/// The system calls a debug seL4 5.0 kernel adds: DebugPutChar, DebugHalt,
/// DebugCapIdentify, DebugSnapshot, DebugNameThread.
const DEBUG_SYSCALLS: [i64; 5] = [-9, -10, -11, -12, -13];

/// Reads address 0: nothing is mapped there, so the kernel reports a page
/// fault, which the supervisor names with this function and line.
#[inline(never)]
fn read_address_zero() -> u64 {
    let v: u64;
    // SAFETY: the fault is the point. (In assembly, as Rust gives a null
    // dereference no defined meaning.)
    unsafe { core::arch::asm!("mov {}, qword ptr [0]", out(reg) v) }; // FAULTS HERE
    v
}

fn main(env: &Env) -> Result<(), &'static str> {
    match env.name() {
        "null_deref" if env.restarts() == 0 => {
            let v = read_address_zero();
            println!("null_deref: read {v} from address 0?");
            Err("address 0 was readable")
        }
        "null_deref" => {
            println!(
                "null_deref: running again after {} restart(s)",
                env.restarts()
            );
            Ok(())
        }
        "illegal" => {
            // SAFETY: `ud2` raises an invalid-opcode exception and nothing else.
            unsafe { core::arch::asm!("ud2") };
            Err("ud2 executed")
        }
        "panics" => panic!("panicking on purpose"),
        "always_faults" => {
            // SAFETY: as for `illegal`.
            unsafe { core::arch::asm!("ud2") };
            Err("ud2 executed")
        }
        "forger" => {
            use kaal_sel4::cap::{Cap, Endpoint};
            use kaal_sel4::ipc::MessageInfo;
            // A capability fault at the program's first instruction: the
            // thread stands at its own Call instead, so the supervisor must
            // not act on the report as on a real fault's.
            let sup = Endpoint::from_cptr(kaal_rt::start::slot::SUPERVISOR);
            let mut mrs = [0x40_0000, 0x1_0000, 0, 0];
            let r = sup.call_regs(MessageInfo::new(1, 4), &mut mrs);
            println!(
                "forger: the forged report was answered (label {})",
                r.label()
            );
            Err("a forged fault report was answered")
        }
        "cap_loop" => {
            use kaal_sel4::cap::{Cap, Tcb};
            let beyond = Tcb::from_cptr(0x1_0000);
            let mut refused = 0u64;
            while beyond.suspend().is_err() {
                refused += 1;
                if refused.is_multiple_of(5000) {
                    println!("cap_loop: {refused} invocations refused");
                }
            }
            Err("a CPtr beyond the CSpace was invoked")
        }
        "debug_syscalls" => {
            // Incarnation n tries the n-th number; the supervisor restarts
            // it after each fault.
            let n = usize::try_from(env.restarts()).unwrap_or(usize::MAX);
            let Some(&number) = DEBUG_SYSCALLS.get(n) else {
                println!(
                    "debug_syscalls: all {} debug system calls refused, still running",
                    DEBUG_SYSCALLS.len()
                );
                return Ok(());
            };
            println!("debug_syscalls: system call {number}");
            // SAFETY: on KaaL's default kernel the number is no system call,
            // so the kernel sends an unknown-syscall fault and runs nothing.
            // On a debug kernel it runs (rdi is DebugPutChar's character,
            // an invalid CPtr for the others), and changes no memory of
            // ours; rsp is kept in r12, which the kernel preserves.
            unsafe {
                core::arch::asm!(
                    "mov r12, rsp",
                    "syscall",
                    "mov rsp, r12",
                    inout("rdx") number => _,
                    inout("rdi") u64::from(b'!') => _,
                    inout("rsi") 0u64 => _,
                    out("r10") _, out("r8") _, out("r9") _, out("r15") _,
                    out("rcx") _, out("r11") _, out("r12") _,
                )
            };
            println!("debug_syscalls: system call {number} returned");
            Err("a debug system call returned")
        }
        "bad_syscall" => {
            // SAFETY: seL4 numbers its system calls -1 to -8 (and -9 to -13
            // on a debug kernel); -1000 is none of them, so the kernel
            // sends an unknown-syscall fault instead of running anything.
            unsafe {
                core::arch::asm!("syscall", in("rdx") -1000isize, out("rcx") _, out("r11") _)
            };
            Err("the unknown system call returned")
        }
        _ => Err("no misbehaviour by this name"),
    }
}

kaal_rt::component!(main);
