//! System test `blk_roundtrip`: the virtio-blk driver serves a client that
//! reads the harness's disk image back, checks its pattern, and writes and
//! rereads 64 KiB of its own; the harness checks the image after QEMU exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("blk_roundtrip", ["roundtrip"]);
