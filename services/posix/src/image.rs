//! Linux images: what the process server needs to start an unmodified static Linux
//! x86_64 executable, from the file's bytes.
//!
//! ```text
//!  file bytes ──Image::load(file, window, pie_base)──► Image { plan, syscall sites }
//!     for each segment, each page: Image::fill_page ── file bytes, zeros, syscalls
//!                                                      rewritten to int $0xa0
//!  Image::program() + argv, envp, execfn, random ──initial_stack──► bytes below the
//!                                                      stack top, initial rsp
//!  start: rip = Image::entry(), rsp; heap (brk) from Image::brk_start()
//! ```
//!
//! Images are static: `ET_EXEC` (glibc's and musl-gcc's `-static`, at their link
//! addresses) or static-pie (`ET_DYN` without `PT_INTERP`, Rust's
//! `x86_64-unknown-linux-musl`), placed at a base the caller picks; the loader
//! (`kaal-loader`) refuses dynamically linked ones.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use kaal_loader::{LoadError, LoadPlan, Perm, Segment, PAGE};

use crate::rewrite;

/// Where the process server puts a position-independent executable: 256 MiB,
/// above where `ET_EXEC` programs link (0x400000) and below 4 GiB, where a
/// process's whole address space lies (see `vm::USER_END`).
pub const PIE_BASE: u64 = 0x1000_0000;

/// A checked Linux executable: its load plan and the `syscall` instructions of its
/// executable segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    plan: LoadPlan,
    sites: Vec<u64>,
}

/// Why a file cannot run as a Linux process.
#[derive(Debug)]
pub enum ImageError {
    /// The loader refused it (not a static x86_64 executable, damaged, W^X, ...).
    Load(LoadError),
    /// The program headers lie in no loaded segment, so `AT_PHDR` could not point at
    /// them (static C libraries find their TLS through them).
    PhdrsNotLoaded,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => e.fmt(f),
            Self::PhdrsNotLoaded => write!(
                f,
                "the program headers lie in no loaded segment (AT_PHDR would point at nothing)"
            ),
        }
    }
}

impl core::error::Error for ImageError {}

impl From<LoadError> for ImageError {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

impl Image {
    /// Checks `file` and finds its syscall sites. Every page must lie inside `window`
    /// (the process's addresses minus what the process server keeps for itself); an
    /// `ET_DYN` image's lowest page goes to `pie_base` (page-aligned, e.g. [`PIE_BASE`]),
    /// an `ET_EXEC` image ignores it.
    pub fn load(file: &[u8], window: Range<u64>, pie_base: u64) -> Result<Self, ImageError> {
        let plan = kaal_loader::plan_at(file, window, pie_base)?;
        if plan.phdrs().vaddr.is_none() {
            return Err(ImageError::PhdrsNotLoaded);
        }
        let mut sites = Vec::new();
        for s in plan
            .segments()
            .iter()
            .filter(|s| s.perm == Perm::ReadExecute)
        {
            // Only the file bytes: the zero fill after them holds no `syscall`.
            let code = file.get(s.file.clone()).unwrap_or(&[]);
            sites.extend(rewrite::syscall_sites(code, s.vaddr));
        }
        // Segments come in program-header order, not necessarily by address.
        sites.sort_unstable();
        Ok(Self { plan, sites })
    }

    /// The load plan: segments to map (see [`Image::fill_page`]), TLS and stack facts.
    pub fn plan(&self) -> &LoadPlan {
        &self.plan
    }

    /// Where the process starts (base-adjusted for `ET_DYN`).
    pub fn entry(&self) -> u64 {
        self.plan.entry()
    }

    /// The addresses of the `syscall` instructions in the executable segments,
    /// ascending: each is rewritten by [`Image::fill_page`].
    pub fn syscall_sites(&self) -> &[u64] {
        &self.sites
    }

    /// Where the heap (`brk`) starts: the page after the highest segment byte.
    pub fn brk_start(&self) -> u64 {
        let end = self.plan.end();
        // The plan's pages end inside the window, so the rounding cannot overflow.
        end.checked_next_multiple_of(PAGE).unwrap_or(end)
    }

    /// The facts about the program that its auxiliary vector carries.
    pub fn program(&self) -> Program {
        let phdrs = self.plan.phdrs();
        Program {
            // `load` refused images whose headers are not loaded.
            phdr: phdrs.vaddr.unwrap_or(0),
            phent: phdrs.entry_size,
            phnum: phdrs.count,
            entry: self.plan.entry(),
        }
    }

    /// Fills `out` with the initial bytes of the page at `page_vaddr` of `segment` (one
    /// of [`Image::plan`]'s segments; `file` the bytes the image was loaded from): file
    /// bytes, zeros, and in an executable segment every `syscall` rewritten, including
    /// the half of one that straddles the page's edge.
    pub fn fill_page(
        &self,
        file: &[u8],
        segment: &Segment,
        page_vaddr: u64,
        out: &mut [u8; PAGE as usize],
    ) {
        segment.fill_page(file, page_vaddr, out);
        if segment.perm == Perm::ReadExecute {
            rewrite::patch(out, page_vaddr, &self.sites);
        }
    }
}

/// What a Linux process learns about its program from the auxiliary vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// `AT_PHDR`: where the program headers are mapped.
    pub phdr: u64,
    /// `AT_PHENT`: the size of one program header.
    pub phent: u64,
    /// `AT_PHNUM`: how many there are.
    pub phnum: u64,
    /// `AT_ENTRY`: the program's entry point.
    pub entry: u64,
}

// Auxiliary vector types (Linux's `include/uapi/linux/auxvec.h`, x86_64).
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_EXECFN: u64 = 31;

/// The most bytes argv, envp and the program's path may take on the initial stack
/// (strings with their NULs, plus a pointer each): Linux's `E2BIG` analogue.
pub const ARGS_MAX: usize = 256 * 1024;

/// The entries of the auxiliary vector [`initial_stack`] writes, `AT_NULL` included.
const AUXV_PAIRS: usize = 17;

/// What goes on a new process's stack.
#[derive(Debug, Clone, Copy)]
pub struct StackRequest<'a> {
    /// One past the highest byte of the stack.
    pub top: u64,
    /// The arguments, without NULs (one is added to each).
    pub argv: &'a [&'a [u8]],
    /// The environment (`NAME=value`), without NULs.
    pub envp: &'a [&'a [u8]],
    /// The path the program was run as (`AT_EXECFN`), without NULs.
    pub execfn: &'a [u8],
    /// `AT_RANDOM`'s 16 bytes: the C library's stack protector and pointer guard.
    pub random: [u8; 16],
    pub program: Program,
}

/// A new process's initial stack: `bytes` belong at `rsp..top`, and the process starts
/// with `rsp` (16-byte aligned, pointing at argc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    pub rsp: u64,
    pub bytes: Vec<u8>,
}

/// Why an initial stack cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackError {
    /// argv, envp and the path need `size` bytes, more than [`ARGS_MAX`].
    TooLong { size: usize },
    /// A string holds a NUL, which would end it early. `what` is `"argv"`, `"envp"` or
    /// `"execfn"`; `index` the string's position in its list (0 for `execfn`).
    Nul { what: &'static str, index: usize },
    /// The stack would reach below address 0.
    NoRoom { top: u64, size: usize },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { size } => write!(
                f,
                "arguments and environment need {size} bytes, more than {ARGS_MAX} (E2BIG)"
            ),
            Self::Nul { what, index } => write!(f, "{what}[{index}] contains a NUL byte"),
            Self::NoRoom { top, size } => {
                write!(f, "{size} bytes of initial stack do not fit below {top:#x}")
            }
        }
    }
}

impl core::error::Error for StackError {}

/// Builds the initial stack of the x86_64 System V ABI, as Linux lays it out:
///
/// ```text
///  top ─► 8 zero bytes
///         execfn, envp strings, argv strings (each NUL-terminated)
///         AT_RANDOM's 16 bytes (16-byte aligned)
///         zero padding
///         AT_NULL 0                      ▲ auxv: type, value pairs
///         ... AT_PHDR phdr               │
///         0, envp[envc-1] ... envp[0]    │ pointers into the strings above
///         0, argv[argc-1] ... argv[0]    │
///  rsp ─► argc                           (16-byte aligned)
/// ```
///
/// The auxiliary vector holds `AT_PHDR`, `AT_PHENT`, `AT_PHNUM`, `AT_PAGESZ` (4096),
/// `AT_BASE` (0: no interpreter), `AT_FLAGS` (0), `AT_ENTRY`, `AT_UID`, `AT_EUID`,
/// `AT_GID`, `AT_EGID` (all 0), `AT_SECURE` (0), `AT_RANDOM`, `AT_HWCAP` (0),
/// `AT_CLKTCK` (100), `AT_EXECFN`, `AT_NULL`; no `AT_SYSINFO_EHDR` (there is no vDSO).
pub fn initial_stack(req: &StackRequest<'_>) -> Result<InitialStack, StackError> {
    for (what, list) in [
        ("argv", req.argv),
        ("envp", req.envp),
        ("execfn", &[req.execfn]),
    ] {
        if let Some(index) = list.iter().position(|s| s.contains(&0)) {
            return Err(StackError::Nul { what, index });
        }
    }
    let strings = req.argv.iter().chain(req.envp).chain([&req.execfn]);
    let args_size = strings
        .clone()
        .map(|s| s.len().saturating_add(1 + 8))
        .fold(0usize, usize::saturating_add);
    if args_size > ARGS_MAX {
        return Err(StackError::TooLong { size: args_size });
    }
    // Bounded by ARGS_MAX from here on: no overflow in the sizes below.
    let strings_size: usize = strings.map(|s| s.len() + 1).sum();
    let words = 1 + req.argv.len() + 1 + req.envp.len() + 1 + 2 * AUXV_PAIRS;
    let random_at = req
        .top
        .checked_sub(8 + strings_size as u64 + 16)
        .map(|a| a & !15);
    let rsp = random_at
        .and_then(|a| a.checked_sub(8 * words as u64))
        .map(|a| a & !15);
    let (Some(random_at), Some(rsp)) = (random_at, rsp) else {
        return Err(StackError::NoRoom {
            top: req.top,
            size: 8 + strings_size + 16 + 8 * words,
        });
    };
    let mut stack = Writer {
        base: rsp,
        bytes: alloc::vec![0; (req.top - rsp) as usize],
    };
    // Strings downward from the top, below its 8 zero bytes.
    let mut at = req.top - 8;
    let mut put_string = |stack: &mut Writer, s: &[u8]| {
        at -= s.len() as u64 + 1;
        stack.put(at, s);
        at
    };
    let execfn = put_string(&mut stack, req.execfn);
    let envp: Vec<u64> = req.envp.iter().map(|s| put_string(&mut stack, s)).collect();
    let argv: Vec<u64> = req.argv.iter().map(|s| put_string(&mut stack, s)).collect();
    stack.put(random_at, &req.random);

    let p = req.program;
    let aux: [(u64, u64); AUXV_PAIRS] = [
        (AT_PHDR, p.phdr),
        (AT_PHENT, p.phent),
        (AT_PHNUM, p.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, p.entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_SECURE, 0),
        (AT_RANDOM, random_at),
        (AT_HWCAP, 0),
        (AT_CLKTCK, 100),
        (AT_EXECFN, execfn),
        (AT_NULL, 0),
    ];
    let mut table = Vec::with_capacity(words);
    table.push(req.argv.len() as u64);
    table.extend(&argv);
    table.push(0);
    table.extend(&envp);
    table.push(0);
    table.extend(aux.iter().flat_map(|&(t, v)| [t, v]));
    debug_assert_eq!(table.len(), words);
    for (i, word) in table.iter().enumerate() {
        stack.put(rsp + 8 * i as u64, &word.to_le_bytes());
    }
    Ok(InitialStack {
        rsp,
        bytes: stack.bytes,
    })
}

/// The stack's bytes from `base` up.
struct Writer {
    base: u64,
    bytes: Vec<u8>,
}

impl Writer {
    /// Writes `data` at address `at`; the layout keeps every write inside the bytes.
    fn put(&mut self, at: u64, data: &[u8]) {
        let start = at
            .checked_sub(self.base)
            .and_then(|off| usize::try_from(off).ok())
            .unwrap_or(usize::MAX);
        if let Some(dst) = self.bytes.get_mut(start..start.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
    }
}
