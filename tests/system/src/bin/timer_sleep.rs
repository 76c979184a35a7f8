//! System test `timer_sleep`: the PIT driver component serves an
//! application the timer protocol; the application sleeps through it and
//! measures each sleep against the TSC (a 100 ms sleep must last 100 to
//! 150 ms).
#![no_std]
#![no_main]

kaal_systest::system_test!("timer_sleep", ["app"]);
