//! System test `net_connect`: see `tests/system/systems/net_connect.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_connect", ["connect"]);
