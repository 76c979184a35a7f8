//! The boot allocator: slots from BootInfo's empty range, objects from RAM
//! untypeds in order, pages mapped into a window of the root task's address
//! space. It never frees; the capability broker replaces it for everything
//! after boot.

use crate::{Context, RootError};
use core::ops::Range;
use kaal_sel4::bootinfo::{BootInfo, UntypedInfo};
use kaal_sel4::cap::{
    init, CacheMode, Cap, Frame, Object, PageDirectory, PageTable, Pdpt, Rights, Untyped,
};
use kaal_sel4::{Error, Word};

/// Virtual window for pages the boot allocator maps (the guide's layout puts
/// IPC buffers and stacks from 0x1000_0000 on).
pub const MAP_WINDOW: Range<Word> = 0x1000_0000..0x2000_0000;
const PAGE: Word = 4096;

/// Pages mapped by [`BootAlloc::map_pages`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    pub vaddr: Word,
    /// The first page's frame; the rest follow in consecutive slots.
    pub first_frame: Frame,
    pub count: usize,
}

impl Pages {
    pub fn end(&self) -> Word {
        self.vaddr + self.count as Word * PAGE
    }
}

pub struct BootAlloc {
    bi: BootInfo,
    slots: Range<Word>,
    /// Index (among all untypeds) of the one currently retyped from.
    untyped: usize,
    next_vaddr: Word,
}

impl BootAlloc {
    pub fn new(bi: &BootInfo) -> Self {
        BootAlloc {
            bi: *bi,
            slots: bi.empty(),
            untyped: 0,
            next_vaddr: MAP_WINDOW.start,
        }
    }

    /// Free slots left.
    pub fn free_slots(&self) -> Word {
        self.slots.end - self.slots.start
    }

    pub fn alloc_slot(&mut self) -> Result<Word, RootError> {
        let s = self.slots.next().ok_or(RootError::OutOfSlots)?;
        Ok(s)
    }

    fn ram(&self, i: usize) -> Option<UntypedInfo> {
        self.bi.untypeds().nth(i)
    }

    /// Retypes `count` objects of `ty` into fresh consecutive slots, moving
    /// on to the next RAM untyped when one is full.
    pub fn retype_raw(&mut self, ty: Word, size_bits: u32, count: Word) -> Result<Word, RootError> {
        if self.free_slots() < count {
            return Err(RootError::OutOfSlots);
        }
        let first = self.slots.start;
        while let Some(u) = self.ram(self.untyped) {
            if !u.is_device && u32::from(u.size_bits) >= size_bits {
                let ut = Untyped::from_cptr(u.cptr);
                match ut.retype(ty, Word::from(size_bits), init::CNODE, first, count) {
                    Ok(()) => {
                        self.slots.start += count;
                        return Ok(first);
                    }
                    Err(Error::NotEnoughMemory) => {}
                    Err(e) => return Err(e).context("Untyped_Retype"),
                }
            }
            self.untyped += 1;
        }
        Err(RootError::OutOfMemory { size_bits })
    }

    /// Retypes one fixed-size object.
    pub fn retype<T: Object>(&mut self) -> Result<T, RootError> {
        let slot = self.retype_raw(T::TYPE, T::SIZE_BITS, 1)?;
        Ok(T::from_cptr(slot))
    }

    /// Maps `count` fresh zeroed pages, read-write, at the next free address of
    /// the window, leaving an unmapped guard page after them.
    pub fn map_pages(&mut self, count: usize) -> Result<Pages, RootError> {
        let bytes = (count as Word + 1) * PAGE;
        if count == 0 || self.next_vaddr + bytes > MAP_WINDOW.end {
            return Err(RootError::OutOfVirtualSpace);
        }
        let first = self.retype_raw(Frame::TYPE, Frame::SIZE_BITS, count as Word)?;
        let vaddr = self.next_vaddr;
        self.next_vaddr += bytes;
        for i in 0..count as Word {
            self.map_frame(Frame::from_cptr(first + i), vaddr + i * PAGE)?;
        }
        Ok(Pages {
            vaddr,
            first_frame: Frame::from_cptr(first),
            count,
        })
    }

    /// Maps a frame, creating the paging structures above it on demand.
    pub fn map_frame(&mut self, frame: Frame, vaddr: Word) -> Result<(), RootError> {
        let map = |f: Frame| {
            f.map(
                init::VSPACE,
                vaddr,
                Rights::read_write(),
                CacheMode::WriteBack,
            )
        };
        match map(frame) {
            Err(Error::FailedLookup) => {
                self.map_tables(vaddr)?;
                map(frame).context("X86_Page_Map")
            }
            r => r.context("X86_Page_Map"),
        }
    }

    fn map_tables(&mut self, vaddr: Word) -> Result<(), RootError> {
        let pt: PageTable = self.retype()?;
        match pt.map(init::VSPACE, vaddr) {
            Err(Error::FailedLookup) => {}
            r => return r.context("X86_PageTable_Map"),
        }
        let pd: PageDirectory = self.retype()?;
        match pd.map(init::VSPACE, vaddr) {
            Err(Error::FailedLookup) => {
                let pdpt: Pdpt = self.retype()?;
                pdpt.map(init::VSPACE, vaddr).context("X86_PDPT_Map")?;
                pd.map(init::VSPACE, vaddr)
                    .context("X86_PageDirectory_Map")?;
            }
            r => r.context("X86_PageDirectory_Map")?,
        }
        pt.map(init::VSPACE, vaddr).context("X86_PageTable_Map")
    }
}
