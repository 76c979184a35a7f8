//! System test `fs_corrupt_image`: the harness damaged the image five ways; each damaged path gives an error, the rest reads and writes.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_corrupt_image", ["corrupt"]);
