//! The Linux personality of KaaL's process server: what runs unmodified
//! static Linux x86_64 binaries as seL4 processes, as host-tested logic.
//! The component `posix_server` drives it over seL4.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod image;
pub mod pipe;
pub mod rewrite;
pub mod tty;
