//! System test `fs_two_clients`: two clients work in their own directories at once, then share one file.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_two_clients", ["left", "right"]);
