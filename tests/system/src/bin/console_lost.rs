//! System test `console_lost`: the console driver exits at start; the lines
//! handed to it and not printed are printed directly when it is stopped,
//! and the supervisor goes on (it does not wait for a driver that is gone).
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("console_lost"))?;
    let uart = sys.index("uart").ok_or(RootError::Check("no uart"))?;
    let hello = sys.index("hello").ok_or(RootError::Check("no hello"))?;
    sys.start_all(&mut broker);
    let (mut uart_stopped, mut hello_done) = (false, false);
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::Stopped { component } if component == uart => uart_stopped = true,
            Event::Exited { component, code: 0 } if component == hello => hello_done = true,
            _ => {}
        }
        if uart_stopped && hello_done {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    sys.flush_console();
    println!("console_lost: the driver stopped, the system went on");
    Ok(())
}

kaal_rt::root_task!(main);
