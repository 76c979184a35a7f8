//! The server's own view of a process page: every frame a process uses is
//! also mapped read-write in the server's window (the broker's
//! `allocate_memory`), so system calls copy user memory with plain loads
//! and stores, with no mapping per call.

use core::cell::Cell;

use kaal_broker::Memory;

use crate::space::PAGE;

/// One 4 KiB frame, mapped in the server's window for as long as it lives.
#[derive(Debug)]
pub struct FrameMem {
    pub mem: Memory,
    /// Stored to since it was read (only a shared file page needs to know:
    /// only such pages are written back).
    pub dirty: Cell<bool>,
}

impl FrameMem {
    pub fn new(mem: Memory) -> FrameMem {
        FrameMem {
            mem,
            dirty: Cell::new(false),
        }
    }

    /// Copies `out.len()` bytes from offset `off` of the page.
    pub fn read(&self, off: usize, out: &mut [u8]) {
        if off.checked_add(out.len()).is_none_or(|e| e > PAGE as usize) {
            return;
        }
        // SAFETY: the broker mapped this frame read-write at `mem.vaddr` in
        // the server's window and keeps it there until `mem` is freed,
        // which takes `self`; the range lies inside the page (checked), and
        // the bytes are plain data (a process may change them meanwhile,
        // which only gives it the bytes it wrote).
        unsafe {
            core::ptr::copy_nonoverlapping(
                (self.mem.vaddr as *const u8).add(off),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Copies `data` to offset `off` of the page.
    pub fn write(&self, off: usize, data: &[u8]) {
        if off
            .checked_add(data.len())
            .is_none_or(|e| e > PAGE as usize)
        {
            return;
        }
        // SAFETY: as for `read`; nothing of the server lives in this page.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.mem.vaddr as *mut u8).add(off),
                data.len(),
            );
        }
    }

    /// Copies the whole page from `src` (a copy-on-write page's first
    /// store).
    pub fn copy_from(&self, src: &FrameMem) {
        if core::ptr::eq(self, src) {
            return;
        }
        // SAFETY: both frames are mapped read-write in the server's window
        // for as long as they live (see `read`), and two `FrameMem`s are
        // two distinct frames, so the pages do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src.mem.vaddr as *const u8,
                self.mem.vaddr as *mut u8,
                PAGE as usize,
            );
        }
    }
}
