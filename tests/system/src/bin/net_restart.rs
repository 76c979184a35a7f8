//! System test `net_restart`: see `tests/system/systems/net_restart.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!(
    "net_restart",
    when_exits = "marker",
    kill = "netstack",
    then_expect_clean_exits = ["restart"]
);
