//! A terminal on a serial driver: whatever is typed comes back, chunk by
//! chunk, for as long as the system runs. The serial protocol's two rings
//! are its local names `rx` (from the driver) and `tx` (to it).
#![no_std]
#![no_main]

use kaal_client::serial::{SerialClient, SerialError};
use kaal_rt::{println, Env};

fn main(env: &Env) -> Result<(), SerialError> {
    let mut port = SerialClient::new(env)?;
    println!("{}: echoing what is typed", env.name());
    loop {
        let chunk = port.recv()?;
        port.send(chunk.bytes())?;
    }
}

kaal_rt::component!(main);
