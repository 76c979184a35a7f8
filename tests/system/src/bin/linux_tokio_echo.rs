//! System test `linux_tokio_echo`: see `tests/system/systems/linux_tokio_echo.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_tokio_echo", running);
