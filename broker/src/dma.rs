//! DMA memory: a physically contiguous region, mapped uncached, whose
//! physical addresses the kernel reported. Its holder hands out buffers in
//! it itself (`kaal_dddk::dma::DmaPool`).

use kaal_sel4::Word;

/// A physically contiguous, uncached region of memory, as the broker
/// allocated it and mapped it in the root task's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    pub vaddr: Word,
    pub paddr: Word,
    pub size: u64,
}
