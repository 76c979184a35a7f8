//! System test `blk_roundtrip`: see `tests/system/systems/blk_roundtrip.toml`.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("blk_roundtrip"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["roundtrip"])?;
    println!("blk_roundtrip: ok");
    Ok(())
}

kaal_rt::root_task!(main);
