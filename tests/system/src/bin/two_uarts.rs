//! Boots `systems/two_uarts.toml`: the same UART driver image on COM1 and
//! COM2; each reader must exit cleanly after reading its own port's line.
#![no_std]
#![no_main]

kaal_systest::system_test!("two_uarts", ["com1_reader", "com2_reader"]);
