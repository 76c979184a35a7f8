//! System test `net_echo_service`: see `tests/system/systems/net_echo_service.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_echo_service", running);
