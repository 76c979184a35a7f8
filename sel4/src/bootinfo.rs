//! The one BootInfo parser. seL4 5.0 writes BootInfo as a packed C struct;
//! it is copied out field by field and checked before anything trusts it.

use crate::sys::{self, seL4_BootInfo, seL4_UntypedDesc, MAX_BOOTINFO_UNTYPEDS};
use crate::{CPtr, Word};
use core::fmt;
use core::mem::size_of;
use core::ops::Range;

/// Why a BootInfo could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Fewer bytes than the structure needs.
    TooShort { len: usize, need: usize },
    /// More untyped capabilities listed than the structure has room for.
    TooManyUntypeds { listed: u64, room: usize },
    /// A slot range whose end lies before its start.
    BadSlotRange { start: u64, end: u64 },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::TooShort { len, need } => {
                write!(f, "BootInfo is {len} bytes, need {need}")
            }
            BootInfoError::TooManyUntypeds { listed, room } => {
                write!(f, "BootInfo lists {listed} untypeds, room for {room}")
            }
            BootInfoError::BadSlotRange { start, end } => {
                write!(f, "BootInfo slot range {start}..{end} is inverted")
            }
        }
    }
}

/// One untyped capability of the root task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedInfo {
    pub cptr: CPtr,
    pub paddr: Word,
    pub size_bits: u8,
    pub is_device: bool,
}

impl UntypedInfo {
    /// Size in bytes (saturating for sizes no machine has).
    pub fn bytes(&self) -> u64 {
        1u64.checked_shl(u32::from(self.size_bits))
            .unwrap_or(u64::MAX)
    }
}

/// A checked copy of the kernel's BootInfo.
#[derive(Clone, Copy)]
pub struct BootInfo {
    raw: seL4_BootInfo,
}

impl fmt::Debug for BootInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootInfo")
            .field("empty", &self.empty())
            .field("untypeds", &self.untyped_count())
            .finish_non_exhaustive()
    }
}

fn range(r: sys::seL4_SlotRegion) -> Result<Range<Word>, BootInfoError> {
    let (start, end) = (r.start, r.end);
    if end < start {
        return Err(BootInfoError::BadSlotRange { start, end });
    }
    Ok(start..end)
}

impl BootInfo {
    /// Size of the structure in bytes.
    pub const SIZE: usize = size_of::<seL4_BootInfo>();

    /// Parses BootInfo from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, BootInfoError> {
        if bytes.len() < Self::SIZE {
            return Err(BootInfoError::TooShort {
                len: bytes.len(),
                need: Self::SIZE,
            });
        }
        // SAFETY: the slice holds at least SIZE bytes; the struct is plain
        // integers (any bit pattern is valid) and is read unaligned.
        let raw = unsafe { bytes.as_ptr().cast::<seL4_BootInfo>().read_unaligned() };
        let bi = BootInfo { raw };
        range(bi.raw.empty)?;
        let u = range(bi.raw.untyped)?;
        let listed = u.end - u.start;
        if listed > MAX_BOOTINFO_UNTYPEDS as u64 {
            return Err(BootInfoError::TooManyUntypeds {
                listed,
                room: MAX_BOOTINFO_UNTYPEDS,
            });
        }
        Ok(bi)
    }

    /// Reads the BootInfo the kernel passed to the root task.
    ///
    /// # Safety
    /// `ptr` must point at a mapped BootInfo frame (the root task's `rdi`).
    pub unsafe fn from_ptr(ptr: *const u8) -> Result<Self, BootInfoError> {
        // SAFETY: the caller guarantees a mapped BootInfo of SIZE bytes.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, Self::SIZE) };
        Self::parse(bytes)
    }

    /// Free slots of the root CNode.
    pub fn empty(&self) -> Range<Word> {
        range(self.raw.empty).unwrap_or(0..0)
    }

    /// log2 of the number of slots in the root CNode.
    pub fn cnode_size_bits(&self) -> u8 {
        self.raw.initThreadCNodeSizeBits
    }

    /// The address of the root task's IPC buffer.
    pub fn ipc_buffer(&self) -> Word {
        self.raw.ipcBuffer
    }

    /// The TSC frequency in MHz, as the kernel measured it.
    pub fn tsc_mhz(&self) -> Word {
        self.raw.archInfo
    }

    /// Number of untyped capabilities.
    pub fn untyped_count(&self) -> usize {
        let u = range(self.raw.untyped).unwrap_or(0..0);
        ((u.end - u.start) as usize).min(MAX_BOOTINFO_UNTYPEDS)
    }

    /// Every untyped capability with its description.
    pub fn untypeds(&self) -> impl Iterator<Item = UntypedInfo> + '_ {
        let first = self.raw.untyped.start;
        let list = self.raw.untypedList;
        (0..self.untyped_count()).filter_map(move |i| {
            let d: seL4_UntypedDesc = *list.get(i)?;
            Some(UntypedInfo {
                cptr: first + i as Word,
                paddr: d.paddr,
                size_bits: d.sizeBits,
                is_device: d.isDevice != 0,
            })
        })
    }

    /// Total bytes of RAM (non-device) untyped memory.
    pub fn ram_bytes(&self) -> u64 {
        self.untypeds()
            .filter(|u| !u.is_device)
            .map(|u| u.bytes())
            .fold(0, u64::saturating_add)
    }

    /// Total bytes of device untyped memory.
    pub fn device_bytes(&self) -> u64 {
        self.untypeds()
            .filter(|u| u.is_device)
            .map(|u| u.bytes())
            .fold(0, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(f: impl FnOnce(&mut seL4_BootInfo)) -> Vec<u8> {
        // SAFETY: all-zero is a valid seL4_BootInfo (plain integers).
        let mut bi: seL4_BootInfo = unsafe { core::mem::zeroed() };
        f(&mut bi);
        // SAFETY: reading the bytes of a plain-integer struct.
        unsafe {
            core::slice::from_raw_parts((&bi as *const seL4_BootInfo).cast::<u8>(), BootInfo::SIZE)
        }
        .to_vec()
    }

    #[test]
    fn sums_ram_and_device_untypeds() {
        let bytes = image(|bi| {
            bi.untyped = sys::seL4_SlotRegion {
                start: 100,
                end: 103,
            };
            bi.empty = sys::seL4_SlotRegion {
                start: 200,
                end: 65536,
            };
            bi.untypedList[0] = seL4_UntypedDesc {
                paddr: 0x10_0000,
                sizeBits: 20,
                ..Default::default()
            };
            bi.untypedList[1] = seL4_UntypedDesc {
                paddr: 0x20_0000,
                sizeBits: 21,
                ..Default::default()
            };
            bi.untypedList[2] = seL4_UntypedDesc {
                paddr: 0xfee0_0000,
                sizeBits: 12,
                isDevice: 1,
                ..Default::default()
            };
            bi.initThreadCNodeSizeBits = 16;
        });
        let bi = BootInfo::parse(&bytes).unwrap();
        assert_eq!(bi.untyped_count(), 3);
        assert_eq!(bi.ram_bytes(), (1 << 20) + (1 << 21));
        assert_eq!(bi.device_bytes(), 1 << 12);
        assert_eq!(bi.empty(), 200..65536);
        assert_eq!(bi.cnode_size_bits(), 16);
        let caps: Vec<_> = bi.untypeds().map(|u| u.cptr).collect();
        assert_eq!(caps, [100, 101, 102]);
    }

    #[test]
    fn rejects_bad_boot_info() {
        assert!(matches!(
            BootInfo::parse(&[0u8; 16]),
            Err(BootInfoError::TooShort { .. })
        ));
        let too_many = image(|bi| {
            bi.untyped = sys::seL4_SlotRegion {
                start: 0,
                end: 100_000,
            }
        });
        assert!(matches!(
            BootInfo::parse(&too_many),
            Err(BootInfoError::TooManyUntypeds { .. })
        ));
        let inverted = image(|bi| bi.empty = sys::seL4_SlotRegion { start: 9, end: 3 });
        assert_eq!(
            BootInfo::parse(&inverted).err(),
            Some(BootInfoError::BadSlotRange { start: 9, end: 3 })
        );
    }
}
