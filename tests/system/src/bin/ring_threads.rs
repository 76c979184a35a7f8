//! System test `ring_threads`: messages cross a shared ring from the root
//! thread to a second thread through the ring's full protocol (publish,
//! release, sleep and wait with seL4 notifications), in order and with the
//! right checksum, for batch sizes that do and do not divide the ring; the
//! sleeping consumer is woken by signals. The same path `cargo xtask bench`
//! times.
#![no_std]
#![no_main]

use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;
use kaal_systest::ring::{self, SLOTS};

const MESSAGES: u64 = 10_000;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    for batch in [1, 7, 64, SLOTS as u64] {
        let t = ring::transfer(&mut broker, MESSAGES, batch)?;
        println!(
            "ring_threads: batch {batch}: {} messages, {} signals (producer {}, consumer {})",
            t.messages,
            t.signals(),
            t.producer_signals,
            t.consumer_signals
        );
        // The consumer starts asleep: the first publish must wake it.
        if t.producer_signals == 0 {
            return Err(RootError::Check(
                "the sleeping consumer was never signalled",
            ));
        }
    }
    // Every batch size in 1..=SLOTS is accepted; others are refused.
    for batch in [0, SLOTS as u64 + 1] {
        if ring::transfer(&mut broker, 1, batch).is_ok() {
            return Err(RootError::Check("an invalid batch size was accepted"));
        }
    }
    println!("ring_threads: ok");
    Ok(())
}

kaal_rt::root_task!(main);
