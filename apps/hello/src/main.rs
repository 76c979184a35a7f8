//! The smallest component: says hello through the console and exits.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

fn main(env: &Env) -> Result<(), &'static str> {
    println!("hello from `{}` (restarts: {})", env.name(), env.restarts());
    Ok(())
}

kaal_rt::component!(main);
