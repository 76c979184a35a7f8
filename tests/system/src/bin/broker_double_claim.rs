//! System test `broker_double_claim`: a device claimed by one holder is
//! refused to another; the holder itself gets its bundle from the cache.
#![no_std]
#![no_main]

use kaal_broker::device::{DeviceSpec, Holder};
use kaal_broker::BrokerError;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let com1 = DeviceSpec::Serial { port: 0 };
    let (driver, intruder) = (Holder(1), Holder(2));
    let bundle = broker.request_device(driver, com1)?;
    match broker.request_device(intruder, com1) {
        Err(e @ BrokerError::AlreadyClaimed { holder, .. }) if holder == driver => {
            println!("broker_double_claim: second claim refused: {e}");
        }
        other => {
            println!("broker_double_claim: second claim gave {other:?}");
            return Err(RootError::Check("a second holder got COM1"));
        }
    }
    if broker.request_device(driver, com1)? != bundle {
        return Err(RootError::Check(
            "the holder's repeated request got another bundle",
        ));
    }
    broker.release_device(driver, com1)?;
    let again = broker.request_device(intruder, com1)?;
    if again.ioports.first().map(|p| p.first) != Some(0x3f8) {
        return Err(RootError::Check("COM1 after release"));
    }
    println!("broker_double_claim: ok");
    Ok(())
}

kaal_rt::root_task!(main);
