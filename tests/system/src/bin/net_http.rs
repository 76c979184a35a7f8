//! System test `net_http`: see `tests/system/systems/net_http.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_http", running);
