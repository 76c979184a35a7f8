//! The file-system benchmark (system `fs_bench`, in the device benchmark
//! image): through the VFS on its `fs` channel, on the harness's bench tree.
//! Prints `KAAL-BENCH` lines, read by `cargo xtask bench`:
//! - `fs.read_mib_per_sec`: the 16 MiB bench file read in 64 KiB requests,
//!   cold (the first read since the VFS mounted);
//! - `fs.read_cached_mib_per_sec`: the same again, all of it in the cache;
//! - `fs.stat_ticks`: one stat of that (cached) path, the mean of many;
//! - `fs.write_mib_per_sec`: 16 MiB written to a new file in 64 KiB
//!   requests, then sync, timed to the end of the sync;
//! - `fs.create_per_sec`: empty files created (open CREATE, close) in one
//!   directory.
//!
//! Each read is checked against the tree's pattern after its timing (the
//! check is not timed), so a fast wrong answer fails the benchmark.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;

use kaal_client::file::{flags, Files};
use kaal_rt::time::Clock;
use kaal_rt::{println, rdtsc, Env};
use kaal_test_components::fs::{check_file, fail, Check};
use kaal_test_patterns::fs::{self as tree, Kind};

/// Bytes per read or write request (the lent region is as large).
const CHUNK: usize = 64 * 1024;
/// Bytes the write figure writes.
const WRITE_BYTES: u64 = 16 << 20;
/// Files the create figure creates.
const CREATES: u64 = 1000;
/// Stats the stat figure averages over (after as many to warm up).
const STATS: u64 = 1000;

fn mib_per_sec(clock: Clock, bytes: u64, ticks: u64) -> u64 {
    clock.per_second(bytes, ticks) / (1 << 20)
}

/// Reads the file at `path` whole in `buf`-sized requests; its ticks.
fn timed_read(fs: &Files, path: &str, len: u64, buf: &mut [u8]) -> Check<u64> {
    let t0 = rdtsc();
    let fd = fs
        .open(path, flags::READ_ONLY, 0)
        .map_err(|e| fail(path, e))?;
    let mut total = 0u64;
    loop {
        let n = fs.read(fd, buf).map_err(|e| fail(path, e))?;
        total += n as u64;
        if n < buf.len() {
            break;
        }
    }
    fs.close(fd).map_err(|e| fail(path, e))?;
    let ticks = rdtsc() - t0;
    if total != len {
        return Err(format!("{path}: read {total} bytes, expected {len}"));
    }
    Ok(ticks)
}

fn bench(fs: &Files, clock: Clock) -> Check {
    let mut buf = vec![0u8; CHUNK];
    let (path, len) = tree::BENCH_FILE;
    let seed = match tree::find(tree::BENCH_TREE, path).map(|e| e.kind) {
        Some(Kind::File { seed, .. }) => seed,
        _ => return Err(String::from("the bench tree has no bench file")),
    };

    let cold = timed_read(fs, path, len, &mut buf)?;
    let cached = timed_read(fs, path, len, &mut buf)?;
    check_file(fs, path, len, seed, &mut buf)?;
    println!(
        "KAAL-BENCH fs.read_mib_per_sec {} MiB/s",
        mib_per_sec(clock, len, cold)
    );
    println!(
        "KAAL-BENCH fs.read_cached_mib_per_sec {} MiB/s",
        mib_per_sec(clock, len, cached)
    );

    for _ in 0..STATS {
        fs.stat(path).map_err(|e| fail(path, e))?;
    }
    let t0 = rdtsc();
    for _ in 0..STATS {
        fs.stat(path).map_err(|e| fail(path, e))?;
    }
    let stat = (rdtsc() - t0) / STATS;
    println!("KAAL-BENCH fs.stat_ticks {stat} ticks");

    // The content is made before the timing: the figure is the VFS's.
    for (i, b) in buf.iter_mut().enumerate() {
        *b = tree::content(0x5002, i as u64);
    }
    let out = "/written.bin";
    let t0 = rdtsc();
    let fd = fs
        .open(out, flags::WRITE_ONLY | flags::CREATE, 0o644)
        .map_err(|e| fail(out, e))?;
    let mut at = 0u64;
    while at < WRITE_BYTES {
        let n = fs.write(fd, &buf).map_err(|e| fail(out, e))?;
        if n != buf.len() {
            return Err(format!("{out}: wrote {n} of {} bytes at {at}", buf.len()));
        }
        at += n as u64;
    }
    fs.close(fd).map_err(|e| fail(out, e))?;
    fs.sync().map_err(|e| fail("sync", e))?;
    let write = rdtsc() - t0;
    let size = fs.stat(out).map_err(|e| fail(out, e))?.size;
    if size != WRITE_BYTES {
        return Err(format!("{out}: {size} bytes, expected {WRITE_BYTES}"));
    }
    println!(
        "KAAL-BENCH fs.write_mib_per_sec {} MiB/s",
        mib_per_sec(clock, WRITE_BYTES, write)
    );

    let dir = "/many";
    fs.mkdir(dir, 0o755).map_err(|e| fail(dir, e))?;
    let names: vec::Vec<String> = (0..CREATES).map(|i| format!("{dir}/f{i}")).collect();
    let f = flags::WRITE_ONLY | flags::CREATE | flags::EXCLUSIVE;
    let t0 = rdtsc();
    for p in &names {
        let fd = fs.open(p, f, 0o644).map_err(|e| fail(p, e))?;
        fs.close(fd).map_err(|e| fail(p, e))?;
    }
    let create = rdtsc() - t0;
    let made = kaal_test_components::fs::list(fs, dir)?.len() as u64;
    if made != CREATES {
        return Err(format!("{dir} holds {made} files, expected {CREATES}"));
    }
    println!(
        "KAAL-BENCH fs.create_per_sec {} files/s",
        clock.per_second(CREATES, create)
    );
    fs.sync().map_err(|e| fail("sync", e))?;
    println!("fs_bench: {len} bytes read twice and checked, {WRITE_BYTES} written, {CREATES} files created");
    Ok(())
}

fn main(env: &Env) -> Result<(), String> {
    let fs = Files::new(env, "fs").map_err(|e| fail("fs", e))?;
    let clock = env
        .clock()
        .ok_or_else(|| String::from("the TSC frequency is unknown"))?;
    bench(&fs, clock).inspect_err(|e| println!("fs_bench: FAILED: {e}"))
}

kaal_rt::component!(main);
