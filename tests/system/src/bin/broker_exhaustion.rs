//! System test `broker_exhaustion`: allocating until memory runs out ends in
//! an out-of-memory error; after everything is freed, the same allocations
//! succeed again.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use kaal_broker::kernel::{ObjSpec, ObjectType};
use kaal_broker::{BrokerError, Result as BrokerResult};
use kaal_root::{RootBroker, RootError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::{println, CPtr};

/// Allocates objects of `ty` until the broker says out of memory.
fn fill(b: &mut RootBroker, ty: ObjectType, into: &mut Vec<CPtr>) -> BrokerResult<usize> {
    let mut n = 0;
    loop {
        match b.alloc_object(ObjSpec::of(ty)) {
            Ok(c) => {
                into.push(c);
                n += 1;
            }
            Err(BrokerError::OutOfMemory { .. }) => return Ok(n),
            Err(e) => return Err(e),
        }
    }
}

fn round(b: &mut RootBroker) -> Result<(usize, usize), RootError> {
    let mut live = Vec::new();
    let large = fill(b, ObjectType::Frame2M, &mut live)?;
    let small = fill(b, ObjectType::Frame4K, &mut live)?;
    match b.alloc_object(ObjSpec::of(ObjectType::Endpoint)) {
        Err(BrokerError::OutOfMemory { .. }) => {}
        _ => return Err(RootError::Check("memory is not exhausted")),
    }
    for c in live {
        b.free(c)?;
    }
    Ok((large, small))
}

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let free = broker.free_ram_bytes();
    let first = round(&mut broker)?;
    println!(
        "broker_exhaustion: {} x 2 MiB + {} x 4 KiB until out of memory",
        first.0, first.1
    );
    if broker.free_ram_bytes() != free {
        return Err(RootError::Check(
            "freeing everything did not return all memory",
        ));
    }
    let second = round(&mut broker)?;
    println!(
        "broker_exhaustion: again {} x 2 MiB + {} x 4 KiB",
        second.0, second.1
    );
    if second != first {
        return Err(RootError::Check(
            "the second round got different allocations",
        ));
    }
    if (first.0 as u64) * (2 << 20) + (first.1 as u64) * 4096 != free {
        return Err(RootError::Check(
            "allocations do not add up to the free memory",
        ));
    }
    println!("broker_exhaustion: ok");
    Ok(())
}

kaal_rt::root_task!(main);
