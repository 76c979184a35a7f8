//! System test `rpc_two_clients`: an echo service component serves two
//! client components over one endpoint and tells them apart by the badge the
//! root task minted for each; both clients check every answer and that the
//! service saw their own badge.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("rpc_two_clients"))?;
    sys.start_all(&mut broker);
    let (a, b) = (sys.index("client_a"), sys.index("client_b"));
    let mut done = [false; 2];
    let mut bad = false;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Exited { component, code: 0 } if Some(component) == a => done[0] = true,
            Event::Exited { component, code: 0 } if Some(component) == b => done[1] = true,
            _ => bad = true,
        }
        if bad || done == [true; 2] {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    if bad || done != [true; 2] {
        return Err(RootError::Check("a client or the service failed"));
    }
    println!("rpc_two_clients: ok");
    Ok(())
}

kaal_rt::root_task!(main);
