//! The Linux peer: Debian's kernel booted in KaaL's QEMU configuration (same
//! CPU model, memory, devices and `-icount`), running the same static
//! programs from the same ext2 disk, so that each figure has a Linux twin.
//!
//! The kernel package is downloaded and extracted under `target/kaal`
//! (nothing is installed); an initramfs of the host's static busybox, the
//! virtio and ext4 modules and a generated `/init` mounts the disk and runs
//! the program in a chroot of it, so absolute paths (`/bin/true`) name the
//! disk's files on both systems.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::bench::{self, Measurement};

use crate::layout::Layout;
use crate::qemu;
use crate::step::{self, Ending, Step};

/// The package that depends on the current kernel image package.
const META_PACKAGE: &str = "linux-image-amd64";

/// Linux's command line. seL4 5.0.0 predates the Meltdown and Spectre
/// mitigations, so Linux runs without them to compare like with like.
pub const APPEND: &str = "console=ttyS0 quiet mitigations=off panic=-1";

/// The modules the peer loads (with what they depend on): the disk and the
/// network card on virtio PCI, and ext2 through the ext4 driver (Debian
/// builds no ext2 driver; `CONFIG_EXT4_USE_FOR_EXT2`), which asks the crypto
/// API for crc32c at mount (no `modprobe` here to find it).
const MODULES: [&str; 5] = [
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "crc32c_generic",
    "ext4",
];

/// The init script's lines around the program's output.
const READY: &str = "linux-peer: disk mounted";
const STATUS: &str = "linux-peer: status ";

/// Time limit of one boot.
const TIMEOUT: Duration = Duration::from_secs(300);

/// `linux_peer = { command = [...], serial = [...] }` of a system test:
/// once the KaaL boot passed, the Linux peer boots with the same devices
/// (a fresh disk) and runs `command` from the disk; it must exit 0 and
/// print every `serial` line. Each benchmark figure it prints must be
/// positive and have a positive twin in the KaaL boot's log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerTest {
    pub command: Vec<String>,
    #[serde(default)]
    pub serial: Vec<String>,
}

/// Debian's kernel, extracted.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub vmlinuz: PathBuf,
    /// `uname -r`, e.g. `6.1.0-57-amd64`.
    pub release: String,
    /// The package's version, e.g. `6.1.192-3`.
    pub version: String,
    /// [`MODULES`] and what they depend on, each after its dependencies.
    pub modules: Vec<PathBuf>,
}

fn dir(layout: &Layout) -> PathBuf {
    layout.kaal.join("linux-peer")
}

/// The kernel, downloaded and extracted the first time.
pub fn ensure(layout: &Layout) -> Result<Kernel> {
    let root = dir(layout).join("root");
    if let Ok(kernel) = find_kernel(&root) {
        return Ok(kernel);
    }
    let log = layout.log("linux-peer-fetch");
    step::step("Fetching Debian's Linux kernel (peer)", &log, |step| {
        fetch(layout, &root, step)
    })?;
    find_kernel(&root)
}

fn fetch(layout: &Layout, root: &Path, step: &Step) -> Result<()> {
    let debs = dir(layout).join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let package = match kernel_package(step)? {
        Some(p) => p,
        None if running_as_root() => {
            step.run(Command::new("apt-get").arg("update"))?;
            kernel_package(step)?.with_context(|| {
                format!("apt knows no package {META_PACKAGE} even after apt-get update")
            })?
        }
        None => bail!(
            "apt knows no package {META_PACKAGE}: its lists are empty; run `sudo apt-get update`"
        ),
    };
    // Download only: nothing is installed into the host system.
    step.run(
        Command::new("apt-get")
            .args(["download", &package])
            .current_dir(&debs),
    )?;
    let deb = fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {package} package"))?;
    let _ = fs::remove_dir_all(root);
    step.run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root))?;
    let version = deb
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('_').nth(1))
        .unwrap_or("unknown")
        .to_owned();
    fs::write(root.join("version"), version)?;
    Ok(())
}

/// The versioned package `linux-image-amd64` depends on, if apt knows it.
fn kernel_package(step: &Step) -> Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(["depends", META_PACKAGE])
        .output()
        .context("running apt-cache (is this a Debian system?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    step.note(&format!(
        "apt-cache depends {META_PACKAGE}: {}",
        text.trim()
    ))?;
    Ok(text.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        dep.starts_with("linux-image-").then(|| dep.to_owned())
    }))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn find_kernel(root: &Path) -> Result<Kernel> {
    let modules_root = root.join("lib/modules");
    let release = fs::read_dir(&modules_root)
        .with_context(|| format!("reading {}", modules_root.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .next()
        .with_context(|| format!("{} is empty", modules_root.display()))?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        bail!("{} is missing", vmlinuz.display());
    }
    let version = fs::read_to_string(root.join("version"))
        .context("the extracted kernel has no version file")?
        .trim()
        .to_owned();
    let mut index = BTreeMap::new();
    index_modules(&modules_root.join(&release).join("kernel"), &mut index)?;
    let modules = load_order(&MODULES, &index)?;
    Ok(Kernel {
        vmlinuz,
        release,
        version,
        modules,
    })
}

/// Module name (`-` read as `_`, as the kernel does) to file, under `dir`.
fn index_modules(dir: &Path, index: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            index_modules(&path, index)?;
        } else if let Some(stem) = path.file_name().and_then(|n| n.to_str()) {
            if let Some(name) = stem.strip_suffix(".ko") {
                index.insert(name.replace('-', "_"), path.clone());
            }
        }
    }
    Ok(())
}

/// `wanted` and their dependencies, each after what it depends on (the
/// order busybox `insmod` needs, without `modprobe`'s `modules.dep`).
fn load_order(wanted: &[&str], index: &BTreeMap<String, PathBuf>) -> Result<Vec<PathBuf>> {
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        seen: &mut Vec<String>,
        out: &mut Vec<PathBuf>,
    ) -> Result<()> {
        if seen.iter().any(|s| s == name) {
            return Ok(());
        }
        seen.push(name.to_owned());
        let path = index
            .get(name)
            .with_context(|| format!("the kernel has no module {name}"))?;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for dep in depends(&bytes) {
            visit(&dep, index, seen, out)?;
        }
        out.push(path.clone());
        Ok(())
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    for name in wanted {
        visit(name, index, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// The `depends=` entry of a module's `.modinfo` strings.
fn depends(ko: &[u8]) -> Vec<String> {
    ko.split(|&b| b == 0)
        .filter_map(|s| s.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `/init`: loads the modules, mounts the disk and runs `command` in a
/// chroot of it, then powers off. Words are single-quoted for the shell.
fn init_script(modules: &[String], command: &[String]) -> String {
    let quoted: Vec<String> = command
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let mut s = String::from("#!/bin/busybox sh\n/bin/busybox --install -s /bin\n");
    s.push_str("mount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n");
    for m in modules {
        s.push_str(&format!(
            "insmod /lib/modules/{m}.ko || echo 'linux-peer: insmod {m} failed'\n"
        ));
    }
    // QEMU's user network gives the guest 10.0.2.15 and the host 10.0.2.2,
    // as KaaL's DHCP client learns; set statically (no DHCP client here).
    s.push_str("ip link set lo up\n");
    s.push_str("if ip link set eth0 up 2>/dev/null; then\n");
    s.push_str("  ip addr add 10.0.2.15/24 dev eth0\n  ip route add default via 10.0.2.2\nfi\n");
    s.push_str("if mount -t ext2 /dev/vda /mnt; then\n");
    s.push_str(&format!("  echo '{READY}'\n"));
    s.push_str(&format!("  chroot /mnt {}\n", quoted.join(" ")));
    s.push_str(&format!("  echo \"{STATUS}$?\"\n"));
    s.push_str("  umount /mnt\nfi\npoweroff -f\n");
    s
}

/// One file of the initramfs.
struct Entry {
    name: String,
    /// File type and permission bits.
    mode: u32,
    /// A character device's major and minor numbers.
    rdev: (u32, u32),
    bytes: Vec<u8>,
}

impl Entry {
    fn new(name: &str, mode: u32, bytes: Vec<u8>) -> Self {
        Entry {
            name: name.to_owned(),
            mode,
            rdev: (0, 0),
            bytes,
        }
    }
}

/// The entries as a newc archive, owned by root.
fn pack(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (ino, e) in (1..).zip(entries) {
        let size = u32::try_from(e.bytes.len()).context("an initramfs file over 4 GiB")?;
        let mut w = cpio::newc::Builder::new(&e.name)
            .ino(ino)
            .mode(e.mode)
            .nlink(if e.mode & 0o040000 != 0 { 2 } else { 1 })
            .rdev_major(e.rdev.0)
            .rdev_minor(e.rdev.1)
            .write(&mut out, size);
        std::io::Write::write_all(&mut w, &e.bytes)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}

/// The initramfs that runs `command`: busybox, the modules and `/init`.
fn initramfs(kernel: &Kernel, command: &[String]) -> Result<Vec<u8>> {
    let busybox = crate::env::BUSYBOX;
    if !crate::env::is_static_elf(Path::new(busybox)) {
        bail!("{busybox} is not a static program: the Debian package busybox-static provides one");
    }
    let mut entries: Vec<Entry> = ["bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules"]
        .iter()
        .map(|d| Entry::new(d, 0o040755, Vec::new()))
        .collect();
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    entries.push(Entry {
        rdev: (5, 1),
        ..Entry::new("dev/console", 0o020600, Vec::new())
    });
    entries.push(Entry::new("bin/busybox", 0o100755, fs::read(busybox)?));
    let mut names = Vec::new();
    for m in &kernel.modules {
        let name = m
            .file_stem()
            .and_then(|n| n.to_str())
            .with_context(|| format!("module path {}", m.display()))?
            .to_owned();
        let bytes = fs::read(m).with_context(|| format!("reading {}", m.display()))?;
        entries.push(Entry::new(
            &format!("lib/modules/{name}.ko"),
            0o100644,
            bytes,
        ));
        names.push(name);
    }
    let init = init_script(&names, command).into_bytes();
    entries.push(Entry::new("init", 0o100755, init));
    pack(&entries)
}

/// What one boot of the peer printed, and the program's exit status.
#[derive(Debug)]
pub struct Run {
    pub serial: String,
    pub status: Option<i32>,
    /// `linux.boot_wall_ms`, if the program printed its boot line.
    pub boot_wall: Option<Measurement>,
}

/// Writes the initramfs that runs `command` as `initramfs-<label>.cpio`;
/// its path, for as many boots as want it.
fn initramfs_file(
    layout: &Layout,
    kernel: &Kernel,
    label: &str,
    command: &[String],
) -> Result<PathBuf> {
    let image = dir(layout).join(format!("initramfs-{label}.cpio"));
    fs::write(&image, initramfs(kernel, command)?)
        .with_context(|| format!("writing {}", image.display()))?;
    Ok(image)
}

/// QEMU's command that boots Linux from `image` (an [`initramfs_file`])
/// with `extra` arguments (the devices).
fn command_line(kernel: &Kernel, image: &Path, extra: Vec<String>, icount: bool) -> Command {
    let options = qemu::Options {
        icount,
        extra,
        append: Some(APPEND.to_owned()),
        ..qemu::Options::default()
    };
    qemu::command(&kernel.vmlinuz, image, &options)
}

/// Boots Linux from `image` with `extra` QEMU arguments (the devices);
/// `name` names its log.
pub fn boot(
    layout: &Layout,
    kernel: &Kernel,
    name: &str,
    image: &Path,
    extra: Vec<String>,
    icount: bool,
) -> Result<Run> {
    let mut cmd = command_line(kernel, image, extra, icount);
    let log = layout.log(&format!("linux-peer-{name}"));
    step::step(&format!("Booting the Linux peer ({name})"), &log, |step| {
        let (ending, boot_wall) = bench::timed_boot(step, &mut cmd, TIMEOUT)?;
        match ending {
            // `poweroff -f` ends QEMU with status 0.
            Ending::Exited(0) => {}
            other => bail!("QEMU {other}"),
        }
        let serial = String::from_utf8_lossy(&fs::read(step.log_path())?).into_owned();
        if !serial.contains(READY) {
            bail!("the peer did not get to mount the disk");
        }
        let status = serial
            .lines()
            .find_map(|l| l.trim().strip_prefix(STATUS)?.trim().parse().ok());
        Ok(Run {
            serial,
            status,
            boot_wall,
        })
    })
}

/// A system test's Linux half (`linux_peer`): `Err(reason)` when it failed.
/// `kaal_serial` is the KaaL boot's log, whose figures the peer's must
/// match.
pub fn judge(
    layout: &Layout,
    test: &str,
    peer: &PeerTest,
    extra: Vec<String>,
    kaal_serial: &str,
) -> Result<Result<(), String>> {
    let kernel = ensure(layout)?;
    let image = initramfs_file(layout, &kernel, test, &peer.command)?;
    let run = match boot(layout, &kernel, test, &image, extra, false) {
        Ok(run) => run,
        Err(e) => return Ok(Err(format!("the Linux peer: {e:#}"))),
    };
    Ok(check(&run, peer, kaal_serial).map_err(|why| format!("the Linux peer: {why}")))
}

fn check(run: &Run, peer: &PeerTest, kaal_serial: &str) -> Result<(), String> {
    if run.status != Some(0) {
        return Err(format!(
            "{:?} ended with status {:?}",
            peer.command, run.status
        ));
    }
    if let Some(missing) = peer
        .serial
        .iter()
        .find(|l| !run.serial.contains(l.as_str()))
    {
        return Err(format!("no serial line {missing:?}"));
    }
    let figures = |log: &str| bench::parse_results(log).map_err(|e| format!("{e:#}"));
    let (linux, kaal) = (figures(&run.serial)?, figures(kaal_serial)?);
    if linux.is_empty() {
        return Ok(());
    }
    for f in &linux {
        let twin = kaal
            .iter()
            .find(|k| k.name == f.name)
            .ok_or_else(|| format!("KaaL printed no figure {}", f.name))?;
        if f.value == 0 || twin.value == 0 {
            return Err(format!(
                "{} is {} on Linux and {} on KaaL: not both positive",
                f.name, f.value, twin.value
            ));
        }
    }
    Ok(())
}

/// Which peer `cargo xtask bench --peer` compares KaaL with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// Debian's Linux kernel in the same QEMU configuration.
    Linux,
}

/// The benchmark program both systems run: the process server's command in
/// tests/system/systems/linux_bench.toml.
const BENCH_COMMAND: [&str; 2] = ["/bin/bench", "/big.bin"];
/// The network benchmark program: tests/system/systems/linux_net_bench.toml's.
const NET_COMMAND: [&str; 2] = ["/bin/netbench", "serve"];

/// The Linux side of `cargo xtask bench --peer linux`: [`BENCH_COMMAND`]
/// and [`NET_COMMAND`] on the peer under `-icount`, with the devices of
/// the tests that run KaaL's twin images, booted as often as KaaL's and
/// summed up alike.
pub fn figures(layout: &Layout, kernel: &Kernel) -> Result<Vec<Measurement>> {
    let tests = crate::systest::load(&layout.tests_toml())?;
    let spec = tests
        .iter()
        .find(|t| t.image == bench::LINUX_BENCH_IMAGE && t.linux_peer.is_some())
        .context("tests.toml has no Linux peer test of the linux_bench image")?;
    let words = |c: &[&str]| c.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let image = initramfs_file(layout, kernel, "bench", &words(&BENCH_COMMAND))?;
    let mut runs = Vec::new();
    for run in 1..=bench::LINUX_RUNS {
        let (extra, _) = spec.devices(layout)?;
        let done = boot(layout, kernel, &format!("bench-{run}"), &image, extra, true)?;
        if done.status != Some(0) || !done.serial.contains(bench::LINUX_DONE) {
            bail!(
                "the Linux peer's benchmark ended with status {:?} in boot {run}",
                done.status
            );
        }
        let mut results = bench::parse_results(&done.serial)?;
        results.extend(done.boot_wall);
        runs.push(results);
    }
    for line in bench::run_values(&runs) {
        eprintln!("Linux peer: {line}");
    }
    let mut figures = bench::first_and_spread(&runs, &bench::LINUX_VARIABLE)?;
    // The network program of the POSIX layer's network benchmarks, driven
    // from the host through the same forwards, booted as often.
    let net = initramfs_file(layout, kernel, "net", &words(&NET_COMMAND))?;
    figures.extend(bench::net_runs(
        layout,
        &tests,
        &bench::NET_LINUX,
        |run, extra, ports| {
            let cmd = command_line(kernel, &net, extra, true);
            let name = format!("linux-peer-net-{run}");
            bench::drive_net(layout, &bench::NET_LINUX, &name, cmd, ports)
        },
    )?);
    Ok(figures)
}

/// The peer's description printed next to its figures.
pub fn describe(k: &Kernel) -> String {
    format!(
        "Linux peer: Debian's kernel {} (package version {}), command line `{APPEND}`, \
         same QEMU machine and -icount as KaaL",
        k.release, k.version
    )
}

/// One KaaL figure with its Linux twin, if the peer has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compared {
    #[serde(flatten)]
    pub kaal: Measurement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<u64>,
    /// KaaL's value over Linux's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

/// Every KaaL figure, with its twin and their ratio where Linux has one.
pub fn compare(kaal: &[Measurement], linux: &[Measurement]) -> Vec<Compared> {
    kaal.iter()
        .map(|k| {
            let peer = linux.iter().find(|l| l.name == k.name).map(|l| l.value);
            let ratio = peer
                .filter(|&p| p > 0)
                .map(|p| (k.value as f64 / p as f64 * 1000.0).round() / 1000.0);
            Compared {
                kaal: k.clone(),
                peer,
                ratio,
            }
        })
        .collect()
}

/// The side-by-side table: the figures both systems have.
pub fn table(compared: &[Compared]) -> String {
    let rows: Vec<[String; 5]> = compared
        .iter()
        .filter_map(|c| {
            Some([
                c.kaal.name.clone(),
                c.kaal.value.to_string(),
                c.peer?.to_string(),
                format!("{:.3}", c.ratio?),
                c.kaal.unit.clone(),
            ])
        })
        .collect();
    let head = ["figure", "KaaL", "Linux", "KaaL/Linux", "unit"].map(str::to_owned);
    let mut w = [0usize; 4];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, cell) in w.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for [name, kaal, linux, ratio, unit] in std::iter::once(&head).chain(&rows) {
        let [a, b, c, d] = w;
        out.push_str(&format!(
            "{name:<a$}  {kaal:>b$}  {linux:>c$}  {ratio:>d$}  {unit}\n"
        ));
    }
    out
}

/// The issue's targets on KaaL/Linux ratios: (figure, at most, limit).
const TARGETS: [(&str, bool, f64); 4] = [
    ("linux.boot_ticks", true, 0.1),
    ("linux.fork_exec_wait", true, 1.0),
    ("linux.tcp_rx_mib_per_sec", false, 0.8),
    ("linux.read_mib_per_sec", false, 0.5),
];

/// One line per target whose figure both systems have: met or missed.
pub fn targets(compared: &[Compared]) -> Vec<String> {
    TARGETS
        .iter()
        .filter_map(|&(name, at_most, limit)| {
            let r = compared.iter().find(|c| c.kaal.name == name)?.ratio?;
            let met = if at_most { r <= limit } else { r >= limit };
            let words = if at_most { "at most" } else { "at least" };
            Some(format!(
                "KaaL/Linux {name} = {r:.3} (target {words} {limit:.1}: {})",
                if met { "met" } else { "missed" }
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_list() {
        let ko = b"\x7fELF...\0license=GPL\0depends=virtio,virtio_ring,crc-16\0name=x\0";
        assert_eq!(depends(ko), ["virtio", "virtio_ring", "crc_16"]);
        assert!(depends(b"\0depends=\0").is_empty());
    }

    #[test]
    fn modules_load_after_their_dependencies() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("kaal-peer-{}", std::process::id()));
        fs::create_dir_all(dir.join("a/b"))?;
        fs::write(dir.join("a/top.ko"), b"\0depends=mid,base\0")?;
        fs::write(dir.join("a/b/mid.ko"), b"\0depends=base\0")?;
        fs::write(dir.join("base.ko"), b"\0depends=\0")?;
        let mut index = BTreeMap::new();
        index_modules(&dir, &mut index)?;
        let order = load_order(&["top"], &index)?;
        let names: Vec<_> = order
            .iter()
            .filter_map(|p| p.file_stem()?.to_str())
            .collect();
        assert_eq!(names, ["base", "mid", "top"]);
        assert!(load_order(&["nothing"], &index).is_err());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_init_script_quotes_the_command() {
        let s = init_script(
            &["virtio".into()],
            &["/bin/sh".into(), "-c".into(), "echo 'hi'".into()],
        );
        assert!(s.contains("insmod /lib/modules/virtio.ko"));
        assert!(s.contains(r"  chroot /mnt '/bin/sh' '-c' 'echo '\''hi'\'''"));
        assert!(s.ends_with("poweroff -f\n"));
    }

    /// busybox's cpio (the peer's own) lists what was packed.
    #[test]
    fn the_archive_lists_in_busybox_cpio() -> Result<()> {
        let bytes = pack(&[
            Entry::new("bin", 0o040755, Vec::new()),
            Entry::new("bin/x", 0o100755, b"12345".to_vec()),
            Entry {
                rdev: (5, 1),
                ..Entry::new("dev/console", 0o020600, Vec::new())
            },
        ])?;
        let path = std::env::temp_dir().join(format!("kaal-cpio-{}", std::process::id()));
        fs::write(&path, &bytes)?;
        let out = Command::new(crate::env::BUSYBOX)
            .args(["cpio", "-tv", "-F"])
            .arg(&path)
            .output()?;
        fs::remove_file(&path)?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" bin"));
        assert!(lines[1].starts_with("-rwxr-xr-x") && lines[1].contains(" 5 "));
        assert!(lines[2].starts_with("crw-------") && lines[2].ends_with(" dev/console"));
        Ok(())
    }

    fn run(serial: &str, status: Option<i32>) -> Run {
        Run {
            serial: serial.to_owned(),
            status,
            boot_wall: None,
        }
    }

    #[test]
    fn a_peer_run_needs_status_lines_and_twin_figures() {
        let peer = PeerTest {
            command: vec!["/bin/bench".into()],
            serial: vec!["bench: ok".into()],
        };
        let kaal = "KAAL-BENCH linux.getpid 2255 ticks\n";
        let good = "KAAL-BENCH linux.getpid 700 ticks\nbench: ok\n";
        assert_eq!(check(&run(good, Some(0)), &peer, kaal), Ok(()));
        assert!(check(&run(good, Some(1)), &peer, kaal).is_err());
        assert!(check(&run(good, None), &peer, kaal).is_err());
        assert!(check(
            &run("KAAL-BENCH linux.getpid 7 ticks\n", Some(0)),
            &peer,
            kaal
        )
        .is_err());
        let zero = "KAAL-BENCH linux.getpid 0 ticks\nbench: ok\n";
        assert!(check(&run(zero, Some(0)), &peer, kaal).is_err());
        let other = "KAAL-BENCH linux.other 5 ticks\nbench: ok\n";
        assert!(check(&run(other, Some(0)), &peer, kaal).is_err());
    }

    fn m(name: &str, value: u64) -> Measurement {
        Measurement {
            name: name.to_owned(),
            value,
            unit: "ticks".to_owned(),
        }
    }

    #[test]
    fn figures_are_compared_with_their_twins() -> Result<()> {
        let kaal = [
            m("linux.getpid", 2000),
            m("sel4.call", 400),
            m("linux.fork_exec_wait", 900),
        ];
        let linux = [m("linux.getpid", 800), m("linux.fork_exec_wait", 1000)];
        let c = compare(&kaal, &linux);
        assert_eq!(c[0].ratio, Some(2.5));
        assert_eq!((c[1].peer, c[1].ratio), (None, None));
        let json = serde_json::to_string(&c[0])?;
        assert_eq!(
            json,
            r#"{"name":"linux.getpid","value":2000,"unit":"ticks","peer":800,"ratio":2.5}"#
        );
        assert_eq!(
            serde_json::to_string(&c[1])?,
            r#"{"name":"sel4.call","value":400,"unit":"ticks"}"#
        );
        let t = table(&c);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.contains("linux.getpid") && t.contains("2.500") && !t.contains("sel4.call"));
        assert_eq!(
            targets(&c),
            ["KaaL/Linux linux.fork_exec_wait = 0.900 (target at most 1.0: met)"]
        );
        Ok(())
    }

    /// The peer runs what KaaL's process server runs.
    #[test]
    fn the_bench_command_is_the_systems() -> Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let system = fs::read_to_string(root.join("tests/system/systems/linux_bench.toml"))?;
        let args = format!("args = {:?}", BENCH_COMMAND);
        assert!(system.contains(&args), "linux_bench.toml should say {args}");
        let system = fs::read_to_string(root.join("tests/system/systems/linux_net_bench.toml"))?;
        let args = format!("args = {:?}", NET_COMMAND);
        assert!(
            system.contains(&args),
            "linux_net_bench.toml should say {args}"
        );
        Ok(())
    }
}
