//! System test `server_restart`: a server faults while it holds a client's
//! call; the supervisor restarts it, the client's call in flight returns
//! `ServerGone` instead of blocking forever, and the client finishes its
//! calls against the new incarnation.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::fault::Fault;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("server_restart"))?;
    let echo = sys.index("echo").ok_or(RootError::Check("no echo"))?;
    let client = sys.index("client").ok_or(RootError::Check("no client"))?;
    sys.start_all(&mut broker);
    let (mut faulted, mut restarted, mut done, mut bad) = (false, false, false, false);
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Faulted {
                component,
                fault: Fault::Vm { addr: 0, .. },
            } if component == echo => faulted = true,
            Event::Restarted { component, .. } if component == echo => restarted = true,
            Event::Exited { component, code: 0 } if component == client => done = true,
            _ => bad = true,
        }
        if bad || done {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    if bad || !(faulted && restarted && done) {
        return Err(RootError::Check("the restart was not handled"));
    }
    println!("server_restart: ok");
    Ok(())
}

kaal_rt::root_task!(main);
