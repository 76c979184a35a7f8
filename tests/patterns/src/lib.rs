//! The content of the system tests' disks, shared by the harness
//! (`cargo xtask test`) and the test components.
#![no_std]
#![forbid(unsafe_code)]

/// Disk images, in 512-byte sectors.
pub mod disk {
    /// Bytes per sector.
    pub const SECTOR: u64 = 512;

    /// Byte `offset` of a fresh test disk: each sector differs, and so does
    /// each byte of a sector.
    pub fn fresh(offset: u64) -> u8 {
        let sector = offset / SECTOR;
        (sector.wrapping_mul(31) ^ offset.wrapping_mul(7)) as u8
    }

    /// Byte `offset` of the region a test writes.
    pub fn written(offset: u64) -> u8 {
        (offset.wrapping_mul(13).wrapping_add(5) as u8) ^ 0xa5
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn patterns_differ_everywhere_that_matters() {
            // Neighbouring sectors and the two patterns must not agree on a
            // whole sector, or a misplaced transfer could pass.
            let sector = |f: fn(u64) -> u8, s: u64| (0..SECTOR).map(move |i| f(s * SECTOR + i));
            for s in 0..64 {
                assert!(sector(fresh, s).ne(sector(fresh, s + 1)));
                assert!(sector(fresh, s).ne(sector(written, s)));
            }
        }
    }
}
