//! System test `ring_million`: two components move 1,000,000 items through a
//! shared ring; the consumer checks order and checksum. Both must exit `Ok`
//! and nothing may fault.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("ring_million"))?;
    sys.start_all(&mut broker);
    let mut ok = 0;
    let mut bad = false;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Exited { code: 0, .. } => ok += 1,
            _ => bad = true,
        }
        if bad || ok == 2 {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    if bad || ok != 2 {
        return Err(RootError::Check("a ring component failed"));
    }
    println!("ring_million: ok");
    Ok(())
}

kaal_rt::root_task!(main);
