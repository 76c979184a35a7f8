//! System test `serial_hostile`: a client writes garbage into the index of
//! its transmit ring; the 16550 driver reports the corrupt ring, stops
//! serving that direction, and still delivers what the harness types.
#![no_std]
#![no_main]

kaal_systest::system_test!("serial_hostile", ["app"]);
