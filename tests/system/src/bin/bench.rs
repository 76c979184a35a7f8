//! The benchmark image `cargo xtask bench` boots under `-icount shift=0`,
//! where rdtsc counts virtual time exactly. Each figure is the median of
//! timed runs (after a warm-up), except the ring figures (one long run,
//! divided per message), printed as `KAAL-BENCH <name> <value> <unit>`;
//! KaaL's figures come with the raw seL4 figures they compare against.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use kaal_broker::device::{DeviceSpec, Holder};
use kaal_broker::kernel::{Kernel, ObjSpec, ObjectType};
use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_rt::rdtsc;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::{Cap, Endpoint, Notification};
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::println;
use kaal_systest::demo::{call_once, call_once_regs, start_echo_server, start_echo_server_regs};
use kaal_systest::ring;

const WARMUP: usize = 20;

/// Times `op` `n` times after a warm-up and returns the median in ticks.
/// `op` returns the ticks of the part it wants timed.
fn median(n: usize, mut op: impl FnMut() -> Result<u64, RootError>) -> Result<u64, RootError> {
    for _ in 0..WARMUP {
        op()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(op()?);
    }
    samples.sort_unstable();
    Ok(samples.get(n / 2).copied().unwrap_or(0))
}

/// Times the whole of `op`.
fn timed(mut op: impl FnMut() -> Result<(), RootError>) -> impl FnMut() -> Result<u64, RootError> {
    move || {
        let t0 = rdtsc();
        op()?;
        Ok(rdtsc().wrapping_sub(t0))
    }
}

fn report(name: &str, value: u64, unit: &str) {
    println!("KAAL-BENCH {name} {value} {unit}");
}

/// Messages per ring run: large enough that the start and the end are noise.
const RING_MESSAGES: u64 = 1 << 17;

/// `count * scale / of`, rounded to the nearest integer (0 if `of` is 0).
fn per(count: u64, scale: u64, of: u64) -> u64 {
    (count.saturating_mul(scale) + of / 2)
        .checked_div(of)
        .unwrap_or(0)
}

/// Words of the raw long-message round trip.
const WORDS: usize = 9;

/// Replies to each call with as many words as it carried, the first
/// transformed (the rest stay in the IPC buffer, which the kernel copies).
extern "C" fn words_server(ep: u64, _tcb: u64) -> ! {
    let ep = Endpoint::from_cptr(ep);
    let mut mrs = [0; 4];
    let (mut info, _) = ep.recv_regs(&mut mrs);
    loop {
        let [v, b, c, d] = mrs;
        mrs = [kaal_interfaces::echo::transform(v), b, c, d];
        (info, _) = ep.reply_recv_regs(MessageInfo::new(0, info.length()), &mut mrs);
    }
}

/// One round trip of `words` words: writes them, reads the reply's back.
fn call_words(ep: Endpoint, v: u64, words: usize) -> Result<u64, RootError> {
    let mut mrs = [v, 1, 2, 3];
    for i in 4..words {
        ipc::set_mr(i, i as u64);
    }
    let reply = ep.call_regs(MessageInfo::new(0, words), &mut mrs);
    let sum = (4..reply.length()).fold(0, |s, i| s ^ ipc::mr(i));
    if reply.length() != words || sum == u64::MAX {
        return Err(RootError::Check("long reply has the wrong shape"));
    }
    let [w, ..] = mrs;
    Ok(w)
}

/// A ratio printed with three decimals.
struct Milli(u64);

impl Milli {
    fn ratio(a: u64, b: u64) -> Self {
        Milli(per(a, 1000, b))
    }
}

impl core::fmt::Display for Milli {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;

    // Raw seL4 IPC between two threads.
    let ep = start_echo_server(&mut broker)?;
    let mut v = 0;
    let rt = median(
        10_000,
        timed(|| {
            v = call_once(ep, v)?;
            Ok(())
        }),
    )?;
    report("sel4.call_replyrecv", rt, "ticks");

    // The same, with the value in CPU registers only (as the RPC stubs pass it).
    let ep_regs = start_echo_server_regs(&mut broker)?;
    let mut r = 0;
    let rt_regs = median(
        10_000,
        timed(|| {
            r = call_once_regs(ep_regs, r)?;
            Ok(())
        }),
    )?;
    report("sel4.call_replyrecv_regs", rt_regs, "ticks");

    // The same round trip through generated RPC stubs and dispatch.
    let rpc = kaal_systest::demo::start_rpc_server(&mut broker)?;
    let client = kaal_systest::demo::EchoClient(rpc);
    let mut w = 0;
    let rpc_rt = median(
        10_000,
        timed(|| {
            w = client.echo(w).map_err(|_| RootError::Check("RPC echo"))?;
            Ok(())
        }),
    )?;
    report("ipc.rpc_roundtrip", rpc_rt, "ticks");
    println!(
        "ratio ipc.rpc_roundtrip / sel4.call_replyrecv_regs = {}",
        Milli::ratio(rpc_rt, rt_regs)
    );
    println!(
        "ratio ipc.rpc_roundtrip / sel4.call_replyrecv = {}",
        Milli::ratio(rpc_rt, rt)
    );

    // Nine words each way, five of them through the IPC buffer (seL4's slow
    // path), raw and then as 64 bytes through `reverse` (length word and
    // eight data words).
    let ep_words: Endpoint = broker.alloc()?;
    kaal_systest::thread::spawn(&mut broker, words_server, ep_words.cptr(), 255)?;
    let mut x = 0;
    let rt_words = median(
        10_000,
        timed(|| {
            x = call_words(ep_words, x, WORDS)?;
            Ok(())
        }),
    )?;
    report("sel4.call_replyrecv_9words", rt_words, "ticks");
    let mut bytes = [0x5a_u8; 64];
    let rpc_bytes = median(
        10_000,
        timed(|| {
            bytes = client
                .reverse(&bytes)
                .ok()
                .and_then(|b| b.as_slice().first_chunk::<64>().copied())
                .ok_or(RootError::Check("RPC reverse"))?;
            Ok(())
        }),
    )?;
    report("ipc.rpc_bytes64_roundtrip", rpc_bytes, "ticks");
    println!(
        "ratio ipc.rpc_bytes64_roundtrip / sel4.call_replyrecv_9words = {}",
        Milli::ratio(rpc_bytes, rt_words)
    );

    let ntfn: Notification = broker.alloc()?;
    let sw = median(
        10_000,
        timed(|| {
            ntfn.signal();
            ntfn.wait();
            Ok(())
        }),
    )?;
    report("sel4.signal_wait", sw, "ticks");

    // Raw retype and delete of an endpoint, from an untyped of its size.
    let ut = broker.alloc_object(ObjSpec::untyped(
        ObjSpec::of(ObjectType::Endpoint).mem_bits(),
    ))?;
    let slot = broker.alloc_slot()?;
    let spec = ObjSpec::of(ObjectType::Endpoint);
    let k = broker.kernel();
    let err = |what| move |error| RootError::Kernel { what, error };
    let retype = median(1000, || {
        let t0 = rdtsc();
        k.retype(ut, spec, slot, 1).map_err(err("Untyped_Retype"))?;
        let t = rdtsc().wrapping_sub(t0);
        k.delete(slot).map_err(err("CNode_Delete"))?;
        Ok(t)
    })?;
    report("sel4.untyped_retype", retype, "ticks");
    let delete = median(1000, || {
        k.retype(ut, spec, slot, 1).map_err(err("Untyped_Retype"))?;
        let t0 = rdtsc();
        k.delete(slot).map_err(err("CNode_Delete"))?;
        Ok(rdtsc().wrapping_sub(t0))
    })?;
    report("sel4.cnode_delete", delete, "ticks");

    // The broker's endpoint allocation and free.
    let ep_cycle = median(
        1000,
        timed(|| {
            let e: Endpoint = broker.alloc()?;
            broker.free(e.cptr())?;
            Ok(())
        }),
    )?;
    report("broker.endpoint_alloc_free", ep_cycle, "ticks");

    // Device requests: a first request (released after each run), then cached.
    let com1 = DeviceSpec::Serial { port: 0 };
    let first = median(200, || {
        let t0 = rdtsc();
        broker.request_device(Holder::ROOT, com1)?;
        let t = rdtsc().wrapping_sub(t0);
        broker.release_device(Holder::ROOT, com1)?;
        Ok(t)
    })?;
    report("broker.device_request_first", first, "ticks");
    broker.request_device(Holder::ROOT, com1)?;
    let cached = median(
        10_000,
        timed(|| {
            broker.request_device(Holder::ROOT, com1)?;
            Ok(())
        }),
    )?;
    report("broker.device_request_cached", cached, "ticks");

    // A shared ring between two threads, end to end, per message.
    for (batch, name) in [
        (1, "ipc.ring_push_pop_batch1"),
        (64, "ipc.ring_push_pop_batch64"),
    ] {
        let t = ring::transfer(&mut broker, RING_MESSAGES, batch)?;
        println!(
            "ring batch {batch}: {} messages in {} ticks, {} signals (producer {}, consumer {})",
            t.messages,
            t.ticks,
            t.signals(),
            t.producer_signals,
            t.consumer_signals
        );
        report(name, per(t.ticks, 1, t.messages), "ticks_per_msg");
        if batch == 64 {
            let signals = per(t.signals(), 1000, t.messages);
            report("ipc.ring_signals_per_msg_batch64", signals, "per_1000_msgs");
        }
    }

    // Spawning a component from its ELF program (the `hello` component of
    // the spawn_stop system: 16 KiB stack and heap), and stopping it again
    // after it ran to its exit.
    let mut sys = system::load(&mut broker, kaal_root::include_system!("spawn_bench"))?;
    let mut spawns = Vec::with_capacity(SPAWNS);
    let mut stops = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let t0 = rdtsc();
        sys.spawn(&mut broker, 0).map_err(|e| {
            println!("bench: spawn failed: {e}");
            RootError::Check("spawn")
        })?;
        spawns.push(rdtsc().wrapping_sub(t0));
        let mut exited = false;
        sys.supervise(&mut broker, |_, e| {
            exited = matches!(e, Event::Exited { code: 0, .. });
            Control::Finish
        })?;
        if !exited {
            return Err(RootError::Check(
                "the spawned component did not exit cleanly",
            ));
        }
        let t0 = rdtsc();
        sys.stop(&mut broker, 0)?;
        stops.push(rdtsc().wrapping_sub(t0));
    }
    report("component.spawn", middle(&mut spawns), "ticks");
    report("component.stop", middle(&mut stops), "ticks");

    Ok(())
}

/// Spawn/stop cycles timed (the first ones also build the root task's
/// mapping window, so the median is the steady state).
const SPAWNS: usize = 21;

fn middle(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

kaal_rt::root_task!(main);
