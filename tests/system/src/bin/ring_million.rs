//! System test `ring_million`: two components move 1,000,000 items through a
//! shared ring; the consumer checks order and checksum. Both must exit `Ok`
//! and nothing may fault.
#![no_std]
#![no_main]

kaal_systest::system_test!("ring_million", ["producer", "consumer"]);
