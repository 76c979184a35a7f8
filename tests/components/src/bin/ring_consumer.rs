//! Receives `COUNT` items from its `data` ring, checks their order and
//! checksum, and sleeps on its notification when the ring is empty.
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
    let mut expect = 0u64;
    let mut sum = 0u64;
    let mut want = 0u64;
    while expect < COUNT {
        match rx.ring.pop().map_err(|_| "corrupt ring")? {
            Some(item) => {
                if item.seq != expect || item.value != value(expect) {
                    println!("{}: item {expect} arrived as {item:?}", env.name());
                    return Err("items out of order or damaged");
                }
                sum = fold(sum, item);
                want = fold(
                    want,
                    Item {
                        seq: expect,
                        value: value(expect),
                    },
                );
                expect += 1;
            }
            None => {
                if rx.ring.release() {
                    rx.peer.0.signal();
                }
                if !rx.ring.prepare_sleep().map_err(|_| "corrupt ring")? {
                    rx.wait.wait();
                }
            }
        }
    }
    if rx.ring.release() {
        rx.peer.0.signal();
    }
    if sum != want {
        return Err("checksum mismatch");
    }
    println!(
        "ring_million: {COUNT} items received in order, checksum {sum:#018x} matches, {} signals sent",
        rx.ring.signals()
    );
    Ok(())
}

kaal_rt::component!(main);
