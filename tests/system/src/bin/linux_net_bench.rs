//! System test `linux_net_bench`: see `tests/system/systems/linux_net_bench.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_net_bench", running);
