//! A client of the serial protocol: checks that every byte the harness
//! types arrives, in order (the same 64-byte line, `LINES` times), and sends
//! each back through the driver.
#![no_std]
#![no_main]

use kaal_client::serial::SerialClient;
use kaal_rt::{println, Env};

/// What `tests.toml` has the harness type, and how often (keep in step).
const LINE: &[u8; 64] = b"KaaL serial echo: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG\n";
const LINES: usize = 1024;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut port = SerialClient::new(env)?;
    let total = LINE.len() * LINES;
    let mut got = 0usize;
    while got < total {
        // The slot is free before the echo may wait for the driver to take
        // it: the driver may be waiting for exactly that room.
        let chunk = port.recv()?;
        for &b in chunk.bytes() {
            if LINE.get(got % LINE.len()) != Some(&b) {
                println!("serial_echo: byte {got} is {b:#x}");
                return Err("a byte was lost or changed");
            }
            got += 1;
        }
        port.send(chunk.bytes())?;
    }
    println!("serial_echo: {got} bytes arrived in order, none lost");
    Ok(())
}

kaal_rt::component!(main);
