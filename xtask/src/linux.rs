//! The Linux programs of the POSIX layer and the userland tree that puts
//! them on a disk.
//!
//! `tests/linux` holds their sources: C programs built with `musl-gcc
//! -static -O2`, and `hello_rust`, a Cargo project of its own built for
//! x86_64-unknown-linux-musl (static-pie). They land in
//! `target/kaal/linux/bin`, and each then runs once here, natively (they
//! are Linux programs): a broken program is caught before the guest is
//! blamed. A stamp (a hash of every file of `tests/linux`) skips all of
//! that while nothing changed.
//!
//! The userland: `/bin/busybox` (the host's static busybox) with a symlink
//! to it per applet in `/bin`, the programs in `/bin`, `/etc/passwd`,
//! `/etc/group`, `/etc/profile`, `/tmp`, `/root` and an empty `/dev` (the
//! process server provides its devices by name; a socket bound there, as
//! `syslogd`'s `/dev/log`, needs the folder). It is the test disks'
//! `ext2 = "linux"` tree, and what a system disk with `linux = true` adds
//! to its folder (`systems/rootfs`).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use crate::env::{BUSYBOX, LINUX_TARGET};
use crate::kernel::Fnv1a;
use crate::layout::Layout;
use crate::step::{self, Step};

/// The name of the userland tree in tests.toml (`disk = { ext2 = "linux" }`).
pub const TREE: &str = "linux";
/// The Linux benchmark's tree (`ext2 = "linux_bench"`): the userland and
/// the bench tree's 16 MiB file ([`BENCH_FILE`]), which `bench` reads.
pub const BENCH_TREE: &str = "linux_bench";
/// The tree of busybox httpd's test (`ext2 = "linux_web"`): the userland
/// and the web tree's /www (`kaal_test_patterns::fs::WEB_TREE`), which the
/// `http` peer checks byte for byte.
pub const WEB_TREE: &str = "linux_web";
/// The file the Linux benchmark reads: the device benchmark's
/// (`fs.read_mib_per_sec` reads the same file).
const BENCH_FILE: (&str, u64) = kaal_test_patterns::fs::BENCH_FILE;
/// The benchmark file's pattern seed, which `bench.c` checks (its SEED).
const BENCH_SEED: u64 = 0x5001;
/// Bytes of the benchmark file on the native check: a prefix of the same
/// pattern, enough for a few 64 KiB reads and an odd tail.
const NATIVE_BENCH_BYTES: u64 = (1 << 20) + 5;

/// The C programs: `tests/linux/<name>.c`.
const C_PROGRAMS: [&str; 12] = [
    "hello_musl",
    "hostile",
    "isolation",
    "waits",
    "events",
    "bench",
    "memory",
    "shmfile",
    "sockets",
    "unix",
    "netbench",
    "tsignals",
];
/// The Rust programs: each the Cargo project `tests/linux/<name>`.
const RUST_PROGRAMS: [&str; 3] = ["hello_rust", "threads_rust", "tokio_echo"];
/// musl-gcc's flags (in the stamp: a change rebuilds).
const CFLAGS: [&str; 5] = ["-static", "-O2", "-Wall", "-Wextra", "-Werror"];

/// The programs on a system a user boots: `hostile` tries to halt a debug
/// kernel, so only the test disks hold it.
const DEMO_PROGRAMS: [&str; 2] = ["hello_musl", "hello_rust"];

/// `/etc` of the userland, each file unless the folder has its own.
const ETC: [(&str, &str); 4] = [
    ("passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    (
        "inittab",
        "# Read by busybox init, the process server's first process: a login\n\
         # shell on the console; when it exits, init powers the system off\n\
         # (SIGUSR2 is what `poweroff` sends init once it found no linuxrc\n\
         # in /proc, which KaaL does not have).\n\
         ::wait:-/bin/sh\n\
         ::wait:/bin/kill -USR2 1\n",
    ),
    ("group", "root:x:0:\n"),
    (
        "profile",
        "# Read by a login shell (sh -l).\nexport PATH=/bin\nexport HOME=/root\nPS1='kaal:\\w\\$ '\n",
    ),
];

/// The default system's /etc/inittab: the test disks' ([`ETC`]), with
/// busybox httpd started first on the process server's sockets (it puts
/// itself in the background once it listens). Test systems without the
/// sockets channel keep the plain one.
const SYSTEM_INITTAB: &str =
    "# Read by busybox init, the process server's first process: busybox\n\
     # httpd serving /www on port 8000 (the POSIX layer's AF_INET sockets),\n\
     # a login shell on the console; when it exits, init powers the system\n\
     # off (SIGUSR2 is what `poweroff` sends init once it found no linuxrc\n\
     # in /proc, which KaaL does not have).\n\
     ::sysinit:/bin/httpd -p 8000 -h /www\n\
     ::wait:-/bin/sh\n\
     ::wait:/bin/kill -USR2 1\n";

/// Which programs a userland holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Programs {
    /// Every program of tests/linux: the test disks.
    Tests,
    /// The demonstrations only: the system a user boots.
    Demos,
}

/// One build at a time in this process (the unit tests run in threads);
/// other processes see only whole files (each is renamed into place).
static BUILDING: Mutex<()> = Mutex::new(());

fn sources(layout: &Layout) -> PathBuf {
    layout.root.join("tests").join("linux")
}

fn bin(layout: &Layout) -> PathBuf {
    layout.linux().join("bin")
}

fn stamp_path(layout: &Layout) -> PathBuf {
    layout.linux().join("stamp")
}

/// Every program's name, as in `target/kaal/linux/bin`.
fn all_programs() -> impl Iterator<Item = &'static str> {
    C_PROGRAMS.into_iter().chain(RUST_PROGRAMS)
}

/// Builds and checks the programs unless the stamp says they are current;
/// the folder holding them.
pub fn ensure(layout: &Layout) -> Result<PathBuf> {
    let _one = BUILDING
        .lock()
        .map_err(|_| anyhow::anyhow!("a Linux program build panicked"))?;
    let stamp = stamp(layout)?;
    let current = fs::read_to_string(stamp_path(layout)).is_ok_and(|s| s.trim() == stamp)
        && all_programs().all(|p| bin(layout).join(p).is_file());
    if !current {
        step::step("Building Linux programs", &layout.log("linux"), |step| {
            build(layout, step)?;
            check_all(layout, step)?;
            fs::write(stamp_path(layout), &stamp)
                .with_context(|| format!("writing {}", stamp_path(layout).display()))
        })?;
    }
    Ok(bin(layout))
}

/// A hash of every file under tests/linux (names and contents, but a
/// `target` folder of a stray `cargo build`) and of the C flags.
fn stamp(layout: &Layout) -> Result<String> {
    let root = sources(layout);
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    dirs.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = Fnv1a::new();
    for flag in CFLAGS {
        hash.write(flag.as_bytes());
        hash.write(&[0]);
    }
    for file in files {
        // Relative: a second checkout of the same sources is current too.
        let name = file.strip_prefix(&root).unwrap_or(&file);
        hash.write(name.as_os_str().as_encoded_bytes());
        hash.write(&[0]);
        hash.write(&fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    }
    Ok(format!("{:016x}", hash.finish()))
}

/// Writes `from`'s bytes to `to` through a temporary file renamed into
/// place, executable.
fn install(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("tmp");
    fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, to).with_context(|| format!("renaming {}", tmp.display()))
}

fn build(layout: &Layout, step: &Step) -> Result<()> {
    let bin = bin(layout);
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for name in C_PROGRAMS {
        let tmp = bin.join(format!("{name}.tmp"));
        step.run(
            Command::new("musl-gcc")
                .args(CFLAGS)
                .arg("-o")
                .arg(&tmp)
                .arg(sources(layout).join(format!("{name}.c"))),
        )?;
        fs::rename(&tmp, bin.join(name)).with_context(|| format!("renaming {}", tmp.display()))?;
    }
    // Its own target folder: `cargo test` of the workspace holds the
    // workspace's, and the unit tests build through here.
    let target_dir = layout.linux().join("cargo");
    for name in RUST_PROGRAMS {
        step.run(rust_cargo(layout, name, "build").args([
            "--release",
            "--locked",
            "--target",
            LINUX_TARGET,
        ]))?;
        let built = target_dir.join(LINUX_TARGET).join("release").join(name);
        install(&built, &bin.join(name))?;
    }
    Ok(())
}

/// `cargo SUBCOMMAND` for the Rust program `name`, in its own target
/// folder (the workspace's flags are for seL4 images).
fn rust_cargo(layout: &Layout, name: &str, subcommand: &str) -> Command {
    let project = sources(layout).join(name);
    let mut cmd = Command::new(crate::cargo::cargo_bin());
    cmd.arg(subcommand)
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", layout.linux().join("cargo"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// `cargo xtask check`'s commands for the Rust programs (outside the
/// workspace, so `cargo fmt --all` and the workspace's clippy miss them).
pub fn check_commands(layout: &Layout) -> Vec<Command> {
    let mut commands = Vec::new();
    for name in RUST_PROGRAMS {
        let mut fmt = rust_cargo(layout, name, "fmt");
        fmt.args(["--", "--check"]);
        let mut clippy = rust_cargo(layout, name, "clippy");
        clippy.args(["--locked", "--target", LINUX_TARGET, "--", "-D", "warnings"]);
        commands.extend([fmt, clippy]);
    }
    commands
}

/// How a program must behave when run natively: its arguments (after
/// argv[0]), what it must print, its exit status.
struct Expected {
    args: Vec<String>,
    lines: Vec<String>,
    status: i32,
}

fn expected(name: &str, scratch: &Path) -> Expected {
    let file = |f: &str| scratch.join(f).display().to_string();
    match name {
        "hello_musl" => Expected {
            args: vec![file("hello_musl.txt"), "two words".into()],
            lines: vec![
                format!("argv[1]={}", file("hello_musl.txt")),
                "argv[2]=two words".into(),
                format!("KAAL_GREETING={GREETING}"),
                "hello_musl: file round trip ok".into(),
                "hello_musl: attributes ok".into(),
                "hello_musl: thread name ok".into(),
            ],
            status: 3,
        },
        // Its own peer in a forked child, on 127.0.0.1.
        "sockets" => Expected {
            args: vec!["native".into()],
            lines: vec!["sockets: ok".into()],
            status: 0,
        },
        "memory" => Expected {
            args: vec![file("memory.txt")],
            lines: vec!["memory: ok".into()],
            status: 0,
        },
        "shmfile" => Expected {
            args: vec![file("shmfile.dat")],
            lines: vec!["shmfile: ok".into()],
            status: 0,
        },
        "hello_rust" => Expected {
            args: vec![file("hello_rust.txt")],
            lines: vec![
                format!("argv[1]={}", file("hello_rust.txt")),
                "hello_rust: file round trip ok".into(),
                "hello_rust: panic caught".into(),
                "hello_rust: ok".into(),
            ],
            status: 0,
        },
        // Its thread test; the stress and fault modes run on KaaL.
        "threads_rust" => Expected {
            args: Vec::new(),
            lines: vec!["rust_threads: ok".into()],
            status: 0,
        },
        // Few rounds: the figures of a native run are not wanted.
        "bench" => Expected {
            args: vec![file("big.bin"), "quick".into()],
            lines: vec!["bench: ok".into()],
            status: 0,
        },
        _ => Expected {
            args: Vec::new(),
            lines: vec![format!("{name}: ok")],
            status: 0,
        },
    }
}

/// The environment variable hello_musl prints, as the native check sets it.
const GREETING: &str = "hello from the harness";

/// Runs every program natively and checks its output and exit status.
fn check_all(layout: &Layout, step: &Step) -> Result<()> {
    let scratch = layout.linux().join("check");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    write_bench_file(&scratch.join("big.bin"), NATIVE_BENCH_BYTES)?;
    for name in all_programs() {
        let want = expected(name, &scratch);
        let mut cmd = Command::new(bin(layout).join(name));
        cmd.args(&want.args).env("KAAL_GREETING", GREETING);
        step.note(&format!("$ {}", step::describe(&cmd)))?;
        let out = cmd
            .output()
            .with_context(|| format!("running {name} natively"))?;
        let text = output_text(&out);
        step.note(&text)?;
        if let Some(why) = judge(&want, out.status.code(), &text) {
            bail!("{name}, run natively, {why}; its output:\n{text}");
        }
    }
    Ok(())
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What is wrong with a run that exited with `status` and printed `text`.
fn judge(want: &Expected, status: Option<i32>, text: &str) -> Option<String> {
    if status != Some(want.status) {
        return Some(match status {
            Some(code) => format!("exited with status {code}, expected {}", want.status),
            None => "was killed by a signal".to_owned(),
        });
    }
    let missing: Vec<&str> = want
        .lines
        .iter()
        .filter(|line| !text.lines().any(|l| l == line.as_str()))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| format!("did not print {missing:?}"))
}

/// The applets of the host's busybox (`busybox --list`), but busybox itself.
pub fn applets() -> Result<BTreeSet<String>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("running {BUSYBOX} --list"))?;
    if !out.status.success() {
        bail!("{BUSYBOX} --list failed: {}", output_text(&out));
    }
    let list: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
        .map(str::to_owned)
        .collect();
    if let Some(bad) = list
        .iter()
        .find(|a| a.contains('/') || *a == "." || *a == "..")
    {
        bail!("{BUSYBOX} --list names applet {bad:?}, which is no file name");
    }
    Ok(list)
}

/// Adds the userland to folder `dest` (created if absent); whatever `dest`
/// already holds stays as it is. Builds the programs first if needed.
pub fn add_userland(layout: &Layout, dest: &Path, programs: Programs) -> Result<()> {
    let built = ensure(layout)?;
    let absent = |p: &Path| p.symlink_metadata().is_err();
    let bin = dest.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let busybox = bin.join("busybox");
    if absent(&busybox) {
        install(Path::new(BUSYBOX), &busybox)?;
    }
    // Relative links: right wherever the file system is mounted.
    for applet in applets()? {
        let link = bin.join(&applet);
        if absent(&link) {
            symlink("busybox", &link).with_context(|| format!("creating {}", link.display()))?;
        }
    }
    let names: Vec<&str> = match programs {
        Programs::Tests => all_programs().collect(),
        Programs::Demos => DEMO_PROGRAMS.to_vec(),
    };
    for name in names {
        let to = bin.join(name);
        if absent(&to) {
            install(&built.join(name), &to)?;
        }
    }
    let etc = dest.join("etc");
    fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    for (name, text) in ETC {
        let text = match (name, programs) {
            ("inittab", Programs::Demos) => SYSTEM_INITTAB,
            _ => text,
        };
        let path = etc.join(name);
        if absent(&path) {
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
    }
    for (name, mode) in [("tmp", 0o1777), ("root", 0o700), ("dev", 0o755)] {
        let dir = dest.join(name);
        if absent(&dir) {
            fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// The test disks' tree (`ext2 = "linux"`), written to `dest` (emptied first).
pub fn test_tree(layout: &Layout, dest: &Path) -> Result<()> {
    fresh_dir(dest)?;
    add_userland(layout, dest, Programs::Tests)
}

/// The busybox httpd test's tree ([`WEB_TREE`]), written to `dest` (emptied first).
pub fn web_tree(layout: &Layout, dest: &Path) -> Result<()> {
    crate::ext2::materialize(kaal_test_patterns::fs::WEB_TREE, dest)?;
    add_userland(layout, dest, Programs::Tests)
}

/// The Linux benchmark's tree ([`BENCH_TREE`]), written to `dest` (emptied first).
pub fn bench_tree(layout: &Layout, dest: &Path) -> Result<()> {
    test_tree(layout, dest)?;
    let (path, len) = BENCH_FILE;
    write_bench_file(&dest.join(path.trim_start_matches('/')), len)
}

/// The first `len` bytes of the bench tree's file at `path`, mode 0644.
fn write_bench_file(path: &Path, len: u64) -> Result<()> {
    let kind = kaal_test_patterns::fs::Kind::File {
        len,
        seed: BENCH_SEED,
    };
    let bytes = crate::ext2::file_bytes(&kind).unwrap_or_default();
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// A copy of `folder` in `dest` (emptied first) with the demonstration
/// userland added: a system disk with `linux = true`.
pub fn system_tree(layout: &Layout, folder: &Path, dest: &Path) -> Result<()> {
    fresh_dir(dest)?;
    copy_tree(folder, dest)?;
    add_userland(layout, dest, Programs::Demos)
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Copies the files, folders and symlinks under `from` into `to` (which
/// exists), with their permission bits.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = src.symlink_metadata()?;
        let copying = || format!("copying {} to {}", src.display(), dst.display());
        if meta.is_symlink() {
            symlink(fs::read_link(&src)?, &dst).with_context(copying)?;
        } else if meta.is_dir() {
            fs::create_dir(&dst).with_context(copying)?;
            copy_tree(&src, &dst)?;
            // Last: a read-only folder still takes its children.
            fs::set_permissions(&dst, meta.permissions())?;
        } else {
            fs::copy(&src, &dst).with_context(copying)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext2;

    fn scratch(name: &str) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("kaal-linux-{}-{name}", std::process::id()));
        fresh_dir(&dir)?;
        Ok(dir)
    }

    /// The programs build, are static and executable, and pass their
    /// native runs (again here: `ensure` skips them while the stamp holds).
    #[test]
    fn the_programs_build_and_run_natively() -> Result<()> {
        let layout = Layout::from_build()?;
        let bin = ensure(&layout)?;
        {
            let _one = BUILDING
                .lock()
                .map_err(|_| anyhow::anyhow!("a Linux program build panicked"))?;
            let step = Step::start("Running Linux programs", &layout.log("linux-check"))?;
            let checked = check_all(&layout, &step);
            step.clear();
            checked?;
        }
        for name in all_programs() {
            let program = bin.join(name);
            assert!(crate::env::is_static_elf(&program), "{name} is not static");
            let mode = fs::metadata(&program)?.permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{name}");
        }
        let stamp = stamp(&layout)?;
        assert_eq!(fs::read_to_string(stamp_path(&layout))?, stamp);
        Ok(())
    }

    /// bench.c checks the file against the seed of the bench tree's.
    #[test]
    fn the_bench_file_is_the_bench_trees() {
        use kaal_test_patterns::fs::{self as trees, Kind};
        let (path, len) = BENCH_FILE;
        let kind = trees::find(trees::BENCH_TREE, path).map(|e| e.kind);
        assert!(
            matches!(kind, Some(Kind::File { len: l, seed }) if l == len && seed == BENCH_SEED)
        );
    }

    #[test]
    fn a_wrong_status_or_a_missing_line_is_named() {
        let want = Expected {
            args: Vec::new(),
            lines: vec!["x: ok".into()],
            status: 3,
        };
        assert_eq!(judge(&want, Some(3), "a\nx: ok\n"), None);
        let status = judge(&want, Some(0), "x: ok\n");
        assert_eq!(status.as_deref(), Some("exited with status 0, expected 3"));
        // A whole line, not a part of one.
        let missing = judge(&want, Some(3), "x: ok, mostly\n");
        assert_eq!(missing.as_deref(), Some("did not print [\"x: ok\"]"));
        assert!(judge(&want, None, "").is_some_and(|w| w.contains("signal")));
    }

    /// The image keeps busybox executable (0755) and each applet a symlink
    /// to it, owned by root; the programs and /etc are there.
    #[test]
    fn the_linux_tree_survives_into_an_image() -> Result<()> {
        let layout = Layout::from_build()?;
        let dir = scratch("tree")?;
        let tree = dir.join("tree");
        test_tree(&layout, &tree)?;
        let img = dir.join("disk.img");
        fs::write(&img, vec![0u8; 8 << 20])?;
        ext2::build_folder(&tree, &img, 8 << 20, 4096)?;
        assert_eq!(ext2::fsck(&img)?, Ok(()));
        let stat = ext2::debugfs(&img, "stat /bin/busybox")?;
        assert!(
            stat.contains("Type: regular    Mode:  0755")
                && stat.contains("User:     0   Group:     0"),
            "{stat}"
        );
        let size = fs::metadata(BUSYBOX)?.len();
        assert!(stat.contains(&format!("Size: {size}")), "{stat}");
        let sh = ext2::debugfs(&img, "stat /bin/sh")?;
        assert!(
            sh.contains("Type: symlink")
                && sh.contains("Fast link dest: \"busybox\"")
                && sh.contains("User:     0   Group:     0"),
            "{sh}"
        );
        let listed = ext2::list(&img, "/bin")?;
        let links = listed.iter().filter(|l| l.mode == 0o120_777).count();
        assert_eq!(links, applets()?.len());
        for name in ["ls", "cat", "[", "hello_musl", "hostile", "hello_rust"] {
            assert!(listed.iter().any(|l| l.name == name), "/bin/{name}");
        }
        for name in ["hello_musl", "hello_rust"] {
            let stat = ext2::debugfs(&img, &format!("stat /bin/{name}"))?;
            assert!(stat.contains("Mode:  0755"), "{name}: {stat}");
        }
        assert_eq!(
            ext2::debugfs(&img, "cat /etc/passwd")?,
            "root:x:0:0:root:/root:/bin/sh\n"
        );
        let tmp = ext2::debugfs(&img, "stat /tmp")?;
        assert!(tmp.contains("Mode:  01777"), "{tmp}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// A system disk's folder keeps its own files; the userland fills in
    /// the rest, without the test programs.
    #[test]
    fn the_folders_files_win_over_the_userland() -> Result<()> {
        let layout = Layout::from_build()?;
        let dir = scratch("system")?;
        let folder = dir.join("folder");
        fs::create_dir_all(folder.join("etc"))?;
        fs::write(folder.join("etc/profile"), "PS1='mine '\n")?;
        fs::create_dir_all(folder.join("home"))?;
        symlink("../etc/profile", folder.join("home/link"))?;
        let tree = dir.join("tree");
        system_tree(&layout, &folder, &tree)?;
        assert_eq!(
            fs::read_to_string(tree.join("etc/profile"))?,
            "PS1='mine '\n"
        );
        assert_eq!(
            fs::read_link(tree.join("home/link"))?,
            Path::new("../etc/profile")
        );
        assert!(tree.join("etc/passwd").is_file());
        assert!(tree.join("bin/hello_rust").is_file());
        assert!(!tree.join("bin/hostile").exists());
        assert_eq!(fs::read_link(tree.join("bin/ls"))?, Path::new("busybox"));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
