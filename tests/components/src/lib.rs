//! What the test components share: the ring message and its checksum.
#![no_std]
#![forbid(unsafe_code)]

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
