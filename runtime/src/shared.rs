//! Memory shared with another component. The peer may change it at any
//! moment, so it is never handed out as a Rust reference: bytes are copied
//! in and out at checked offsets.

/// A memory channel's region (see `Env::shared_region`).
#[derive(Debug)]
pub struct SharedRegion {
    base: u64,
    len: u64,
}

/// An offset and length that do not lie inside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRegion {
    pub offset: u64,
    pub len: u64,
}

impl SharedRegion {
    /// # Safety
    /// `[base, base + len)` must be mapped read-write for the life of the
    /// program and used by no Rust reference in this component.
    pub(crate) unsafe fn new(base: u64, len: u64) -> SharedRegion {
        SharedRegion { base, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at(&self, offset: u64, len: usize) -> Result<u64, OutOfRegion> {
        let bad = OutOfRegion {
            offset,
            len: len as u64,
        };
        let end = offset.checked_add(len as u64).ok_or(bad)?;
        if end > self.len {
            return Err(bad);
        }
        Ok(self.base + offset)
    }

    /// Copies `dst.len()` bytes from `offset` into `dst`.
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), OutOfRegion> {
        let src = self.at(offset, dst.len())?;
        let words = dst.len() / 8;
        let (body, tail) = dst.split_at_mut(words * 8);
        // Volatile reads: the peer may write at any time, and a volatile read
        // of memory another program changes is defined (it yields whatever
        // bytes are there), which a plain copy's is not.
        if src.is_multiple_of(8) {
            for (i, chunk) in body.chunks_exact_mut(8).enumerate() {
                // SAFETY: `at` checked the bytes lie in the region, mapped
                // for the program's life (the constructor's contract);
                // `src + 8 i` is 8-aligned.
                let w = unsafe { ((src + 8 * i as u64) as *const u64).read_volatile() };
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
        } else {
            for (i, b) in body.iter_mut().enumerate() {
                // SAFETY: as above, byte by byte.
                *b = unsafe { ((src + i as u64) as *const u8).read_volatile() };
            }
        }
        let tail_at = src + (words * 8) as u64;
        for (i, b) in tail.iter_mut().enumerate() {
            // SAFETY: as above.
            *b = unsafe { ((tail_at + i as u64) as *const u8).read_volatile() };
        }
        Ok(())
    }

    /// Copies `src` to `offset`.
    pub fn write(&self, offset: u64, src: &[u8]) -> Result<(), OutOfRegion> {
        let dst = self.at(offset, src.len())?;
        let words = src.len() / 8;
        let (body, tail) = src.split_at(words * 8);
        if dst.is_multiple_of(8) {
            for (i, chunk) in body.chunks_exact(8).enumerate() {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                // SAFETY: as in `read`; no reference to the region exists,
                // so writing through the raw address aliases nothing.
                unsafe { ((dst + 8 * i as u64) as *mut u64).write_volatile(u64::from_ne_bytes(w)) };
            }
        } else {
            for (i, &b) in body.iter().enumerate() {
                // SAFETY: as above, byte by byte.
                unsafe { ((dst + i as u64) as *mut u8).write_volatile(b) };
            }
        }
        let tail_at = dst + (words * 8) as u64;
        for (i, &b) in tail.iter().enumerate() {
            // SAFETY: as above.
            unsafe { ((tail_at + i as u64) as *mut u8).write_volatile(b) };
        }
        Ok(())
    }
}
