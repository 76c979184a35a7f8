//! Sends `COUNT` items through its `data` ring in batches, waiting for space
//! with the ring's sleep protocol when it is full.
#![no_std]
#![no_main]

use kaal_ring::RingError;
use kaal_rt::println;
use kaal_rt::Env;
use kaal_test_components::{fold, value, Item, RING_SLOTS};

/// Items sent (the `ring_million` test).
const COUNT: u64 = 1_000_000;
const BATCH: usize = 64;

fn main(env: &Env) -> Result<(), RingError> {
    let Ok(mut tx) = env.ring_tx::<Item, RING_SLOTS>("data") else {
        println!("{}: no `data` ring", env.name());
        return Err(RingError::Full);
    };
    let mut seq = 0u64;
    let mut sum = 0u64;
    let mut batch = [Item::default(); BATCH];
    while seq < COUNT {
        let n = ((COUNT - seq) as usize).min(BATCH);
        for (k, slot) in batch.iter_mut().take(n).enumerate() {
            let s = seq + k as u64;
            *slot = Item {
                seq: s,
                value: value(s),
            };
        }
        tx.send_all(batch.get(..n).unwrap_or(&[]))?;
        for it in batch.iter().take(n) {
            sum = fold(sum, *it);
        }
        seq += n as u64;
    }
    println!(
        "{}: sent {COUNT} items, checksum {sum:#018x}, {} signals",
        env.name(),
        tx.ring.signals()
    );
    Ok(())
}

kaal_rt::component!(main);
