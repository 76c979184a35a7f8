//! TCP and UDP echo on port 7 (RFC 862) through the network service's
//! sockets (local names `sock_req`, `sock_cpl`, `sock_data`); which
//! connections to keep is `kaal_client::socket::conns`, tested on the host.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod server;

kaal_rt::component!(server::main);
