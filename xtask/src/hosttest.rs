//! Host tests: `cargo test` over the host crates, then the loom model checks of the crates
//! that have them, and the reading of their output.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cargo::{self, Cargo, Metadata, Workspace};
use crate::layout::Layout;
use crate::step::Step;
use crate::Tally;

/// The cfg under which a crate's atomics are loom's (`RUSTFLAGS="--cfg loom"`).
const LOOM_CFG: &str = "loom";
/// The test target holding a crate's loom model checks (`tests/loom.rs`).
const LOOM_TEST: &str = "loom";

/// One test binary's `test result:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Crate and kind, e.g. `xtask (unittests src/main.rs)`.
    pub label: String,
    pub passed: u64,
    pub failed: u64,
}

/// Reads every `test result: ...` line of `cargo test` output, each labelled by the
/// `Running ...` / `Doc-tests ...` line before it.
pub fn parse_output(output: &str) -> Vec<Suite> {
    let mut label = String::from("(unknown)");
    let mut suites = Vec::new();
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Running ") {
            label = running_label(rest);
        } else if let Some(krate) = line.strip_prefix("Doc-tests ") {
            label = format!("{} (doc-tests)", krate.trim());
        } else if let Some(result) = line.strip_prefix("test result: ") {
            if let Some((passed, failed)) = parse_result(result) {
                suites.push(Suite {
                    label: label.clone(),
                    passed,
                    failed,
                });
            }
        }
    }
    suites
}

/// `unittests src/main.rs (target/debug/deps/xtask-0123abcd)` →
/// `xtask (unittests src/main.rs)`.
fn running_label(rest: &str) -> String {
    let Some((what, binary)) = rest.rsplit_once(" (") else {
        return rest.to_owned();
    };
    let binary = binary.trim_end_matches(')');
    let file = binary.rsplit('/').next().unwrap_or(binary);
    let krate = match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name,
        _ => file,
    };
    format!("{krate} ({what})")
}

/// `ok. 3 passed; 1 failed; 0 ignored; ...` → `(3, 1)`.
fn parse_result(result: &str) -> Option<(u64, u64)> {
    let (_verdict, counts) = result.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        match what {
            "passed" => passed = number.parse().ok(),
            "failed" => failed = number.parse().ok(),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

/// Runs the host crates' tests, then the loom model checks of every host crate with
/// `[package.metadata.kaal] loom = true`; prints one line per test binary that ran tests.
pub fn run(
    layout: &Layout,
    cargo: &Cargo,
    workspace: &Workspace,
    filter: Option<&str>,
) -> Result<Tally> {
    let mut cmd = cargo.command();
    cmd.args(["test", "--no-fail-fast"])
        .args(cargo::package_args(&workspace.host));
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    let mut tally = run_suites(
        "Running host tests",
        &layout.log("host-tests"),
        &mut cmd,
        |label| label,
    )?;

    let mut metadata = cargo.command();
    metadata.args(["metadata", "--no-deps", "--format-version", "1"]);
    let loom_target = workspace.target_dir.join("loom");
    for krate in loom_crates(&cargo::metadata(&mut metadata)?, &workspace.host) {
        let mut cmd = loom_command(cargo.command(), &krate, &loom_target, filter);
        let title = format!("Running loom model checks of {krate}");
        let log = layout.log(&format!("loom-{krate}"));
        tally += run_suites(&title, &log, &mut cmd, |label| {
            format!("{krate} {label} [cfg {LOOM_CFG}]")
        })?;
    }
    Ok(tally)
}

/// Runs one `cargo test` command as a step, reads its suites from the log and prints
/// them, each label passed through `relabel`.
fn run_suites(
    title: &str,
    log: &Path,
    cmd: &mut Command,
    relabel: impl Fn(String) -> String,
) -> Result<Tally> {
    let step = Step::start(title, log)?;
    let ending = step.run_until(cmd, None)?;
    let output = fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let suites = parse_output(&String::from_utf8_lossy(&output));
    let mut tally = Tally::default();
    for suite in &suites {
        tally.passed += suite.passed;
        tally.failed += suite.failed;
    }
    let broken = !ending.success() && tally.failed == 0;
    if broken || tally.failed > 0 {
        step.failed();
    } else {
        step.done();
    }
    // Test binaries that ran nothing (empty doc-tests, everything filtered out) are noise.
    for suite in suites.into_iter().filter(|s| s.passed + s.failed > 0) {
        let verdict = if suite.failed == 0 { "ok" } else { "FAILED" };
        println!(
            "host {} ... {verdict} ({} passed, {} failed)",
            relabel(suite.label),
            suite.passed,
            suite.failed
        );
    }
    if broken {
        // Did not build, or a test binary died without a result line (a loom model that
        // finds a deadlock may abort the whole binary).
        println!(
            "host tests ... FAILED (`{}` {ending} without a failing test: build error or \
             crash; log: {})",
            crate::step::describe(cmd),
            log.display()
        );
        tally.failed += 1;
    } else if tally.failed > 0 {
        println!("host tests: see {} for the failures", log.display());
    }
    Ok(tally)
}

/// The host crates (workspace members among `host`) whose `Cargo.toml` has
/// `[package.metadata.kaal] loom = true`, in `host`'s order.
pub fn loom_crates(metadata: &Metadata, host: &[String]) -> Vec<String> {
    host.iter()
        .filter(|name| {
            metadata.packages.iter().any(|p| {
                &p.name == *name
                    && metadata.workspace_members.contains(&p.id)
                    && p.metadata
                        .as_ref()
                        .and_then(|m| m.get("kaal"))
                        .and_then(|k| k.get("loom"))
                        .and_then(serde_json::Value::as_bool)
                        == Some(true)
            })
        })
        .cloned()
        .collect()
}

/// `cargo test --release -p KRATE --test loom` with `--cfg loom` added to the rustflags
/// and its own target folder, so the loom build never invalidates the normal one.
fn loom_command(mut cmd: Command, krate: &str, target_dir: &Path, filter: Option<&str>) -> Command {
    let (key, value) = loom_rustflags(
        std::env::var_os("CARGO_ENCODED_RUSTFLAGS").as_deref(),
        std::env::var_os("RUSTFLAGS").as_deref(),
    );
    cmd.env(key, value)
        .args(["test", "--release", "-p", krate, "--test", LOOM_TEST])
        .arg("--target-dir")
        .arg(PathBuf::from(target_dir));
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    cmd
}

/// The variable and value that add `--cfg loom` to the rustflags already in force:
/// `CARGO_ENCODED_RUSTFLAGS` (0x1f-separated) if set and non-empty, as cargo prefers it,
/// else `RUSTFLAGS`.
fn loom_rustflags(encoded: Option<&OsStr>, plain: Option<&OsStr>) -> (&'static str, OsString) {
    match encoded.filter(|e| !e.is_empty()) {
        Some(encoded) => {
            let mut value = encoded.to_owned();
            value.push(format!("\x1f--cfg\x1f{LOOM_CFG}"));
            ("CARGO_ENCODED_RUSTFLAGS", value)
        }
        None => {
            let mut value = plain.map(OsStr::to_owned).unwrap_or_default();
            if !value.is_empty() {
                value.push(" ");
            }
            value.push(format!("--cfg {LOOM_CFG}"));
            ("RUSTFLAGS", value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
   Compiling xtask v0.1.0 (/w/xtask)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 1.20s
     Running unittests src/main.rs (target/debug/deps/xtask-5f0c1e9a2b3d4c6e)

running 3 tests
test a ... ok
test b ... ok
test c ... FAILED

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/abi.rs (target/debug/deps/abi-0123456789abcdef)

running 4 tests
test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.00s

   Doc-tests kaal_sel4_sys

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn every_result_line_is_read_and_labelled() {
        let suites = parse_output(OUTPUT);
        assert_eq!(
            suites,
            [
                Suite {
                    label: "xtask (unittests src/main.rs)".to_owned(),
                    passed: 2,
                    failed: 1
                },
                Suite {
                    label: "abi (tests/abi.rs)".to_owned(),
                    passed: 4,
                    failed: 0
                },
                Suite {
                    label: "kaal_sel4_sys (doc-tests)".to_owned(),
                    passed: 0,
                    failed: 0
                },
            ]
        );
    }

    #[test]
    fn compile_errors_give_no_results() {
        let output = "error[E0425]: cannot find value `x`\nerror: could not compile `kaal-rt`\n";
        assert!(parse_output(output).is_empty());
    }

    #[test]
    fn loom_crates_are_host_members_with_the_flag() -> Result<()> {
        let metadata: Metadata = serde_json::from_str(
            r#"{
            "packages": [
                {"name": "kaal-ring", "version": "0.1.0", "id": "ring",
                 "manifest_path": "/w/ipc/ring/Cargo.toml",
                 "metadata": {"kaal": {"target": "both", "loom": true}}},
                {"name": "kaal-broker", "version": "0.1.0", "id": "broker",
                 "manifest_path": "/w/broker/Cargo.toml",
                 "metadata": {"kaal": {"target": "both", "loom": false}}},
                {"name": "xtask", "version": "0.1.0", "id": "xtask",
                 "manifest_path": "/w/xtask/Cargo.toml", "metadata": null},
                {"name": "kaal-rt", "version": "0.1.0", "id": "rt",
                 "manifest_path": "/w/runtime/Cargo.toml",
                 "metadata": {"kaal": {"target": "sel4", "loom": true}}},
                {"name": "outsider", "version": "1.0.0", "id": "registry#outsider",
                 "manifest_path": "/reg/outsider/Cargo.toml",
                 "metadata": {"kaal": {"loom": true}}}
            ],
            "workspace_members": ["ring", "broker", "xtask", "rt"],
            "target_directory": "/w/target"
        }"#,
        )?;
        let host: Vec<String> = ["xtask", "kaal-broker", "kaal-ring", "outsider"]
            .map(str::to_owned)
            .to_vec();
        // kaal-rt is not a host crate; outsider is not a workspace member.
        assert_eq!(loom_crates(&metadata, &host), ["kaal-ring"]);
        Ok(())
    }

    #[test]
    fn loom_rustflags_extend_what_is_set() {
        let os = |s: &str| OsString::from(s);
        assert_eq!(loom_rustflags(None, None), ("RUSTFLAGS", os("--cfg loom")));
        assert_eq!(
            loom_rustflags(None, Some(OsStr::new("-C opt-level=3"))),
            ("RUSTFLAGS", os("-C opt-level=3 --cfg loom"))
        );
        assert_eq!(
            loom_rustflags(Some(OsStr::new("")), Some(OsStr::new("-Dwarnings"))),
            ("RUSTFLAGS", os("-Dwarnings --cfg loom"))
        );
        assert_eq!(
            loom_rustflags(Some(OsStr::new("-C\x1fdebuginfo=0")), None),
            (
                "CARGO_ENCODED_RUSTFLAGS",
                os("-C\x1fdebuginfo=0\x1f--cfg\x1floom")
            )
        );
    }

    #[test]
    fn loom_command_uses_its_own_target_folder() {
        let cmd = loom_command(
            Command::new("cargo"),
            "kaal-ring",
            Path::new("/w/target/loom"),
            Some("wakeup"),
        );
        assert_eq!(
            crate::step::describe(&cmd),
            "cargo test --release -p kaal-ring --test loom --target-dir /w/target/loom -- wakeup"
        );
        let cfg_set = cmd.get_envs().any(|(key, value)| {
            (key == "RUSTFLAGS" || key == "CARGO_ENCODED_RUSTFLAGS")
                && value.is_some_and(|v| v.to_string_lossy().contains("--cfg"))
        });
        assert!(cfg_set, "the command sets --cfg loom");
    }

    #[test]
    fn loom_output_is_labelled_by_its_binary() {
        let output = "\
     Running tests/loom.rs (target/loom/release/deps/loom-0123456789abcdef)

running 6 tests
test result: ok. 6 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.36s
";
        assert_eq!(
            parse_output(output),
            [Suite {
                label: "loom (tests/loom.rs)".to_owned(),
                passed: 6,
                failed: 0
            }]
        );
    }

    #[test]
    fn result_line_counts() {
        assert_eq!(
            parse_result("ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"),
            Some((12, 0))
        );
        assert_eq!(parse_result("FAILED. 1 passed; 2 failed;"), Some((1, 2)));
        assert_eq!(parse_result("garbage"), None);
    }
}
