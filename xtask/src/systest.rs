//! System tests: boot each image of `tests/system/tests.toml` in QEMU and judge it by
//! its exit status and serial output.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
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

/// Bytes of `serial_input` written to QEMU's stdin at a time: the guest's 16550 UART has
/// a 16-byte receive FIFO.
const INPUT_CHUNK: usize = 16;

/// Pause between two chunks of `serial_input`.
const INPUT_PAUSE: Duration = Duration::from_millis(5);

/// How often a running QEMU is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How long, once QEMU ended, the output reader and the input writer get to finish.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

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
    /// Bytes written to QEMU's stdin, i.e. to the guest's COM1, once `input_after` has
    /// appeared in the serial output.
    #[serde(default)]
    pub serial_input: Option<String>,
    /// Substring of the serial output after which `serial_input` is written.
    #[serde(default)]
    pub input_after: Option<String>,
    /// Bytes written to the guest's COM2 right after `serial_input`: QEMU
    /// gets a second serial port on a Unix socket the harness connects to.
    #[serde(default)]
    pub com2_input: Option<String>,
    /// `serial_input` is written this many times over (default 1): bulk
    /// input without a huge literal.
    #[serde(default = "one")]
    pub serial_input_repeat: usize,
    /// Written to COM1 some time after `serial_input` (a Ctrl-C once the
    /// command typed before runs): `{ after_ms = N, input = "..." }`.
    #[serde(default)]
    pub later_input: Option<LaterInput>,
    /// A disk image made for the test; `{disk}` in `qemu_args` is its path.
    #[serde(default)]
    pub disk: Option<crate::disk::DiskSpec>,
    /// The `serial` substrings must appear in the order listed.
    #[serde(default)]
    pub ordered: bool,
    /// A batch gdb attached to QEMU's stub runs this script (see gdb.rs).
    #[serde(default)]
    pub gdb: Option<crate::gdb::GdbSpec>,
    /// After the run, e2fsck and a comparison with a tree (an ext2 disk).
    #[serde(default)]
    pub fs_check: Option<crate::disk::FsCheck>,
    /// Damages done to the `corrupt` ext2 image before the boot.
    #[serde(default)]
    pub damage: Vec<String>,
    /// Once the first boot passed, the same image and disk boot again.
    #[serde(default)]
    pub reboot: Option<Reboot>,
    /// A program on the host that talks to the guest through port forwards.
    #[serde(default)]
    pub peer: Option<crate::peer::PeerSpec>,
    /// A shell script (a path in the repository) typed into the guest's
    /// shell once `input_after` appeared; its output must equal the host
    /// busybox's (see script.rs).
    #[serde(default)]
    pub script: Option<String>,
    /// Once the test passed, the Linux peer boots with the same devices and
    /// runs this program from a fresh disk (see linux_peer.rs).
    #[serde(default)]
    pub linux_peer: Option<crate::linux_peer::PeerTest>,
}

/// `reboot = { serial = [...], ordered = false, timeout_secs = N }`: what
/// the second boot of the same disk must print (it must end with success).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    pub serial: Vec<String>,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn one() -> usize {
    1
}

/// Bytes typed a while after `serial_input`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaterInput {
    /// Milliseconds (host time) after `serial_input` was written.
    pub after_ms: u64,
    pub input: String,
}

/// What a test writes to the guest's serial port, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// Written to QEMU's stdin in chunks of [`INPUT_CHUNK`] bytes.
    pub bytes: &'a [u8],
    /// Written once this has appeared on QEMU's stdout (the serial output).
    pub after: &'a [u8],
    /// `bytes` is written this many times.
    pub repeat: usize,
    /// Then written to COM2, if the test has one.
    pub com2: Option<&'a [u8]>,
    /// Then, this long after, these bytes to COM1.
    pub later: Option<(Duration, &'a [u8])>,
}

impl Input<'_> {
    /// Every byte written, in order.
    pub fn all_bytes(&self) -> Vec<u8> {
        self.bytes.repeat(self.repeat)
    }
}

impl TestSpec {
    /// The test's serial input, if it has one (the manifest checks make both keys go
    /// together).
    pub fn input(&self) -> Option<Input<'_>> {
        match (&self.serial_input, &self.input_after) {
            (Some(bytes), Some(after)) => Some(Input {
                bytes: bytes.as_bytes(),
                after: after.as_bytes(),
                repeat: self.serial_input_repeat,
                com2: self.com2_input.as_deref().map(str::as_bytes),
                later: self
                    .later_input
                    .as_ref()
                    .map(|l| (Duration::from_millis(l.after_ms), l.input.as_bytes())),
            }),
            _ => None,
        }
    }

    /// Where port placeholders may be: `qemu_args` and `serial_input`
    /// (a `{host:N}` typed on the console).
    fn port_args(&self) -> Vec<String> {
        self.qemu_args
            .iter()
            .chain(&self.serial_input)
            .cloned()
            .collect()
    }

    /// Checks `serial_input` and `input_after`.
    fn check_input(&self) -> Result<()> {
        let name = &self.name;
        if let Some(d) = &self.disk {
            d.check_spec(name)?;
            if !self.qemu_args.iter().any(|a| a.contains("{disk}")) {
                bail!("test {name}: has a disk but no qemu_args argument names {{disk}}");
            }
        }
        self.check_fs_keys()?;
        crate::peer::placeholders(&self.port_args()).with_context(|| format!("test {name}"))?;
        if let Some(p) = &self.peer {
            p.check(name, &self.port_args())?;
        }
        if self.serial_input_repeat == 0 {
            bail!("test {name}: serial_input_repeat must be at least 1");
        }
        if let Some(l) = &self.later_input {
            if self.serial_input.is_none()
                || l.input.is_empty()
                || !(1..=60_000).contains(&l.after_ms)
            {
                bail!(
                    "test {name}: later_input goes with serial_input, holds bytes, and comes \
                     1 to 60000 ms after it"
                );
            }
        }
        if self.script.is_some() {
            if self.serial_input.is_some()
                || self.com2_input.is_some()
                || self.serial_input_repeat != 1
            {
                bail!(
                    "test {name}: script is what the harness types: no serial_input, \
                     com2_input nor serial_input_repeat with it"
                );
            }
            if self.input_after.as_deref().is_none_or(str::is_empty) {
                bail!(
                    "test {name}: script needs input_after, the shell's prompt after which \
                     the harness types it"
                );
            }
            return Ok(());
        }
        if self
            .com2_input
            .as_ref()
            .is_some_and(|c| c.is_empty() || self.serial_input.is_none())
        {
            bail!("test {name}: com2_input must not be empty and goes with serial_input");
        }
        match (&self.serial_input, &self.input_after) {
            (None, None) => Ok(()),
            (Some(_), None) => bail!(
                "test {name}: serial_input needs input_after, the substring of the serial \
                 output after which the harness writes serial_input"
            ),
            (None, Some(_)) => bail!(
                "test {name}: input_after is set but serial_input is not; input_after only \
                 says when to write serial_input"
            ),
            (Some(input), Some(after)) => {
                if input.is_empty() {
                    bail!("test {name}: serial_input is empty");
                }
                if after.is_empty() {
                    bail!(
                        "test {name}: input_after is empty; it must be text the guest \
                         prints once it is ready for input"
                    );
                }
                if let Some(at) = input.bytes().position(|b| b == qemu::MONITOR_ESCAPE) {
                    bail!(
                        "test {name}: serial_input contains byte 0x01 (Ctrl-A) at byte {at}; \
                         with `-serial mon:stdio` it is QEMU's escape character, which QEMU \
                         would take (with the next byte) as a command and never pass to the guest"
                    );
                }
                Ok(())
            }
        }
    }
}

impl TestSpec {
    /// Checks fs_check, damage and reboot.
    fn check_fs_keys(&self) -> Result<()> {
        let name = &self.name;
        let ext2 = self.disk.as_ref().and_then(|d| d.ext2.as_deref());
        if let Some(check) = &self.fs_check {
            if ext2.is_none() {
                bail!(
                    "test {name}: fs_check needs an ext2 disk (disk = {{ ext2 = \"...\", ... }})"
                );
            }
            if let Some(tree) = &check.tree {
                if kaal_test_patterns::fs::tree(tree).is_none() {
                    bail!("test {name}: fs_check tree {tree:?} is no tree");
                }
            }
        }
        crate::disk::damages(name, &self.damage)?;
        if !self.damage.is_empty() && ext2 != Some("corrupt") {
            bail!("test {name}: damage is done to the `corrupt` tree's image (disk = {{ ext2 = \"corrupt\", ... }})");
        }
        if let Some(r) = &self.reboot {
            if self.expect != Expect::Pass
                || self.serial_input.is_some()
                || self.script.is_some()
                || self.gdb.is_some()
                || r.serial.is_empty()
                || r.timeout_secs == Some(0)
            {
                bail!(
                    "test {name}: reboot needs expect = \"pass\", no serial_input, script \
                     nor gdb, and its own non-empty serial list"
                );
            }
        }
        Ok(())
    }

    /// The test as its second boot is judged: reboot's serial lines.
    fn rebooted(&self, r: &Reboot) -> TestSpec {
        TestSpec {
            name: format!("{}-reboot", self.name),
            serial: r.serial.clone(),
            ordered: r.ordered,
            timeout_secs: r.timeout_secs.unwrap_or(self.timeout_secs),
            reboot: None,
            // The peer talks to the first boot only.
            peer: None,
            ..self.clone()
        }
    }

    /// The test's extra QEMU arguments, with its disk image (if it has one)
    /// made fresh and named where they say `{disk}`; and the image's path.
    pub fn devices(&self, layout: &Layout) -> Result<(Vec<String>, PathBuf)> {
        self.devices_and_ports(layout)
            .map(|(args, disk, _)| (args, disk))
    }

    /// [`Self::devices`], with a free host port where they say `{tcp:N}` or
    /// `{udp:N}`; and those ports.
    pub fn devices_and_ports(
        &self,
        layout: &Layout,
    ) -> Result<(Vec<String>, PathBuf, crate::peer::Ports)> {
        let disk = layout
            .log(&format!("disk-{}", self.name))
            .with_extension("img");
        if let Some(d) = &self.disk {
            let damage = crate::disk::damages(&self.name, &self.damage)?;
            d.create(layout, &disk, &damage)?;
        }
        let path = disk.display().to_string();
        let ports = crate::peer::Ports::allocate(&self.port_args())?;
        let mut args: Vec<String> = self
            .qemu_args
            .iter()
            .map(|a| ports.substitute(&a.replace("{disk}", &path)))
            .collect();
        if self.com2_input.is_some() {
            let socket = self.com2_socket(layout);
            // A socket left by an earlier run would make QEMU fail to listen.
            let _ = fs::remove_file(&socket);
            args.extend([
                "-chardev".to_owned(),
                format!(
                    "socket,id=com2,path={},server=on,wait=off",
                    socket.display()
                ),
                "-serial".to_owned(),
                "chardev:com2".to_owned(),
            ]);
        }
        Ok((args, disk, ports))
    }

    /// Where QEMU listens for the harness's COM2 connection.
    pub fn com2_socket(&self, layout: &Layout) -> PathBuf {
        layout
            .log(&format!("com2-{}", self.name))
            .with_extension("sock")
    }
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
    /// The system runs on: the test passes once every `serial` line has
    /// appeared, and QEMU is then stopped; any exit before that fails.
    Running,
}

impl Expect {
    /// The QEMU status the image must end with; `None` for a system that
    /// runs on.
    fn status(self) -> Option<i32> {
        match self {
            Self::Pass => Some(STATUS_SUCCESS),
            Self::Fail => Some(STATUS_FAILURE),
            Self::Running => None,
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
        test.check_input()?;
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

/// What became of a test's `serial_input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The test has no `serial_input`.
    NotRequested,
    /// `input_after` never appeared in the serial output, so nothing was written.
    NotSent,
    /// All of `serial_input` was written to QEMU's stdin.
    Sent,
    /// QEMU exited (its stdin closed) after taking only `written` of the `total` bytes:
    /// the guest ended before reading the rest, so its status and serial output decide.
    Cut { written: usize, total: usize },
    /// Writing failed otherwise, for this reason.
    Failed(String),
}

/// Judges one run: `Ok` if it ended as `spec` expects, its serial input (if any) went out
/// (or QEMU exited while taking it) and it printed every `serial` line.
pub fn verdict(
    ending: Ending,
    serial_log: &str,
    delivery: &Delivery,
    spec: &TestSpec,
) -> Result<(), String> {
    let status_problem = match (ending, spec.expect.status()) {
        (Ending::TimedOut(limit), _) => Some(format!("timed out after {}s", limit.as_secs())),
        (Ending::Signalled, _) => Some("QEMU was killed by a signal".to_owned()),
        (Ending::Exited(status), Some(expected)) if status != expected => Some(format!(
            "QEMU exited with {}, expected {}",
            qemu::explain_status(status),
            qemu::explain_status(expected)
        )),
        (Ending::Exited(status), None) => Some(format!(
            "QEMU exited with {} before every serial line appeared",
            qemu::explain_status(status)
        )),
        (Ending::Stopped, Some(_)) => Some("QEMU was stopped early".to_owned()),
        (Ending::Exited(_), Some(_)) | (Ending::Stopped, None) => None,
    };
    let input_problem = match delivery {
        Delivery::NotSent => spec.input_after.as_ref().map(|after| {
            format!(
                "serial_input was never sent: the serial output never showed input_after \
                 {after:?}"
            )
        }),
        Delivery::Failed(why) => Some(format!("serial_input was not fully sent: {why}")),
        // The image ended without reading the rest: only worth saying on a failed run.
        Delivery::Cut { written, total } if status_problem.is_some() => Some(format!(
            "QEMU exited after taking {written} of the {total} bytes of serial_input"
        )),
        Delivery::NotRequested | Delivery::Sent | Delivery::Cut { .. } => None,
    };
    match (status_problem, input_problem) {
        (Some(status), Some(input)) => return Err(format!("{status}; {input}")),
        (Some(problem), None) | (None, Some(problem)) => return Err(problem),
        (None, None) => {}
    }
    serial_lines(serial_log, spec)
}

/// Whether `serial_log` has every `serial` line of `spec` (in order, if it
/// says so).
fn serial_lines(serial_log: &str, spec: &TestSpec) -> Result<(), String> {
    let missing: Vec<String> = spec
        .serial
        .iter()
        .filter(|needle| !serial_log.contains(needle.as_str()))
        .map(|needle| format!("{needle:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("serial log lacks {}", missing.join(", ")));
    }
    if spec.ordered {
        let mut from = 0;
        for needle in &spec.serial {
            match serial_log
                .get(from..)
                .and_then(|rest| rest.find(needle.as_str()))
            {
                Some(at) => from += at + needle.len(),
                None => {
                    return Err(format!(
                        "serial log has {needle:?} only before the line it must follow"
                    ))
                }
            }
        }
    }
    Ok(())
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

/// Boots one test image (twice, with `reboot`), then checks its disk;
/// `Err(reason)` when the test failed.
fn run_one(layout: &Layout, images: &Images, spec: &TestSpec) -> Result<Result<(), String>> {
    let image = match images.existing(&spec.image) {
        Ok(image) => image,
        Err(err) => return Ok(Err(format!("{err:#}"))),
    };
    let (extra, disk_path, ports) = match spec.devices_and_ports(layout) {
        Ok(devices) => devices,
        Err(err) => return Ok(Err(format!("making the disk or the forwards: {err:#}"))),
    };
    let mut result = boot_once(layout, images, spec, &image, extra.clone(), &ports)?;
    if let (Ok(()), Some(r)) = (&result, &spec.reboot) {
        // The same machine, disk and forwards, as it was left.
        result = boot_once(layout, images, &spec.rebooted(r), &image, extra, &ports)?
            .map_err(|why| format!("after the reboot: {why}"));
    }
    if let (Ok(()), Some(d)) = (&result, &spec.disk) {
        result = d.verify(&disk_path, spec.fs_check.as_ref())?;
        if let Err(why) = &result {
            println!("---- {}: disk {} ----", spec.name, disk_path.display());
            println!("{}", step::printable(why));
            println!("---- end of {} ----", spec.name);
        }
    }
    if let (Ok(()), Some(peer)) = (&result, &spec.linux_peer) {
        let log = layout.log(&format!("system-{}", spec.name));
        let kaal = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
        let (extra, _) = spec.devices(layout)?;
        result = crate::linux_peer::judge(
            layout,
            &spec.name,
            peer,
            extra,
            &String::from_utf8_lossy(&kaal),
        )?;
    }
    Ok(result)
}

/// One boot of `image` with QEMU arguments `extra`, judged by `spec`; its
/// log is `system-<spec.name>.log`.
fn boot_once(
    layout: &Layout,
    images: &Images,
    spec: &TestSpec,
    image: &Path,
    mut extra: Vec<String>,
    ports: &crate::peer::Ports,
) -> Result<Result<(), String>> {
    // A script becomes the test's serial input; the ports it names are
    // written in.
    let typed;
    let spec = match &spec.script {
        Some(script) => match crate::script::typed_from(layout, script) {
            Ok(input) => {
                typed = TestSpec {
                    serial_input: Some(input),
                    ..spec.clone()
                };
                &typed
            }
            Err(err) => return Ok(Err(format!("{err:#}"))),
        },
        None => match spec.serial_input.as_ref().map(|i| (ports.substitute(i), i)) {
            Some((substituted, input)) if substituted != *input => {
                typed = TestSpec {
                    serial_input: Some(substituted),
                    ..spec.clone()
                };
                &typed
            }
            _ => spec,
        },
    };
    let log = layout.log(&format!("system-{}", spec.name));
    let step = Step::start(format!("test {}", spec.name), &log)?;
    let image = image.to_path_buf();
    let gdb = match &spec.gdb {
        Some(g) => {
            let (gdb, args) =
                crate::gdb::PreparedSession::new(layout, images, &spec.name, g, &image, &log)?;
            extra.extend(args);
            Some(gdb)
        }
        None => None,
    };
    let options = qemu::Options {
        extra,
        ..qemu::Options::default()
    };
    let mut cmd = qemu::command(&layout.kernel32(), &image, &options);
    step.note(&format!("$ {}", step::describe(&cmd)))?;
    // gdb retries connecting until QEMU's stub listens.
    let gdb = gdb.map(crate::gdb::PreparedSession::start).transpose()?;
    let start = log_len(&log)?;
    let timeout = Duration::from_secs(spec.timeout_secs);
    // A system that runs on is stopped once its log has every line (and
    // its peer passed); any test once its peer failed. The peer starts
    // once its line appeared. Only what was appended since the last look
    // is read.
    let peer = std::cell::RefCell::new(spec.peer.as_ref().map(|p| {
        let log = layout.log(&format!("peer-{}", spec.name));
        crate::peer::Runner::new(p, ports.clone(), log)
    }));
    let read_so_far = std::cell::RefCell::new((start, Vec::new()));
    let seen = || {
        let mut guard = read_so_far.borrow_mut();
        let (offset, text) = &mut *guard;
        if let Ok(mut file) = File::open(&log) {
            use std::io::Seek;
            if file.seek(io::SeekFrom::Start(*offset as u64)).is_ok() {
                if let Ok(n) = file.read_to_end(text) {
                    *offset += n;
                }
            }
        }
        stop_now(
            spec,
            peer.borrow_mut().as_mut(),
            &String::from_utf8_lossy(text),
        )
    };
    let stop_when: Option<&dyn Fn() -> bool> =
        (spec.expect == Expect::Running || spec.peer.is_some()).then_some(&seen);
    let com2 = spec.com2_socket(layout);
    let input = spec.input().map(|i| (i, com2.as_path()));
    let (ending, delivery) = run_with_input(&mut cmd, &log, input, timeout, stop_when)?;
    step.clear();
    let bytes = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let raw = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default());
    // Each fault report is followed by its function, file and line, in the
    // log and in what the verdict reads.
    let serial = symbolize_log(&raw, images);
    if serial != raw {
        let mut whole = bytes.get(..start).unwrap_or_default().to_vec();
        whole.extend_from_slice(serial.as_bytes());
        fs::write(&log, whole).with_context(|| format!("writing {}", log.display()))?;
    }
    let mut result = verdict(ending, &serial, &delivery, spec);
    let mut script_diff = None;
    if let (Ok(()), Some(script)) = (&result, &spec.script) {
        if let Err(m) = crate::script::check(layout, &spec.name, script, &serial)? {
            script_diff = m.diff.map(|diff| (script, diff));
            result = Err(m.reason);
        }
    }
    if let Some(p) = peer.into_inner() {
        let name = p.name();
        if let Err(why) = p.finish(&serial) {
            // The peer's failure is the story; QEMU stopped for it says nothing more.
            result = Err(match result {
                Err(other) if ending != Ending::Stopped => {
                    format!("peer {name}: {why}; {other}")
                }
                _ => format!("peer {name}: {why}"),
            });
        }
    }
    let gdb_tail = match gdb {
        Some(gdb) => {
            let shown = gdb.output().display().to_string();
            let (judged, tail) = gdb.finish()?;
            if result.is_ok() {
                result = judged;
            }
            Some((shown, tail))
        }
        None => None,
    };
    // After the verdict read the log, so that no `serial` substring can match this note.
    match delivery {
        Delivery::Sent => {
            let sent = spec
                .input()
                .map_or(0, |input| input.bytes.len() * input.repeat);
            append_note(&log, &format!("[xtask] serial_input: {sent} bytes written"))?;
        }
        Delivery::Cut { written, total } => append_note(
            &log,
            &format!("[xtask] serial_input: {written} of {total} bytes written, then QEMU exited"),
        )?,
        Delivery::NotRequested | Delivery::NotSent | Delivery::Failed(_) => {}
    }
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
        if let Some((shown, tail)) = gdb_tail {
            println!("---- {}: gdb output {shown} ----", spec.name);
            println!("{}", step::printable(&tail));
            println!("---- end of gdb output ----");
        }
        // Last, nearest the verdict.
        if let Some((script, diff)) = script_diff {
            crate::script::print_diff(&spec.name, script, &diff);
        }
    }
    Ok(result)
}

/// Whether a running QEMU is to be stopped, given its serial output so far:
/// once the test's peer failed; a system that runs on once every `serial`
/// line appeared and its peer (if any) passed. Feeds the peer the output
/// (it starts once its `after` line appeared).
fn stop_now(spec: &TestSpec, peer: Option<&mut crate::peer::Runner>, serial: &str) -> bool {
    let peer_passed = match peer {
        None => Some(true),
        Some(p) => p.poll(serial).map(Result::is_ok),
    };
    match peer_passed {
        Some(false) => true,
        Some(true) => spec.expect == Expect::Running && serial_lines(serial, spec).is_ok(),
        None => false,
    }
}

/// `serial` with each fault report followed by its function, file and line.
fn symbolize_log(serial: &str, images: &Images) -> String {
    let mut symbolizer = crate::symbolize::Symbolizer::new(|program| images.path(program));
    let mut out = Vec::new();
    crate::symbolize::pass_through(serial.as_bytes(), &mut out, &mut symbolizer).map_or_else(
        |_| serial.to_owned(),
        |()| String::from_utf8_lossy(&out).into_owned(),
    )
}

fn log_len(log: &Path) -> Result<usize> {
    let len = fs::metadata(log)
        .with_context(|| format!("inspecting {}", log.display()))?
        .len();
    usize::try_from(len).context("log file too large")
}

fn open_log(log: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))
}

fn append_note(log: &Path, line: &str) -> Result<()> {
    writeln!(open_log(log)?, "{line}").with_context(|| format!("writing {}", log.display()))
}

/// Runs `cmd` (QEMU) with its stdout and stderr appended to `log`, killing it after
/// `timeout`.
///
/// Stderr goes to `log` directly; a reader thread copies stdout there. Without `input`,
/// stdin is null. With `input`, stdin is a pipe: the reader also signals once
/// `input.after` has appeared on stdout, and a writer thread then writes `input.bytes` in
/// chunks of [`INPUT_CHUNK`] bytes, [`INPUT_PAUSE`] apart; stdin stays open until the
/// process ended. Meanwhile this thread only waits for the process and its time limit.
fn run_with_input(
    cmd: &mut Command,
    log: &Path,
    input: Option<(Input<'_>, &Path)>,
    timeout: Duration,
    stop_when: Option<&dyn Fn() -> bool>,
) -> Result<(Ending, Delivery)> {
    let stderr = open_log(log)?;
    let stdout_log = open_log(log)?;
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(stderr);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{}`", step::describe(cmd)))?;
    let started = Instant::now();
    let (reader, writer) = match start_pumps(&mut child, stdout_log, input) {
        Ok(pumps) => pumps,
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err);
        }
    };

    let mut timed_out = false;
    let ending = loop {
        let status = match child.try_wait() {
            Ok(status) => status,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!(err).context("waiting for QEMU"));
            }
        };
        if let Some(status) = status {
            break status.code().map_or(Ending::Signalled, Ending::Exited);
        }
        if stop_when.is_some_and(|done| done()) {
            let _ = child.kill();
            child.wait().context("reaping a stopped QEMU")?;
            break Ending::Stopped;
        }
        if started.elapsed() >= timeout {
            // It may have exited just now; either way, reap it.
            let _ = child.kill();
            child.wait().context("reaping a killed QEMU")?;
            timed_out = true;
            break Ending::TimedOut(timeout);
        }
        thread::sleep(POLL_INTERVAL);
    };

    // The process is gone, so its stdout reaches end of file: the reader ends, and with
    // it a writer still waiting for `input.after`; a writer still writing gets an error.
    // Only a grandchild holding the pipes open could keep them running.
    let deadline = Instant::now() + DRAIN_GRACE;
    while !(reader.is_finished() && writer.as_ref().is_none_or(JoinHandle::is_finished))
        && Instant::now() < deadline
    {
        thread::sleep(POLL_INTERVAL);
    }
    if reader.is_finished() {
        match reader.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => append_note(log, &format!("[xtask] reading QEMU's output: {err}"))?,
            Err(_) => bail!(
                "the thread copying QEMU's output to {} panicked",
                log.display()
            ),
        }
    } else {
        append_note(
            log,
            "[xtask] QEMU's output was still open; this log may be incomplete",
        )?;
    }
    let delivery = match writer {
        None => Delivery::NotRequested,
        Some(writer) if writer.is_finished() => match writer.join() {
            // Stdin closes here, after the process ended.
            Ok((delivery, _held)) => delivery,
            Err(_) => bail!("the thread writing serial_input panicked"),
        },
        Some(_) => Delivery::Failed("the writer was still blocked when QEMU ended".to_owned()),
    };
    if timed_out {
        append_note(log, &format!("[xtask] killed after {}s", timeout.as_secs()))?;
    }
    Ok((ending, delivery))
}

/// The output reader and, with `input`, the input writer.
type Pumps = (
    JoinHandle<io::Result<()>>,
    Option<JoinHandle<(Delivery, Held)>>,
);

/// What the input writer keeps open until QEMU has ended: its stdin, and
/// the COM2 connection.
type Held = (ChildStdin, Option<UnixStream>);

/// Starts the threads of [`run_with_input`].
fn start_pumps(child: &mut Child, log: File, input: Option<(Input<'_>, &Path)>) -> Result<Pumps> {
    let stdout = child.stdout.take().context("QEMU's stdout is not a pipe")?;
    let Some(input) = input else {
        let reader = thread::Builder::new()
            .name("qemu-output".to_owned())
            .spawn(move || copy_output(stdout, log, None))
            .context("starting the output reader")?;
        return Ok((reader, None));
    };
    let (input, com2_socket) = input;
    let stdin = child.stdin.take().context("QEMU's stdin is not a pipe")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let watch = Watch::new(input.after);
    let reader = thread::Builder::new()
        .name("qemu-output".to_owned())
        .spawn(move || copy_output(stdout, log, Some((watch, ready_tx))))
        .context("starting the output reader")?;
    let bytes = input.all_bytes();
    let com2 = input.com2.map(|b| (com2_socket.to_path_buf(), b.to_vec()));
    let later = input.later.map(|(d, b)| (d, b.to_vec()));
    let writer = thread::Builder::new()
        .name("qemu-input".to_owned())
        .spawn(move || {
            let (delivery, mut stdin) = feed_input(stdin, &bytes, &ready_rx, INPUT_PAUSE);
            let delivery = match (delivery, later) {
                (Delivery::Sent, Some((after, bytes))) => {
                    thread::sleep(after);
                    write_chunked(&mut stdin, &bytes, INPUT_PAUSE)
                }
                (delivery, _) => delivery,
            };
            match (delivery, com2) {
                (Delivery::Sent, Some((socket, bytes))) => {
                    let (delivery, stream) = feed_com2(&socket, &bytes);
                    (delivery, (stdin, stream))
                }
                (delivery, _) => (delivery, (stdin, None)),
            }
        })
        .context("starting the input writer")?;
    Ok((reader, Some(writer)))
}

/// Copies `from` to `log` until end of file; with a watch, sends one message once its
/// needle has gone by (after the bytes holding it are in the log).
fn copy_output(
    mut from: impl Read,
    mut log: impl Write,
    mut watch: Option<(Watch, Sender<()>)>,
) -> io::Result<()> {
    let mut buf = [0_u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let data = buf.get(..n).unwrap_or_default();
        log.write_all(data)?;
        if let Some((needle, ready)) = &mut watch {
            if needle.feed(data) {
                // The writer may be gone already; nothing to tell then.
                let _ = ready.send(());
                watch = None;
            }
        }
    }
}

/// Waits for the signal of [`copy_output`], then writes `bytes` to `stdin` in chunks.
/// Returns `stdin` unclosed, so that the caller closes it only once QEMU ended.
fn feed_input<W: Write>(
    mut stdin: W,
    bytes: &[u8],
    ready: &Receiver<()>,
    pause: Duration,
) -> (Delivery, W) {
    // An error means the reader ended (QEMU's output closed) without the signal.
    if ready.recv().is_err() {
        return (Delivery::NotSent, stdin);
    }
    let delivery = write_chunked(&mut stdin, bytes, pause);
    (delivery, stdin)
}

/// Writes `bytes` to the guest's COM2 through QEMU's socket. Returns the
/// connection unclosed: QEMU drops what it has not yet passed to the guest
/// when the connection closes.
fn feed_com2(socket: &Path, bytes: &[u8]) -> (Delivery, Option<UnixStream>) {
    match UnixStream::connect(socket) {
        Ok(mut stream) => (write_chunked(&mut stream, bytes, INPUT_PAUSE), Some(stream)),
        Err(err) => (
            Delivery::Failed(format!("connecting to COM2 at {}: {err}", socket.display())),
            None,
        ),
    }
}

/// Writes `bytes` in chunks of [`INPUT_CHUNK`] bytes, `pause` apart.
fn write_chunked(to: &mut impl Write, bytes: &[u8], pause: Duration) -> Delivery {
    let mut written = 0;
    for (i, chunk) in bytes.chunks(INPUT_CHUNK).enumerate() {
        if i > 0 {
            thread::sleep(pause);
        }
        if let Err(err) = to.write_all(chunk).and_then(|()| to.flush()) {
            if err.kind() == io::ErrorKind::BrokenPipe {
                return Delivery::Cut {
                    written,
                    total: bytes.len(),
                };
            }
            return Delivery::Failed(format!(
                "writing to QEMU's stdin failed after {written} of {} bytes: {err}",
                bytes.len()
            ));
        }
        written += chunk.len();
    }
    Delivery::Sent
}

/// Finds a needle in a stream of bytes that arrives in pieces.
#[derive(Debug)]
struct Watch {
    needle: Vec<u8>,
    /// The end of what was fed so far: the bytes a later match could start in.
    tail: Vec<u8>,
}

impl Watch {
    fn new(needle: &[u8]) -> Self {
        Self {
            needle: needle.to_vec(),
            tail: Vec::new(),
        }
    }

    /// Feeds the next piece; `true` once the needle has appeared.
    fn feed(&mut self, data: &[u8]) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        self.tail.extend_from_slice(data);
        if self
            .tail
            .windows(self.needle.len())
            .any(|window| window == self.needle.as_slice())
        {
            return true;
        }
        let keep = self.needle.len() - 1;
        let cut = self.tail.len().saturating_sub(keep);
        self.tail.drain(..cut);
        false
    }
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
            serial_input: None,
            input_after: None,
            serial_input_repeat: 1,
            com2_input: None,
            later_input: None,
            disk: None,
            ordered: false,
            gdb: None,
            fs_check: None,
            damage: Vec::new(),
            reboot: None,
            peer: None,
            script: None,
            linux_peer: None,
        }
    }

    fn with_input(spec: TestSpec, input: &str, after: &str) -> TestSpec {
        TestSpec {
            serial_input: Some(input.to_owned()),
            input_after: Some(after.to_owned()),
            ..spec
        }
    }

    const NO_INPUT: &Delivery = &Delivery::NotRequested;

    const BOOT_LOG: &str = "Booting all finished, dropped to user space\nKaAL: x\nKaaL: boot OK\n";

    #[test]
    fn pass_when_status_and_serial_match() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK"]);
        assert_eq!(
            verdict(Ending::Exited(33), BOOT_LOG, NO_INPUT, &spec),
            Ok(())
        );
    }

    #[test]
    fn failure_status_fails_a_pass_test() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK"]);
        let reason = verdict(Ending::Exited(35), BOOT_LOG, NO_INPUT, &spec).err();
        assert!(reason.is_some_and(|r| r.contains("status 35") && r.contains("expected status 33")));
    }

    #[test]
    fn a_running_system_passes_only_when_stopped_after_every_line() {
        let spec = spec(Expect::Running, &["sleeper: slept", "motd:"]);
        let log = "sleeper: slept 100 ms\nmotd: Welcome\n";
        assert_eq!(
            verdict(Ending::Stopped, log, &Delivery::NotRequested, &spec),
            Ok(())
        );
        // An exit, even a clean one, is not what a running system does.
        let exited = verdict(Ending::Exited(33), log, &Delivery::NotRequested, &spec);
        assert!(exited.is_err_and(|e| e.contains("before every serial line")));
        let timed_out = verdict(
            Ending::TimedOut(Duration::from_secs(60)),
            "sleeper: slept 100 ms\n",
            &Delivery::NotRequested,
            &spec,
        );
        assert!(timed_out.is_err_and(|e| e.contains("timed out")));
        // A test that expects an exit fails if it was stopped instead.
        let pass = super::tests::spec(Expect::Pass, &[]);
        assert!(verdict(Ending::Stopped, "", &Delivery::NotRequested, &pass).is_err());
    }

    #[test]
    fn ordered_lines_must_come_in_order() {
        let mut s = spec(Expect::Pass, &["first", "second"]);
        s.ordered = true;
        let ok = Ending::Exited(STATUS_SUCCESS);
        let none = Delivery::NotRequested;
        assert_eq!(verdict(ok, "first then second", &none, &s), Ok(()));
        let err = verdict(ok, "second then first", &none, &s).unwrap_err();
        assert!(err.contains("only before"), "{err}");
        s.ordered = false;
        assert_eq!(verdict(ok, "second then first", &none, &s), Ok(()));
    }

    #[test]
    fn missing_serial_line_fails() {
        let spec = spec(Expect::Pass, &["KaaL: boot OK", "untyped"]);
        assert_eq!(
            verdict(Ending::Exited(33), BOOT_LOG, NO_INPUT, &spec),
            Err("serial log lacks \"untyped\"".to_owned())
        );
    }

    #[test]
    fn timeout_is_its_own_failure() {
        let spec = spec(Expect::Pass, &[]);
        assert_eq!(
            verdict(
                Ending::TimedOut(Duration::from_secs(60)),
                BOOT_LOG,
                NO_INPUT,
                &spec
            ),
            Err("timed out after 60s".to_owned())
        );
        // Even a test expecting failure does not pass by hanging.
        let spec = super::tests::spec(Expect::Fail, &[]);
        assert!(verdict(
            Ending::TimedOut(Duration::from_secs(5)),
            "",
            NO_INPUT,
            &spec
        )
        .is_err());
    }

    #[test]
    fn expected_failure_passes_only_on_the_failure_status() {
        let spec = spec(Expect::Fail, &["panicked at"]);
        let log = "panicked at tests/system/src/bin/panic_on_purpose.rs:9:5\n";
        assert_eq!(verdict(Ending::Exited(35), log, NO_INPUT, &spec), Ok(()));
        assert!(verdict(Ending::Exited(33), log, NO_INPUT, &spec).is_err());
        assert!(verdict(Ending::Exited(0), log, NO_INPUT, &spec).is_err());
        assert!(verdict(Ending::Signalled, log, NO_INPUT, &spec).is_err());
        assert!(verdict(Ending::Exited(35), "no panic here", NO_INPUT, &spec).is_err());
    }

    /// `default_system` boots the disk of systems/default.toml's `[disk]`
    /// (what `cargo xtask run` attaches), and expects motd to print the
    /// first line of its /etc/motd: the line must be the file's, not a guess.
    #[test]
    fn default_system_expects_the_manifests_disk() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = load(&layout.tests_toml())?;
        let t = tests
            .iter()
            .find(|t| t.name == "default_system")
            .context("default_system is listed")?;
        let disk = t.disk.as_ref().context("default_system has a disk")?;
        assert_eq!(disk.system.as_deref(), Some("default"));
        let dir = std::env::temp_dir().join(format!("kaal-default-disk-{}", std::process::id()));
        let img = dir.join("d.img");
        disk.create(&layout, &img, &[])?;
        let motd = fs::read_to_string(layout.root.join("systems/rootfs/etc/motd"))?;
        let line = format!("motd: {}", motd.lines().next().unwrap_or_default());
        assert!(
            t.serial.contains(&line),
            "default_system should expect {line:?}"
        );
        // The files of systems/rootfs are on it.
        assert_eq!(crate::ext2::fsck(&img)?, Ok(()));
        let motd = crate::ext2::debugfs(&img, "cat /etc/motd")?;
        assert_eq!(
            motd,
            fs::read_to_string(layout.root.join("systems/rootfs/etc/motd"))?
        );
        // Owned by root, whoever built it.
        let stat = crate::ext2::debugfs(&img, "stat /etc/motd")?;
        assert!(stat.contains("User:     0   Group:     0"), "{stat}");
        // `linux = true`: the userland beside them, and the folder's own
        // /etc/profile rather than the userland's.
        let sh = crate::ext2::debugfs(&img, "stat /bin/sh")?;
        assert!(sh.contains("Type: symlink"), "{sh}");
        let busybox = crate::ext2::debugfs(&img, "stat /bin/busybox")?;
        assert!(busybox.contains("Mode:  0755"), "{busybox}");
        assert_eq!(
            crate::ext2::debugfs(&img, "cat /etc/profile")?,
            fs::read_to_string(layout.root.join("systems/rootfs/etc/profile"))?
        );
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// `fault_symbolized` expects the line misbehave.rs marks as faulting.
    #[test]
    fn fault_symbolized_expects_the_marked_line() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = load(&layout.tests_toml())?;
        let t = tests
            .iter()
            .find(|t| t.name == "fault_symbolized")
            .context("fault_symbolized is listed")?;
        let source = "tests/components/src/bin/misbehave.rs";
        let text = fs::read_to_string(layout.root.join(source))?;
        let line = text
            .lines()
            .position(|l| l.contains("// FAULTS HERE"))
            .context("misbehave.rs marks its faulting line")?
            + 1;
        let site = format!("KaaL:   in misbehave::read_address_zero ({source}:{line})");
        assert!(
            t.serial.contains(&site),
            "fault_symbolized should expect {site:?}"
        );
        Ok(())
    }

    #[test]
    fn the_real_manifest_parses() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = load(&layout.tests_toml())?;
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        // Other tests get added; these four must stay, in this order.
        let original = [
            "boot_summary",
            "ipc_roundtrip",
            "notification_signal_wait",
            "panic_is_reported",
        ];
        let kept: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| original.contains(n))
            .collect();
        assert_eq!(kept, original);
        let panic = tests
            .iter()
            .find(|t| t.name == "panic_is_reported")
            .context("panic_is_reported is listed")?;
        assert_eq!(panic.image, "panic_on_purpose");
        assert_eq!(panic.expect, Expect::Fail);
        assert_eq!(panic.serial, ["panicked at"]);
        assert!(tests
            .iter()
            .filter(|t| original.contains(&t.name.as_str()) && t.name != "panic_is_reported")
            .all(|t| t.expect == Expect::Pass && t.input().is_none()));
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

    // ---- serial_input and input_after in the manifest ----

    fn parse_one(keys: &str) -> Result<Vec<TestSpec>> {
        parse_manifest(&format!("[[test]]\nname = \"a\"\nimage = \"b\"\n{keys}"))
    }

    fn parse_error(keys: &str) -> String {
        match parse_one(keys) {
            Ok(tests) => panic!("{keys:?} was accepted: {tests:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn serial_input_with_input_after_parses() -> Result<()> {
        let tests = parse_one("serial_input = \"ping\\r\\n\"\ninput_after = \"ready>\"\n")?;
        let test = tests.first().context("one test")?;
        assert_eq!(test.serial_input.as_deref(), Some("ping\r\n"));
        assert_eq!(
            test.input(),
            Some(Input {
                bytes: b"ping\r\n",
                after: b"ready>",
                repeat: 1,
                com2: None,
                later: None,
            })
        );
        assert_eq!(parse_one("")?.first().and_then(TestSpec::input), None);
        Ok(())
    }

    // ---- ext2 disks: fs_check, damage, reboot ----

    const EXT2_DISK: &str = "qemu_args = [\"{disk}\"]\n";

    #[test]
    fn file_system_keys_parse() -> Result<()> {
        let tests = parse_one(&format!(
            "{EXT2_DISK}disk = {{ bytes = 33554432, ext2 = \"corrupt\", block_size = 4096 }}\n\
             fs_check = {{ tree = \"host\" }}\n\
             damage = [\"huge_size\", \"directory_loop\"]\n\
             reboot = {{ serial = [\"again\"], timeout_secs = 30 }}\n"
        ))?;
        let t = tests.first().context("one test")?;
        let check = t.fs_check.as_ref().context("fs_check")?;
        assert!(check.fsck && check.tree.as_deref() == Some("host"));
        assert_eq!(t.damage, ["huge_size", "directory_loop"]);
        let r = t.reboot.as_ref().context("reboot")?;
        let again = t.rebooted(r);
        assert_eq!(again.name, "a-reboot");
        assert_eq!(again.serial, ["again"]);
        assert_eq!((again.timeout_secs, again.reboot.is_none()), (30, true));
        assert_eq!(again.disk, t.disk);
        Ok(())
    }

    #[test]
    fn file_system_keys_need_their_disk() {
        let host = format!("{EXT2_DISK}disk = {{ bytes = 4194304, ext2 = \"host\" }}\n");
        for (keys, why) in [
            (
                format!("{EXT2_DISK}disk = {{ bytes = 4194304 }}\nfs_check = {{ fsck = true }}\n"),
                "fs_check needs an ext2 disk",
            ),
            (
                format!("{host}fs_check = {{ tree = \"other\" }}\n"),
                "is no tree",
            ),
            (
                format!("{host}damage = [\"huge_size\"]\n"),
                "damage is done to the `corrupt` tree's image",
            ),
            (
                format!("{host}damage = [\"melted\"]\n"),
                "damage \"melted\" is unknown",
            ),
            (
                format!("{host}reboot = {{ serial = [] }}\n"),
                "reboot needs",
            ),
            (
                format!(
                    "{host}reboot = {{ serial = [\"x\"] }}\nserial_input = \"a\"\ninput_after = \"b\"\n"
                ),
                "reboot needs",
            ),
            (
                format!("{host}reboot = {{ serial = [\"x\"] }}\nexpect = \"fail\"\n"),
                "reboot needs",
            ),
        ] {
            let err = parse_error(&keys);
            assert!(err.contains(why), "{keys}: {err}");
        }
    }

    #[test]
    fn serial_input_repeats() -> Result<()> {
        let tests =
            parse_one("serial_input = \"ab\"\ninput_after = \"r\"\nserial_input_repeat = 3\n")?;
        let input = tests.first().and_then(TestSpec::input).context("input")?;
        assert_eq!(input.all_bytes(), b"ababab");
        let err =
            parse_error("serial_input = \"ab\"\ninput_after = \"r\"\nserial_input_repeat = 0\n");
        assert!(
            err.contains("serial_input_repeat must be at least 1"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn a_script_is_typed_after_its_prompt() -> Result<()> {
        let tests = parse_one("script = \"tests/linux/script.sh\"\ninput_after = \"# \"\n")?;
        let t = tests.first().context("one test")?;
        assert_eq!(t.script.as_deref(), Some("tests/linux/script.sh"));
        // The harness makes the input when the test runs.
        assert_eq!(t.input(), None);
        for (keys, why) in [
            ("script = \"s\"\n", "script needs input_after"),
            (
                "script = \"s\"\ninput_after = \"#\"\nserial_input = \"x\"\n",
                "no serial_input",
            ),
            (
                "script = \"s\"\ninput_after = \"#\"\nserial_input_repeat = 2\n",
                "no serial_input",
            ),
        ] {
            let err = parse_error(keys);
            assert!(err.contains(why), "{keys}: {err}");
        }
        Ok(())
    }

    #[test]
    fn serial_input_and_input_after_go_together() {
        let alone = parse_error("serial_input = \"x\"\n");
        assert!(
            alone.contains("test a: serial_input needs input_after"),
            "{alone}"
        );
        let alone = parse_error("input_after = \"ready\"\n");
        assert!(
            alone.contains("test a: input_after is set but serial_input is not"),
            "{alone}"
        );
    }

    #[test]
    fn ctrl_a_in_serial_input_is_rejected() {
        let err = parse_error("serial_input = \"ab\\u0001x\"\ninput_after = \"ready\"\n");
        assert!(
            err.contains("test a: serial_input contains byte 0x01 (Ctrl-A) at byte 2"),
            "{err}"
        );
        assert!(err.contains("mon:stdio"), "{err}");
        // Other control characters are fine.
        assert!(parse_one("serial_input = \"\\u0003\\u001b\\t\"\ninput_after = \"r\"\n").is_ok());
    }

    #[test]
    fn empty_serial_input_or_input_after_is_rejected() {
        let err = parse_error("serial_input = \"\"\ninput_after = \"ready\"\n");
        assert!(err.contains("serial_input is empty"), "{err}");
        let err = parse_error("serial_input = \"x\"\ninput_after = \"\"\n");
        assert!(err.contains("input_after is empty"), "{err}");
        // The wrong type is a parse error too.
        assert!(parse_one("serial_input = [1, 2]\ninput_after = \"r\"\n").is_err());
    }

    #[test]
    fn qemu_args_with_commas_stay_whole() -> Result<()> {
        let tests = parse_one(
            "qemu_args = [\"-device\", \"virtio-net-pci,netdev=n0\", \"-netdev\", \"user,id=n0\"]\n",
        )?;
        let test = tests.first().context("one test")?;
        assert_eq!(
            test.qemu_args,
            [
                "-device",
                "virtio-net-pci,netdev=n0",
                "-netdev",
                "user,id=n0"
            ]
        );
        Ok(())
    }

    // ---- peers and forwards ----

    const FORWARD_7: &str = "qemu_args = [\"-netdev\", \"user,id=n0,hostfwd=tcp:127.0.0.1:{tcp:7}-:7,hostfwd=udp:127.0.0.1:{udp:7}-:7\"]\n";

    #[test]
    fn peer_keys_parse_and_are_checked() -> Result<()> {
        let tests = parse_one(&format!(
            "{FORWARD_7}expect = \"running\"\n\
             peer = {{ program = \"tcp_echo\", after = \"net_echo: listening\", timeout_secs = 90 }}\n"
        ))?;
        let t = tests.first().context("one test")?;
        let p = t.peer.as_ref().context("peer")?;
        assert_eq!(
            (p.program, p.after.as_str(), p.timeout_secs),
            (crate::peer::Program::TcpEcho, "net_echo: listening", 90)
        );
        // The peer is the first boot's only.
        let reboot = Reboot {
            serial: vec!["x".into()],
            ordered: false,
            timeout_secs: None,
        };
        assert_eq!(t.rebooted(&reboot).peer, None);
        let defaults = parse_one(&format!(
            "{FORWARD_7}peer = {{ program = \"udp_echo\", after = \"up\" }}\n"
        ))?;
        assert_eq!(
            defaults
                .first()
                .and_then(|t| t.peer.as_ref())
                .map(|p| p.timeout_secs),
            Some(120)
        );
        for (keys, why) in [
            (
                format!("{FORWARD_7}peer = {{ program = \"ftp\", after = \"x\" }}\n"),
                "unknown variant `ftp`",
            ),
            (
                format!("{FORWARD_7}peer = {{ program = \"http\", after = \"x\", port = 80 }}\n"),
                "unknown field `port`",
            ),
            (
                format!("{FORWARD_7}peer = {{ program = \"http\", after = \"x\" }}\n"),
                "peer http talks to tcp port 80, but no qemu_args argument or serial_input names it ({tcp:80})",
            ),
            (
                format!("{FORWARD_7}peer = {{ program = \"tcp_echo\", after = \"\" }}\n"),
                "peer.after is empty",
            ),
            (
                format!("{FORWARD_7}peer = {{ program = \"tcp_echo\", after = \"x\", timeout_secs = 0 }}\n"),
                "peer.timeout_secs must be at least 1",
            ),
            (
                "qemu_args = [\"hostfwd=tcp:127.0.0.1:{tcp:99999}-:7\"]\n".to_owned(),
                "{tcp:99999} names no guest port",
            ),
        ] {
            let err = parse_error(&keys);
            assert!(err.contains(why), "{keys}: {err}");
        }
        Ok(())
    }

    #[test]
    fn forwards_get_free_host_ports_in_the_qemu_arguments() -> Result<()> {
        let tests = parse_one(FORWARD_7)?;
        let t = tests.first().context("one test")?;
        let (args, _, ports) = t.devices_and_ports(&Layout::from_build()?)?;
        let (tcp, udp) = (
            ports.host(crate::peer::Proto::Tcp, 7)?,
            ports.host(crate::peer::Proto::Udp, 7)?,
        );
        assert_eq!(
            args,
            [
                "-netdev".to_owned(),
                format!("user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:7,hostfwd=udp:127.0.0.1:{udp}-:7")
            ]
        );
        Ok(())
    }

    /// A fake guest's echo server on 127.0.0.1, changing byte `flip` of
    /// each connection if asked.
    fn echo_server(flip: Option<usize>) -> Result<u16> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { break };
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut at = 0;
                    while let Ok(n @ 1..) = s.read(&mut buf) {
                        if let Some(f) = flip.filter(|f| (at..at + n).contains(f)) {
                            buf[f - at] ^= 1;
                        }
                        at += n;
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(port)
    }

    /// Like a guest that prints its line and runs on, with a peer against a
    /// fake echo server: stopped once the peer passed (and the lines are
    /// there), or at once when it failed.
    #[test]
    fn a_running_test_ends_with_its_peer() -> Result<()> {
        for flip in [None, Some(100)] {
            let log = TempLog::new(&format!("peer-{flip:?}"))?;
            let mut spec = spec(Expect::Running, &["net_echo: listening"]);
            let peer = crate::peer::PeerSpec {
                program: crate::peer::Program::TcpEcho,
                after: "net_echo: listening".into(),
                timeout_secs: 60,
            };
            spec.qemu_args = vec!["{tcp:7}".into()];
            spec.peer = Some(peer.clone());
            let ports =
                crate::peer::Ports::with(&[(crate::peer::Proto::Tcp, 7, echo_server(flip)?)]);
            let runner = std::cell::RefCell::new(Some(crate::peer::Runner::new(
                &peer,
                ports,
                log.0.with_extension("peer"),
            )));
            let seen = || {
                let text = log.text().unwrap_or_default();
                stop_now(&spec, runner.borrow_mut().as_mut(), &text)
            };
            // `exec`: no grandchild keeps the output open once it is killed.
            let mut cmd = sh("sleep 0.2; echo 'net_echo: listening'; exec sleep 60");
            let started = Instant::now();
            let (ending, _) =
                run_with_input(&mut cmd, &log.0, None, Duration::from_secs(50), Some(&seen))?;
            assert_eq!(ending, Ending::Stopped);
            assert!(started.elapsed() < Duration::from_secs(30));
            let runner = runner.into_inner().context("the runner")?;
            let result = runner.finish(&log.text()?);
            let _ = fs::remove_file(log.0.with_extension("peer"));
            match flip {
                None => assert_eq!(result, Ok(())),
                Some(_) => assert!(
                    result.as_ref().is_err_and(
                        |e| e.starts_with("echoing 1048576 bytes: the echo: byte 100 is")
                    ),
                    "{result:?}"
                ),
            }
        }
        Ok(())
    }

    // ---- verdicts of tests with serial input ----

    #[test]
    fn input_test_passes_once_its_input_was_sent() {
        let spec = with_input(spec(Expect::Pass, &["got: ping"]), "ping\n", "ready>");
        let log = "ready>\ngot: ping\n";
        assert_eq!(
            verdict(Ending::Exited(33), log, &Delivery::Sent, &spec),
            Ok(())
        );
        assert!(verdict(Ending::Exited(33), "ready>\n", &Delivery::Sent, &spec).is_err());
    }

    #[test]
    fn unsent_input_fails_even_with_the_right_status() {
        let spec = with_input(spec(Expect::Pass, &[]), "ping\n", "ready>");
        assert_eq!(
            verdict(Ending::Exited(33), "booted\n", &Delivery::NotSent, &spec),
            Err("serial_input was never sent: the serial output never showed input_after \"ready>\"".to_owned())
        );
        let broken = Delivery::Failed("disk full".to_owned());
        assert_eq!(
            verdict(Ending::Exited(33), "ready>\n", &broken, &spec),
            Err("serial_input was not fully sent: disk full".to_owned())
        );
    }

    #[test]
    fn input_cut_by_the_exit_leaves_the_verdict_to_the_status() {
        let spec = with_input(spec(Expect::Pass, &["got: p"]), "ping\n", "ready>");
        let cut = Delivery::Cut {
            written: 16,
            total: 38,
        };
        assert_eq!(
            verdict(Ending::Exited(33), "ready>got: p", &cut, &spec),
            Ok(())
        );
        assert!(verdict(Ending::Exited(33), "ready>", &cut, &spec).is_err());
        let reason = verdict(Ending::Exited(35), "ready>", &cut, &spec).err();
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("QEMU exited with status 35")
                    && r.ends_with(
                        "; QEMU exited after taking 16 of the 38 bytes of serial_input"
                    )),
            "{reason:?}"
        );
    }

    #[test]
    fn a_timeout_says_when_the_input_never_went_out() {
        let spec = with_input(spec(Expect::Pass, &[]), "ping\n", "ready>");
        let limit = Ending::TimedOut(Duration::from_secs(60));
        assert_eq!(
            verdict(limit, "booted\n", &Delivery::NotSent, &spec),
            Err("timed out after 60s; serial_input was never sent: the serial output never showed input_after \"ready>\"".to_owned())
        );
        // Once sent, the timeout is the whole story.
        assert_eq!(
            verdict(limit, "ready>\n", &Delivery::Sent, &spec),
            Err("timed out after 60s".to_owned())
        );
        let wrong = verdict(Ending::Exited(35), "x", &Delivery::NotSent, &spec).err();
        assert!(wrong.is_some_and(|r| r.contains("expected status 33") && r.contains("never sent")));
    }

    // ---- the input pump ----

    #[test]
    fn watch_finds_a_needle_split_across_pieces() {
        let mut watch = Watch::new(b"ready>");
        assert!(!watch.feed(b"booting...\nrea"));
        assert!(!watch.feed(b"d"));
        assert!(watch.feed(b"y> "));
        let mut bytewise = Watch::new(b"abc");
        let hits: Vec<bool> = b"xxababcx".iter().map(|b| bytewise.feed(&[*b])).collect();
        assert_eq!(hits, [false, false, false, false, false, false, true, true]);
        let mut never = Watch::new(b"ready");
        assert!(!never.feed(b"read"));
        assert!(!never.feed(b"ily not"));
        assert!(never.tail.len() < 5);
    }

    /// Records each `write` call; fails with `error` from the `fail_at`-th on.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        fail_at: Option<usize>,
        error: Option<io::ErrorKind>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail_at == Some(self.writes.len()) {
                return Err(io::Error::from(
                    self.error.unwrap_or(io::ErrorKind::BrokenPipe),
                ));
            }
            self.writes.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn input_goes_out_in_16_byte_chunks() {
        let input: Vec<u8> = (0..40).collect();
        let mut out = Recorder::default();
        assert_eq!(
            write_chunked(&mut out, &input, Duration::ZERO),
            Delivery::Sent
        );
        let sizes: Vec<usize> = out.writes.iter().map(Vec::len).collect();
        assert_eq!(sizes, [16, 16, 8]);
        assert_eq!(out.writes.concat(), input);

        let mut closed = Recorder {
            fail_at: Some(1),
            error: Some(io::ErrorKind::BrokenPipe),
            ..Recorder::default()
        };
        assert_eq!(
            write_chunked(&mut closed, &input, Duration::ZERO),
            Delivery::Cut {
                written: 16,
                total: 40
            }
        );
        let mut failing = Recorder {
            fail_at: Some(2),
            error: Some(io::ErrorKind::Other),
            ..Recorder::default()
        };
        let delivery = write_chunked(&mut failing, &input, Duration::ZERO);
        assert!(
            matches!(&delivery, Delivery::Failed(why) if why.contains("after 32 of 40 bytes")),
            "{delivery:?}"
        );
    }

    #[test]
    fn writer_waits_for_the_signal() {
        let (ready, waiting) = mpsc::channel();
        drop(ready);
        let (delivery, out) = feed_input(Recorder::default(), b"x", &waiting, Duration::ZERO);
        assert_eq!(delivery, Delivery::NotSent);
        assert!(out.writes.is_empty());
        let (ready, waiting) = mpsc::channel();
        ready.send(()).ok();
        let (delivery, out) = feed_input(Recorder::default(), b"x", &waiting, Duration::ZERO);
        assert_eq!(delivery, Delivery::Sent);
        assert_eq!(out.writes, [b"x"]);
    }

    /// A fresh, empty log file for a test of [`run_with_input`].
    struct TempLog(std::path::PathBuf);

    impl TempLog {
        fn new(name: &str) -> Result<Self> {
            let path =
                std::env::temp_dir().join(format!("kaal-xtask-{}-{name}.log", std::process::id()));
            File::create(&path)?;
            Ok(Self(path))
        }

        fn text(&self) -> Result<String> {
            Ok(String::from_utf8_lossy(&fs::read(&self.0)?).into_owned())
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    /// `run_with_input` with stdin input only (no COM2, no early stop).
    fn run_stdin(
        cmd: &mut Command,
        log: &Path,
        input: Input<'_>,
        secs: u64,
    ) -> Result<(Ending, Delivery)> {
        run_with_input(
            cmd,
            log,
            Some((input, Path::new("/nonexistent"))),
            Duration::from_secs(secs),
            None,
        )
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_running_child_is_stopped_once_its_log_says_enough() -> Result<()> {
        let log = TempLog::new("running")?;
        // Like a system that runs on: it prints, then would run for a minute.
        let mut cmd = sh("echo served; sleep 60; exit 33");
        let seen = || log.text().is_ok_and(|t| t.contains("served"));
        let started = Instant::now();
        let (ending, _) =
            run_with_input(&mut cmd, &log.0, None, Duration::from_secs(20), Some(&seen))?;
        assert_eq!(ending, Ending::Stopped);
        assert!(started.elapsed() < Duration::from_secs(20));
        Ok(())
    }

    #[test]
    fn com2_input_goes_to_the_socket_after_stdin() -> Result<()> {
        let log = TempLog::new("com2")?;
        let socket = log.0.with_extension("sock");
        let _ = fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket)?;
        // Stands in for QEMU's COM2: takes what the harness writes there.
        let com2 = thread::spawn(move || -> io::Result<Vec<u8>> {
            let (mut stream, _) = listener.accept()?;
            let mut got = vec![0; 5];
            stream.read_exact(&mut got)?;
            Ok(got)
        });
        let mut cmd = sh("printf 'ready> '; head -c 3; sleep 1; exit 33");
        let input = Input {
            bytes: b"one",
            after: b"ready>",
            repeat: 1,
            com2: Some(b"two\r\n"),
            later: None,
        };
        let (ending, delivery) = run_with_input(
            &mut cmd,
            &log.0,
            Some((input, socket.as_path())),
            Duration::from_secs(20),
            None,
        )?;
        let _ = fs::remove_file(&socket);
        assert_eq!((ending, delivery), (Ending::Exited(33), Delivery::Sent));
        let got = com2
            .join()
            .map_err(|_| anyhow!("the COM2 stand-in panicked"))??;
        assert_eq!(got, b"two\r\n");
        assert!(log.text()?.contains("ready> one"));
        Ok(())
    }

    #[test]
    fn input_reaches_the_child_after_its_prompt() -> Result<()> {
        let log = TempLog::new("prompt")?;
        let input: String = ('a'..='z').chain('A'..='N').collect(); // 40 bytes: 3 chunks
                                                                    // Like a guest: prints a prompt, echoes what it reads, reports with a status;
                                                                    // `timeout 1 cat` shows that stdin is still open after the input (status 124).
        let mut cmd = sh("printf 'booting\\nready> '; head -c 40; echo; \
                          timeout 1 cat; echo \"cat=$?\"; exit 33");
        let after = Input {
            bytes: input.as_bytes(),
            after: b"ready>",
            repeat: 1,
            com2: None,
            later: None,
        };
        let started = Instant::now();
        let (ending, delivery) = run_stdin(&mut cmd, &log.0, after, 20)?;
        assert_eq!((ending, delivery), (Ending::Exited(33), Delivery::Sent));
        assert!(started.elapsed() >= 2 * INPUT_PAUSE);
        let text = log.text()?;
        assert!(
            text.starts_with(&format!("booting\nready> {input}\ncat=124\n")),
            "{text:?}"
        );
        Ok(())
    }

    #[test]
    fn prompt_split_across_writes_and_stderr_in_the_log() -> Result<()> {
        let log = TempLog::new("split")?;
        let mut cmd = sh("printf rea; sleep 0.2; printf 'dy>'; echo warning >&2; \
                          head -c 3; exit 0");
        let input = Input {
            bytes: b"abc",
            after: b"ready>",
            repeat: 1,
            com2: None,
            later: None,
        };
        let (ending, delivery) = run_stdin(&mut cmd, &log.0, input, 20)?;
        assert_eq!((ending, delivery), (Ending::Exited(0), Delivery::Sent));
        let text = log.text()?;
        // Stdout goes through the reader thread, so stderr may land in between.
        assert!(text.contains("warning\n"), "{text:?}");
        assert_eq!(text.replace("warning\n", ""), "ready>abc");
        Ok(())
    }

    #[test]
    fn without_input_stdin_is_null() -> Result<()> {
        let log = TempLog::new("null")?;
        let mut cmd = sh("cat; echo eof; exit 33");
        let (ending, delivery) =
            run_with_input(&mut cmd, &log.0, None, Duration::from_secs(20), None)?;
        assert_eq!(
            (ending, delivery),
            (Ending::Exited(33), Delivery::NotRequested)
        );
        assert_eq!(log.text()?, "eof\n");
        Ok(())
    }

    #[test]
    fn timeout_holds_while_waiting_for_the_prompt() -> Result<()> {
        let log = TempLog::new("timeout")?;
        let mut cmd = sh("echo booting; exec sleep 30");
        let input = Input {
            bytes: b"x",
            after: b"ready>",
            repeat: 1,
            com2: None,
            later: None,
        };
        let started = Instant::now();
        let (ending, delivery) = run_stdin(&mut cmd, &log.0, input, 1)?;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            (ending, delivery),
            (Ending::TimedOut(Duration::from_secs(1)), Delivery::NotSent)
        );
        assert_eq!(log.text()?, "booting\n[xtask] killed after 1s\n");
        Ok(())
    }

    #[test]
    fn child_ending_before_its_prompt_means_not_sent() -> Result<()> {
        let log = TempLog::new("early")?;
        let mut cmd = sh("echo panicked at x; exit 35");
        let input = Input {
            bytes: b"x",
            after: b"ready>",
            repeat: 1,
            com2: None,
            later: None,
        };
        let (ending, delivery) = run_stdin(&mut cmd, &log.0, input, 20)?;
        assert_eq!((ending, delivery), (Ending::Exited(35), Delivery::NotSent));
        Ok(())
    }
}
