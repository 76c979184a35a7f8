//! System test `broker_new_vspace`: the broker makes a new address space
//! (PML4 with an ASID) and maps frames into it, read-only and read-write,
//! creating every paging level on demand; the kernel then refuses a second
//! mapping at an address already taken there.
#![no_std]
#![no_main]

use kaal_broker::kernel::Access;
use kaal_broker::BrokerError;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::Frame;
use kaal_sel4::{println, Error};

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let vs = broker.new_vspace()?;
    let places = [
        (0x40_0000, Access::ReadOnly),
        (0x40_1000, Access::ReadWrite),
        (0x7fff_ffff_e000, Access::ReadWrite),
    ];
    for (vaddr, access) in places {
        let f: Frame = broker.alloc()?;
        broker.map_into(vs, f, vaddr, access)?;
    }
    let again: Frame = broker.alloc()?;
    match broker.map_into(vs, again, 0x40_0000, Access::ReadOnly) {
        Err(BrokerError::Kernel {
            error: Error::DeleteFirst,
            ..
        }) => {}
        other => {
            println!("broker_new_vspace: second mapping gave {other:?}");
            return Err(RootError::Check("a taken address was mapped again"));
        }
    }
    println!(
        "broker_new_vspace: ok ({} mappings in a new address space)",
        places.len()
    );
    Ok(())
}

kaal_rt::root_task!(main);
