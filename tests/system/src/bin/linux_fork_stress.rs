//! System test `linux_fork_stress`: 1000 fork+exec+wait from a shell loop,
//! and the process server's free memory back where it was.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_fork_stress", ["posix"]);
