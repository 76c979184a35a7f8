//! Host prerequisites: system tools, the Rust target, and the Python venv the kernel
//! build needs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::layout::Layout;
use crate::step::{self, Step};

/// Programs the tool runs, each with the Debian package that provides it.
const TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("xmllint", "libxml2-utils"),
    ("make", "make"),
    ("gcc", "gcc"),
    ("objcopy", "binutils"),
    ("python3", "python3"),
    // `cargo xtask gdb`, `run --gdb` and the gdb system tests.
    ("gdb", "gdb"),
    // ext2 images (the ext2 crate's tests, the file-system system tests,
    // the manifest's [disk]): built, checked and damaged with e2fsprogs
    // (in /usr/sbin).
    ("mkfs.ext2", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    // The Linux programs of the POSIX layer's disks (xtask/src/linux.rs).
    ("musl-gcc", "musl-tools"),
];

/// The static busybox the Linux disks hold, and its package (the plain
/// `busybox` package installs a dynamically linked one at the same path).
pub const BUSYBOX: &str = "/bin/busybox";
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Debian package that gives `python3` its `venv`/`ensurepip` modules.
const VENV_PACKAGE: &str = "python3-venv";

/// Python modules the kernel build's generators import.
const PYTHON_MODULES: &[&str] = &["tempita", "ply", "six"];

/// The Rust target KaaL's images are built for.
pub const SEL4_TARGET: &str = "x86_64-unknown-none";

/// The Rust target of the Linux programs the POSIX layer runs (static-pie).
pub const LINUX_TARGET: &str = "x86_64-unknown-linux-musl";

/// Every Rust target the tool builds for.
const RUST_TARGETS: [&str; 2] = [SEL4_TARGET, LINUX_TARGET];

/// Makes sure the system tools and the Rust target are there, installing what it may.
pub fn ensure_prerequisites(layout: &Layout) -> Result<()> {
    ensure_system_tools(layout)?;
    ensure_rust_target(&layout.root)
}

/// A program's path if it is on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether `tool` is on PATH or in an sbin folder (mkfs.ext2 lives in
/// /usr/sbin, which an ordinary user's PATH often lacks).
fn tool_present(tool: &str) -> bool {
    find_program(tool).is_some()
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file())
}

/// Debian packages to install for the tools that are missing.
fn missing_packages(layout: &Layout) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = TOOLS
        .iter()
        .filter(|(tool, _)| !tool_present(tool))
        .map(|&(_, package)| package)
        .collect();
    // One package may provide several tools.
    packages.dedup();
    if !is_static_elf(Path::new(BUSYBOX)) {
        packages.push(BUSYBOX_PACKAGE);
    }
    let python_missing = packages.contains(&"python3");
    if python_missing || (!venv_python(layout).is_file() && !python_can_make_venvs()) {
        packages.push(VENV_PACKAGE);
    }
    packages
}

/// Whether `path` is an x86_64 ELF program without an interpreter (static):
/// its program headers hold no `PT_INTERP`.
pub fn is_static_elf(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|elf| elf_is_static(&elf))
}

fn elf_is_static(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let le16 = |at: usize| {
        elf.get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let le32 = |at: usize| {
        elf.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let le64 = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // ELF64, little-endian, x86_64.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") || le16(0x12) != Some(62) {
        return false;
    }
    let (Some(phoff), Some(entsize), Some(count)) = (le64(0x20), le16(0x36), le16(0x38)) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(count))
        .all(|i| le32(phoff + i * usize::from(entsize)).is_some_and(|kind| kind != PT_INTERP))
}

/// Whether the system `python3` can create a virtual environment with pip in it.
fn python_can_make_venvs() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether we run as root (`id -u` prints 0).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The command a user should type to install `packages`.
fn install_advice(packages: &[&str]) -> String {
    format!("sudo apt-get install -y {}", packages.join(" "))
}

fn ensure_system_tools(layout: &Layout) -> Result<()> {
    let packages = missing_packages(layout);
    if packages.is_empty() {
        return Ok(());
    }
    if !running_as_root() {
        bail!(
            "missing host tools; install them with:\n    {}",
            install_advice(&packages)
        );
    }
    let title = format!("Installing {}", packages.join(" "));
    step::step(&title, &layout.log("apt"), |step| {
        step.run(Command::new("apt-get").arg("update"))?;
        step.run(
            Command::new("apt-get")
                .args(["install", "-y"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    })?;
    let still_missing = missing_packages(layout);
    if !still_missing.is_empty() {
        bail!(
            "host tools still missing after apt-get install: {}",
            still_missing.join(" ")
        );
    }
    Ok(())
}

/// The active toolchain's sysroot, as seen from the workspace (so that
/// `rust-toolchain.toml` applies).
fn rust_sysroot(root: &Path) -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .context("running `rustc --print sysroot`")?;
    if !out.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The targets of [`RUST_TARGETS`] the active toolchain lacks.
fn missing_rust_targets(root: &Path) -> Result<Vec<&'static str>> {
    let rustlib = rust_sysroot(root)?.join("lib").join("rustlib");
    Ok(RUST_TARGETS
        .into_iter()
        .filter(|target| !rustlib.join(target).is_dir())
        .collect())
}

/// The toolchain cargo runs `xtask` under: the rustup proxy names it in
/// `RUSTUP_TOOLCHAIN` for its children (and that variable also overrides
/// `rust-toolchain.toml` for any `rustup` call we make); otherwise the one
/// `rustup` picks for the workspace.
fn active_toolchain(root: &Path) -> Result<String> {
    toolchain_in_use(env::var("RUSTUP_TOOLCHAIN").ok(), || {
        let out = Command::new("rustup")
            .args(["show", "active-toolchain"])
            .current_dir(root)
            .output()
            .context("running `rustup show active-toolchain`")?;
        if !out.status.success() {
            bail!(
                "`rustup show active-toolchain` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// The toolchain named by `from_env` (`RUSTUP_TOOLCHAIN`) if set, else the
/// first word of what `show_active` (`rustup show active-toolchain`) prints.
fn toolchain_in_use(
    from_env: Option<String>,
    show_active: impl FnOnce() -> Result<String>,
) -> Result<String> {
    if let Some(name) = from_env.filter(|n| !n.trim().is_empty()) {
        return Ok(name.trim().to_owned());
    }
    let shown = show_active()?;
    match shown.split_whitespace().next() {
        Some(name) => Ok(name.to_owned()),
        None => bail!("`rustup show active-toolchain` named no toolchain"),
    }
}

/// The arguments of the `rustup` call that adds `targets` to `toolchain`.
fn target_add_args(toolchain: &str, targets: &[&str]) -> Vec<String> {
    ["target", "add", "--toolchain", toolchain]
        .iter()
        .chain(targets)
        .map(|&arg| arg.to_owned())
        .collect()
}

fn ensure_rust_target(root: &Path) -> Result<()> {
    let missing = missing_rust_targets(root)?;
    if missing.is_empty() {
        return Ok(());
    }
    let listed = missing.join(" ");
    if find_program("rustup").is_none() {
        bail!(
            "the Rust targets {listed} are missing and rustup is not installed; \
             install them for your toolchain, with rustup: \
             `rustup target add {listed}`"
        );
    }
    let toolchain = active_toolchain(root)?;
    let args = target_add_args(&toolchain, &missing);
    eprintln!("Installing the Rust targets: rustup {}", args.join(" "));
    let status = Command::new("rustup")
        .args(&args)
        .current_dir(root)
        .status()
        .context("running `rustup target add`")?;
    if !status.success() || !missing_rust_targets(root)?.is_empty() {
        bail!(
            "could not install the Rust targets {listed}; type:\n    rustup {}",
            args.join(" ")
        );
    }
    Ok(())
}

fn venv_python(layout: &Layout) -> PathBuf {
    layout.venv().join("bin").join("python")
}

/// The `bin` folder of the venv to put first on `PATH` for the kernel build.
pub fn venv_bin(layout: &Layout) -> PathBuf {
    layout.venv().join("bin")
}

fn venv_has_modules(python: &Path) -> bool {
    let import = format!("import {}", PYTHON_MODULES.join(", "));
    Command::new(python)
        .args(["-c", &import])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Creates `target/kaal/venv` with the kernel build's Python modules, unless it works.
pub fn ensure_venv(layout: &Layout) -> Result<()> {
    let python = venv_python(layout);
    if venv_has_modules(&python) {
        return Ok(());
    }
    step::step("Preparing Python venv", &layout.log("venv"), |step| {
        make_venv(layout, &python, step)
    })
}

fn make_venv(layout: &Layout, python: &Path, step: &Step) -> Result<()> {
    if !python.is_file() {
        step.run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(layout.venv()),
        )?;
    }
    step.run(
        Command::new(python)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(PYTHON_MODULES),
    )?;
    if !venv_has_modules(python) {
        bail!(
            "the venv at {} still cannot import {}",
            layout.venv().display(),
            PYTHON_MODULES.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_is_a_command_to_type() {
        assert_eq!(
            install_advice(&["qemu-system-x86", "libxml2-utils"]),
            "sudo apt-get install -y qemu-system-x86 libxml2-utils"
        );
    }

    #[test]
    fn target_is_added_to_the_toolchain_in_use() {
        // The toolchain is named explicitly: rustup's proxy sets
        // RUSTUP_TOOLCHAIN, which would make a bare `rustup toolchain install`
        // ignore rust-toolchain.toml and add no target.
        assert_eq!(
            target_add_args("1.95.0-x86_64-unknown-linux-gnu", &RUST_TARGETS).join(" "),
            "target add --toolchain 1.95.0-x86_64-unknown-linux-gnu \
             x86_64-unknown-none x86_64-unknown-linux-musl"
        );
    }

    #[test]
    fn only_a_program_without_interpreter_is_static() -> Result<()> {
        // This test binary is dynamically linked (glibc host target).
        let me = env::current_exe()?;
        assert!(!is_static_elf(&me));
        assert!(!elf_is_static(b"\x7fELF\x02\x01"));
        assert!(!elf_is_static(b"#!/bin/sh\n"));
        // A header with no program headers has no interpreter.
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12] = 62;
        assert!(elf_is_static(&elf));
        if Path::new(BUSYBOX).is_file() {
            assert!(is_static_elf(Path::new(BUSYBOX)), "{BUSYBOX} is not static");
        }
        Ok(())
    }

    #[test]
    fn the_toolchain_in_use_is_the_proxys_else_rustups_answer() -> Result<()> {
        // The proxy's variable wins: it is the toolchain cargo runs under.
        let from_env = toolchain_in_use(Some("1.95.0-x86_64-unknown-linux-gnu".into()), || {
            bail!("rustup must not be asked")
        })?;
        assert_eq!(from_env, "1.95.0-x86_64-unknown-linux-gnu");
        let shown = "1.95.0-x86_64-unknown-linux-gnu (overridden by '/w/rust-toolchain.toml')\n";
        assert_eq!(
            toolchain_in_use(None, || Ok(shown.to_owned()))?,
            "1.95.0-x86_64-unknown-linux-gnu"
        );
        assert_eq!(
            toolchain_in_use(Some(String::new()), || Ok("stable\n".to_owned()))?,
            "stable"
        );
        assert!(toolchain_in_use(None, || Ok(String::new())).is_err());
        Ok(())
    }

    #[test]
    fn every_tool_names_a_package() {
        assert!(TOOLS
            .iter()
            .all(|(tool, package)| !tool.is_empty() && !package.is_empty()));
    }
}
