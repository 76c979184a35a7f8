//! Cargo: workspace metadata, the two classes of crates, and the seL4 images.
//!
//! Never pass `--all-features` or `--workspace` to cargo build/test/clippy here: either
//! would try to compile the `sel4-sys` 0.0.28 crate that only carries the kernel source.

use std::collections::BTreeMap;
use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::env::SEL4_TARGET;
use crate::layout::Layout;
use crate::step;

/// Package of the root task.
pub const ROOT_PACKAGE: &str = "kaal-root";
/// Binary (image) name of the root task.
pub const ROOT_IMAGE: &str = "kaal-root";
/// Package whose binaries are the system test and benchmark images.
pub const SYSTEST_PACKAGE: &str = "kaal-systest";

/// The cargo that runs us (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo_bin() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// The part of `cargo metadata --format-version 1` output the tool reads.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub packages: Vec<Package>,
    pub workspace_members: Vec<String>,
    pub target_directory: PathBuf,
}

/// One package in `cargo metadata` output.
#[derive(Debug, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub id: String,
    pub manifest_path: PathBuf,
    /// The `[package.metadata]` table, `null` when absent.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl Package {
    /// `[package.metadata.kaal] target`: `"sel4"` for seL4-only crates, `"both"` for
    /// crates built for seL4 and tested on the host; absent for host crates.
    fn kaal_target(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("kaal"))
            .and_then(|k| k.get("target"))
            .and_then(serde_json::Value::as_str)
    }

    /// Whether it is built for seL4 (`target = "sel4"` or `"both"`).
    pub fn builds_for_sel4(&self) -> bool {
        matches!(self.kaal_target(), Some("sel4" | "both"))
    }

    /// `[package.metadata.kaal] component = true`: its binaries are component
    /// programs, built before the root task images that embed them.
    pub fn is_component(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("kaal"))
            .and_then(|k| k.get("component"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    }

    /// `[package.metadata.kaal.uses.<image>]`: for each of its programs, the
    /// local names it uses and what for (a protocol, a raw channel kind, or
    /// `device`).
    /// A declaration of the wrong form is a problem, never skipped.
    fn uses(&self, out: &mut Uses) {
        let Some(table) = self
            .metadata
            .as_ref()
            .and_then(|m| m.get("kaal"))
            .and_then(|k| k.get("uses"))
        else {
            return;
        };
        let crate_name = &self.name;
        let Some(table) = table.as_object() else {
            out.problems
                .push(format!("crate `{crate_name}`: `uses` is not a table"));
            return;
        };
        for (image, names) in table {
            let Some(names) = names.as_object() else {
                out.problems.push(format!(
                    "crate `{crate_name}`: `uses.{image}` is not a table of local names"
                ));
                continue;
            };
            let mut decl = BTreeMap::new();
            for (local, what) in names {
                match what.as_str() {
                    Some(w) => {
                        decl.insert(local.clone(), w.to_owned());
                    }
                    None => out.problems.push(format!(
                        "crate `{crate_name}`: `uses.{image}.{local}` is not a string"
                    )),
                }
            }
            if out.programs.insert(image.clone(), decl).is_some() {
                out.problems.push(format!(
                    "program `{image}` is declared by more than one crate (`{crate_name}` among them)"
                ));
            }
        }
    }

    /// Whether it is built and tested on the host (anything but `target = "sel4"`).
    pub fn builds_for_host(&self) -> bool {
        self.kaal_target() != Some("sel4")
    }
}

/// Runs a prepared `cargo metadata` command and parses its output.
pub fn metadata(cmd: &mut Command) -> Result<Metadata> {
    let shown = step::describe(cmd);
    let out = cmd.output().with_context(|| format!("running `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("parsing the output of `{shown}`"))
}

/// Cargo invocations with the environment KaaL's crates need.
#[derive(Debug, Clone)]
pub struct Cargo {
    root: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
}

impl Cargo {
    /// Cargo for the workspace, pointing the bindings crate at the prepared kernel tree
    /// (and building in the kernel's own target folder when it has one).
    pub fn new(layout: &Layout) -> Self {
        let mut env = vec![
            ("KAAL_SEL4_SRC", layout.sel4_src()),
            ("KAAL_SEL4_BUILD", layout.sel4_build()),
            // Read by `kaal_root::include_system!`.
            ("KAAL_SYSTEMS_DIR", layout.systems()),
        ];
        if let Some(dir) = layout.cargo_target_dir() {
            env.push(("CARGO_TARGET_DIR", dir));
        }
        Self {
            root: layout.root.clone(),
            env,
        }
    }

    /// A `cargo` command run in the workspace root with the KaaL environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(cargo_bin());
        cmd.current_dir(&self.root);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// The workspace's crates, sorted into host and seL4-target crates.
    pub fn workspace(&self) -> Result<Workspace> {
        let mut cmd = self.command();
        cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
        Ok(Workspace::from_metadata(&metadata(&mut cmd)?))
    }
}

/// The workspace members, by class (a `target = "both"` crate is in both lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Crates built and tested for the host: all but `target = "sel4"` ones.
    pub host: Vec<String>,
    /// Crates built for seL4: `[package.metadata.kaal] target = "sel4"` (or `"both"`).
    pub sel4: Vec<String>,
    /// Crates whose binaries are component programs (`component = true`).
    pub components: Vec<String>,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// What each component program declares it uses.
    pub uses: Uses,
}

/// What the component programs declare they use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// Program name to its declared local names, each with what for.
    pub programs: BTreeMap<String, BTreeMap<String, String>>,
    /// Declarations of the wrong form.
    pub problems: Vec<String>,
}

impl Workspace {
    /// Sorts the workspace members of `metadata` into the two classes.
    pub fn from_metadata(metadata: &Metadata) -> Self {
        let names = |keep: fn(&Package) -> bool| {
            metadata
                .packages
                .iter()
                .filter(|p| metadata.workspace_members.contains(&p.id) && keep(p))
                .map(|p| p.name.clone())
                .collect()
        };
        Self {
            host: names(Package::builds_for_host),
            sel4: names(Package::builds_for_sel4),
            components: names(Package::is_component),
            target_dir: metadata.target_directory.clone(),
            uses: {
                let mut uses = Uses::default();
                metadata
                    .packages
                    .iter()
                    .filter(|p| metadata.workspace_members.contains(&p.id) && p.is_component())
                    .for_each(|p| p.uses(&mut uses));
                uses
            },
        }
    }

    /// Where the release images are.
    pub fn images(&self) -> Images {
        Images {
            dir: self.target_dir.join(SEL4_TARGET).join("release"),
        }
    }
}

/// `-p NAME` for each package.
pub fn package_args(packages: &[String]) -> Vec<String> {
    packages
        .iter()
        .flat_map(|p| ["-p".to_owned(), p.clone()])
        .collect()
}

/// The folder of built seL4 images.
#[derive(Debug, Clone)]
pub struct Images {
    dir: PathBuf,
}

impl Images {
    /// Images in `dir`, for tests.
    #[cfg(test)]
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The image built from binary `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The image built from binary `name`, which must exist.
    pub fn existing(&self, name: &str) -> Result<PathBuf> {
        let path = self.path(name);
        if !path.is_file() {
            bail!(
                "image {} does not exist; is `{name}` a binary of {ROOT_PACKAGE} or \
                 {SYSTEST_PACKAGE}?",
                path.display()
            );
        }
        Ok(path)
    }

    /// The root task image.
    pub fn root_task(&self) -> Result<PathBuf> {
        self.existing(ROOT_IMAGE)
    }
}

/// Builds the component programs and packs every system manifest with them.
pub fn build_systems(layout: &Layout, cargo: &Cargo, workspace: &Workspace) -> Result<()> {
    if !workspace.components.is_empty() {
        step::step("Building components", &layout.log("components"), |step| {
            let mut cmd = cargo.command();
            cmd.args(["build", "--release", "--target", SEL4_TARGET])
                .args(package_args(&workspace.components))
                .arg("--bins");
            step.run(&mut cmd)
        })?;
    }
    crate::system::pack_all(layout, &workspace.images(), &workspace.uses)
}

/// Builds the components, packs the systems, then builds the root task and
/// every system test image (release, for seL4), which embed the systems.
pub fn build_images(layout: &Layout, cargo: &Cargo, workspace: &Workspace) -> Result<Images> {
    build_systems(layout, cargo, workspace)?;
    step::step("Building images", &layout.log("images"), |step| {
        let mut cmd = cargo.command();
        cmd.args(["build", "--release", "--target", SEL4_TARGET])
            .args(["-p", ROOT_PACKAGE, "-p", SYSTEST_PACKAGE, "--bins"]);
        step.run(&mut cmd)
    })?;
    Ok(workspace.images())
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{
        "packages": [
            {"name": "xtask", "version": "0.1.0", "id": "path+file:///w/xtask#0.1.0",
             "manifest_path": "/w/xtask/Cargo.toml", "metadata": null},
            {"name": "kaal-rt", "version": "0.1.0", "id": "path+file:///w/runtime#kaal-rt@0.1.0",
             "manifest_path": "/w/runtime/Cargo.toml",
             "metadata": {"kaal": {"target": "sel4"}}},
            {"name": "comps", "version": "0.1.0", "id": "path+file:///w/comps#0.1.0",
             "manifest_path": "/w/comps/Cargo.toml",
             "metadata": {"kaal": {"target": "sel4", "component": true, "uses": {
                 "app": {"rx": "serial to", "port": "device"},
                 "bad": {"rx": 7},
                 "worse": "serial"}}}},
            {"name": "kaal-sel4-gen", "version": "0.1.0", "id": "path+file:///w/sel4/gen#0.1.0",
             "manifest_path": "/w/sel4/gen/Cargo.toml", "metadata": {"docs": {}}},
            {"name": "kaal-sel4", "version": "0.1.0", "id": "path+file:///w/sel4#0.1.0",
             "manifest_path": "/w/sel4/Cargo.toml",
             "metadata": {"kaal": {"target": "both"}}},
            {"name": "outsider", "version": "1.0.0", "id": "registry#outsider@1.0.0",
             "manifest_path": "/reg/outsider/Cargo.toml",
             "metadata": {"kaal": {"target": "sel4"}}}
        ],
        "workspace_members": [
            "path+file:///w/xtask#0.1.0",
            "path+file:///w/runtime#kaal-rt@0.1.0",
            "path+file:///w/comps#0.1.0",
            "path+file:///w/sel4/gen#0.1.0",
            "path+file:///w/sel4#0.1.0"
        ],
        "target_directory": "/w/target",
        "extra": "ignored"
    }"#;

    #[test]
    fn crates_are_sorted_by_kaal_metadata() -> Result<()> {
        let metadata: Metadata = serde_json::from_str(METADATA)?;
        let workspace = Workspace::from_metadata(&metadata);
        assert_eq!(workspace.host, ["xtask", "kaal-sel4-gen", "kaal-sel4"]);
        assert_eq!(workspace.sel4, ["kaal-rt", "comps", "kaal-sel4"]);
        assert_eq!(workspace.components, ["comps"]);
        let app = workspace.uses.programs.get("app").context("app declared")?;
        assert_eq!(app.get("rx").map(String::as_str), Some("serial to"));
        assert_eq!(app.get("port").map(String::as_str), Some("device"));
        // Declarations of the wrong form are problems, not skipped.
        assert_eq!(
            workspace.uses.problems,
            [
                "crate `comps`: `uses.bad.rx` is not a string",
                "crate `comps`: `uses.worse` is not a table of local names",
            ]
        );
        assert_eq!(
            workspace.images().path("bench"),
            PathBuf::from("/w/target/x86_64-unknown-none/release/bench")
        );
        Ok(())
    }

    #[test]
    fn only_the_debug_kernel_builds_in_its_own_target_folder() {
        let target_dir = |cargo: &Cargo| {
            cargo
                .env
                .iter()
                .find(|(k, _)| *k == "CARGO_TARGET_DIR")
                .map(|(_, v)| v.clone())
        };
        let release = Layout::at(PathBuf::from("/w"));
        let debug = release.clone().with_kernel(crate::kernel::Variant::Debug);
        assert_eq!(target_dir(&Cargo::new(&release)), None);
        assert_eq!(
            target_dir(&Cargo::new(&debug)),
            Some(PathBuf::from("/w/target/kaal/debug/cargo"))
        );
        let src = |cargo: &Cargo| {
            cargo
                .env
                .iter()
                .find(|(k, _)| *k == "KAAL_SEL4_SRC")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            src(&Cargo::new(&debug)),
            Some(PathBuf::from("/w/target/kaal/debug/sel4/src"))
        );
    }

    #[test]
    fn package_args_repeat_the_flag() {
        assert_eq!(
            package_args(&["a".to_owned(), "b".to_owned()]),
            ["-p", "a", "-p", "b"]
        );
    }
}
