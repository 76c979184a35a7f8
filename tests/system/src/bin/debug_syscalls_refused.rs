//! System test `debug_syscalls_refused`: on KaaL's default kernel (built
//! without CONFIG_DEBUG_BUILD) the debug system calls -9 to -13 do not exist.
//! Component `debug_syscalls` (policy `restart`) makes one per incarnation;
//! each must come back as an unknown-syscall fault with its number, reported
//! by the supervisor, which restarts it; the sixth incarnation exits. Then
//! the echo client makes its calls to the echo service, which ran all along.
//!
//! This test fails on the debug kernel (`--kernel debug`): there -9
//! (DebugPutChar) returns instead of faulting, which the component reports
//! by failing; and -10 (DebugHalt) would stop the whole machine.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::fault::Fault;
use kaal_sel4::{println, Word};

/// The numbers the component tries, in order (see `misbehave.rs`).
const NUMBERS: [i64; 5] = [-9, -10, -11, -12, -13];

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("debug_syscalls"))?;
    let idx = |n: &str| sys.index(n).ok_or(RootError::Check("component missing"));
    let (echo, worker, caller) = (idx("echo")?, idx("worker")?, idx("debug_syscalls")?);
    for i in [echo, caller] {
        sys.spawn(&mut broker, i).map_err(|e| {
            println!("debug_syscalls_refused: `{}` not started: {e}", sys.name(i));
            RootError::Check("spawn")
        })?;
    }
    let mut faults = 0usize;
    let mut done = false;
    sys.supervise(&mut broker, |_, e| {
        let due = NUMBERS.get(faults).map(|&n| n as Word);
        match e {
            Event::Faulted {
                component,
                fault: Fault::UnknownSyscall { number, .. },
            } if component == caller && Some(number) == due => faults += 1,
            Event::Restarted {
                component,
                restarts,
            } if component == caller && restarts == faults as u64 => {}
            Event::Exited { component, code: 0 } if component == caller => {
                done = faults == NUMBERS.len();
                return Control::Finish;
            }
            e => {
                println!("debug_syscalls_refused: unexpected {e:?}");
                return Control::Finish;
            }
        }
        Control::Continue
    })?;
    if !done {
        println!(
            "debug_syscalls_refused: {faults} of {} refused",
            NUMBERS.len()
        );
        return Err(RootError::Check(
            "the debug system calls were not all refused",
        ));
    }
    println!("debug_syscalls_refused: {faults} debug system calls refused");
    sys.spawn(&mut broker, worker).map_err(|e| {
        println!("debug_syscalls_refused: `worker` not started: {e}");
        RootError::Check("spawn")
    })?;
    sys.expect_clean_exits(&mut broker, &["worker"])?;
    println!("debug_syscalls_refused: ok");
    Ok(())
}

kaal_rt::root_task!(main);
