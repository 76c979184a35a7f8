//! System test image of `gdb_component_breakpoint` and
//! `gdb_root_breakpoint`: starts two instances of one program (system
//! `gdb_two`) and waits for both to exit cleanly, while gdb, attached to
//! QEMU, breaks in one of them or in the root task's spawn path.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("gdb_two"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["alpha", "bravo"])?;
    println!("gdb_two: ok");
    Ok(())
}

kaal_rt::root_task!(main);
