//! Serves the echo interface on its `echo` endpoint, forever.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{echo_dispatch, EchoService};
use kaal_rt::println;
use kaal_rt::{CapError, Env};

fn main(env: &Env) -> Result<(), CapError<'static>> {
    let ep = env.server("echo")?;
    println!("{}: serving (restarts: {})", env.name(), env.restarts());
    let mut service = EchoService;
    kaal_rpc::serve(ep, |badge, req, buf| {
        echo_dispatch(&mut service, badge, req, buf)
    })
}

kaal_rt::component!(main);
