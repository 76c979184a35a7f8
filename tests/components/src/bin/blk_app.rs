//! A client of the block protocol; what it does depends on its name:
//! - `roundtrip`: reads the whole disk and checks the harness's pattern,
//!   writes 64 KiB of its own at sector 1024 and reads it back (the harness
//!   checks the image after QEMU exits);
//! - `hostile`: sends requests beyond the disk, outside the data region and
//!   of an unknown kind, expects an error for each, then a good read;
//! - `bench`: times 64 KiB reads and one-sector reads.
#![no_std]
#![no_main]

use kaal_client::block::BlockClient;
use kaal_protocols::block::{op, Response, Status, SECTOR};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};
use kaal_test_patterns::disk as testdata;

const CHUNK: usize = 64 * 1024;
/// Where `roundtrip` writes (keep in step with `tests.toml`).
const WRITE_SECTOR: u64 = 1024;

/// The protocol's client, with the checks these tests make.
struct Client(BlockClient);

impl Client {
    fn expect(
        &mut self,
        op: u32,
        sector: u64,
        sectors: u32,
        offset: u64,
        want: Status,
    ) -> Result<Response, &'static str> {
        let r = self.0.call(op, sector, sectors, offset)?;
        if r.status != want as u32 {
            println!(
                "blk: op {op} sector {sector} x{sectors} at {offset:#x}: {:?}, expected {want:?}",
                Status::from_code(r.status)
            );
            return Err("unexpected status");
        }
        Ok(r)
    }

    fn capacity(&mut self) -> Result<u64, &'static str> {
        Ok(self.0.capacity()?)
    }

    /// Checks `len` bytes of the data region at 0 against `f` from disk
    /// byte `at`.
    fn check(
        &self,
        at: u64,
        len: usize,
        f: fn(u64) -> u8,
        buf: &mut [u8],
    ) -> Result<(), &'static str> {
        let buf = buf.get_mut(..len).ok_or("buffer")?;
        self.0
            .data
            .read(0, buf)
            .map_err(|_| "data region too small")?;
        for (o, &b) in (at..).zip(buf.iter()) {
            if b != f(o) {
                println!("blk: disk byte {o:#x} reads {b:#x}, expected {:#x}", f(o));
                return Err("wrong data");
            }
        }
        Ok(())
    }
}

fn roundtrip(c: &mut Client) -> Result<(), &'static str> {
    let sectors = c.capacity()?;
    let mut buf = alloc::vec![0u8; CHUNK];
    let per = (CHUNK as u64 / SECTOR) as u32;
    let mut s = 0;
    while s < sectors {
        let n = per.min((sectors - s) as u32);
        c.expect(op::READ, s, n, 0, Status::Ok)?;
        c.check(
            s * SECTOR,
            n as usize * SECTOR as usize,
            testdata::fresh,
            &mut buf,
        )?;
        s += u64::from(n);
    }
    println!(
        "blk_roundtrip: read {} bytes, all as the harness wrote them",
        sectors * SECTOR
    );
    let base = WRITE_SECTOR * SECTOR;
    for (o, b) in (base..).zip(buf.iter_mut()) {
        *b = testdata::written(o);
    }
    c.0.data
        .write(0, &buf)
        .map_err(|_| "data region too small")?;
    c.expect(op::WRITE, WRITE_SECTOR, per, 0, Status::Ok)?;
    c.expect(op::FLUSH, 0, 0, 0, Status::Ok)?;
    c.0.data
        .write(0, &[0u8; CHUNK])
        .map_err(|_| "data region too small")?;
    c.expect(op::READ, WRITE_SECTOR, per, 0, Status::Ok)?;
    c.check(base, CHUNK, testdata::written, &mut buf)?;
    println!("blk_roundtrip: wrote {CHUNK} bytes at sector {WRITE_SECTOR} and read them back");
    Ok(())
}

fn hostile(c: &mut Client) -> Result<(), &'static str> {
    let sectors = c.capacity()?;
    let region = c.0.data.len();
    c.expect(op::READ, sectors - 1, 2, 0, Status::OutOfRange)?;
    c.expect(op::WRITE, sectors, 1, 0, Status::OutOfRange)?;
    c.expect(op::READ, u64::MAX, 1, 0, Status::OutOfRange)?;
    c.expect(op::READ, 0, 1, region - 256, Status::BadBuffer)?;
    c.expect(op::READ, 0, 1, u64::MAX - 100, Status::BadBuffer)?;
    c.expect(op::READ, 0, 0x10_0000, 0, Status::BadBuffer)?;
    c.expect(0x77, 0, 1, 0, Status::BadOp)?;
    println!("blk_out_of_range: 7 bad requests, 7 errors");
    let mut buf = [0u8; 4096];
    c.expect(op::READ, sectors - 8, 8, 0, Status::Ok)?;
    c.check((sectors - 8) * SECTOR, 4096, testdata::fresh, &mut buf)?;
    println!("blk_out_of_range: the last 4 KiB read back right after them");
    Ok(())
}

/// Prints the block figures (`KAAL-BENCH` lines, read by `cargo xtask
/// bench`): 64 KiB reads as MiB per second of virtual time, and the ticks of
/// a one-sector read (the cost of a request beyond its data).
fn bench(c: &mut Client, clock: Clock) -> Result<(), &'static str> {
    let sectors = c.capacity()?;
    let per = (CHUNK as u64 / SECTOR) as u32;
    const READS: u64 = 64;
    // Warm up (first touches of the buffers), then measure.
    c.expect(op::READ, 0, per, 0, Status::Ok)?;
    let t0 = rdtsc();
    for i in 0..READS {
        let s = (i * u64::from(per)) % (sectors - u64::from(per));
        c.expect(op::READ, s, per, 0, Status::Ok)?;
    }
    let big = rdtsc() - t0;
    let t0 = rdtsc();
    for i in 0..READS {
        c.expect(op::READ, i, 1, 0, Status::Ok)?;
    }
    let small = (rdtsc() - t0) / READS;
    let mib_per_sec = clock.per_second(READS * CHUNK as u64, big) / (1 << 20);
    println!("KAAL-BENCH blk.read_mib_per_sec {mib_per_sec} MiB/s");
    println!("KAAL-BENCH blk.read64k_ticks {} ticks", big / READS);
    println!("KAAL-BENCH blk.request_overhead {small} ticks");
    Ok(())
}

extern crate alloc;

fn main(env: &Env) -> Result<(), &'static str> {
    let mut c = Client(BlockClient::new(env)?);
    match env.name() {
        "roundtrip" => roundtrip(&mut c),
        "hostile" => hostile(&mut c),
        "bench" => bench(&mut c, env.clock().ok_or("the TSC frequency is unknown")?),
        _ => Err("name me roundtrip, hostile or bench"),
    }
}

kaal_rt::component!(main);
