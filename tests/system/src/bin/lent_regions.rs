//! System test `lent_regions`: two clients of a `file` channel each lend
//! the server their own region (the server checks each client's pattern
//! in that client's region and writes its own pattern for that client
//! there), and each has private memory sized by the manifest. `client_a`
//! fails once on purpose; restarted, it finds its private memory zeroed
//! again and its lent region as the server left it.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("lent_regions"))?;
    let a = sys
        .index("client_a")
        .ok_or(RootError::Check("no client_a"))?;
    let b = sys
        .index("client_b")
        .ok_or(RootError::Check("no client_b"))?;
    sys.start_all(&mut broker);
    let (mut failed, mut restarted, mut a_done, mut b_done, mut bad) =
        (false, false, false, false, false);
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Exited { component, code: 1 } if component == a && !failed => failed = true,
            Event::Restarted {
                component,
                restarts: 1,
            } if component == a && failed => restarted = true,
            Event::Exited { component, code: 0 } if component == a && restarted => a_done = true,
            Event::Exited { component, code: 0 } if component == b => b_done = true,
            e => {
                println!("lent_regions: unexpected {e:?}");
                bad = true;
            }
        }
        if bad || (a_done && b_done) {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    if bad || !(a_done && b_done) {
        return Err(RootError::Check(
            "the clients did not finish as they should",
        ));
    }
    println!("lent_regions: ok");
    Ok(())
}

kaal_rt::root_task!(main);
