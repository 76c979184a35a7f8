//! Tries authority it was not given. By name: the runtime refuses a
//! capability the manifest does not grant. By slot number: every invocation
//! of a slot it does not hold must fail, including the slots where the root
//! task keeps its own powerful capabilities (IRQ control at 4, ASID control
//! at 5, the I/O port capability at 7 in seL4 5.0), and a CPtr beyond its
//! CSpace. What it was granted (the `echo` client endpoint) still works.
#![no_std]
#![no_main]

use kaal_interfaces::echo::EchoClient;
use kaal_rt::println;
use kaal_rt::{CapError, Env};
use kaal_sel4::cap::{Cap, IoPort, IrqControl, Tcb};

/// Slots the prober does not hold (its CSpace has 256 slots; 2 is `echo`).
const NOT_HELD: [u64; 8] = [0, 3, 4, 5, 7, 100, 255, 0x1_0000];

fn main(env: &Env) -> Result<(), &'static str> {
    match env.server("irq_control") {
        Err(CapError::NotGranted(_)) => {}
        _ => return Err("an ungranted capability was handed out by name"),
    }
    let (ep, _) = env.client("echo").map_err(|_| "no `echo` endpoint")?;
    let mut refused = 0;
    for slot in NOT_HELD {
        let results = [
            Tcb::from_cptr(slot).suspend().err(),
            IoPort::from_cptr(slot).out8(0x80, 0).err(),
            IrqControl::from_cptr(slot)
                .get_ioapic(
                    kaal_sel4::cap::CNode::from_cptr(slot),
                    1,
                    kaal_sel4::cap::IoApicLine {
                        pin: 1,
                        level_triggered: false,
                        active_low: false,
                    },
                    41,
                )
                .err(),
        ];
        for r in results {
            match r {
                Some(e) => {
                    refused += 1;
                    if slot == 4 {
                        println!("prober: slot {slot:#x} refused: {e:?}");
                    }
                }
                None => {
                    println!("prober: invocation of slot {slot:#x} succeeded");
                    return Err("an invocation of a capability not held succeeded");
                }
            }
        }
    }
    let echo = EchoClient(ep);
    echo.echo(1)
        .map_err(|_| "the granted endpoint does not work")?;
    println!(
        "cap_confinement: {refused} of {} invocations of capabilities not held were refused; the granted endpoint works",
        NOT_HELD.len() * 3
    );
    Ok(())
}

kaal_rt::component!(main);
