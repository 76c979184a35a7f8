//! System test `net_dhcp`: see `tests/system/systems/net_dhcp.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_dhcp", running);
