//! System test `panic_is_reported`: this image panics on purpose; the harness
//! must see the panic message and the failure status.
#![no_std]
#![no_main]

use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    kaal_root::boot(bi)?;
    let values: [u64; 0] = [];
    let n = core::hint::black_box(values.len());
    if n == 0 {
        panic!("on purpose: {n} values");
    }
    Ok(())
}

kaal_rt::root_task!(main);
