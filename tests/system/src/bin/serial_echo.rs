//! System test `serial_echo`: the harness types 64 KiB into COM1; the 16550
//! driver component receives it on interrupts and hands it to an
//! application over the serial protocol, which checks every byte and sends
//! it back through the driver. The driver is also the system console: the
//! components' lines must all have gone through it.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("serial_echo"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["app", "hello"])?;
    let (forwarded, direct) = sys.console_lines().unwrap_or((0, 0));
    println!(
        "serial_echo: {forwarded} console lines went through the UART driver, {direct} around it"
    );
    if forwarded < 2 || direct != 0 {
        return Err(RootError::Check(
            "console lines did not go through the driver",
        ));
    }
    println!("serial_echo: ok");
    Ok(())
}

kaal_rt::root_task!(main);
