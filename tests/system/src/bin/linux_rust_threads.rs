//! System test `linux_rust_threads`: see `tests/system/systems/linux_rust_threads.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_rust_threads", running);
