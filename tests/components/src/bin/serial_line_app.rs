//! Reads one line from a serial driver (the serial protocol's `rx` ring),
//! prints it, sends it back (`tx`) and exits: each instance says what its
//! own port received.
#![no_std]
#![no_main]

use kaal_client::serial::SerialClient;
use kaal_rt::{println, Env};

/// The longest line kept.
const LINE: usize = 64;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut port = SerialClient::new(env)?;
    let mut line = [0u8; LINE];
    let mut len = 0;
    loop {
        let chunk = port.recv()?;
        for &b in chunk.bytes() {
            if b == b'\r' || b == b'\n' {
                let text = line.get(..len).unwrap_or(&[]);
                let text = core::str::from_utf8(text).map_err(|_| "not UTF-8")?;
                println!("{}: read `{text}`", env.name());
                return Ok(port.send(text.as_bytes())?);
            }
            let slot = line.get_mut(len).ok_or("line too long")?;
            *slot = b;
            len += 1;
        }
    }
}

kaal_rt::component!(main);
