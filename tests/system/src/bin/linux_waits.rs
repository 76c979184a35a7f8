//! System test `linux_waits`: poll, ppoll, select and pselect6 of an unmodified
//! static Linux program, which ends the system when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_waits", ["posix"]);
