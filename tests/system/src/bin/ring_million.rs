//! System test `ring_million`: two components move 1,000,000 items through a
//! shared ring; the consumer checks order and checksum. Both must exit `Ok`
//! and nothing may fault.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("ring_million"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["producer", "consumer"])?;
    println!("ring_million: ok");
    Ok(())
}

kaal_rt::root_task!(main);
