//! The other end of a test's ring and endpoint: it takes nothing and never
//! ends, so the channels it holds stay bound while the peer comes and goes.
#![no_std]
#![no_main]

use kaal_rt::Env;

fn main(env: &Env) -> Result<(), &'static str> {
    loop {
        env.notification().wait();
    }
}

kaal_rt::component!(main);
