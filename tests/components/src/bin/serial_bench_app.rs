//! Times transmission through the serial driver: sends `BYTES` bytes of
//! text on the `tx` ring and waits until the driver has taken them all;
//! prints `serial.tx_bytes_per_sec` in virtual time (a `KAAL-BENCH` line).
#![no_std]
#![no_main]

use kaal_client::serial::SerialClient;
use kaal_protocols::serial::{Chunk, CHUNK_BYTES, RING_SLOTS};
use kaal_rt::{println, rdtsc, Env};

const BYTES: usize = 16 * 1024;

fn main(env: &Env) -> Result<(), &'static str> {
    // The driver's receive side needs its ring; nothing arrives on it here.
    let SerialClient { mut tx, .. } = SerialClient::new(env)?;
    let mut line = [b'.'; CHUNK_BYTES];
    if let Some(last) = line.last_mut() {
        *last = b'\n';
    }
    let (chunk, _) = Chunk::from_bytes(&line);
    let chunks = BYTES / CHUNK_BYTES;
    let t0 = rdtsc();
    for _ in 0..chunks {
        tx.send_all(&[chunk]).map_err(|_| "corrupt tx ring")?;
    }
    // Taken by the driver: every slot free again (its last chunk may still
    // be in the UART's FIFO, under 1% of the bytes). The driver runs at a
    // higher priority, so this loop only fills the time it waits for the
    // UART.
    while tx.ring.free().map_err(|_| "corrupt tx ring")? < RING_SLOTS {
        core::hint::spin_loop();
    }
    let ticks = rdtsc() - t0;
    let bytes = (chunks * CHUNK_BYTES) as u64;
    let clock = env.clock().ok_or("the TSC frequency is unknown")?;
    let per_sec = clock.per_second(bytes, ticks);
    println!("KAAL-BENCH serial.tx_bytes_per_sec {per_sec} bytes/s");
    Ok(())
}

kaal_rt::component!(main);
