//! System test `linux_memory`: shared memory and mremap of an unmodified
//! static Linux program, which ends the system when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_memory", ["posix"]);
