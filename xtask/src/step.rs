//! Long-running steps: a spinner on stderr, the full output in a log file, and the
//! log's tail on failure.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// Lines of a failed step's log shown on the terminal.
pub const FAILURE_TAIL_LINES: usize = 40;

/// How often a running child is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not sent by us).
    Signalled,
    /// It ran past its time limit and was killed.
    TimedOut(Duration),
    /// It showed what the caller waited for and was stopped.
    Stopped,
}

impl Ending {
    fn from_status(status: ExitStatus) -> Self {
        status.code().map_or(Self::Signalled, Self::Exited)
    }

    /// Whether the process exited with status 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with status {code}"),
            Self::Signalled => write!(f, "was killed by a signal"),
            Self::TimedOut(limit) => write!(f, "timed out after {}s", limit.as_secs()),
            Self::Stopped => write!(f, "was stopped once it had shown what was awaited"),
        }
    }
}

/// One step: a spinner while it runs, everything it runs logged to one file.
pub struct Step {
    title: String,
    log: PathBuf,
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    /// Starts a step, truncating its log file.
    pub fn start(title: impl Into<String>, log: &Path) -> Result<Self> {
        let title = title.into();
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        File::create(log).with_context(|| format!("creating log {}", log.display()))?;
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(title.clone());
        bar.enable_steady_tick(Duration::from_millis(100));
        Ok(Self {
            title,
            log: log.to_path_buf(),
            bar,
            started: Instant::now(),
        })
    }

    /// The step's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Appends a line to the log.
    pub fn note(&self, line: &str) -> Result<()> {
        let mut file = self.open_log()?;
        writeln!(file, "{line}").with_context(|| format!("writing {}", self.log.display()))
    }

    /// Runs a command to completion with its output in the log; fails unless it exits 0.
    pub fn run(&self, cmd: &mut Command) -> Result<()> {
        let ending = self.run_until(cmd, None)?;
        if ending.success() {
            Ok(())
        } else {
            anyhow::bail!("`{}` {ending}", describe(cmd))
        }
    }

    /// Runs a command with stdin closed and stdout and stderr appended to the log,
    /// killing it after `timeout`.
    pub fn run_until(&self, cmd: &mut Command, timeout: Option<Duration>) -> Result<Ending> {
        self.note(&format!("$ {}", describe(cmd)))?;
        self.run_unannounced(cmd, timeout)
    }

    /// Like [`Step::run_until`], without writing the command line to the log first.
    pub fn run_unannounced(&self, cmd: &mut Command, timeout: Option<Duration>) -> Result<Ending> {
        self.run_stoppable(cmd, timeout, || false)
    }

    /// Like [`Step::run_unannounced`], also killing the command (ending
    /// [`Ending::Stopped`]) once `stop` says so; it is asked every poll.
    pub fn run_stoppable(
        &self,
        cmd: &mut Command,
        timeout: Option<Duration>,
        mut stop: impl FnMut() -> bool,
    ) -> Result<Ending> {
        let out = self.open_log()?;
        let err = out
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", self.log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting `{}`", describe(cmd)))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().context("waiting for a child process")? {
                return Ok(Ending::from_status(status));
            }
            if stop() {
                let _ = child.kill();
                child.wait().context("reaping a stopped child process")?;
                return Ok(Ending::Stopped);
            }
            if let Some(limit) = timeout {
                if started.elapsed() >= limit {
                    // It may have exited just now; either way, reap it.
                    let _ = child.kill();
                    child.wait().context("reaping a killed child process")?;
                    self.note(&format!("[xtask] killed after {}s", limit.as_secs()))?;
                    return Ok(Ending::TimedOut(limit));
                }
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Clears the spinner and prints a one-line success note on stderr.
    pub fn done(self) {
        self.bar.finish_and_clear();
        eprintln!(
            "✓ {} ({:.1}s)",
            self.title,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Clears the spinner without printing anything.
    pub fn clear(self) {
        self.bar.finish_and_clear();
    }

    /// Clears the spinner and prints the log's path and tail on stderr.
    pub fn failed(self) {
        self.bar.finish_and_clear();
        eprintln!("✗ {} failed; full log: {}", self.title, self.log.display());
        eprintln!("--- last {FAILURE_TAIL_LINES} lines of the log ---");
        eprintln!("{}", tail(&self.log, FAILURE_TAIL_LINES));
        eprintln!("--- end of log ---");
    }

    fn open_log(&self) -> Result<File> {
        OpenOptions::new()
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening log {}", self.log.display()))
    }
}

/// Runs `body` as a step: on success a one-line note, on failure the log's tail and the
/// error with the log's path attached.
pub fn step<T>(title: &str, log: &Path, body: impl FnOnce(&Step) -> Result<T>) -> Result<T> {
    let step = Step::start(title, log)?;
    match body(&step) {
        Ok(value) => {
            step.done();
            Ok(value)
        }
        Err(err) => {
            // Best effort: the error is reported on the terminal anyway.
            let _ = step.note(&format!("[xtask] error: {err:#}"));
            step.failed();
            Err(err.context(format!("{title} failed (log: {})", log.display())))
        }
    }
}

/// Prints that a step was skipped.
pub fn skipped(title: &str, why: &str) {
    eprintln!("- {title}: skipped ({why})");
}

/// The last `lines` lines of a file, read leniently (serial output need not be UTF-8).
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => printable(&last_lines(&String::from_utf8_lossy(&bytes), lines)),
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

/// `text` made safe for a terminal: escape characters shown as `^[`, other control
/// characters (but tabs and newlines) dropped. Guest firmware sends terminal resets.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("^["),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let skip = all.len().saturating_sub(n);
    all.iter()
        .skip(skip)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// A command as a shell-like string, for logs and error messages.
pub fn describe(cmd: &Command) -> String {
    let program = cmd.get_program();
    // `$CARGO` is a long toolchain path; `cargo` says the same.
    let program = if Path::new(program).file_name() == Some(OsStr::new("cargo")) {
        OsStr::new("cargo")
    } else {
        program
    };
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 5), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn printable_defuses_terminal_controls() {
        assert_eq!(printable("a\x1bc\x1b[2Jb\r\n\tc\x07"), "a^[c^[[2Jb\n\tc");
    }

    #[test]
    fn describe_joins_program_and_arguments() {
        let mut cmd = Command::new("make");
        cmd.args(["-j2", "DEBUG=1"]);
        assert_eq!(describe(&cmd), "make -j2 DEBUG=1");
        let cmd = Command::new("/opt/rust/bin/cargo");
        assert_eq!(describe(&cmd), "cargo");
    }

    #[test]
    fn endings_read_well() {
        assert_eq!(Ending::Exited(33).to_string(), "exited with status 33");
        assert_eq!(
            Ending::TimedOut(Duration::from_secs(60)).to_string(),
            "timed out after 60s"
        );
        assert!(Ending::Exited(0).success());
        assert!(!Ending::Signalled.success());
    }
}
