//! System test `fs_slow_reader`: a client whose reads always miss the VFS's
//! small cache does not hold up another's cached stats and reads.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_slow_reader", ["slow", "quick"]);
