//! System test `boot_summary`: BootInfo is read and summarised, and the RAM
//! it reports is plausible for QEMU's `-m 512M`.
#![no_std]
#![no_main]

use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;

const MIB: u64 = 1024 * 1024;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    kaal_root::boot(bi)?;
    // QEMU gives 512 MiB; the kernel and the image take some, and the holes
    // below 1 MiB and at the top of low memory are not RAM untypeds.
    let ram = bi.ram_bytes();
    if !(400 * MIB..=512 * MIB).contains(&ram) {
        kaal_sel4::println!("boot_summary: RAM untyped {ram} bytes is not within 400..512 MiB");
        return Err(RootError::Check("RAM untyped size"));
    }
    if bi.empty().is_empty() {
        return Err(RootError::Check("no free slots"));
    }
    kaal_sel4::println!("KaaL: boot OK");
    Ok(())
}

kaal_rt::root_task!(main);
