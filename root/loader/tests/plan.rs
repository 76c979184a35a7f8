//! The valid image's plan and page contents, then one test per reason to reject an image.
// Helpers outside #[test] functions too: clippy.toml's test exemption, a panic fails the test.
#![allow(clippy::indexing_slicing)]

#[allow(dead_code)] // each test file uses a part of it
mod common;

use common::*;
use kaal_loader::{plan, LoadError, Perm, Segment, MAX_SEGMENTS, PAGE};

fn plan_of(elf: &Elf) -> Result<kaal_loader::LoadPlan, LoadError> {
    plan(&elf.build(), USER)
}

fn text() -> Phdr {
    Elf::valid().phdrs[0]
}

fn data() -> Phdr {
    Elf::valid().phdrs[1]
}

#[test]
fn valid_image_plan() {
    let image = Elf::valid().build();
    let plan = plan(&image, USER).unwrap();
    assert_eq!(plan.entry(), ENTRY);
    let text_file = TEXT_OFFSET as usize..(TEXT_OFFSET + TEXT_SIZE) as usize;
    let data_file = DATA_OFFSET as usize..(DATA_OFFSET + DATA_FILE) as usize;
    assert_eq!(
        plan.segments(),
        &[
            Segment {
                vaddr: TEXT_VADDR,
                mem_size: TEXT_SIZE,
                file: text_file,
                perm: Perm::ReadExecute,
            },
            Segment {
                vaddr: DATA_VADDR,
                mem_size: DATA_MEM,
                file: data_file,
                perm: Perm::ReadWrite,
            },
        ]
    );
    assert_eq!(plan.segments()[0].pages(), 0x40_0000..0x40_2000);
    assert_eq!(plan.segments()[1].pages(), 0x40_2000..0x40_5000);
    check_invariants(&plan, &image, &USER);
}

#[test]
fn fill_page_copies_file_bytes_then_zeros() {
    let image = Elf::valid().build();
    let plan = plan(&image, USER).unwrap();
    let [text, data] = plan.segments() else {
        panic!("two segments expected")
    };
    let mut page = [0xa5u8; PAGE as usize];

    // Text, first page: all file bytes.
    text.fill_page(&image, 0x40_0000, &mut page);
    assert_eq!(page[..], image[0x1000..0x2000]);
    // Text, second page: the last 0x800 file bytes, then zeros.
    text.fill_page(&image, 0x40_1000, &mut page);
    assert_eq!(page[..0x800], image[0x2000..0x2800]);
    assert!(page[0x800..].iter().all(|&b| b == 0));

    // Data starts mid-page: zeros, 0x100 file bytes, then bss zeros.
    data.fill_page(&image, 0x40_2000, &mut page);
    assert!(page[..0x800].iter().all(|&b| b == 0));
    assert_eq!(page[0x800..0x900], image[0x2800..0x2900]);
    assert!(page[0x900..].iter().all(|&b| b == 0));
    assert!(page[0x800..0x900].iter().all(|&b| b != 0));
    // Pure bss, and a page outside the segment: zeros.
    for addr in [0x40_3000, 0x40_4000, 0x40_5000, 0x40_0000, 0] {
        page.fill(0xa5);
        data.fill_page(&image, addr, &mut page);
        assert!(page.iter().all(|&b| b == 0), "page {addr:#x}");
    }
    // Every page of both segments, byte by byte.
    for s in plan.segments() {
        for addr in s.pages().step_by(PAGE as usize) {
            check_page(s, &image, addr);
        }
    }
}

#[test]
fn fill_page_with_a_short_image_leaves_zeros() {
    let image = Elf::valid().build();
    let plan = plan(&image, USER).unwrap();
    let mut page = [0xa5u8; PAGE as usize];
    plan.segments()[0].fill_page(&image[..0x100], 0x40_0000, &mut page);
    assert!(page.iter().all(|&b| b == 0));
}

#[test]
fn perm_from_flags() {
    for (flags, perm) in [
        (PF_R | PF_X, Perm::ReadExecute),
        (PF_X, Perm::ReadExecute),
        (PF_R | PF_W, Perm::ReadWrite),
        (PF_W, Perm::ReadWrite),
        (PF_R, Perm::ReadOnly),
        (0, Perm::ReadOnly),
    ] {
        let elf = Elf::with_phdrs(vec![text(), Phdr { flags, ..data() }]);
        assert_eq!(
            plan_of(&elf).unwrap().segments()[1].perm,
            perm,
            "flags {flags}"
        );
    }
}

#[test]
fn rejects_non_elf() {
    for bytes in [
        &b"MZ"[..],
        b"\x7fELG",
        &[0u8; 200],
        b"#!/bin/sh\necho not an ELF image\n",
    ] {
        assert!(
            matches!(plan(bytes, USER), Err(LoadError::NotElf)),
            "{bytes:?}"
        );
    }
}

#[test]
fn rejects_truncated_image() {
    let image = Elf::valid().build();
    // Inside the identification, the file header, and the program header table.
    for len in [0, 3, 10, 40, EHDR, EHDR + PHDR + 20] {
        assert!(
            matches!(plan(&image[..len], USER), Err(LoadError::Truncated { len: l }) if l == len),
            "length {len}"
        );
    }
    let elf = Elf {
        phoff: Some(IMAGE_LEN as u64 - 8),
        ..Elf::valid()
    };
    assert!(matches!(plan_of(&elf), Err(LoadError::Truncated { .. })));
}

#[test]
fn rejects_unparseable_headers() {
    let elf = Elf {
        phentsize: 32,
        ..Elf::valid()
    };
    let err = plan_of(&elf).unwrap_err();
    assert!(
        matches!(err, LoadError::Malformed(elf::ParseError::BadEntsize(_))),
        "{err:?}"
    );
    let elf = Elf {
        version: 2,
        ..Elf::valid()
    };
    let err = plan_of(&elf).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Malformed(elf::ParseError::UnsupportedVersion(_))
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_non_elf64() {
    for class in [1, 0, 3, 0xff] {
        let elf = Elf {
            class,
            ..Elf::valid()
        };
        assert!(
            matches!(plan_of(&elf), Err(LoadError::NotElf64)),
            "class {class}"
        );
    }
}

#[test]
fn rejects_big_endian() {
    for data in [2, 0, 3] {
        let elf = Elf {
            data,
            ..Elf::valid()
        };
        assert!(
            matches!(plan_of(&elf), Err(LoadError::NotLittleEndian)),
            "data {data}"
        );
    }
}

#[test]
fn rejects_other_machines() {
    let elf = Elf {
        machine: 183, // AArch64
        ..Elf::valid()
    };
    assert!(matches!(
        plan_of(&elf),
        Err(LoadError::NotX86_64 { machine: 183 })
    ));
}

#[test]
fn rejects_non_executables() {
    for e_type in [0, 1, 3, 4] {
        let elf = Elf {
            e_type,
            ..Elf::valid()
        };
        assert!(
            matches!(plan_of(&elf), Err(LoadError::NotExecutable { e_type: t }) if t == e_type),
            "type {e_type}"
        );
    }
}

#[test]
fn rejects_images_without_load_segments() {
    let note = Phdr {
        p_type: PT_NOTE,
        ..text()
    };
    let empty = Phdr {
        memsz: 0,
        filesz: 0,
        ..text()
    };
    for phdrs in [vec![], vec![note], vec![empty, note]] {
        let elf = Elf::with_phdrs(phdrs);
        assert!(matches!(plan_of(&elf), Err(LoadError::NoLoadSegment)));
    }
    let elf = Elf {
        phoff: Some(0), // no program header table at all
        ..Elf::valid()
    };
    assert!(matches!(plan_of(&elf), Err(LoadError::NoLoadSegment)));
}

/// `n` one-page read-only segments on separate pages, after the text.
fn extra_segments(n: u64) -> Vec<Phdr> {
    let mut phdrs = vec![text()];
    phdrs.extend((0..n).map(|i| Phdr::load(PF_R, 0x2800, 0x50_0000 + i * PAGE, 0x10, PAGE)));
    phdrs
}

#[test]
fn rejects_too_many_segments() {
    let max = MAX_SEGMENTS as u64;
    assert_eq!(
        plan_of(&Elf::with_phdrs(extra_segments(max - 1)))
            .unwrap()
            .segments()
            .len(),
        MAX_SEGMENTS
    );
    let elf = Elf::with_phdrs(extra_segments(max));
    assert!(matches!(plan_of(&elf), Err(LoadError::TooManySegments)));
}

#[test]
fn rejects_file_bytes_outside_the_image() {
    for (offset, filesz) in [
        (IMAGE_LEN as u64 - 0x10, 0x100),
        (IMAGE_LEN as u64, 1),
        (u64::MAX, 0x100),
        (u64::MAX - 0x10, 0x100), // offset + size overflows
    ] {
        let elf = Elf::with_phdrs(vec![
            text(),
            Phdr {
                offset,
                filesz,
                ..data()
            },
        ]);
        assert!(
            matches!(
                plan_of(&elf),
                Err(LoadError::FileOutsideImage { vaddr: DATA_VADDR, offset: o, size: s })
                    if o == offset && s == filesz
            ),
            "{offset:#x} + {filesz:#x}"
        );
    }
    // Ending exactly at the end of the image is fine; so is any offset without file bytes.
    let last = Phdr {
        offset: IMAGE_LEN as u64 - DATA_FILE,
        ..data()
    };
    let bss_only = Phdr {
        offset: u64::MAX,
        filesz: 0,
        ..data()
    };
    for phdr in [last, bss_only] {
        assert!(plan_of(&Elf::with_phdrs(vec![text(), phdr])).is_ok());
    }
}

#[test]
fn rejects_file_size_above_memory_size() {
    let elf = Elf::with_phdrs(vec![
        text(),
        Phdr {
            memsz: DATA_FILE - 1,
            ..data()
        },
    ]);
    assert!(matches!(
        plan_of(&elf),
        Err(LoadError::FileLargerThanMemory {
            vaddr: DATA_VADDR,
            file_size: DATA_FILE,
            mem_size: 0xff
        })
    ));
    // Even when p_memsz is zero: such a segment is malformed, not empty.
    let elf = Elf::with_phdrs(vec![text(), Phdr { memsz: 0, ..data() }]);
    assert!(matches!(
        plan_of(&elf),
        Err(LoadError::FileLargerThanMemory { .. })
    ));
}

#[test]
fn skips_zero_size_segments() {
    // Overlapping the text, writable and executable, in no window: all moot at size 0.
    let empty = Phdr::load(PF_R | PF_W | PF_X, 0, TEXT_VADDR, 0, 0);
    let nowhere = Phdr::load(PF_R, 0, u64::MAX, 0, 0);
    let elf = Elf::with_phdrs(vec![text(), empty, data(), nowhere]);
    let image = elf.build();
    let plan = plan(&image, USER).unwrap();
    let vaddrs: Vec<u64> = plan.segments().iter().map(|s| s.vaddr).collect();
    assert_eq!(vaddrs, [TEXT_VADDR, DATA_VADDR]);
    check_invariants(&plan, &image, &USER);
}

#[test]
fn rejects_writable_executable_segments() {
    for flags in [PF_R | PF_W | PF_X, PF_W | PF_X] {
        let elf = Elf::with_phdrs(vec![text(), Phdr { flags, ..data() }]);
        assert!(matches!(
            plan_of(&elf),
            Err(LoadError::WritableAndExecutable { vaddr: DATA_VADDR })
        ));
    }
}

#[test]
fn rejects_segments_outside_the_window() {
    let cases = [
        (0x0, PAGE),                    // page 0, below the window
        (0x800, 0x100),                 // inside page 0
        (USER.end - PAGE, PAGE + 1),    // straddles the end
        (USER.end, PAGE),               // past the end
        (u64::MAX - 0x10, 0x100),       // vaddr + memsz overflows
        (0xffff_ffff_ffff_f800, 0x100), // its page end overflows
        (0xffff_8000_0000_0000, PAGE),  // kernel half
    ];
    for (vaddr, memsz) in cases {
        let seg = Phdr::load(PF_R, 0, vaddr, 0, memsz);
        let elf = Elf::with_phdrs(vec![text(), seg]);
        assert!(
            matches!(
                plan_of(&elf),
                Err(LoadError::OutsideWindow { vaddr: v, mem_size: m, window: (0x1000, 0x8000_0000_0000) })
                    if v == vaddr && m == memsz
            ),
            "{vaddr:#x} + {memsz:#x}"
        );
    }
    // Up to the window's last byte is fine.
    let last = Phdr::load(PF_R, 0, USER.end - 0x10, 0, 0x10);
    assert!(plan_of(&Elf::with_phdrs(vec![text(), last])).is_ok());
    // The whole address space as window: the overflow cases are still rejected.
    let top = Phdr::load(PF_R, 0, 0xffff_ffff_ffff_f800, 0, 0x100);
    let image = Elf::with_phdrs(vec![text(), top]).build();
    assert!(matches!(
        plan(&image, 0..u64::MAX),
        Err(LoadError::OutsideWindow { .. })
    ));
    // An unaligned window: the segment's bytes are inside it, its first or last page is not.
    let late_text = Elf {
        entry: TEXT_VADDR + 0x100,
        ..Elf::with_phdrs(vec![
            Phdr {
                vaddr: TEXT_VADDR + 0x100,
                ..text()
            },
            data(),
        ])
    };
    assert!(matches!(
        plan(&late_text.build(), TEXT_VADDR + 0x80..USER.end),
        Err(LoadError::OutsideWindow {
            vaddr: 0x40_0100,
            ..
        })
    ));
    let image = Elf::valid().build();
    assert!(plan(&image, TEXT_VADDR..0x40_5000).is_ok());
    assert!(plan(&image, TEXT_VADDR..0x40_4fff).is_err());
}

#[test]
fn rejects_segments_sharing_a_page() {
    // Data in the text's last page; data first; the same segment twice; one inside another.
    let shared = Phdr {
        vaddr: TEXT_VADDR + TEXT_SIZE + 0x100,
        ..data()
    };
    let cases = [
        (vec![text(), shared], TEXT_VADDR, shared.vaddr),
        (vec![shared, text()], shared.vaddr, TEXT_VADDR),
        (vec![text(), data(), data()], DATA_VADDR, DATA_VADDR),
        (
            vec![text(), Phdr::load(PF_R, 0, TEXT_VADDR + 0x1fff, 0, 1)],
            TEXT_VADDR,
            TEXT_VADDR + 0x1fff,
        ),
    ];
    for (phdrs, a, b) in cases {
        assert!(
            matches!(
                plan_of(&Elf::with_phdrs(phdrs)),
                Err(LoadError::SharedPage { first, second }) if first == a && second == b
            ),
            "{a:#x} and {b:#x}"
        );
    }
    // Adjacent pages are fine.
    let next = Phdr::load(PF_R, 0, TEXT_VADDR + 0x2000, 0, 1);
    assert!(plan_of(&Elf::with_phdrs(vec![text(), next])).is_ok());
}

#[test]
fn rejects_entry_outside_executable_segments() {
    for entry in [
        DATA_VADDR,             // writable
        TEXT_VADDR + TEXT_SIZE, // one past the text
        TEXT_VADDR - 1,         // just before
        0,
        u64::MAX,
    ] {
        let elf = Elf {
            entry,
            ..Elf::valid()
        };
        assert!(
            matches!(plan_of(&elf), Err(LoadError::EntryNotExecutable { entry: e }) if e == entry),
            "entry {entry:#x}"
        );
    }
    // A read-only segment is not executable either.
    let elf = Elf::with_phdrs(vec![
        Phdr {
            flags: PF_R,
            ..text()
        },
        data(),
    ]);
    assert!(matches!(
        plan_of(&elf),
        Err(LoadError::EntryNotExecutable { .. })
    ));
    // The text's first and last bytes are fine.
    for entry in [TEXT_VADDR, TEXT_VADDR + TEXT_SIZE - 1] {
        assert!(plan_of(&Elf {
            entry,
            ..Elf::valid()
        })
        .is_ok());
    }
}

#[test]
fn messages_name_the_problem() {
    let shown = |elf: Elf| plan_of(&elf).unwrap_err().to_string();
    assert_eq!(
        shown(Elf::with_phdrs(vec![
            text(),
            Phdr {
                flags: PF_W | PF_X,
                ..data()
            }
        ])),
        "segment at 0x402800 is both writable and executable (W^X)"
    );
    assert_eq!(
        shown(Elf::with_phdrs(vec![
            text(),
            Phdr {
                vaddr: 0x40_1900,
                ..data()
            }
        ])),
        "segments at 0x400000 and 0x401900 share a page"
    );
    assert_eq!(
        shown(Elf {
            machine: 183,
            ..Elf::valid()
        }),
        "built for machine 183, not x86_64 (62)"
    );
    assert_eq!(
        shown(Elf {
            entry: 0x40_2800,
            ..Elf::valid()
        }),
        "entry point 0x402800 is not inside an executable segment"
    );
    assert!(shown(Elf {
        phentsize: 1,
        ..Elf::valid()
    })
    .starts_with("malformed ELF image: "));
    assert!(shown(Elf {
        e_type: 3,
        ..Elf::valid()
    })
    .contains("ET_EXEC"));
}

/// A real image: the host test binary itself (x86_64 Linux, position-independent), and
/// a KaaL component program (`hello`) if a `cargo xtask build` has made it, in the window
/// components are loaded into. (Every system test loads its components through this
/// crate as well.)
#[test]
fn real_images() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    match plan(&me, USER) {
        Ok(plan) => check_invariants(&plan, &me, &USER),
        // PIE (ET_DYN), or built for another host: rejected after the header parsed.
        Err(LoadError::NotExecutable { e_type: 3 } | LoadError::NotX86_64 { .. }) => {}
        Err(LoadError::NotElf) if !cfg!(target_os = "linux") => {}
        Err(e) => panic!("the test binary: {e}"),
    }

    let path = std::env::var_os("KAAL_LOADER_IMAGE").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                Into::into,
            );
            target.join("x86_64-unknown-none/release/hello")
        },
        Into::into,
    );
    let Ok(image) = std::fs::read(&path) else {
        eprintln!("{} not built: skipped", path.display());
        return;
    };
    // `kaal_rt::start::layout::IMAGE_WINDOW` (kaal-rt builds only for seL4).
    let window = 0x1000..0x1000_0000;
    let plan = plan(&image, window.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check_invariants(&plan, &image, &window);
    // KaaL's linker script: text (RX) then data (RW).
    let perms: Vec<Perm> = plan.segments().iter().map(|s| s.perm).collect();
    assert_eq!(perms, [Perm::ReadExecute, Perm::ReadWrite]);
}
