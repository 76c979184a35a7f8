//! System test `net_dhcp`: see `tests/system/systems/net_dhcp.toml`.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("net_dhcp"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["dhcp"])?;
    println!("net_dhcp: ok");
    Ok(())
}

kaal_rt::root_task!(main);
