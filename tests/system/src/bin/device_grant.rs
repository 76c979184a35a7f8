//! System test `device_grant`: a component whose manifest grants `serial:0`
//! writes through COM1's ports itself, and the kernel refuses it COM2's; a
//! component granted virtio-net reads its registers and ports and uses its
//! DMA buffer.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("device_grant"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["writer", "probe"])?;
    println!("device_grant: ok");
    Ok(())
}

kaal_rt::root_task!(main);
