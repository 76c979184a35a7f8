//! System test `linux_busybox_c`: busybox `sh -c` runs a pipeline.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_busybox_c", ["posix"]);
