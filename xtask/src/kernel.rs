//! The seL4 5.0.0 kernel: find its source, copy and configure it, build it, and skip all
//! of that when nothing changed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use crate::cargo::{self, Metadata};
use crate::env::venv_bin;
use crate::layout::Layout;
use crate::step::{self, Step};

/// Bump when the way the kernel is prepared or built changes, to force a rebuild.
const KERNEL_BUILD_VERSION: u32 = 1;

/// The crates.io crate whose `seL4/` folder is the kernel source.
const SOURCE_CRATE: &str = "sel4-sys";
const SOURCE_CRATE_VERSION: &str = "0.0.28";
/// Folder inside that crate holding the kernel tree.
const SOURCE_FOLDER: &str = "seL4";

/// Environment variable naming another kernel tree to use instead.
const SOURCE_OVERRIDE: &str = "SEL4_SRC";

/// Where the configuration header goes inside the tree.
const AUTOCONF: &str = "include/plat/pc99/autoconf.h";

const STEP_TITLE: &str = "Building seL4 kernel";

/// Which kernel to build. Both come from the one header `kernel/pc99.h`, which is the
/// release configuration; the debug kernel adds [`DEBUG_DEFINES`] to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// No debug system calls, no kernel printing: a component cannot halt or dump
    /// the machine. The default.
    #[default]
    Release,
    /// `CONFIG_DEBUG_BUILD` and `CONFIG_PRINTING`, built with `DEBUG=1`: the kernel
    /// prints its own diagnostics, and any thread can use the debug system calls.
    Debug,
}

impl Variant {
    /// The folder under `target/kaal` holding everything built for this kernel.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Release => "release",
            Variant::Debug => "debug",
        }
    }
}

/// What the debug kernel adds to the release configuration.
const DEBUG_DEFINES: [&str; 2] = ["CONFIG_DEBUG_BUILD", "CONFIG_PRINTING"];

/// Makes sure the layout's `kernel32.elf` and prepared tree match the current inputs.
pub fn prepare(layout: &Layout) -> Result<()> {
    let source = locate_source(layout)?;
    let config_path = layout.kernel_config();
    let base = fs::read_to_string(&config_path)
        .with_context(|| format!("reading the kernel configuration {}", config_path.display()))?;
    let config =
        configure(&base, layout.kernel).with_context(|| format!("in {}", config_path.display()))?;
    let args = make_args(&layout.sel4_src(), layout.kernel);
    let stamp = stamp(&source, &config, &args);
    if is_up_to_date(layout, &stamp) {
        step::skipped(STEP_TITLE, "unchanged");
        return Ok(());
    }
    // A failed build must not leave a stamp claiming success.
    remove_file_if_present(&layout.sel4_stamp())?;
    step::step(STEP_TITLE, &layout.log("kernel"), |step| {
        step.note(&format!(
            "[xtask] kernel source: {}, {} kernel",
            source.display(),
            layout.kernel.name()
        ))?;
        copy_and_configure(layout, &source, &config)?;
        build(layout, &args, step)
    })?;
    fs::write(layout.sel4_stamp(), &stamp)
        .with_context(|| format!("writing {}", layout.sel4_stamp().display()))
}

/// The kernel tree to build: `$SEL4_SRC`, or the `seL4/` folder of the fetched crate.
fn locate_source(layout: &Layout) -> Result<PathBuf> {
    if let Some(path) = env::var_os(SOURCE_OVERRIDE) {
        let path = PathBuf::from(path);
        validate_source(&path).with_context(|| {
            format!(
                "{SOURCE_OVERRIDE}={} is not a seL4 source tree",
                path.display()
            )
        })?;
        return fs::canonicalize(&path)
            .with_context(|| format!("resolving {SOURCE_OVERRIDE}={}", path.display()));
    }
    let manifest = layout.root.join("xtask").join("Cargo.toml");
    let mut cmd = Command::new(cargo::cargo_bin());
    cmd.args(["metadata", "--all-features", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(&layout.root);
    let metadata = cargo::metadata(&mut cmd)?;
    let path = source_in_metadata(&metadata)?;
    validate_source(&path).with_context(|| {
        format!(
            "the {SOURCE_FOLDER}/ folder of {SOURCE_CRATE} {SOURCE_CRATE_VERSION} at {} \
             is not a seL4 source tree",
            path.display()
        )
    })?;
    Ok(path)
}

/// The kernel tree inside the `sel4-sys` crate that `cargo metadata` lists.
fn source_in_metadata(metadata: &Metadata) -> Result<PathBuf> {
    let package = metadata
        .packages
        .iter()
        .find(|p| p.name == SOURCE_CRATE && p.version == SOURCE_CRATE_VERSION)
        .with_context(|| {
            format!(
                "cargo metadata lists no {SOURCE_CRATE} {SOURCE_CRATE_VERSION}; xtask/Cargo.toml \
                 must declare it as an optional dependency"
            )
        })?;
    let crate_dir = package
        .manifest_path
        .parent()
        .with_context(|| format!("odd manifest path {}", package.manifest_path.display()))?;
    Ok(crate_dir.join(SOURCE_FOLDER))
}

fn validate_source(path: &Path) -> Result<()> {
    if !path.join("Makefile").is_file() {
        bail!("{} has no Makefile", path.display());
    }
    if !path.join("libsel4").is_dir() {
        bail!("{} has no libsel4/ folder", path.display());
    }
    Ok(())
}

/// Whether the configuration `#define`s `name` (a mention in a comment does not count).
fn defines(config: &str, name: &str) -> bool {
    config.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some("#define") && words.next() == Some(name)
    })
}

/// The configuration header of `variant`, made from the repository's release header.
fn configure(base: &str, variant: Variant) -> Result<String> {
    if let Some(name) = DEBUG_DEFINES.iter().find(|n| defines(base, n)) {
        bail!(
            "it defines {name}; it must be the release configuration \
             (`--kernel debug` adds {})",
            DEBUG_DEFINES.join(" and ")
        );
    }
    let mut config = base.to_owned();
    if variant == Variant::Debug {
        if !config.ends_with('\n') {
            config.push('\n');
        }
        config.push_str("/* Added by `cargo xtask --kernel debug`. */\n");
        for name in DEBUG_DEFINES {
            config.push_str(&format!("#define {name} 1\n"));
        }
    }
    Ok(config)
}

/// The kernel Makefile's arguments, without `-j` (that one must not affect the stamp).
fn make_args(src: &Path, variant: Variant) -> Vec<String> {
    let src = src.display();
    let mut args = vec![
        "-f".to_owned(),
        format!("{src}/Makefile"),
        format!("SOURCE_ROOT={src}"),
        "ARCH=x86".to_owned(),
        "SEL4_ARCH=x86_64".to_owned(),
        "PLAT=pc99".to_owned(),
        "PYTHON=python3".to_owned(),
        // gcc 12 warns about things seL4 5.0.0 predates; -Werror would stop the build.
        "WARNINGS=all".to_owned(),
        // The circular-include lint misreads modern cpp output.
        "CIRCULAR_INCLUDES=true".to_owned(),
    ];
    // The Makefile's DEBUG also defines CONFIG_DEBUG_BUILD (and -DDEBUG, -g3).
    if variant == Variant::Debug {
        args.push("DEBUG=1".to_owned());
    }
    args
}

/// A hash of everything the kernel build depends on, as 16 hex digits.
fn stamp(source: &Path, config: &str, args: &[String]) -> String {
    let mut hash = Fnv1a::new();
    hash.write(&KERNEL_BUILD_VERSION.to_le_bytes());
    hash.write(source.as_os_str().as_encoded_bytes());
    hash.write(&[0]);
    hash.write(config.as_bytes());
    hash.write(&[0]);
    for arg in args {
        hash.write(arg.as_bytes());
        hash.write(&[0]);
    }
    format!("{:016x}", hash.finish())
}

/// FNV-1a, 64 bits: stable across Rust releases, unlike `DefaultHasher`.
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Self(Self::OFFSET)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

fn is_up_to_date(layout: &Layout, stamp: &str) -> bool {
    let recorded = fs::read_to_string(layout.sel4_stamp()).unwrap_or_default();
    recorded.trim() == stamp
        && layout.kernel32().is_file()
        && layout.sel4_src().join(AUTOCONF).is_file()
}

/// Fresh copy of the tree into the layout's `sel4/src`, with the configuration `config`.
fn copy_and_configure(layout: &Layout, source: &Path, config: &str) -> Result<()> {
    let src = layout.sel4_src();
    remove_dir_if_present(&src)?;
    remove_dir_if_present(&layout.sel4_build())?;
    copy_tree(source, &src)?;
    let autoconf = src.join(AUTOCONF);
    if !autoconf.is_file() {
        bail!(
            "{} has no {AUTOCONF}; is it a seL4 5.0.0 tree?",
            source.display()
        );
    }
    fs::write(&autoconf, config).with_context(|| format!("writing {}", autoconf.display()))
}

fn build(layout: &Layout, args: &[String], step: &Step) -> Result<()> {
    let build_dir = layout.sel4_build();
    fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let jobs = thread::available_parallelism().map_or(1, |n| n.get());
    step.run(
        Command::new("make")
            .args(args)
            .arg(format!("-j{jobs}"))
            .current_dir(&build_dir)
            .env("PATH", path_with_venv(layout)?),
    )?;
    let kernel32 = layout.kernel32();
    remove_file_if_present(&kernel32)?;
    step.run(
        Command::new("objcopy")
            .args(["-O", "elf32-i386"])
            .arg(build_dir.join("kernel.elf"))
            .arg(&kernel32),
    )
}

/// `PATH` with the venv's `bin` first, so the kernel's scripts find its Python modules.
fn path_with_venv(layout: &Layout) -> Result<std::ffi::OsString> {
    let current = env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(venv_bin(layout)).chain(env::split_paths(&current));
    env::join_paths(dirs).context("building PATH with the venv first")
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .with_context(|| format!("inspecting {}", source.display()))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            let link = fs::read_link(&source)
                .with_context(|| format!("reading link {}", source.display()))?;
            std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("creating link {}", target.display()))?;
        } else {
            fs::copy(&source, &target)
                .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
        }
    }
    Ok(())
}

fn remove_dir_if_present(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_file_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_define_is_recognised_but_not_a_mention_in_a_comment() {
        assert!(defines(
            "/* x */\n#define CONFIG_DEBUG_BUILD 1\n",
            "CONFIG_DEBUG_BUILD"
        ));
        assert!(!defines(
            " *   - CONFIG_DEBUG_BUILD and CONFIG_PRINTING\n#define CONFIG_XAPIC 1\n",
            "CONFIG_DEBUG_BUILD"
        ));
        assert!(!defines(
            "#define CONFIG_DEBUG_BUILDER 1\n",
            "CONFIG_DEBUG_BUILD"
        ));
    }

    #[test]
    fn the_release_header_is_used_as_it_is_and_the_debug_one_adds_two_defines() -> Result<()> {
        let base = "#define AUTOCONF_INCLUDED\n#define CONFIG_XAPIC 1";
        assert_eq!(configure(base, Variant::Release)?, base);
        let debug = configure(base, Variant::Debug)?;
        assert!(debug.starts_with("#define AUTOCONF_INCLUDED\n#define CONFIG_XAPIC 1\n"));
        for name in ["CONFIG_DEBUG_BUILD", "CONFIG_PRINTING"] {
            assert!(defines(&debug, name), "{name} in {debug:?}");
            assert!(!defines(base, name));
        }
        Ok(())
    }

    #[test]
    fn a_header_that_is_already_a_debug_one_is_refused() {
        for extra in [
            "#define CONFIG_DEBUG_BUILD 1\n",
            "#define CONFIG_PRINTING 1\n",
        ] {
            let base = format!("#define CONFIG_XAPIC 1\n{extra}");
            for variant in [Variant::Release, Variant::Debug] {
                let err = configure(&base, variant).map(|_| ()).unwrap_err();
                assert!(err.to_string().contains("release configuration"), "{err}");
            }
        }
    }

    /// The repository's header is the release configuration, and both kernels
    /// are made from it: the debug one differs by the two defines alone.
    #[test]
    fn the_repository_header_gives_both_kernels() -> Result<()> {
        let layout = Layout::from_build()?;
        let base = fs::read_to_string(layout.kernel_config())?;
        let release = configure(&base, Variant::Release)?;
        let debug = configure(&base, Variant::Debug)?;
        assert!(defines(&release, "CONFIG_XAPIC") && defines(&release, "CONFIG_FASTPATH"));
        assert!(!defines(&release, "CONFIG_DEBUG_BUILD") && !defines(&release, "CONFIG_PRINTING"));
        assert!(defines(&debug, "CONFIG_DEBUG_BUILD") && defines(&debug, "CONFIG_PRINTING"));
        let added: Vec<&str> = debug
            .strip_prefix(release.as_str())
            .context("the debug header starts with the release one")?
            .lines()
            .filter(|l| l.starts_with("#define"))
            .collect();
        assert_eq!(
            added,
            ["#define CONFIG_DEBUG_BUILD 1", "#define CONFIG_PRINTING 1"]
        );
        Ok(())
    }

    #[test]
    fn make_args_follow_the_variant() {
        let src = Path::new("/k/src");
        let release = make_args(src, Variant::Release);
        assert!(release.contains(&"SOURCE_ROOT=/k/src".to_owned()));
        assert!(release.contains(&"WARNINGS=all".to_owned()));
        assert!(!release.iter().any(|a| a.starts_with("DEBUG")));
        let debug = make_args(src, Variant::Debug);
        assert!(debug.contains(&"DEBUG=1".to_owned()));
        assert_eq!(debug.len(), release.len() + 1);
    }

    #[test]
    fn stamp_changes_with_every_input() {
        let src = Path::new("/a");
        let args = make_args(Path::new("/b"), Variant::Debug);
        let base = stamp(src, "cfg", &args);
        assert_eq!(base, stamp(src, "cfg", &args));
        assert_eq!(base.len(), 16);
        assert_ne!(base, stamp(Path::new("/c"), "cfg", &args));
        assert_ne!(base, stamp(src, "cfg2", &args));
        assert_ne!(
            base,
            stamp(src, "cfg", &make_args(Path::new("/b"), Variant::Release))
        );
    }

    #[test]
    fn source_is_found_in_metadata() -> Result<()> {
        let json = r#"{
            "packages": [
                {"name": "bitflags", "version": "0.7.0", "id": "a",
                 "manifest_path": "/reg/bitflags-0.7.0/Cargo.toml", "metadata": null},
                {"name": "sel4-sys", "version": "0.0.28", "id": "b",
                 "manifest_path": "/reg/sel4-sys-0.0.28/Cargo.toml", "metadata": null}
            ],
            "workspace_members": [],
            "target_directory": "/w/target"
        }"#;
        let metadata: Metadata = serde_json::from_str(json)?;
        assert_eq!(
            source_in_metadata(&metadata)?,
            PathBuf::from("/reg/sel4-sys-0.0.28/seL4")
        );
        Ok(())
    }
}
