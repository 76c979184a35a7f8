//! System manifests: checked at build time, packed with the component
//! programs they name into one system image per manifest, which the root task
//! images embed (`kaal_root::include_system!`).
//!
//! The manifests are `systems/*.toml` (the systems `cargo xtask run` boots)
//! and `tests/system/systems/*.toml` (one per system test that spawns
//! components). A component's `image` names a binary of a crate marked
//! `component = true`, or, if it contains a `/`, a file relative to the
//! manifest (the malformed programs of the tests).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kaal_manifest::{Manifest, Use};

use crate::cargo::{Images, Uses};
use crate::layout::Layout;
use crate::step;

/// The folders whose `*.toml` files are system manifests: the systems a
/// user boots, and the systems of the tests.
fn manifest_dirs(layout: &Layout) -> [PathBuf; 2] {
    [
        layout.root.join("systems"),
        layout.root.join("tests").join("system").join("systems"),
    ]
}

/// Every system manifest, with the name its packed image goes by (the
/// file's stem, unique across the folders).
pub fn manifests(layout: &Layout) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for dir in manifest_dirs(layout) {
        if !dir.is_dir() {
            continue;
        }
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    found.push((stem.to_owned(), path.clone()));
                }
            }
        }
        found.sort();
        for (name, path) in found {
            if let Some((_, first)) = out.iter().find(|(n, _)| *n == name) {
                bail!(
                    "two systems are named `{name}`: {} and {}",
                    first.display(),
                    path.display()
                );
            }
            out.push((name, path));
        }
    }
    Ok(out)
}

/// The programs' declarations, parsed; every declaration of the wrong form
/// is reported.
fn declarations(uses: &Uses) -> Result<BTreeMap<String, BTreeMap<String, Use>>> {
    let mut problems = uses.problems.clone();
    let mut out = BTreeMap::new();
    for (image, names) in &uses.programs {
        let mut parsed = BTreeMap::new();
        for (local, what) in names {
            match Use::parse(what) {
                Ok(u) => {
                    parsed.insert(local.clone(), u);
                }
                Err(why) => {
                    problems.push(format!("program `{image}`, local name `{local}`: {why}"))
                }
            }
        }
        out.insert(image.clone(), parsed);
    }
    if !problems.is_empty() {
        bail!(
            "the programs' declarations ([package.metadata.kaal.uses.<program>]) are rejected:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(out)
}

/// Checks a manifest's bindings against what its programs declare. A
/// program built from the workspace declares what it uses (nothing, when
/// its crate says nothing); a program given as a file is not checked.
pub fn check_uses(
    path: &Path,
    manifest: &Manifest,
    uses: &BTreeMap<String, BTreeMap<String, Use>>,
) -> Result<()> {
    let nothing = BTreeMap::new();
    let errs = manifest.check_uses(|image| {
        if image.contains('/') {
            None
        } else {
            Some(uses.get(image).unwrap_or(&nothing))
        }
    });
    if errs.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = errs
        .iter()
        .map(|e| format!("  {}: {e}", path.display()))
        .collect();
    bail!(
        "the system manifest binds names its programs do not declare:\n{}",
        list.join("\n")
    )
}

/// Reads and checks one manifest; every problem is reported with its file.
pub fn check(path: &Path) -> Result<Manifest> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Manifest::parse(&text).map_err(|errs| {
        let list: Vec<String> = errs
            .iter()
            .map(|e| format!("  {}: {e}", path.display()))
            .collect();
        anyhow::anyhow!("the system manifest is rejected:\n{}", list.join("\n"))
    })
}

/// The `[disk]` of system `name` (`systems/<name>.toml`): the folder to
/// build it from, checked, its size and block size, and whether the Linux
/// userland is added.
pub fn disk(layout: &Layout, name: &str) -> Result<(PathBuf, u64, u32, bool)> {
    let path = layout.root.join("systems").join(format!("{name}.toml"));
    let manifest = check(&path)?;
    let disk = manifest
        .disk
        .with_context(|| format!("{} has no [disk]", path.display()))?;
    let folder = disk
        .folder(&layout.root)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((folder, disk.bytes.0, disk.block_size, disk.linux))
}

/// The host port forwards of system `name` (`systems/<name>.toml`).
pub fn forwards(layout: &Layout, name: &str) -> Result<Vec<kaal_manifest::Forward>> {
    let path = layout.root.join("systems").join(format!("{name}.toml"));
    Ok(check(&path)?.forwards)
}

/// The program a component's `image` names, stripped of debug information.
fn program(layout: &Layout, images: &Images, manifest: &Path, image: &str) -> Result<Vec<u8>> {
    if image.contains('/') {
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let path = dir.join(image);
        return fs::read(&path).with_context(|| format!("reading program {}", path.display()));
    }
    let built = images.path(image);
    if !built.is_file() {
        bail!(
            "{}: program `{image}` was not built; is it a binary of a crate with \
             `[package.metadata.kaal] component = true`?",
            manifest.display()
        );
    }
    let stripped = layout.programs().join(image);
    fs::create_dir_all(stripped.parent().unwrap_or(Path::new(".")))?;
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&built)
        .arg(&stripped)
        .status()
        .context("running objcopy")?;
    if !status.success() {
        bail!("objcopy --strip-debug {} failed", built.display());
    }
    fs::read(&stripped).with_context(|| format!("reading {}", stripped.display()))
}

/// Checks and packs every manifest into `layout.systems()`, writing only
/// images that changed (so cargo rebuilds only what embeds them).
pub fn pack_all(layout: &Layout, images: &Images, uses: &Uses) -> Result<()> {
    let uses = declarations(uses)?;
    let out_dir = layout.systems();
    fs::create_dir_all(&out_dir)?;
    step::step("Packing systems", &layout.log("systems"), |_| {
        // Each program is stripped once, whichever manifests use it; a
        // file image is keyed by its path, since it names a file relative
        // to its manifest.
        let mut stripped: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for (name, path) in manifests(layout)? {
            let manifest = check(&path)?;
            check_uses(&path, &manifest, &uses)?;
            if let Some(disk) = &manifest.disk {
                disk.folder(&layout.root)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            let mut programs = BTreeMap::new();
            for c in &manifest.components {
                let key = if c.image().contains('/') {
                    path.parent().unwrap_or(Path::new(".")).join(c.image())
                } else {
                    PathBuf::from(c.image())
                };
                let elf = match stripped.get(&key) {
                    Some(elf) => elf.clone(),
                    None => {
                        let elf = program(layout, images, &path, c.image())?;
                        stripped.insert(key, elf.clone());
                        elf
                    }
                };
                programs.insert(c.image().to_owned(), elf);
            }
            let bytes = manifest
                .pack(&programs)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let dest = out_dir.join(format!("{name}.kaal"));
            if fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
                fs::write(&dest, &bytes).with_context(|| format!("writing {}", dest.display()))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manifest_in_the_repository_is_sound() -> Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let layout = Layout::at(root);
        let all = manifests(&layout)?;
        assert!(
            all.iter().any(|(n, _)| n == "default"),
            "systems/default.toml is missing"
        );
        // Every binding is one its program declares.
        let workspace = crate::cargo::Cargo::new(&layout).workspace()?;
        let uses = declarations(&workspace.uses)?;
        assert!(uses.contains_key("uart16550"), "no declarations read");
        for (_, path) in all {
            let manifest = check(&path)?;
            check_uses(&path, &manifest, &uses)?;
        }
        Ok(())
    }

    #[test]
    fn a_binding_its_program_does_not_declare_stops_the_build() -> Result<()> {
        let text = "[[component]]\nname = \"uart\"\nimage = \"uart16550\"\npriority = 150\n\
                    stack = \"16K\"\nheap = \"16K\"\ndevices = { com = \"serial:0\" }\n";
        let manifest = Manifest::parse(text).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut uses = BTreeMap::new();
        uses.insert(
            "uart16550".to_owned(),
            BTreeMap::from([("port".to_owned(), Use::Device)]),
        );
        let err = match check_uses(Path::new("systems/x.toml"), &manifest, &uses) {
            Ok(()) => bail!("the binding was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(
                "systems/x.toml: component `uart` binds `com`, which its program \
                 `uart16550` does not declare (it declares: port)"
            ),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn a_rejected_manifest_stops_the_build_naming_file_and_problem() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("kaal-xtask-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let path = dir.join("bad.toml");
        fs::write(
            &path,
            "[[component]]\nname = \"a\"\nimage = \"x\"\npriority = 1\nstack = \"16K\"\n\
             heap = \"16K\"\n\n[[channel]]\nname = \"c\"\nkind = \"endpoint\"\n\
             from = \"a\"\nto = \"ghost\"\n",
        )?;
        let err = match check(&path) {
            Ok(_) => bail!("the manifest was accepted"),
            Err(e) => e.to_string(),
        };
        fs::remove_dir_all(&dir)?;
        assert!(err.contains("bad.toml"), "{err}");
        assert!(
            err.contains("channel `c`: `to` names unknown component `ghost`"),
            "{err}"
        );
        Ok(())
    }
}
