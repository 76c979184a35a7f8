//! Host tests: `cargo test` over the host crates, and the reading of its output.

use std::fs;

use anyhow::{Context, Result};

use crate::cargo::{self, Cargo, Workspace};
use crate::layout::Layout;
use crate::step::Step;
use crate::Tally;

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

/// Runs the host crates' tests; prints one line per test binary that ran tests.
pub fn run(
    layout: &Layout,
    cargo: &Cargo,
    workspace: &Workspace,
    filter: Option<&str>,
) -> Result<Tally> {
    let log = layout.log("host-tests");
    let step = Step::start("Running host tests", &log)?;
    let mut cmd = cargo.command();
    cmd.args(["test", "--no-fail-fast"])
        .args(cargo::package_args(&workspace.host));
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    let ending = step.run_until(&mut cmd, None)?;
    let output = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
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
    for suite in suites.iter().filter(|s| s.passed + s.failed > 0) {
        let verdict = if suite.failed == 0 { "ok" } else { "FAILED" };
        println!(
            "host {} ... {verdict} ({} passed, {} failed)",
            suite.label, suite.passed, suite.failed
        );
    }
    if broken {
        // Did not build, or a test binary died without a result line.
        println!(
            "host tests ... FAILED (cargo test {ending} without a failing test: build \
             error or crash; log: {})",
            log.display()
        );
        tally.failed += 1;
    } else if tally.failed > 0 {
        println!("host tests: see {} for the failures", log.display());
    }
    Ok(tally)
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
    fn result_line_counts() {
        assert_eq!(
            parse_result("ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"),
            Some((12, 0))
        );
        assert_eq!(parse_result("FAILED. 1 passed; 2 failed;"), Some((1, 2)));
        assert_eq!(parse_result("garbage"), None);
    }
}
