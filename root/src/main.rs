//! The KaaL root task image: boots, proves the kernel paths, then stays up.
#![no_std]
#![no_main]

use kaal_root::{boot, RootError};
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut alloc = boot(bi)?;
    kaal_root::demo::ipc_roundtrip(&mut alloc)?;
    kaal_root::demo::notification_signal_wait(&mut alloc)?;
    kaal_sel4::println!("KaaL: boot OK");
    kaal_root::idle(&mut alloc)
}

kaal_rt::root_task!(main);
