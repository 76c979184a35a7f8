//! A terminal on a serial driver: whatever is typed comes back, chunk by
//! chunk, for as long as the system runs. The serial protocol's two rings
//! are its local names `rx` (from the driver) and `tx` (to it).
#![no_std]
#![no_main]

use kaal_protocols::serial::{Chunk, RING_SLOTS};
use kaal_rt::{println, Env};

fn main(env: &Env) -> Result<(), &'static str> {
    let mut rx = env
        .ring_rx::<Chunk, RING_SLOTS>("rx")
        .map_err(|_| "no `rx` ring")?;
    let mut tx = env
        .ring_tx::<Chunk, RING_SLOTS>("tx")
        .map_err(|_| "no `tx` ring")?;
    println!("{}: echoing what is typed", env.name());
    loop {
        let chunk = rx.recv().map_err(|_| "corrupt rx ring")?;
        // Free the slot before possibly waiting for the driver to take the
        // echo: it may be waiting for exactly that room.
        rx.release();
        tx.send_all(&[chunk]).map_err(|_| "corrupt tx ring")?;
    }
}

kaal_rt::component!(main);
