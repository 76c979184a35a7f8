//! The initial stack, parsed back as a C library's start code reads it.
// Helpers outside #[test] functions too: clippy.toml's test exemption, a panic fails the test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use posix::image::*;

const TOP: u64 = 0x7fff_ffff_f000;

fn program() -> Program {
    Program {
        phdr: 0x40_0040,
        phent: 56,
        phnum: 10,
        entry: 0x40_ebf0,
    }
}

fn request<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]]) -> StackRequest<'a> {
    StackRequest {
        top: TOP,
        argv,
        envp,
        execfn: b"/bin/busybox",
        random: *b"0123456789abcdef",
        program: program(),
    }
}

/// What the start code finds at rsp.
#[derive(Debug)]
struct Parsed {
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
}

struct View<'a> {
    stack: &'a InitialStack,
    top: u64,
}

impl View<'_> {
    fn byte(&self, addr: u64) -> u8 {
        assert!(
            self.stack.rsp <= addr && addr < self.top,
            "{addr:#x} outside"
        );
        self.stack.bytes[(addr - self.stack.rsp) as usize]
    }
    fn word(&self, addr: u64) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|i| self.byte(addr + i as u64)))
    }
    fn string(&self, mut addr: u64) -> Vec<u8> {
        let mut s = Vec::new();
        while self.byte(addr) != 0 {
            s.push(self.byte(addr));
            addr += 1;
        }
        s
    }
    /// Pointers up to a NULL; returns the strings and the address after the NULL.
    fn list(&self, mut at: u64) -> (Vec<Vec<u8>>, u64) {
        let mut out = Vec::new();
        loop {
            let p = self.word(at);
            at += 8;
            if p == 0 {
                return (out, at);
            }
            out.push(self.string(p));
        }
    }
    fn parse(&self) -> Parsed {
        let rsp = self.stack.rsp;
        let argc = self.word(rsp);
        let (argv, at) = self.list(rsp + 8);
        assert_eq!(argv.len() as u64, argc);
        let (envp, mut at) = self.list(at);
        let mut auxv = Vec::new();
        loop {
            let (t, v) = (self.word(at), self.word(at + 8));
            auxv.push((t, v));
            at += 16;
            if t == AT_NULL {
                break;
            }
        }
        Parsed { argv, envp, auxv }
    }
}

fn build(req: &StackRequest<'_>) -> (InitialStack, Parsed) {
    let stack = initial_stack(req).unwrap();
    assert_eq!(
        stack.rsp % 16,
        0,
        "rsp {:#x} not 16-byte aligned",
        stack.rsp
    );
    assert_eq!(stack.rsp + stack.bytes.len() as u64, req.top);
    let parsed = View {
        stack: &stack,
        top: req.top,
    }
    .parse();
    (stack, parsed)
}

#[test]
fn layout_reads_back() {
    let argv: &[&[u8]] = &[b"ls", b"-l", b"/etc"];
    let envp: &[&[u8]] = &[b"PATH=/bin", b"HOME=/", b"TERM=vt100"];
    let req = request(argv, envp);
    let (stack, parsed) = build(&req);
    assert_eq!(parsed.argv, argv);
    assert_eq!(parsed.envp, envp);
    let aux: HashMap<u64, u64> = parsed.auxv.iter().copied().collect();
    assert_eq!(aux.len(), parsed.auxv.len(), "each type once");
    let types: Vec<u64> = parsed.auxv.iter().map(|&(t, _)| t).collect();
    assert_eq!(
        types,
        [
            AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID,
            AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP, AT_CLKTCK, AT_EXECFN, AT_NULL
        ]
    );
    assert_eq!(aux[&AT_PHDR], 0x40_0040);
    assert_eq!(aux[&AT_PHENT], 56);
    assert_eq!(aux[&AT_PHNUM], 10);
    assert_eq!(aux[&AT_PAGESZ], 4096);
    assert_eq!(aux[&AT_ENTRY], 0x40_ebf0);
    assert_eq!(aux[&AT_CLKTCK], 100);
    for t in [
        AT_BASE, AT_FLAGS, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_HWCAP,
    ] {
        assert_eq!(aux[&t], 0, "type {t}");
    }
    assert!(!aux.contains_key(&33), "no AT_SYSINFO_EHDR");
    let view = View {
        stack: &stack,
        top: TOP,
    };
    assert_eq!(view.string(aux[&AT_EXECFN]), b"/bin/busybox");
    let random = aux[&AT_RANDOM];
    assert_eq!(random % 16, 0);
    let bytes: Vec<u8> = (0..16).map(|i| view.byte(random + i)).collect();
    assert_eq!(bytes, b"0123456789abcdef");
    // The top 8 bytes are zero, and nothing reaches past the top.
    assert!((TOP - 8..TOP).all(|a| view.byte(a) == 0));
}

#[test]
fn every_count_keeps_rsp_aligned() {
    let strings: Vec<Vec<u8>> = (0..40).map(|i| vec![b'a' + (i % 26) as u8; i]).collect();
    let refs: Vec<&[u8]> = strings.iter().map(|s| s.as_slice()).collect();
    for argc in 0..8 {
        for envc in 0..8 {
            for top in [TOP, TOP - 1, TOP - 8, TOP - 13] {
                let (argv, envp) = (&refs[..argc], &refs[argc..argc + envc]);
                let req = StackRequest {
                    top,
                    ..request(argv, envp)
                };
                let (_, parsed) = build(&req);
                assert_eq!(parsed.argv, argv);
                assert_eq!(parsed.envp, envp);
            }
        }
    }
}

#[test]
fn empty_strings_and_lists() {
    let (_, parsed) = build(&StackRequest {
        execfn: b"",
        ..request(&[b""], &[])
    });
    assert_eq!(parsed.argv, [b""]);
    assert!(parsed.envp.is_empty());
}

#[test]
fn refuses_too_long_arguments() {
    let big = vec![b'x'; ARGS_MAX / 2];
    let argv: &[&[u8]] = &[&big];
    let envp: &[&[u8]] = &[&big];
    let err = initial_stack(&request(argv, envp)).unwrap_err();
    assert!(matches!(err, StackError::TooLong { size } if size > ARGS_MAX));
    assert!(err.to_string().contains("E2BIG"));
    // Just under the limit is fine: strings, NULs and pointers counted.
    let fits = vec![b'x'; ARGS_MAX - 9 - (b"/bin/busybox".len() + 9)];
    let argv: &[&[u8]] = &[&fits];
    let (_, parsed) = build(&request(argv, &[]));
    assert_eq!(parsed.argv[0].len(), fits.len());
    let over = vec![b'x'; fits.len() + 1];
    let argv: &[&[u8]] = &[&over];
    assert!(matches!(
        initial_stack(&request(argv, &[])),
        Err(StackError::TooLong { size }) if size == ARGS_MAX + 1
    ));
    // Many empty strings count their pointers.
    let many: Vec<&[u8]> = vec![b""; ARGS_MAX / 9];
    assert!(matches!(
        initial_stack(&request(&many, &[])),
        Err(StackError::TooLong { .. })
    ));
}

#[test]
fn refuses_nul_bytes() {
    type Case<'a> = (&'a [&'a [u8]], &'a [&'a [u8]], &'a [u8], StackError);
    let cases: [Case; 3] = [
        (
            &[b"a", b"b\0c"],
            &[],
            b"/x",
            StackError::Nul {
                what: "argv",
                index: 1,
            },
        ),
        (
            &[b"a"],
            &[b"\0"],
            b"/x",
            StackError::Nul {
                what: "envp",
                index: 0,
            },
        ),
        (
            &[b"a"],
            &[],
            b"/x\0",
            StackError::Nul {
                what: "execfn",
                index: 0,
            },
        ),
    ];
    for (argv, envp, execfn, want) in cases {
        let req = StackRequest {
            execfn,
            ..request(argv, envp)
        };
        assert_eq!(initial_stack(&req).unwrap_err(), want);
    }
    assert_eq!(
        StackError::Nul {
            what: "argv",
            index: 1
        }
        .to_string(),
        "argv[1] contains a NUL byte"
    );
}

#[test]
fn refuses_a_top_too_low() {
    for top in [0, 8, 0x100] {
        let req = StackRequest {
            top,
            ..request(&[b"sh"], &[])
        };
        assert!(
            matches!(initial_stack(&req), Err(StackError::NoRoom { top: t, .. }) if t == top),
            "{top:#x}"
        );
    }
    // Just high enough.
    let need = initial_stack(&request(&[b"sh"], &[])).unwrap().bytes.len() as u64;
    let req = StackRequest {
        top: need,
        ..request(&[b"sh"], &[])
    };
    assert_eq!(initial_stack(&req).unwrap().rsp, 0);
}

proptest::proptest! {
    /// Any strings without NULs under any top: the layout reads back, or a clear error.
    #[test]
    fn arbitrary_requests(
        argv in proptest::collection::vec(proptest::collection::vec(1..=255u8, 0..40), 0..12),
        envp in proptest::collection::vec(proptest::collection::vec(1..=255u8, 0..40), 0..12),
        top in proptest::prelude::any::<u64>(),
        random in proptest::prelude::any::<[u8; 16]>(),
    ) {
        let argv: Vec<&[u8]> = argv.iter().map(|s| s.as_slice()).collect();
        let envp: Vec<&[u8]> = envp.iter().map(|s| s.as_slice()).collect();
        let req = StackRequest { top, random, ..request(&argv, &envp) };
        match initial_stack(&req) {
            Ok(stack) => {
                let view = View { stack: &stack, top };
                proptest::prop_assert_eq!(stack.rsp % 16, 0);
                let parsed = view.parse();
                proptest::prop_assert_eq!(&parsed.argv, &argv);
                proptest::prop_assert_eq!(&parsed.envp, &envp);
            }
            Err(StackError::NoRoom { .. }) => proptest::prop_assert!(top < 0x2000),
            Err(e) => proptest::prop_assert!(false, "{}", e),
        }
    }
}
