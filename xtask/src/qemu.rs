//! The QEMU command line and the guest's exit protocol.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use clap::ValueEnum;
use kaal_manifest::{Forward, ForwardProtocol};

/// Port of the `isa-debug-exit` device.
pub const EXIT_PORT: u16 = 0xf4;

// The guest side of the exit protocol lives in `runtime/` (crate `kaal-rt`): it writes
// one of these values to port 0xf4, and QEMU exits with status 2 * value + 1.
/// Value a KaaL image writes to the exit port on success.
pub const GUEST_EXIT_SUCCESS: u8 = 0x10;
/// Value a KaaL image writes to the exit port on failure (e.g. a panic).
pub const GUEST_EXIT_FAILURE: u8 = 0x11;

/// QEMU's exit status for a value written to the exit port.
pub const fn host_status(guest_value: u8) -> i32 {
    2 * guest_value as i32 + 1
}

/// QEMU's status when the image reports success (33).
pub const STATUS_SUCCESS: i32 = host_status(GUEST_EXIT_SUCCESS);
/// QEMU's status when the image reports failure (35).
pub const STATUS_FAILURE: i32 = host_status(GUEST_EXIT_FAILURE);

/// What a QEMU exit status means, for messages.
pub fn explain_status(status: i32) -> String {
    match status {
        STATUS_SUCCESS => format!("status {status} (the image reported success)"),
        STATUS_FAILURE => format!("status {status} (the image reported failure, e.g. a panic)"),
        0 => "status 0 (the guest reset or QEMU was quit without the exit port being written)"
            .to_owned(),
        1 => "status 1 (QEMU failed, or the guest wrote 0 to the exit port)".to_owned(),
        other => format!("status {other} (not a KaaL exit status)"),
    }
}

/// QEMU's escape character (Ctrl-A) on a `mon:` character device: with `-serial
/// mon:stdio`, this byte on stdin and the next one form a command to QEMU (Ctrl-A X
/// quits, Ctrl-A C switches to the monitor); they never reach the guest. Everything else
/// written to stdin goes to the guest's COM1.
pub const MONITOR_ESCAPE: u8 = 0x01;

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// Software emulation: the default, and what the tests use.
    #[default]
    Tcg,
    /// Hardware virtualisation, for real hosts (seL4 5.0.0 does not run under a nested
    /// paravirtual KVM).
    Kvm,
}

/// Options of one QEMU run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub accel: Accel,
    /// Deterministic virtual clock (`-icount shift=0,align=off`), for benchmarks.
    pub icount: bool,
    /// Extra arguments appended last, each passed to QEMU as one argument, untouched (no
    /// shell splitting; commas, spaces and quotes stay as they are).
    pub extra: Vec<String>,
    /// The serial output (COM1) is also written to this file, for gdb's
    /// helpers (`run --gdb`); the console stays on stdio.
    pub serial_log: Option<PathBuf>,
    /// The kernel's command line (`-append`): Linux's, for the Linux peer.
    pub append: Option<String>,
}

/// CPU model for TCG: what seL4 5.0.0 needs, without what TCG lacks.
const TCG_CPU: &str = "Haswell,+pdpe1gb,+fsgsbase,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm";

/// QEMU's arguments to boot `image` as root task of `kernel32`.
pub fn args(kernel32: &Path, image: &Path, options: &Options) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    match options.accel {
        Accel::Tcg => push(&["-cpu", TCG_CPU, "-accel", "tcg"]),
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
    }
    push(&["-nographic"]);
    match &options.serial_log {
        None => push(&["-serial", "mon:stdio"]),
        // `mon:stdio` spelled out, with the chardev's log file added.
        Some(log) => {
            // QEMU's option syntax escapes a comma by doubling it.
            let path = log.display().to_string().replace(',', ",,");
            let chardev = format!("stdio,id=con,mux=on,logfile={path}");
            push(&[
                "-chardev",
                &chardev,
                "-serial",
                "chardev:con",
                "-mon",
                "chardev=con",
            ]);
        }
    }
    push(&[
        "-m",
        "512M",
        "-no-reboot",
        // No default NIC: QEMU's implicit e1000 is set up by the firmware's
        // network boot ROM and is not KaaL's; tests that want a network
        // device add one explicitly.
        "-nic",
        "none",
    ]);
    if options.icount {
        push(&["-icount", "shift=0,align=off"]);
    }
    let exit_device = format!("isa-debug-exit,iobase={EXIT_PORT:#x},iosize=0x04");
    args.push("-kernel".into());
    args.push(kernel32.into());
    args.push("-initrd".into());
    args.push(image.into());
    if let Some(line) = &options.append {
        args.push("-append".into());
        args.push(line.into());
    }
    args.push("-device".into());
    args.push(exit_device.into());
    args.extend(options.extra.iter().map(OsString::from));
    args
}

/// Removes every host port forward from the user networks of a machine's
/// arguments.
pub fn drop_forwards(args: &mut [String]) {
    for a in args.iter_mut().filter(|a| a.starts_with("user,")) {
        let kept: Vec<&str> = a
            .split(',')
            .filter(|p| !p.starts_with("hostfwd="))
            .collect();
        *a = kept.join(",");
    }
}

/// Adds the manifest's host port forwards to the user network of a
/// machine's arguments (the value after `-netdev` that starts `user,`).
/// The host side binds 127.0.0.1 only: test traffic stays on this machine
/// (slirp would otherwise listen on every interface).
pub fn add_forwards(args: &mut [String], forwards: &[Forward]) -> Result<()> {
    if forwards.is_empty() {
        return Ok(());
    }
    // The value after a `-netdev` that starts `user,`.
    let mut after_netdev = false;
    let user = args.iter_mut().find(|a| {
        let hit = after_netdev && a.starts_with("user,");
        after_netdev = a.as_str() == "-netdev";
        hit
    });
    let Some(user) = user else {
        bail!("the manifest asks for host port forwards, but the machine has no `-netdev user,...` network");
    };
    for f in forwards {
        let (proto, host, guest) = (f.protocol.word(), f.host.0, f.guest.0);
        user.push_str(&format!(",hostfwd={proto}:127.0.0.1:{host}-:{guest}"));
    }
    Ok(())
}

/// The guest ports HTTP servers listen on: the native `httpd` (80) and
/// busybox httpd on the POSIX layer (8000).
const HTTP_PORTS: [u16; 2] = [80, crate::peer::http::BUSYBOX_PORT];

/// The URLs on the host of the forwards to a guest's HTTP ports.
pub fn forward_urls(forwards: &[Forward]) -> Vec<String> {
    forwards
        .iter()
        .filter(|f| f.protocol == ForwardProtocol::Tcp && HTTP_PORTS.contains(&f.guest.0))
        .map(|f| format!("http://127.0.0.1:{}/", f.host.0))
        .collect()
}

/// The QEMU command booting `image` as root task of `kernel32`.
pub fn command(kernel32: &Path, image: &Path, options: &Options) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(args(kernel32, image, options));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(options: &Options) -> String {
        args(Path::new("k.elf"), Path::new("img"), options)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn exit_statuses_follow_isa_debug_exit() {
        assert_eq!(STATUS_SUCCESS, 33);
        assert_eq!(STATUS_FAILURE, 35);
    }

    #[test]
    fn tcg_command_line() {
        let line = joined(&Options::default());
        assert!(line.starts_with(&format!("-cpu {TCG_CPU} -accel tcg -nographic")));
        assert!(line.contains("-kernel k.elf -initrd img"));
        assert!(line.ends_with("-device isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(!line.contains("icount"));
    }

    #[test]
    fn a_serial_log_keeps_the_console_on_stdio() {
        let line = joined(&Options {
            serial_log: Some(PathBuf::from("/l/serial.log")),
            ..Options::default()
        });
        assert!(line.contains(
            "-nographic -chardev stdio,id=con,mux=on,logfile=/l/serial.log \
             -serial chardev:con -mon chardev=con -m 512M"
        ));
        assert!(!line.contains("mon:stdio"));
    }

    #[test]
    fn kvm_replaces_cpu_and_accel() {
        let line = joined(&Options {
            accel: Accel::Kvm,
            ..Options::default()
        });
        assert!(line.starts_with("-accel kvm -cpu host -nographic"));
        assert!(!line.contains("Haswell"));
    }

    #[test]
    fn icount_and_extra_arguments() {
        let line = joined(&Options {
            icount: true,
            extra: vec!["-smp".to_owned(), "1".to_owned()],
            ..Options::default()
        });
        assert!(line.contains("-icount shift=0,align=off"));
        assert!(line.ends_with("-smp 1"));
    }

    fn forward(protocol: ForwardProtocol, host: u16, guest: u16) -> Forward {
        use kaal_manifest::Port;
        Forward {
            protocol,
            host: Port(host),
            guest: Port(guest),
        }
    }

    fn machine() -> Vec<String> {
        [
            "-device",
            "virtio-net-pci,netdev=n0",
            "-netdev",
            "user,id=n0",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_tests_forwards_are_dropped() {
        let mut args: Vec<String> = [
            "-netdev",
            "user,id=n0,hostfwd=tcp:127.0.0.1:4000-:80,hostfwd=udp:127.0.0.1:4001-:7",
            "-m",
            "512",
        ]
        .map(String::from)
        .to_vec();
        drop_forwards(&mut args);
        assert_eq!(args, ["-netdev", "user,id=n0", "-m", "512"]);
    }

    #[test]
    fn forwards_join_the_user_network_on_loopback_only() {
        let forwards = [
            forward(ForwardProtocol::Tcp, 8080, 80),
            forward(ForwardProtocol::Udp, 5353, 53),
        ];
        let mut args = machine();
        add_forwards(&mut args, &forwards).unwrap();
        assert_eq!(
            args[3],
            "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:5353-:53"
        );
        // Nothing else changes.
        assert_eq!(args[..3], machine()[..3]);
        // No forwards: the machine is left as it is, even without a network.
        let mut none = vec!["-m".to_owned(), "1G".to_owned()];
        add_forwards(&mut none, &[]).unwrap();
        assert_eq!(none, ["-m", "1G"]);
    }

    #[test]
    fn forwards_need_a_user_network() {
        // A `user,` that is no `-netdev` value does not count.
        let mut args: Vec<String> = ["-device", "user,x", "-netdev", "tap,id=n0"]
            .map(String::from)
            .to_vec();
        let err = add_forwards(&mut args, &[forward(ForwardProtocol::Tcp, 8080, 80)]);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("no `-netdev user,...` network"));
        assert_eq!(args[1], "user,x");
    }

    #[test]
    fn urls_only_for_tcp_forwards_to_http_ports() {
        let forwards = [
            forward(ForwardProtocol::Tcp, 8080, 80),
            forward(ForwardProtocol::Tcp, 2222, 22),
            forward(ForwardProtocol::Udp, 8081, 80),
            forward(ForwardProtocol::Tcp, 9000, 80),
            forward(ForwardProtocol::Tcp, 8000, 8000),
        ];
        assert_eq!(
            forward_urls(&forwards),
            [
                "http://127.0.0.1:8080/",
                "http://127.0.0.1:9000/",
                "http://127.0.0.1:8000/"
            ]
        );
    }

    #[test]
    fn extra_arguments_pass_through_untouched() {
        let virtio_net = [
            "-device",
            "virtio-net-pci,netdev=n0",
            "-netdev",
            "user,id=n0",
        ];
        let options = Options {
            extra: virtio_net.iter().map(|a| (*a).to_owned()).collect(),
            ..Options::default()
        };
        let cmd = command(Path::new("k.elf"), Path::new("img"), &options);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // Appended last, after the exit device, each one argument as written.
        let (head, tail) = args.split_at(args.len() - virtio_net.len());
        assert_eq!(tail, virtio_net);
        assert_eq!(
            head.last().map(String::as_str),
            Some("isa-debug-exit,iobase=0xf4,iosize=0x04")
        );
    }
}
