//! Holds whatever its manifest grants and exits at once: the component of
//! `spawn_stop_no_leak` whose spawn and teardown the test counts.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

fn main(env: &Env) -> Result<(), &'static str> {
    println!("{}: started (restarts: {})", env.name(), env.restarts());
    Ok(())
}

kaal_rt::component!(main);
