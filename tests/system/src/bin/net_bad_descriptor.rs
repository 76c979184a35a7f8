//! System test `net_bad_descriptor`: a client sends tx entries the network
//! protocol refuses, each answered with an error entry, and still gets a
//! DHCP OFFER; then it corrupts its tx ring's index, and the virtio-net
//! driver reports it, cuts that ring off and still delivers the OFFER that
//! was on its way (`tests/system/systems/net_bad_descriptor.toml`).
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(
        &mut broker,
        kaal_root::include_system!("net_bad_descriptor"),
    )?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["hostile"])?;
    println!("net_bad_descriptor: ok");
    Ok(())
}

kaal_rt::root_task!(main);
