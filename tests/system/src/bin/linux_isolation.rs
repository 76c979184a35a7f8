//! System test `linux_isolation`: processes' memories are apart, and a
//! killed process's memory goes back to the process server.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_isolation", ["posix"]);
