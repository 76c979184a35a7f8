//! A client of the serial protocol: checks that every byte the harness
//! types arrives, in order (the same 64-byte line, `LINES` times), and sends
//! each back through the driver.
#![no_std]
#![no_main]

use kaal_protocols::serial::{Chunk, RING_SLOTS};
use kaal_rt::{println, Env};

/// What `tests.toml` has the harness type, and how often (keep in step).
const LINE: &[u8; 64] = b"KaaL serial echo: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG\n";
const LINES: usize = 1024;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut rx = env
        .ring_rx::<Chunk, RING_SLOTS>("rx")
        .map_err(|_| "no `rx` ring")?;
    let mut tx = env
        .ring_tx::<Chunk, RING_SLOTS>("tx")
        .map_err(|_| "no `tx` ring")?;
    let total = LINE.len() * LINES;
    let mut got = 0usize;
    while got < total {
        let chunk = rx.recv().map_err(|_| "corrupt rx ring")?;
        for &b in chunk.bytes() {
            if LINE.get(got % LINE.len()) != Some(&b) {
                println!("serial_echo: byte {got} is {b:#x}");
                return Err("a byte was lost or changed");
            }
            got += 1;
        }
        // Free the slot before possibly waiting for the driver to take the
        // echo: it may be waiting for exactly that room.
        rx.release();
        tx.send_all(&[chunk]).map_err(|_| "corrupt tx ring")?;
    }
    println!("serial_echo: {got} bytes arrived in order, none lost");
    Ok(())
}

kaal_rt::component!(main);
