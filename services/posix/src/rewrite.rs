//! Syscall rewriting: every `syscall` instruction of a Linux image becomes `int
//! $LINUX_VECTOR` before the process first runs.
//!
//! seL4 takes its system call number from rdx, Linux from rax, and Linux passes its
//! third argument in rdx: a Linux `syscall` whose rdx is -1..-13 would be taken as a
//! seL4 call (IPC, yield, or on a debug kernel a halt). `int $N` with 0x9e <= N <= 0xfe
//! always arrives as an UnknownSyscall fault on the thread's fault endpoint, whatever
//! the registers hold, and is as long as `syscall` (2 bytes; FaultIP points at it
//! either way, so the reply advances it by 2).
//!
//! ```text
//!   0f 05   syscall        ──►   cd a0   int $0xa0
//! ```
//!
//! Sites are found by decoding the code as a disassembler does, never by scanning for
//! the bytes `0f 05`: those also occur inside other instructions (`mov eax, 0x50f` is
//! `b8 0f 05 00 00`), and patching one of those would corrupt the program. Rewriting
//! is not a security boundary (a jump into the middle of an instruction, generated
//! code): a fault whose FaultIP bytes pass [`is_syscall_site`] is a Linux syscall the
//! rewriter missed, patched then (the late path).

use alloc::vec::Vec;

use iced_x86::{Code, Decoder, DecoderOptions, Instruction};

/// The interrupt vector a rewritten `syscall` raises. seL4 5.0.0 reports every vector
/// from 0x9e to 0xfe raised by user code as an UnknownSyscall fault.
pub const LINUX_VECTOR: u8 = 0xa0;

/// The bytes of `syscall`.
pub const SYSCALL: [u8; 2] = [0x0f, 0x05];

/// What a `syscall` becomes: `int $LINUX_VECTOR`.
pub const REPLACEMENT: [u8; 2] = [0xcd, LINUX_VECTOR];

/// The addresses of the `syscall` instructions in `code`, mapped at `vaddr`, in
/// ascending order: each the address of the instruction's `0f 05` (after its prefixes,
/// if it has any; compilers emit none).
///
/// `code` is decoded linearly from its first byte as 64-bit code, as `objdump -d`
/// does. Bytes that do not decode (data in the text, padding) are skipped one at a
/// time: decoding restarts at the byte after the start of the invalid instruction, so
/// it resynchronises as soon as real instructions follow, and the `0f 05` of a real
/// `syscall` right after the bad bytes is still found. Bytes at the end too few for an
/// instruction are not a site. Addresses wrap modulo 2^64, like the decoder's
/// instruction pointer (a plan's segments never wrap).
pub fn syscall_sites(code: &[u8], vaddr: u64) -> Vec<u64> {
    let mut sites = Vec::new();
    let mut decoder = match Decoder::try_with_ip(64, code, vaddr, DecoderOptions::NONE) {
        Ok(d) => d,
        // Only an invalid bitness fails; 64 is valid.
        Err(_) => return sites,
    };
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        let start = decoder.position();
        decoder.decode_out(&mut instr);
        match instr.code() {
            // The site is the `0f 05`, after any prefixes: seL4 reports an `int`'s
            // FaultIP as NextIP - 2, so a prefixed site still resumes after it.
            Code::Syscall => sites.push(instr.next_ip().wrapping_sub(2)),
            Code::INVALID => {
                // The decoder went past everything it read; go back to the next byte,
                // since an instruction may begin inside the bytes it gave up on.
                let next = start.saturating_add(1);
                if decoder.set_position(next).is_err() {
                    break;
                }
                decoder.set_ip(vaddr.wrapping_add(next as u64));
            }
            _ => {}
        }
    }
    sites
}

/// Whether `bytes` (read at a faulting instruction pointer) start with a `syscall`:
/// the late path's test, for a site the load-time rewrite missed.
pub fn is_syscall_site(bytes: &[u8]) -> bool {
    bytes.starts_with(&SYSCALL)
}

/// Rewrites the sites that touch `page`, which holds the bytes at `page_vaddr..`:
/// each site's `0f` becomes `cd` and its `05` becomes [`LINUX_VECTOR`], where those
/// bytes lie in `page`. A site that straddles two pages is half-patched by each of
/// them, so a page can be patched alone, when it is filled.
///
/// `sites` must be sorted ascending (as [`syscall_sites`] returns them). A byte is only
/// changed if it holds what a `syscall` has there, so patching twice, or with a site
/// that is no `syscall`, changes nothing. Returns the number of bytes changed.
pub fn patch(page: &mut [u8], page_vaddr: u64, sites: &[u64]) -> usize {
    let len = page.len() as u64;
    // A site starting one byte before the page still has its second byte here.
    let first = sites.partition_point(|&s| s.saturating_add(1) < page_vaddr);
    let mut changed = 0;
    for &site in sites.get(first..).unwrap_or(&[]) {
        if site.checked_sub(page_vaddr).is_some_and(|off| off >= len) {
            break;
        }
        for (k, (&from, &to)) in SYSCALL.iter().zip(&REPLACEMENT).enumerate() {
            let Some(off) = site
                .checked_add(k as u64)
                .and_then(|a| a.checked_sub(page_vaddr))
                .filter(|&off| off < len)
                .and_then(|off| usize::try_from(off).ok())
            else {
                continue;
            };
            if let Some(byte) = page.get_mut(off).filter(|b| **b == from) {
                *byte = to;
                changed += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-assembled 64-bit code, each instruction with its offset.
    const SAMPLE: &[(usize, &[u8])] = &[
        (0, &[0xb8, 0x0f, 0x05, 0x00, 0x00]), // mov eax, 0x50f: `0f 05` in an immediate
        (5, &[0x0f, 0x05]),                   // syscall
        (7, &[0x48, 0x89, 0xc7]),             // mov rdi, rax
        (10, &[0x48, 0xc7, 0xc0, 0x3c, 0x00, 0x00, 0x00]), // mov rax, 60
        (17, &[0x0f, 0x05]),                  // syscall
        (19, &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]), // nop word [rax+rax]
        (25, &[0x48, 0x8d, 0x05, 0x0f, 0x05, 0x00, 0x00]), // lea rax, [rip+0x50f]
        (32, &[0xc3]),                        // ret
    ];

    fn sample() -> Vec<u8> {
        let mut code = Vec::new();
        for (offset, bytes) in SAMPLE {
            assert_eq!(code.len(), *offset);
            code.extend_from_slice(bytes);
        }
        code
    }

    /// The offsets of every `0f 05` byte pair, instruction or not.
    fn byte_pairs(code: &[u8]) -> Vec<usize> {
        code.windows(2)
            .enumerate()
            .filter(|(_, w)| *w == SYSCALL)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn finds_instructions_not_byte_pairs() {
        let code = sample();
        assert_eq!(byte_pairs(&code), [1, 5, 17, 28]);
        assert_eq!(syscall_sites(&code, 0x40_1000), [0x40_1005, 0x40_1011]);
        assert_eq!(syscall_sites(&code, 0), [5, 17]);
        assert!(syscall_sites(&[], 0x1000).is_empty());
        assert!(syscall_sites(&[0x0f], 0x1000).is_empty());
        assert_eq!(syscall_sites(&[0x0f, 0x05], 0x1000), [0x1000]);
    }

    #[test]
    fn resynchronises_after_invalid_bytes() {
        // 0x06 (push es) and 0xd6 are invalid in 64-bit mode; `0f 0b` is ud2, valid.
        for junk in [
            &[0x06][..],
            &[0x06, 0xd6],
            &[0xd6, 0x06, 0x06],
            &[0x0f, 0x0b],
        ] {
            let mut code = junk.to_vec();
            code.extend_from_slice(&sample());
            let at = junk.len() as u64;
            assert_eq!(
                syscall_sites(&code, 0x1000),
                [0x1000 + at + 5, 0x1000 + at + 17],
                "{junk:02x?}"
            );
        }
        // A prefix run longer than an instruction may be (15 bytes): decoding restarts
        // byte by byte until the prefixed `syscall` at 3 fits; its site is the `0f 05`.
        let mut code = vec![0x66; 16];
        code.extend_from_slice(&[0x0f, 0x05]);
        assert_eq!(syscall_sites(&code, 0), [16]);
        // A truncated instruction at the end is skipped byte by byte.
        let code = [0x0f, 0x05, 0x48, 0x8b];
        assert_eq!(syscall_sites(&code, 0), [0]);
    }

    #[test]
    fn wraps_at_the_top_of_the_address_space() {
        assert_eq!(syscall_sites(&[0x90, 0x0f, 0x05], u64::MAX), [0]);
    }

    #[test]
    fn is_syscall_site_checks_two_bytes() {
        assert!(is_syscall_site(&[0x0f, 0x05]));
        assert!(is_syscall_site(&[0x0f, 0x05, 0xc3]));
        assert!(!is_syscall_site(&[0x0f]));
        assert!(!is_syscall_site(&[]));
        assert!(!is_syscall_site(&[0xcd, LINUX_VECTOR]));
        assert!(!is_syscall_site(&[0x0f, 0x34])); // sysenter
    }

    #[test]
    fn patch_rewrites_only_the_sites() {
        let code = sample();
        let sites = syscall_sites(&code, 0x40_1000);
        let mut page = code.clone();
        assert_eq!(patch(&mut page, 0x40_1000, &sites), 4);
        let mut expected = code.clone();
        expected[5..7].copy_from_slice(&REPLACEMENT);
        expected[17..19].copy_from_slice(&REPLACEMENT);
        assert_eq!(page, expected);
        // The immediates still hold their `0f 05`.
        assert_eq!(byte_pairs(&page), [1, 28]);
        // Twice is once.
        assert_eq!(patch(&mut page, 0x40_1000, &sites), 0);
        assert_eq!(page, expected);
        // Sites that are not `syscall` bytes are left alone.
        let mut other = code.clone();
        assert_eq!(patch(&mut other, 0x40_1000, &[0x40_1000, 0x40_1007]), 0);
        assert_eq!(other, code);
    }

    #[test]
    fn patch_handles_a_site_across_two_pages() {
        let mut low = vec![0x90u8; 16];
        let mut high = vec![0x90u8; 16];
        low[15] = 0x0f;
        high[0] = 0x05;
        let sites = [0x100f, 0x1012];
        high[2..4].copy_from_slice(&SYSCALL);
        assert_eq!(patch(&mut high, 0x1010, &sites), 3);
        assert_eq!(high[..4], [LINUX_VECTOR, 0x90, 0xcd, LINUX_VECTOR]);
        assert_eq!(patch(&mut low, 0x1000, &sites), 1);
        assert_eq!(low[15], 0xcd);
        assert!(low[..15].iter().all(|&b| b == 0x90));
    }

    #[test]
    fn patch_ignores_sites_elsewhere_and_at_the_edges() {
        let mut page = vec![0x0fu8; 8];
        let before = page.clone();
        for sites in [
            &[][..],
            &[0x0],
            &[0x0ffe],
            &[0x1008],
            &[u64::MAX],
            &[0x2000],
        ] {
            assert_eq!(patch(&mut page, 0x1000, sites), 0, "{sites:x?}");
            assert_eq!(page, before);
        }
        // The last byte of the address space: the site's second byte would wrap.
        let mut top = vec![0x0fu8; 1];
        assert_eq!(patch(&mut top, u64::MAX, &[u64::MAX]), 1);
        assert_eq!(top, [0xcd]);
    }

    proptest::proptest! {
        /// Any bytes: no panic, sites ascending, inside the code, each a `0f 05`, and
        /// patching every page of any size changes exactly those pairs.
        #[test]
        fn arbitrary_code(
            code in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            vaddr in 0..u64::MAX / 2,
            page in 1..64usize,
        ) {
            let sites = syscall_sites(&code, vaddr);
            proptest::prop_assert!(sites.windows(2).all(|w| w[0] + 1 < w[1]));
            let mut patched = code.clone();
            for (i, chunk) in patched.chunks_mut(page).enumerate() {
                patch(chunk, vaddr + (i * page) as u64, &sites);
            }
            let mut expected = code.clone();
            for &s in &sites {
                let off = (s - vaddr) as usize;
                proptest::prop_assert_eq!(&code[off..off + 2], &SYSCALL[..]);
                expected[off..off + 2].copy_from_slice(&REPLACEMENT);
            }
            proptest::prop_assert_eq!(patched, expected);
        }
    }
}
