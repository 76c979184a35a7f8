//! The KaaL root task: the first and only trusted user-level program. It
//! reads BootInfo, prints the boot summary, builds the capability broker from
//! it, and spawns and supervises the components of its system image.
#![no_std]

extern crate alloc;

pub mod system;

#[doc(hidden)]
pub use kaal_rt as __rt;
#[doc(hidden)]
pub use kaal_sel4 as __sel4;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use kaal_broker::device::DeviceInfo;
use kaal_broker::sel4::Sel4Kernel;
use kaal_broker::{Broker, BrokerConfig, BrokerError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::Endpoint;
use kaal_sel4::{println, Error};

/// KaaL's version.
pub const KAAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The broker as the root task runs it: over seL4.
pub type RootBroker = Broker<Sel4Kernel>;

/// What can stop the root task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootError {
    /// The kernel refused an invocation.
    Kernel { what: &'static str, error: Error },
    /// The broker could not serve a request.
    Broker(BrokerError),
    /// A self-check saw the kernel behave other than expected.
    Check(&'static str),
}

impl From<BrokerError> for RootError {
    fn from(e: BrokerError) -> Self {
        RootError::Broker(e)
    }
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootError::Kernel { what, error } => write!(f, "{what}: {error}"),
            RootError::Broker(e) => write!(f, "broker: {e}"),
            RootError::Check(what) => write!(f, "self-check failed: {what}"),
        }
    }
}

/// Adds what was being done to a kernel error.
pub trait Context<T> {
    fn context(self, what: &'static str) -> Result<T, RootError>;
}

impl<T> Context<T> for Result<T, Error> {
    fn context(self, what: &'static str) -> Result<T, RootError> {
        self.map_err(|error| RootError::Kernel { what, error })
    }
}

const MIB: u64 = 1024 * 1024;

/// The TSC frequency the kernel calibrated, recorded by [`boot`] (every
/// image parses BootInfo there) for the start-info pages of components.
static TSC_MHZ: AtomicU64 = AtomicU64::new(0);

/// The TSC frequency in MHz (0 before [`boot`]).
pub fn tsc_mhz() -> u64 {
    TSC_MHZ.load(Ordering::Relaxed)
}

/// Prints the boot summary and builds the broker, which takes every untyped
/// and every free slot.
pub fn boot(bi: &BootInfo) -> Result<RootBroker, RootError> {
    let empty = bi.empty();
    let debug = if kaal_sel4::sys::HAS_DEBUG_SYSCALLS {
        " (debug kernel)"
    } else {
        ""
    };
    println!(
        "KaaL {KAAL_VERSION} on seL4 {}{debug}",
        kaal_sel4::SEL4_VERSION
    );
    println!(
        "  untyped: {} regions, RAM {} bytes ({} MiB), device {} bytes ({} MiB)",
        bi.untyped_count(),
        bi.ram_bytes(),
        bi.ram_bytes() / MIB,
        bi.device_bytes(),
        bi.device_bytes() / MIB
    );
    println!(
        "  free slots: {:#x}..{:#x} ({} of 2^{}), TSC {} MHz",
        empty.start,
        empty.end,
        empty.end - empty.start,
        bi.cnode_size_bits(),
        bi.tsc_mhz()
    );
    TSC_MHZ.store(bi.tsc_mhz(), Ordering::Relaxed);
    let mut broker = Broker::new(Sel4Kernel::root(), BrokerConfig::from_bootinfo(bi));
    broker.discover_devices()?;
    let pci = broker
        .devices()
        .iter()
        .filter(|d| matches!(d, DeviceInfo::Pci(_)))
        .count();
    let serial = broker
        .devices()
        .iter()
        .filter(|d| matches!(d, DeviceInfo::Serial { .. }))
        .count();
    println!("  devices: {serial} legacy serial ports, {pci} PCI functions");
    Ok(broker)
}

/// Keeps the system up: the root task waits on an endpoint nobody else holds.
pub fn idle(broker: &mut RootBroker) -> ! {
    match broker.alloc::<Endpoint>() {
        Ok(ep) => loop {
            let _ = ep.recv();
        },
        Err(e) => {
            println!("KaaL: cannot idle: {e}");
            kaal_rt::exit(kaal_rt::Exit::Failure)
        }
    }
}
