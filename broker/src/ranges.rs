//! A first-fit allocator of integer ranges with alignment: the addresses of
//! the broker's virtual address window.

use alloc::collections::BTreeMap;

/// Returning a range that is (partly) free already, or that overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAllocated;

/// Free ranges, kept merged: start -> end (exclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeAllocator {
    free: BTreeMap<u64, u64>,
}

impl RangeAllocator {
    pub fn new(start: u64, end: u64) -> Self {
        let mut r = RangeAllocator::default();
        if start < end {
            r.free.insert(start, end);
        }
        r
    }

    /// Total free units.
    pub fn free_total(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    /// Takes `len` units aligned to `align` (a power of two), first fit.
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        if len == 0 || !align.is_power_of_two() {
            return None;
        }
        let (start, end, at) = self.free.iter().find_map(|(&s, &e)| {
            let at = s.checked_add(align - 1)? & !(align - 1);
            (at.checked_add(len)? <= e).then_some((s, e, at))
        })?;
        self.free.remove(&start);
        if start < at {
            self.free.insert(start, at);
        }
        if at + len < end {
            self.free.insert(at + len, end);
        }
        Some(at)
    }

    /// Returns `start..start+len`. Returning units that are already free is
    /// refused (it would hand them out twice).
    pub fn free(&mut self, start: u64, len: u64) -> Result<(), NotAllocated> {
        let end = start.checked_add(len).ok_or(NotAllocated)?;
        if len == 0 {
            return Ok(());
        }
        let before = self.free.range(..end).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = before {
            if e > start {
                return Err(NotAllocated); // overlaps a free range
            }
        }
        let (mut s, mut e) = (start, end);
        if let Some((ps, pe)) = before {
            if pe == start {
                self.free.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.free.remove(&end) {
            e = ne;
        }
        self.free.insert(s, e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_first_fit_and_merge() {
        let mut r = RangeAllocator::new(1, 100);
        assert_eq!(r.alloc(4, 8), Some(8));
        assert_eq!(r.alloc(1, 1), Some(1));
        assert_eq!(r.alloc(200, 1), None);
        assert_eq!(r.free_total(), 99 - 5);
        r.free(8, 4).unwrap();
        r.free(1, 1).unwrap();
        assert_eq!(r, RangeAllocator::new(1, 100));
        assert!(r.free(50, 2).is_err(), "double free is refused");
    }

    proptest! {
        #[test]
        fn never_hands_out_a_unit_twice(ops in proptest::collection::vec((1u64..9, 0u32..4, any::<bool>()), 1..200)) {
            let mut r = RangeAllocator::new(0, 256);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (len, align_log, free) in ops {
                if free && !live.is_empty() {
                    let (s, l) = live.remove(0);
                    r.free(s, l).unwrap();
                } else if let Some(s) = r.alloc(len, 1 << align_log) {
                    prop_assert_eq!(s % (1 << align_log), 0);
                    for &(os, ol) in &live {
                        prop_assert!(s + len <= os || os + ol <= s, "overlap");
                    }
                    live.push((s, len));
                }
                let used: u64 = live.iter().map(|(_, l)| l).sum();
                prop_assert_eq!(r.free_total() + used, 256);
            }
            for (s, l) in live { r.free(s, l).unwrap(); }
            prop_assert_eq!(r, RangeAllocator::new(0, 256));
        }
    }
}
