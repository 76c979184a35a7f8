//! Client libraries of the protocols in `kaal_protocols` (block, file, serial,
//! socket, timer), for native
//! components: each takes its channels from the component's [`kaal_rt::Env`]
//! by local name and turns the rings into calls. The driver side of a
//! protocol is in the driver kit; the wire types are in `kaal_protocols`.
#![no_std]
#![forbid(unsafe_code)]

pub mod block;
pub mod file;
pub mod serial;
pub mod socket;
pub mod timer;
