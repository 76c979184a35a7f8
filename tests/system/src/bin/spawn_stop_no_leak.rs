//! System test `spawn_stop_no_leak`: a component is spawned, runs to its
//! exit and is stopped 100 times; the broker's free memory and free slots
//! are then exactly what they were after the first cycle (which leaves the
//! root task's own mapping window with its paging structures).
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

const CYCLES: usize = 100;

fn cycle(
    sys: &mut system::System<'_>,
    broker: &mut kaal_root::RootBroker,
) -> Result<(), RootError> {
    sys.spawn(broker, 0).map_err(|e| {
        println!("spawn_stop_no_leak: spawn failed: {e}");
        RootError::Check("spawn failed")
    })?;
    let mut exited = false;
    sys.supervise(broker, |_, e| {
        exited = matches!(e, Event::Exited { code: 0, .. });
        Control::Finish
    })?;
    // The exit was reported before the policy ran: stop explicitly.
    sys.stop(broker, 0)?;
    if exited {
        Ok(())
    } else {
        Err(RootError::Check("the component did not exit cleanly"))
    }
}

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("spawn_stop"))?;
    cycle(&mut sys, &mut broker)?;
    broker.coalesce()?;
    let (ram, slots) = (broker.free_ram_bytes(), broker.free_slots());
    for _ in 0..CYCLES {
        cycle(&mut sys, &mut broker)?;
    }
    broker.coalesce()?;
    let (ram2, slots2) = (broker.free_ram_bytes(), broker.free_slots());
    println!(
        "spawn_stop_no_leak: {CYCLES} cycles; free RAM {ram} -> {ram2} bytes, free slots {slots} -> {slots2}"
    );
    if (ram, slots) != (ram2, slots2) {
        return Err(RootError::Check("spawn/stop cycles leaked"));
    }
    println!("spawn_stop_no_leak: ok");
    Ok(())
}

kaal_rt::root_task!(main);
