//! System test `limits`: the supervisor's two documented limits, reached.
//! `always_faults` (policy `restart`) is restarted exactly `RESTART_LIMIT`
//! times and then stopped; `cap_loop` gets exactly `REFUSAL_LIMIT`
//! capability faults answered with an error, and the next one is reported
//! as a fault (policy `stop`). `forger`'s made-up capability-fault report
//! (the thread does not stand at the instruction it names) is taken as a
//! fault, never answered as a refusal.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event, State, REFUSAL_LIMIT, RESTART_LIMIT};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::fault::Fault;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("limits"))?;
    let idx = |n: &str| sys.index(n).ok_or(RootError::Check("component missing"));
    let (faults, caps, forger) = (idx("always_faults")?, idx("cap_loop")?, idx("forger")?);
    sys.start_all(&mut broker);
    let (mut restarts, mut refusals) = (0u64, 0u64);
    let (mut faults_stopped, mut cap_fault, mut caps_stopped) = (false, false, false);
    let (mut forged, mut forger_stopped) = (false, false);
    let mut unexpected = false;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Faulted {
                component,
                fault: Fault::UserException { .. },
            } if component == faults => {}
            Event::Restarted { component, .. } if component == faults => restarts += 1,
            Event::Stopped { component } if component == faults => faults_stopped = true,
            Event::CapRefused { component, .. } if component == caps => refusals += 1,
            Event::Faulted {
                component,
                fault: Fault::Cap { .. },
            } if component == caps => cap_fault = true,
            Event::Stopped { component } if component == caps => caps_stopped = true,
            Event::Faulted {
                component,
                fault: Fault::Cap { ip: 0x40_0000, .. },
            } if component == forger => forged = true,
            Event::Stopped { component } if component == forger => forger_stopped = true,
            e => {
                println!("limits: unexpected {e:?}");
                unexpected = true;
            }
        }
        if unexpected || (faults_stopped && caps_stopped && forger_stopped) {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    println!("limits: `always_faults` restarted {restarts} times, then stopped: {faults_stopped}");
    println!("limits: `cap_loop` refused {refusals} times, then faulted: {cap_fault}");
    println!("limits: the forged report was taken as a fault: {forged}");
    let stopped = [faults, caps, forger]
        .iter()
        .all(|&i| sys.state(i) == Some(State::Stopped));
    if unexpected
        || restarts != RESTART_LIMIT
        || refusals != REFUSAL_LIMIT
        || !cap_fault
        || !forged
        || !stopped
    {
        return Err(RootError::Check("the supervisor's limits do not hold"));
    }
    println!("limits: ok");
    Ok(())
}

kaal_rt::root_task!(main);
