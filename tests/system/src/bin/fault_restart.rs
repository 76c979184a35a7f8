//! System test `fault_restart`: a page fault at address 0, an illegal
//! instruction, a panic and an unknown system call are each reported with
//! the component's name and address; `null_deref` (policy `restart`) comes
//! back and finishes, the others (policy `stop`) stay stopped, and the echo
//! service's client finishes its calls all the while.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event, State};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::fault::Fault;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("fault_restart"))?;
    let idx = |n: &str| sys.index(n).ok_or(RootError::Check("component missing"));
    let (null, ill, pan, sysc, worker) = (
        idx("null_deref")?,
        idx("illegal")?,
        idx("panics")?,
        idx("bad_syscall")?,
        idx("worker")?,
    );
    sys.start_all(&mut broker);
    let mut seen = [false; 10];
    let mut unexpected = false;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Faulted {
                component,
                fault: Fault::Vm { addr: 0, .. },
            } if component == null => seen[0] = true,
            Event::Restarted {
                component,
                restarts: 1,
            } if component == null => seen[1] = true,
            Event::Exited { component, code: 0 } if component == null => seen[2] = true,
            Event::Faulted {
                component,
                fault: Fault::UserException { number: 6, .. },
            } if component == ill => seen[3] = true,
            Event::Panicked { component } if component == pan => seen[4] = true,
            Event::Faulted {
                component,
                fault: Fault::UnknownSyscall { .. },
            } if component == sysc => seen[5] = true,
            Event::Exited { component, code: 0 } if component == worker => seen[6] = true,
            Event::Stopped { component } if component == ill => seen[7] = true,
            Event::Stopped { component } if component == pan => seen[8] = true,
            Event::Stopped { component } if component == sysc => seen[9] = true,
            e => {
                println!("fault_restart: unexpected {e:?}");
                unexpected = true;
            }
        }
        if unexpected || seen.iter().all(|s| *s) {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    let stopped = [ill, pan, sysc]
        .iter()
        .all(|&i| sys.state(i) == Some(State::Stopped));
    if unexpected || !seen.iter().all(|s| *s) || !stopped {
        println!("fault_restart: seen {seen:?}, stopped {stopped}");
        return Err(RootError::Check(
            "the faults were not all reported and handled",
        ));
    }
    println!("fault_restart: ok");
    Ok(())
}

kaal_rt::root_task!(main);
