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
//! Images are static x86_64 executables. [`plan`] takes only `ET_EXEC` images, linked
//! at fixed addresses (KaaL's components: seL4 applies no relocations and neither does
//! KaaL). [`plan_at`] also takes static position-independent executables (`ET_DYN`
//! without `PT_INTERP`, as Rust's `x86_64-unknown-linux-musl` makes them), placed at a
//! base the caller picks; their own start code applies their relocations. Dynamically
//! linked images (with `PT_INTERP`) are refused by both: there is no dynamic linker.
//! A plan is only made from an image that passed every check below, so a broken build
//! or a corrupted image is reported with what is wrong, never mapped, and never makes
//! the caller panic.
//!
//! # What a plan guarantees
//!
//! - every segment's pages ([`Segment::pages`]) lie inside the `user` window;
//! - every segment's file range lies inside the image and is no longer than the segment;
//! - no segment is both writable and executable ([`Perm`] cannot say so);
//! - no two segments touch the same page, so every page has one owner and one permission;
//! - the entry point lies inside an executable segment;
//! - [`LoadPlan::phdrs`]'s address, when it has one, lies inside a segment.
//!
//! All addresses of a plan are where the image runs: for `ET_DYN`, link addresses
//! plus [`LoadPlan::bias`].
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
use elf::segment::{ProgramHeader, SegmentTable};
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
    /// Whether `size` bytes from `addr` (at least one) lie inside the segment.
    fn holds(&self, addr: u64, size: u64) -> bool {
        addr.checked_sub(self.vaddr)
            .is_some_and(|offset| offset < self.mem_size && size.max(1) <= self.mem_size - offset)
    }

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

/// The program header table, as a Linux process learns it from its auxiliary vector
/// (`AT_PHDR`, `AT_PHENT`, `AT_PHNUM`): static C libraries find their TLS template and
/// RELRO range through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phdrs {
    /// Where the table is in the process's memory: from `PT_PHDR` if the image has one,
    /// else inside the segment whose file bytes hold the table. `None` if the table is
    /// not loaded (KaaL's components need it not; a Linux process does).
    pub vaddr: Option<u64>,
    /// `e_phentsize`: 56 for ELF64.
    pub entry_size: u64,
    /// The number of program headers.
    pub count: u64,
}

/// The `PT_TLS` header: the initial thread-local data is `file_size` bytes at `vaddr`
/// (inside a loaded segment), then zeros up to `mem_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls {
    pub vaddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub align: u64,
}

/// A validated image: where to start and what to map. See the crate documentation
/// for what it guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    len: usize,
    bias: u64,
    phdrs: Phdrs,
    tls: Option<Tls>,
    stack_executable: Option<bool>,
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

    /// What was added (modulo 2^64) to the image's link addresses: 0 for `ET_EXEC`.
    pub fn bias(&self) -> u64 {
        self.bias
    }

    /// The program header table.
    pub fn phdrs(&self) -> Phdrs {
        self.phdrs
    }

    /// The `PT_TLS` header, if the image has thread-local data whose initial bytes lie
    /// inside a segment.
    pub fn tls(&self) -> Option<Tls> {
        self.tls
    }

    /// `PT_GNU_STACK`'s verdict: whether the stack must be executable; `None` if the
    /// image has no `PT_GNU_STACK` (Linux then decides by the architecture's default).
    pub fn stack_executable(&self) -> Option<bool> {
        self.stack_executable
    }

    /// One past the highest byte of any segment: where a Linux process's heap (`brk`)
    /// starts, once rounded up to a page.
    pub fn end(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| s.vaddr.saturating_add(s.mem_size))
            .max()
            .unwrap_or(0)
    }
}

/// Why an image cannot be loaded. The root task prints it after the component's name.
/// Addresses are the image's own (`p_vaddr`, `e_entry`, as `readelf -l` shows them),
/// except [`LoadError::OutsideWindow`]'s, which is where the segment would go.
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
    /// `e_type` is not `ET_EXEC` (nor `ET_DYN`, for [`plan_at`]).
    NotExecutable {
        e_type: u16,
    },
    /// The image names a program interpreter (`PT_INTERP`): it is dynamically linked.
    Interpreter,
    /// [`plan_at`]'s base is not page-aligned.
    UnalignedBase {
        base: u64,
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
                "ELF type {e_type} is not an executable (ET_EXEC, or ET_DYN where a base is given); component images are linked at fixed addresses and never relocated"
            ),
            Self::Interpreter => write!(
                f,
                "dynamically linked (PT_INTERP names a program interpreter); only static executables are loaded"
            ),
            Self::UnalignedBase { base } => {
                write!(f, "load base {base:#x} is not page-aligned")
            }
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
/// `p_memsz == 0` occupy no memory and are skipped; `PT_INTERP` refuses the image;
/// `PT_PHDR`, `PT_TLS` and `PT_GNU_STACK` are reported; other program headers are
/// ignored. Only `ET_EXEC` images: see [`plan_at`] for position-independent ones.
pub fn plan(image: &[u8], user: Range<u64>) -> Result<LoadPlan, LoadError> {
    plan_with(image, user, None)
}

/// Like [`plan`], and also takes static position-independent executables (`ET_DYN`
/// without `PT_INTERP`): their lowest page goes to `base` (page-aligned), every address
/// moves with it, and every page must then lie inside `user`. `ET_EXEC` images load at
/// their link addresses whatever `base` is, as on Linux.
pub fn plan_at(image: &[u8], user: Range<u64>, base: u64) -> Result<LoadPlan, LoadError> {
    if !base.is_multiple_of(PAGE) {
        return Err(LoadError::UnalignedBase { base });
    }
    plan_with(image, user, Some(base))
}

/// `base`: where an `ET_DYN` image's lowest page goes; `None` refuses `ET_DYN`.
fn plan_with(image: &[u8], user: Range<u64>, base: Option<u64>) -> Result<LoadPlan, LoadError> {
    let elf = parse(image)?;
    let ehdr = &elf.ehdr;
    if ehdr.e_machine != abi::EM_X86_64 {
        return Err(LoadError::NotX86_64 {
            machine: ehdr.e_machine,
        });
    }
    let base = match (ehdr.e_type, base) {
        (abi::ET_EXEC, _) => None,
        (abi::ET_DYN, Some(base)) => Some(base),
        (e_type, _) => return Err(LoadError::NotExecutable { e_type }),
    };
    let phdrs = elf.segments().ok_or(LoadError::NoLoadSegment)?;
    if phdrs.iter().any(|p| p.p_type == abi::PT_INTERP) {
        return Err(LoadError::Interpreter);
    }
    let is_loaded = |p: &ProgramHeader| p.p_type == abi::PT_LOAD && p.p_memsz > 0;
    // An ET_DYN image moves so that its lowest page lands on `base`.
    let (link_base, load_base) = match base {
        None => (0, 0),
        Some(base) => {
            let lowest = phdrs.iter().filter(is_loaded).map(|p| p.p_vaddr).min();
            (page_down(lowest.ok_or(LoadError::NoLoadSegment)?), base)
        }
    };
    let relocate = |addr: u64| addr.checked_sub(link_base)?.checked_add(load_base);
    let mut plan = LoadPlan {
        entry: 0,
        segments: [const { EMPTY }; MAX_SEGMENTS],
        len: 0,
        bias: load_base.wrapping_sub(link_base),
        phdrs: Phdrs {
            vaddr: None,
            entry_size: ehdr.e_phentsize.into(),
            count: u64::try_from(phdrs.len()).unwrap_or(u64::MAX),
        },
        tls: None,
        stack_executable: None,
    };
    for phdr in phdrs.iter().filter(|p| p.p_type == abi::PT_LOAD) {
        let Some(segment) = check_segment(image, &phdr, &user, &relocate)? else {
            continue;
        };
        let new = segment.pages();
        if let Some(old) = plan
            .segments()
            .iter()
            .find(|old| old.pages().start < new.end && new.start < old.pages().end)
        {
            return Err(LoadError::SharedPage {
                first: old.vaddr.wrapping_sub(plan.bias),
                second: segment.vaddr.wrapping_sub(plan.bias),
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
    let entry = ehdr.e_entry;
    plan.entry = relocate(entry)
        .filter(|&at| {
            plan.segments()
                .iter()
                .any(|s| s.perm == Perm::ReadExecute && s.holds(at, 1))
        })
        .ok_or(LoadError::EntryNotExecutable { entry })?;
    plan.phdrs.vaddr = phdrs_vaddr(&plan, &phdrs, ehdr.e_phoff, &relocate);
    for phdr in phdrs.iter() {
        match phdr.p_type {
            abi::PT_TLS => {
                let loaded = |&v: &u64| plan.segments().iter().any(|s| s.holds(v, phdr.p_filesz));
                plan.tls = relocate(phdr.p_vaddr).filter(loaded).map(|vaddr| Tls {
                    vaddr,
                    file_size: phdr.p_filesz,
                    mem_size: phdr.p_memsz,
                    align: phdr.p_align,
                });
            }
            abi::PT_GNU_STACK => plan.stack_executable = Some(phdr.p_flags & abi::PF_X != 0),
            _ => {}
        }
    }
    Ok(plan)
}

/// Where the program header table is mapped: at `PT_PHDR`'s address, or inside the
/// segment whose file bytes hold it (what Linux passes as `AT_PHDR`); `None` unless
/// the whole table lies inside a segment.
fn phdrs_vaddr(
    plan: &LoadPlan,
    table: &SegmentTable<'_, LittleEndian>,
    phoff: u64,
    relocate: &impl Fn(u64) -> Option<u64>,
) -> Option<u64> {
    let size = plan.phdrs.count.checked_mul(plan.phdrs.entry_size)?;
    let inside = |vaddr: u64| plan.segments().iter().any(|s| s.holds(vaddr, size));
    if let Some(p) = table.iter().find(|p| p.p_type == abi::PT_PHDR) {
        return relocate(p.p_vaddr).filter(|&v| inside(v));
    }
    let phoff = usize::try_from(phoff).ok()?;
    let end = phoff.checked_add(usize::try_from(size).ok()?)?;
    plan.segments().iter().find_map(|s| {
        let within = s.file.start <= phoff && end <= s.file.end;
        let offset = u64::try_from(phoff.checked_sub(s.file.start)?).ok()?;
        within.then(|| s.vaddr.checked_add(offset)).flatten()
    })
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
    relocate: &impl Fn(u64) -> Option<u64>,
) -> Result<Option<Segment>, LoadError> {
    let link_vaddr = phdr.p_vaddr;
    let mem_size = phdr.p_memsz;
    if phdr.p_filesz > mem_size {
        return Err(LoadError::FileLargerThanMemory {
            vaddr: link_vaddr,
            file_size: phdr.p_filesz,
            mem_size,
        });
    }
    // Checked after the size comparison, so a skipped segment has no file bytes either.
    if mem_size == 0 {
        return Ok(None);
    }
    let perm = Perm::from_flags(phdr.p_flags)
        .ok_or(LoadError::WritableAndExecutable { vaddr: link_vaddr })?;
    // A relocation past the top of the address space is outside every window.
    let vaddr = relocate(link_vaddr);
    let in_window = vaddr.is_some_and(|v| {
        v.checked_add(mem_size)
            .and_then(|end| end.checked_next_multiple_of(PAGE))
            .is_some_and(|end| user.start <= page_down(v) && end <= user.end)
    });
    let Some(vaddr) = vaddr.filter(|_| in_window) else {
        return Err(LoadError::OutsideWindow {
            vaddr: vaddr.unwrap_or(link_vaddr),
            mem_size,
            window: (user.start, user.end),
        });
    };
    let file = file_range(image.len(), phdr.p_offset, phdr.p_filesz).ok_or(
        LoadError::FileOutsideImage {
            vaddr: link_vaddr,
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
