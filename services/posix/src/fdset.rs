//! `select`'s descriptor sets: `fd_set` is a bit array of 1024 bits in
//! 64-bit words, of which a call passes the first `nfds` bits; the kernel
//! reads and writes back only the words those bits span.

use alloc::vec;
use alloc::vec::Vec;

use crate::fd::FD_MAX;

/// The first `nfds` bits of one `fd_set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdSet {
    words: Vec<u64>,
    nfds: u32,
}

/// Bytes of user memory a set of `nfds` descriptors spans (whole words,
/// as Linux copies them).
pub fn bytes_for(nfds: u32) -> usize {
    nfds.div_ceil(64) as usize * 8
}

impl FdSet {
    /// An empty set of `nfds` bits; `None` past [`FD_MAX`] (`EINVAL`).
    pub fn empty(nfds: u32) -> Option<FdSet> {
        (nfds <= FD_MAX).then(|| FdSet {
            words: vec![0; nfds.div_ceil(64) as usize],
            nfds,
        })
    }

    /// The set read from `bytes` ([`bytes_for`] of them); bits at and
    /// past `nfds` in the last word are ignored, as Linux does.
    pub fn from_bytes(nfds: u32, bytes: &[u8]) -> Option<FdSet> {
        let mut s = FdSet::empty(nfds)?;
        for (w, chunk) in s.words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        let tail = nfds % 64;
        if let (Some(last), true) = (s.words.last_mut(), tail != 0) {
            *last &= (1u64 << tail) - 1;
        }
        Some(s)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    pub fn contains(&self, fd: u32) -> bool {
        fd < self.nfds
            && self
                .words
                .get((fd / 64) as usize)
                .is_some_and(|w| w & (1 << (fd % 64)) != 0)
    }

    /// Adds `fd` (ignored past `nfds`).
    pub fn insert(&mut self, fd: u32) {
        if fd < self.nfds {
            if let Some(w) = self.words.get_mut((fd / 64) as usize) {
                *w |= 1 << (fd % 64);
            }
        }
    }

    /// The descriptors in the set, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nfds).filter(|&fd| self.contains(fd))
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_the_bits_given() {
        let mut bytes = vec![0u8; 16];
        bytes[0] = 0b1001; // 0 and 3
        bytes[8] = 0b10; // 65
        let s = FdSet::from_bytes(70, &bytes).expect("set");
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3, 65]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.to_bytes(), bytes);
        assert_eq!(bytes_for(70), 16);
        assert_eq!(bytes_for(0), 0);
    }

    #[test]
    fn bits_past_nfds_are_ignored() {
        let bytes = u64::MAX.to_le_bytes();
        let s = FdSet::from_bytes(3, &bytes).expect("set");
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert!(!s.contains(3));
        let mut e = FdSet::empty(3).expect("set");
        e.insert(5);
        assert!(e.is_empty());
        e.insert(2);
        assert_eq!(e.to_bytes(), 4u64.to_le_bytes());
    }

    #[test]
    fn more_than_fd_max_is_refused() {
        assert!(FdSet::empty(FD_MAX).is_some());
        assert!(FdSet::empty(FD_MAX + 1).is_none());
        assert!(FdSet::from_bytes(FD_MAX + 1, &[]).is_none());
    }
}
