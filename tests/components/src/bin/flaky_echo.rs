//! The echo service, except that its first incarnation reads address 0 in
//! the middle of its 100th request, holding that client's reply: the
//! supervisor restarts it and the client's call returns `ServerGone`.
//! Before it answers its 20th request (a byte string the client checks,
//! reversed in the IPC buffer) it prints a line: printing must leave the
//! reply there intact.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{echo_dispatch, EchoService};
use kaal_rt::println;
use kaal_rt::{CapError, Env};

const FAULT_AT: u64 = 100;
const PRINT_AT: u64 = 20;

fn main(env: &Env) -> Result<(), CapError<'static>> {
    let ep = env.server("echo")?;
    let first = env.restarts() == 0;
    println!("{}: serving (restarts: {})", env.name(), env.restarts());
    let mut service = EchoService;
    let mut served = 0u64;
    kaal_rpc::serve(ep, |badge, req, buf| {
        served += 1;
        if first && served == FAULT_AT {
            let v: u64;
            // SAFETY: reading address 0 faults (nothing is mapped there);
            // that is the point.
            unsafe { core::arch::asm!("mov {}, qword ptr [0]", out(reg) v) };
            println!("flaky_echo: read {v} from address 0?");
        }
        let reply = echo_dispatch(&mut service, badge, req, buf);
        if first && served == PRINT_AT {
            println!("flaky_echo: a line printed between building reply {PRINT_AT} and sending it");
        }
        reply
    })
}

kaal_rt::component!(main);
