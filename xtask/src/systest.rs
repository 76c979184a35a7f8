//! System tests: boot each image of `tests/system/tests.toml` in QEMU and judge it by
//! its exit status and serial output.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cargo::Images;
use crate::layout::Layout;
use crate::qemu::{self, STATUS_FAILURE, STATUS_SUCCESS};
use crate::step::{self, Ending, Step};
use crate::Tally;

/// Lines of a failed test's serial log shown on the terminal.
const SERIAL_TAIL_LINES: usize = 200;

/// Time limit when a test names none.
const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// The whole manifest: a list of `[[test]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(rename = "test", default)]
    tests: Vec<TestSpec>,
}

/// One `[[test]]` entry (the format is documented at the top of `tests.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Name printed by the harness, and matched by the FILTER argument.
    pub name: String,
    /// Binary of package `kaal-systest` booted as root task.
    pub image: String,
    /// How the image must end.
    #[serde(default)]
    pub expect: Expect,
    /// Substrings that must all appear in the serial log.
    #[serde(default)]
    pub serial: Vec<String>,
    /// QEMU is killed after this long; that counts as a failure.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Extra QEMU arguments, appended last.
    #[serde(default)]
    pub qemu_args: Vec<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// The exit an image must reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The image reports success: QEMU status 33.
    #[default]
    Pass,
    /// The image reports failure (e.g. it panics): QEMU status 35.
    Fail,
}

impl Expect {
    fn status(self) -> i32 {
        match self {
            Self::Pass => STATUS_SUCCESS,
            Self::Fail => STATUS_FAILURE,
        }
    }
}

/// Parses and checks a manifest.
pub fn parse_manifest(text: &str) -> Result<Vec<TestSpec>> {
    let manifest: Manifest = toml::from_str(text)?;
    let mut names = HashSet::new();
    for test in &manifest.tests {
        if test.name.is_empty() || test.image.is_empty() {
            bail!("a test has an empty name or image");
        }
        if test.timeout_secs == 0 {
            bail!("test {}: timeout_secs must be at least 1", test.name);
        }
        if !names.insert(test.name.as_str()) {
            bail!("test {} appears twice", test.name);
        }
    }
    Ok(manifest.tests)
}

/// Reads `tests/system/tests.toml`.
pub fn load(path: &Path) -> Result<Vec<TestSpec>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_manifest(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The tests whose name contains `filter` (all without one).
pub fn select<'a>(tests: &'a [TestSpec], filter: Option<&str>) -> Vec<&'a TestSpec> {
    tests
        .iter()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .collect()
}

/// Judges one run: `Ok` if it ended as `spec` expects and printed every `serial` line.
pub fn verdict(ending: Ending, serial_log: &str, spec: &TestSpec) -> Result<(), String> {
    let expected = spec.expect.status();
    match ending {
        Ending::TimedOut(limit) => return Err(format!("timed out after {}s", limit.as_secs())),
        Ending::Signalled => return Err("QEMU was killed by a signal".to_owned()),
        Ending::Exited(status) if status != expected => {
            return Err(format!(
                "QEMU exited with {}, expected {}",
                qemu::explain_status(status),
                qemu::explain_status(expected)
            ));
        }
        Ending::Exited(_) => {}
    }
    let missing: Vec<String> = spec
        .serial
        .iter()
        .filter(|needle| !serial_log.contains(needle.as_str()))
        .map(|needle| format!("{needle:?}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("serial log lacks {}", missing.join(", ")))
    }
}

/// Runs `tests` one after the other, printing a line per test.
pub fn run(layout: &Layout, images: Result<&Images, &str>, tests: &[&TestSpec]) -> Result<Tally> {
    let mut tally = Tally::default();
    for spec in tests {
        let result = match images {
            Ok(images) => run_one(layout, images, spec)?,
            Err(why) => Err(why.to_owned()),
        };
        match result {
            Ok(()) => {
                println!("test {} ... ok", spec.name);
                tally.passed += 1;
            }
            Err(reason) => {
                println!("test {} ... FAILED ({reason})", spec.name);
                tally.failed += 1;
            }
        }
    }
    Ok(tally)
}

/// Boots one test image; `Err(reason)` when the test failed.
fn run_one(layout: &Layout, images: &Images, spec: &TestSpec) -> Result<Result<(), String>> {
    let image = match images.existing(&spec.image) {
        Ok(image) => image,
        Err(err) => return Ok(Err(format!("{err:#}"))),
    };
    let log = layout.log(&format!("system-{}", spec.name));
    let step = Step::start(format!("test {}", spec.name), &log)?;
    let options = qemu::Options {
        extra: spec.qemu_args.clone(),
        ..qemu::Options::default()
    };
    let mut cmd = qemu::command(&layout.kernel32(), &image, &options);
    step.note(&format!("$ {}", step::describe(&cmd)))?;
    let start = log_len(&log)?;
    let ending = step.run_unannounced(&mut cmd, Some(Duration::from_secs(spec.timeout_secs)))?;
    step.clear();
    let bytes = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let serial = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default());
    let result = verdict(ending, &serial, spec);
    if result.is_err() {
        println!(
            "---- {}: serial log {} (last {SERIAL_TAIL_LINES} lines) ----",
            spec.name,
            log.display()
        );
        println!(
            "{}",
            step::printable(&step::last_lines(&serial, SERIAL_TAIL_LINES))
        );
        println!("---- end of {} ----", spec.name);
    }
    Ok(result)
}

fn log_len(log: &Path) -> Result<usize> {
    let len = fs::metadata(log)
        .with_context(|| format!("inspecting {}", log.display()))?
        .len();
    usize::try_from(len).context("log file too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(expect: Expect, serial: &[&str]) -> TestSpec {
        TestSpec {
            name: "t".to_owned(),
            image: "t".to_owned(),
            expect,
            serial: serial.iter().map(|s| (*s).to_owned()).collect(),
            timeout_secs: 60,
            qemu_args: Vec::new(),
        }
    }

    const BOOT_LOG: &str = "Booting all finished, dropped to user space\nKaAL: x\nKaaL: boot OK\n";

    #[test]
    fn pass_when_status_and_serial_match() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK"]);
        assert_eq!(verdict(Ending::Exited(33), BOOT_LOG, &spec), Ok(()));
    }

    #[test]
    fn failure_status_fails_a_pass_test() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK"]);
        let reason = verdict(Ending::Exited(35), BOOT_LOG, &spec).err();
        assert!(reason.is_some_and(|r| r.contains("status 35") && r.contains("expected status 33")));
    }

    #[test]
    fn missing_serial_line_fails() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK", "untyped"]);
        assert_eq!(
            verdict(Ending::Exited(33), BOOT_LOG, &spec),
            Err("serial log lacks \"untyped\"".to_owned())
        );
    }

    #[test]
    fn timeout_is_its_own_failure() {
        let spec = spec(Expect::Pass, &[]);
        assert_eq!(
            verdict(Ending::TimedOut(Duration::from_secs(60)), BOOT_LOG, &spec),
            Err("timed out after 60s".to_owned())
        );
        // Even a test expecting failure does not pass by hanging.
        let spec = super::tests::spec(Expect::Fail, &[]);
        assert!(verdict(Ending::TimedOut(Duration::from_secs(5)), "", &spec).is_err());
    }

    #[test]
    fn expected_failure_passes_only_on_the_failure_status() {
        let spec = spec(Expect::Fail, &["panicked at"]);
        let log = "panicked at tests/system/src/bin/panic_on_purpose.rs:9:5\n";
        assert_eq!(verdict(Ending::Exited(35), log, &spec), Ok(()));
        assert!(verdict(Ending::Exited(33), log, &spec).is_err());
        assert!(verdict(Ending::Exited(0), log, &spec).is_err());
        assert!(verdict(Ending::Signalled, log, &spec).is_err());
        assert!(verdict(Ending::Exited(35), "no panic here", &spec).is_err());
    }

    #[test]
    fn the_real_manifest_parses() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = load(&layout.tests_toml())?;
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "boot_summary",
                "ipc_roundtrip",
                "notification_signal_wait",
                "panic_is_reported"
            ]
        );
        let panic = tests
            .iter()
            .find(|t| t.name == "panic_is_reported")
            .context("panic_is_reported is listed")?;
        assert_eq!(panic.image, "panic_on_purpose");
        assert_eq!(panic.expect, Expect::Fail);
        assert_eq!(panic.serial, ["panicked at"]);
        assert!(tests
            .iter()
            .filter(|t| t.name != "panic_is_reported")
            .all(|t| t.expect == Expect::Pass));
        Ok(())
    }

    #[test]
    fn defaults_and_checks() -> Result<()> {
        let tests = parse_manifest("[[test]]\nname = \"a\"\nimage = \"b\"\n")?;
        assert_eq!(tests, [spec_named("a", "b")]);
        assert!(parse_manifest("[[test]]\nname = \"a\"\nimage = \"b\"\nextra = 1\n").is_err());
        assert!(parse_manifest("[[test]]\nname = \"a\"\n").is_err());
        let twice =
            "[[test]]\nname = \"a\"\nimage = \"b\"\n[[test]]\nname = \"a\"\nimage = \"c\"\n";
        assert!(parse_manifest(twice).is_err());
        assert!(
            parse_manifest("[[test]]\nname = \"a\"\nimage = \"b\"\nexpect = \"maybe\"\n").is_err()
        );
        Ok(())
    }

    fn spec_named(name: &str, image: &str) -> TestSpec {
        TestSpec {
            name: name.to_owned(),
            image: image.to_owned(),
            ..spec(Expect::Pass, &[])
        }
    }

    #[test]
    fn filter_matches_substrings() -> Result<()> {
        let tests = parse_manifest(
            "[[test]]\nname = \"ipc_roundtrip\"\nimage = \"x\"\n\
             [[test]]\nname = \"boot_summary\"\nimage = \"y\"\n",
        )?;
        assert_eq!(select(&tests, None).len(), 2);
        let picked = select(&tests, Some("ipc"));
        assert_eq!(picked.len(), 1);
        assert!(select(&tests, Some("nothing")).is_empty());
        Ok(())
    }
}
