//! System test `net_hostile`: see `tests/system/systems/net_hostile.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_hostile", running);
