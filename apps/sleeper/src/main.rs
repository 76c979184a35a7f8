//! Sleeps through the timer driver (the timer protocol's rings, local names
//! `alarm` and `fired`) and says how long each sleep took by the TSC: a
//! tenth of a second, then once a second for as long as the system runs.
#![no_std]
#![no_main]

use core::time::Duration;

use kaal_client::timer::{TimerClient, TimerError};
use kaal_rt::{println, Env};

fn main(env: &Env) -> Result<(), TimerError> {
    let mut timer = TimerClient::new(env)?;
    let mut asked = Duration::from_millis(100);
    loop {
        let took = timer.clock.duration(timer.sleep(asked)?);
        println!(
            "{}: slept {} ms, measured {}.{} ms",
            env.name(),
            asked.as_millis(),
            took.as_millis(),
            took.as_micros() % 1000 / 100
        );
        asked = Duration::from_secs(1);
    }
}

kaal_rt::component!(main);
