//! A small ELF64 writer for the tests, and the invariants every plan must satisfy.

use std::ops::Range;

use kaal_loader::{LoadPlan, Perm, Segment, PAGE};

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
pub const EHDR: usize = 64;
pub const PHDR: usize = 56;

/// What KaaL's root task passes: everything below the canonical hole but page 0.
pub const USER: Range<u64> = 0x1000..0x8000_0000_0000;

/// One program header.
#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl Phdr {
    pub fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Self {
        Self {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
        }
    }
}

/// An ELF64 image described field by field; `build` writes it.
#[derive(Debug, Clone)]
pub struct Elf {
    pub class: u8,
    pub data: u8,
    pub version: u8,
    pub e_type: u16,
    pub machine: u16,
    pub entry: u64,
    /// `None`: right after the file header (64).
    pub phoff: Option<u64>,
    pub phentsize: u16,
    pub phdrs: Vec<Phdr>,
    /// Total length; the bytes past the headers are [`content`]'s.
    pub len: usize,
}

/// The byte at file offset `i` of a built image's body: never zero, so file bytes and
/// zero fill are told apart.
pub fn content(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

// The valid image: text at 0x400000 (1.5 pages, RX), data at 0x402800 (mid-page:
// 0x100 file bytes, then bss up to 0x404800, RW).
pub const TEXT_VADDR: u64 = 0x40_0000;
pub const TEXT_OFFSET: u64 = 0x1000;
pub const TEXT_SIZE: u64 = 0x1800;
pub const DATA_VADDR: u64 = 0x40_2800;
pub const DATA_OFFSET: u64 = 0x2800;
pub const DATA_FILE: u64 = 0x100;
pub const DATA_MEM: u64 = 0x2000;
pub const ENTRY: u64 = 0x40_0010;
pub const IMAGE_LEN: usize = 0x2900;

impl Elf {
    /// A valid two-segment image: RX text and RW data with bss.
    pub fn valid() -> Self {
        Self {
            class: 2,
            data: 1,
            version: 1,
            e_type: 2,
            machine: 62,
            entry: ENTRY,
            phoff: None,
            phentsize: PHDR as u16,
            phdrs: vec![
                Phdr::load(PF_R | PF_X, TEXT_OFFSET, TEXT_VADDR, TEXT_SIZE, TEXT_SIZE),
                Phdr::load(PF_R | PF_W, DATA_OFFSET, DATA_VADDR, DATA_FILE, DATA_MEM),
            ],
            len: IMAGE_LEN,
        }
    }

    pub fn with_phdrs(phdrs: Vec<Phdr>) -> Self {
        Self {
            phdrs,
            ..Self::valid()
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let phoff = self.phoff.unwrap_or(EHDR as u64);
        let headers = EHDR + PHDR * self.phdrs.len();
        let mut b: Vec<u8> = (0..self.len.max(headers)).map(content).collect();
        let mut h = Vec::with_capacity(headers);
        h.extend_from_slice(&[0x7f, b'E', b'L', b'F', self.class, self.data, self.version]);
        h.resize(16, 0);
        h.extend_from_slice(&self.e_type.to_le_bytes());
        h.extend_from_slice(&self.machine.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // e_version
        h.extend_from_slice(&self.entry.to_le_bytes());
        h.extend_from_slice(&phoff.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
        h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        h.extend_from_slice(&(EHDR as u16).to_le_bytes());
        h.extend_from_slice(&self.phentsize.to_le_bytes());
        h.extend_from_slice(&(self.phdrs.len() as u16).to_le_bytes());
        h.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        h.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(h.len(), EHDR);
        for p in &self.phdrs {
            h.extend_from_slice(&p.p_type.to_le_bytes());
            h.extend_from_slice(&p.flags.to_le_bytes());
            h.extend_from_slice(&p.offset.to_le_bytes());
            h.extend_from_slice(&p.vaddr.to_le_bytes());
            h.extend_from_slice(&p.vaddr.to_le_bytes()); // p_paddr
            h.extend_from_slice(&p.filesz.to_le_bytes());
            h.extend_from_slice(&p.memsz.to_le_bytes());
            h.extend_from_slice(&PAGE.to_le_bytes()); // p_align
        }
        b[..headers].copy_from_slice(&h);
        b
    }
}

/// The byte a mapped segment holds at `addr`, computed directly from its definition.
pub fn expected_byte(s: &Segment, image: &[u8], addr: u64) -> u8 {
    let file_len = s.file.len() as u64;
    if addr >= s.vaddr && addr - s.vaddr < file_len {
        image[s.file.start + (addr - s.vaddr) as usize]
    } else {
        0
    }
}

/// Checks one page of `s` filled by `fill_page` against [`expected_byte`].
pub fn check_page(s: &Segment, image: &[u8], page: u64) {
    let mut out = [0xa5u8; PAGE as usize];
    s.fill_page(image, page, &mut out);
    for (i, &byte) in out.iter().enumerate() {
        let addr = page + i as u64;
        assert_eq!(byte, expected_byte(s, image, addr), "byte at {addr:#x}");
    }
}

/// Everything a plan promises (see the crate documentation), checked from the outside.
pub fn check_invariants(plan: &LoadPlan, image: &[u8], user: &Range<u64>) {
    let segments = plan.segments();
    assert!(!segments.is_empty() && segments.len() <= kaal_loader::MAX_SEGMENTS);
    for (i, s) in segments.iter().enumerate() {
        let pages = s.pages();
        assert!(s.mem_size > 0);
        assert_eq!(pages.start % PAGE, 0);
        assert_eq!(pages.end % PAGE, 0);
        assert!(pages.start <= s.vaddr && s.vaddr + s.mem_size <= pages.end);
        assert!(pages.end - pages.start < s.mem_size + 2 * PAGE);
        assert!(
            user.start <= pages.start && pages.end <= user.end,
            "{s:?} outside {user:?}"
        );
        assert!(
            s.file.start <= s.file.end && s.file.end <= image.len(),
            "{s:?}"
        );
        assert!(s.file.len() as u64 <= s.mem_size);
        for other in &segments[i + 1..] {
            let o = other.pages();
            assert!(
                pages.end <= o.start || o.end <= pages.start,
                "{s:?} and {other:?}"
            );
        }
        // The first and last pages are where the file/zero boundaries usually are.
        check_page(s, image, pages.start);
        check_page(s, image, pages.end - PAGE);
    }
    let entry = plan.entry();
    assert!(
        segments.iter().any(|s| s.perm == Perm::ReadExecute
            && s.vaddr <= entry
            && entry < s.vaddr + s.mem_size),
        "entry {entry:#x}"
    );
    let phdrs = plan.phdrs();
    if let Some(at) = phdrs.vaddr {
        let size = phdrs.count * phdrs.entry_size;
        assert!(
            segments.iter().any(|s| s.vaddr <= at
                && at - s.vaddr < s.mem_size
                && size <= s.vaddr + s.mem_size - at),
            "phdrs at {at:#x}"
        );
    }
    if let Some(tls) = plan.tls() {
        assert!(
            segments
                .iter()
                .any(|s| s.vaddr <= tls.vaddr && tls.vaddr < s.vaddr + s.mem_size),
            "TLS at {:#x}",
            tls.vaddr
        );
    }
    let end = segments.iter().map(|s| s.vaddr + s.mem_size).max();
    assert_eq!(Some(plan.end()), end);
}
