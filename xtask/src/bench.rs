//! Benchmarks: boot the `bench` image with a deterministic clock and read its
//! `KAAL-BENCH <name> <value> <unit>` lines.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cargo::Images;
use crate::layout::Layout;
use crate::peer::bench::{self as host, HostFigures};
use crate::peer::{Limits, Log, Peer, Ports};
use crate::qemu::{self, STATUS_SUCCESS};
use crate::step::{self, Ending};
use crate::systest;

/// Binary of package `kaal-systest` holding the benchmarks.
const BENCH_IMAGE: &str = "bench";
/// The device benchmarks, booted separately with a disk and a network card
/// (QEMU's device I/O runs outside the instruction count, so it would make
/// the other figures vary).
const DEVICE_BENCH_IMAGE: &str = "bench_devices";

/// The network benchmarks: the TCP/IP service with `sock_bench` and
/// httpd, driven from this machine through QEMU's user network (slirp),
/// which runs outside the instruction count: booted [`NET_RUNS`] times,
/// each figure the median, with its spread beside it.
const NET_BENCH_IMAGE: &str = "net_stack_bench";
const NET_RUNS: usize = 3;
/// Each read and write of the host side: a stalled stream fails its run
/// after this.
const NET_IO: Duration = Duration::from_secs(10);
/// The guest's line once its listeners are up: the host side starts.
const NET_READY: &str = "sock_bench: ready";
/// Figures the guest prints in each run.
const NET_GUEST_FIGURES: [&str; 4] = [
    "net.tcp_rx_mib_per_sec",
    "net.rx_ticks_per_kib",
    "net.tcp_tx_mib_per_sec",
    "net.tcp_rr_per_sec",
];
/// The same benchmarks through the POSIX layer: `tests/linux/netbench.c`
/// on the process server serves the sink, source and echo (no HTTP) on
/// the same driver, timer and netstack; booted [`NET_RUNS`] times too.
const LINUX_NET_IMAGE: &str = "linux_net_bench";
const LINUX_NET_READY: &str = "netbench: ready";
const LINUX_NET_FIGURES: [&str; 3] = [
    "linux.tcp_rx_mib_per_sec",
    "linux.tcp_tx_mib_per_sec",
    "linux.tcp_rr_per_sec",
];

/// One of the two network benchmark systems.
pub struct NetSystem {
    image: &'static str,
    ready: &'static str,
    figures: &'static [&'static str],
    /// The native one: its host side also times the HTTP requests.
    native: bool,
}

const NET_NATIVE: NetSystem = NetSystem {
    image: NET_BENCH_IMAGE,
    ready: NET_READY,
    figures: &NET_GUEST_FIGURES,
    native: true,
};

/// The POSIX layer's: what the Linux peer runs too.
pub const NET_LINUX: NetSystem = NetSystem {
    image: LINUX_NET_IMAGE,
    ready: LINUX_NET_READY,
    figures: &LINUX_NET_FIGURES,
    native: false,
};

const NET_SYSTEMS: [&NetSystem; 2] = [&NET_NATIVE, &NET_LINUX];
/// Under `-icount` like the others: the streams run as fast in wall time
/// as without it. (Long streams stall either way: see host::FULL.)
const NET_ICOUNT: bool = true;
/// Time limit of one run of the network benchmarks.
const NET_TIMEOUT: Duration = Duration::from_secs(120);

/// The POSIX layer's benchmarks (tests/linux/bench.c on the process
/// server), booted [`LINUX_RUNS`] times: [`LINUX_VARIABLE`] figures are
/// given as median and spread; the others come from the first boot (the
/// other boots' values are printed beside them, and repeat).
pub const LINUX_BENCH_IMAGE: &str = "linux_bench";
pub const LINUX_RUNS: usize = 3;
/// Figures the Linux benchmark prints in each boot.
const LINUX_FIGURES: [&str; 11] = [
    "linux.boot_ticks",
    "linux.getpid",
    "linux.pipe_pingpong",
    "linux.fork_exec_wait",
    "linux.epoll_wait_ready",
    "linux.futex_pingpong",
    "linux.thread_create_join",
    "linux.read_mib_per_sec",
    "linux.read_cached_mib_per_sec",
    "linux.write_fsync_mib_per_sec",
    "linux.create_stat_unlink",
];
/// The Linux figures that vary from boot to boot: the disk's I/O (the
/// boot's reads, the cold read, the writes, the files' blocks) runs
/// outside the instruction count, and the cached read follows it. The
/// figures of two processes or threads vary a little too (the ping-pong by about 1%, fork+exec+wait by 0.002%): the
/// disk reads before them end at varying instruction counts, so the
/// kernel's timer ticks fall elsewhere in them (likely; getpid, one
/// process, repeats exactly).
pub const LINUX_VARIABLE: [&str; 9] = [
    "linux.boot_ticks",
    "linux.pipe_pingpong",
    "linux.fork_exec_wait",
    "linux.futex_pingpong",
    "linux.thread_create_join",
    "linux.read_mib_per_sec",
    "linux.read_cached_mib_per_sec",
    "linux.write_fsync_mib_per_sec",
    "linux.create_stat_unlink",
];
/// The Linux benchmark's last line when every call succeeded.
pub const LINUX_DONE: &str = "bench: ok";

/// Marker starting every result line the guest prints.
const MARKER: &str = "KAAL-BENCH";

/// Time limit for the whole benchmark run.
const TIMEOUT: Duration = Duration::from_secs(300);

/// One measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measurement {
    pub name: String,
    pub value: u64,
    pub unit: String,
}

/// Reads every `KAAL-BENCH <name> <value> <unit>` line; a malformed one is an error.
///
/// The marker may follow other text on the same line (kernel output can interleave).
pub fn parse_results(serial_log: &str) -> Result<Vec<Measurement>> {
    let mut results = Vec::new();
    for (number, line) in serial_log.lines().enumerate() {
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let rest = line.get(at + MARKER.len()..).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let [name, value, unit] = fields.as_slice() else {
            bail!(
                "serial line {}: expected `{MARKER} <name> <value> <unit>`, got {line:?}",
                number + 1
            );
        };
        let value = value.parse().with_context(|| {
            format!(
                "serial line {}: value {value:?} is not an unsigned integer",
                number + 1
            )
        })?;
        results.push(Measurement {
            name: (*name).to_owned(),
            value,
            unit: (*unit).to_owned(),
        });
    }
    Ok(results)
}

/// An aligned table: name, value (right-aligned), unit.
pub fn table(results: &[Measurement]) -> String {
    let name_width = results
        .iter()
        .map(|r| r.name.len())
        .chain(std::iter::once("name".len()))
        .max()
        .unwrap_or(4);
    let value_width = results
        .iter()
        .map(|r| r.value.to_string().len())
        .chain(std::iter::once("value".len()))
        .max()
        .unwrap_or(5);
    let mut out = format!("{:<name_width$}  {:>value_width$}  unit\n", "name", "value");
    for r in results {
        out.push_str(&format!(
            "{:<name_width$}  {:>value_width$}  {}\n",
            r.name, r.value, r.unit
        ));
    }
    out
}

/// A bound on a ratio of two figures, in thousandths, or none (the
/// ratio is reported only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    AtLeast(u64),
    AtMost(u64),
    Report,
}

/// Ratios between figures of the same `cargo xtask bench` run, which no
/// one image can print: a figure, the one it is read against, and the
/// target.
const RATIOS: [(&str, &str, Bound); 6] = [
    // Same boot: the file system's cold read against the raw disk's.
    (
        "fs.read_mib_per_sec",
        "blk.read_mib_per_sec",
        Bound::AtLeast(800),
    ),
    // Different boots: a stat against the plain RPC it is carried by.
    ("fs.stat_ticks", "ipc.rpc_roundtrip", Bound::AtMost(3000)),
    // Different boots: a Linux system call (a fault to the process
    // server and its reply) against seL4's call and reply.
    ("linux.getpid", "sel4.call_replyrecv", Bound::AtMost(1500)),
    // Different boots, same file and VFS: a Linux process's cold read
    // (median of its boots) against the VFS client's.
    (
        "linux.read_mib_per_sec",
        "fs.read_mib_per_sec",
        Bound::Report,
    ),
    // Different boots of one invocation (medians), the same netstack and
    // slirp: a Linux program's TCP through the POSIX layer against a
    // native client of the sockets protocol.
    (
        "linux.tcp_rr_per_sec",
        "net.tcp_rr_per_sec",
        Bound::AtLeast(700),
    ),
    (
        "linux.tcp_rx_mib_per_sec",
        "net.tcp_rx_mib_per_sec",
        Bound::AtLeast(700),
    ),
];

/// Thousandths as `1.234`.
fn milli(m: u64) -> String {
    format!("{}.{:03}", m / 1000, m % 1000)
}

/// The [`RATIOS`] whose two figures were measured, one line each:
/// `ratio a / b = 0.812 (target at least 0.800: met)`, or `(no target)`.
pub fn ratios(results: &[Measurement]) -> Vec<String> {
    let value = |name: &str| results.iter().find(|r| r.name == name).map(|r| r.value);
    RATIOS
        .iter()
        .filter_map(|&(a, b, bound)| {
            let (x, y) = (value(a)?, value(b)?);
            let m = u64::try_from(u128::from(x) * 1000 / u128::from(y.max(1))).unwrap_or(u64::MAX);
            let (words, limit, met) = match bound {
                Bound::AtLeast(l) => ("at least", l, m >= l),
                Bound::AtMost(l) => ("at most", l, m <= l),
                Bound::Report => {
                    return Some(format!("ratio {a} / {b} = {} (no target)", milli(m)))
                }
            };
            Some(format!(
                "ratio {a} / {b} = {} (target {words} {}: {})",
                milli(m),
                milli(limit),
                if met { "met" } else { "missed" }
            ))
        })
        .collect()
}

/// Boots the benchmark images and returns their measurements. Each boots
/// with the devices (`qemu_args`, `disk`) of its entry in `tests.toml`, the
/// test that runs the same image without `-icount`.
pub fn run(layout: &Layout, images: &Images) -> Result<Vec<Measurement>> {
    let tests = systest::load(&layout.tests_toml())?;
    let mut results = Vec::new();
    for name in [BENCH_IMAGE, DEVICE_BENCH_IMAGE] {
        let spec = tests
            .iter()
            .find(|t| t.image == name)
            .with_context(|| format!("tests.toml has no test of the {name} image"))?;
        let (extra, _) = spec.devices(layout)?;
        results.extend(boot(layout, images, name, None, extra)?);
    }
    results.extend(linux(layout, images, &tests)?);
    for system in NET_SYSTEMS {
        results.extend(net_runs(layout, &tests, system, |run, extra, ports| {
            boot_net(layout, images, system, run, extra, ports)
        })?);
    }
    Ok(results)
}

/// A network benchmark system's figures: median and spread of up to
/// [`NET_RUNS`] boots, each by `boot_one(run, devices, ports)` with the
/// devices and forwards of the system's test.
pub fn net_runs(
    layout: &Layout,
    tests: &[systest::TestSpec],
    system: &NetSystem,
    mut boot_one: impl FnMut(usize, Vec<String>, Ports) -> Result<Vec<Measurement>>,
) -> Result<Vec<Measurement>> {
    let name = system.image;
    let spec = tests
        .iter()
        .find(|t| t.image == name)
        .with_context(|| format!("tests.toml has no test of the {name} image"))?;
    // A run that stalls (see host::FULL) is reported and another boot
    // takes its place, up to twice as many boots as runs; the figures
    // come from the runs that finished, and none is no error: the
    // deterministic figures above stand on their own.
    let mut runs = Vec::new();
    let mut boots = 0;
    while runs.len() < NET_RUNS && boots < 2 * NET_RUNS {
        boots += 1;
        // A fresh disk and fresh host ports each time.
        let (extra, _, ports) = spec.devices_and_ports(layout)?;
        match boot_one(boots, extra, ports) {
            Ok(run) => runs.push(run),
            Err(e) => eprintln!("{name} boot {boots}: no figures: {e:#}"),
        }
    }
    eprintln!("{name}: {} of {boots} boots gave figures", runs.len());
    for line in run_values(&runs) {
        eprintln!("{line}");
    }
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    spread(&runs)
}

/// The [`LINUX_BENCH_IMAGE`]'s figures of [`LINUX_RUNS`] boots, each with
/// a fresh disk; a boot that fails fails the benchmarks (the guest is
/// deterministic but for the disk's timing, so a failure is a bug).
fn linux(
    layout: &Layout,
    images: &Images,
    tests: &[systest::TestSpec],
) -> Result<Vec<Measurement>> {
    let name = LINUX_BENCH_IMAGE;
    let spec = tests
        .iter()
        .find(|t| t.image == name)
        .with_context(|| format!("tests.toml has no test of the {name} image"))?;
    let mut runs = Vec::new();
    for run in 1..=LINUX_RUNS {
        let (extra, _) = spec.devices(layout)?;
        let results = boot(layout, images, name, Some(run), extra)?;
        // The process server ends cleanly whatever the program's status.
        let log = layout.log(&format!("{name}-{run}"));
        let serial = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
        if !String::from_utf8_lossy(&serial).contains(LINUX_DONE) {
            bail!(
                "the {name} image did not print {LINUX_DONE:?} in boot {run} (see {})",
                log.display()
            );
        }
        for f in LINUX_FIGURES {
            if !results.iter().any(|r| r.name == f) {
                bail!("the {name} image printed no figure {f} in boot {run}");
            }
        }
        runs.push(results);
    }
    for line in run_values(&runs) {
        eprintln!("{line}");
    }
    for f in differing(&runs, &LINUX_VARIABLE) {
        eprintln!("{name}: {f} differs between boots under -icount; the first boot's is reported");
    }
    first_and_spread(&runs, &LINUX_VARIABLE)
}

/// The figures of several runs: those named in `variable` as [`spread`]
/// gives them, the others as the first run has them.
pub fn first_and_spread(runs: &[Vec<Measurement>], variable: &[&str]) -> Result<Vec<Measurement>> {
    let first = runs.first().context("no runs")?;
    let keep = |run: &Vec<Measurement>, v: bool| -> Vec<Measurement> {
        run.iter()
            .filter(|m| variable.contains(&m.name.as_str()) == v)
            .cloned()
            .collect()
    };
    let mut out = keep(first, false);
    let varying: Vec<Vec<Measurement>> = runs.iter().map(|run| keep(run, true)).collect();
    out.extend(spread(&varying)?);
    Ok(out)
}

/// The figures of the first run, but those in `variable`, whose value is
/// not the same in every run.
pub fn differing(runs: &[Vec<Measurement>], variable: &[&str]) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|m| !variable.contains(&m.name.as_str()))
        .filter(|m| {
            runs.iter()
                .any(|run| run.iter().find(|r| r.name == m.name).map(|r| r.value) != Some(m.value))
        })
        .map(|m| m.name.clone())
        .collect()
}

/// Per figure of several runs: the median as `name`, and `name.min`, `name.max`.
pub fn spread(runs: &[Vec<Measurement>]) -> Result<Vec<Measurement>> {
    let first = runs.first().context("no runs to take the median of")?;
    let mut out = Vec::new();
    for m in first {
        let mut values = runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                run.iter()
                    .find(|r| r.name == m.name)
                    .map(|r| r.value)
                    .with_context(|| format!("run {} has no figure {}", i + 1, m.name))
            })
            .collect::<Result<Vec<u64>>>()?;
        values.sort_unstable();
        let at = |i: usize| values.get(i).copied().unwrap_or_default();
        for (suffix, value) in [
            ("", at(values.len() / 2)),
            (".min", at(0)),
            (".max", at(values.len().saturating_sub(1))),
        ] {
            out.push(Measurement {
                name: format!("{}{suffix}", m.name),
                value,
                unit: m.unit.clone(),
            });
        }
    }
    Ok(out)
}

/// One line per figure of several runs, its values in run order:
/// `net.tcp_rr_per_sec, 3 runs: 1200 1180 1230 round_trips/s`.
pub fn run_values(runs: &[Vec<Measurement>]) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|m| {
            let values: Vec<String> = runs
                .iter()
                .map(|run| {
                    run.iter()
                        .find(|r| r.name == m.name)
                        .map_or_else(|| "-".to_owned(), |r| r.value.to_string())
                })
                .collect();
            format!(
                "{}, {} runs: {} {}",
                m.name,
                runs.len(),
                values.join(" "),
                m.unit
            )
        })
        .collect()
}

/// One boot of the network benchmarks ([`NET_ICOUNT`]): once the guest
/// listens, a thread drives the host side ([`host::drive`] with
/// [`host::FULL`]); QEMU is stopped when that is done and the guest has
/// printed its figures. The guest's figures and the host's.
fn boot_net(
    layout: &Layout,
    images: &Images,
    system: &NetSystem,
    run: usize,
    extra: Vec<String>,
    ports: Ports,
) -> Result<Vec<Measurement>> {
    let image = images.existing(system.image)?;
    let options = qemu::Options {
        icount: NET_ICOUNT,
        extra,
        ..qemu::Options::default()
    };
    let cmd = qemu::command(&layout.kernel32(), &image, &options);
    drive_net(
        layout,
        system,
        &format!("{}-{run}", system.image),
        cmd,
        ports,
    )
}

/// Runs `cmd`, a machine serving `system`'s benchmarks, and drives them
/// from the host once the guest is ready; `name` names the logs (its
/// own and the host side's `peer-<name>`).
pub fn drive_net(
    layout: &Layout,
    system: &NetSystem,
    name: &str,
    mut cmd: std::process::Command,
    ports: Ports,
) -> Result<Vec<Measurement>> {
    let native = system.native;
    let log = layout.log(name);
    let title = format!("Running benchmarks ({name})");
    step::step(&title, &log, |step| {
        step.note(&format!("$ {}", step::describe(&cmd)))?;
        let peer_log = layout.log(&format!("peer-{name}"));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<HostFigures, String>>();
        let mut started = false;
        let mut host: Option<Result<HostFigures, String>> = None;
        let mut serial = String::new();
        let ending = step.run_stoppable(&mut cmd, Some(NET_TIMEOUT), || {
            serial = fs::read(step.log_path())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if !started && serial.contains(system.ready) {
                started = true;
                let mut peer = Peer {
                    ports: ports.clone(),
                    limits: Limits {
                        io: NET_IO,
                        ..Limits::GUEST
                    },
                    cancel: Arc::clone(&cancel),
                    log: Log::to_file(&peer_log).unwrap_or_default(),
                };
                let tx = tx.clone();
                let spawned = thread::Builder::new()
                    .name("net-bench-host".to_owned())
                    .spawn(move || {
                        let result = if native {
                            host::drive(&mut peer, host::FULL)
                        } else {
                            host::drive_streams(&mut peer, host::FULL).map(|()| HostFigures {
                                http_requests_per_sec: 0,
                            })
                        };
                        if let Err(e) = &result {
                            peer.log.line(format!("net_bench: FAILED: {e:#}"));
                        }
                        // The harness may have stopped listening.
                        let _ = tx.send(result.map_err(|e| format!("{e:#}")));
                    });
                if let Err(e) = spawned {
                    host = Some(Err(format!("starting the host side's thread: {e}")));
                }
            }
            if host.is_none() {
                host = rx.try_recv().ok();
            }
            match &host {
                Some(Ok(_)) => system
                    .figures
                    .iter()
                    .all(|f| serial.contains(&format!("{MARKER} {f} "))),
                Some(Err(_)) => true,
                None => false,
            }
        })?;
        // A host side still running (QEMU ended early) stops at its next step.
        cancel.store(true, Ordering::Relaxed);
        let figures = match (host, ending) {
            (Some(Ok(figures)), Ending::Stopped) => figures,
            (Some(Err(why)), _) => bail!(
                "the host side failed: {why} (its log: {})",
                peer_log.display()
            ),
            (None, _) if !started => {
                bail!("QEMU {ending} before the guest printed {:?}", system.ready)
            }
            (_, other) => bail!("QEMU {other} before the benchmarks finished"),
        };
        let mut results = parse_results(&serial)?;
        for f in system.figures {
            if !results.iter().any(|r| r.name == *f) {
                bail!("{name} printed no figure {f}");
            }
        }
        if !native {
            return Ok(results);
        }
        results.push(Measurement {
            name: "net.http_requests_per_sec".to_owned(),
            value: figures.http_requests_per_sec,
            unit: "requests/s".to_owned(),
        });
        Ok(results)
    })
}

/// Boots one benchmark image under `-icount` and reads its figures; `run`
/// numbers one of several boots (its log and title).
fn boot(
    layout: &Layout,
    images: &Images,
    name: &str,
    run: Option<usize>,
    extra: Vec<String>,
) -> Result<Vec<Measurement>> {
    let image = images.existing(name)?;
    let (log, title) = match run {
        Some(run) => (
            layout.log(&format!("{name}-{run}")),
            format!("Running benchmarks ({name}, boot {run})"),
        ),
        None => (layout.log(name), format!("Running benchmarks ({name})")),
    };
    step::step(&title, &log, |step| {
        let options = qemu::Options {
            icount: true,
            extra,
            ..qemu::Options::default()
        };
        let mut cmd = qemu::command(&layout.kernel32(), &image, &options);
        match step.run_until(&mut cmd, Some(TIMEOUT))? {
            Ending::Exited(STATUS_SUCCESS) => {}
            Ending::Exited(status) => bail!(
                "the {name} image ended with {}",
                qemu::explain_status(status)
            ),
            other => bail!("QEMU {other}"),
        }
        let bytes = fs::read(step.log_path())
            .with_context(|| format!("reading {}", step.log_path().display()))?;
        let results = parse_results(&String::from_utf8_lossy(&bytes))?;
        if results.is_empty() {
            bail!("the {name} image printed no `{MARKER}` line");
        }
        Ok(results)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_read_among_other_output() -> Result<()> {
        let log = "Booting all finished\n\
                   KAAL-BENCH ipc_call_replyrecv 654 ticks\r\n\
                   noise\n\
                   [kernel] KAAL-BENCH signal_wait 938 ticks\n";
        assert_eq!(
            parse_results(log)?,
            [
                Measurement {
                    name: "ipc_call_replyrecv".to_owned(),
                    value: 654,
                    unit: "ticks".to_owned()
                },
                Measurement {
                    name: "signal_wait".to_owned(),
                    value: 938,
                    unit: "ticks".to_owned()
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_results("KAAL-BENCH x -3 ticks\n").is_err());
        assert!(parse_results("KAAL-BENCH x 3\n").is_err());
        assert!(parse_results("KAAL-BENCH x 3 ticks extra\n").is_err());
        assert!(parse_results("KAAL-BENCH x 1.5 ticks\n").is_err());
    }

    #[test]
    fn no_lines_no_results() -> Result<()> {
        assert!(parse_results("just a boot log\n")?.is_empty());
        Ok(())
    }

    #[test]
    fn table_is_aligned() {
        let results = [
            Measurement {
                name: "a".to_owned(),
                value: 12345678,
                unit: "ticks".to_owned(),
            },
            Measurement {
                name: "longer_name".to_owned(),
                value: 4,
                unit: "ticks".to_owned(),
            },
        ];
        assert_eq!(
            table(&results),
            "name            value  unit\n\
             a            12345678  ticks\n\
             longer_name         4  ticks\n"
        );
    }

    fn m(name: &str, value: u64) -> Measurement {
        Measurement {
            name: name.to_owned(),
            value,
            unit: "x".to_owned(),
        }
    }

    #[test]
    fn ratios_judge_their_targets() {
        let results = [
            m("blk.read_mib_per_sec", 1000),
            m("fs.read_mib_per_sec", 799),
            m("ipc.rpc_roundtrip", 400),
            m("fs.stat_ticks", 1200),
        ];
        assert_eq!(
            ratios(&results),
            [
                "ratio fs.read_mib_per_sec / blk.read_mib_per_sec = 0.799 (target at least 0.800: missed)",
                "ratio fs.stat_ticks / ipc.rpc_roundtrip = 3.000 (target at most 3.000: met)",
            ]
        );
        // A figure not measured leaves its ratio out.
        assert_eq!(ratios(&results[..2]).len(), 1);
        assert!(ratios(&[]).is_empty());
    }

    #[test]
    fn the_linux_ratios_judge_one_and_report_the_other() {
        let results = [
            m("sel4.call_replyrecv", 400),
            m("linux.getpid", 601),
            m("fs.read_mib_per_sec", 500),
            m("linux.read_mib_per_sec", 250),
        ];
        assert_eq!(
            ratios(&results),
            [
                "ratio linux.getpid / sel4.call_replyrecv = 1.502 (target at most 1.500: missed)",
                "ratio linux.read_mib_per_sec / fs.read_mib_per_sec = 0.500 (no target)",
            ]
        );
    }

    #[test]
    fn the_variable_figures_are_spread_the_others_the_first_runs() -> Result<()> {
        let runs = [
            vec![m("a", 5), m("v", 30), m("b", 7)],
            vec![m("a", 5), m("v", 10), m("b", 8)],
            vec![m("v", 20), m("a", 5), m("b", 7)],
        ];
        let got: Vec<(String, u64)> = first_and_spread(&runs, &["v"])?
            .into_iter()
            .map(|r| (r.name, r.value))
            .collect();
        let want = [("a", 5), ("b", 7), ("v", 20), ("v.min", 10), ("v.max", 30)];
        assert_eq!(got, want.map(|(n, v)| (n.to_owned(), v)));
        // b is not the same in every run; a figure missing from one is not either.
        assert_eq!(differing(&runs, &["v"]), ["b"]);
        assert_eq!(differing(&[vec![m("a", 1)], vec![]], &[]), ["a"]);
        assert!(differing(&[], &[]).is_empty());
        // A variable figure missing from a run is an error, as in spread.
        assert!(first_and_spread(&[vec![m("v", 1)], vec![m("a", 1)]], &["v"]).is_err());
        assert!(first_and_spread(&[], &["v"]).is_err());
        Ok(())
    }

    #[test]
    fn runs_give_median_and_spread() -> Result<()> {
        let runs = [
            vec![m("a", 30), m("b", 1)],
            vec![m("a", 10), m("b", 2)],
            vec![m("b", 3), m("a", 20)],
        ];
        let got: Vec<(String, u64)> = spread(&runs)?
            .into_iter()
            .map(|r| (r.name, r.value))
            .collect();
        let want = [
            ("a", 20),
            ("a.min", 10),
            ("a.max", 30),
            ("b", 2),
            ("b.min", 1),
            ("b.max", 3),
        ];
        assert_eq!(got, want.map(|(n, v)| (n.to_owned(), v)));
        assert_eq!(
            run_values(&runs),
            ["a, 3 runs: 30 10 20 x", "b, 3 runs: 1 2 3 x"]
        );
        // A figure missing from a run is an error, not a smaller median.
        assert!(spread(&[vec![m("a", 1)], vec![]]).is_err());
        assert!(spread(&[]).is_err());
        Ok(())
    }

    #[test]
    fn json_keeps_field_order() -> Result<()> {
        let m = Measurement {
            name: "n".to_owned(),
            value: 7,
            unit: "ticks".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&m)?,
            r#"{"name":"n","value":7,"unit":"ticks"}"#
        );
        Ok(())
    }
}
