//! Shell scripts typed on a guest's console (`script` in tests.toml).
//!
//! The harness types the script into the guest's shell as a quoted
//! here-document that writes it to [`GUEST_PATH`], runs it with `sh`, and
//! prints its exit status. It then takes the lines from the script's
//! `== begin ==` to that status line out of the serial log and compares them
//! with what the host's busybox (the one on the guest's disk) prints for the
//! same script, run with each applet on `PATH` and `KAAL_TMP` naming a
//! private folder that stands for the guest's `/tmp`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::env::BUSYBOX;
use crate::layout::Layout;

/// The line the script prints first; the comparison starts there.
pub const BEGIN: &str = "== begin ==";

/// Where the typed here-document puts the script in the guest.
const GUEST_PATH: &str = "/tmp/kaal-script.sh";

/// The here-document's delimiter: no line of the script may be this.
const DELIMITER: &str = "KAAL_EOF";

/// The guest's tty holds 4096 bytes of input the shell has not read yet
/// (`posix::tty::INPUT_CAPACITY`), and the harness types faster than a shell
/// under TCG reads: the whole typed text must fit, with room to spare.
const MAX_TYPED: usize = 3072;

/// Unchanged lines shown around each difference.
const DIFF_CONTEXT: usize = 3;

/// How long the host's run of the script may take.
const HOST_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefixes of the lines the system itself prints on the console (the
/// process server's reports and the root task's): they are not the
/// script's output, so the comparison leaves them out (they stay in the
/// serial log). One is expected: the guest's shell has the console as
/// stdout, so a busybox applet it forks without exec (sort in `sort | head`)
/// writes line by line and may be killed by SIGPIPE, which the server
/// reports; the host's, writing to a file, writes once.
const SYSTEM_PREFIXES: [&str; 2] = ["posix: ", "KaaL: "];

/// The status line after the script's output; the comparison ends there.
fn status_line(status: i32) -> String {
    format!("== status {status} ==")
}

/// What the harness types for the script `text`: the here-document, then
/// one line that runs it, prints its status and leaves the shell. That line
/// comes last so that nothing typed reaches the tty while the script runs
/// (the tty would echo it into the output).
pub fn typed(text: &str) -> Result<String> {
    if text.trim().is_empty() {
        bail!("the script is empty");
    }
    if let Some((n, _)) = text.lines().enumerate().find(|(_, l)| *l == DELIMITER) {
        bail!(
            "line {} of the script is {DELIMITER}, the here-document's delimiter",
            n + 1
        );
    }
    // A tab would be completed by the guest's line editor; other control
    // characters edit the line or signal.
    if let Some(at) = text
        .bytes()
        .position(|b| b.is_ascii_control() && b != b'\n')
    {
        let byte = text.as_bytes().get(at).copied().unwrap_or_default();
        bail!(
            "the script has control character {byte:#04x} at byte {at}; only newlines may be typed"
        );
    }
    if !text
        .lines()
        .any(|l| l.contains("printf '== %s ==\\n' begin"))
    {
        bail!("the script does not print {BEGIN:?} (`printf '== %s ==\\n' begin`, so that the typed line itself never reads {BEGIN:?})");
    }
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    let typed = format!(
        "cat > {GUEST_PATH} <<'{DELIMITER}'\n{text}{newline}{DELIMITER}\n\
         sh {GUEST_PATH}; printf '== %s %s ==\\n' status $?; exit\n"
    );
    if typed.len() > MAX_TYPED {
        bail!(
            "the script makes {} bytes of typed input, more than {MAX_TYPED} (the guest's tty holds 4096)",
            typed.len()
        );
    }
    Ok(typed)
}

/// The script's output in the serial log: its lines from [`BEGIN`] to the
/// status line, without carriage returns and the system's own lines.
pub fn guest_lines(serial: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = serial
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !SYSTEM_PREFIXES.iter().any(|p| l.starts_with(p)))
        .collect();
    let begin = lines
        .iter()
        .position(|l| *l == BEGIN)
        .ok_or_else(|| format!("the serial log has no line {BEGIN:?}: the script did not start"))?;
    let rest = lines.get(begin..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|l| l.starts_with("== status ") && l.ends_with(" =="))
        .ok_or_else(|| "the serial log has no status line (`== status N ==`) after the script's output: it did not finish".to_owned())?;
    Ok(rest
        .get(..=end)
        .unwrap_or_default()
        .iter()
        .map(|l| (*l).to_owned())
        .collect())
}

/// Runs `script` with the host's busybox in folder `scratch` (made afresh):
/// `scratch/bin` holds a link to busybox per applet and is the only `PATH`,
/// `scratch/tmp` is `KAAL_TMP`; stderr goes with stdout, as on the console.
/// Returns its lines, `scratch/tmp` written `/tmp`, then the status line.
pub fn host_lines(script: &Path, scratch: &Path) -> Result<Vec<String>> {
    if scratch.exists() {
        fs::remove_dir_all(scratch).with_context(|| format!("removing {}", scratch.display()))?;
    }
    let bin = scratch.join("bin");
    let tmp = scratch.join("tmp");
    for dir in [&bin, &tmp] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for applet in crate::linux::applets()? {
        let link = bin.join(&applet);
        std::os::unix::fs::symlink(BUSYBOX, &link)
            .with_context(|| format!("creating {}", link.display()))?;
    }
    let out_path = scratch.join("output");
    let out =
        File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err = out.try_clone().context("sharing the output file")?;
    let mut cmd = Command::new(bin.join("sh"));
    cmd.arg(script)
        .current_dir(scratch)
        .env_clear()
        .env("PATH", &bin)
        .env("KAAL_TMP", &tmp)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {} on the host's busybox", script.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the host's busybox")? {
            break status;
        }
        if started.elapsed() > HOST_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the host's busybox ran {} for more than {}s",
                script.display(),
                HOST_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let code = status.code().with_context(|| {
        format!(
            "the host's busybox running {} was killed by a signal",
            script.display()
        )
    })?;
    let text = fs::read(&out_path).with_context(|| format!("reading {}", out_path.display()))?;
    let tmp_text = tmp.display().to_string();
    let mut lines: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.replace(&tmp_text, "/tmp"))
        .collect();
    lines.push(status_line(code));
    Ok(lines)
}

/// `Err` with a unified-style diff (`-` the host's line, `+` the guest's)
/// when the lines differ.
pub fn compare(host: &[String], guest: &[String]) -> Result<(), String> {
    if host == guest {
        return Ok(());
    }
    let all = edits(host, guest);
    // Each change with DIFF_CONTEXT lines around it; `@@` where lines are left out.
    let changed: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.starts_with(' '))
        .map(|(k, _)| k)
        .collect();
    let near = |k: usize| changed.iter().any(|&c| k.abs_diff(c) <= DIFF_CONTEXT);
    let mut diff = vec!["--- host busybox".to_owned(), "+++ guest".to_owned()];
    let mut skipped = false;
    for (k, line) in all.iter().enumerate() {
        if near(k) {
            if skipped {
                diff.push("@@".to_owned());
            }
            diff.push(line.clone());
            skipped = false;
        } else {
            skipped = true;
        }
    }
    if skipped {
        diff.push("@@".to_owned());
    }
    Err(diff.join("\n"))
}

/// Why a script's test failed, and the diff to show (after the serial log).
#[derive(Debug)]
pub struct Mismatch {
    pub reason: String,
    pub diff: Option<String>,
}

/// The lines of `a` and `b` in order, each marked ` ` (in both), `-` (in
/// `a` only) or `+` (in `b` only), along a longest common subsequence
/// (quadratic: the scripts are short). Removals come before additions, as
/// `diff -u` shows a change.
fn edits(a: &[String], b: &[String]) -> Vec<String> {
    let width = b.len() + 1;
    // Entry i * width + j: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![0usize; (a.len() + 1) * width];
    let at = |t: &[usize], i: usize, j: usize| t.get(i * width + j).copied().unwrap_or(0);
    for (i, x) in a.iter().enumerate().rev() {
        for (j, y) in b.iter().enumerate().rev() {
            let len = if x == y {
                at(&lcs, i + 1, j + 1) + 1
            } else {
                at(&lcs, i + 1, j).max(at(&lcs, i, j + 1))
            };
            if let Some(slot) = lcs.get_mut(i * width + j) {
                *slot = len;
            }
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                out.push(format!(" {x}"));
                i += 1;
                j += 1;
            }
            (Some(x), None) => {
                out.push(format!("-{x}"));
                i += 1;
            }
            (Some(x), Some(_)) if at(&lcs, i + 1, j) >= at(&lcs, i, j + 1) => {
                out.push(format!("-{x}"));
                i += 1;
            }
            (_, Some(y)) => {
                out.push(format!("+{y}"));
                j += 1;
            }
        }
    }
    out
}

/// Judges a test's script: the guest's output in `serial` against the
/// host's run; the two outputs are left in the logs folder.
pub fn check(
    layout: &Layout,
    name: &str,
    script: &str,
    serial: &str,
) -> Result<Result<(), Mismatch>> {
    let guest = match guest_lines(serial) {
        Ok(lines) => lines,
        Err(reason) => return Ok(Err(Mismatch { reason, diff: None })),
    };
    let path = layout.root.join(script);
    let host = host_lines(&path, &scratch(layout, name))?;
    let expected = layout.log(&format!("script-{name}-host"));
    let got = layout.log(&format!("script-{name}-guest"));
    for (file, lines) in [(&expected, &host), (&got, &guest)] {
        fs::write(file, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(compare(&host, &guest).map_err(|diff| Mismatch {
        reason: format!(
            "the output of {script} differs from the host busybox's (diff above; {} and {})",
            expected.display(),
            got.display()
        ),
        diff: Some(diff),
    }))
}

/// Prints a mismatch's diff as the harness prints a failed test's logs.
pub fn print_diff(name: &str, script: &str, diff: &str) {
    println!("---- {name}: {script}, host busybox (-) and guest (+) ----");
    println!("{}", crate::step::printable(diff));
    println!("---- end of {name} ----");
}

/// The host's folder for a test's script run.
fn scratch(layout: &Layout, name: &str) -> PathBuf {
    layout.logs().join(format!("script-{name}"))
}

/// Reads a test's script (a path relative to the repository) and makes
/// what the harness types for it.
pub fn typed_from(layout: &Layout, script: &str) -> Result<String> {
    let path = layout.root.join(script);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    typed(&text).with_context(|| format!("script {script}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    const SCRIPT: &str = "printf '== %s ==\\n' begin\necho hi\n";

    #[test]
    fn typed_text_writes_runs_and_leaves() -> Result<()> {
        let t = typed(SCRIPT)?;
        assert_eq!(
            t,
            "cat > /tmp/kaal-script.sh <<'KAAL_EOF'\nprintf '== %s ==\\n' begin\necho hi\nKAAL_EOF\n\
             sh /tmp/kaal-script.sh; printf '== %s %s ==\\n' status $?; exit\n"
        );
        // The typed lines never read as the markers.
        assert!(guest_lines(&t).is_err());
        for (bad, why) in [
            ("", "empty"),
            ("printf '== %s ==\\n' begin\nKAAL_EOF\n", "delimiter"),
            (
                "printf '== %s ==\\n' begin\n\techo\n",
                "control character 0x09",
            ),
            ("echo begin\n", "does not print"),
        ] {
            let err = format!("{:#}", typed(bad).err().context("accepted")?);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = format!("{SCRIPT}{}", "echo 0123456789\n".repeat(200));
        assert!(format!("{:#}", typed(&long).err().context("accepted")?).contains("more than 3072"));
        Ok(())
    }

    #[test]
    fn guest_lines_run_from_begin_to_status() {
        let log = "kaal:/# sh /tmp/kaal-script.sh; printf '== %s %s ==\\n' status $?; exit\r\n\
                   == begin ==\r\nhi\r\nposix: pid 3 (/bin/sh) killed by signal 13\r\n\
                   == status 0 ==\r\nposix: pid 1 exited\r\n";
        assert_eq!(
            guest_lines(log),
            Ok(lines("== begin ==\nhi\n== status 0 =="))
        );
        assert!(guest_lines("== begin ==\r\nhi\r\n").is_err_and(|e| e.contains("did not finish")));
        assert!(guest_lines("hi\n== status 0 ==\n").is_err_and(|e| e.contains("did not start")));
    }

    #[test]
    fn compare_shows_each_difference() {
        let host = lines("a\nb\nc\nd");
        assert_eq!(compare(&host, &host), Ok(()));
        assert_eq!(
            compare(&host, &lines("a\nB\nc\nd\ne")),
            Err("--- host busybox\n+++ guest\n a\n-b\n+B\n c\n d\n+e".to_owned())
        );
        assert_eq!(
            compare(&host, &lines("a\nd")),
            Err("--- host busybox\n+++ guest\n a\n-b\n-c\n d".to_owned())
        );
        // Far from a change, lines are left out.
        let long: Vec<String> = (0..20).map(|n| n.to_string()).collect();
        let mut changed = long.clone();
        changed[10] = "ten".to_owned();
        assert_eq!(
            compare(&long, &changed),
            Err(
                "--- host busybox\n+++ guest\n@@\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n@@"
                    .to_owned()
            )
        );
    }

    /// The host's run of a small script: applets on PATH, KAAL_TMP shown as
    /// /tmp, stderr in line, the status last.
    #[test]
    fn host_run_maps_its_folder_to_tmp() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("kaal-script-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let script = dir.join("s.sh");
        fs::write(
            &script,
            "cd ${KAAL_TMP:-/tmp}; pwd; echo x | wc -c; ls /nothing 2>&1 | head -c 3; echo; exit 4\n",
        )?;
        let got = host_lines(&script, &dir.join("run"))?;
        assert_eq!(got, lines("/tmp\n2\nls:\n== status 4 =="));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Every test's script makes valid typed input.
    #[test]
    fn the_manifests_scripts_are_typeable() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = crate::systest::load(&layout.tests_toml())?;
        let scripts: Vec<&str> = tests.iter().filter_map(|t| t.script.as_deref()).collect();
        assert!(!scripts.is_empty());
        for script in scripts {
            typed_from(&layout, script)?;
        }
        Ok(())
    }
}
