//! The protocols KaaL's components speak, each declared once: the wire
//! types and the checks each side applies to what the other sends.
//!
//! A channel in a system manifest names its protocol (`protocol =
//! "serial"`), and the [`PROTOCOLS`] table says what such a channel is: a
//! ring and its shape, a shared region, or an endpoint. The ring shapes come
//! from the wire types here, so a manifest never restates them and a driver
//! and its clients cannot disagree on them.
//!
//! | protocol | channel | between |
//! |---|---|---|
//! | `serial` | ring of [`serial::Chunk`] | a serial driver and its client, one ring each way |
//! | `block.request`, `block.completion`, `block.data` | rings of [`block::Request`] / [`block::Response`], a data region | a block driver and its client |
//! | `net` | ring of [`net::Packet`] | a network driver and its client, one ring each way |
//! | `socket.request`, `socket.completion`, `socket.data` | rings of [`socket::Request`] / [`socket::Completion`], a data region, one set per client | the network service and a client |
//! | `timer.alarm`, `timer.fired` | rings of [`timer::AlarmRequest`] / [`timer::AlarmFired`] | a timer driver and its client |
//! | `echo` | endpoint (`kaal_interfaces::echo`) | the echo service and its clients |
//! | `file` | endpoint (`file::File`, feature `file`), and a region each client lends (the channel's `bytes`) | the VFS and its clients |
//!
//! Two protocols need no channel of the manifest: [`console`] (the root
//! task's ring to the console driver) and [`supervisor`] (every
//! component's reports to the root task).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod block;
pub mod console;
#[cfg(feature = "file")]
pub mod file;
pub mod net;
pub mod serial;
pub mod socket;
pub mod supervisor;
pub mod timer;

use core::mem::size_of;

/// What a channel of a protocol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A shared ring of `slots` slots of `slot_bytes` each.
    Ring { slots: u32, slot_bytes: u32 },
    /// A shared region; its size is the manifest's choice (`bytes`).
    Memory,
    /// An endpoint for RPC.
    Endpoint,
    /// An endpoint for RPC, and a region each client lends the server for
    /// `Lent` data (its size is the manifest's `bytes`).
    EndpointLending,
}

/// A protocol a manifest channel can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol {
    pub name: &'static str,
    pub shape: Shape,
}

/// A ring protocol of `slots` slots of `T`.
const fn ring<T>(name: &'static str, slots: usize) -> Protocol {
    // The manifest's slot size is a power of two that holds a `T`.
    let slot_bytes = size_of::<T>().next_power_of_two();
    assert!(slot_bytes <= 4096);
    assert!(slots.is_power_of_two() && slots <= 1 << 16);
    Protocol {
        name,
        shape: Shape::Ring {
            slots: slots as u32,
            slot_bytes: slot_bytes as u32,
        },
    }
}

/// Every protocol a manifest channel can name.
pub const PROTOCOLS: &[Protocol] = &[
    ring::<serial::Chunk>("serial", serial::RING_SLOTS),
    ring::<block::Request>("block.request", block::RING_SLOTS),
    ring::<block::Response>("block.completion", block::RING_SLOTS),
    Protocol {
        name: "block.data",
        shape: Shape::Memory,
    },
    ring::<net::Packet>("net", net::RING_SLOTS),
    ring::<socket::Request>("socket.request", socket::RING_SLOTS),
    ring::<socket::Completion>("socket.completion", socket::RING_SLOTS),
    Protocol {
        name: "socket.data",
        shape: Shape::Memory,
    },
    ring::<timer::AlarmRequest>("timer.alarm", timer::RING_SLOTS),
    ring::<timer::AlarmFired>("timer.fired", timer::RING_SLOTS),
    Protocol {
        name: "echo",
        shape: Shape::Endpoint,
    },
    Protocol {
        name: "file",
        shape: Shape::EndpointLending,
    },
];

/// The protocol called `name`.
pub fn find(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, p) in PROTOCOLS.iter().enumerate() {
            assert_eq!(find(p.name), Some(p));
            assert!(PROTOCOLS.iter().skip(i + 1).all(|q| q.name != p.name));
        }
        assert_eq!(find("serial:0"), None);
    }

    #[test]
    fn ring_shapes_come_from_the_wire_types() {
        assert_eq!(
            find("serial").map(|p| p.shape),
            Some(Shape::Ring {
                slots: 64,
                slot_bytes: 64
            })
        );
        assert_eq!(
            find("socket.completion").map(|p| p.shape),
            Some(Shape::Ring {
                slots: 64,
                slot_bytes: 64
            })
        );
        assert_eq!(find("socket.data").map(|p| p.shape), Some(Shape::Memory));
        assert_eq!(
            find("net").map(|p| p.shape),
            Some(Shape::Ring {
                slots: 32,
                slot_bytes: 2048
            })
        );
    }
}
