//! System test `rpc_two_clients`: an echo service component serves two
//! client components over one endpoint and tells them apart by the badge the
//! root task minted for each; both clients check every answer and that the
//! service saw their own badge.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("rpc_two_clients"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["client_a", "client_b"])?;
    println!("rpc_two_clients: ok");
    Ok(())
}

kaal_rt::root_task!(main);
