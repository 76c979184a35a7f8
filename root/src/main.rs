//! The KaaL root task image: boots, proves the kernel paths, then stays up.
#![no_std]
#![no_main]

use kaal_root::{boot, RootError};
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = boot(bi)?;
    kaal_root::demo::ipc_roundtrip(&mut broker)?;
    kaal_root::demo::notification_signal_wait(&mut broker)?;
    kaal_sel4::println!("KaaL: boot OK");
    kaal_root::idle(&mut broker)
}

kaal_rt::root_task!(main);
