//! System test `serial_hostile`: a client writes garbage into the index of
//! its transmit ring; the 16550 driver reports the corrupt ring, stops
//! serving that direction, and still delivers what the harness types.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("serial_hostile"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["app"])?;
    println!("serial_hostile: ok");
    Ok(())
}

kaal_rt::root_task!(main);
