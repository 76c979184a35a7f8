//! Calls the echo service: every answer must be right and carry this
//! client's own badge, which the service reports back; byte strings come
//! back reversed (through the IPC buffer), an empty one is refused with the
//! service's own error. A call that returns `ServerGone` (the service
//! stopped or restarted before answering) is counted and tried again.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{transform, EchoClient, EchoError};
use kaal_rpc::{Error, RpcError};
use kaal_rt::println;
use kaal_rt::Env;

const CALLS: u64 = 1000;
/// Byte strings reversed, of 1, 9, 17, ... bytes.
const STRINGS: usize = 32;
/// Retries of one call before giving up.
const RETRIES: u32 = 100;

/// Calls until the answer is not `ServerGone`, counting those in `gone`;
/// the answer, or the service's own error.
fn retry<T>(
    gone: &mut u64,
    mut call: impl FnMut() -> Result<T, Error<EchoError>>,
) -> Result<Result<T, EchoError>, &'static str> {
    for _ in 0..RETRIES {
        match call() {
            Err(Error::Rpc(RpcError::ServerGone)) => *gone += 1,
            Ok(v) => return Ok(Ok(v)),
            Err(Error::App(e)) => return Ok(Err(e)),
            Err(Error::Rpc(_)) => return Err("the call failed"),
        }
    }
    Err("the server stayed away")
}

fn main(env: &Env) -> Result<(), &'static str> {
    let (ep, badge) = env.client("echo").map_err(|_| "no `echo` endpoint")?;
    let echo = EchoClient(ep);
    let mut gone = 0u64;
    let seen =
        retry(&mut gone, || echo.whoami().map_err(Error::Rpc))?.map_err(|_| "whoami refused")?;
    if seen != badge {
        println!("{}: server saw badge {seen}, mine is {badge}", env.name());
        return Err("the server saw another badge");
    }
    let mut data = [0u8; 8 * STRINGS];
    for (i, d) in data.iter_mut().enumerate() {
        *d = (i as u8) ^ (badge as u8);
    }
    for n in (0..STRINGS).map(|k| 8 * k + 1) {
        let sent = data.get(..n).ok_or("no such string")?;
        let got = retry(&mut gone, || echo.reverse(sent))?.map_err(|_| "reverse refused")?;
        if !got.iter().eq(sent.iter().rev()) {
            return Err("wrong reverse");
        }
    }
    if retry(&mut gone, || echo.reverse(&[]))?.err() != Some(EchoError::Empty) {
        return Err("an empty reverse was not refused with Empty");
    }
    for v in 0..CALLS {
        let x = v ^ (badge << 32);
        let got = retry(&mut gone, || echo.echo(x).map_err(Error::Rpc))?.map_err(|_| "refused")?;
        if got != transform(x) {
            return Err("wrong echo");
        }
    }
    println!(
        "{}: {STRINGS} byte strings reversed, an empty one refused with {:?}",
        env.name(),
        EchoError::Empty
    );
    println!(
        "{}: {CALLS} calls answered, server knows me as badge {badge}; {gone} retried after the server went away",
        env.name()
    );
    Ok(())
}

kaal_rt::component!(main);
