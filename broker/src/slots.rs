//! The broker's capability slots: a bitmap over the root CNode's free range.
//! Single slots (the common case) come from a moving hint in O(1)
//! amortised; runs of consecutive slots (for retypes of several objects) by
//! a scan. Returning a slot that is not handed out is refused.

use alloc::vec;
use alloc::vec::Vec;
use kaal_sel4::CPtr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotAllocator {
    base: CPtr,
    len: u64,
    /// One bit per slot, set when handed out. Bits past `len` are set.
    used: Vec<u64>,
    free: u64,
    /// Index of a word that may have a free bit.
    hint: usize,
}

/// A slot returned twice, or one the allocator never had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotHandedOut(pub CPtr);

impl SlotAllocator {
    pub fn new(start: CPtr, end: CPtr) -> Self {
        let len = end.saturating_sub(start);
        let words = len.div_ceil(64) as usize;
        let mut used = vec![0u64; words];
        if !len.is_multiple_of(64) {
            if let Some(last) = used.last_mut() {
                *last = !0u64 << (len % 64);
            }
        }
        SlotAllocator {
            base: start,
            len,
            used,
            free: len,
            hint: 0,
        }
    }

    pub fn free_count(&self) -> u64 {
        self.free
    }

    fn is_used(&self, i: u64) -> bool {
        self.used
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: u64, on: bool) {
        if let Some(w) = self.used.get_mut((i / 64) as usize) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// One free slot.
    pub fn alloc_one(&mut self) -> Option<CPtr> {
        let n = self.used.len();
        for k in 0..n {
            let wi = (self.hint + k) % n;
            let w = *self.used.get(wi)?;
            if w != !0 {
                let bit = u64::from(w.trailing_ones());
                self.set(wi as u64 * 64 + bit, true);
                self.hint = wi;
                self.free -= 1;
                return Some(self.base + wi as u64 * 64 + bit);
            }
        }
        None
    }

    /// `count` consecutive free slots; returns the first.
    pub fn alloc(&mut self, count: u64) -> Option<CPtr> {
        if count == 1 {
            return self.alloc_one();
        }
        if count == 0 || count > self.free {
            return None;
        }
        let mut run = 0;
        let mut i = 0;
        while i < self.len {
            if i % 64 == 0 && run == 0 && self.used.get((i / 64) as usize) == Some(&!0) {
                i += 64;
                continue;
            }
            if self.is_used(i) {
                run = 0;
            } else {
                run += 1;
                if run == count {
                    let first = i + 1 - count;
                    for j in first..=i {
                        self.set(j, true);
                    }
                    self.free -= count;
                    return Some(self.base + first);
                }
            }
            i += 1;
        }
        None
    }

    /// Returns `count` slots from `first`; all of them must be handed out.
    pub fn free(&mut self, first: CPtr, count: u64) -> Result<(), NotHandedOut> {
        let start = first.checked_sub(self.base).ok_or(NotHandedOut(first))?;
        let end = start
            .checked_add(count)
            .filter(|&e| e <= self.len)
            .ok_or(NotHandedOut(first))?;
        if let Some(i) = (start..end).find(|&i| !self.is_used(i)) {
            return Err(NotHandedOut(self.base + i));
        }
        for i in start..end {
            self.set(i, false);
        }
        self.free += count;
        self.hint = (start / 64) as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn singles_runs_and_double_free() {
        let mut s = SlotAllocator::new(100, 230);
        assert_eq!(s.alloc(1), Some(100));
        assert_eq!(s.alloc(2), Some(101));
        assert_eq!(s.free_count(), 127);
        s.free(101, 2).unwrap();
        assert_eq!(s.free(101, 1), Err(NotHandedOut(101)));
        assert_eq!(s.free(99, 1), Err(NotHandedOut(99)));
        assert_eq!(s.free(230, 1), Err(NotHandedOut(230)));
        assert_eq!(s.alloc(130), None);
        assert_eq!(s.alloc(129), Some(101));
        assert_eq!(s.alloc(1), None);
    }

    proptest! {
        #[test]
        fn never_hands_out_a_slot_twice(ops in proptest::collection::vec((1u64..5, any::<bool>()), 1..300)) {
            let mut s = SlotAllocator::new(7, 7 + 150);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (n, free) in ops {
                if free && !live.is_empty() {
                    let (f, c) = live.swap_remove(0);
                    s.free(f, c).unwrap();
                } else if let Some(f) = s.alloc(n) {
                    prop_assert!(f >= 7 && f + n <= 157);
                    for &(g, c) in &live {
                        prop_assert!(f + n <= g || g + c <= f, "overlap");
                    }
                    live.push((f, n));
                }
                let used: u64 = live.iter().map(|(_, c)| c).sum();
                prop_assert_eq!(s.free_count() + used, 150);
            }
        }
    }
}
