//! Property tests: no input makes the loader panic, and every plan it makes keeps its
//! promises.
// Helpers outside #[test] functions too: clippy.toml's test exemption, a panic fails the test.
#![allow(clippy::indexing_slicing)]

#[allow(dead_code)] // each test file uses a part of it
mod common;

use std::ops::Range;

use common::*;
use kaal_loader::{plan, plan_at, LoadError, Perm, MAX_SEGMENTS, PAGE};
use proptest::prelude::*;

/// `plan_at`'s bases: Linux's default for position-independent images, or any page.
fn base() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0x5555_5555_4000u64),
        any::<u64>().prop_map(|b| b & !(PAGE - 1))
    ]
}

/// User windows: KaaL's, the whole address space, or anything.
fn window() -> impl Strategy<Value = Range<u64>> {
    prop_oneof![
        Just(USER),
        Just(0..u64::MAX),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| a.min(b)..a.max(b)),
    ]
}

/// How to damage the valid image.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite a byte anywhere.
    Byte(usize, u8),
    /// Overwrite a byte of the headers (where damage matters most).
    Header(usize, u8),
    /// Overwrite an aligned header word with a value near a boundary.
    Word(usize, u64),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let headers = EHDR + 2 * PHDR;
    let word = prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(u64::MAX),
        (0..2 * PAGE).prop_map(|k| u64::MAX - k),
        (0..0x50_0000u64),
        Just(USER.end),
    ];
    prop_oneof![
        1 => (0..IMAGE_LEN, any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        3 => (0..headers, any::<u8>()).prop_map(|(i, b)| Mutation::Header(i, b)),
        3 => (0..headers / 8, word).prop_map(|(i, w)| Mutation::Word(i * 8, w)),
        1 => (0..IMAGE_LEN).prop_map(Mutation::Truncate),
    ]
}

fn apply(image: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Byte(i, b) | Mutation::Header(i, b) => image[i] = b,
        Mutation::Word(i, w) => image[i..i + 8].copy_from_slice(&w.to_le_bytes()),
        Mutation::Truncate(len) => image.truncate(len),
    }
}

/// One program header of a random but plausible layout: mostly sensible flags and file
/// ranges inside the image, 64 slots of 16 KiB for the addresses, so that valid plans,
/// overlaps and every segment-level rejection all happen often.
fn phdr() -> impl Strategy<Value = Phdr> {
    let flags = prop_oneof![
        4 => Just(PF_R | PF_X),
        4 => Just(PF_R | PF_W),
        2 => Just(PF_R),
        1 => Just(PF_X),
        1 => Just(PF_W),
        1 => 0..8u32,
    ];
    let file = prop_oneof![Just(0u64), 0..0x1000u64].prop_flat_map(|filesz| {
        let inside = 0..IMAGE_LEN as u64 - filesz + 1;
        let anywhere = 0..IMAGE_LEN as u64 + 0x100;
        (prop_oneof![8 => inside, 1 => anywhere], Just(filesz))
    });
    (
        prop_oneof![
            24 => Just(PT_LOAD),
            3 => Just(PT_NOTE),
            1 => Just(PT_INTERP),
            1 => Just(PT_TLS),
            1 => Just(PT_PHDR),
            1 => Just(PT_GNU_STACK),
        ],
        flags,
        file,
        0..64u64,
        0..0x2000u64,
        prop_oneof![Just(0u64), 0..0x2000u64],
    )
        .prop_map(
            |(p_type, flags, (offset, filesz), slot, in_slot, extra)| Phdr {
                p_type,
                flags,
                offset,
                vaddr: 0x40_0000 + slot * 0x4000 + in_slot,
                filesz,
                memsz: filesz + extra,
            },
        )
}

/// The entry point: inside the first executable segment, or anywhere near the segments.
fn entry_in(phdrs: &[Phdr], inside: bool, x: u64) -> u64 {
    let text = phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.flags & PF_X != 0 && p.memsz > 0);
    match text {
        Some(p) if inside => p.vaddr + x % p.memsz,
        _ => 0x40_0000 + x % 0x10_0000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        elf_prefix in any::<bool>(),
        user in window(),
    ) {
        let mut bytes = bytes;
        if elf_prefix && bytes.len() >= 16 {
            // Past the identification, so the header and table parsing are exercised.
            bytes[..16].copy_from_slice(&Elf::valid().build()[..16]);
        }
        if let Ok(plan) = plan(&bytes, user.clone()) {
            check_invariants(&plan, &bytes, &user);
        }
    }

    #[test]
    fn mutated_images_never_panic(
        mutations in prop::collection::vec(mutation(), 1..6),
        user in window(),
        pie in any::<bool>(),
        base in base(),
    ) {
        let e_type = if pie { ET_DYN } else { ET_EXEC };
        let mut image = Elf { e_type, ..Elf::valid() }.build();
        for m in &mutations {
            if let Mutation::Byte(i, _) | Mutation::Header(i, _) = m {
                if *i >= image.len() { continue; }
            }
            if let Mutation::Word(i, _) = m {
                if i + 8 > image.len() { continue; }
            }
            apply(&mut image, m);
        }
        if let Ok(plan) = plan(&image, user.clone()) {
            check_invariants(&plan, &image, &user);
        }
        if let Ok(plan) = plan_at(&image, user.clone(), base) {
            check_invariants(&plan, &image, &user);
        }
    }

    /// The same random tables as an `ET_DYN` image at a random base: the fixed image's
    /// plan moved so its lowest page is at the base, or the fixed image's error (errors
    /// name link addresses, and every base keeps these layouts inside the window).
    #[test]
    fn pie_layouts_are_the_fixed_ones_moved(
        phdrs in prop::collection::vec(phdr(), 1..11),
        inside in prop::bool::weighted(0.8),
        x in any::<u64>(),
        page in 1..0x7000_0000u64,
    ) {
        let base = page * PAGE;
        let entry = entry_in(&phdrs, inside, x);
        let fixed = Elf { entry, ..Elf::with_phdrs(phdrs.clone()) };
        let pie = Elf { e_type: ET_DYN, ..fixed.clone() };
        let (fixed, pie) = (fixed.build(), pie.build());
        match (plan(&fixed, USER), plan_at(&pie, USER, base)) {
            (Ok(f), Ok(p)) => {
                check_invariants(&p, &pie, &USER);
                let lowest = f.segments().iter().map(|s| s.vaddr).min().unwrap();
                // Bases below the link address make the bias wrap; the addresses never do.
                let bias = base.wrapping_sub(lowest / PAGE * PAGE);
                let moved = |v: u64| v.wrapping_add(bias);
                prop_assert_eq!(p.bias(), bias);
                prop_assert_eq!(p.entry(), moved(f.entry()));
                prop_assert_eq!(p.end(), moved(f.end()));
                prop_assert_eq!(p.segments().len(), f.segments().len());
                for (p, f) in p.segments().iter().zip(f.segments()) {
                    prop_assert_eq!(p.vaddr, moved(f.vaddr));
                    prop_assert_eq!((p.mem_size, &p.file, p.perm), (f.mem_size, &f.file, f.perm));
                }
                prop_assert_eq!(p.phdrs().vaddr, f.phdrs().vaddr.map(moved));
                prop_assert_eq!(p.tls().map(|t| t.vaddr), f.tls().map(|t| moved(t.vaddr)));
                prop_assert_eq!(p.stack_executable(), f.stack_executable());
            }
            (Err(f), Err(p)) => prop_assert_eq!(f.to_string(), p.to_string()),
            (f, p) => prop_assert!(false, "fixed {:?}, pie {:?}", f, p),
        }
    }

    /// Random program header tables: a plan holds exactly the non-empty `PT_LOAD`
    /// segments, in order, with the permissions their flags give; a rejection is one of
    /// the segment-level ones and true of the headers.
    #[test]
    fn random_layouts_keep_the_promises(
        phdrs in prop::collection::vec(phdr(), 1..11),
        inside in prop::bool::weighted(0.8),
        x in any::<u64>(),
    ) {
        let entry = entry_in(&phdrs, inside, x);
        let image = Elf { entry, ..Elf::with_phdrs(phdrs.clone()) }.build();
        let loaded: Vec<&Phdr> =
            phdrs.iter().filter(|p| p.p_type == PT_LOAD && p.memsz > 0).collect();
        let interp = phdrs.iter().any(|p| p.p_type == PT_INTERP);
        match plan(&image, USER) {
            Err(LoadError::Interpreter) => prop_assert!(interp),
            _ if interp => prop_assert!(false, "PT_INTERP accepted"),
            Ok(plan) => {
                check_invariants(&plan, &image, &USER);
                prop_assert_eq!(plan.segments().len(), loaded.len());
                for (s, p) in plan.segments().iter().zip(&loaded) {
                    prop_assert_eq!((s.vaddr, s.mem_size), (p.vaddr, p.memsz));
                    prop_assert_eq!(s.file.len() as u64, p.filesz);
                    if p.filesz > 0 {
                        prop_assert_eq!(s.file.start as u64, p.offset);
                    }
                    prop_assert_eq!(s.perm, perm_of(p.flags));
                    prop_assert!(p.flags & (PF_W | PF_X) != PF_W | PF_X, "W^X");
                }
            }
            Err(e) => check_rejection(&e, &loaded, image.len())?,
        }
    }
}

fn perm_of(flags: u32) -> Perm {
    if flags & PF_X != 0 {
        Perm::ReadExecute
    } else if flags & PF_W != 0 {
        Perm::ReadWrite
    } else {
        Perm::ReadOnly
    }
}

/// Whether `e` is true of the non-empty `PT_LOAD` headers `loaded`.
fn check_rejection(e: &LoadError, loaded: &[&Phdr], image_len: usize) -> Result<(), TestCaseError> {
    let at = |vaddr: u64| loaded.iter().filter(move |p| p.vaddr == vaddr);
    let pages = |p: &Phdr| p.vaddr / PAGE..(p.vaddr + p.memsz).div_ceil(PAGE);
    let share = |p: &Phdr, q: &Phdr| {
        let (p, q) = (pages(p), pages(q));
        p.start < q.end && q.start < p.end
    };
    let runs =
        |p: &Phdr, entry: u64| p.flags & PF_X != 0 && p.vaddr <= entry && entry < p.vaddr + p.memsz;
    match *e {
        LoadError::NoLoadSegment => prop_assert!(loaded.is_empty()),
        LoadError::TooManySegments => prop_assert!(loaded.len() > MAX_SEGMENTS),
        LoadError::FileOutsideImage {
            vaddr,
            offset,
            size,
        } => {
            prop_assert!(at(vaddr).any(|p| p.offset == offset && p.filesz == size));
            prop_assert!(offset + size > image_len as u64);
        }
        LoadError::WritableAndExecutable { vaddr } => {
            prop_assert!(at(vaddr).any(|p| p.flags & (PF_W | PF_X) == PF_W | PF_X));
        }
        LoadError::SharedPage { first, second } => {
            let found = at(first).any(|p| at(second).any(|q| !std::ptr::eq(*p, *q) && share(p, q)));
            prop_assert!(found, "{:#x} and {:#x}", first, second);
        }
        LoadError::EntryNotExecutable { entry } => {
            prop_assert!(!loaded.iter().any(|p| runs(p, entry)), "{:#x}", entry);
        }
        _ => prop_assert!(false, "{:?}", e),
    }
    Ok(())
}
