//! What the test components share: the ring message and its checksum,
//! the lent-region patterns, and the file-system checks.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod fs;

/// One message of the `ring_million` test: a sequence number and a value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Item {
    pub seq: u64,
    pub value: u64,
}

/// Slots of the test rings (the manifests say the same).
pub const RING_SLOTS: usize = 256;

/// The value the producer sends with sequence number `seq`.
pub const fn value(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

/// Folds one item into a running checksum (order-sensitive).
pub const fn fold(sum: u64, item: Item) -> u64 {
    (sum.rotate_left(5) ^ item.value).wrapping_add(item.seq)
}

/// The `lent_regions` test: what its clients and server write in the
/// regions the clients lend.
pub mod lent {
    /// Clients of the test's `file` channel.
    pub const CLIENTS: usize = 2;
    /// Each client's region (the manifest's `bytes`).
    pub const REGION_BYTES: u64 = 16 * 1024;

    /// What client `badge` writes at byte `i` of its region in `round`.
    pub fn client_pattern(badge: u64, round: u32, i: u64) -> u8 {
        (badge.wrapping_mul(0x9e37) ^ u64::from(round).wrapping_mul(31) ^ i.wrapping_mul(7)) as u8
    }

    /// What the server writes there for that client in `round`.
    pub fn server_pattern(badge: u64, round: u32, i: u64) -> u8 {
        !client_pattern(badge, round, i.rotate_left(3))
    }
}
