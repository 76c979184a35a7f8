//! A client of the timer protocol: sleeps 1, 10, 100 and 250 ms through the
//! timer driver, measuring each sleep against the TSC (none may be shorter
//! than asked; the 100 ms one must end by 150 ms); then checks that alarms
//! asked together fire in deadline order, and that one more than the
//! driver's queue holds is refused while the others still fire.
#![no_std]
#![no_main]

use core::time::Duration;

use kaal_client::timer::TimerClient;
use kaal_protocols::timer::{AlarmFired, QUEUE_ALARMS};
use kaal_rt::time::Instant;
use kaal_rt::{println, Env};

const SLEEPS_MS: [u64; 4] = [1, 10, 100, 250];
/// The bound for the 100 ms sleep.
const SLEEP_100_MAX_MS: u64 = 150;

/// A duration in milliseconds with one decimal.
struct Ms(Duration);

impl core::fmt::Display for Ms {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{}", us / 1000, us % 1000 / 100)
    }
}

fn main(env: &Env) -> Result<(), &'static str> {
    let mut t = TimerClient::new(env)?;
    let clock = t.clock;

    for ms in SLEEPS_MS {
        let d = Duration::from_millis(ms);
        let ticks = t.sleep(d)?;
        let measured = Ms(clock.duration(ticks));
        let max = Duration::from_millis(SLEEP_100_MAX_MS);
        if ticks < clock.ticks(d) || (ms == 100 && ticks > clock.ticks(max)) {
            println!("timer_sleep: FAILED: sleep of {ms} ms measured {measured} ms of TSC time");
            return Err("a sleep was out of bounds");
        }
        println!("timer_sleep: slept {ms} ms, measured {measured} ms of TSC time");
    }

    // Three alarms at once, asked out of order.
    let start = Instant::now();
    let mut asked = [(0u64, 0u64); 3];
    for (slot, ms) in asked.iter_mut().zip([30u64, 10, 20]) {
        let deadline = clock.after(start, Duration::from_millis(ms));
        *slot = (t.ask(deadline)?, deadline.ticks());
    }
    for (token, deadline) in [asked[1], asked[2], asked[0]] {
        let f = t.answer()?;
        if f.token != token || !f.is_fired() || f.at_tsc < deadline {
            println!("timer_sleep: FAILED: expected alarm {token} next, got {f:?}");
            return Err("alarms out of order");
        }
    }
    println!("timer_sleep: 3 alarms asked at once fired in deadline order");

    // One more alarm than the queue holds, all for the same time: the last
    // is refused at once, the others fire in the order they were asked.
    let deadline = clock.after(Instant::now(), Duration::from_millis(100));
    let first = t.send_at(&[deadline; QUEUE_ALARMS + 1])?;
    let refused = t.answer()?;
    if refused.token != t.last_token() || refused.status != AlarmFired::QUEUE_FULL {
        println!("timer_sleep: FAILED: expected a refusal first, got {refused:?}");
        return Err("no refusal");
    }
    for token in first..t.last_token() {
        let f = t.answer()?;
        if f.token != token || !f.is_fired() || f.at_tsc < deadline.ticks() {
            println!("timer_sleep: FAILED: expected alarm {token}, got {f:?}");
            return Err("queued alarms lost");
        }
    }
    println!(
        "timer_sleep: alarm {} was refused (queue of {QUEUE_ALARMS} full), the {QUEUE_ALARMS} others fired in order",
        QUEUE_ALARMS + 1
    );
    Ok(())
}

kaal_rt::component!(main);
