//! A client of the timer protocol: sleeps 1, 10, 100 and 250 ms through the
//! timer driver, measuring each sleep against the TSC (none may be shorter
//! than asked; the 100 ms one must end by 150 ms); then checks that alarms
//! asked together fire in deadline order, and that one more than the
//! driver's queue holds is refused while the others still fire.
#![no_std]
#![no_main]

use core::time::Duration;

use kaal_protocols::timer::{AlarmFired, AlarmRequest, QUEUE_ALARMS, RING_SLOTS};
use kaal_rt::time::{Clock, Instant};
use kaal_rt::{println, Env, RingRx, RingTx};

const SLEEPS_MS: [u64; 4] = [1, 10, 100, 250];
/// The bound for the 100 ms sleep.
const SLEEP_100_MAX_MS: u64 = 150;

struct Timer {
    clock: Clock,
    alarm: RingTx<AlarmRequest, RING_SLOTS>,
    fired: RingRx<AlarmFired, RING_SLOTS>,
    next_token: u64,
}

impl Timer {
    fn ask(&mut self, deadline: Instant) -> Result<u64, &'static str> {
        self.next_token += 1;
        let req = AlarmRequest {
            token: self.next_token,
            deadline_tsc: deadline.ticks(),
        };
        self.alarm
            .send_all(&[req])
            .map_err(|_| "corrupt alarm ring")?;
        Ok(self.next_token)
    }

    fn answer(&mut self) -> Result<AlarmFired, &'static str> {
        let f = self.fired.recv().map_err(|_| "corrupt fired ring")?;
        self.fired.release();
        Ok(f)
    }

    /// Sleeps `d`; returns the TSC ticks it took.
    fn sleep(&mut self, d: Duration) -> Result<u64, &'static str> {
        let start = Instant::now();
        let token = self.ask(self.clock.after(start, d))?;
        let f = self.answer()?;
        let end = Instant::now();
        if f.token != token || !f.is_fired() {
            println!("timer_sleep: FAILED: answer {f:?} for alarm {token}");
            return Err("wrong answer");
        }
        Ok(end.ticks_since(start))
    }
}

/// A duration in milliseconds with one decimal.
struct Ms(Duration);

impl core::fmt::Display for Ms {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{}", us / 1000, us % 1000 / 100)
    }
}

fn main(env: &Env) -> Result<(), &'static str> {
    let clock = env.clock().ok_or("the TSC frequency is unknown")?;
    let mut t = Timer {
        clock,
        alarm: env.ring_tx("alarm").map_err(|_| "no `alarm` ring")?,
        fired: env.ring_rx("fired").map_err(|_| "no `fired` ring")?,
        next_token: 0,
    };

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
    let first = t.next_token + 1;
    let requests: [AlarmRequest; QUEUE_ALARMS + 1] = core::array::from_fn(|i| AlarmRequest {
        token: first + i as u64,
        deadline_tsc: deadline.ticks(),
    });
    t.next_token += requests.len() as u64;
    t.alarm
        .send_all(&requests)
        .map_err(|_| "corrupt alarm ring")?;
    let refused = t.answer()?;
    if refused.token != t.next_token || refused.status != AlarmFired::QUEUE_FULL {
        println!("timer_sleep: FAILED: expected a refusal first, got {refused:?}");
        return Err("no refusal");
    }
    for token in first..t.next_token {
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
