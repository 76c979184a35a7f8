//! System test `linux_thread_signals`: signals aimed at one thread of an
//! unmodified static Linux program, which ends the system when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_thread_signals", ["posix"]);
