//! The system manifest: one declarative file naming every component, the
//! devices it may claim, the channels it shares (both ends named) and its
//! restart policy. `cargo xtask` checks it at build time; every problem is
//! reported with the component, channel or device it concerns.
//!
//! ```toml
//! [[component]]
//! name = "serial"          # unique
//! image = "serial_driver"  # the program the component runs
//! priority = 200           # below the root task's 255
//! stack = "16K"            # page multiples; also bytes as an integer
//! heap = "64K"
//! devices = ["serial:0"]   # serial:N, timer:pit, pci:VVVV:DDDD, pci-class:CC:SS
//! restart = "restart"      # or "stop" (the default)
//!
//! [[channel]]
//! name = "console"
//! kind = "ring"            # or "endpoint"
//! from = "app"             # producer (ring) or client (endpoint)
//! to = "serial"            # consumer (ring) or server (endpoint)
//! slots = 256              # rings only: a power of two
//! slot_bytes = 64          # rings only: bytes per slot (default 64)
//!
//! [[channel]]
//! name = "blk_data"
//! kind = "memory"          # a region both ends map read-write
//! from = "app"
//! to = "blk"
//! bytes = "256K"           # memory only: page multiples, at most 16 MiB
//! ```
//!
//! An endpoint channel may have several clients: `from = ["a", "b"]`; each
//! gets its own badge, and the server one endpoint for all of them.
//!
//! A top-level `console = "<component>"` names the serial driver that
//! prints the components' console lines.
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
use serde::{Deserialize, Serialize};

const PAGE: u64 = 4096;
/// Largest stack a component may ask for.
pub const MAX_STACK: u64 = 8 << 20;
/// Largest heap a component may ask for.
pub const MAX_HEAP: u64 = 256 << 20;
/// Largest ring, in slots.
pub const MAX_RING_SLOTS: u32 = 1 << 16;
/// Largest memory channel.
pub const MAX_SHARED_BYTES: u64 = 16 << 20;
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

/// A device a component may claim (`Pit`: `timer:pit`, the i8254).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum DeviceSpec {
    Serial { port: u8 },
    Pci { vendor: u16, device: u16 },
    PciClass { class: u8, subclass: u8 },
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
    pub image: String,
    pub priority: u8,
    pub stack: Size,
    pub heap: Size,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub restart: Restart,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub from: Option<Ends>,
    pub to: Option<String>,
    pub slots: Option<u32>,
    pub slot_bytes: Option<u32>,
    /// Size of a memory channel.
    pub bytes: Option<Size>,
}

/// One component, or several (an endpoint's clients).
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

/// Bytes per ring slot unless the manifest says otherwise.
pub const DEFAULT_SLOT_BYTES: u32 = 64;

impl Channel {
    /// Bytes per ring slot.
    pub fn slot_bytes(&self) -> u32 {
        self.slot_bytes.unwrap_or(DEFAULT_SLOT_BYTES)
    }
    /// The clients (endpoint) or the producer (ring).
    pub fn from_names(&self) -> &[String] {
        self.from.as_ref().map(Ends::names).unwrap_or(&[])
    }
}

/// A checked manifest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The serial driver component that prints the components' console
    /// lines (the root task forwards them to it on a ring named `console`);
    /// without it the root task prints them on COM1 itself.
    #[serde(default)]
    pub console: Option<String>,
    #[serde(rename = "component", default)]
    pub components: Vec<Component>,
    #[serde(rename = "channel", default)]
    pub channels: Vec<Channel>,
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
    RingSlots {
        channel: String,
        slots: Option<u32>,
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
            RingSlots { channel, slots: Some(s), why } => write!(f, "channel `{channel}`: {s} slots: {why}"),
            RingSlots { channel, slots: None, why } => write!(f, "channel `{channel}`: {why}"),
            Console { name, why } => write!(f, "console `{name}`: {why}"),
            Priority { component, priority } => write!(
                f,
                "component `{component}`: priority {priority} is not below the root task's {ROOT_PRIORITY}"
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
            check_size(c, "stack", c.stack.0, MAX_STACK, &mut errs);
            check_size(c, "heap", c.heap.0, MAX_HEAP, &mut errs);
            for d in &c.devices {
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
            let why = match self.components.iter().find(|c| &c.name == name) {
                None => Some("no component of that name"),
                Some(c) if !c.devices.iter().any(|d| d.starts_with("serial:")) => {
                    Some("it is granted no serial port")
                }
                // The root task's ring to it is named `console`.
                Some(_)
                    if self.channels.iter().any(|ch| {
                        ch.name == "console"
                            && (ch.to.as_ref() == Some(name) || ch.from_names().contains(name))
                    }) =>
                {
                    Some("it already has a channel named `console`, the name of its console ring")
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                errs.push(ManifestError::Console {
                    name: name.clone(),
                    why,
                });
            }
        }
        let mut channels = BTreeMap::new();
        for ch in &self.channels {
            if channels.insert(ch.name.as_str(), ()).is_some() {
                errs.push(ManifestError::DuplicateChannel(ch.name.clone()));
            }
            let from: Vec<&String> = ch.from_names().iter().collect();
            if from.is_empty() {
                errs.push(ManifestError::MissingEnd {
                    channel: ch.name.clone(),
                    end: "from",
                });
            }
            if ch.kind != ChannelKind::Endpoint && from.len() > 1 {
                errs.push(ManifestError::RingSlots {
                    channel: ch.name.clone(),
                    slots: ch.slots,
                    why: "a ring or memory channel has exactly one `from` end",
                });
            }
            let to: Vec<&String> = ch.to.iter().collect();
            if to.is_empty() {
                errs.push(ManifestError::MissingEnd {
                    channel: ch.name.clone(),
                    end: "to",
                });
            }
            for (end, who) in from
                .iter()
                .map(|n| ("from", *n))
                .chain(to.iter().map(|n| ("to", *n)))
            {
                if !names.contains_key(who.as_str()) {
                    errs.push(ManifestError::UnknownComponent {
                        channel: ch.name.clone(),
                        end,
                        name: who.clone(),
                    });
                }
            }
            if let Some(server) = ch.to.as_ref() {
                if from.contains(&server) {
                    errs.push(ManifestError::SameComponentBothEnds {
                        channel: ch.name.clone(),
                        name: server.clone(),
                    });
                }
            }
            let mut seen = alloc::collections::BTreeSet::new();
            for f in &from {
                if !seen.insert(f.as_str()) {
                    errs.push(ManifestError::DuplicateChannel(format!(
                        "{} (client `{f}` listed twice)",
                        ch.name
                    )));
                }
            }
            if let Some(b) = ch.slot_bytes {
                if ch.kind != ChannelKind::Ring || !b.is_power_of_two() || b > 4096 {
                    errs.push(ManifestError::RingSlots {
                        channel: ch.name.clone(),
                        slots: ch.slots,
                        why: "`slot_bytes` is for rings and must be a power of two of at most 4096",
                    });
                }
            }
            match (ch.kind, ch.slots) {
                (ChannelKind::Ring, None) => errs.push(ManifestError::RingSlots {
                    channel: ch.name.clone(),
                    slots: None,
                    why: "a ring needs `slots`",
                }),
                (ChannelKind::Ring, Some(s)) if !s.is_power_of_two() || s > MAX_RING_SLOTS => errs
                    .push(ManifestError::RingSlots {
                        channel: ch.name.clone(),
                        slots: Some(s),
                        why: "must be a power of two of at most 65536",
                    }),
                (ChannelKind::Endpoint | ChannelKind::Memory, Some(s)) => {
                    errs.push(ManifestError::RingSlots {
                        channel: ch.name.clone(),
                        slots: Some(s),
                        why: "`slots` is for rings only",
                    })
                }
                _ => {}
            }
            let bytes_why = match (ch.kind, ch.bytes) {
                (ChannelKind::Memory, None) => Some("a memory channel needs `bytes`"),
                (ChannelKind::Memory, Some(Size(b)))
                    if b == 0 || !b.is_multiple_of(PAGE) || b > MAX_SHARED_BYTES =>
                {
                    Some("`bytes` must be a whole number of 4 KiB pages, at most 16 MiB")
                }
                (ChannelKind::Ring | ChannelKind::Endpoint, Some(_)) => {
                    Some("`bytes` is for memory channels only")
                }
                _ => None,
            };
            if let Some(why) = bytes_why {
                errs.push(ManifestError::RingSlots {
                    channel: ch.name.clone(),
                    slots: None,
                    why,
                });
            }
        }
        errs
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
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
}
