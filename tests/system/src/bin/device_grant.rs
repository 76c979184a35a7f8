//! System test `device_grant`: a component whose manifest grants `serial:0`
//! writes through COM1's ports itself, and the kernel refuses it COM2's; a
//! component granted virtio-net reads its registers and ports and uses its
//! DMA buffer.
#![no_std]
#![no_main]

kaal_systest::system_test!("device_grant", ["writer", "probe"]);
