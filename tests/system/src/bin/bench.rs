//! The benchmark image `cargo xtask bench` boots under `-icount shift=0`,
//! where rdtsc counts virtual time exactly. Each figure is the median of
//! `ITERATIONS` timed runs, printed as `KAAL-BENCH <name> <value> <unit>`.
#![no_std]
#![no_main]

use kaal_root::demo::{call_once, start_echo_server};
use kaal_root::RootError;
use kaal_rt::rdtsc;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::Notification;
use kaal_sel4::println;

const ITERATIONS: usize = 10_000;
const WARMUP: usize = 100;

static mut SAMPLES: [u64; ITERATIONS] = [0; ITERATIONS];

/// Times `op` `ITERATIONS` times (after a warm-up) and returns the median.
fn median_ticks(mut op: impl FnMut() -> Result<(), RootError>) -> Result<u64, RootError> {
    for _ in 0..WARMUP {
        op()?;
    }
    // SAFETY: the benchmark runs on one thread; nothing else touches SAMPLES.
    let samples = unsafe { &mut *core::ptr::addr_of_mut!(SAMPLES) };
    for s in samples.iter_mut() {
        let t0 = rdtsc();
        op()?;
        *s = rdtsc().wrapping_sub(t0);
    }
    samples.sort_unstable();
    Ok(samples.get(ITERATIONS / 2).copied().unwrap_or(0))
}

fn report(name: &str, value: u64, unit: &str) {
    println!("KAAL-BENCH {name} {value} {unit}");
}

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut alloc = kaal_root::boot(bi)?;

    let ep = start_echo_server(&mut alloc)?;
    let mut v = 0;
    let rt = median_ticks(|| {
        v = call_once(ep, v)?;
        Ok(())
    })?;
    report("sel4.call_replyrecv", rt, "ticks");

    let ntfn: Notification = alloc.retype()?;
    let sw = median_ticks(|| {
        ntfn.signal();
        ntfn.wait();
        Ok(())
    })?;
    report("sel4.signal_wait", sw, "ticks");
    Ok(())
}

kaal_rt::root_task!(main);
