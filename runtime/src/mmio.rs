//! Device registers mapped from a grant: volatile reads and writes at
//! offsets checked against the region and aligned to the register's width.

use crate::shared::OutOfRegion;

/// A register width: `u8`, `u16`, `u32` or `u64`.
pub trait Register: Copy + private::Sealed {}
impl Register for u8 {}
impl Register for u16 {}
impl Register for u32 {}
impl Register for u64 {}

mod private {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// A device's register region (see `Env::registers`).
#[derive(Debug)]
pub struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    /// # Safety
    /// `[base, base + len)` must be device registers mapped uncached for the
    /// life of the program, `base` page aligned.
    pub(crate) unsafe fn new(base: u64, len: u64) -> Mmio {
        Mmio { base, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at<T: Register>(&self, offset: u64) -> Result<*mut T, OutOfRegion> {
        let width = core::mem::size_of::<T>() as u64;
        let bad = OutOfRegion { offset, len: width };
        let end = offset.checked_add(width).ok_or(bad)?;
        if end > self.len || !offset.is_multiple_of(width) {
            return Err(bad);
        }
        Ok((self.base + offset) as *mut T)
    }

    /// Reads the register at `offset`.
    pub fn read<T: Register>(&self, offset: u64) -> Result<T, OutOfRegion> {
        let p = self.at::<T>(offset)?;
        // SAFETY: `at` checked the register lies in the mapped region and is
        // aligned to its width (the constructor's contract covers the rest).
        Ok(unsafe { p.read_volatile() })
    }

    /// Writes the register at `offset`.
    pub fn write<T: Register>(&self, offset: u64, value: T) -> Result<(), OutOfRegion> {
        let p = self.at::<T>(offset)?;
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) };
        Ok(())
    }
}
