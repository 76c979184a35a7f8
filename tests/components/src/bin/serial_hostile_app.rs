//! A hostile serial client: writes garbage into the header of its `tx` ring
//! (the producer's index), then checks that the driver still delivers what
//! the harness types on `rx`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use kaal_protocols::serial::{Chunk, RING_SLOTS};
use kaal_rt::{println, Env};

const EXPECTED: &[u8] = b"still served\n";

fn main(env: &Env) -> Result<(), &'static str> {
    let (tx_mem, _) = env.shared_memory("tx").map_err(|_| "no `tx` ring")?;
    let tx = env
        .ring_tx::<Chunk, RING_SLOTS>("tx")
        .map_err(|_| "no `tx` ring")?;
    let mut rx = env
        .ring_rx::<Chunk, RING_SLOTS>("rx")
        .map_err(|_| "no `rx` ring")?;
    // The producer index is the ring header's first word (kaal-ring's
    // layout): claim far more items than the ring holds.
    // SAFETY: the ring memory is mapped read-write here for the life of the
    // program, aligned for the header's atomics.
    let head = unsafe { &*(tx_mem as *const AtomicU32) };
    head.store(0x7fff_0000, Ordering::Release);
    tx.peer.0.signal();
    println!("serial_hostile: tx ring corrupted");
    let mut got = [0u8; 64];
    let mut n = 0;
    while n < EXPECTED.len() {
        for &b in rx.recv().map_err(|_| "corrupt rx ring")?.bytes() {
            if let Some(slot) = got.get_mut(n) {
                *slot = b;
                n += 1;
            }
        }
        rx.release();
    }
    if got.get(..EXPECTED.len()) != Some(EXPECTED) {
        return Err("wrong input");
    }
    println!("serial_hostile: input still delivered after the corrupt ring");
    Ok(())
}

kaal_rt::component!(main);
