//! A first-fit allocator of contiguous pages within one DMA window (at most
//! [`MAX_PAGES`] pages), for virtqueues and bounce buffers.

/// Pages one window may have.
pub const MAX_PAGES: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageAlloc {
    pages: usize,
    used: [u64; MAX_PAGES / 64],
}

impl PageAlloc {
    /// An allocator of `pages` pages; `None` if that is more than it handles.
    pub fn new(pages: usize) -> Option<PageAlloc> {
        (pages <= MAX_PAGES).then_some(PageAlloc {
            pages,
            used: [0; MAX_PAGES / 64],
        })
    }

    fn is_used(&self, p: usize) -> bool {
        self.used
            .get(p / 64)
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    fn set(&mut self, first: usize, n: usize, used: bool) {
        for p in first..first + n {
            if let Some(w) = self.used.get_mut(p / 64) {
                if used {
                    *w |= 1 << (p % 64);
                } else {
                    *w &= !(1 << (p % 64));
                }
            }
        }
    }

    /// The first page of `n` free contiguous pages, now taken.
    pub fn alloc(&mut self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let mut run = 0;
        for p in 0..self.pages {
            run = if self.is_used(p) { 0 } else { run + 1 };
            if run == n {
                let first = p + 1 - n;
                self.set(first, n, true);
                return Some(first);
            }
        }
        None
    }

    /// Frees `n` pages from `first`; `false` (and nothing changes) unless all
    /// of them were taken.
    pub fn free(&mut self, first: usize, n: usize) -> bool {
        let ok = n > 0
            && first.checked_add(n).is_some_and(|end| end <= self.pages)
            && (first..first + n).all(|p| self.is_used(p));
        if ok {
            self.set(first, n, false);
        }
        ok
    }

    pub fn free_pages(&self) -> usize {
        (0..self.pages).filter(|&p| !self.is_used(p)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_first_fit_and_checked_free() {
        let mut a = PageAlloc::new(8).unwrap();
        assert_eq!(a.alloc(3), Some(0));
        assert_eq!(a.alloc(3), Some(3));
        assert_eq!(a.alloc(3), None, "only 2 left");
        assert!(a.free(0, 3));
        assert!(!a.free(0, 3), "double free refused");
        assert!(!a.free(6, 4), "beyond the window");
        assert_eq!(a.alloc(2), Some(0));
        assert_eq!(a.free_pages(), 3);
        assert!(PageAlloc::new(MAX_PAGES + 1).is_none());
        assert_eq!(a.alloc(0), None);
    }
}
