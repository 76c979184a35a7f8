//! System test `notification_signal_wait`: a badged Signal from a second
//! thread wakes Wait with exactly that badge.
#![no_std]
#![no_main]

use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    kaal_systest::demo::notification_signal_wait(&mut broker)
}

kaal_rt::root_task!(main);
