//! gdb against QEMU's gdb stub: `cargo xtask gdb`, `cargo xtask run --gdb`,
//! and the system tests with a `gdb` table.
//!
//! QEMU starts halted (`-S`) with its stub on a free local port. The script
//! this module writes (`target/kaal/gdb/kaal.gdb`, or one per test) loads
//! the 64-bit kernel's and the root task's symbols, defines the `kaal-*`
//! commands in gdb's Python, and connects. Components are all linked at
//! 0x400000, like the root task, so their symbols are loaded on demand, and
//! a breakpoint in one is a hardware breakpoint (QEMU matches it on the
//! virtual address in every address space) whose stop is kept only when CR3
//! is that component's address-space root, read from the root task's
//! `KaaL: component `x` started (vspace root 0x...)` line in the serial log.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cargo::Images;
use crate::layout::Layout;
use crate::step;

/// How long gdb gets to end once QEMU has ended (it sees the connection close).
const GDB_GRACE: Duration = Duration::from_secs(10);

/// Lines of a failed test's gdb output shown on the terminal.
const GDB_TAIL_LINES: usize = 60;

/// The `gdb` table of a system test (documented in `tests.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GdbSpec {
    /// gdb commands run after the generated script, relative to the repository.
    pub script: String,
    /// The system manifest the image starts (its file stem), for the
    /// component table; none for a root task without components.
    #[serde(default)]
    pub system: Option<String>,
    /// Substrings that must appear in gdb's output, in this order.
    #[serde(default)]
    pub output: Vec<String>,
}

/// What the generated script refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The 64-bit kernel ELF (QEMU boots a 32-bit copy of it).
    pub kernel: PathBuf,
    /// The root task image booted, unstripped.
    pub root_task: PathBuf,
    /// Each component's name and its unstripped program.
    pub components: Vec<(String, PathBuf)>,
    /// The serial log the `started` lines are read from.
    pub serial_log: PathBuf,
    /// QEMU's gdb stub port on 127.0.0.1.
    pub port: u16,
}

/// A free TCP port on 127.0.0.1: the system picks one for port 0. It is
/// free again once the listener is dropped, for QEMU to take.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding a local port for QEMU's gdb stub")?;
    Ok(listener.local_addr()?.port())
}

/// QEMU's arguments for a halted start with the gdb stub on `port`.
pub fn qemu_args(port: u16) -> Vec<String> {
    vec![
        "-S".to_owned(),
        "-gdb".to_owned(),
        format!("tcp:127.0.0.1:{port}"),
    ]
}

/// gdb's arguments to run `script` (and then `extra`, if any): interactive,
/// or in batch mode for the tests. `-nx` keeps the user's ~/.gdbinit out of
/// the tests.
pub fn gdb_args(script: &Path, extra: Option<&Path>, batch: bool) -> Vec<String> {
    let mut args = Vec::new();
    if batch {
        args.extend(["-batch".to_owned(), "-nx".to_owned()]);
    } else {
        args.push("-q".to_owned());
    }
    args.extend(["-x".to_owned(), script.display().to_string()]);
    if let Some(extra) = extra {
        args.extend(["-x".to_owned(), extra.display().to_string()]);
    }
    args
}

/// A shell-safe rendering of a command line, to print for the user.
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A Python string literal for `s` (paths and component names).
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as gdb takes it on a command line (quoted if it has blanks).
fn gdb_path(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains(char::is_whitespace) || s.contains('"') {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// The helper commands, in gdb's Python (the table is prepended).
const HELPERS: &str = r#"
import re, subprocess

_KAAL_STARTED = re.compile(r"KaaL: component `([^`]+)` started \(vspace root (0x[0-9a-fA-F]+)\)")
_KAAL_HASH = re.compile(r"::h[0-9a-f]{16}$")
_kaal_loaded = [KAAL_ROOT_TASK]

def kaal_started():
    """Every `started` line of the serial log, in order: (name, root)."""
    try:
        with open(KAAL_SERIAL_LOG, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [(m.group(1), int(m.group(2), 16)) for m in _KAAL_STARTED.finditer(text)]

def kaal_roots():
    """Each component's latest address-space root (a restart gets a new one)."""
    return dict(kaal_started())

def kaal_cr3():
    return int(gdb.parse_and_eval("$cr3")) & ~0xfff

def kaal_current():
    """The component the CPU is in, "root" (the root task's address space
    is never a component's) or None in the kernel."""
    cr3 = kaal_cr3()
    started = kaal_started()  # one read of the log per stop
    for name, root in dict(started).items():
        if root == cr3:
            return name
    if cr3 in {root for _, root in started}:
        return None
    return "root"

def kaal_image(name):
    if name == "root":
        return KAAL_ROOT_TASK
    if name not in KAAL_COMPONENTS:
        known = ", ".join(sorted(KAAL_COMPONENTS)) or "none"
        raise gdb.GdbError("no component `%s` (components: %s; or root)" % (name, known))
    return KAAL_COMPONENTS[name]

def kaal_lookup(elf, func):
    """The address of function `func` in `elf`: its full name, or a tail of
    it after `::` (Rust paths); an error if none or several match."""
    try:
        out = subprocess.run(["nm", "-C", "--defined-only", elf], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise gdb.GdbError("cannot read the symbols of %s: %s" % (elf, e))
    found = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3 or parts[1] not in "tTwW":
            continue
        name = _KAAL_HASH.sub("", parts[2])
        if name == func or name.endswith("::" + func) or name.endswith(">::" + func):
            found.setdefault(int(parts[0], 16), name)
    if not found:
        raise gdb.GdbError("no function `%s` in %s" % (func, elf))
    if len(found) > 1:
        names = "; ".join("%#x %s" % (a, n) for a, n in sorted(found.items())[:8])
        raise gdb.GdbError("`%s` is ambiguous in %s: %s" % (func, elf, names))
    return next(iter(found.items()))

def kaal_quote(path):
    """A path as one argument of a gdb command."""
    return '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')

def kaal_use_symbols(component):
    """Loads `component`'s symbols in place of the user-space ones loaded."""
    elf = kaal_image(component)
    if _kaal_loaded == [elf]:
        return elf
    while _kaal_loaded:
        gdb.execute("remove-symbol-file %s" % kaal_quote(_kaal_loaded.pop()), to_string=True)
    gdb.execute("add-symbol-file %s" % kaal_quote(elf), to_string=True)
    _kaal_loaded.append(elf)
    return elf

class KaalBreakpoint(gdb.Breakpoint):
    """A hardware breakpoint that stops only in one component."""
    def __init__(self, component, addr):
        super().__init__("*%#x" % addr, type=gdb.BP_HARDWARE_BREAKPOINT)
        self.kaal_component = component
        self.kaal_passed = set()
    def stop(self):
        current = kaal_current()
        if current == self.kaal_component:
            # Its symbols, so that the stop is shown in its own code.
            kaal_use_symbols(current)
            return True
        # Said once per program: the same address may be hot in another.
        if current not in self.kaal_passed:
            self.kaal_passed.add(current)
            print("kaal: breakpoint %d passed in `%s`, not `%s`; going on (said once)"
                  % (self.number, current, self.kaal_component))
        return False

class KaalComponents(gdb.Command):
    """kaal-components: each component, its program and its address-space root."""
    def __init__(self):
        super().__init__("kaal-components", gdb.COMMAND_USER)
    def invoke(self, arg, from_tty):
        roots = kaal_roots()
        print("%-20s %-18s %s" % ("component", "vspace root", "program"))
        for name, elf in KAAL_COMPONENTS.items():
            root = "%#x" % roots[name] if name in roots else "not started"
            print("%-20s %-18s %s" % (name, root, elf))

class KaalBreak(gdb.Command):
    """kaal-break COMPONENT FUNCTION|*ADDRESS: stop when COMPONENT (or root,
the root task) enters FUNCTION, a name of its program (a Rust path's tail
will do), or reaches ADDRESS."""
    def __init__(self):
        super().__init__("kaal-break", gdb.COMMAND_BREAKPOINTS)
    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 2:
            raise gdb.GdbError("usage: kaal-break COMPONENT FUNCTION")
        component, func = argv
        if func.startswith("*"):
            try:
                addr, name = int(func[1:], 0), func
            except ValueError:
                raise gdb.GdbError("`%s` is not an address such as *0x401234" % func)
            kaal_image(component)
        else:
            addr, name = kaal_lookup(kaal_image(component), func)
        # Its symbols, so that gdb names the breakpoint's place in its code.
        kaal_use_symbols(component)
        bp = KaalBreakpoint(component, addr)
        print("kaal: breakpoint %d in `%s` at %#x (%s)" % (bp.number, component, addr, name))

class KaalSymbols(gdb.Command):
    """kaal-symbols COMPONENT: use COMPONENT's symbols (root: the root task's)
for the user addresses, in place of the ones loaded before."""
    def __init__(self):
        super().__init__("kaal-symbols", gdb.COMMAND_FILES)
    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 1:
            raise gdb.GdbError("usage: kaal-symbols COMPONENT")
        elf = kaal_use_symbols(argv[0])
        print("kaal: symbols of `%s` (%s)" % (argv[0], elf))

class KaalWhere(gdb.Command):
    """kaal-where: which component the CPU is in, by CR3."""
    def __init__(self):
        super().__init__("kaal-where", gdb.COMMAND_STATUS)
    def invoke(self, arg, from_tty):
        current = kaal_current()
        if current is None:
            print("kaal: in no component (cr3 %#x)" % kaal_cr3())
        else:
            print("kaal: in `%s` (cr3 %#x)" % (current, kaal_cr3()))

KaalComponents()
KaalBreak()
KaalSymbols()
KaalWhere()
"#;

/// The gdb script for `targets`.
pub fn script(targets: &Targets) -> String {
    let mut s = String::new();
    s.push_str("# Generated by cargo xtask (xtask/src/gdb.rs); see docs/debugging.md.\n");
    s.push_str("set confirm off\nset pagination off\n");
    // The 64-bit kernel ELF sets the architecture QEMU's x86_64 stub speaks,
    // even while the CPU still runs the 32-bit multiboot entry.
    s.push_str("set architecture i386:x86-64\n");
    s.push_str(&format!("symbol-file {}\n", gdb_path(&targets.kernel)));
    s.push_str(&format!(
        "add-symbol-file {}\n",
        gdb_path(&targets.root_task)
    ));
    s.push_str("python\n");
    s.push_str(&format!(
        "KAAL_ROOT_TASK = {}\n",
        py_str(&targets.root_task.display().to_string())
    ));
    s.push_str(&format!(
        "KAAL_SERIAL_LOG = {}\n",
        py_str(&targets.serial_log.display().to_string())
    ));
    s.push_str("KAAL_COMPONENTS = {\n");
    for (name, elf) in &targets.components {
        s.push_str(&format!(
            "    {}: {},\n",
            py_str(name),
            py_str(&elf.display().to_string())
        ));
    }
    s.push_str("}\n");
    s.push_str(HELPERS);
    s.push_str("end\n");
    s.push_str(&format!("target remote 127.0.0.1:{}\n", targets.port));
    s
}

/// Each component of system `system` (a manifest's file stem) with its
/// unstripped program.
pub fn components(
    layout: &Layout,
    images: &Images,
    system: &str,
) -> Result<Vec<(String, PathBuf)>> {
    let manifests = crate::system::manifests(layout)?;
    let (_, path) = manifests
        .iter()
        .find(|(name, _)| name == system)
        .with_context(|| format!("no system manifest named `{system}`"))?;
    let manifest = crate::system::check(path)?;
    Ok(manifest
        .components
        .iter()
        .map(|c| {
            let image = c.image();
            let elf = if image.contains('/') {
                path.parent().unwrap_or(Path::new(".")).join(image)
            } else {
                images.path(image)
            };
            (c.name.clone(), elf)
        })
        .collect())
}

/// The 64-bit kernel ELF of the layout's kernel variant.
pub fn kernel_elf(layout: &Layout) -> PathBuf {
    layout.sel4_build().join("kernel.elf")
}

/// What `cargo xtask gdb` and `run --gdb` need: QEMU's extra arguments, the
/// serial log the helpers read, and the gdb command line.
#[derive(Debug, Clone)]
pub struct Interactive {
    pub qemu_args: Vec<String>,
    pub serial_log: PathBuf,
    pub gdb_args: Vec<String>,
}

/// Writes `target/kaal/gdb/kaal.gdb` for `root_task` booting `system` (a
/// manifest's stem; none: a root task without components), with a fresh
/// serial log beside it (stale `started` lines would name old address
/// spaces).
pub fn interactive(
    layout: &Layout,
    images: &Images,
    root_task: &Path,
    system: Option<&str>,
) -> Result<Interactive> {
    let dir = layout.kaal.join("gdb");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let serial_log = dir.join("serial.log");
    fs::write(&serial_log, "").with_context(|| format!("writing {}", serial_log.display()))?;
    let port = free_port()?;
    let targets = Targets {
        kernel: kernel_elf(layout),
        root_task: root_task.to_path_buf(),
        components: match system {
            Some(name) => components(layout, images, name)?,
            None => Vec::new(),
        },
        serial_log: serial_log.clone(),
        port,
    };
    let script_path = dir.join("kaal.gdb");
    write_script(&script_path, &targets)?;
    Ok(Interactive {
        qemu_args: qemu_args(port),
        serial_log,
        gdb_args: gdb_args(&script_path, None, false),
    })
}

/// `cargo xtask gdb`: QEMU in the background, halted, its serial output in
/// the session's serial log; then this process becomes gdb. QEMU gets its
/// own process group, so that Ctrl-C in gdb interrupts the guest through
/// the stub instead of killing QEMU; gdb ends QEMU when it exits
/// (`session.gdb`). Returns only when gdb could not be started.
pub fn session(session: &Interactive, mut qemu: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log = fs::OpenOptions::new()
        .append(true)
        .open(&session.serial_log)
        .with_context(|| format!("opening {}", session.serial_log.display()))?;
    let log_err = log.try_clone()?;
    qemu.process_group(0)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let mut child = qemu
        .spawn()
        .with_context(|| format!("starting `{}`", step::describe(&qemu)))?;
    eprintln!(
        "QEMU (pid {}) waits halted for gdb; its serial output goes to {} (tail -f it)",
        child.id(),
        session.serial_log.display()
    );
    // gdb's `quit` detaches from a remote target: QEMU would run on, orphaned.
    let ender = session.serial_log.with_file_name("session.gdb");
    let mut args = session.gdb_args.clone();
    let written = fs::write(&ender, end_qemu_script(child.id()));
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e).with_context(|| format!("writing {}", ender.display()));
    }
    args.extend(["-x".to_owned(), ender.display().to_string()]);
    eprintln!("==> {}", shell_line("gdb", &args));
    // `exec` returns only when gdb could not be started.
    let err = Command::new("gdb").args(&args).exec();
    let _ = child.kill();
    let _ = child.wait();
    Err(err).context("starting gdb")
}

/// gdb commands that end QEMU (process `pid`) when gdb exits, then run the
/// machine to the root task's entry and stop there.
fn end_qemu_script(pid: u32) -> String {
    format!(
        "# cargo xtask gdb: QEMU runs in the background; it ends with gdb.\n\
         python\n\
         import os, signal\n\
         def _kaal_end_qemu(event):\n    \
         try:\n        os.kill({pid}, signal.SIGTERM)\n    \
         except OSError:\n        pass\n\
         gdb.events.gdb_exiting.connect(_kaal_end_qemu)\n\
         end\n\
         # Boot the kernel and stop where the root task begins.\n\
         kaal-break root _start\n\
         continue\n\
         delete\n\
         echo kaal: halted at the root task's entry; `continue` boots the system.\\n\n"
    )
}

/// The system `cargo xtask run` and `cargo xtask gdb` boot (root/src/main.rs).
pub const DEFAULT_SYSTEM: &str = "default";

/// The system manifest test `spec` boots, for its component table: its
/// `gdb` key's, else the manifest of the test's name, if there is one.
pub fn test_system(layout: &Layout, spec: &crate::systest::TestSpec) -> Result<Option<String>> {
    if let Some(system) = spec.gdb.as_ref().and_then(|g| g.system.clone()) {
        return Ok(Some(system));
    }
    let manifests = crate::system::manifests(layout)?;
    let known = |n: &String| manifests.iter().any(|(m, _)| m == n);
    Ok([&spec.name, &spec.image]
        .into_iter()
        .find(|n| known(n))
        .cloned())
}

/// Writes `targets`' script to `path`.
pub fn write_script(path: &Path, targets: &Targets) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, script(targets)).with_context(|| format!("writing {}", path.display()))
}

/// A test's gdb, ready to start.
pub struct PreparedSession {
    args: Vec<String>,
    output: PathBuf,
    expected: Vec<String>,
}

/// A batch gdb of a system test, running beside its QEMU; killed if dropped
/// unfinished.
pub struct TestSession {
    child: Option<Child>,
    output: PathBuf,
    expected: Vec<String>,
}

impl PreparedSession {
    /// Writes the test's script and returns the QEMU arguments for the stub.
    pub fn new(
        layout: &Layout,
        images: &Images,
        name: &str,
        spec: &GdbSpec,
        root_task: &Path,
        serial_log: &Path,
    ) -> Result<(PreparedSession, Vec<String>)> {
        let components = match &spec.system {
            Some(system) => components(layout, images, system)?,
            None => Vec::new(),
        };
        let port = free_port()?;
        let targets = Targets {
            kernel: kernel_elf(layout),
            root_task: root_task.to_path_buf(),
            components,
            serial_log: serial_log.to_path_buf(),
            port,
        };
        let script_path = layout.log(&format!("gdb-{name}")).with_extension("gdb");
        write_script(&script_path, &targets)?;
        let user = layout.root.join(&spec.script);
        if !user.is_file() {
            bail!("test {name}: gdb script {} does not exist", user.display());
        }
        let prepared = PreparedSession {
            args: gdb_args(&script_path, Some(&user), true),
            output: layout.log(&format!("gdb-{name}")),
            expected: spec.output.clone(),
        };
        Ok((prepared, qemu_args(port)))
    }

    /// Starts gdb; it retries connecting until QEMU listens (gdb's `tcp
    /// connect-timeout`, 15 s by default).
    pub fn start(self) -> Result<TestSession> {
        let out = fs::File::create(&self.output)
            .with_context(|| format!("creating {}", self.output.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("gdb");
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting `{}`", step::describe(&cmd)))?;
        Ok(TestSession {
            child: Some(child),
            output: self.output,
            expected: self.expected,
        })
    }
}

impl TestSession {
    /// Waits for gdb to end (QEMU has), then judges its output; and the
    /// output's last lines, to show when the test failed.
    pub fn finish(mut self) -> Result<(Result<(), String>, String)> {
        let deadline = Instant::now() + GDB_GRACE;
        if let Some(child) = self.child.as_mut() {
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        self.child = None;
        let text = fs::read(&self.output)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading {}", self.output.display()))?;
        Ok((
            check_output(&text, &self.expected),
            step::last_lines(&text, GDB_TAIL_LINES),
        ))
    }

    /// Where gdb's output goes.
    pub fn output(&self) -> &Path {
        &self.output
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether gdb's output has every expected substring, in order.
pub fn check_output(text: &str, expected: &[String]) -> Result<(), String> {
    let mut from = 0;
    for needle in expected {
        match text.get(from..).and_then(|rest| rest.find(needle.as_str())) {
            Some(at) => from += at + needle.len(),
            None => {
                let anywhere = text.contains(needle.as_str());
                return Err(if anywhere {
                    format!("gdb output has {needle:?} only before the line it must follow")
                } else {
                    format!("gdb output lacks {needle:?}")
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            kernel: PathBuf::from("/k/kernel.elf"),
            root_task: PathBuf::from("/t/kaal-root"),
            components: vec![
                ("alpha".to_owned(), PathBuf::from("/t/gdb_target")),
                ("we\"ird".to_owned(), PathBuf::from("/t/x")),
            ],
            serial_log: PathBuf::from("/l/serial.log"),
            port: 4321,
        }
    }

    #[test]
    fn a_free_port_is_nonzero_and_bindable() -> Result<()> {
        // Other tests of this crate open connections and listeners at the
        // same time, and may take the port in between: free at the time
        // means bindable on one of a few tries.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            assert_ne!(port, 0);
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no try"), Into::into))
    }

    #[test]
    fn qemu_waits_halted_for_gdb_on_localhost() {
        assert_eq!(qemu_args(1234), ["-S", "-gdb", "tcp:127.0.0.1:1234"]);
    }

    #[test]
    fn gdb_command_lines() {
        let s = Path::new("/g/kaal.gdb");
        assert_eq!(gdb_args(s, None, false), ["-q", "-x", "/g/kaal.gdb"]);
        assert_eq!(
            gdb_args(s, Some(Path::new("t.gdb")), true),
            ["-batch", "-nx", "-x", "/g/kaal.gdb", "-x", "t.gdb"]
        );
        let line = shell_line("gdb", &gdb_args(Path::new("/a b/k.gdb"), None, false));
        assert_eq!(line, "gdb -q -x '/a b/k.gdb'");
    }

    #[test]
    fn the_script_loads_symbols_lists_components_and_connects_last() {
        let s = script(&targets());
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines.contains(&"symbol-file /k/kernel.elf"));
        assert!(lines.contains(&"add-symbol-file /t/kaal-root"));
        assert!(lines.contains(&"set architecture i386:x86-64"));
        assert!(lines.contains(&"    \"alpha\": \"/t/gdb_target\","));
        assert!(lines.contains(&"    \"we\\\"ird\": \"/t/x\","));
        assert!(lines.contains(&"KAAL_SERIAL_LOG = \"/l/serial.log\""));
        assert_eq!(lines.last(), Some(&"target remote 127.0.0.1:4321"));
        for command in [
            "kaal-components",
            "kaal-break",
            "kaal-symbols",
            "kaal-where",
        ] {
            assert!(s.contains(&format!("\"{command}\"")), "{command}");
        }
        // The Python block is closed before gdb commands resume.
        let python = lines.iter().position(|l| *l == "python");
        let end = lines.iter().position(|l| *l == "end");
        assert!(matches!((python, end), (Some(p), Some(e)) if p < e));
    }

    #[test]
    fn a_test_names_the_system_whose_components_gdb_knows() -> Result<()> {
        let layout = Layout::from_build()?;
        let tests = crate::systest::load(&layout.tests_toml())?;
        let system = |name: &str| -> Result<Option<String>> {
            let spec = tests.iter().find(|t| t.name == name).context("listed")?;
            test_system(&layout, spec)
        };
        // By the test's name, by its image's, by its gdb key; or none.
        assert_eq!(system("two_uarts")?.as_deref(), Some("two_uarts"));
        assert_eq!(
            system("fault_symbolized")?.as_deref(),
            Some("fault_restart")
        );
        assert_eq!(system("boot_summary")?, None);
        Ok(())
    }

    #[test]
    fn gdb_ends_the_background_qemu() {
        let s = end_qemu_script(42);
        assert!(s.contains("os.kill(42, signal.SIGTERM)"));
        assert!(s.contains("\ndef _kaal_end_qemu(event):\n    try:\n        os.kill"));
        assert!(s.contains("gdb.events.gdb_exiting.connect(_kaal_end_qemu)\nend\n"));
        // Then the machine runs to the root task's entry and stops there.
        assert!(s.contains("\nkaal-break root _start\ncontinue\ndelete\n"));
    }

    #[test]
    fn paths_with_blanks_are_quoted_for_gdb() {
        assert_eq!(gdb_path(Path::new("/a/b")), "/a/b");
        assert_eq!(gdb_path(Path::new("/a b/c")), "\"/a b/c\"");
        assert_eq!(py_str("a\\b\n"), "\"a\\\\b\\u000a\"");
    }

    #[test]
    fn the_gdb_table_parses_and_rejects_unknown_keys() -> Result<()> {
        let tests = crate::systest::parse_manifest(
            "[[test]]\nname = \"g\"\nimage = \"gdb_two\"\n\
             gdb = { script = \"t.gdb\", system = \"gdb_two\", output = [\"a\"] }\n",
        )?;
        let spec = tests.first().and_then(|t| t.gdb.clone());
        assert_eq!(
            spec,
            Some(GdbSpec {
                script: "t.gdb".to_owned(),
                system: Some("gdb_two".to_owned()),
                output: vec!["a".to_owned()],
            })
        );
        assert!(crate::systest::parse_manifest(
            "[[test]]\nname = \"g\"\nimage = \"i\"\ngdb = { script = \"t\", port = 1 }\n"
        )
        .is_err());
        Ok(())
    }

    #[test]
    fn components_come_from_the_named_manifest() -> Result<()> {
        let layout = Layout::from_build()?;
        let images = Images::at(PathBuf::from("/img"));
        let found = components(&layout, &images, "gdb_two")?;
        assert_eq!(
            found,
            [
                ("alpha".to_owned(), PathBuf::from("/img/gdb_target")),
                ("bravo".to_owned(), PathBuf::from("/img/gdb_target")),
            ]
        );
        assert!(
            components(&layout, &images, "no_such_system").is_err_and(|e| e
                .to_string()
                .contains("no system manifest named `no_such_system`"))
        );
        Ok(())
    }

    #[test]
    fn output_lines_are_checked_in_order() {
        let text = "Breakpoint 1, gdb_mark (tag=1)\n$1 = 0x6f\n";
        let want = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(check_output(text, &want(&["gdb_mark", "= 0x6f"])).is_ok());
        assert!(check_output(text, &want(&["= 0x6f", "gdb_mark"]))
            .is_err_and(|e| e.contains("only before")));
        assert!(check_output(text, &want(&["bravo"])).is_err_and(|e| e.contains("lacks")));
    }
}
