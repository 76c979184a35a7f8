//! TCP and UDP echo on port 7 (RFC 862) through the network service's
//! sockets (local names `sock_req`, `sock_cpl`, `sock_data`). Which
//! connections to keep is the library (`net_echo`), tested on the host;
//! on the host this program is an empty stub.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod server;

#[cfg(target_os = "none")]
kaal_rt::component!(server::main);

#[cfg(not(target_os = "none"))]
fn main() {}
