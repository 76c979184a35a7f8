//! System test `fs_read_host_image`: reads the whole tree the harness put on the disk and checks every byte and mode.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_read_host_image", ["reader"]);
