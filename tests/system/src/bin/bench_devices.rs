//! The device benchmark image `cargo xtask bench` boots after `bench`, with
//! a disk and a network card: the block, serial and network drivers and the
//! VFS (on the disk's ext2 file system) under load. The figures are printed
//! by the benchmark components themselves (their console lines reach the
//! serial log unchanged). A separate boot,
//! because QEMU's device I/O runs outside the instruction count, and the
//! other figures must stay exactly repeatable.
#![no_std]
#![no_main]

use kaal_root::system;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    for (image, client) in [
        (kaal_root::include_system!("blk_bench").as_slice(), "bench"),
        (kaal_root::include_system!("serial_bench").as_slice(), "app"),
        (kaal_root::include_system!("net_bench").as_slice(), "bench"),
        (kaal_root::include_system!("fs_bench").as_slice(), "bench"),
    ] {
        let mut sys = system::load(&mut broker, image)?;
        sys.start_all(&mut broker);
        sys.expect_clean_exits(&mut broker, &[client])?;
        // The servers run on: stop them, so that the next system can claim
        // their devices (blk_bench and fs_bench share the disk).
        for i in 0..sys.len() {
            sys.stop(&mut broker, i)?;
        }
    }
    Ok(())
}

kaal_rt::root_task!(main);
