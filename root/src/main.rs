//! The KaaL root task image: boots, then spawns the system
//! `systems/default.toml` describes and supervises it.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::{boot, RootError};
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = boot(bi)?;
    kaal_sel4::println!("KaaL: boot OK");
    let mut sys = system::load(&mut broker, kaal_root::include_system!("default"))?;
    sys.start_all(&mut broker);
    let mut off = None;
    sys.supervise(&mut broker, |sys, ev| match ev {
        Event::Exited { component, .. } if sys.powers_off(component) => {
            off = Some(component);
            Control::Finish
        }
        _ => Control::Continue,
    })?;
    if let Some(i) = off {
        kaal_sel4::println!("KaaL: `{}` ended: powering off", sys.name(i));
        sys.flush_console();
        kaal_rt::exit(kaal_rt::Exit::Success);
    }
    kaal_sel4::println!("KaaL: every component has ended");
    kaal_root::idle(&mut broker)
}

kaal_rt::root_task!(main);
