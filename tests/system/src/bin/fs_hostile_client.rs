//! System test `fs_hostile_client`: a hostile client's bad requests are refused with the right errors, and a victim client of the same VFS keeps its descriptors and files.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_hostile_client", ["victim", "hostile"]);
