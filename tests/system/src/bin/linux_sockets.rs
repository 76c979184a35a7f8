//! System test `linux_sockets`: see `tests/system/systems/linux_sockets.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_sockets", ["posix"]);
