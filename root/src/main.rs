//! The KaaL root task image: boots, then spawns the system
//! `systems/default.toml` describes and supervises it.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control};
use kaal_root::{boot, RootError};
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = boot(bi)?;
    kaal_sel4::println!("KaaL: boot OK");
    let mut sys = system::load(&mut broker, kaal_root::include_system!("default"))?;
    sys.start_all(&mut broker);
    sys.supervise(&mut broker, |_, _| Control::Continue)?;
    kaal_sel4::println!("KaaL: every component has ended");
    kaal_root::idle(&mut broker)
}

kaal_rt::root_task!(main);
