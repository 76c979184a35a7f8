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
        // SAFETY: `at` checked the bytes lie in the region, which is mapped
        // (the constructor's contract); `dst` is a distinct local buffer. The
        // peer may write concurrently: the copy then sees some mix of old and
        // new bytes, which is all an untrusted peer's data can promise.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `src` to `offset`.
    pub fn write(&self, offset: u64, src: &[u8]) -> Result<(), OutOfRegion> {
        let dst = self.at(offset, src.len())?;
        // SAFETY: as in `read`; no reference to the region exists, so
        // writing through the raw address aliases nothing.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }
}
