//! `cargo xtask`: builds seL4 and KaaL, boots it in QEMU, and runs its tests and benchmarks.
#![forbid(unsafe_code)]

mod bench;
mod cargo;
mod disk;
mod env;
mod ext2;
mod gdb;
mod hosttest;
mod kernel;
mod layout;
mod linux;
mod linux_peer;
mod peer;
mod qemu;
mod script;
mod step;
mod symbolize;
mod system;
mod systest;

use std::ops::AddAssign;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::cargo::{Cargo, Images, Workspace};
use crate::env::SEL4_TARGET;
use crate::layout::Layout;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, boot, test and benchmark KaaL on seL4 5.0.0 (x86_64, QEMU)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check prerequisites, build the seL4 kernel and every KaaL image.
    Build {
        #[command(flatten)]
        kernel: KernelArg,
    },
    /// Build, then boot the root task in QEMU (quit with Ctrl-A X).
    Run {
        /// QEMU accelerator: tcg (default), or kvm on real hardware.
        #[arg(long, value_enum, default_value_t = qemu::Accel::Tcg)]
        accel: qemu::Accel,
        #[command(flatten)]
        kernel: KernelArg,
        /// Start QEMU halted with its gdb stub on a free local port, and print
        /// the gdb command line to attach from another terminal.
        #[arg(long)]
        gdb: bool,
    },
    /// Build, start QEMU halted with its gdb stub, and run gdb attached to it
    /// (symbols, kaal-* commands: docs/debugging.md).
    Gdb {
        #[command(flatten)]
        kernel: KernelArg,
        /// A system test to boot instead of the default system: its image
        /// and devices (tests/system/tests.toml), and the components of its
        /// system manifest.
        test: Option<String>,
    },
    /// Run the host tests, then the system tests in QEMU.
    Test {
        #[command(flatten)]
        kernel: KernelArg,
        /// Only tests whose name contains this (host and system tests alike).
        filter: Option<String>,
        /// Only the host crates' `cargo test`.
        #[arg(long, conflicts_with = "system_only")]
        host_only: bool,
        /// Only the system tests of tests/system/tests.toml.
        #[arg(long)]
        system_only: bool,
    },
    /// Build, then run the `bench` image with a deterministic clock.
    Bench {
        /// One JSON object per result line on stdout, nothing else.
        #[arg(long)]
        json: bool,
        /// Also run the benchmark programs on this peer in the same QEMU
        /// configuration, and print both side by side with their ratio.
        #[arg(long, value_enum)]
        peer: Option<linux_peer::PeerKind>,
        #[command(flatten)]
        kernel: KernelArg,
    },
    /// rustfmt check, and clippy with warnings denied on host and seL4 crates.
    Check,
}

/// The `--kernel` option of the commands that build or boot the kernel.
#[derive(Debug, Clone, Copy, clap::Args)]
struct KernelArg {
    /// Which seL4 kernel: release (no debug system calls, no kernel printing; the
    /// default) or debug (CONFIG_DEBUG_BUILD and CONFIG_PRINTING). Each builds in its
    /// own folder under target/kaal.
    #[arg(long = "kernel", value_enum, default_value_t = kernel::Variant::Release)]
    variant: kernel::Variant,
}

/// Passed and failed counts of a test run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Cmd) -> Result<ExitCode> {
    let layout = Layout::from_build()?;
    let with = |k: KernelArg| layout.clone().with_kernel(k.variant);
    match command {
        Cmd::Build { kernel } => {
            let layout = with(kernel);
            let (_, images) = build(&layout)?;
            eprintln!("kernel:    {}", layout.kernel32().display());
            eprintln!("root task: {}", images.root_task()?.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { accel, kernel, gdb } => boot(&with(kernel), accel, gdb),
        Cmd::Gdb { kernel, test } => debug(&with(kernel), test.as_deref()),
        Cmd::Test {
            kernel,
            filter,
            host_only,
            system_only,
        } => test(&with(kernel), filter.as_deref(), !system_only, !host_only),
        Cmd::Bench { json, peer, kernel } => bench(&with(kernel), json, peer),
        // Formatting and lints do not depend on the kernel.
        Cmd::Check => check(&layout),
    }
}

/// Everything before the images: tools, venv, kernel, and the workspace's crates.
struct Prepared {
    cargo: Cargo,
    workspace: Workspace,
}

fn prepare(layout: &Layout) -> Result<Prepared> {
    env::ensure_prerequisites(layout)?;
    env::ensure_venv(layout)?;
    kernel::prepare(layout)?;
    let cargo = Cargo::new(layout);
    let workspace = cargo.workspace()?;
    Ok(Prepared { cargo, workspace })
}

fn build(layout: &Layout) -> Result<(Prepared, Images)> {
    let prepared = prepare(layout)?;
    // For the disks (the run system's and the tests'), not the images.
    linux::ensure(layout)?;
    let images = cargo::build_images(layout, &prepared.cargo, &prepared.workspace)?;
    Ok((prepared, images))
}

/// The machine of the `default_system` test: its QEMU arguments (disk and
/// network card, with systems/default.toml's host port forwards), its disk
/// image, and the URLs on the host of its forwards to an HTTP port.
fn default_machine(layout: &Layout) -> Result<(Vec<String>, std::path::PathBuf, Vec<String>)> {
    let tests = systest::load(&layout.tests_toml())?;
    let spec = tests
        .iter()
        .find(|t| t.name == "default_system")
        .context("tests.toml has no default_system test to take the machine from")?;
    let (mut args, disk) = spec.devices(layout)?;
    // The test's own forwards (free ports for its peer) are not the user's.
    qemu::drop_forwards(&mut args);
    // Only here: the default_system test boots without them, since QEMU
    // fails to start when another program on the host holds such a port.
    let forwards = system::forwards(layout, "default")?;
    qemu::add_forwards(&mut args, &forwards).context("systems/default.toml's [[forward]]")?;
    Ok((args, disk, qemu::forward_urls(&forwards)))
}

fn boot(layout: &Layout, accel: qemu::Accel, with_gdb: bool) -> Result<ExitCode> {
    let (_, images) = build(layout)?;
    let root_task = images.root_task()?;
    let (mut extra, disk, urls) = default_machine(layout)?;
    let mut serial_log = None;
    if with_gdb {
        let session = gdb::interactive(layout, &images, &root_task, Some(gdb::DEFAULT_SYSTEM))?;
        extra.extend(session.qemu_args);
        println!(
            "QEMU waits halted for gdb; attach from another terminal with:\n    {}",
            gdb::shell_line("gdb", &session.gdb_args)
        );
        serial_log = Some(session.serial_log);
    }
    let options = qemu::Options {
        accel,
        extra,
        serial_log,
        ..qemu::Options::default()
    };
    println!(
        "Booting KaaL in QEMU with a disk ({}) and a network card; quit with Ctrl-A X",
        disk.display()
    );
    for url in &urls {
        println!("The HTTP server is reachable from this machine at {url}");
    }
    // QEMU's output passes through here, so that a fault report is
    // followed by its function, file and line; the terminal stays QEMU's
    // input (Ctrl-A X quits).
    let mut child = qemu::command(&layout.kernel32(), &root_task, &options)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    if let Some(out) = child.stdout.take() {
        let mut symbolizer = symbolize::Symbolizer::new(|program| images.path(program));
        symbolize::pass_through(out, std::io::stdout(), &mut symbolizer)?;
    }
    let status = child.wait().context("waiting for qemu-system-x86_64")?;
    Ok(match status.code() {
        Some(qemu::STATUS_SUCCESS) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn debug(layout: &Layout, test: Option<&str>) -> Result<ExitCode> {
    let (_, images) = build(layout)?;
    let (root_task, mut extra, system) = match test {
        None => (
            images.root_task()?,
            default_machine(layout)?.0,
            Some(gdb::DEFAULT_SYSTEM.to_owned()),
        ),
        Some(name) => {
            let tests = systest::load(&layout.tests_toml())?;
            let Some(spec) = tests.iter().find(|t| t.name == name) else {
                let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
                bail!(
                    "no system test `{name}`; tests.toml has: {}",
                    names.join(", ")
                );
            };
            let image = images.existing(&spec.image)?;
            (
                image,
                spec.devices(layout)?.0,
                gdb::test_system(layout, spec)?,
            )
        }
    };
    let session = gdb::interactive(layout, &images, &root_task, system.as_deref())?;
    extra.extend(session.qemu_args.iter().cloned());
    let options = qemu::Options {
        extra,
        ..qemu::Options::default()
    };
    gdb::session(
        &session,
        qemu::command(&layout.kernel32(), &root_task, &options),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn test(layout: &Layout, filter: Option<&str>, host: bool, system: bool) -> Result<ExitCode> {
    let prepared = prepare(layout)?;
    let mut tally = Tally::default();
    if host {
        tally += hosttest::run(layout, &prepared.cargo, &prepared.workspace, filter)?;
    }
    if system {
        let all = systest::load(&layout.tests_toml())?;
        let selected = systest::select(&all, filter);
        if !selected.is_empty() {
            // Before the tests, so that a broken program stops the run
            // once instead of failing each test that makes a Linux disk.
            linux::ensure(layout)?;
            let images = cargo::build_images(layout, &prepared.cargo, &prepared.workspace);
            let why = format!(
                "images did not build; see {}",
                layout.log("images").display()
            );
            tally += systest::run(layout, images.as_ref().map_err(|_| why.as_str()), &selected)?;
        }
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench(layout: &Layout, json: bool, peer: Option<linux_peer::PeerKind>) -> Result<ExitCode> {
    let (_, images) = build(layout)?;
    let results = bench::run(layout, &images)?;
    let peer = match peer {
        Some(linux_peer::PeerKind::Linux) => {
            let kernel = linux_peer::ensure(layout)?;
            let figures = linux_peer::figures(layout, &kernel)?;
            Some((linux_peer::compare(&results, &figures), kernel))
        }
        None => None,
    };
    let compared = peer.as_ref().map(|(c, _)| c);
    let mut notes = bench::ratios(&results);
    if json {
        match compared {
            Some(c) => {
                for row in c {
                    println!("{}", serde_json::to_string(row)?);
                }
            }
            None => {
                for result in &results {
                    println!("{}", serde_json::to_string(result)?);
                }
            }
        }
    } else {
        print!("{}", bench::table(&results));
    }
    if let Some((c, kernel)) = &peer {
        let side_by_side = format!("{}\n{}", linux_peer::describe(kernel), linux_peer::table(c));
        notes.extend(side_by_side.lines().map(str::to_owned));
        notes.extend(linux_peer::targets(c));
    }
    // Beside the figures, not among them: stdout stays one JSON object
    // per line with --json.
    for line in notes {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(layout: &Layout) -> Result<ExitCode> {
    let prepared = prepare(layout)?;
    let Prepared { cargo, workspace } = &prepared;
    // The root task images embed the packed systems.
    cargo::build_systems(layout, cargo, workspace)?;
    let mut commands = Vec::new();
    let mut fmt = cargo.command();
    fmt.args(["fmt", "--all", "--", "--check"]);
    commands.push(fmt);
    if !workspace.host.is_empty() {
        let mut clippy = cargo.command();
        clippy
            .arg("clippy")
            .args(cargo::package_args(&workspace.host))
            .args(["--all-targets", "--", "-D", "warnings"]);
        commands.push(clippy);
    }
    if !workspace.sel4.is_empty() {
        let mut clippy = cargo.command();
        clippy
            .args(["clippy", "--target", SEL4_TARGET])
            .args(cargo::package_args(&workspace.sel4))
            .args(["--", "-D", "warnings"]);
        commands.push(clippy);
    }
    commands.extend(linux::check_commands(layout));
    let mut failed = Vec::new();
    for mut cmd in commands {
        if !run_visible(&mut cmd)? {
            failed.push(step::describe(&cmd));
        }
    }
    if !failed.is_empty() {
        bail!("check failed:\n    {}", failed.join("\n    "));
    }
    eprintln!("✓ check passed");
    Ok(ExitCode::SUCCESS)
}

/// Runs a command with the terminal as its output; whether it exited 0.
fn run_visible(cmd: &mut Command) -> Result<bool> {
    let shown = step::describe(cmd);
    eprintln!("==> {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("starting `{shown}`"))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Lines of code in a source file: neither blank nor only a comment.
    fn code_lines(text: &str) -> usize {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .count()
    }

    /// The driver guide states how many lines of code each driver takes;
    /// the figures must be the code's.
    #[test]
    fn driver_guide_line_counts_match_the_code() -> Result<()> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let guide = std::fs::read_to_string(root.join("docs/writing-a-driver.md"))?;
        let flat = guide.split_whitespace().collect::<Vec<_>>().join(" ");
        for (source, prefix) in [
            (
                "drivers/uart16550/src/main.rs",
                "`drivers/uart16550/src/main.rs`: ",
            ),
            (
                "drivers/pit_timer/src/main.rs",
                "second driver on the kit: ",
            ),
        ] {
            let n = code_lines(&std::fs::read_to_string(root.join(source))?);
            let stated = format!("{prefix}{n} lines of code");
            assert!(flat.contains(&stated), "the guide should say {stated:?}");
            if source.contains("uart16550") {
                assert!(
                    n < 200,
                    "the 16550 driver's target is under 200 lines ({n})"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn test_flags_parse() -> Result<()> {
        let cli = Cli::try_parse_from(["cargo xtask", "test", "ipc", "--system-only"])?;
        match cli.command {
            Cmd::Test {
                kernel,
                filter,
                host_only,
                system_only,
            } => {
                assert_eq!(filter.as_deref(), Some("ipc"));
                assert!(!host_only && system_only);
                assert_eq!(kernel.variant, kernel::Variant::Release);
            }
            other => bail!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["x", "test", "--host-only", "--system-only"]).is_err());
        assert!(Cli::try_parse_from(["x", "run", "--accel", "kvm"]).is_ok());
        assert!(Cli::try_parse_from(["x", "run", "--accel", "hvf"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["x", "run", "--gdb"])?.command,
            Cmd::Run { gdb: true, .. }
        ));
        Ok(())
    }

    #[test]
    fn the_kernel_is_release_unless_asked() -> Result<()> {
        let variant = |args: &[&str]| -> Result<kernel::Variant> {
            Ok(match Cli::try_parse_from(args)?.command {
                Cmd::Build { kernel }
                | Cmd::Run { kernel, .. }
                | Cmd::Test { kernel, .. }
                | Cmd::Bench { kernel, .. } => kernel.variant,
                Cmd::Gdb { kernel, .. } => kernel.variant,
                Cmd::Check => bail!("no kernel option"),
            })
        };
        use kernel::Variant::{Debug, Release};
        for cmd in ["build", "run", "test", "bench", "gdb"] {
            assert_eq!(variant(&["x", cmd])?, Release, "{cmd}");
            assert_eq!(variant(&["x", cmd, "--kernel", "debug"])?, Debug, "{cmd}");
            assert_eq!(variant(&["x", cmd, "--kernel", "release"])?, Release);
            assert!(variant(&["x", cmd, "--kernel", "verbose"]).is_err());
        }
        assert_eq!(
            variant(&["x", "test", "fault", "--system-only", "--kernel", "debug"])?,
            Debug
        );
        assert!(Cli::try_parse_from(["x", "check", "--kernel", "debug"]).is_err());
        Ok(())
    }

    #[test]
    fn tallies_add_up() {
        let mut tally = Tally {
            passed: 3,
            failed: 0,
        };
        tally += Tally {
            passed: 2,
            failed: 1,
        };
        assert_eq!(
            tally,
            Tally {
                passed: 5,
                failed: 1
            }
        );
    }
}
