//! DMA memory a holder hands out itself: buffers in a physically contiguous
//! window whose bus address is known (a device grant's DMA buffer), each
//! at a bus address aligned as asked. Plain bookkeeping without allocation:
//! the buffers handed out are kept sorted, at most [`MAX_BUFFERS`] at once.

/// A physically contiguous window of DMA memory: where this program sees it
/// and the bus address a device sees it at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaWindow {
    pub vaddr: u64,
    pub paddr: u64,
    pub size: u64,
}

/// One buffer of a pool: where the CPU and where a device see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuffer {
    pub vaddr: u64,
    pub paddr: u64,
    pub size: u64,
}

/// Why a pool could not serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// No free run of the size and alignment asked for, or
    /// [`MAX_BUFFERS`] buffers out already.
    Exhausted,
    /// Size zero, an alignment that is not a power of two, or a buffer this
    /// pool did not hand out (or already took back).
    Invalid,
}

/// Buffers a pool has out at once.
pub const MAX_BUFFERS: usize = 128;

/// Aligned buffers inside a [`DmaWindow`], first fit.
#[derive(Clone, Debug)]
pub struct DmaPool {
    window: DmaWindow,
    /// The buffers out, as (offset, size), sorted by offset.
    out: heapless::Vec<(u64, u64), MAX_BUFFERS>,
}

impl DmaPool {
    pub fn new(window: DmaWindow) -> Self {
        DmaPool {
            window,
            out: heapless::Vec::new(),
        }
    }

    /// Free bytes (not necessarily in one run).
    pub fn free_bytes(&self) -> u64 {
        let used: u64 = self.out.iter().map(|&(_, s)| s).sum();
        self.window.size.saturating_sub(used)
    }

    /// A buffer of `size` bytes whose bus address is a multiple of `align`
    /// (a power of two).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<DmaBuffer, DmaError> {
        if size == 0 || !align.is_power_of_two() {
            return Err(DmaError::Invalid);
        }
        if self.out.is_full() {
            return Err(DmaError::Exhausted);
        }
        // The first gap, in offset order, that holds the buffer aligned.
        let mut start = 0;
        let mut found = None;
        for (i, &(off, len)) in self
            .out
            .iter()
            .chain([(self.window.size, 0)].iter())
            .enumerate()
        {
            if let Some(at) = self.fit(start, off, size, align) {
                found = Some((i, at));
                break;
            }
            start = off.saturating_add(len);
        }
        let (i, at) = found.ok_or(DmaError::Exhausted)?;
        self.out
            .insert(i, (at, size))
            .map_err(|_| DmaError::Exhausted)?;
        Ok(DmaBuffer {
            vaddr: self.window.vaddr + at,
            paddr: self.window.paddr + at,
            size,
        })
    }

    /// The offset of a `size`-byte buffer aligned to `align` in the gap of
    /// offsets `start..end`, if it fits.
    fn fit(&self, start: u64, end: u64, size: u64, align: u64) -> Option<u64> {
        let bus = self.window.paddr.checked_add(start)?;
        let aligned = bus.checked_add(align - 1)? & !(align - 1);
        let at = aligned - self.window.paddr;
        (at.checked_add(size)? <= end).then_some(at)
    }

    /// Takes a buffer back; one not from this pool, or already taken back,
    /// is refused.
    pub fn free(&mut self, buf: DmaBuffer) -> Result<(), DmaError> {
        let off = buf
            .paddr
            .checked_sub(self.window.paddr)
            .ok_or(DmaError::Invalid)?;
        if Some(buf.vaddr) != self.window.vaddr.checked_add(off) {
            return Err(DmaError::Invalid);
        }
        let i = self
            .out
            .iter()
            .position(|&b| b == (off, buf.size))
            .ok_or(DmaError::Invalid)?;
        self.out.remove(i);
        Ok(())
    }

    /// The bus address of `len` bytes at `vaddr`, if they lie in the window.
    pub fn bus_address(&self, vaddr: u64, len: u64) -> Option<u64> {
        let off = vaddr.checked_sub(self.window.vaddr)?;
        (off.checked_add(len)? <= self.window.size).then_some(self.window.paddr + off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_and_double_free() {
        let window = DmaWindow {
            vaddr: 0x5000_0000,
            paddr: 0x20_0000,
            size: 0x4000,
        };
        let mut p = DmaPool::new(window);
        let a = p.alloc(100, 64).unwrap();
        let b = p.alloc(0x1000, 0x1000).unwrap();
        assert_eq!(a.paddr % 64, 0);
        assert_eq!(b.paddr % 0x1000, 0);
        assert_ne!(a.paddr, b.paddr);
        assert_eq!(b.vaddr - window.vaddr, b.paddr - window.paddr);
        assert_eq!(p.alloc(0x4000, 1), Err(DmaError::Exhausted));
        p.free(a).unwrap();
        assert_eq!(p.free(a), Err(DmaError::Invalid));
        assert_eq!(
            p.free(DmaBuffer {
                vaddr: 0,
                paddr: 0,
                size: 1
            }),
            Err(DmaError::Invalid)
        );
        p.free(b).unwrap();
        assert_eq!(p.free_bytes(), 0x4000);
        assert_eq!(p.alloc(1, 3), Err(DmaError::Invalid));
    }

    const PAGE: u64 = 4096;

    fn pages(p: &mut DmaPool, n: u64) -> Option<u64> {
        p.alloc(n * PAGE, PAGE).ok().map(|b| b.paddr / PAGE)
    }

    fn page_buf(first: u64, n: u64) -> DmaBuffer {
        DmaBuffer {
            vaddr: 0x7000_0000 + first * PAGE,
            paddr: first * PAGE,
            size: n * PAGE,
        }
    }

    /// Pages for virtqueues and bounce buffers (as the virtio HAL takes
    /// them): contiguous, first fit, and only what was handed out comes
    /// back.
    #[test]
    fn contiguous_pages_first_fit_and_checked_free() {
        let mut a = DmaPool::new(DmaWindow {
            vaddr: 0x7000_0000,
            paddr: 0,
            size: 8 * PAGE,
        });
        assert_eq!(pages(&mut a, 3), Some(0));
        assert_eq!(pages(&mut a, 3), Some(3));
        assert_eq!(pages(&mut a, 3), None, "only 2 left");
        assert!(a.free(page_buf(0, 3)).is_ok());
        assert!(a.free(page_buf(0, 3)).is_err(), "double free refused");
        assert!(a.free(page_buf(6, 4)).is_err(), "beyond the window");
        assert!(a.free(page_buf(3, 2)).is_err(), "part of a buffer");
        assert_eq!(pages(&mut a, 2), Some(0));
        assert_eq!(a.free_bytes(), 3 * PAGE);
        assert_eq!(pages(&mut a, 0), None);
        assert_eq!(a.bus_address(0x7000_1000, PAGE), Some(PAGE));
        assert_eq!(a.bus_address(0x7000_7000, PAGE + 1), None);
    }

    /// Alignment is of the bus address, whatever the window's.
    #[test]
    fn alignment_is_of_the_bus_address_and_the_count_is_bounded() {
        let mut p = DmaPool::new(DmaWindow {
            vaddr: 0x1000,
            paddr: 0x30_0800,
            size: 0x10_0000,
        });
        let b = p.alloc(16, 0x1000).unwrap();
        assert_eq!((b.paddr, b.vaddr), (0x30_1000, 0x1800));
        for _ in 1..MAX_BUFFERS {
            p.alloc(1, 1).unwrap();
        }
        assert_eq!(p.alloc(1, 1), Err(DmaError::Exhausted));
        p.free(b).unwrap();
        assert_eq!(p.alloc(16, 0x1000), Ok(b), "the first fit again");
    }
}
