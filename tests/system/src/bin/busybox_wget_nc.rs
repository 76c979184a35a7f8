//! System test `busybox_wget_nc`: see `tests/system/systems/busybox_wget_nc.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_wget_nc", ["posix"]);
