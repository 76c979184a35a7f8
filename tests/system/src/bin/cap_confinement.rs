//! System test `cap_confinement`: the prober invokes capability slots it
//! does not hold (among them the slots of the root task's own IRQ control,
//! ASID control and I/O port capabilities). An empty slot of its CSpace: the
//! kernel answers with an error. A CPtr beyond its CSpace: a capability fault,
//! which the supervisor reports and answers with an error. The prober checks
//! that every invocation failed and that its one granted endpoint works.
#![no_std]
#![no_main]

use kaal_root::system::{self, Control, Event};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::fault::Fault;
use kaal_sel4::println;

/// Invocations the prober makes beyond its CSpace (CPtr 0x10000, 3 kinds).
const OUTSIDE: usize = 3;
const OUTSIDE_CPTR: u64 = 0x1_0000;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("cap_confinement"))?;
    let prober = sys.index("prober").ok_or(RootError::Check("no prober"))?;
    sys.start_all(&mut broker);
    let mut refused = 0;
    let mut all_outside = true;
    let mut result = None;
    sys.supervise(&mut broker, |_, e| {
        match e {
            Event::CapRefused { component, fault } if component == prober => {
                refused += 1;
                all_outside &= matches!(
                    fault,
                    Fault::Cap {
                        cptr: OUTSIDE_CPTR,
                        ..
                    }
                );
            }
            Event::Exited { component, code } if component == prober => result = Some(code),
            e => {
                println!("cap_confinement: unexpected {e:?}");
                result = Some(u64::MAX);
            }
        }
        if result.is_some() {
            Control::Finish
        } else {
            Control::Continue
        }
    })?;
    println!("cap_confinement: supervisor refused {refused} invocations");
    if result != Some(0) || refused != OUTSIDE || !all_outside {
        return Err(RootError::Check("confinement not shown"));
    }
    println!("cap_confinement: ok");
    Ok(())
}

kaal_rt::root_task!(main);
