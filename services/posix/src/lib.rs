//! The Linux personality of KaaL's process server: what runs unmodified
//! static Linux x86_64 binaries as seL4 processes, as host-tested logic.
//! The component `posix_server` drives it over seL4.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod abi;
pub mod errno;
pub mod events;
pub mod fd;
pub mod fdset;
pub mod futex;
pub mod image;
pub mod inet;
pub mod pagecache;
pub mod path;
pub mod pipe;
pub mod random;
pub mod regs;
pub mod rewrite;
pub mod signal;
pub mod tty;
pub mod unix;
pub mod vm;
