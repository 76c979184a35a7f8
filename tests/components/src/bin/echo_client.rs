//! Calls the echo service: every answer must be right and carry this
//! client's own badge, which the service reports back.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{transform, EchoClient};
use kaal_rt::Env;
use kaal_sel4::println;

const CALLS: u64 = 1000;

fn main(env: &Env) -> Result<(), &'static str> {
    let (ep, badge) = env.client("echo").map_err(|_| "no `echo` endpoint")?;
    let echo = EchoClient(ep);
    let seen = echo.whoami().map_err(|_| "whoami failed")?;
    if seen != badge {
        println!("{}: server saw badge {seen}, mine is {badge}", env.name());
        return Err("the server saw another badge");
    }
    for v in 0..CALLS {
        let x = v ^ (badge << 32);
        if echo.echo(x).map_err(|_| "echo failed")? != transform(x) {
            return Err("wrong echo");
        }
    }
    println!(
        "{}: {CALLS} calls answered, server knows me as badge {badge}",
        env.name()
    );
    Ok(())
}

kaal_rt::component!(main);
