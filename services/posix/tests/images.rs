//! `Image` on a hand-written ELF image, then on real static Linux executables: Debian's
//! `busybox-static`, a `musl-gcc -static` C program and a Rust program for
//! `x86_64-unknown-linux-musl` (static-pie). The real ones are checked against
//! `objdump -d`: the same `syscall` instructions, and none left after patching.
// Helpers outside #[test] functions too: clippy.toml's test exemption, a panic fails the test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

use kaal_loader::{LoadError, Perm, PAGE};
use posix::image::{Image, ImageError, PIE_BASE};
use posix::rewrite::{self, LINUX_VECTOR, SYSCALL};

const WINDOW: std::ops::Range<u64> = 0x1000..0x7fff_0000_0000;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;

/// An ELF64 x86_64 image: the file header, then program headers `(type, flags, offset,
/// vaddr, filesz, memsz)`, then zeros up to `len`, with `code` at `code_at`.
fn elf(
    e_type: u16,
    entry: u64,
    phdrs: &[(u32, u32, u64, u64, u64, u64)],
    code: &[(usize, &[u8])],
    len: usize,
) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
    h.resize(16, 0);
    h.extend_from_slice(&e_type.to_le_bytes());
    h.extend_from_slice(&62u16.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, phdrs.len() as u16, 64, 0, 0] {
        h.extend_from_slice(&half.to_le_bytes());
    }
    for &(p_type, flags, offset, vaddr, filesz, memsz) in phdrs {
        h.extend_from_slice(&p_type.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        for word in [offset, vaddr, vaddr, filesz, memsz, PAGE] {
            h.extend_from_slice(&word.to_le_bytes());
        }
    }
    b[..h.len()].copy_from_slice(&h);
    for (at, bytes) in code {
        b[*at..at + bytes.len()].copy_from_slice(bytes);
    }
    b
}

/// Text at 0x400000 (from file offset 0, headers included) up to 0x401100, with a
/// `0f 05` in an immediate at 0x400100 and a `syscall` across the page edge at
/// 0x400fff; data at 0x402000 with bss up to 0x403800.
fn small(e_type: u16, link: u64) -> Vec<u8> {
    let mut code = vec![0x90u8; 0x1100 - 0x100]; // nops
    code[..5].copy_from_slice(&[0xb8, 0x0f, 0x05, 0x00, 0x00]); // mov eax, 0x50f
    code[0xeff..0xf01].copy_from_slice(&SYSCALL);
    code[0xf01] = 0xc3;
    elf(
        e_type,
        link + 0x100,
        &[
            (PT_LOAD, 5, 0, link, 0x1100, 0x1100),
            (PT_LOAD, 6, 0x1100, link + 0x2000, 0x100, 0x1800),
        ],
        &[(0x100, &code)],
        0x1200,
    )
}

#[test]
fn small_image() {
    let file = small(2, 0x40_0000);
    let image = Image::load(&file, WINDOW, PIE_BASE).unwrap();
    assert_eq!(image.entry(), 0x40_0100);
    assert_eq!(image.syscall_sites(), [0x40_0fff]);
    assert_eq!(image.brk_start(), 0x40_4000);
    let program = image.program();
    assert_eq!(
        (program.phdr, program.phent, program.phnum, program.entry),
        (0x40_0040, 56, 2, 0x40_0100)
    );

    let [text, data] = image.plan().segments() else {
        panic!("two segments")
    };
    let mut page = [0u8; PAGE as usize];
    image.fill_page(&file, text, 0x40_0000, &mut page);
    assert_eq!(page[..0x1000 - 1], file[..0x1000 - 1]);
    assert_eq!(page[0xfff], 0xcd, "the site's first half");
    assert_eq!(page[0x101..0x103], SYSCALL, "the immediate is left alone");
    image.fill_page(&file, text, 0x40_1000, &mut page);
    assert_eq!(page[0], LINUX_VECTOR, "the site's second half");
    assert_eq!(page[1..0x100], file[0x1001..0x1100]);
    assert!(page[0x100..].iter().all(|&b| b == 0));
    // Data pages are never patched, whatever they hold.
    image.fill_page(&file, data, 0x40_2000, &mut page);
    assert_eq!(page[..0x100], file[0x1100..0x1200]);
}

#[test]
fn small_pie_image() {
    let file = small(3, 0);
    let image = Image::load(&file, WINDOW, PIE_BASE).unwrap();
    assert_eq!(image.entry(), PIE_BASE + 0x100);
    assert_eq!(image.syscall_sites(), [PIE_BASE + 0xfff]);
    assert_eq!(image.brk_start(), PIE_BASE + 0x4000);
    assert_eq!(image.program().phdr, PIE_BASE + 0x40);
    // Another base, another place.
    let image = Image::load(&file, WINDOW, 0x10_0000).unwrap();
    assert_eq!(image.syscall_sites(), [0x10_0fff]);
}

#[test]
fn refusals() {
    // Program headers outside every segment's file bytes.
    let mut file = small(2, 0x40_0000);
    file[64 + 8..64 + 16].copy_from_slice(&0x100u64.to_le_bytes()); // text's p_offset
    file[64 + 16..64 + 24].copy_from_slice(&0x40_0100u64.to_le_bytes()); // p_vaddr
    file[64 + 32..64 + 40].copy_from_slice(&0x1000u64.to_le_bytes()); // p_filesz
    file[64 + 40..64 + 48].copy_from_slice(&0x1000u64.to_le_bytes()); // p_memsz
    let err = Image::load(&file, WINDOW, PIE_BASE).unwrap_err();
    assert!(matches!(err, ImageError::PhdrsNotLoaded), "{err:?}");
    assert!(err.to_string().contains("AT_PHDR"));
    // Dynamically linked.
    let mut file = small(3, 0);
    file[64..68].copy_from_slice(&PT_INTERP.to_le_bytes());
    let err = Image::load(&file, WINDOW, PIE_BASE).unwrap_err();
    assert!(
        matches!(err, ImageError::Load(LoadError::Interpreter)),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("dynamically linked"));
    // Not ELF at all.
    assert!(matches!(
        Image::load(b"#!/bin/sh\n", WINDOW, PIE_BASE),
        Err(ImageError::Load(LoadError::NotElf))
    ));
}

/// The addresses of the `syscall` instructions `objdump -d` finds in `path`, or why
/// there are none to compare with.
fn objdump_syscalls(path: &Path) -> Result<Vec<u64>, String> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(path)
        .output()
        .map_err(|e| format!("objdump not runnable ({e}): install binutils"))?;
    if !out.status.success() {
        return Err(format!(
            "objdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sites = Vec::new();
    for line in text.lines() {
        // "  401c5a:\tsyscall"
        let Some((addr, insn)) = line.split_once(":\t") else {
            continue;
        };
        if insn.split_whitespace().next() == Some("syscall") {
            sites.push(u64::from_str_radix(addr.trim(), 16).map_err(|e| format!("{line}: {e}"))?);
        }
    }
    Ok(sites)
}

/// Loads `path`, compares its sites with objdump's, and checks every executable page
/// after patching: each site holds `int $LINUX_VECTOR`, no `syscall` instruction is
/// left, and every other byte (`0f 05` pairs in immediates too) is unchanged.
fn check_real(path: &Path) {
    let file = std::fs::read(path).unwrap();
    let image =
        Image::load(&file, WINDOW, PIE_BASE).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bias = image.plan().bias();
    let sites = image.syscall_sites();
    match objdump_syscalls(path) {
        Ok(expected) => {
            let found: Vec<u64> = sites.iter().map(|s| s.wrapping_sub(bias)).collect();
            assert_eq!(
                found,
                expected,
                "{}: sites against objdump -d",
                path.display()
            );
        }
        Err(why) => println!("{}: not compared with objdump: {why}", path.display()),
    }
    assert!(!sites.is_empty());
    let (mut pairs_before, mut pairs_after) = (0, 0);
    for s in image
        .plan()
        .segments()
        .iter()
        .filter(|s| s.perm == Perm::ReadExecute)
    {
        let mut original = Vec::new();
        let mut patched = Vec::new();
        let mut page = [0u8; PAGE as usize];
        for addr in s.pages().step_by(PAGE as usize) {
            s.fill_page(&file, addr, &mut page);
            original.extend_from_slice(&page);
            image.fill_page(&file, s, addr, &mut page);
            patched.extend_from_slice(&page);
        }
        let start = s.pages().start;
        assert!(
            rewrite::syscall_sites(&patched, start).is_empty(),
            "a syscall is left"
        );
        let count = |b: &[u8]| b.windows(2).filter(|w| *w == SYSCALL).count();
        pairs_before += count(&original);
        pairs_after += count(&patched);
        for (i, (a, b)) in original.iter().zip(&patched).enumerate() {
            let addr = start + i as u64;
            let at_site = sites.binary_search(&addr).is_ok();
            let after_site = sites.binary_search(&(addr - 1)).is_ok();
            match (at_site, after_site) {
                (true, _) => assert_eq!((*a, *b), (0x0f, 0xcd), "{addr:#x}"),
                (_, true) => assert_eq!((*a, *b), (0x05, LINUX_VECTOR), "{addr:#x}"),
                _ => assert_eq!(a, b, "{addr:#x}"),
            }
        }
    }
    assert_eq!(pairs_before - pairs_after, sites.len());
    println!(
        "{}: {} syscall instructions among {pairs_before} `0f 05` byte pairs; {pairs_after} pairs left in other instructions",
        path.display(),
        sites.len()
    );
}

#[test]
fn busybox_static() {
    let path = Path::new("/bin/busybox");
    if !path.exists() {
        println!(
            "skipped: {} is absent (Debian's busybox-static)",
            path.display()
        );
        return;
    }
    let file = std::fs::read(path).unwrap();
    if matches!(
        Image::load(&file, WINDOW, PIE_BASE),
        Err(ImageError::Load(LoadError::Interpreter))
    ) {
        println!(
            "skipped: {} is dynamically linked (not busybox-static)",
            path.display()
        );
        return;
    }
    check_real(path);
}

/// Builds `source` with `compiler args`, or says why not.
fn build(
    dir: &Path,
    name: &str,
    source: &str,
    compiler: &str,
    args: &[&str],
) -> Result<std::path::PathBuf, String> {
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("{name}.out"));
    let status = Command::new(compiler)
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .map_err(|e| format!("{compiler} not runnable ({e})"))?;
    if !status.status.success() {
        return Err(format!(
            "{compiler} failed: {}",
            String::from_utf8_lossy(&status.stderr)
        ));
    }
    Ok(out)
}

#[test]
fn musl_gcc_static() {
    let dir = tempfile::tempdir().unwrap();
    let source = "#include <stdio.h>\n#include <unistd.h>\n#include <poll.h>\n\
        int main(void) { printf(\"%d\\n\", getpid()); return poll(0, 0, -1); }\n";
    match build(
        dir.path(),
        "hello.c",
        source,
        "musl-gcc",
        &["-static", "-O2"],
    ) {
        Ok(exe) => check_real(&exe),
        Err(why) => println!("skipped: {why} (Debian's musl-tools)"),
    }
}

#[test]
fn rust_musl_static_pie() {
    let dir = tempfile::tempdir().unwrap();
    let source = "fn main() { let t = std::thread::spawn(|| std::process::id()); println!(\"{}\", t.join().unwrap()); }\n";
    let args = [
        "--edition=2021",
        "-O",
        "--target",
        "x86_64-unknown-linux-musl",
    ];
    match build(dir.path(), "hello.rs", source, "rustc", &args) {
        Ok(exe) => {
            let file = std::fs::read(&exe).unwrap();
            let image = Image::load(&file, WINDOW, PIE_BASE).unwrap();
            assert_eq!(image.plan().bias(), PIE_BASE, "static-pie linked at 0");
            check_real(&exe);
        }
        Err(why) => println!("skipped: {why} (rustup target add x86_64-unknown-linux-musl)"),
    }
}
