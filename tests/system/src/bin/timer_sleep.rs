//! System test `timer_sleep`: the PIT driver component serves an
//! application the timer protocol; the application sleeps through it and
//! measures each sleep against the TSC (a 100 ms sleep must last 100 to
//! 150 ms).
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("timer_sleep"))?;
    sys.start_all(&mut broker);
    sys.expect_clean_exits(&mut broker, &["app"])?;
    println!("timer_sleep: ok");
    Ok(())
}

kaal_rt::root_task!(main);
