//! The system image: the checked manifest with every component's program,
//! packed by `cargo xtask` and embedded in the root task, which spawns the
//! system from it. The encoding is postcard; the programs are borrowed from
//! the embedded bytes, not copied.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::{ChannelKind, DeviceSpec, Restart};

/// Marks a KaaL system image (and its format version).
pub const MAGIC: u32 = 0x4b61_5334; // "KaS4": components carry a command line

/// Header of a ring's shared memory (the `kaal-ring` header's size).
pub const RING_HEADER_BYTES: u64 = 128;

/// A packed system.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SystemImage<'a> {
    pub magic: u32,
    #[serde(borrow)]
    pub components: Vec<ComponentImage<'a>>,
    #[serde(borrow)]
    pub channels: Vec<ChannelImage<'a>>,
    /// The component that prints console lines (see `Manifest::console`).
    pub console: Option<u16>,
    /// The component whose exit powers the machine off.
    pub poweroff: Option<u16>,
}

/// One component: its manifest entry and its program.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ComponentImage<'a> {
    pub name: &'a str,
    /// The program's name (the manifest's `image`), for reports.
    pub program: &'a str,
    pub priority: u8,
    pub stack: u64,
    pub heap: u64,
    /// Each device with the component's local name for it.
    #[serde(borrow)]
    pub devices: Vec<(&'a str, DeviceSpec)>,
    pub restart: Restart,
    /// Each private memory region with the component's local name for it.
    #[serde(borrow)]
    pub memory: Vec<(&'a str, u64)>,
    /// Bytes of its untyped budget (0: none).
    pub untyped: u64,
    /// Its command line (`args`).
    #[serde(borrow)]
    pub args: Vec<&'a str>,
    /// The ELF program.
    pub elf: &'a [u8],
}

/// One end of a channel: a component's index in `components`, and its
/// local name for the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct EndImage<'a> {
    pub component: u16,
    pub local: &'a str,
}

/// One channel, its protocol applied.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChannelImage<'a> {
    /// How messages name it (its name, or its ends).
    pub label: String,
    pub kind: ChannelKind,
    /// The clients (endpoint) or the producer (ring).
    #[serde(borrow)]
    pub from: Vec<EndImage<'a>>,
    /// The server (endpoint) or the consumer (ring).
    #[serde(borrow)]
    pub to: EndImage<'a>,
    pub slots: u32,
    pub slot_bytes: u32,
    /// Size of a memory channel; for an endpoint, of the region each
    /// client lends the server (0: they lend none).
    pub bytes: u64,
}

impl ChannelImage<'_> {
    /// Whether component `i` is an end.
    pub fn has_end(&self, i: u16) -> bool {
        self.to.component == i || self.from.iter().any(|e| e.component == i)
    }

    /// Bytes of shared memory the channel needs (0 for an endpoint; its
    /// clients' lent regions are [`Self::lent_bytes`] each).
    pub fn shared_bytes(&self) -> u64 {
        match self.kind {
            ChannelKind::Ring => {
                RING_HEADER_BYTES + u64::from(self.slots) * u64::from(self.slot_bytes)
            }
            ChannelKind::Memory => self.bytes,
            ChannelKind::Endpoint => 0,
        }
    }

    /// Bytes of the region each client of an endpoint lends its server (0:
    /// none).
    pub fn lent_bytes(&self) -> u64 {
        match self.kind {
            ChannelKind::Endpoint => self.bytes,
            ChannelKind::Ring | ChannelKind::Memory => 0,
        }
    }
}

/// Why an embedded system image cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    Decode(String),
    BadMagic(u32),
    /// A channel names a component index that does not exist.
    BadEnd {
        channel: String,
        index: u16,
    },
    /// A value the manifest check would have refused.
    Invalid {
        what: String,
        why: &'static str,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Decode(e) => write!(f, "system image does not decode: {e}"),
            ImageError::BadMagic(m) => write!(f, "not a KaaL system image (magic {m:#x})"),
            ImageError::Invalid { what, why } => write!(f, "{what}: {why}"),
            ImageError::BadEnd { channel, index } => {
                write!(
                    f,
                    "channel `{channel}` names component #{index}, which does not exist"
                )
            }
        }
    }
}

impl<'a> SystemImage<'a> {
    /// Decodes and checks an embedded image.
    pub fn decode(bytes: &'a [u8]) -> Result<SystemImage<'a>, ImageError> {
        let img: SystemImage<'a> =
            postcard::from_bytes(bytes).map_err(|e| ImageError::Decode(alloc::format!("{e}")))?;
        if img.magic != MAGIC {
            return Err(ImageError::BadMagic(img.magic));
        }
        img.check_values()?;
        let n = img.components.len();
        if img.poweroff.is_some_and(|c| usize::from(c) >= n) {
            return Err(ImageError::Invalid {
                what: "poweroff".into(),
                why: "not a component",
            });
        }
        if img.console.is_some_and(|c| usize::from(c) >= n) {
            return Err(ImageError::Invalid {
                what: "console".into(),
                why: "not a component",
            });
        }
        for ch in &img.channels {
            for e in ch.from.iter().chain(core::iter::once(&ch.to)) {
                if usize::from(e.component) >= n {
                    return Err(ImageError::BadEnd {
                        channel: ch.label.clone(),
                        index: e.component,
                    });
                }
            }
        }
        Ok(img)
    }

    /// Re-checks what the manifest check guarantees, so that no arithmetic
    /// on these values can overflow in the root task.
    fn check_values(&self) -> Result<(), ImageError> {
        let bad = |what: &str, why| {
            Err(ImageError::Invalid {
                what: what.into(),
                why,
            })
        };
        let page_size = |v: u64, max: u64| v > 0 && v.is_multiple_of(4096) && v <= max;
        for c in &self.components {
            if c.priority == crate::ROOT_PRIORITY {
                return bad(c.name, "priority not below the root task's");
            }
            if !page_size(c.stack, crate::MAX_STACK) || !page_size(c.heap, crate::MAX_HEAP) {
                return bad(c.name, "stack or heap size out of range");
            }
            if c.memory.len() > crate::MAX_PRIVATE_REGIONS
                || c.memory
                    .iter()
                    .any(|(_, b)| !page_size(*b, crate::MAX_PRIVATE_BYTES))
            {
                return bad(c.name, "private memory out of range");
            }
            let budget_ok = c.untyped == 0
                || (page_size(c.untyped, crate::MAX_UNTYPED_BYTES)
                    && crate::untyped_blocks(c.untyped).count() <= crate::MAX_UNTYPED_BLOCKS);
            if !budget_ok {
                return bad(c.name, "untyped budget out of range");
            }
            let arg_bytes: usize = c.args.iter().map(|a| a.len() + 1).sum();
            if c.args.len() > crate::MAX_ARGS
                || arg_bytes > crate::MAX_ARGS_BYTES
                || c.args.iter().any(|a| a.contains('\0'))
            {
                return bad(c.name, "command line out of range");
            }
        }
        for ch in &self.channels {
            if ch.from.is_empty() || ch.from.iter().any(|e| e.component == ch.to.component) {
                return bad(&ch.label, "channel ends");
            }
            let ring_ok = ch.from.len() == 1
                && ch.slots.is_power_of_two()
                && ch.slots <= crate::MAX_RING_SLOTS
                && ch.slot_bytes.is_power_of_two()
                && ch.slot_bytes <= 4096;
            if ch.kind == ChannelKind::Ring && !ring_ok {
                return bad(&ch.label, "ring shape");
            }
            let memory_ok = ch.from.len() == 1
                && ch.bytes > 0
                && ch.bytes.is_multiple_of(4096)
                && ch.bytes <= crate::MAX_SHARED_BYTES;
            if ch.kind == ChannelKind::Memory && !memory_ok {
                return bad(&ch.label, "memory channel shape");
            }
            let lent_ok = ch.bytes == 0 || page_size(ch.bytes, crate::MAX_SHARED_BYTES);
            if ch.kind == ChannelKind::Endpoint && !lent_ok {
                return bad(&ch.label, "lent region size");
            }
        }
        Ok(())
    }

    /// The component named `name` and its index.
    pub fn component(&self, name: &str) -> Option<(usize, &ComponentImage<'a>)> {
        self.components
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }
}

#[cfg(feature = "std")]
impl crate::Manifest {
    /// Packs this (checked) manifest with each component's program;
    /// `program(image_name)` returns the ELF bytes of a component's `image`.
    pub fn pack<'a>(
        &'a self,
        programs: &'a std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        let index = |name: &str| -> Result<u16, String> {
            self.components
                .iter()
                .position(|c| c.name == name)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| alloc::format!("unknown component `{name}`"))
        };
        let mut components = Vec::new();
        for c in &self.components {
            let elf = programs.get(c.image()).ok_or_else(|| {
                alloc::format!("component `{}`: no program `{}`", c.name, c.image())
            })?;
            components.push(ComponentImage {
                name: &c.name,
                program: c.image(),
                priority: c.priority,
                stack: c.stack.0,
                heap: c.heap.0,
                devices: c
                    .devices
                    .iter()
                    .filter_map(|(local, d)| Some((local.as_str(), DeviceSpec::parse(d)?)))
                    .collect(),
                restart: c.restart,
                memory: c.memory.iter().map(|(l, s)| (l.as_str(), s.0)).collect(),
                untyped: c.untyped.map_or(0, |s| s.0),
                args: c.args.iter().map(String::as_str).collect(),
                elf,
            });
        }
        let mut channels = Vec::new();
        for ch in &self.channels {
            let label = ch.label();
            let shape = ch
                .resolve()
                .map_err(|why| alloc::format!("channel `{label}`: {why}"))?;
            let end = |e: Option<crate::End<'a>>| -> Result<EndImage<'a>, String> {
                let e = e.ok_or_else(|| {
                    alloc::format!("channel `{label}`: an end without a local name")
                })?;
                Ok(EndImage {
                    component: index(e.component)?,
                    local: e.local,
                })
            };
            channels.push(ChannelImage {
                kind: shape.kind,
                from: ch.from_ends().map(end).collect::<Result<_, _>>()?,
                to: end(ch.to_end())?,
                slots: shape.slots,
                slot_bytes: shape.slot_bytes,
                bytes: shape.bytes,
                label,
            });
        }
        let console = self.console.as_deref().map(index).transpose()?;
        let poweroff = self.poweroff.as_deref().map(index).transpose()?;
        let img = SystemImage {
            magic: MAGIC,
            components,
            channels,
            console,
            poweroff,
        };
        postcard::to_allocvec(&img).map_err(|e| alloc::format!("packing: {e}"))
    }
}
