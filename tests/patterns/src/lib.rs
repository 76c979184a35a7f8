//! The content of the system tests' disks (sector patterns and file trees), shared by the harness
//! (`cargo xtask test`) and the test components.
#![no_std]
#![forbid(unsafe_code)]

pub mod fs;

/// Byte streams the network tests send both ways, so that each side checks
/// what the other sent.
pub mod net {
    /// The guest's stream to the host (`net_guest_connect`, `net_service_restart`).
    pub const GUEST_SEED: u64 = 0x6b61_616c_6775_6573;
    /// The host's stream to the guest.
    pub const HOST_SEED: u64 = 0x6b61_616c_686f_7374;
    /// Bytes each side sends in `net_guest_connect`.
    pub const EXCHANGE_BYTES: u64 = 64 * 1024;

    /// Byte `offset` of the stream named by `seed`.
    pub fn byte(seed: u64, offset: u64) -> u8 {
        crate::disk::pattern(seed, offset)
    }

    /// Fills `buf` with the stream `seed` from `offset` on.
    pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
        for (i, b) in (offset..).zip(buf.iter_mut()) {
            *b = byte(seed, i);
        }
    }

    /// Whether `buf` holds the stream `seed` from `offset` on.
    pub fn holds(seed: u64, offset: u64, buf: &[u8]) -> bool {
        (offset..).zip(buf.iter()).all(|(i, b)| *b == byte(seed, i))
    }
}

/// Disk images, in 512-byte sectors.
pub mod disk {
    /// Bytes per sector.
    pub const SECTOR: u64 = 512;

    /// A well-mixed 64-bit value of `x` (splitmix64's finaliser).
    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Byte `offset` of a pattern named by `seed`: each 8-byte word is a
    /// hash of its whole word number, so sectors differ wherever they lie
    /// (no period: a transfer to or from the wrong place reads wrong).
    pub(crate) fn pattern(seed: u64, offset: u64) -> u8 {
        let word = mix(seed ^ mix(offset / 8));
        (word >> (8 * (offset % 8))) as u8
    }

    /// Byte `offset` of a fresh test disk.
    pub fn fresh(offset: u64) -> u8 {
        pattern(0x6b61_616c_6672_6573, offset)
    }

    /// Byte `offset` of the region a test writes.
    pub fn written(offset: u64) -> u8 {
        pattern(0x6b61_616c_7772_6974, offset)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn no_two_sectors_of_a_test_disk_read_alike() {
            extern crate std;
            use std::collections::HashSet;
            use std::vec::Vec;
            // 64 MiB of sectors, both patterns: a misplaced or permuted
            // transfer always reads different bytes.
            let sector = |f: fn(u64) -> u8, s: u64| -> Vec<u8> {
                (0..SECTOR).map(|i| f(s * SECTOR + i)).collect()
            };
            let mut seen = HashSet::new();
            for s in 0..(64 << 20) / SECTOR {
                assert!(seen.insert(sector(fresh, s)), "fresh sector {s} repeats");
            }
            for s in 0..1024 {
                assert!(
                    seen.insert(sector(written, s)),
                    "written sector {s} repeats"
                );
            }
        }
    }
}
