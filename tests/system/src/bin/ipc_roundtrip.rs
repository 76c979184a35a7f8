//! System test `ipc_roundtrip`: Call/ReplyRecv between two threads returns
//! every value transformed by the server.
#![no_std]
#![no_main]

use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    kaal_systest::demo::ipc_roundtrip(&mut broker)
}

kaal_rt::root_task!(main);
