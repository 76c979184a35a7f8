//! A Linux process's address space as ranges of reserved pages with their
//! protection: what `brk`, `mmap`, `munmap` and `mprotect` decide. Which
//! pages are present (have a frame) is the server's business: a reserved
//! page gets its frame when first touched (a page fault the server answers)
//! or when something is loaded into it, so a big stack or `mmap` costs
//! nothing until used.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

use crate::errno::Errno;
use crate::pagecache::FileId;

pub const PAGE: u64 = 4096;

/// Lowest address a mapping may use (Linux's default `mmap_min_addr`).
pub const MIN_ADDR: u64 = 0x1_0000;
/// The end of a process's address space (exclusive): 4 GiB. seL4 5.0.0's
/// x86 `handleVMFault` keeps the fault address in a `uint32_t`
/// (src/arch/x86/kernel/vspace.c), so a page fault above 4 GiB would be
/// reported at the wrong address; below it the address is exact.
pub const USER_END: u64 = 0x1_0000_0000;
/// Top of the initial stack (the page above it stays unmapped).
pub const STACK_TOP: u64 = USER_END - 0x2000;
/// Room the stack may grow into (Linux's default RLIMIT_STACK).
pub const STACK_BYTES: u64 = 8 << 20;
/// `mmap` without an address places mappings below this, top down (a
/// 256 MiB gap under the stack's reach).
pub const MMAP_TOP: u64 = STACK_TOP - STACK_BYTES - (256 << 20);

/// Page protection (Linux `PROT_*` bits 1, 2, 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };
    pub const RX: Prot = Prot {
        read: true,
        write: false,
        exec: true,
    };
    pub const R: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };

    /// From `PROT_*` bits; unknown bits are `EINVAL`.
    pub fn from_bits(bits: u64) -> Result<Prot, Errno> {
        if bits & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Prot {
            read: bits & 1 != 0,
            write: bits & 2 != 0,
            exec: bits & 4 != 0,
        })
    }
}

/// What a range of pages holds, for what a fault or `fork` does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A segment of the program (its pages are the loaded program's
    /// until written to: the server maps them when touched).
    Image,
    /// The `brk` heap.
    Heap,
    /// The stack (grows down on demand inside its reservation).
    Stack,
    /// Anonymous `mmap` memory.
    Anon,
    /// A private file mapping (present from the start, read at `mmap`).
    File,
    /// Anonymous `MAP_SHARED` memory: present from the start, and its
    /// frames shared with forked children rather than copied.
    Shared,
    /// A `MAP_SHARED` file mapping of `file`: the server's shared pages of
    /// the file (every mapping of a file page maps one frame), present
    /// from the start up to the file's end, and when touched past it if
    /// the file grew; page `v` maps file offset `v - base` (wrapping), so
    /// the offset holds however the area is split; `may_write` when the
    /// file was open for writing (else `mprotect` may not add
    /// `PROT_WRITE`, as Linux).
    SharedFile {
        may_write: bool,
        file: FileId,
        base: u64,
    },
}

impl Kind {
    /// True when the frames are shared with every mapper (and a forked
    /// child) rather than copied.
    pub fn is_shared(self) -> bool {
        matches!(self, Kind::Shared | Kind::SharedFile { .. })
    }

    /// A shared file mapping's file and the file offset of page `vaddr`.
    pub fn file_offset(self, vaddr: u64) -> Option<(FileId, u64)> {
        match self {
            Kind::SharedFile { file, base, .. } => Some((file, vaddr.wrapping_sub(base))),
            _ => None,
        }
    }

    /// The kind of these pages moved from `from` to `to` (`mremap`): a
    /// file mapping keeps its offsets.
    fn moved(self, from: u64, to: u64) -> Kind {
        match self {
            Kind::SharedFile {
                may_write,
                file,
                base,
            } => Kind::SharedFile {
                may_write,
                file,
                base: base.wrapping_add(to.wrapping_sub(from)),
            },
            other => other,
        }
    }
}

/// How many bytes of file page `index` lie inside a file of `size` bytes:
/// what write-back writes (a store past the end never extends the file).
pub fn file_bytes_in_page(size: u64, index: u64) -> usize {
    let start = index.saturating_mul(PAGE);
    size.saturating_sub(start).min(PAGE) as usize
}

/// Whether a present page of `area` is mapped writable: a shared file
/// page only once stored to (`dirty`: a write fault marks it, so pages
/// never stored to are never written back); a private page only while
/// no other holder has its frame (`shared_frame`: a forked relative, the
/// loaded program), so that the first store copies it (copy-on-write).
pub fn maps_writable(area: &Area, dirty: bool, shared_frame: bool) -> bool {
    match area.kind {
        Kind::SharedFile { .. } => area.prot.write && dirty,
        Kind::Shared => area.prot.write,
        _ => area.prot.write && !shared_frame,
    }
}

/// `ranges` less `cut`.
pub fn subtract(ranges: &mut Vec<Range<u64>>, cut: &Range<u64>) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges.drain(..) {
        if r.end <= cut.start || cut.end <= r.start {
            out.push(r);
            continue;
        }
        if r.start < cut.start {
            out.push(r.start..cut.start);
        }
        if cut.end < r.end {
            out.push(cut.end..r.end);
        }
    }
    *ranges = out;
}

/// A run of reserved pages with one protection and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub end: u64,
    pub prot: Prot,
    pub kind: Kind,
}

/// `mmap` flags the layout looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapFlags {
    pub fixed: bool,
    pub fixed_noreplace: bool,
}

/// What `Layout::mremap` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remap {
    /// The reservation keeps its start; `dropped` lost its pages.
    InPlace { dropped: Vec<Range<u64>> },
    /// A new reservation `to` (the pages move there, then the old one
    /// goes); `replaced` lost its pages first.
    Moved {
        to: Range<u64>,
        replaced: Vec<Range<u64>>,
    },
}

/// The reserved ranges of one address space.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    areas: BTreeMap<u64, Area>,
    brk_start: u64,
    brk: u64,
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

impl Layout {
    pub fn new() -> Layout {
        Layout::default()
    }

    /// The area holding `addr`, with its start.
    pub fn area_at(&self, addr: u64) -> Option<(u64, Area)> {
        let (&start, &area) = self.areas.range(..=addr).next_back()?;
        (addr < area.end).then_some((start, area))
    }

    /// Every area, in address order.
    pub fn areas(&self) -> impl Iterator<Item = (u64, Area)> + '_ {
        self.areas.iter().map(|(&s, &a)| (s, a))
    }

    /// True if any page of `range` is reserved.
    pub fn overlaps(&self, range: Range<u64>) -> bool {
        if range.is_empty() {
            return false;
        }
        if self.area_at(range.start).is_some() {
            return true;
        }
        self.areas.range(range.start..range.end).next().is_some()
    }

    /// Splits areas so that `at` begins one (if it lies inside one).
    fn split(&mut self, at: u64) {
        if let Some((start, area)) = self.area_at(at) {
            if start < at {
                self.areas.insert(start, Area { end: at, ..area });
                self.areas.insert(at, area);
            }
        }
    }

    /// Removes every reservation in `range`; returns the removed runs.
    fn carve(&mut self, range: Range<u64>) -> Vec<(Range<u64>, Area)> {
        self.split(range.start);
        self.split(range.end);
        let starts: Vec<u64> = self
            .areas
            .range(range.start..range.end)
            .map(|(&s, _)| s)
            .collect();
        starts
            .into_iter()
            .filter_map(|s| self.areas.remove(&s).map(|a| (s..a.end, a)))
            .collect()
    }

    /// Reserves `range` (page aligned, free) as `kind` with `prot`.
    pub fn reserve(&mut self, range: Range<u64>, prot: Prot, kind: Kind) -> Result<(), Errno> {
        if !range.start.is_multiple_of(PAGE) || !range.end.is_multiple_of(PAGE) || range.is_empty()
        {
            return Err(Errno::EINVAL);
        }
        if range.start < MIN_ADDR || range.end > USER_END {
            return Err(Errno::ENOMEM);
        }
        if self.overlaps(range.clone()) {
            return Err(Errno::EEXIST);
        }
        self.areas.insert(
            range.start,
            Area {
                end: range.end,
                prot,
                kind,
            },
        );
        self.merge_around(range.start);
        Ok(())
    }

    /// Joins the area at `start` with equal neighbours.
    fn merge_around(&mut self, start: u64) {
        let Some(area) = self.areas.get(&start).copied() else {
            return;
        };
        let mut start = start;
        if let Some((&ps, &prev)) = self.areas.range(..start).next_back() {
            if prev.end == start && prev.prot == area.prot && prev.kind == area.kind {
                self.areas.remove(&start);
                self.areas.insert(
                    ps,
                    Area {
                        end: area.end,
                        ..prev
                    },
                );
                start = ps;
            }
        }
        let Some(area) = self.areas.get(&start).copied() else {
            return;
        };
        if let Some(next) = self.areas.get(&area.end).copied() {
            if next.prot == area.prot && next.kind == area.kind {
                self.areas.remove(&area.end);
                self.areas.insert(
                    start,
                    Area {
                        end: next.end,
                        ..area
                    },
                );
            }
        }
    }

    /// Sets where the heap starts (the end of the program's image).
    pub fn set_brk_start(&mut self, at: u64) {
        let at = page_up(at).unwrap_or(at);
        self.brk_start = at;
        self.brk = at;
    }

    pub fn brk(&self) -> u64 {
        self.brk
    }

    /// Linux's `brk(new)`: moves the break if it can and returns the break
    /// after (the old one when it cannot), with the pages to drop. Pages
    /// gained are reserved as heap and come on demand.
    pub fn set_brk(&mut self, new: u64) -> (u64, Vec<Range<u64>>) {
        if new < self.brk_start || new >= MMAP_TOP {
            return (self.brk, Vec::new());
        }
        let (Some(old_end), Some(new_end)) = (page_up(self.brk), page_up(new)) else {
            return (self.brk, Vec::new());
        };
        let mut dropped = Vec::new();
        if new_end > old_end {
            if self.overlaps(old_end..new_end) {
                return (self.brk, Vec::new());
            }
            if self
                .reserve(old_end..new_end, Prot::RW, Kind::Heap)
                .is_err()
            {
                return (self.brk, Vec::new());
            }
        } else if new_end < old_end {
            dropped = self
                .carve(new_end..old_end)
                .into_iter()
                .map(|(r, _)| r)
                .collect();
        }
        self.brk = new;
        (new, dropped)
    }

    /// Chooses and reserves the range of an `mmap` of `len` bytes; returns
    /// it with the reserved ranges it replaced (a fixed mapping over older
    /// ones), whose pages the caller drops first.
    pub fn mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: Prot,
        flags: MapFlags,
        kind: Kind,
    ) -> Result<(Range<u64>, Vec<Range<u64>>), Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags.fixed || flags.fixed_noreplace {
            if !addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if addr < MIN_ADDR || end > USER_END {
                return Err(if flags.fixed {
                    Errno::EPERM
                } else {
                    Errno::ENOMEM
                });
            }
            if flags.fixed_noreplace && self.overlaps(addr..end) {
                return Err(Errno::EEXIST);
            }
            let replaced = self.carve(addr..end).into_iter().map(|(r, _)| r).collect();
            self.reserve(addr..end, prot, kind)?;
            return Ok((addr..end, replaced));
        }
        // A hint is taken when the range is free.
        let hint = addr & !(PAGE - 1);
        if hint >= MIN_ADDR {
            if let Some(end) = hint.checked_add(len) {
                if end <= MMAP_TOP && !self.overlaps(hint..end) {
                    self.reserve(hint..end, prot, kind)?;
                    return Ok((hint..end, Vec::new()));
                }
            }
        }
        let start = self.find_free(len).ok_or(Errno::ENOMEM)?;
        self.reserve(start..start + len, prot, kind)?;
        Ok((start..start + len, Vec::new()))
    }

    /// `mremap` of the reservation at `old..old + old_len` to `new_len`
    /// bytes: the range it now has (the same start when it shrank or grew
    /// in place, a new one when `may_move` let it move, or `fixed` put it
    /// there) and the ranges the caller must drop (a shrunk tail, what a
    /// fixed target replaced). The old range must lie in one area. Moving
    /// pages is the caller's: it moves those of `old..old + old_len.min(new_len)`
    /// to the new start, then the old reservation is released.
    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<Remap, Errno> {
        if !old.is_multiple_of(PAGE) || (fixed.is_some() && !may_move) {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || old_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        let (_, area) = self.area_at(old).ok_or(Errno::EFAULT)?;
        if old_end > area.end {
            return Err(Errno::EFAULT);
        }
        if let Some(to) = fixed {
            if !to.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let to_end = to.checked_add(new_len).ok_or(Errno::EINVAL)?;
            // The two ranges may not overlap.
            if to < old_end && old < to_end {
                return Err(Errno::EINVAL);
            }
            let (range, replaced) = self.mmap(
                to,
                new_len,
                area.prot,
                MapFlags {
                    fixed: true,
                    fixed_noreplace: false,
                },
                area.kind.moved(old, to),
            )?;
            return Ok(Remap::Moved {
                to: range,
                replaced,
            });
        }
        if new_len <= old_len {
            let dropped = self
                .carve(old + new_len..old_end)
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            return Ok(Remap::InPlace { dropped });
        }
        let new_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        let top = if old < MMAP_TOP { MMAP_TOP } else { USER_END };
        if new_end <= top && !self.overlaps(old_end..new_end) {
            self.reserve(old_end..new_end, area.prot, area.kind)?;
            return Ok(Remap::InPlace {
                dropped: Vec::new(),
            });
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let (range, _) = self.mmap(0, new_len, area.prot, MapFlags::default(), area.kind)?;
        self.retag(range.clone(), area.kind.moved(old, range.start));
        Ok(Remap::Moved {
            to: range,
            replaced: Vec::new(),
        })
    }

    /// The highest free range of `len` bytes below [`MMAP_TOP`], above the
    /// heap's reach.
    fn find_free(&self, len: u64) -> Option<u64> {
        let floor = self.brk_start.max(MIN_ADDR);
        let mut top = MMAP_TOP;
        for (&start, area) in self.areas.range(..MMAP_TOP).rev() {
            let low = area.end.max(floor);
            if top >= low && top - low >= len {
                return Some(top - len);
            }
            top = top.min(start);
            if top <= floor {
                return None;
            }
        }
        (top >= floor && top - floor >= len).then(|| top - len)
    }

    /// Gives the reserved `range` kind `kind` (a mapping whose kind depends
    /// on where it was placed).
    pub fn retag(&mut self, range: Range<u64>, kind: Kind) {
        for (r, area) in self.carve(range) {
            self.areas.insert(r.start, Area { kind, ..area });
            self.merge_around(r.start);
        }
    }

    /// Linux's `munmap`: drops any reservation in the range; returns the
    /// ranges dropped.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<Vec<Range<u64>>, Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > USER_END {
            return Err(Errno::EINVAL);
        }
        let out = self.carve(addr..end);
        Ok(out.into_iter().map(|(r, _)| r).collect())
    }

    /// Linux's `mprotect`: every page of the range must be reserved
    /// (`ENOMEM` otherwise). A page may not be both writable and
    /// executable (`EACCES`): KaaL keeps W^X for Linux programs too, and
    /// the server scans pages that become executable for system calls.
    /// Returns the ranges changed.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<Vec<Range<u64>>, Errno> {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        if prot.write && prot.exec {
            return Err(Errno::EACCES);
        }
        // Every page reserved? A shared mapping of a file not open for
        // writing stays read-only.
        let mut at = addr;
        while at < end {
            let (_, area) = self.area_at(at).ok_or(Errno::ENOMEM)?;
            if prot.write
                && matches!(
                    area.kind,
                    Kind::SharedFile {
                        may_write: false,
                        ..
                    }
                )
            {
                return Err(Errno::EACCES);
            }
            at = area.end;
        }
        let runs = self.carve(addr..end);
        let mut changed = Vec::new();
        for (r, area) in runs {
            self.areas.insert(r.start, Area { prot, ..area });
            changed.push(r);
        }
        let starts: Vec<u64> = changed.iter().map(|r| r.start).collect();
        for s in starts {
            self.merge_around(s);
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_mappings_keep_their_access_and_file_end() {
        let mut l = Layout::new();
        let file = (1, 12);
        let ro = Kind::SharedFile {
            may_write: false,
            file,
            base: 0,
        };
        let (r, _) = l
            .mmap(0, 8192, Prot::R, MapFlags::default(), ro)
            .expect("mmap");
        assert_eq!(l.mprotect(r.start, 4096, Prot::RW), Err(Errno::EACCES));
        assert!(l.mprotect(r.start, 4096, Prot::NONE).is_ok());
        let rw = Kind::SharedFile {
            may_write: true,
            file,
            base: 0,
        };
        let (w, _) = l
            .mmap(0, 2 * 4096, Prot::RW, MapFlags::default(), rw)
            .expect("mmap");
        assert!(l.mprotect(w.start, 4096, Prot::R).is_ok());
        // Placed: page w.start maps file offset 0x3000.
        let placed = Kind::SharedFile {
            may_write: true,
            file,
            base: w.start - 0x3000,
        };
        l.retag(w.clone(), placed);
        let second = l.area_at(w.start + 4096).expect("area").1.kind;
        assert_eq!(second.file_offset(w.start + 4096), Some((file, 0x4000)));
        // Moved (it cannot grow in place: the read-only mapping is above).
        let Ok(Remap::Moved { to, .. }) = l.mremap(w.start + 4096, 4096, 3 * 4096, true, None)
        else {
            panic!("mremap did not move");
        };
        let moved = l.area_at(to.start + 8192).expect("area").1.kind;
        assert_eq!(moved.file_offset(to.start), Some((file, 0x4000)));
        assert_eq!(moved.file_offset(to.start + 8192), Some((file, 0x6000)));
        assert_eq!(Kind::Anon.file_offset(to.start), None);
        assert!(rw.is_shared() && Kind::Shared.is_shared() && !Kind::File.is_shared());
        assert_eq!(file_bytes_in_page(5000, 0), 4096);
        assert_eq!(file_bytes_in_page(5000, 1), 904);
        assert_eq!(file_bytes_in_page(5000, 2), 0);
        assert_eq!(file_bytes_in_page(8192, 1), 4096);
        assert_eq!(file_bytes_in_page(u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn brk_grows_and_shrinks_by_pages() {
        let mut l = Layout::new();
        l.reserve(0x40_0000..0x40_2000, Prot::RX, Kind::Image)
            .expect("image");
        l.set_brk_start(0x40_2010);
        assert_eq!(l.brk(), 0x40_3000);
        assert_eq!(l.set_brk(0).0, 0x40_3000, "brk(0) asks");
        assert_eq!(l.set_brk(0x40_5001).0, 0x40_5001);
        assert!(l.area_at(0x40_5000).is_some());
        let (b, dropped) = l.set_brk(0x40_3800);
        assert_eq!(b, 0x40_3800);
        assert_eq!(dropped, alloc::vec![0x40_4000..0x40_6000]);
        assert_eq!(l.set_brk(0x40_1000).0, 0x40_3800, "below the start");
    }

    #[test]
    fn mmap_places_top_down_and_honours_fixed() {
        let mut l = Layout::new();
        let (a, _) = l
            .mmap(0, 5000, Prot::RW, MapFlags::default(), Kind::Anon)
            .expect("mmap");
        assert_eq!(a, MMAP_TOP - 0x2000..MMAP_TOP);
        let (b, _) = l
            .mmap(0, 4096, Prot::RW, MapFlags::default(), Kind::Anon)
            .expect("mmap");
        assert_eq!(b.end, a.start);
        let fixed = MapFlags {
            fixed: true,
            ..MapFlags::default()
        };
        let (c, replaced) = l
            .mmap(a.start, 4096, Prot::R, fixed, Kind::Anon)
            .expect("fixed");
        assert_eq!(c, a.start..a.start + 4096);
        assert_eq!(replaced, alloc::vec![a.start..a.start + 4096]);
        let noreplace = MapFlags {
            fixed_noreplace: true,
            ..MapFlags::default()
        };
        assert_eq!(
            l.mmap(a.start, 4096, Prot::R, noreplace, Kind::Anon).err(),
            Some(Errno::EEXIST)
        );
        assert_eq!(
            l.mmap(0, 0, Prot::R, MapFlags::default(), Kind::Anon).err(),
            Some(Errno::EINVAL)
        );
    }

    #[test]
    fn munmap_splits_and_mprotect_needs_every_page() {
        let mut l = Layout::new();
        l.reserve(0x10_0000..0x10_4000, Prot::RW, Kind::Anon)
            .expect("reserve");
        let dropped = l.munmap(0x10_1000, 0x1000).expect("munmap");
        assert_eq!(dropped, alloc::vec![0x10_1000..0x10_2000]);
        assert!(l.area_at(0x10_1000).is_none());
        assert!(l.area_at(0x10_2000).is_some());
        assert_eq!(
            l.mprotect(0x10_0000, 0x4000, Prot::R).err(),
            Some(Errno::ENOMEM)
        );
        assert_eq!(
            l.mprotect(0x10_2000, 0x2000, Prot::R).expect("mprotect"),
            alloc::vec![0x10_2000..0x10_4000]
        );
        assert_eq!(l.area_at(0x10_3000).map(|(_, a)| a.prot), Some(Prot::R));
        let wx = Prot {
            read: true,
            write: true,
            exec: true,
        };
        assert_eq!(l.mprotect(0x10_2000, 0x1000, wx).err(), Some(Errno::EACCES));
        assert_eq!(l.munmap(0x10_0001, 1).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn equal_neighbours_merge() {
        let mut l = Layout::new();
        l.reserve(0x10_0000..0x10_1000, Prot::RW, Kind::Anon)
            .expect("a");
        l.reserve(0x10_1000..0x10_2000, Prot::RW, Kind::Anon)
            .expect("b");
        assert_eq!(l.areas().count(), 1);
        l.mprotect(0x10_0000, 0x1000, Prot::R).expect("split");
        assert_eq!(l.areas().count(), 2);
        l.mprotect(0x10_0000, 0x1000, Prot::RW).expect("join");
        assert_eq!(l.areas().count(), 1);
    }
}

#[cfg(test)]
mod pages {
    use super::*;

    fn area(prot: Prot, kind: Kind) -> Area {
        Area {
            end: 0x2000,
            prot,
            kind,
        }
    }

    #[test]
    fn a_private_page_is_writable_only_while_its_frame_is_its_own() {
        for kind in [Kind::Image, Kind::Heap, Kind::Stack, Kind::Anon, Kind::File] {
            assert!(maps_writable(&area(Prot::RW, kind), false, false));
            assert!(!maps_writable(&area(Prot::RW, kind), false, true));
            assert!(!maps_writable(&area(Prot::R, kind), false, false));
        }
    }

    #[test]
    fn shared_memory_is_writable_with_its_frame_shared() {
        assert!(maps_writable(&area(Prot::RW, Kind::Shared), false, true));
        assert!(!maps_writable(&area(Prot::R, Kind::Shared), false, true));
        let file = Kind::SharedFile {
            may_write: true,
            file: (1, 2),
            base: 0,
        };
        assert!(!maps_writable(&area(Prot::RW, file), false, true));
        assert!(maps_writable(&area(Prot::RW, file), true, true));
        assert!(!maps_writable(&area(Prot::R, file), true, true));
    }

    #[test]
    fn subtract_cuts_holes_and_ends() {
        let mut r = alloc::vec![0x1000..0x5000, 0x8000..0x9000];
        subtract(&mut r, &(0x2000..0x3000));
        assert_eq!(
            r,
            alloc::vec![0x1000..0x2000, 0x3000..0x5000, 0x8000..0x9000]
        );
        subtract(&mut r, &(0x0..0x1800));
        assert_eq!(
            r,
            alloc::vec![0x1800..0x2000, 0x3000..0x5000, 0x8000..0x9000]
        );
        subtract(&mut r, &(0x4000..0x8800));
        assert_eq!(
            r,
            alloc::vec![0x1800..0x2000, 0x3000..0x4000, 0x8800..0x9000]
        );
        subtract(&mut r, &(0..u64::MAX));
        assert!(r.is_empty());
    }
}

#[cfg(test)]
mod musl_malloc {
    use super::*;

    /// musl's mallocng grows the heap with `brk` and maps a guard page at
    /// its start with `mmap(MAP_FIXED, PROT_NONE)`: the rest stays heap.
    #[test]
    fn a_fixed_guard_page_in_the_heap_leaves_the_rest() {
        let mut l = Layout::new();
        l.reserve(0x1000_0000..0x1007_7000, Prot::RW, Kind::Image)
            .expect("image");
        l.set_brk_start(0x1007_7000);
        assert_eq!(l.set_brk(0x1007_9000).0, 0x1007_9000);
        let fixed = MapFlags {
            fixed: true,
            ..MapFlags::default()
        };
        let (r, replaced) = l
            .mmap(0x1007_7000, 0x1000, Prot::NONE, fixed, Kind::Anon)
            .expect("guard");
        assert_eq!(r, 0x1007_7000..0x1007_8000);
        assert_eq!(replaced, alloc::vec![0x1007_7000..0x1007_8000]);
        let (_, heap) = l.area_at(0x1007_8000).expect("heap");
        assert_eq!((heap.prot, heap.kind), (Prot::RW, Kind::Heap));
    }

    #[test]
    fn mremap_shrinks_grows_and_moves() {
        let mut l = Layout::new();
        let (a, _) = l
            .mmap(0, 2 * PAGE, Prot::RW, MapFlags::default(), Kind::Anon)
            .expect("map");
        // Shrinking drops the tail.
        assert_eq!(
            l.mremap(a.start, 2 * PAGE, PAGE, false, None),
            Ok(Remap::InPlace {
                dropped: alloc::vec![a.start + PAGE..a.start + 2 * PAGE]
            })
        );
        assert!(l.area_at(a.start + PAGE).is_none());
        // Growing into the free page above stays in place.
        assert_eq!(
            l.mremap(a.start, PAGE, 2 * PAGE, false, None),
            Ok(Remap::InPlace {
                dropped: alloc::vec![]
            })
        );
        assert_eq!(
            l.area_at(a.start + PAGE).map(|(_, ar)| ar.kind),
            Some(Kind::Anon)
        );
        // Blocked above: without MAYMOVE it is ENOMEM, with it a new range.
        l.reserve(a.start + 2 * PAGE..a.start + 3 * PAGE, Prot::R, Kind::Anon)
            .expect("neighbour");
        assert_eq!(
            l.mremap(a.start, 2 * PAGE, 4 * PAGE, false, None),
            Err(Errno::ENOMEM)
        );
        let Ok(Remap::Moved { to, replaced }) = l.mremap(a.start, 2 * PAGE, 4 * PAGE, true, None)
        else {
            panic!("moved");
        };
        assert!(replaced.is_empty());
        assert_eq!(to.end - to.start, 4 * PAGE);
        assert!(to.end <= a.start || to.start >= a.start + 3 * PAGE);
        assert_eq!(l.area_at(to.start).map(|(_, ar)| ar.prot), Some(Prot::RW));
    }

    #[test]
    fn mremap_refuses_what_linux_refuses() {
        let mut l = Layout::new();
        let (a, _) = l
            .mmap(0, PAGE, Prot::RW, MapFlags::default(), Kind::Anon)
            .expect("map");
        assert_eq!(
            l.mremap(a.start + 1, PAGE, PAGE, true, None),
            Err(Errno::EINVAL)
        );
        assert_eq!(l.mremap(a.start, PAGE, 0, true, None), Err(Errno::EINVAL));
        assert_eq!(
            l.mremap(a.start, 2 * PAGE, PAGE, true, None),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            l.mremap(a.start, PAGE, PAGE, false, Some(0x2000_0000)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            l.mremap(a.start, PAGE, 2 * PAGE, true, Some(a.start)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            l.mremap(0x7000_0000, PAGE, PAGE, true, None),
            Err(Errno::EFAULT)
        );
    }
}
