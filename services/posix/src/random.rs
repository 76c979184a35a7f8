//! The bytes of `getrandom` and `/dev/urandom`: SplitMix64, seeded from the
//! TSC at start and stirred with it at every call. Not a cryptographic
//! generator: QEMU's default CPU has no RDRAND and KaaL has no entropy
//! service yet (docs/posix.md says so).

#[derive(Debug)]
pub struct Random {
    state: u64,
}

impl Random {
    pub fn new(seed: u64) -> Random {
        Random { state: seed }
    }

    /// Fills `out`, first mixing `stir` (a fresh TSC reading) in.
    pub fn fill(&mut self, stir: u64, out: &mut [u8]) {
        self.state ^= stir.rotate_left(17);
        for chunk in out.chunks_mut(8) {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&[]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_differ_and_odd_lengths_fill() {
        let mut r = Random::new(1);
        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
        r.fill(5, &mut a);
        r.fill(5, &mut b);
        assert_ne!(a, b);
        assert!(a.iter().any(|&x| x != 0));
    }
}
