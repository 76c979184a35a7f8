//! `bad_manifest_rejected`: every manifest under `tests/bad/` is rejected
//! with the error its first line names; `tests/good.toml` is accepted.

use kaal_manifest::{Manifest, Restart, Use};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn good_manifest_is_accepted() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good.toml"))
            .unwrap();
    let m = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(m.components.len(), 2);
    assert_eq!(
        m.component("serial").map(|c| c.restart),
        Some(Restart::Restart)
    );
    assert_eq!(
        m.component("app").map(|c| (c.stack.0, c.heap.0)),
        Some((16384, 1 << 20))
    );
}

#[test]
fn bad_manifest_rejected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` first line", path.display()));
        let errs = match Manifest::parse(&text) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(errs) => errs,
        };
        let messages: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|m| m.contains(expect)),
            "{}: expected an error containing {expect:?}, got {messages:?}",
            path.display()
        );
        println!(
            "{}: {}",
            path.file_name().unwrap().to_string_lossy(),
            messages.join("; ")
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} bad manifests");
}

#[test]
fn packed_image_decodes_with_programs_borrowed() {
    use kaal_manifest::image::{EndImage, SystemImage, MAGIC};
    use std::collections::BTreeMap;
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good.toml"))
            .unwrap();
    let m = Manifest::parse(&text).unwrap();
    let mut programs = BTreeMap::new();
    programs.insert("serial_driver".to_owned(), b"\x7fELF serial".to_vec());
    assert!(m
        .pack(&programs)
        .unwrap_err()
        .contains("no program `echo_app`"));
    programs.insert("echo_app".to_owned(), b"\x7fELF app".to_vec());
    let bytes = m.pack(&programs).unwrap();
    let img = SystemImage::decode(&bytes).unwrap();
    assert_eq!(img.magic, MAGIC);
    assert_eq!(img.components.len(), 2);
    let (i, app) = img.component("app").unwrap();
    assert_eq!((i, app.elf), (1, &b"\x7fELF app"[..]));
    // The serial protocol's ring: shape from the protocol, each end's local name.
    let serial = &img.channels[0];
    let app_out = EndImage {
        component: 1,
        local: "out",
    };
    let serial_tx = EndImage {
        component: 0,
        local: "tx",
    };
    assert_eq!(
        (serial.from.as_slice(), serial.to),
        (&[app_out][..], serial_tx)
    );
    assert_eq!(serial.shared_bytes(), 128 + 64 * 64);
    assert_eq!(serial.label, "app.out -> serial.tx");
    // A raw ring: both ends use its name.
    let log = &img.channels[1];
    assert_eq!((log.to.local, log.shared_bytes()), ("log", 128 + 256 * 64));
    let data = &img.channels[3];
    assert_eq!((data.to.local, data.shared_bytes()), ("data", 64 * 1024));
    assert_eq!(app.devices, []);
    let (_, serial_driver) = img.component("serial").unwrap();
    assert_eq!(
        serial_driver.devices,
        [("port", kaal_manifest::DeviceSpec::Serial { port: 0 })]
    );
    // A truncated or foreign image is refused, not misread.
    assert!(SystemImage::decode(&bytes[..bytes.len() / 2]).is_err());
    assert!(SystemImage::decode(b"\x00\x00\x00\x00").is_err());
}

#[test]
fn endpoint_may_have_several_clients() {
    let text = r#"
        [[component]]
        name = "echo"
        image = "echo"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[component]]
        name = "a"
        image = "client"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[component]]
        name = "b"
        image = "client"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[channel]]
        protocol = "echo"
        from = ["a.echo", "b.service"]
        to = "echo.clients"
    "#;
    let m = Manifest::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    let locals: Vec<_> = m.channels[0]
        .from_ends()
        .flatten()
        .map(|e| e.local)
        .collect();
    assert_eq!(locals, ["echo", "service"]);
}

#[test]
fn image_values_are_rechecked_on_decode() {
    use kaal_manifest::image::{ComponentImage, ImageError, SystemImage, MAGIC};
    let mut img = SystemImage {
        magic: MAGIC,
        components: vec![ComponentImage {
            name: "a",
            program: "a",
            priority: 10,
            stack: 4096,
            heap: 4096,
            devices: vec![],
            restart: Restart::Stop,
            memory: vec![],
            untyped: 0,
            args: Vec::new(),
            elf: b"",
        }],
        channels: vec![],
        console: None,
        poweroff: None,
    };
    let ok = postcard::to_allocvec(&img).unwrap();
    assert!(SystemImage::decode(&ok).is_ok());
    img.components[0].untyped = (16 << 20) + 1;
    let bad_budget = postcard::to_allocvec(&img).unwrap();
    assert!(matches!(
        SystemImage::decode(&bad_budget),
        Err(ImageError::Invalid { .. })
    ));
    img.components[0].untyped = 0;
    img.components[0].stack = u64::MAX - 4095;
    let bad = postcard::to_allocvec(&img).unwrap();
    assert!(matches!(
        SystemImage::decode(&bad),
        Err(ImageError::Invalid { .. })
    ));
}

/// Two instances of one program, each bound to its own device and rings
/// under the same local names, beside another program that also calls its
/// rings `rx` and `tx`.
const TWO_UARTS_AND_A_NIC: &str = r#"
    [[component]]
    name = "com1"
    image = "uart16550"
    priority = 150
    stack = "16K"
    heap = "16K"
    devices = { port = "serial:0" }
    [[component]]
    name = "com2"
    image = "uart16550"
    priority = 150
    stack = "16K"
    heap = "16K"
    devices = { port = "serial:1" }
    [[component]]
    name = "net"
    image = "virtio_net"
    priority = 150
    stack = "16K"
    heap = "16K"
    devices = { nic = "pci-class:02:00" }
    [[component]]
    name = "app"
    priority = 100
    stack = "16K"
    heap = "16K"
    [[channel]]
    protocol = "serial"
    from = "com1.rx"
    to = "app.com1_in"
    [[channel]]
    protocol = "serial"
    from = "com2.rx"
    to = "app.com2_in"
    [[channel]]
    protocol = "net"
    from = "net.rx"
    to = "app.frames"
"#;

fn declared(pairs: &[(&str, &str)]) -> BTreeMap<String, Use> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                Use::parse(v).unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect()
}

#[test]
fn one_program_serves_two_instances_by_local_names() {
    let m = Manifest::parse(TWO_UARTS_AND_A_NIC).unwrap_or_else(|e| panic!("{e:?}"));
    let uart = declared(&[
        ("port", "device"),
        ("rx", "serial from"),
        ("tx", "serial to"),
    ]);
    let net = declared(&[("nic", "device"), ("rx", "net from"), ("tx", "net to")]);
    let app = declared(&[
        ("com1_in", "serial to"),
        ("com2_in", "serial to"),
        ("frames", "net to"),
    ]);
    let errs = m.check_uses(|image| match image {
        "uart16550" => Some(&uart),
        "virtio_net" => Some(&net),
        "app" => Some(&app),
        _ => None,
    });
    assert_eq!(errs, []);
}

#[test]
fn bindings_a_program_does_not_declare_are_refused_naming_both() {
    let m = Manifest::parse(TWO_UARTS_AND_A_NIC).unwrap_or_else(|e| panic!("{e:?}"));
    // The UART says it receives on `rx`: the manifest has it send there.
    let uart = declared(&[("port", "device"), ("rx", "serial to"), ("tx", "serial to")]);
    // The app says `frames` is a serial stream and never heard of `com2_in`.
    let app = declared(&[("com1_in", "serial to"), ("frames", "serial to")]);
    let nothing = BTreeMap::new();
    let errs: Vec<String> = m
        .check_uses(|image| match image {
            "uart16550" => Some(&uart),
            "app" => Some(&app),
            _ => Some(&nothing),
        })
        .iter()
        .map(ToString::to_string)
        .collect();
    let expect = [
        "component `net` binds `nic`, which its program `virtio_net` does not declare (it declares: nothing)",
        "component `app` binds `com2_in`, which its program `app` does not declare (it declares: com1_in, frames)",
        "component `app` declares `frames` as `serial to`, but the manifest binds it to channel `net.rx -> app.frames` (`net to`)",
        "component `com1` declares `rx` as `serial to`, but the manifest binds it to channel `com1.rx -> app.com1_in` (`serial from`)",
    ];
    for e in expect {
        assert!(errs.iter().any(|m| m == e), "missing {e:?} in {errs:?}");
    }
}

#[test]
fn a_device_bound_to_a_channel_name_and_the_console_ring_are_checked() {
    let text = r#"
        console = "uart"
        [[component]]
        name = "uart"
        image = "uart16550"
        priority = 150
        stack = "16K"
        heap = "16K"
        devices = { port = "serial:0", rx = "serial:1" }
    "#;
    let m = Manifest::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    // Declares no `console`: the root task's ring would go untaken.
    let uart = declared(&[("port", "device"), ("rx", "serial from")]);
    let errs: Vec<String> = m
        .check_uses(|_| Some(&uart))
        .iter()
        .map(ToString::to_string)
        .collect();
    let expect = [
        "component `uart` declares `rx` as `serial from`, but the manifest binds it to device `serial:1`",
        "component `uart` binds `console`, which its program `uart16550` does not declare (it declares: port, rx)",
    ];
    for e in expect {
        assert!(errs.iter().any(|m| m == e), "missing {e:?} in {errs:?}");
    }
    let uart = declared(&[
        ("port", "device"),
        ("rx", "device"),
        ("console", "console to"),
    ]);
    assert_eq!(m.check_uses(|_| Some(&uart)), []);
}

#[test]
fn declarations_say_device_or_protocol_and_end() {
    assert_eq!(Use::parse("device"), Ok(Use::Device));
    assert!(Use::parse("serial from").is_ok());
    assert!(Use::parse("ring to").is_ok());
    for bad in [
        "serial",
        "serial in",
        "seriall from",
        "device to",
        "",
        "serial from to",
    ] {
        assert!(Use::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

/// A `file` channel (each client lends a region) and private memory, with
/// their declarations.
const VFS_AND_CACHE: &str = r#"
    [[component]]
    name = "vfs"
    priority = 100
    stack = "16K"
    heap = "16K"
    memory = { cache = "4M" }
    [[component]]
    name = "a"
    image = "app"
    priority = 100
    stack = "16K"
    heap = "16K"
    [[component]]
    name = "b"
    image = "app"
    priority = 100
    stack = "16K"
    heap = "16K"
    [[channel]]
    protocol = "file"
    from = ["a.fs", "b.fs"]
    to = "vfs.clients"
    bytes = "64K"
"#;

#[test]
fn lent_regions_and_private_memory_are_declared_and_packed() {
    let m = Manifest::parse(VFS_AND_CACHE).unwrap_or_else(|e| panic!("{e:?}"));
    let vfs = declared(&[("clients", "file to"), ("cache", "memory")]);
    let app = declared(&[("fs", "file from")]);
    assert_eq!(
        m.check_uses(|image| match image {
            "vfs" => Some(&vfs),
            _ => Some(&app),
        }),
        []
    );
    // Private memory declared as a channel end, a `file` end declared as
    // an echo client: both refused, naming both sides.
    let vfs_wrong = declared(&[("clients", "file to"), ("cache", "memory to")]);
    let app_wrong = declared(&[("fs", "echo from")]);
    let errs: Vec<String> = m
        .check_uses(|image| match image {
            "vfs" => Some(&vfs_wrong),
            _ => Some(&app_wrong),
        })
        .iter()
        .map(ToString::to_string)
        .collect();
    let expect = [
        "component `vfs` declares `cache` as `memory to`, but the manifest binds it to private memory",
        "component `a` declares `fs` as `echo from`, but the manifest binds it to channel `a.fs, b.fs -> vfs.clients` (`file from`)",
    ];
    for e in expect {
        assert!(errs.iter().any(|m| m == e), "missing {e:?} in {errs:?}");
    }
    let mut programs = BTreeMap::new();
    programs.insert("vfs".to_owned(), b"vfs".to_vec());
    programs.insert("app".to_owned(), b"app".to_vec());
    let bytes = m.pack(&programs).unwrap();
    let img = kaal_manifest::image::SystemImage::decode(&bytes).unwrap();
    let fs = &img.channels[0];
    assert_eq!(
        (fs.from.len(), fs.lent_bytes(), fs.shared_bytes()),
        (2, 64 << 10, 0)
    );
    let (_, vfs) = img.component("vfs").unwrap();
    assert_eq!(vfs.memory, [("cache", 4 << 20)]);
}

#[test]
fn memory_is_a_declaration() {
    assert_eq!(Use::parse("untyped"), Ok(Use::Untyped));
    assert_eq!(Use::parse("memory"), Ok(Use::Memory));
    assert!(Use::parse("memory to").is_ok());
    assert!(Use::parse("file from").is_ok());
}

#[test]
fn disk_folder_must_exist_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let disk = |from: &str| {
        let text = format!("[disk]\nfrom = \"{from}\"\nbytes = \"32M\"\n");
        Manifest::parse(&text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .disk
            .unwrap()
    };
    let d = disk("systems/rootfs");
    assert_eq!((d.bytes.0, d.block_size, d.linux), (32 << 20, 4096, false));
    let text = "[disk]\nfrom = \"systems/rootfs\"\nbytes = \"32M\"\nlinux = true\n";
    let linux = Manifest::parse(text)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .disk;
    assert!(linux.is_some_and(|l| l.linux));
    let folder = d.folder(&root).unwrap();
    assert!(folder.join("etc/motd").is_file(), "{}", folder.display());
    let err = disk("systems/no_such_folder").folder(&root).unwrap_err();
    assert!(
        err.contains("`from = \"systems/no_such_folder\"`: no such folder inside the repository"),
        "{err}"
    );
    // A file is no folder.
    assert!(disk("systems/default.toml").folder(&root).is_err());
    // The parse already refuses a way out; the folder check refuses it too.
    let out = kaal_manifest::Disk {
        from: "../x".into(),
        ..d
    };
    assert!(out
        .folder(&root)
        .unwrap_err()
        .contains("inside the repository"));
}

#[test]
fn forwards_parse_and_tcp_and_udp_are_separate_port_spaces() {
    use kaal_manifest::{Forward, ForwardProtocol, ManifestError, Port};
    let text = r#"
        [[forward]]
        protocol = "tcp"
        host = 8080
        guest = 80
        [[forward]]
        protocol = "udp"
        host = 8080
        guest = 7
        [[forward]]
        protocol = "tcp"
        host = 65535
        guest = 1
    "#;
    let m = Manifest::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        m.forwards[0],
        Forward {
            protocol: ForwardProtocol::Tcp,
            host: Port(8080),
            guest: Port(80)
        }
    );
    assert_eq!(
        (m.forwards[1].protocol, m.forwards[2].host),
        (ForwardProtocol::Udp, Port(65535))
    );
    // A host port asked for again is named with its protocol.
    let twice = format!("{text}\n[[forward]]\nprotocol = \"udp\"\nhost = 8080\nguest = 9\n");
    assert_eq!(
        Manifest::parse(&twice).unwrap_err(),
        [ManifestError::ForwardTwice {
            protocol: ForwardProtocol::Udp,
            host: 8080
        }]
    );
}

#[test]
fn an_untyped_budget_is_declared_and_packed() {
    let text = r#"
        [[component]]
        name = "ps"
        image = "posix"
        priority = 100
        stack = "16K"
        heap = "1M"
        untyped = "128M"
    "#;
    let m = Manifest::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        m.component("ps").and_then(|c| c.untyped).map(|s| s.0),
        Some(128 << 20)
    );
    let ok = declared(&[("untyped", "untyped")]);
    assert_eq!(m.check_uses(|_| Some(&ok)), []);
    let wrong = declared(&[("untyped", "memory")]);
    let none = declared(&[]);
    let msg = |d| {
        m.check_uses(|_| Some(d))
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        msg(&wrong),
        ["component `ps` declares `untyped` as private memory, but the manifest gives it an untyped budget"]
    );
    assert_eq!(
        msg(&none),
        ["component `ps` binds `untyped`, which its program `posix` does not declare (it declares: nothing)"]
    );
    let mut programs = BTreeMap::new();
    programs.insert("posix".to_owned(), b"elf".to_vec());
    let bytes = m.pack(&programs).unwrap();
    let img = kaal_manifest::image::SystemImage::decode(&bytes).unwrap();
    assert_eq!(img.component("ps").map(|(_, c)| c.untyped), Some(128 << 20));
}
