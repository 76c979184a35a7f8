//! PCI configuration access from the broker's snapshot. A driver gets no
//! configuration-space access of its own (on a PC one function's access
//! would reach every device), so reads come from the registers the broker
//! read when it granted the device, and the BAR-sizing protocol
//! (write all ones, read the mask, write the original back) is answered from
//! the BAR sizes it measured. A write to the command register changes only
//! the shadow copy (the broker has already enabled decoding and bus
//! mastering); other writes are dropped.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

const BAR0: u8 = 0x10;
const COMMAND: u8 = 0x04;

/// A function's configuration space as the broker read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    regs: [u32; 64],
    bar_sizes: [u64; 6],
    /// BARs written with all ones: the next read returns the size mask.
    sizing: u8,
}

impl Snapshot {
    pub fn new(regs: [u32; 64], bar_sizes: [u64; 6]) -> Snapshot {
        Snapshot {
            regs,
            bar_sizes,
            sizing: 0,
        }
    }

    fn reg(&self, index: usize) -> u32 {
        self.regs.get(index).copied().unwrap_or(0)
    }

    /// The bus address of memory BAR `index` (with its upper half for a
    /// 64-bit BAR); `None` for an I/O or absent BAR.
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        let i = usize::from(index);
        let lo = self.reg(usize::from(BAR0 / 4) + i);
        if lo & 1 != 0 || self.bar_sizes.get(i).copied().unwrap_or(0) == 0 {
            return None;
        }
        let hi = if lo & 0b110 == 0b100 {
            self.reg(usize::from(BAR0 / 4) + i + 1)
        } else {
            0
        };
        Some(u64::from(lo & !0xf) | (u64::from(hi) << 32))
    }

    /// What BAR `i` reads after all ones were written to it.
    fn size_mask(&self, i: usize) -> u32 {
        let orig = self.reg(usize::from(BAR0 / 4) + i);
        let size = self.bar_sizes.get(i).copied().unwrap_or(0);
        if size != 0 {
            let mask = !(size - 1);
            let flags = if orig & 1 != 0 {
                orig & 0x3
            } else {
                orig & 0xf
            };
            return (mask as u32 & !0xf) | flags;
        }
        // The upper half of a 64-bit memory BAR.
        let lower = i.checked_sub(1).map(|j| {
            (
                self.reg(usize::from(BAR0 / 4) + j),
                self.bar_sizes.get(j).copied().unwrap_or(0),
            )
        });
        match lower {
            Some((lo, size)) if lo & 0b111 == 0b100 && size != 0 => (!(size - 1) >> 32) as u32,
            _ => 0,
        }
    }

    fn bar_of(offset: u8) -> Option<usize> {
        (BAR0..BAR0 + 24)
            .contains(&offset)
            .then(|| usize::from((offset - BAR0) / 4))
    }
}

impl ConfigurationAccess for Snapshot {
    fn read_word(&self, _: DeviceFunction, offset: u8) -> u32 {
        match Self::bar_of(offset) {
            Some(i) if self.sizing & (1 << i) != 0 => self.size_mask(i),
            _ => self.reg(usize::from(offset / 4)),
        }
    }

    fn write_word(&mut self, _: DeviceFunction, offset: u8, data: u32) {
        if let Some(i) = Self::bar_of(offset) {
            // Sizing starts with all ones and ends with any other write; the
            // address itself is the broker's and stays.
            if data == u32::MAX {
                self.sizing |= 1 << i;
            } else {
                self.sizing &= !(1 << i);
            }
        } else if offset == COMMAND {
            if let Some(r) = self.regs.get_mut(usize::from(COMMAND / 4)) {
                *r = (*r & 0xffff_0000) | (data & 0xffff);
            }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_drivers::transport::pci::bus::{BarInfo, MemoryBarType, PciRoot};

    const DF: DeviceFunction = DeviceFunction {
        bus: 0,
        device: 3,
        function: 0,
    };

    /// A transitional virtio-blk function as QEMU presents it: I/O BAR0,
    /// 32-bit memory BAR1, 64-bit prefetchable memory BAR4.
    fn qemu_blk() -> Snapshot {
        let mut regs = [0u32; 64];
        regs[0] = 0x1001_1af4;
        regs[1] = 0x0010_0007; // capability list; I/O, memory, bus master on
        regs[4] = 0xc041; // BAR0: I/O at 0xc040
        regs[5] = 0xfebd_1000; // BAR1: 32-bit memory
        regs[8] = 0xfe00_000c; // BAR4: 64-bit prefetchable, low half
        regs[9] = 0x1; // BAR4 high half
        let sizes = [0x40, 0x1000, 0, 0, 0x4000, 0];
        Snapshot::new(regs, sizes)
    }

    #[test]
    fn bar_sizing_protocol_reports_the_brokers_sizes() {
        let mut root = PciRoot::new(qemu_blk());
        assert_eq!(
            root.bar_info(DF, 1).unwrap(),
            Some(BarInfo::Memory {
                address_type: MemoryBarType::Width32,
                prefetchable: false,
                address: 0xfebd_1000,
                size: 0x1000
            })
        );
        assert_eq!(
            root.bar_info(DF, 4).unwrap(),
            Some(BarInfo::Memory {
                address_type: MemoryBarType::Width64,
                prefetchable: true,
                address: 0x1_fe00_0000,
                size: 0x4000
            })
        );
        assert_eq!(
            root.bar_info(DF, 0).unwrap(),
            Some(BarInfo::IO {
                address: 0xc040,
                size: 0x40
            })
        );
        assert_eq!(root.bar_info(DF, 2).unwrap(), None);
    }

    #[test]
    fn sizing_leaves_addresses_and_other_registers_alone() {
        let mut s = qemu_blk();
        s.write_word(DF, 0x14, u32::MAX);
        assert_eq!(s.read_word(DF, 0x14), 0xffff_f000);
        s.write_word(DF, 0x14, 0x1234_5000);
        assert_eq!(s.read_word(DF, 0x14), 0xfebd_1000);
        s.write_word(DF, 0x00, 0);
        assert_eq!(s.read_word(DF, 0x00), 0x1001_1af4);
        s.write_word(DF, COMMAND, 0);
        assert_eq!(s.read_word(DF, COMMAND), 0x0010_0000);
        assert_eq!(s.bar_address(4), Some(0x1_fe00_0000));
        assert_eq!(s.bar_address(0), None, "I/O BAR");
        assert_eq!(s.bar_address(5), None, "upper half of BAR4");
        assert_eq!(s.bar_address(9), None);
    }
}
