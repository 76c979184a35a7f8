//! `kaal-loader`: the one ELF loader of KaaL. It turns the bytes of a component's
//! image into a validated [`LoadPlan`]: the entry point and up to [`MAX_SEGMENTS`]
//! segments, each with its virtual address, size, permissions and the file bytes it
//! starts with. The root task then allocates a frame per page, fills it with
//! [`Segment::fill_page`] and maps it; this crate reads the image and nothing else.
//!
//! ```text
//!  image bytes ──plan(image, user window)──► LoadPlan { entry, segments }
//!                                                        │ for each segment, for each page:
//!                                                        ▼
//!                             frame ◄── fill_page(image, page, frame) ── map(page, perm)
//! ```
//!
//! Images are static x86_64 executables (`ET_EXEC`), linked at fixed addresses: seL4
//! applies no relocations and neither does KaaL. The images are embedded in the root
//! task, yet a plan is only made from an image that passed every check below, so a
//! broken build or a corrupted image is reported with what is wrong, never mapped, and
//! never makes the root task panic.
//!
//! # What a plan guarantees
//!
//! - every segment's pages ([`Segment::pages`]) lie inside the `user` window;
//! - every segment's file range lies inside the image and is no longer than the segment;
//! - no segment is both writable and executable ([`Perm`] cannot say so);
//! - no two segments touch the same page, so every page has one owner and one permission;
//! - the entry point lies inside an executable segment.
//!
//! Segments are copied, not mapped from the image, so `p_offset` and `p_vaddr` need not
//! be congruent modulo the page size and `p_align` is not consulted.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::Range;

use elf::abi;
use elf::endian::{AnyEndian, LittleEndian};
use elf::file::Class;
use elf::segment::ProgramHeader;
use elf::{ElfBytes, ParseError};

/// The page size, the granularity of mapping and of the overlap check.
pub const PAGE: u64 = 4096;
/// [`PAGE`] as a length, for page buffers.
const PAGE_BYTES: usize = PAGE as usize;
/// The most `PT_LOAD` segments an image may have; KaaL's linker script makes two.
pub const MAX_SEGMENTS: usize = 8;

/// What a segment's pages allow, besides reading. Writable and executable together is
/// not representable (W^X).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    ReadOnly,
    ReadWrite,
    ReadExecute,
}

impl Perm {
    /// From `p_flags`: `X` gives [`Perm::ReadExecute`] (also without `R`: x86_64 pages
    /// cannot be execute-only), `W` gives [`Perm::ReadWrite`] (pages cannot be
    /// write-only either), anything else [`Perm::ReadOnly`]; `None` for `W` with `X`.
    fn from_flags(flags: u32) -> Option<Self> {
        match (flags & abi::PF_W != 0, flags & abi::PF_X != 0) {
            (true, true) => None,
            (false, true) => Some(Self::ReadExecute),
            (true, false) => Some(Self::ReadWrite),
            (false, false) => Some(Self::ReadOnly),
        }
    }
}

/// One loadable segment: `mem_size` bytes at `vaddr`, the first `file.len()` of them
/// taken from `image[file]`, the rest zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    /// The segment's initial bytes in the image; empty for a segment of zeros only.
    pub file: Range<usize>,
    pub perm: Perm,
}

impl Segment {
    /// The page-aligned range of virtual addresses covering the segment;
    /// `pages().step_by(PAGE as usize)` yields the address of each page to map.
    /// (Exact for segments of a [`LoadPlan`]; for hand-made ones the end saturates
    /// at the last page of the address space.)
    pub fn pages(&self) -> Range<u64> {
        let end = self.vaddr.saturating_add(self.mem_size);
        page_down(self.vaddr)..page_down(end.saturating_add(PAGE - 1))
    }

    /// Fills `out` (one page) with the bytes of the page starting at `page_vaddr`:
    /// file bytes where the segment has them, zeros elsewhere (before the segment starts,
    /// in its zero-filled tail, after it ends). `image` must be the image the plan was
    /// made from; from a shorter one, the page's file bytes are left zero.
    pub fn fill_page(&self, image: &[u8], page_vaddr: u64, out: &mut [u8; PAGE_BYTES]) {
        out.fill(0);
        // Nothing to copy is not an error: a page may hold only zero-filled memory.
        let _ = self.copy_file_bytes(image, page_vaddr, out);
    }

    /// Copies the part of `[vaddr, vaddr + file.len())` that falls into the page.
    fn copy_file_bytes(
        &self,
        image: &[u8],
        page_vaddr: u64,
        out: &mut [u8; PAGE_BYTES],
    ) -> Option<()> {
        let file_len = u64::try_from(self.file.len()).ok()?;
        let lo = self.vaddr.max(page_vaddr);
        let hi = self
            .vaddr
            .saturating_add(file_len)
            .min(page_vaddr.saturating_add(PAGE));
        if lo >= hi {
            return None;
        }
        // `lo` is at or above both bases, so the subtractions cannot wrap.
        let len = usize::try_from(hi - lo).ok()?;
        let src = self
            .file
            .start
            .checked_add(usize::try_from(lo - self.vaddr).ok()?)?;
        let dst = usize::try_from(lo - page_vaddr).ok()?;
        let from = image.get(src..src.checked_add(len)?)?;
        out.get_mut(dst..dst.checked_add(len)?)?
            .copy_from_slice(from);
        Some(())
    }
}

/// A validated image: where to start and what to map. See the crate documentation
/// for what it guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    len: usize,
}

impl LoadPlan {
    /// The entry point: an address inside an executable segment.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The segments, in program-header order.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.len).unwrap_or(&[])
    }
}

/// Why an image cannot be loaded. The root task prints it after the component's name.
#[derive(Debug)]
pub enum LoadError {
    /// No ELF magic number at the start.
    NotElf,
    /// A header or table lies past the end of the image.
    Truncated {
        len: usize,
    },
    /// Any other error of the ELF parser (unsupported version, bad entry sizes, ...).
    Malformed(ParseError),
    NotElf64,
    NotLittleEndian,
    /// `e_machine` is not `EM_X86_64`.
    NotX86_64 {
        machine: u16,
    },
    /// `e_type` is not `ET_EXEC`: relocatable, shared or position-independent.
    NotExecutable {
        e_type: u16,
    },
    NoLoadSegment,
    /// More than [`MAX_SEGMENTS`] non-empty `PT_LOAD` segments.
    TooManySegments,
    FileOutsideImage {
        vaddr: u64,
        offset: u64,
        size: u64,
    },
    FileLargerThanMemory {
        vaddr: u64,
        file_size: u64,
        mem_size: u64,
    },
    WritableAndExecutable {
        vaddr: u64,
    },
    /// Some page of the segment (or its end address) lies outside the window.
    OutsideWindow {
        vaddr: u64,
        mem_size: u64,
        window: (u64, u64),
    },
    /// Two segments touch a common page (`first` comes first in the program headers).
    SharedPage {
        first: u64,
        second: u64,
    },
    EntryNotExecutable {
        entry: u64,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => write!(f, "not an ELF image (no ELF magic number)"),
            Self::Truncated { len } => write!(
                f,
                "truncated ELF image: a header or table lies past its end ({len} bytes)"
            ),
            Self::Malformed(e) => write!(f, "malformed ELF image: {e}"),
            Self::NotElf64 => write!(f, "not a 64-bit (ELFCLASS64) image"),
            Self::NotLittleEndian => write!(f, "not a little-endian image"),
            Self::NotX86_64 { machine } => write!(
                f,
                "built for machine {machine}, not x86_64 ({})",
                abi::EM_X86_64
            ),
            Self::NotExecutable { e_type } => write!(
                f,
                "ELF type {e_type} is not a static executable (ET_EXEC); images are linked at fixed addresses and never relocated"
            ),
            Self::NoLoadSegment => write!(f, "no loadable (PT_LOAD) segment"),
            Self::TooManySegments => {
                write!(f, "more than {MAX_SEGMENTS} loadable (PT_LOAD) segments")
            }
            Self::FileOutsideImage {
                vaddr,
                offset,
                size,
            } => write!(
                f,
                "segment at {vaddr:#x}: file bytes {offset:#x}..+{size:#x} lie outside the image"
            ),
            Self::FileLargerThanMemory {
                vaddr,
                file_size,
                mem_size,
            } => write!(
                f,
                "segment at {vaddr:#x}: file size {file_size:#x} exceeds memory size {mem_size:#x}"
            ),
            Self::WritableAndExecutable { vaddr } => write!(
                f,
                "segment at {vaddr:#x} is both writable and executable (W^X)"
            ),
            Self::OutsideWindow {
                vaddr,
                mem_size,
                window: (start, end),
            } => write!(
                f,
                "segment at {vaddr:#x} (size {mem_size:#x}) lies outside the user window {start:#x}..{end:#x}"
            ),
            Self::SharedPage { first, second } => write!(
                f,
                "segments at {first:#x} and {second:#x} share a page"
            ),
            Self::EntryNotExecutable { entry } => write!(
                f,
                "entry point {entry:#x} is not inside an executable segment"
            ),
        }
    }
}

impl core::error::Error for LoadError {}

/// Checks `image` and makes its load plan. Every page of every segment must lie inside
/// `user`, the window of virtual addresses the component may occupy (`user` need not be
/// page-aligned: a page must then lie wholly inside it). `PT_LOAD` segments with
/// `p_memsz == 0` occupy no memory and are skipped; program headers of other types are
/// ignored.
pub fn plan(image: &[u8], user: Range<u64>) -> Result<LoadPlan, LoadError> {
    let elf = parse(image)?;
    let ehdr = &elf.ehdr;
    if ehdr.e_machine != abi::EM_X86_64 {
        return Err(LoadError::NotX86_64 {
            machine: ehdr.e_machine,
        });
    }
    if ehdr.e_type != abi::ET_EXEC {
        return Err(LoadError::NotExecutable {
            e_type: ehdr.e_type,
        });
    }
    let mut plan = LoadPlan {
        entry: ehdr.e_entry,
        segments: [const { EMPTY }; MAX_SEGMENTS],
        len: 0,
    };
    let phdrs = elf.segments().ok_or(LoadError::NoLoadSegment)?;
    for phdr in phdrs.iter().filter(|p| p.p_type == abi::PT_LOAD) {
        let Some(segment) = check_segment(image, &phdr, &user)? else {
            continue;
        };
        let new = segment.pages();
        if let Some(old) = plan
            .segments()
            .iter()
            .find(|old| old.pages().start < new.end && new.start < old.pages().end)
        {
            return Err(LoadError::SharedPage {
                first: old.vaddr,
                second: segment.vaddr,
            });
        }
        let slot = plan
            .segments
            .get_mut(plan.len)
            .ok_or(LoadError::TooManySegments)?;
        *slot = segment;
        plan.len += 1;
    }
    if plan.len == 0 {
        return Err(LoadError::NoLoadSegment);
    }
    let entry = plan.entry;
    let runs_entry = |s: &Segment| {
        s.perm == Perm::ReadExecute
            && entry
                .checked_sub(s.vaddr)
                .is_some_and(|offset| offset < s.mem_size)
    };
    if !plan.segments().iter().any(runs_entry) {
        return Err(LoadError::EntryNotExecutable { entry });
    }
    Ok(plan)
}

/// Filler for the unused slots of a plan.
const EMPTY: Segment = Segment {
    vaddr: 0,
    mem_size: 0,
    file: 0..0,
    perm: Perm::ReadOnly,
};

/// Parses the file header and locates the program headers of a 64-bit little-endian ELF.
fn parse(image: &[u8]) -> Result<ElfBytes<'_, LittleEndian>, LoadError> {
    let parse_error = |e| from_parse_error(e, image.len());
    // Class and byte order first: they decide how the rest of the header reads, and
    // "not ELF64" says more than whatever a 32-bit header's fields would trip over.
    let Some(ident) = image.get(..abi::EI_NIDENT) else {
        return Err(
            if abi::ELFMAGIC.starts_with(image.get(..4).unwrap_or(image)) {
                LoadError::Truncated { len: image.len() }
            } else {
                LoadError::NotElf
            },
        );
    };
    let (endian, class, _, _) = elf::file::parse_ident::<AnyEndian>(ident).map_err(parse_error)?;
    if class != Class::ELF64 {
        return Err(LoadError::NotElf64);
    }
    if endian != AnyEndian::Little {
        return Err(LoadError::NotLittleEndian);
    }
    ElfBytes::<LittleEndian>::minimal_parse(image).map_err(parse_error)
}

fn from_parse_error(e: ParseError, len: usize) -> LoadError {
    match e {
        ParseError::BadMagic(_) => LoadError::NotElf,
        ParseError::UnsupportedElfClass(_) => LoadError::NotElf64,
        ParseError::UnsupportedElfEndianness(_) => LoadError::NotLittleEndian,
        ParseError::SliceReadError(_) | ParseError::TryFromSliceError(_) => {
            LoadError::Truncated { len }
        }
        other => LoadError::Malformed(other),
    }
}

/// Validates one `PT_LOAD` header; `None` for a segment of no memory.
fn check_segment(
    image: &[u8],
    phdr: &ProgramHeader,
    user: &Range<u64>,
) -> Result<Option<Segment>, LoadError> {
    let vaddr = phdr.p_vaddr;
    let mem_size = phdr.p_memsz;
    if phdr.p_filesz > mem_size {
        return Err(LoadError::FileLargerThanMemory {
            vaddr,
            file_size: phdr.p_filesz,
            mem_size,
        });
    }
    // Checked after the size comparison, so a skipped segment has no file bytes either.
    if mem_size == 0 {
        return Ok(None);
    }
    let perm = Perm::from_flags(phdr.p_flags).ok_or(LoadError::WritableAndExecutable { vaddr })?;
    let in_window = vaddr
        .checked_add(mem_size)
        .and_then(|end| end.checked_next_multiple_of(PAGE))
        .is_some_and(|end| user.start <= page_down(vaddr) && end <= user.end);
    if !in_window {
        return Err(LoadError::OutsideWindow {
            vaddr,
            mem_size,
            window: (user.start, user.end),
        });
    }
    let file = file_range(image.len(), phdr.p_offset, phdr.p_filesz).ok_or(
        LoadError::FileOutsideImage {
            vaddr,
            offset: phdr.p_offset,
            size: phdr.p_filesz,
        },
    )?;
    Ok(Some(Segment {
        vaddr,
        mem_size,
        file,
        perm,
    }))
}

/// `offset..offset + size` as indices into an image of `image_len` bytes, if it fits.
fn file_range(image_len: usize, offset: u64, size: u64) -> Option<Range<usize>> {
    // Nothing is read from a segment without file bytes, so its offset does not matter
    // (linkers give bss-only segments offsets anywhere).
    if size == 0 {
        return Some(0..0);
    }
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    (end <= image_len).then_some(start..end)
}

fn page_down(addr: u64) -> u64 {
    addr & !(PAGE - 1)
}
