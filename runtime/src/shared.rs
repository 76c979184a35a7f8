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
        // SAFETY: `at` checked the bytes lie in the region, mapped for the
        // program's life (the constructor's contract); `dst` is a slice of
        // ours of the same length.
        unsafe { copy(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `src` to `offset`.
    pub fn write(&self, offset: u64, src: &[u8]) -> Result<(), OutOfRegion> {
        let dst = self.at(offset, src.len())?;
        // SAFETY: as in `read`; no reference to the region exists, so
        // writing through the raw address aliases nothing.
        unsafe { copy(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }
}

/// Copies `len` bytes with `rep movsq` (and `rep movsb` for the last few).
/// The peer may write the region at any time: the copy is an `asm` block
/// the compiler cannot see into, so, as with volatile accesses, it neither
/// assumes the bytes stay put nor reads them twice; each byte is read once
/// and yields whatever is there. One instruction per 8 bytes (TCG counts
/// each repetition once), where a loop of volatile words took three.
///
/// # Safety
/// `[src, src + len)` must be readable and `[dst, dst + len)` writable, and
/// they must not overlap.
unsafe fn copy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract; the direction flag is clear on entry to
    // an `asm` block (the Rust ABI), so the copy runs upwards.
    unsafe {
        core::arch::asm!(
            "rep movsq",
            "mov ecx, {tail:e}",
            "rep movsb",
            tail = in(reg) len % 8,
            inout("rcx") len / 8 => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags)
        );
    }
}
