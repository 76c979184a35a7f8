//! System test `blk_out_of_range`: see `tests/system/systems/blk_out_of_range.toml`.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("blk_out_of_range"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["hostile"])?;
    println!("blk_out_of_range: ok");
    Ok(())
}

kaal_rt::root_task!(main);
