//! System test `device_grant`: a component whose manifest grants `serial:0`
//! writes through COM1's ports itself, and the kernel refuses it COM2's; a
//! component granted virtio-net reads its registers and ports and uses its
//! DMA buffer.
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
    let mut ok = 0;
    let mut bad = false;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Exited { code: 0, .. } => ok += 1,
            _ => bad = true,
        }
        if bad || ok == 2 {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    if bad || ok != 2 {
        return Err(RootError::Check("the device component failed"));
    }
    println!("device_grant: ok");
    Ok(())
}

kaal_rt::root_task!(main);
