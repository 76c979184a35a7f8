//! KaaL's safe seL4 layer: typed capabilities, kernel errors as a Rust enum in
//! `Result`, IPC messages, the BootInfo parser and console printing.
//!
//! Every function here assumes it runs on an seL4 thread whose IPC buffer is
//! set up (the runtime does this for every thread KaaL starts); given that,
//! the kernel checks every invocation, and the functions that could change
//! memory this program uses are `unsafe`.
#![cfg_attr(not(test), no_std)]

pub mod bootinfo;
pub mod cap;
pub mod console;
pub mod fault;
pub mod ipc;
pub mod uart16550;

pub use kaal_sel4_sys as sys;
pub use sys::Error;

/// A machine word.
pub type Word = sys::seL4_Word;
/// A capability pointer: an address in a CSpace.
pub type CPtr = sys::seL4_CPtr;
/// The result of a kernel invocation.
pub type Result<T> = core::result::Result<T, Error>;

/// The running kernel's version, as its source tree names it.
pub const SEL4_VERSION: &str = env!("KAAL_SEL4_VERSION");
