//! System test `serial_hostile`: a client writes garbage into the index of
//! its transmit ring; the 16550 driver reports the corrupt ring, stops
//! serving that direction, and still delivers what the harness types.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("serial_hostile"))?;
    let app = sys.index("app").ok_or(RootError::Check("no app"))?;
    sys.start_all(&mut broker);
    let mut ok = false;
    sys.supervise(&mut broker, |_, e| {
        ok = matches!(e, Event::Exited { component, code: 0 } if component == app);
        Control::Finish
    })?;
    if !ok {
        return Err(RootError::Check("the driver stopped serving"));
    }
    println!("serial_hostile: ok");
    Ok(())
}

kaal_rt::root_task!(main);
