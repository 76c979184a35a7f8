//! System test `net_stack_bench`: see `tests/system/systems/net_stack_bench.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("net_stack_bench", running);
