//! The KaaL root task: the first and only trusted user-level program. It
//! reads BootInfo, prints the boot summary, and (until the capability broker
//! takes over) allocates kernel objects with a simple boot allocator.
#![no_std]

pub mod alloc;
pub mod demo;
pub mod thread;

use core::fmt;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::Endpoint;
use kaal_sel4::{println, Error};

pub use alloc::BootAlloc;

/// KaaL's version.
pub const KAAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What can stop the root task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootError {
    /// The kernel refused an invocation.
    Kernel { what: &'static str, error: Error },
    /// No free slot left in the root CNode.
    OutOfSlots,
    /// No untyped memory left for an object of this size.
    OutOfMemory { size_bits: u32 },
    /// No virtual address space left in the allocator's window.
    OutOfVirtualSpace,
    /// A self-check saw the kernel behave other than expected.
    Check(&'static str),
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootError::Kernel { what, error } => write!(f, "{what}: {error}"),
            RootError::OutOfSlots => f.write_str("out of capability slots"),
            RootError::OutOfMemory { size_bits } => {
                write!(f, "out of untyped memory for a 2^{size_bits}-byte object")
            }
            RootError::OutOfVirtualSpace => f.write_str("out of virtual address space"),
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

/// Prints the boot summary and returns the boot allocator.
pub fn boot(bi: &BootInfo) -> Result<BootAlloc, RootError> {
    let empty = bi.empty();
    println!("KaaL {KAAL_VERSION} on seL4 {}", kaal_sel4::SEL4_VERSION);
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
    Ok(BootAlloc::new(bi))
}

/// Keeps the system up: the root task waits on an endpoint nobody else holds.
pub fn idle(alloc: &mut BootAlloc) -> ! {
    match alloc.retype::<Endpoint>() {
        Ok(ep) => loop {
            let _ = ep.recv();
        },
        Err(e) => {
            println!("KaaL: cannot idle: {e}");
            kaal_rt::exit(kaal_rt::Exit::Failure)
        }
    }
}
