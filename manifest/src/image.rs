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
pub const MAGIC: u32 = 0x4b61_5331; // "KaS1"

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
}

/// One component: its manifest entry and its program.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ComponentImage<'a> {
    pub name: &'a str,
    pub priority: u8,
    pub stack: u64,
    pub heap: u64,
    pub devices: Vec<DeviceSpec>,
    pub restart: Restart,
    /// The ELF program.
    pub elf: &'a [u8],
}

/// One channel; ends are indices into `components`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChannelImage<'a> {
    pub name: &'a str,
    pub kind: ChannelKind,
    /// The clients (endpoint) or the producer (ring).
    pub from: Vec<u16>,
    /// The server (endpoint) or the consumer (ring).
    pub to: u16,
    pub slots: u32,
    pub slot_bytes: u32,
    /// Size of a memory channel (0 otherwise).
    pub bytes: u64,
}

impl ChannelImage<'_> {
    /// Bytes of shared memory the channel needs (0 for an endpoint).
    pub fn shared_bytes(&self) -> u64 {
        match self.kind {
            ChannelKind::Ring => {
                RING_HEADER_BYTES + u64::from(self.slots) * u64::from(self.slot_bytes)
            }
            ChannelKind::Memory => self.bytes,
            ChannelKind::Endpoint => 0,
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
        if img.console.is_some_and(|c| usize::from(c) >= n) {
            return Err(ImageError::Invalid {
                what: "console".into(),
                why: "not a component",
            });
        }
        for ch in &img.channels {
            for &i in ch.from.iter().chain(core::iter::once(&ch.to)) {
                if usize::from(i) >= n {
                    return Err(ImageError::BadEnd {
                        channel: ch.name.into(),
                        index: i,
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
        }
        for ch in &self.channels {
            if ch.from.is_empty() || ch.from.contains(&ch.to) {
                return bad(ch.name, "channel ends");
            }
            let ring_ok = ch.from.len() == 1
                && ch.slots.is_power_of_two()
                && ch.slots <= crate::MAX_RING_SLOTS
                && ch.slot_bytes.is_power_of_two()
                && ch.slot_bytes <= 4096;
            if ch.kind == ChannelKind::Ring && !ring_ok {
                return bad(ch.name, "ring shape");
            }
            let memory_ok = ch.from.len() == 1
                && ch.bytes > 0
                && ch.bytes.is_multiple_of(4096)
                && ch.bytes <= crate::MAX_SHARED_BYTES;
            if ch.kind == ChannelKind::Memory && !memory_ok {
                return bad(ch.name, "memory channel shape");
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
    pub fn pack(
        &self,
        programs: &std::collections::BTreeMap<String, Vec<u8>>,
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
            let elf = programs.get(&c.image).ok_or_else(|| {
                alloc::format!("component `{}`: no program `{}`", c.name, c.image)
            })?;
            components.push(ComponentImage {
                name: &c.name,
                priority: c.priority,
                stack: c.stack.0,
                heap: c.heap.0,
                devices: c
                    .devices
                    .iter()
                    .filter_map(|d| DeviceSpec::parse(d))
                    .collect(),
                restart: c.restart,
                elf,
            });
        }
        let mut channels = Vec::new();
        for ch in &self.channels {
            let to = ch.to.as_deref().ok_or("channel without `to`")?;
            channels.push(ChannelImage {
                name: &ch.name,
                kind: ch.kind,
                from: ch
                    .from_names()
                    .iter()
                    .map(|n| index(n))
                    .collect::<Result<_, _>>()?,
                to: index(to)?,
                slots: ch.slots.unwrap_or(0),
                slot_bytes: ch.slot_bytes(),
                bytes: ch.bytes.map_or(0, |b| b.0),
            });
        }
        let console = self.console.as_deref().map(index).transpose()?;
        let img = SystemImage {
            magic: MAGIC,
            components,
            channels,
            console,
        };
        postcard::to_allocvec(&img).map_err(|e| alloc::format!("packing: {e}"))
    }
}
