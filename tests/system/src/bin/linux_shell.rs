//! System test `linux_shell`: a busybox login shell on the console.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_shell", ["posix"]);
