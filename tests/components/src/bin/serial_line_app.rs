//! Reads one line from a serial driver (the serial protocol's `rx` ring),
//! prints it, sends it back (`tx`) and exits: each instance says what its
//! own port received.
#![no_std]
#![no_main]

use kaal_protocols::serial::{Chunk, RING_SLOTS};
use kaal_rt::{println, Env};

/// The longest line kept.
const LINE: usize = 64;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut rx = env
        .ring_rx::<Chunk, RING_SLOTS>("rx")
        .map_err(|_| "no `rx` ring")?;
    let mut tx = env
        .ring_tx::<Chunk, RING_SLOTS>("tx")
        .map_err(|_| "no `tx` ring")?;
    let mut line = [0u8; LINE];
    let mut len = 0;
    loop {
        let chunk = rx.recv().map_err(|_| "corrupt rx ring")?;
        rx.release();
        for &b in chunk.bytes() {
            if b == b'\r' || b == b'\n' {
                let text = line.get(..len).unwrap_or(&[]);
                let text = core::str::from_utf8(text).map_err(|_| "not UTF-8")?;
                println!("{}: read `{text}`", env.name());
                let (echo, _) = Chunk::from_bytes(text.as_bytes());
                return tx.send_all(&[echo]).map_err(|_| "corrupt tx ring");
            }
            let slot = line.get_mut(len).ok_or("line too long")?;
            *slot = b;
            len += 1;
        }
    }
}

kaal_rt::component!(main);
