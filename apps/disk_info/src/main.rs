//! Tells what disk the block driver serves (the block protocol's channels,
//! local names `req`, `resp` and `data`): its size, and the first bytes of
//! sector 0 in hex.
#![no_std]
#![no_main]

use core::fmt::Write;

use kaal_client::block::{BlockClient, BlockError};
use kaal_protocols::block::SECTOR;
use kaal_rt::{println, Env};

/// Bytes of sector 0 shown.
const SHOWN: usize = 16;

fn main(env: &Env) -> Result<(), BlockError> {
    let mut disk = BlockClient::new(env)?;
    let sectors = disk.capacity()?;
    disk.read(0, 1, 0)?;
    let mut first = [0u8; SHOWN];
    disk.data
        .read(0, &mut first)
        .map_err(|_| BlockError::Ring)?;
    let mut hex = heapless::String::<{ 2 * SHOWN }>::new();
    for b in first {
        // Room for every byte: the string holds two digits each.
        let _ = write!(hex, "{b:02x}");
    }
    println!(
        "{}: {sectors} sectors ({} KiB); sector 0 begins {hex}",
        env.name(),
        sectors * SECTOR / 1024
    );
    Ok(())
}

kaal_rt::component!(main);
