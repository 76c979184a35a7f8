//! System test `rpc_two_clients`: an echo service component serves two
//! client components over one endpoint and tells them apart by the badge the
//! root task minted for each; both clients check every answer and that the
//! service saw their own badge.
#![no_std]
#![no_main]

kaal_systest::system_test!("rpc_two_clients", ["client_a", "client_b"]);
