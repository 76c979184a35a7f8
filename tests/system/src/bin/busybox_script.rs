//! System test `busybox_script`: a script typed into a busybox login shell
//! on the console; the harness compares its output with the host's busybox.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_script", ["posix"]);
