//! System test `blk_out_of_range`: a client sends the virtio-blk driver
//! requests beyond the disk, outside the data region and of an unknown kind;
//! each is answered with its error, and a good request after them is served.
#![no_std]
#![no_main]

kaal_systest::system_test!("blk_out_of_range", ["hostile"]);
