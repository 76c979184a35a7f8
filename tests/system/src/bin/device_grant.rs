//! System test `device_grant`: a component whose manifest grants `serial:0`
//! writes through COM1's ports itself, and the kernel refuses it COM2's.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("device_grant"))?;
    sys.start_all(&mut broker);
    let mut ok = false;
    sys.supervise(&mut broker, |_, e| {
        ok = matches!(e, Event::Exited { code: 0, .. });
        Control::Finish
    })?;
    if !ok {
        return Err(RootError::Check("the device component failed"));
    }
    println!("device_grant: ok");
    Ok(())
}

kaal_rt::root_task!(main);
