//! Calls the echo service: every answer must be right and carry this
//! client's own badge, which the service reports back. A call that returns
//! `ServerGone` (the service stopped or restarted before answering) is
//! counted and tried again.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{transform, EchoClient};
use kaal_rpc::RpcError;
use kaal_rt::println;
use kaal_rt::Env;

const CALLS: u64 = 1000;
/// Retries of one call before giving up.
const RETRIES: u32 = 100;

fn main(env: &Env) -> Result<(), &'static str> {
    let (ep, badge) = env.client("echo").map_err(|_| "no `echo` endpoint")?;
    let echo = EchoClient(ep);
    let mut gone = 0u64;
    let mut retry = |call: &mut dyn FnMut() -> Result<u64, RpcError>| {
        for _ in 0..RETRIES {
            match call() {
                Err(RpcError::ServerGone) => gone += 1,
                Ok(v) => return Ok(v),
                Err(_) => return Err("the call failed"),
            }
        }
        Err("the server stayed away")
    };
    let seen = retry(&mut || echo.whoami())?;
    if seen != badge {
        println!("{}: server saw badge {seen}, mine is {badge}", env.name());
        return Err("the server saw another badge");
    }
    for v in 0..CALLS {
        let x = v ^ (badge << 32);
        if retry(&mut || echo.echo(x))? != transform(x) {
            return Err("wrong echo");
        }
    }
    println!(
        "{}: {CALLS} calls answered, server knows me as badge {badge}; {gone} retried after the server went away",
        env.name()
    );
    Ok(())
}

kaal_rt::component!(main);
