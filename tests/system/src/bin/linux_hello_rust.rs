//! System test `linux_hello_rust`: the process server runs an unmodified static Linux
//! program from the disk and ends when it does.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_hello_rust", ["posix"]);
