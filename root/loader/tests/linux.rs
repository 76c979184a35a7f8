//! Static Linux executables: `ET_DYN` images placed at a base, `PT_INTERP` refused, and
//! the facts a Linux process's start needs (program headers, TLS, stack, end).
// Helpers outside #[test] functions too: clippy.toml's test exemption, a panic fails the test.
#![allow(clippy::indexing_slicing)]

#[allow(dead_code)] // each test file uses a part of it
mod common;

use common::*;
use kaal_loader::{plan, plan_at, LoadError, Perm, Phdrs, Tls, PAGE};

/// Where the tests place position-independent images (Linux's default for x86_64).
const BASE: u64 = 0x5555_5555_4000;

fn note(p_type: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Phdr {
    Phdr {
        p_type,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
    }
}

/// A static-pie image linked at 0, as Rust's musl target makes them: the headers in a
/// read-only first segment, text, then data with bss and thread-local data.
fn pie() -> Elf {
    Elf {
        e_type: ET_DYN,
        entry: 0x1010,
        ..Elf::with_phdrs(vec![
            Phdr::load(PF_R, 0, 0, 0x200, 0x200),
            Phdr::load(PF_R | PF_X, 0x1000, 0x1000, 0x1800, 0x1800),
            Phdr::load(PF_R | PF_W, 0x2800, 0x3800, 0x100, 0x2000),
            note(PT_TLS, PF_R, 0x2800, 0x3800, 0x10, 0x40),
            note(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0),
        ])
    }
}

#[test]
fn pie_goes_to_the_base() {
    let image = pie().build();
    let plan = plan_at(&image, USER, BASE).unwrap();
    check_invariants(&plan, &image, &USER);
    let placed: Vec<(u64, u64, Perm)> = plan
        .segments()
        .iter()
        .map(|s| (s.vaddr, s.mem_size, s.perm))
        .collect();
    assert_eq!(
        placed,
        [
            (BASE, 0x200, Perm::ReadOnly),
            (BASE + 0x1000, 0x1800, Perm::ReadExecute),
            (BASE + 0x3800, 0x2000, Perm::ReadWrite),
        ]
    );
    assert_eq!(plan.segments()[2].file, 0x2800..0x2900);
    assert_eq!(plan.entry(), BASE + 0x1010);
    assert_eq!(plan.bias(), BASE);
    assert_eq!(
        plan.phdrs(),
        Phdrs {
            vaddr: Some(BASE + EHDR as u64),
            entry_size: PHDR as u64,
            count: 5,
        }
    );
    assert_eq!(
        plan.tls(),
        Some(Tls {
            vaddr: BASE + 0x3800,
            file_size: 0x10,
            mem_size: 0x40,
            align: PAGE,
        })
    );
    assert_eq!(plan.stack_executable(), Some(false));
    assert_eq!(plan.end(), BASE + 0x5800);
    // The page holding the headers holds them where AT_PHDR says.
    let mut page = [0u8; PAGE as usize];
    plan.segments()[0].fill_page(&image, BASE, &mut page);
    assert_eq!(page[EHDR..EHDR + 4], PT_LOAD.to_le_bytes());
}

#[test]
fn pie_moves_its_lowest_page_to_the_base() {
    // Linked at 0x20_0100: the lowest page 0x20_0000 goes to the base.
    let shift = 0x20_0100;
    let mut elf = pie();
    elf.entry += shift;
    for p in elf.phdrs.iter_mut().filter(|p| p.p_type != PT_GNU_STACK) {
        p.vaddr += shift;
    }
    let plan = plan_at(&elf.build(), USER, BASE).unwrap();
    assert_eq!(plan.bias(), BASE - 0x20_0000);
    assert_eq!(plan.segments()[0].vaddr, BASE + 0x100);
    assert_eq!(plan.entry(), BASE + 0x1110);
    assert_eq!(plan.phdrs().vaddr, Some(BASE + 0x140));
    // A base below the link address: the bias wraps, the addresses do not.
    let plan = plan_at(&elf.build(), USER, 0x1000).unwrap();
    assert_eq!(plan.bias(), 0x1000u64.wrapping_sub(0x20_0000));
    assert_eq!(plan.entry(), 0x2110);
}

#[test]
fn pie_needs_a_base() {
    assert!(matches!(
        plan(&pie().build(), USER),
        Err(LoadError::NotExecutable { e_type: 3 })
    ));
    for e_type in [0, 1, 4] {
        let elf = Elf { e_type, ..pie() };
        assert!(matches!(
            plan_at(&elf.build(), USER, BASE),
            Err(LoadError::NotExecutable { e_type: t }) if t == e_type
        ));
    }
}

#[test]
fn fixed_images_ignore_the_base() {
    let image = Elf::valid().build();
    let fixed = plan(&image, USER).unwrap();
    assert_eq!(plan_at(&image, USER, BASE).unwrap(), fixed);
    assert_eq!(fixed.bias(), 0);
    assert_eq!(fixed.end(), DATA_VADDR + DATA_MEM);
    // No PT_GNU_STACK, no PT_TLS, and the headers are in no segment's file bytes.
    assert_eq!(fixed.stack_executable(), None);
    assert_eq!(fixed.tls(), None);
    assert_eq!(
        fixed.phdrs(),
        Phdrs {
            vaddr: None,
            entry_size: 56,
            count: 2
        }
    );
}

#[test]
fn rejects_dynamically_linked_images() {
    let interp = note(PT_INTERP, PF_R, 0x200, 0x200, 0x1c, 0x1c);
    let mut dynamic = pie();
    dynamic.phdrs.insert(0, interp);
    let mut fixed = Elf::valid();
    fixed.phdrs.push(interp);
    for elf in [dynamic, fixed] {
        let image = elf.build();
        assert!(matches!(
            plan_at(&image, USER, BASE),
            Err(LoadError::Interpreter)
        ));
        if elf.e_type == ET_EXEC {
            assert!(matches!(plan(&image, USER), Err(LoadError::Interpreter)));
        }
    }
    assert_eq!(
        LoadError::Interpreter.to_string(),
        "dynamically linked (PT_INTERP names a program interpreter); only static executables are loaded"
    );
}

#[test]
fn rejects_unaligned_bases() {
    for base in [BASE + 1, BASE + 0x800, u64::MAX] {
        let err = plan_at(&pie().build(), USER, base).unwrap_err();
        assert!(
            matches!(err, LoadError::UnalignedBase { base: b } if b == base),
            "{base:#x}"
        );
    }
    assert_eq!(
        LoadError::UnalignedBase { base: 0x1234 }.to_string(),
        "load base 0x1234 is not page-aligned"
    );
}

#[test]
fn rejects_bases_that_leave_the_window() {
    let image = pie().build();
    // Into page 0, past the window's end, past the end of the address space.
    for (base, at) in [
        (0, 0),
        (USER.end - 0x2000, USER.end - 0x2000 + 0x1000),
        (0xffff_ffff_ffff_f000, 0xffff_ffff_ffff_f000),
    ] {
        let err = plan_at(&image, USER, base).unwrap_err();
        assert!(
            matches!(err, LoadError::OutsideWindow { vaddr, .. } if vaddr == at),
            "{base:#x}: {err:?}"
        );
    }
    // The last base that fits.
    let last = USER.end - 0x6000;
    assert_eq!(plan_at(&image, USER, last).unwrap().end(), last + 0x5800);
}

#[test]
fn entry_and_errors_use_link_addresses() {
    let elf = Elf {
        entry: 0x3900, // the data segment's
        ..pie()
    };
    assert!(matches!(
        plan_at(&elf.build(), USER, BASE),
        Err(LoadError::EntryNotExecutable { entry: 0x3900 })
    ));
    let mut elf = pie();
    elf.phdrs[2].flags = PF_R | PF_W | PF_X;
    assert!(matches!(
        plan_at(&elf.build(), USER, BASE),
        Err(LoadError::WritableAndExecutable { vaddr: 0x3800 })
    ));
    let mut elf = pie();
    elf.phdrs[2].vaddr = 0x2100;
    assert!(matches!(
        plan_at(&elf.build(), USER, BASE),
        Err(LoadError::SharedPage {
            first: 0x1000,
            second: 0x2100
        })
    ));
}

#[test]
fn program_headers_from_pt_phdr() {
    let mut elf = pie();
    elf.phdrs
        .insert(0, note(PT_PHDR, PF_R, 0x40, 0x40, 6 * 56, 6 * 56));
    let plan = plan_at(&elf.build(), USER, BASE).unwrap();
    assert_eq!(plan.phdrs().vaddr, Some(BASE + 0x40));
    assert_eq!(plan.phdrs().count, 6);
    // PT_PHDR wins over the file offset, but only if the table lies inside a segment.
    for (vaddr, found) in [
        (0x80, Some(BASE + 0x80)),
        (0x200 - 6 * 56, Some(BASE + 0x200 - 6 * 56)),
        (0x200 - 6 * 56 + 1, None), // runs past the segment's end
        (0x900, None),              // in no segment
        (u64::MAX, None),           // relocation overflows
    ] {
        elf.phdrs[0].vaddr = vaddr;
        let plan = plan_at(&elf.build(), USER, BASE).unwrap();
        assert_eq!(plan.phdrs().vaddr, found, "PT_PHDR at {vaddr:#x}");
    }
}

#[test]
fn program_headers_outside_the_file_bytes() {
    // The first segment's file bytes end inside the table: not loaded.
    let mut elf = pie();
    elf.phdrs[0].filesz = 0x100;
    let plan = plan_at(&elf.build(), USER, BASE).unwrap();
    assert_eq!(plan.phdrs().vaddr, None);
}

#[test]
fn executable_stack_is_reported() {
    let mut elf = pie();
    elf.phdrs[4].flags = PF_R | PF_W | PF_X;
    let plan = plan_at(&elf.build(), USER, BASE).unwrap();
    assert_eq!(plan.stack_executable(), Some(true));
}

/// The test binary itself: on Linux a dynamically linked position-independent
/// executable, refused for its interpreter.
#[test]
fn the_test_binary_is_dynamic() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    match plan_at(&me, USER, BASE) {
        Err(LoadError::Interpreter) => {}
        Ok(plan) if !cfg!(target_os = "linux") => check_invariants(&plan, &me, &USER),
        Err(e) if !cfg!(target_os = "linux") => println!("not a Linux test binary: {e}"),
        other => panic!("the test binary: {other:?}"),
    }
}

/// Debian's `busybox-static` (glibc, static, non-PIE at 0x400000), if installed.
#[test]
fn busybox() {
    let path = "/bin/busybox";
    let Ok(image) = std::fs::read(path) else {
        println!("{path} is absent (Debian's busybox-static): skipped");
        return;
    };
    let plan = match plan_at(&image, USER, BASE) {
        Ok(plan) => plan,
        // A dynamically linked busybox (Debian's `busybox`, not `busybox-static`).
        Err(LoadError::Interpreter) => {
            println!("{path} is dynamically linked (not busybox-static): skipped");
            return;
        }
        Err(e) => panic!("{path}: {e}"),
    };
    check_invariants(&plan, &image, &USER);
    assert_eq!(plan.bias(), 0);
    assert_eq!(plan.phdrs().vaddr, Some(0x40_0040));
    assert_eq!(plan.stack_executable(), Some(false));
    let tls = plan.tls().expect("glibc has thread-local data");
    assert!(plan.segments().iter().any(|s| s.perm == Perm::ReadWrite
        && s.vaddr <= tls.vaddr
        && tls.vaddr < s.vaddr + s.mem_size));
}
