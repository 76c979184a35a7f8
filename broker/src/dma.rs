//! DMA memory: a physically contiguous region, mapped uncached, whose
//! physical addresses the kernel reported. [`DmaPool`] hands out aligned
//! buffers from it; it is plain bookkeeping, so a holder can run it itself.

use crate::ranges::RangeAllocator;
use kaal_sel4::Word;

/// A physically contiguous, uncached region of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    pub vaddr: Word,
    pub paddr: Word,
    pub size: u64,
}

/// One buffer of a pool: where the CPU and where a device see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuffer {
    pub vaddr: Word,
    pub paddr: Word,
    pub size: u64,
}

/// Why a pool could not serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// No free run of the size and alignment asked for.
    Exhausted,
    /// Size zero, an alignment that is not a power of two, or a buffer this
    /// pool did not hand out.
    Invalid,
}

/// Aligned allocation inside a [`DmaRegion`].
#[derive(Clone, Debug)]
pub struct DmaPool {
    region: DmaRegion,
    free: RangeAllocator,
}

impl DmaPool {
    pub fn new(region: DmaRegion) -> Self {
        DmaPool {
            region,
            free: RangeAllocator::new(0, region.size),
        }
    }

    pub fn region(&self) -> DmaRegion {
        self.region
    }

    /// Free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free.free_total()
    }

    /// A buffer of `size` bytes whose physical address is a multiple of
    /// `align` (a power of two).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<DmaBuffer, DmaError> {
        if size == 0 || !align.is_power_of_two() {
            return Err(DmaError::Invalid);
        }
        // Align physical addresses: offsets are relative to the region base.
        let misalign = self.region.paddr & (align - 1);
        if misalign != 0 {
            return Err(DmaError::Invalid);
        }
        let off = self.free.alloc(size, align).ok_or(DmaError::Exhausted)?;
        Ok(DmaBuffer {
            vaddr: self.region.vaddr + off,
            paddr: self.region.paddr + off,
            size,
        })
    }

    /// Returns a buffer; one not from this pool, or already returned, is refused.
    pub fn free(&mut self, buf: DmaBuffer) -> Result<(), DmaError> {
        let off = buf
            .paddr
            .checked_sub(self.region.paddr)
            .ok_or(DmaError::Invalid)?;
        if buf.vaddr != self.region.vaddr + off || off + buf.size > self.region.size {
            return Err(DmaError::Invalid);
        }
        self.free.free(off, buf.size).map_err(|_| DmaError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_and_double_free() {
        let region = DmaRegion {
            vaddr: 0x5000_0000,
            paddr: 0x20_0000,
            size: 0x4000,
        };
        let mut p = DmaPool::new(region);
        let a = p.alloc(100, 64).unwrap();
        let b = p.alloc(0x1000, 0x1000).unwrap();
        assert_eq!(a.paddr % 64, 0);
        assert_eq!(b.paddr % 0x1000, 0);
        assert_ne!(a.paddr, b.paddr);
        assert_eq!(b.vaddr - region.vaddr, b.paddr - region.paddr);
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
}
