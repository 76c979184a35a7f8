//! Receives `COUNT` items from its `data` ring, checks each one's sequence
//! number and value, and prints the checksum (the producer prints its own;
//! the test compares both with the known value).
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;
use kaal_test_components::{fold, value, Item, RING_SLOTS};

const COUNT: u64 = 1_000_000;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut rx = env
        .ring_rx::<Item, RING_SLOTS>("data")
        .map_err(|_| "no `data` ring")?;
    let mut sum = 0u64;
    for expect in 0..COUNT {
        let item = rx.recv().map_err(|_| "corrupt ring")?;
        if item.seq != expect || item.value != value(expect) {
            println!("{}: item {expect} arrived as {item:?}", env.name());
            return Err("items out of order or damaged");
        }
        sum = fold(sum, item);
    }
    rx.release();
    println!(
        "ring_million: {COUNT} items received in order, checksum {sum:#018x}, {} signals sent",
        rx.ring.signals()
    );
    Ok(())
}

kaal_rt::component!(main);
