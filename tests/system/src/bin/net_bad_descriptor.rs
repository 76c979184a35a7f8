//! System test `net_bad_descriptor`: a client sends tx entries the network
//! protocol refuses, each answered with an error entry, and still gets a
//! DHCP OFFER; then it corrupts its tx ring's index, and the virtio-net
//! driver reports it, cuts that ring off and still delivers the OFFER that
//! was on its way (`tests/system/systems/net_bad_descriptor.toml`).
#![no_std]
#![no_main]

kaal_systest::system_test!("net_bad_descriptor", ["hostile"]);
