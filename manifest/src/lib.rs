//! The system manifest: one declarative file naming every component, the
//! devices it may claim and the channels it shares, each bound to a name
//! local to the component, and its restart policy. `cargo xtask` checks it
//! at build time; every problem is reported with the component, channel or
//! device it concerns.
//!
//! ```toml
//! [[component]]
//! name = "uart"            # unique
//! image = "uart16550"      # the program it runs (default: the name)
//! priority = 200           # below the root task's 255
//! stack = "16K"            # page multiples; also bytes as an integer
//! heap = "64K"
//! devices = { port = "serial:0" }   # local name = serial:N, timer:pit,
//!                          # pci:VVVV:DDDD or pci-class:CC:SS
//! restart = "restart"      # or "stop" (the default)
//! memory = { cache = "4M" } # private memory: local name = size (page
//!                          # multiples, at most 64 MiB each; fresh and
//!                          # zeroed at every start)
//! untyped = "128M"         # an untyped-memory budget (page multiple, at
//!                          # most 256 MiB, in blocks of at most 16 MiB),
//!                          # with an ASID pool, its own VSpace and CNode and
//!                          # a CSpace of 2^16 slots; the program declares
//!                          # `untyped = "untyped"`; fresh at every start
//! args = ["/bin/sh", "-l"] # a command line the program reads (at most
//!                          # 32 words, 3 KiB in all, no NUL)
//!
//! (top level) poweroff = "posix"  # its exit powers the machine off
//!
//! [[channel]]
//! protocol = "serial"      # from kaal_protocols::PROTOCOLS: kind and shape
//! from = "uart.rx"         # producer (ring) or client (endpoint): component.local
//! to = "terminal.rx"       # consumer (ring) or server (endpoint)
//!
//! [[channel]]
//! name = "data"            # optional; an end without `.local` uses it
//! kind = "ring"            # without a protocol: "ring", "endpoint" or "memory"
//! from = "producer"
//! to = "consumer"
//! slots = 256              # rings without a protocol: a power of two
//! slot_bytes = 64          # rings without a protocol (default 64)
//!
//! [[channel]]
//! protocol = "block.data"  # a region both ends map read-write
//! from = "app.data"
//! to = "blk.data"
//! bytes = "256K"           # memory channels: page multiples, at most 16 MiB
//!
//! [[channel]]
//! protocol = "file"        # an endpoint, and a region each client lends
//! from = ["app.fs", "sh.fs"]
//! to = "vfs.fs"
//! bytes = "64K"            # each client's region: page multiples, at most 16 MiB
//! ```
//!
//! A component names its channel ends and devices only by its local names,
//! so one program serves any instance: the same UART driver on COM1 and
//! COM2, or a UART and a network driver that both call their rings `rx`.
//! An endpoint channel may have several clients: `from = ["a.echo",
//! "b.echo"]`; each gets its own badge, and the server one endpoint for all.
//!
//! A `[disk]` table (`from = "systems/rootfs"`, `bytes = "32M"`,
//! `block_size = 4096`, `linux = true`) gives the system an ext2 disk built
//! from a folder of the repository, with the Linux userland if asked; see
//! [`Disk`].
//!
//! `[[forward]]` tables (`protocol = "tcp"`, `host = 8080`, `guest = 80`)
//! ask `cargo xtask run` to forward host ports into the guest; see
//! [`Forward`].
//!
//! A top-level `console = "<component>"` names the serial driver that
//! prints the components' console lines; the root task's ring to it is its
//! local name `console`.
//!
//! [`Manifest::check_uses`] checks the bindings against what each program
//! declares it uses (its crate's `[package.metadata.kaal.uses.<image>]`).
//!
//! The checked manifest and the component images are packed into one
//! [`image::SystemImage`] that the root task embeds (seL4 loads only one boot
//! module). Without the default `std` feature the crate is `no_std` and only
//! reads such images: that is how the root task uses it.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod image;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
#[cfg(feature = "std")]
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use kaal_protocols::Shape;
use serde::{Deserialize, Serialize};

const PAGE: u64 = 4096;
/// Largest stack a component may ask for.
pub const MAX_STACK: u64 = 8 << 20;
/// Largest heap a component may ask for.
pub const MAX_HEAP: u64 = 256 << 20;
/// Largest ring, in slots.
pub const MAX_RING_SLOTS: u32 = 1 << 16;
/// Largest memory channel (and largest region a client lends).
pub const MAX_SHARED_BYTES: u64 = 16 << 20;
/// Largest private memory region.
pub const MAX_PRIVATE_BYTES: u64 = 64 << 20;
/// Private memory regions one component may have.
pub const MAX_PRIVATE_REGIONS: usize = 8;
/// Largest untyped budget.
pub const MAX_UNTYPED_BYTES: u64 = 256 << 20;
/// Largest block of an untyped budget.
pub const UNTYPED_BLOCK_BYTES: u64 = 16 << 20;
/// Blocks one budget may be split into (each is a start-info entry).
pub const MAX_UNTYPED_BLOCKS: usize = 16;
/// Most words in a component's `args`.
pub const MAX_ARGS: usize = 32;
/// Most bytes of a component's `args`, counting a NUL after each word.
pub const MAX_ARGS_BYTES: usize = 3072;

/// The local name of a component's untyped budget: the program declares it
/// (`untyped = "untyped"`) and no other binding may use it.
pub const UNTYPED_LOCAL_NAME: &str = "untyped";

/// The blocks (log2 bytes, largest first) a budget of `bytes` is handed out
/// in: whole blocks of [`UNTYPED_BLOCK_BYTES`], then the power-of-two parts
/// of the rest.
pub fn untyped_blocks(bytes: u64) -> impl Iterator<Item = u8> {
    let whole = bytes / UNTYPED_BLOCK_BYTES;
    let rest = bytes % UNTYPED_BLOCK_BYTES;
    let top = UNTYPED_BLOCK_BYTES.ilog2() as u8;
    let parts = (0..top).rev().filter(move |b| rest & (1 << b) != 0);
    core::iter::repeat_n(top, whole as usize).chain(parts)
}
/// Longest component or local name (the start-info page's name field,
/// `kaal_rt::start::NAME_BYTES`).
pub const MAX_NAME: usize = 32;
/// Ring ends one component may have, the console ring among them (the
/// badge bits `kaal_rt::start::RING_BITS`).
pub const MAX_RINGS: usize = 20;
/// Devices one component may have (the badge bits
/// `kaal_rt::start::IRQ_BITS`).
pub const MAX_DEVICES: usize = 7;
/// The root task's priority; components run below it.
pub const ROOT_PRIORITY: u8 = 255;

/// A size in bytes, written as an integer or as `"<n>K"`, `"<n>M"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(Size(b)),
            Raw::Text(t) => parse_size(&t).map(Size).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size (say 4096, \"16K\" or \"2M\")"
                ))
            }),
        }
    }
}

fn parse_size(t: &str) -> Option<u64> {
    let t = t.trim();
    let (num, mul) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (t.get(..i)?, 1 << 10),
        (i, 'M' | 'm') => (t.get(..i)?, 1 << 20),
        (i, 'G' | 'g') => (t.get(..i)?, 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Restart {
    Restart,
    #[default]
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Ring,
    Endpoint,
    /// A plain shared region (for bulk data that rings describe).
    Memory,
}

/// A device a component may claim, as the manifest writes it (see
/// [`DeviceSpec::parse`]) and as the capability broker is asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum DeviceSpec {
    /// `serial:N`, a legacy COM port: 0 is COM1 (0x3f8, IRQ 4) ... 3 is COM4.
    Serial { port: u8 },
    /// `pci:VVVV:DDDD`, the first PCI function with these IDs.
    Pci { vendor: u16, device: u16 },
    /// `pci-class:CC:SS`, the first PCI function of this class and subclass.
    PciClass { class: u8, subclass: u8 },
    /// `timer:pit`, the i8254 programmable interval timer (ports
    /// 0x40..=0x43, ISA IRQ 0).
    Pit,
}

impl DeviceSpec {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["serial", n] => n
                .parse()
                .ok()
                .filter(|p| *p < 4)
                .map(|port| DeviceSpec::Serial { port }),
            ["pci", v, d] => Some(DeviceSpec::Pci {
                vendor: u16::from_str_radix(v, 16).ok()?,
                device: u16::from_str_radix(d, 16).ok()?,
            }),
            ["pci-class", c, sc] => Some(DeviceSpec::PciClass {
                class: u8::from_str_radix(c, 16).ok()?,
                subclass: u8::from_str_radix(sc, 16).ok()?,
            }),
            ["timer", "pit"] => Some(DeviceSpec::Pit),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// The program; the component's name when not given.
    #[serde(default)]
    pub image: Option<String>,
    pub priority: u8,
    pub stack: Size,
    pub heap: Size,
    /// Local name to device (`serial:0`, `pci-class:02:00`, ...).
    #[serde(default)]
    pub devices: BTreeMap<String, String>,
    #[serde(default)]
    pub restart: Restart,
    /// Private memory: local name to size. Mapped into this component only,
    /// zeroed, and fresh at every start.
    #[serde(default)]
    pub memory: BTreeMap<String, Size>,
    /// An untyped-memory budget the component makes kernel objects from
    /// itself (see the crate documentation).
    #[serde(default)]
    pub untyped: Option<Size>,
    /// A command line for the program (`kaal_rt::Env::args`).
    #[serde(default)]
    pub args: Vec<String>,
}

impl Component {
    /// The program it runs.
    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Optional: names the channel in errors, and is the local name of an
    /// end that gives none.
    pub name: Option<String>,
    /// A protocol of `kaal_protocols::PROTOCOLS`; it fixes the kind and a
    /// ring's shape.
    pub protocol: Option<String>,
    /// Needed without a protocol.
    pub kind: Option<ChannelKind>,
    pub from: Option<Ends>,
    pub to: Option<String>,
    pub slots: Option<u32>,
    pub slot_bytes: Option<u32>,
    /// Size of a memory channel, or of each client's region on a lending
    /// endpoint (`file`).
    pub bytes: Option<Size>,
}

/// One end, or several (an endpoint's clients).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Ends {
    One(String),
    Many(Vec<String>),
}

impl Ends {
    pub fn names(&self) -> &[String] {
        match self {
            Ends::One(n) => core::slice::from_ref(n),
            Ends::Many(v) => v,
        }
    }
}

/// One end of a channel: a component and its local name for the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End<'a> {
    pub component: &'a str,
    pub local: &'a str,
}

impl fmt::Display for End<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.component, self.local)
    }
}

/// Bytes per ring slot unless the manifest says otherwise.
pub const DEFAULT_SLOT_BYTES: u32 = 64;

/// What a channel is once its protocol is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub kind: ChannelKind,
    pub slots: u32,
    pub slot_bytes: u32,
    /// A memory channel's size, or each client's lent region's.
    pub bytes: u64,
    /// An endpoint whose clients each lend the server a region of `bytes`.
    pub lending: bool,
}

impl Channel {
    /// How errors name the channel: its name, else its ends.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!(
                "{} -> {}",
                self.from_names().join(", "),
                self.to.as_deref().unwrap_or("?")
            ),
        }
    }

    /// The clients (endpoint) or the producer (ring), as written.
    pub fn from_names(&self) -> &[String] {
        self.from.as_ref().map(Ends::names).unwrap_or(&[])
    }

    /// An end as written, split into component and local name (the
    /// channel's name when the end gives none).
    pub fn end<'a>(&'a self, written: &'a str) -> Option<End<'a>> {
        match written.split_once('.') {
            Some((component, local)) => Some(End { component, local }),
            None => Some(End {
                component: written,
                local: self.name.as_deref()?,
            }),
        }
    }

    /// The `from` ends.
    pub fn from_ends(&self) -> impl Iterator<Item = Option<End<'_>>> {
        self.from_names().iter().map(|n| self.end(n))
    }

    /// The `to` end.
    pub fn to_end(&self) -> Option<End<'_>> {
        self.to.as_deref().and_then(|n| self.end(n))
    }

    /// The channel's kind and shape, from its protocol or as written.
    pub fn resolve(&self) -> Result<Resolved, &'static str> {
        let written_bytes = self.bytes.map_or(0, |b| b.0);
        let Some(name) = &self.protocol else {
            let kind = self
                .kind
                .ok_or("a channel needs a `protocol` (or, for a raw one, a `kind`)")?;
            return Ok(Resolved {
                kind,
                slots: self.slots.unwrap_or(0),
                slot_bytes: self.slot_bytes.unwrap_or(DEFAULT_SLOT_BYTES),
                bytes: written_bytes,
                lending: false,
            });
        };
        let p = kaal_protocols::find(name).ok_or("no protocol of that name")?;
        if self.slots.is_some() || self.slot_bytes.is_some() {
            return Err("`slots` and `slot_bytes` come from the protocol; do not restate them");
        }
        let (kind, slots, slot_bytes) = match p.shape {
            Shape::Ring { slots, slot_bytes } => (ChannelKind::Ring, slots, slot_bytes),
            Shape::Memory => (ChannelKind::Memory, 0, 0),
            Shape::Endpoint | Shape::EndpointLending => (ChannelKind::Endpoint, 0, 0),
        };
        if self.kind.is_some_and(|k| k != kind) {
            return Err("its `kind` is not the protocol's");
        }
        Ok(Resolved {
            kind,
            slots,
            slot_bytes,
            bytes: written_bytes,
            lending: p.shape == Shape::EndpointLending,
        })
    }
}

/// A checked manifest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The serial driver component that prints the components' console
    /// lines (the root task forwards them to it on a ring it knows as
    /// `console`); without it the root task prints them on COM1 itself.
    #[serde(default)]
    pub console: Option<String>,
    /// The component whose exit powers the machine off (a login shell's
    /// `exit`); without it the system runs on.
    #[serde(default)]
    pub poweroff: Option<String>,
    #[serde(rename = "component", default)]
    pub components: Vec<Component>,
    #[serde(rename = "channel", default)]
    pub channels: Vec<Channel>,
    /// The system's disk, built from a folder of the repository.
    #[serde(default)]
    pub disk: Option<Disk>,
    /// Host ports `cargo xtask run` forwards into the guest.
    #[serde(rename = "forward", default)]
    pub forwards: Vec<Forward>,
}

/// `[[forward]]`: a host port that QEMU's user networking forwards to a
/// guest port, so that programs on the host reach a guest server. The host
/// side listens on 127.0.0.1 only: test traffic stays on this machine.
///
/// ```toml
/// [[forward]]
/// protocol = "tcp"         # or "udp"
/// host = 8080              # 1..=65535, unique per protocol
/// guest = 80               # 1..=65535
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub protocol: ForwardProtocol,
    pub host: Port,
    pub guest: Port,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardProtocol {
    Tcp,
    Udp,
}

impl ForwardProtocol {
    /// As QEMU's `hostfwd` and the manifest write it.
    pub fn word(self) -> &'static str {
        match self {
            ForwardProtocol::Tcp => "tcp",
            ForwardProtocol::Udp => "udp",
        }
    }
}

/// A TCP or UDP port, 1..=65535 (0 is no port one can connect to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read wide so that 0, 70000 and -1 get this message, not serde's.
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .filter(|p| *p != 0)
            .map(Port)
            .ok_or_else(|| serde::de::Error::custom(format!("port {n} is not a port (1 to 65535)")))
    }
}

/// `[disk]`: the virtio-blk disk `cargo xtask run` attaches, an ext2 file
/// system built (`mkfs.ext2 -d`) from a folder of the repository.
///
/// ```toml
/// [disk]
/// from = "systems/rootfs"  # relative to the repository, inside it
/// bytes = "32M"            # whole blocks, 1 MiB to 1 GiB
/// block_size = 4096        # 1024, 2048 or 4096 (default 4096)
/// linux = true             # add the Linux userland (default false)
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub from: String,
    pub bytes: Size,
    #[serde(default = "default_block_size")]
    pub block_size: u32,
    /// The tool adds the Linux userland to the folder's files: busybox
    /// and a link per applet in /bin, the Linux demonstration programs,
    /// /etc/passwd, group and profile unless the folder has them, /tmp
    /// and /root.
    #[serde(default)]
    pub linux: bool,
}

fn default_block_size() -> u32 {
    4096
}

/// Smallest and largest disk a manifest may ask for.
pub const MIN_DISK: u64 = 1 << 20;
pub const MAX_DISK: u64 = 1 << 30;

impl Disk {
    /// What is wrong with it, without looking at the folder itself.
    pub fn problem(&self) -> Option<String> {
        let from = &self.from;
        let outside = from.is_empty()
            || from.starts_with('/')
            || from.split(['/', '\\']).any(|part| part == "..");
        if outside {
            return Some(format!(
                "`from = \"{from}\"` must be a folder inside the repository, relative to it (no `..`)"
            ));
        }
        if !matches!(self.block_size, 1024 | 2048 | 4096) {
            return Some(format!(
                "block_size {} is not 1024, 2048 or 4096",
                self.block_size
            ));
        }
        let b = self.bytes.0;
        if !(MIN_DISK..=MAX_DISK).contains(&b) || !b.is_multiple_of(u64::from(self.block_size)) {
            return Some(format!(
                "bytes {b} must be whole blocks of {}, from 1 MiB to 1 GiB",
                self.block_size
            ));
        }
        None
    }

    /// The folder to build from, inside the repository at `root`; it must
    /// exist (symbolic links may not lead out of the repository). The
    /// error is a [`ManifestError::Disk`]'s message.
    #[cfg(feature = "std")]
    pub fn folder(&self, root: &std::path::Path) -> Result<std::path::PathBuf, String> {
        if let Some(why) = self.problem() {
            return Err(ManifestError::Disk(why).to_string());
        }
        let path = root.join(&self.from);
        let real = path.canonicalize().ok().filter(|p| p.is_dir());
        let inside = root.canonicalize().ok();
        match (real, inside) {
            (Some(real), Some(root)) if real.starts_with(&root) => Ok(real),
            _ => Err(ManifestError::Disk(format!(
                "`from = \"{}\"`: no such folder inside the repository",
                self.from
            ))
            .to_string()),
        }
    }
}

/// Which end of a channel a program is: `from` (a ring's producer, an
/// endpoint's client, a memory channel's lender) or `to` (consumer, server,
/// the lender's peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    From,
    To,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::From => "from",
            Side::To => "to",
        }
    }
}

/// What a program declares it uses under one local name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Use {
    /// One end of a channel of this protocol (for a raw channel, `ring`,
    /// `endpoint` or `memory`); for the console driver, `console to`.
    Channel { protocol: String, side: Side },
    /// A device.
    Device,
    /// Private memory (the component's `memory` key).
    Memory,
    /// The untyped budget (the component's `untyped` key), under
    /// [`UNTYPED_LOCAL_NAME`].
    Untyped,
}

/// The protocol word of the console driver's declaration of its ring.
pub const CONSOLE_PROTOCOL: &str = "console";

impl Use {
    /// Reads a declaration: `"device"`, or a protocol (or raw kind) and the
    /// end: `"serial from"`, `"block.request to"`.
    pub fn parse(text: &str) -> Result<Use, String> {
        let mut words = text.split_whitespace();
        let use_ = match (words.next(), words.next(), words.next()) {
            (Some("device"), None, _) => Use::Device,
            (Some("memory"), None, _) => Use::Memory,
            (Some("untyped"), None, _) => Use::Untyped,
            (Some(protocol), Some(end), None) => {
                let side = match end {
                    "from" => Side::From,
                    "to" => Side::To,
                    _ => return Err(format!("`{text}`: the end is `from` or `to`, not `{end}`")),
                };
                let known = kaal_protocols::find(protocol).is_some()
                    || matches!(protocol, "ring" | "endpoint" | "memory" | CONSOLE_PROTOCOL);
                if !known {
                    return Err(format!("`{text}`: no protocol `{protocol}`"));
                }
                Use::Channel {
                    protocol: protocol.into(),
                    side,
                }
            }
            _ => {
                return Err(format!(
                    "`{text}` is not `device`, `memory`, `untyped` or `<protocol> from|to`"
                ))
            }
        };
        Ok(use_)
    }
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Channel { protocol, side } => write!(f, "`{protocol} {}`", side.word()),
            Use::Device => f.write_str("a device"),
            Use::Memory => f.write_str("private memory"),
            Use::Untyped => f.write_str("an untyped budget"),
        }
    }
}

/// One thing wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Not valid TOML, or a key or value of the wrong form.
    Syntax(String),
    DuplicateComponent(String),
    DuplicateChannel(String),
    UnknownComponent {
        channel: String,
        end: &'static str,
        name: String,
    },
    MissingEnd {
        channel: String,
        end: &'static str,
    },
    /// An end without `.local` on a channel without a name.
    NoLocalName {
        channel: String,
        end: String,
    },
    /// A component or local name that is empty or too long.
    BadName {
        component: String,
        name: String,
    },
    /// A word of a component's `args` holds a NUL.
    NulInArgs(String),
    /// More of something than one component can be given.
    TooMany {
        component: String,
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A component binds one local name twice.
    LocalNameTwice {
        component: String,
        local: String,
    },
    SameComponentBothEnds {
        channel: String,
        name: String,
    },
    UnknownDevice {
        component: String,
        device: String,
    },
    DeviceGrantedTwice {
        device: String,
        first: String,
        second: String,
    },
    SizeDoesNotFit {
        component: String,
        what: &'static str,
        size: u64,
        why: &'static str,
    },
    /// A channel's protocol, kind or shape is wrong.
    Channel {
        channel: String,
        why: &'static str,
    },
    RingSlots {
        channel: String,
        slots: u32,
        why: &'static str,
    },
    Priority {
        component: String,
        priority: u8,
    },
    Console {
        name: String,
        why: &'static str,
    },
    /// `poweroff` names no component.
    Poweroff(String),
    /// The `[disk]` table is wrong.
    Disk(String),
    /// Two `[[forward]]`s ask for one host port.
    ForwardTwice {
        protocol: ForwardProtocol,
        host: u16,
    },
    /// A binding of a local name the component's program does not declare.
    Undeclared {
        component: String,
        image: String,
        local: String,
        declared: String,
    },
    /// A device bound to a name the program declares as a channel end.
    NotADevice {
        component: String,
        local: String,
        declared: Use,
        device: String,
    },
    /// Private memory bound to a name the program declares as something else.
    NotMemory {
        component: String,
        local: String,
        declared: Use,
    },
    /// An untyped budget given to a program that declares its name as
    /// something else.
    NotUntyped {
        component: String,
        declared: Use,
    },
    /// A binding to a channel of another protocol than the program declares.
    WrongProtocol {
        component: String,
        local: String,
        declared: Use,
        bound: String,
        found: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ManifestError::*;
        match self {
            Syntax(m) => write!(f, "manifest syntax: {m}"),
            DuplicateComponent(n) => write!(f, "component `{n}` is declared twice"),
            DuplicateChannel(n) => write!(f, "channel `{n}` is declared twice"),
            UnknownComponent { channel, end, name } => {
                write!(f, "channel `{channel}`: `{end}` names unknown component `{name}`")
            }
            MissingEnd { channel, end } => write!(f, "channel `{channel}` has no `{end}` end"),
            NoLocalName { channel, end } => write!(
                f,
                "channel `{channel}`: end `{end}` needs a local name (`{end}.NAME`), or the channel a `name`"
            ),
            NulInArgs(component) => {
                write!(f, "component `{component}`: a word of `args` holds a NUL")
            }
            BadName { component, name } if name.is_empty() => {
                write!(f, "component `{component}`: a name is empty")
            }
            BadName { component, name } => write!(
                f,
                "component `{component}`: name `{name}` is longer than {MAX_NAME} bytes"
            ),
            TooMany { component, what, count, max } => write!(
                f,
                "component `{component}` has {count} {what}; at most {max} fit"
            ),
            LocalNameTwice { component, local } => {
                write!(f, "component `{component}` binds local name `{local}` twice")
            }
            SameComponentBothEnds { channel, name } => {
                write!(f, "channel `{channel}` connects `{name}` to itself")
            }
            UnknownDevice { component, device } => write!(
                f,
                "component `{component}`: `{device}` is not a device (serial:N, timer:pit, pci:VVVV:DDDD or pci-class:CC:SS)"
            ),
            DeviceGrantedTwice { device, first, second } => {
                write!(f, "device `{device}` is granted to both `{first}` and `{second}`")
            }
            SizeDoesNotFit { component, what, size, why } => {
                write!(f, "component `{component}`: {what} of {size} bytes does not fit: {why}")
            }
            Channel { channel, why } => write!(f, "channel `{channel}`: {why}"),
            RingSlots { channel, slots, why } => write!(f, "channel `{channel}`: {slots} slots: {why}"),
            Console { name, why } => write!(f, "console `{name}`: {why}"),
            Poweroff(name) => write!(f, "poweroff `{name}`: no component of that name"),
            Disk(why) => write!(f, "[disk]: {why}"),
            ForwardTwice { protocol, host } => write!(
                f,
                "[[forward]]: host port {} {host} is forwarded twice",
                protocol.word()
            ),
            Priority { component, priority } => write!(
                f,
                "component `{component}`: priority {priority} is not below the root task's {ROOT_PRIORITY}"
            ),
            Undeclared { component, image, local, declared } => write!(
                f,
                "component `{component}` binds `{local}`, which its program `{image}` does not declare (it declares: {declared})"
            ),
            NotADevice { component, local, declared, device } => write!(
                f,
                "component `{component}` declares `{local}` as {declared}, but the manifest binds it to device `{device}`"
            ),
            NotMemory { component, local, declared } => write!(
                f,
                "component `{component}` declares `{local}` as {declared}, but the manifest binds it to private memory"
            ),
            NotUntyped { component, declared } => write!(
                f,
                "component `{component}` declares `{UNTYPED_LOCAL_NAME}` as {declared}, but the manifest gives it an untyped budget"
            ),
            WrongProtocol { component, local, declared, bound, found } => write!(
                f,
                "component `{component}` declares `{local}` as {declared}, but the manifest binds it to channel `{bound}` ({found})"
            ),
        }
    }
}

impl core::error::Error for ManifestError {}

fn check_size(
    c: &Component,
    what: &'static str,
    size: u64,
    max: u64,
    errs: &mut Vec<ManifestError>,
) {
    let why = if size == 0 {
        Some("it is empty")
    } else if !size.is_multiple_of(PAGE) {
        Some("it is not a whole number of 4 KiB pages")
    } else if size > max {
        Some("it is larger than a component may have")
    } else {
        None
    };
    if let Some(why) = why {
        errs.push(ManifestError::SizeDoesNotFit {
            component: c.name.clone(),
            what,
            size,
            why,
        });
    }
}

/// What a resolved channel is, for messages: its protocol or its raw kind.
fn channel_use(ch: &Channel, kind: ChannelKind) -> String {
    match &ch.protocol {
        Some(p) => p.clone(),
        None => match kind {
            ChannelKind::Ring => "ring".into(),
            ChannelKind::Endpoint => "endpoint".into(),
            ChannelKind::Memory => "memory".into(),
        },
    }
}

impl Manifest {
    /// Parses and checks a manifest; returns every problem found.
    #[cfg(feature = "std")]
    pub fn parse(text: &str) -> Result<Manifest, Vec<ManifestError>> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| vec![ManifestError::Syntax(e.to_string())])?;
        let errs = m.check();
        if errs.is_empty() {
            Ok(m)
        } else {
            Err(errs)
        }
    }

    /// Every problem with this manifest (empty when it is sound).
    pub fn check(&self) -> Vec<ManifestError> {
        let mut errs = Vec::new();
        let mut names = BTreeMap::new();
        let mut granted: BTreeMap<DeviceSpec, (&str, &str)> = BTreeMap::new();
        // Every (component, local name) bound, to find one bound twice.
        let mut locals = alloc::collections::BTreeSet::new();
        let mut bind = |component: &str, local: &str, errs: &mut Vec<ManifestError>| {
            if local.is_empty() || local.len() > MAX_NAME {
                errs.push(ManifestError::BadName {
                    component: component.into(),
                    name: local.into(),
                });
            }
            if !locals.insert((component.to_string(), local.to_string())) {
                errs.push(ManifestError::LocalNameTwice {
                    component: component.into(),
                    local: local.into(),
                });
            }
        };
        for c in &self.components {
            if names.insert(c.name.as_str(), c).is_some() {
                errs.push(ManifestError::DuplicateComponent(c.name.clone()));
            }
            if c.priority == ROOT_PRIORITY {
                errs.push(ManifestError::Priority {
                    component: c.name.clone(),
                    priority: c.priority,
                });
            }
            if c.name.is_empty() || c.name.len() > MAX_NAME {
                errs.push(ManifestError::BadName {
                    component: c.name.clone(),
                    name: c.name.clone(),
                });
            }
            if c.devices.len() > MAX_DEVICES {
                errs.push(ManifestError::TooMany {
                    component: c.name.clone(),
                    what: "devices",
                    count: c.devices.len(),
                    max: MAX_DEVICES,
                });
            }
            check_size(c, "stack", c.stack.0, MAX_STACK, &mut errs);
            check_size(c, "heap", c.heap.0, MAX_HEAP, &mut errs);
            if c.memory.len() > MAX_PRIVATE_REGIONS {
                errs.push(ManifestError::TooMany {
                    component: c.name.clone(),
                    what: "private memory regions",
                    count: c.memory.len(),
                    max: MAX_PRIVATE_REGIONS,
                });
            }
            for (local, size) in &c.memory {
                bind(&c.name, local, &mut errs);
                check_size(c, "private memory", size.0, MAX_PRIVATE_BYTES, &mut errs);
            }
            if let Some(Size(bytes)) = c.untyped {
                bind(&c.name, UNTYPED_LOCAL_NAME, &mut errs);
                check_size(c, "untyped memory", bytes, MAX_UNTYPED_BYTES, &mut errs);
                let blocks = untyped_blocks(bytes).count();
                if blocks > MAX_UNTYPED_BLOCKS {
                    errs.push(ManifestError::TooMany {
                        component: c.name.clone(),
                        what: "untyped blocks (a budget is whole 16 MiB blocks and the powers of two of the rest)",
                        count: blocks,
                        max: MAX_UNTYPED_BLOCKS,
                    });
                }
            }
            let arg_bytes: usize = c.args.iter().map(|a| a.len() + 1).sum();
            if c.args.len() > MAX_ARGS || arg_bytes > MAX_ARGS_BYTES {
                let (what, count, max) = if c.args.len() > MAX_ARGS {
                    ("argument words (`args`)", c.args.len(), MAX_ARGS)
                } else {
                    (
                        "bytes of arguments (`args`, a NUL after each word)",
                        arg_bytes,
                        MAX_ARGS_BYTES,
                    )
                };
                errs.push(ManifestError::TooMany {
                    component: c.name.clone(),
                    what,
                    count,
                    max,
                });
            }
            if c.args.iter().any(|a| a.contains('\0')) {
                errs.push(ManifestError::NulInArgs(c.name.clone()));
            }
            for (local, d) in &c.devices {
                bind(&c.name, local, &mut errs);
                match DeviceSpec::parse(d) {
                    None => errs.push(ManifestError::UnknownDevice {
                        component: c.name.clone(),
                        device: d.clone(),
                    }),
                    Some(spec) => {
                        if let Some((first, text)) = granted.get(&spec) {
                            errs.push(ManifestError::DeviceGrantedTwice {
                                device: (*text).to_string(),
                                first: (*first).to_string(),
                                second: c.name.clone(),
                            });
                        } else {
                            granted.insert(spec, (c.name.as_str(), d.as_str()));
                        }
                    }
                }
            }
        }
        if let Some(name) = &self.console {
            match names.get(name.as_str()) {
                None => errs.push(ManifestError::Console {
                    name: name.clone(),
                    why: "no component of that name",
                }),
                Some(c) if !c.devices.values().any(|d| d.starts_with("serial:")) => {
                    errs.push(ManifestError::Console {
                        name: name.clone(),
                        why: "it is granted no serial port",
                    })
                }
                Some(c) => bind(&c.name, kaal_protocols::console::LOCAL_NAME, &mut errs),
            }
        }
        if let Some(name) = &self.poweroff {
            if !names.contains_key(name.as_str()) {
                errs.push(ManifestError::Poweroff(name.clone()));
            }
        }
        let mut channels = BTreeMap::new();
        // Ring ends per component, counted as the channels are checked.
        let mut ring_ends: BTreeMap<&str, usize> = BTreeMap::new();
        for ch in &self.channels {
            let label = ch.label();
            if let Some(n) = &ch.name {
                if channels.insert(n.as_str(), ()).is_some() {
                    errs.push(ManifestError::DuplicateChannel(n.clone()));
                }
            }
            let shape = match ch.resolve() {
                Ok(r) => Some(r),
                Err(why) => {
                    errs.push(ManifestError::Channel {
                        channel: label.clone(),
                        why,
                    });
                    None
                }
            };
            let from = ch.from_names();
            if from.is_empty() {
                errs.push(ManifestError::MissingEnd {
                    channel: label.clone(),
                    end: "from",
                });
            }
            if ch.to.is_none() {
                errs.push(ManifestError::MissingEnd {
                    channel: label.clone(),
                    end: "to",
                });
            }
            let ends = from
                .iter()
                .map(|n| ("from", n))
                .chain(ch.to.iter().map(|n| ("to", n)));
            let mut seen = alloc::collections::BTreeSet::new();
            for (which, written) in ends {
                let Some(end) = ch.end(written) else {
                    errs.push(ManifestError::NoLocalName {
                        channel: label.clone(),
                        end: written.clone(),
                    });
                    continue;
                };
                if !names.contains_key(end.component) {
                    errs.push(ManifestError::UnknownComponent {
                        channel: label.clone(),
                        end: which,
                        name: end.component.into(),
                    });
                    continue;
                }
                if !seen.insert(end.component) {
                    errs.push(ManifestError::SameComponentBothEnds {
                        channel: label.clone(),
                        name: end.component.into(),
                    });
                }
                bind(end.component, end.local, &mut errs);
                if shape.is_some_and(|r| r.kind == ChannelKind::Ring) {
                    *ring_ends.entry(end.component).or_insert(0) += 1;
                }
            }
            if let Some(r) = shape {
                check_shape(ch, &label, r, &mut errs);
            }
        }
        if let Some(why) = self.disk.as_ref().and_then(Disk::problem) {
            errs.push(ManifestError::Disk(why));
        }
        // TCP and UDP are separate port spaces on the host.
        let mut hosts = alloc::collections::BTreeSet::new();
        for f in &self.forwards {
            if !hosts.insert((f.protocol, f.host)) {
                errs.push(ManifestError::ForwardTwice {
                    protocol: f.protocol,
                    host: f.host.0,
                });
            }
        }
        for c in &self.components {
            let console = usize::from(self.console.as_ref() == Some(&c.name));
            let rings = ring_ends.get(c.name.as_str()).copied().unwrap_or(0) + console;
            if rings > MAX_RINGS {
                errs.push(ManifestError::TooMany {
                    component: c.name.clone(),
                    what: "ring ends",
                    count: rings,
                    max: MAX_RINGS,
                });
            }
        }
        errs
    }

    /// Checks every binding against what the components' programs declare:
    /// `uses(image)` is the declaration of program `image` (local name to
    /// what it is used for), `None` for a program that declares nothing to
    /// check (a test's malformed program).
    pub fn check_uses<'u>(
        &self,
        uses: impl Fn(&str) -> Option<&'u BTreeMap<String, Use>>,
    ) -> Vec<ManifestError> {
        let mut errs = Vec::new();
        for c in &self.components {
            let Some(declared) = uses(c.image()) else {
                continue;
            };
            let list = || {
                let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                if names.is_empty() {
                    "nothing".into()
                } else {
                    names.join(", ")
                }
            };
            let undeclared = |local: &str| ManifestError::Undeclared {
                component: c.name.clone(),
                image: c.image().into(),
                local: local.into(),
                declared: list(),
            };
            for local in c.memory.keys() {
                match declared.get(local) {
                    None => errs.push(undeclared(local)),
                    Some(Use::Memory) => {}
                    Some(u) => errs.push(ManifestError::NotMemory {
                        component: c.name.clone(),
                        local: local.clone(),
                        declared: u.clone(),
                    }),
                }
            }
            if c.untyped.is_some() {
                match declared.get(UNTYPED_LOCAL_NAME) {
                    None => errs.push(undeclared(UNTYPED_LOCAL_NAME)),
                    Some(Use::Untyped) => {}
                    Some(u) => errs.push(ManifestError::NotUntyped {
                        component: c.name.clone(),
                        declared: u.clone(),
                    }),
                }
            }
            for (local, device) in &c.devices {
                match declared.get(local) {
                    None => errs.push(undeclared(local)),
                    Some(Use::Device) => {}
                    Some(u) => errs.push(ManifestError::NotADevice {
                        component: c.name.clone(),
                        local: local.clone(),
                        declared: u.clone(),
                        device: device.clone(),
                    }),
                }
            }
            let mut check = |local: &str,
                             protocol: &str,
                             side: Side,
                             bound: &dyn Fn() -> String| {
                match declared.get(local) {
                    None => errs.push(undeclared(local)),
                    Some(Use::Channel {
                        protocol: p,
                        side: s,
                    }) if p == protocol && *s == side => {}
                    Some(u) => errs.push(ManifestError::WrongProtocol {
                        component: c.name.clone(),
                        local: local.into(),
                        declared: u.clone(),
                        bound: bound(),
                        found: format!("`{protocol} {}`", side.word()),
                    }),
                }
            };
            if self.console.as_deref() == Some(c.name.as_str()) {
                let local = kaal_protocols::console::LOCAL_NAME;
                check(local, CONSOLE_PROTOCOL, Side::To, &|| {
                    "the root task's console ring".into()
                });
            }
            for ch in &self.channels {
                let Ok(r) = ch.resolve() else { continue };
                let found = channel_use(ch, r.kind);
                let from = ch.from_ends().flatten().map(|e| (e, Side::From));
                let ends = from.chain(ch.to_end().map(|e| (e, Side::To)));
                for (end, side) in ends.filter(|(e, _)| e.component == c.name) {
                    check(end.local, &found, side, &|| ch.label());
                }
            }
        }
        errs
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// A channel's ends and shape for its kind.
fn check_shape(ch: &Channel, label: &str, r: Resolved, errs: &mut Vec<ManifestError>) {
    let channel = || label.to_string();
    if r.kind != ChannelKind::Endpoint && ch.from_names().len() > 1 {
        errs.push(ManifestError::Channel {
            channel: channel(),
            why: "a ring or memory channel has exactly one `from` end",
        });
    }
    if r.kind == ChannelKind::Ring {
        if r.slots == 0 {
            errs.push(ManifestError::Channel {
                channel: channel(),
                why: "a ring needs `slots`",
            });
        } else if !r.slots.is_power_of_two() || r.slots > MAX_RING_SLOTS {
            errs.push(ManifestError::RingSlots {
                channel: channel(),
                slots: r.slots,
                why: "must be a power of two of at most 65536",
            });
        }
        if !r.slot_bytes.is_power_of_two() || r.slot_bytes > 4096 {
            errs.push(ManifestError::Channel {
                channel: channel(),
                why: "`slot_bytes` must be a power of two of at most 4096",
            });
        }
    } else if ch.slots.is_some() || ch.slot_bytes.is_some() {
        errs.push(ManifestError::Channel {
            channel: channel(),
            why: "`slots` and `slot_bytes` are for rings only",
        });
    }
    let bad_size = |b: u64| b == 0 || !b.is_multiple_of(PAGE) || b > MAX_SHARED_BYTES;
    let bytes_why = match (r.kind, ch.bytes) {
        (ChannelKind::Memory, None) => Some("a memory channel needs `bytes`"),
        (ChannelKind::Memory, Some(Size(b))) if bad_size(b) => {
            Some("`bytes` must be a whole number of 4 KiB pages, at most 16 MiB")
        }
        (ChannelKind::Endpoint, None) if r.lending => Some(
            "a lending endpoint (protocol `file`) needs `bytes`: the size of the region each client lends",
        ),
        (ChannelKind::Endpoint, Some(Size(b))) if r.lending && bad_size(b) => {
            Some("`bytes` (each client's lent region) must be a whole number of 4 KiB pages, at most 16 MiB")
        }
        (ChannelKind::Endpoint, Some(_)) if r.lending => None,
        (ChannelKind::Ring | ChannelKind::Endpoint, Some(_)) => {
            Some("`bytes` is for memory channels and lending endpoints only")
        }
        _ => None,
    };
    if let Some(why) = bytes_why {
        errs.push(ManifestError::Channel {
            channel: channel(),
            why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_devices_parse() {
        assert_eq!(parse_size("16K"), Some(16384));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(
            DeviceSpec::parse("serial:0"),
            Some(DeviceSpec::Serial { port: 0 })
        );
        assert_eq!(DeviceSpec::parse("serial:4"), None);
        assert_eq!(
            DeviceSpec::parse("pci:1af4:1000"),
            Some(DeviceSpec::Pci {
                vendor: 0x1af4,
                device: 0x1000
            })
        );
        assert_eq!(
            DeviceSpec::parse("pci-class:02:00"),
            Some(DeviceSpec::PciClass {
                class: 2,
                subclass: 0
            })
        );
        assert_eq!(DeviceSpec::parse("timer:pit"), Some(DeviceSpec::Pit));
        assert_eq!(DeviceSpec::parse("timer:hpet"), None);
        assert_eq!(DeviceSpec::parse("timer"), None);
        assert_eq!(DeviceSpec::parse("usb:1"), None);
    }

    #[test]
    fn budgets_split_into_blocks_of_at_most_16_mib() {
        let blocks = |b: u64| untyped_blocks(b).collect::<Vec<u8>>();
        assert_eq!(blocks(128 << 20), [24; 8]);
        assert_eq!(blocks(16 << 20), [24]);
        assert_eq!(blocks((20 << 20) + 4096), [24, 22, 12]);
        assert_eq!(blocks(1 << 20), [20]);
        assert!(blocks(0).is_empty());
    }
}
