//! A small HTTP/1.1 server on port 80 of the files under `/www` in the VFS
//! (local name `fs`), through the network service's sockets (`sock_req`,
//! `sock_cpl`, `sock_data`): one poll loop, up to [`MAX_CONNS`]
//! connections, files sent in chunks as the peer takes them. The request
//! handling that needs no system is the library (`httpd`), tested on the
//! host; on the host this program is an empty stub.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod server;

#[cfg(target_os = "none")]
kaal_rt::component!(server::main);

#[cfg(not(target_os = "none"))]
fn main() {}
