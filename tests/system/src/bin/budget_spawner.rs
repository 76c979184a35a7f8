//! System test `budget_spawner`: components with an untyped budget build
//! processes themselves (tests/components/src/bin/spawner.rs), and the root
//! task gets every budget back: `spawner` (16 MiB, 100 processes) and
//! `respawn` (1 MiB, one process) run to their exits, then `spawner` once
//! more and `respawn` nine times more (more starts than seL4 has ASID
//! pools, each start making one), after which the root broker's free RAM
//! and slots are what they were after the first round.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event, State, System};
use kaal_root::{RootBroker, RootError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

/// Runs component `name` until it has exited and been stopped.
fn run(sys: &mut System<'_>, broker: &mut RootBroker, name: &str) -> Result<(), RootError> {
    let i = sys
        .index(name)
        .ok_or(RootError::Check("component missing"))?;
    sys.spawn(broker, i).map_err(|e| {
        println!("budget_spawner: spawning `{name}` failed: {e}");
        RootError::Check("spawn failed")
    })?;
    sys.supervise(broker, |_, e| {
        if !matches!(e, Event::Exited { code: 0, .. } | Event::Stopped { .. }) {
            println!("budget_spawner: unexpected: {e:?}");
        }
        Control::Continue
    })?;
    if sys.state(i) != Some(State::Exited(0)) {
        return Err(RootError::Check("the component did not exit cleanly"));
    }
    Ok(())
}

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("budget_spawner"))?;
    run(&mut sys, &mut broker, "spawner")?;
    run(&mut sys, &mut broker, "respawn")?;
    broker.coalesce()?;
    let (ram, slots) = (broker.free_ram_bytes(), broker.free_slots());
    run(&mut sys, &mut broker, "spawner")?;
    for _ in 0..9 {
        run(&mut sys, &mut broker, "respawn")?;
    }
    broker.coalesce()?;
    let (ram2, slots2) = (broker.free_ram_bytes(), broker.free_slots());
    println!(
        "budget_spawner: 12 starts with a budget; root free RAM {ram} -> {ram2} bytes, free slots {slots} -> {slots2}"
    );
    if (ram, slots) != (ram2, slots2) {
        return Err(RootError::Check("budgets were not given back whole"));
    }
    println!("budget_spawner: ok");
    Ok(())
}

kaal_rt::root_task!(main);
