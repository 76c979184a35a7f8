//! System test `spawn_stop_no_leak`: 100 cycles of (a) spawning a component
//! that holds a device, a ring end and an endpoint client and letting it run
//! to its exit, (b) spawning one that faults and is stopped by its policy,
//! and (c) a spawn that fails late (its device does not exist). Afterwards
//! the broker's free memory and free slots are exactly what they were after
//! the first cycle (which leaves the root task's own mapping window with its
//! paging structures).
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, SpawnError, State, System};
use kaal_root::{RootBroker, RootError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

const CYCLES: usize = 100;

fn run(
    sys: &mut System<'_>,
    broker: &mut RootBroker,
    name: &str,
    end: State,
) -> Result<(), RootError> {
    let i = sys
        .index(name)
        .ok_or(RootError::Check("component missing"))?;
    sys.spawn(broker, i).map_err(|e| {
        println!("spawn_stop_no_leak: spawning `{name}` failed: {e}");
        RootError::Check("spawn failed")
    })?;
    // Runs until nothing is running: the policy has stopped the component.
    sys.supervise(broker, |_, _| Control::Continue)?;
    if sys.state(i) != Some(end) {
        return Err(RootError::Check("the component did not end as expected"));
    }
    Ok(())
}

fn cycle(sys: &mut System<'_>, broker: &mut RootBroker) -> Result<(), RootError> {
    run(sys, broker, "hello", State::Exited(0))?;
    run(sys, broker, "illegal", State::Stopped)?;
    let late = sys
        .index("late_fail")
        .ok_or(RootError::Check("component missing"))?;
    match sys.spawn(broker, late) {
        Err(SpawnError::NoDevice(_)) => {}
        _ => {
            return Err(RootError::Check(
                "the late spawn did not fail for want of its device",
            ))
        }
    }
    Ok(())
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
