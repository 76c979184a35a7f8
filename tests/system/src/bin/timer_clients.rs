//! System test `timer_clients`: one PIT driver serves three clients at
//! once. Two sleep with different periods, each sleep measured against the
//! TSC; the third floods the driver and corrupts its ring, and only it is
//! cut off: the others' sleeps go on.
#![no_std]
#![no_main]

kaal_systest::system_test!("timer_clients", ["fast", "slow", "hostile"]);
