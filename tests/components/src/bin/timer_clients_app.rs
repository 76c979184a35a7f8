//! A client of the timer protocol sharing the PIT driver with others; what
//! it does depends on its name:
//! - `fast` and `slow`: sleep in a loop through the driver ([`FAST_MS`],
//!   [`SLOW_MS`] each), measuring each sleep against the TSC (none may be
//!   shorter than asked, nor late by more than [`MAX_MEAN_LATE_MS`] on
//!   average), until [`AFTER`] sleeps have ended after the hostile client's
//!   mark on the raw ring `marked`;
//! - `hostile`: sleeps once on its raw rings (`alarm`, `fired`), floods the
//!   driver with alarms whose answers it never reads, then writes garbage
//!   into the producer index of its `alarm` ring and pushes one item on
//!   `mark0` and `mark1` (the others' `marked`).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use kaal_client::timer::TimerClient;
use kaal_protocols::timer::{AlarmFired, AlarmRequest, QUEUE_ALARMS, RING_SLOTS};
use kaal_rt::time::Instant;
use kaal_rt::{println, Env};
use kaal_test_components::{Item, RING_SLOTS as MARK_SLOTS};

const FAST_MS: u64 = 5;
const SLOW_MS: u64 = 13;
/// Sleeps each sleeper must finish after the hostile client's mark.
const AFTER: u32 = 10;
/// Sleeps before the mark after which a sleeper gives up on it.
const BEFORE_MAX: u32 = 2000;
/// The mean lateness allowed: a driver armed for another client's later
/// deadline would make the fast client late by far more.
const MAX_MEAN_LATE_MS: u64 = 4;

fn sleeper(env: &Env, name: &str, ms: u64) -> Result<(), &'static str> {
    let mut t = TimerClient::new(env)?;
    let clock = t.clock;
    let mut marked = env
        .ring_rx::<Item, MARK_SLOTS>("marked")
        .map_err(|_| "no `marked` ring")?;
    let d = Duration::from_millis(ms);
    let (mut before, mut after, mut late) = (0u32, 0u32, 0u64);
    let mut mark_seen = false;
    while after < AFTER {
        if !mark_seen {
            mark_seen = marked
                .ring
                .pop()
                .map_err(|_| "corrupt `marked` ring")?
                .is_some();
            marked.release();
        }
        let ticks = t.sleep(d)?;
        let Some(over) = ticks.checked_sub(clock.ticks(d)) else {
            println!(
                "timer_clients: {name}: FAILED: a sleep of {ms} ms lasted {} us",
                clock.duration(ticks).as_micros()
            );
            return Err("a sleep was short");
        };
        late = late.saturating_add(over);
        if mark_seen {
            after += 1;
        } else if before >= BEFORE_MAX {
            return Err("the hostile client never marked");
        } else {
            before += 1;
        }
    }
    let sleeps = before + after;
    let mean_late = clock.duration(late / u64::from(sleeps.max(1)));
    println!(
        "timer_clients: {name}: {sleeps} sleeps of {ms} ms, {after} after the hostile client's corrupt ring, none short, {} us late on average",
        mean_late.as_micros()
    );
    if mean_late > Duration::from_millis(MAX_MEAN_LATE_MS) {
        return Err("sleeps were late");
    }
    Ok(())
}

fn hostile(env: &Env) -> Result<(), &'static str> {
    let clock = env.clock().ok_or("the TSC frequency is unknown")?;
    let (alarm_mem, _) = env.shared_memory("alarm").map_err(|_| "no `alarm` ring")?;
    let mut alarm = env
        .ring_tx::<AlarmRequest, RING_SLOTS>("alarm")
        .map_err(|_| "no `alarm` ring")?;
    let mut fired = env
        .ring_rx::<AlarmFired, RING_SLOTS>("fired")
        .map_err(|_| "no `fired` ring")?;
    let mut marks = [
        env.ring_tx::<Item, MARK_SLOTS>("mark0")
            .map_err(|_| "no `mark0` ring")?,
        env.ring_tx::<Item, MARK_SLOTS>("mark1")
            .map_err(|_| "no `mark1` ring")?,
    ];

    // An honest alarm first: the driver serves this client like the others.
    let deadline = clock.after(Instant::now(), Duration::from_millis(20));
    let ask = AlarmRequest {
        token: 1,
        deadline_tsc: deadline.ticks(),
    };
    alarm.send_all(&[ask]).map_err(|_| "corrupt `alarm` ring")?;
    let f = fired.recv().map_err(|_| "corrupt `fired` ring")?;
    fired.release();
    if f.token != 1 || !f.is_fired() || f.at_tsc < deadline.ticks() {
        return Err("the honest alarm was not answered");
    }
    println!("timer_clients: hostile: served one alarm");

    // A flood: a queue's worth of alarms due at once, answers never read,
    // so the driver stalls on this client's full `fired` ring.
    let now = Instant::now().ticks();
    let flood = [AlarmRequest {
        token: 2,
        deadline_tsc: now,
    }; QUEUE_ALARMS];
    alarm.send_all(&flood).map_err(|_| "corrupt `alarm` ring")?;
    println!("timer_clients: hostile: {QUEUE_ALARMS} alarms asked, answers left unread");

    println!("timer_clients: hostile: corrupting the alarm ring");
    // The producer index is the ring header's first word (kaal-ring's
    // layout): claim far more items than the ring holds.
    // SAFETY: the ring memory is mapped read-write here for the life of the
    // program, aligned for the header's atomics.
    let head = unsafe { &*(alarm_mem as *const AtomicU32) };
    head.store(0x7fff_0000, Ordering::Release);
    alarm.peer.0.signal();
    for m in marks.iter_mut() {
        m.send_all(&[Item { seq: 1, value: 1 }])
            .map_err(|_| "corrupt mark ring")?;
    }
    Ok(())
}

fn main(env: &Env) -> Result<(), &'static str> {
    match env.name() {
        "fast" => sleeper(env, "fast", FAST_MS),
        "slow" => sleeper(env, "slow", SLOW_MS),
        "hostile" => hostile(env),
        _ => Err("no role of that name (fast, slow, hostile)"),
    }
}

kaal_rt::component!(main);
