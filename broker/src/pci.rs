//! PCI enumeration through configuration mechanism #1 (ports 0xCF8/0xCFC):
//! every function on bus 0 and on the buses behind PCI-PCI bridges, with its
//! IDs, class, BARs (sized by the write-ones protocol) and interrupt line.

use crate::BrokerError;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// Bus, device and function of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
}

/// Access to configuration space, 32 bits at a time (`offset` 4-aligned).
pub trait ConfigSpace {
    fn read32(&mut self, at: Bdf, offset: u8) -> Result<u32, BrokerError>;
    fn write32(&mut self, at: Bdf, offset: u8, value: u32) -> Result<(), BrokerError>;
}

/// The address port and data port of mechanism #1.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
pub const CONFIG_DATA: u16 = 0xcfc;

/// The value written to `CONFIG_ADDRESS` to reach a register.
pub fn config_address(at: Bdf, offset: u8) -> u32 {
    0x8000_0000
        | (u32::from(at.bus) << 16)
        | (u32::from(at.dev & 0x1f) << 11)
        | (u32::from(at.func & 0x7) << 8)
        | u32::from(offset & 0xfc)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Memory { prefetchable: bool, is_64bit: bool },
    Io,
}

/// One implemented base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub index: u8,
    pub kind: BarKind,
    pub base: u64,
    pub size: u64,
}

/// One PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    pub at: Bdf,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub bars: heapless::Vec<Bar, 6>,
    /// The interrupt line the firmware routed INTx to (0xff: none).
    pub irq_line: u8,
    /// Which INTx pin the function uses (0: none).
    pub irq_pin: u8,
}

fn bar_at<C: ConfigSpace>(cs: &mut C, at: Bdf, index: u8) -> Result<(u32, u32), BrokerError> {
    let off = 0x10 + 4 * index;
    let orig = cs.read32(at, off)?;
    cs.write32(at, off, 0xffff_ffff)?;
    let mask = cs.read32(at, off)?;
    cs.write32(at, off, orig)?;
    Ok((orig, mask))
}

fn read_bars<C: ConfigSpace>(
    cs: &mut C,
    at: Bdf,
    count: u8,
) -> Result<heapless::Vec<Bar, 6>, BrokerError> {
    let mut bars = heapless::Vec::new();
    let mut i = 0;
    while i < count {
        let (orig, mask) = bar_at(cs, at, i)?;
        let index = i;
        i += 1;
        if mask == 0 {
            continue;
        }
        let bar = if orig & 1 == 1 {
            let size = u64::from((!(mask & !0x3)).wrapping_add(1) & 0xffff);
            Bar {
                index,
                kind: BarKind::Io,
                base: u64::from(orig & !0x3),
                size,
            }
        } else {
            let is_64bit = (orig >> 1) & 0x3 == 0x2;
            let prefetchable = orig & 0x8 != 0;
            let (mut base, mut m) = (
                u64::from(orig & !0xf),
                u64::from(mask & !0xf) | 0xffff_ffff_0000_0000,
            );
            if is_64bit && i < count {
                let (hi, hi_mask) = bar_at(cs, at, i)?;
                i += 1;
                base |= u64::from(hi) << 32;
                m = (u64::from(hi_mask) << 32) | u64::from(mask & !0xf);
            }
            let size = (!m).wrapping_add(1);
            Bar {
                index,
                kind: BarKind::Memory {
                    prefetchable,
                    is_64bit,
                },
                base,
                size,
            }
        };
        if bar.size != 0 {
            let _ = bars.push(bar);
        }
    }
    Ok(bars)
}

/// Command register bits (offset 0x04, low half).
pub const COMMAND_IO: u32 = 1 << 0;
pub const COMMAND_MEMORY: u32 = 1 << 1;
pub const COMMAND_BUS_MASTER: u32 = 1 << 2;
pub const COMMAND_INTX_DISABLE: u32 = 1 << 10;

/// Sets and clears bits of a function's command register, leaving the
/// status half alone (its bits clear when written with ones).
pub fn update_command<C: ConfigSpace>(
    cs: &mut C,
    at: Bdf,
    set: u32,
    clear: u32,
) -> Result<(), BrokerError> {
    let v = cs.read32(at, 0x04)? & 0xffff;
    cs.write32(at, 0x04, (v | set) & !clear)
}

/// The first 256 bytes of a function's configuration space.
pub fn snapshot<C: ConfigSpace>(cs: &mut C, at: Bdf) -> Result<[u32; 64], BrokerError> {
    let mut regs = [0u32; 64];
    for (i, r) in (0u8..).step_by(4).zip(regs.iter_mut()) {
        *r = cs.read32(at, i)?;
    }
    Ok(regs)
}

/// Enumerates every function reachable from bus 0.
pub fn enumerate<C: ConfigSpace>(cs: &mut C) -> Result<Vec<PciDevice>, BrokerError> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = BTreeSet::new();
    while let Some(bus) = buses.pop() {
        if !seen.insert(bus) {
            continue;
        }
        for dev in 0..32 {
            let f0 = Bdf { bus, dev, func: 0 };
            if cs.read32(f0, 0)? & 0xffff == 0xffff {
                continue;
            }
            let multi = (cs.read32(f0, 0x0c)? >> 16) & 0x80 != 0;
            for func in 0..if multi { 8 } else { 1 } {
                let at = Bdf { bus, dev, func };
                let id = cs.read32(at, 0)?;
                if id & 0xffff == 0xffff {
                    continue;
                }
                let class = cs.read32(at, 0x08)?;
                let header = ((cs.read32(at, 0x0c)? >> 16) & 0x7f) as u8;
                let intr = cs.read32(at, 0x3c)?;
                let bars = match header {
                    0 => read_bars(cs, at, 6)?,
                    1 => {
                        let secondary = ((cs.read32(at, 0x18)? >> 8) & 0xff) as u8;
                        if secondary != 0 {
                            buses.push(secondary);
                        }
                        read_bars(cs, at, 2)?
                    }
                    _ => heapless::Vec::new(),
                };
                found.push(PciDevice {
                    at,
                    vendor: (id & 0xffff) as u16,
                    device: (id >> 16) as u16,
                    class: (class >> 24) as u8,
                    subclass: (class >> 16) as u8,
                    prog_if: (class >> 8) as u8,
                    bars,
                    irq_line: (intr & 0xff) as u8,
                    irq_pin: ((intr >> 8) & 0xff) as u8,
                });
            }
        }
    }
    found.sort_by_key(|d| d.at);
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A configuration space of functions with BAR size masks.
    #[derive(Default)]
    pub struct FakeConfig {
        pub regs: BTreeMap<(Bdf, u8), u32>,
        /// Per BAR register: the writable bits (zero for unimplemented).
        pub bar_masks: BTreeMap<(Bdf, u8), u32>,
    }

    impl FakeConfig {
        pub fn add(
            &mut self,
            at: Bdf,
            vendor: u16,
            device: u16,
            class: u32,
            header: u32,
            irq: u32,
        ) {
            self.regs
                .insert((at, 0), u32::from(vendor) | (u32::from(device) << 16));
            self.regs.insert((at, 0x08), class);
            self.regs.insert((at, 0x0c), header << 16);
            self.regs.insert((at, 0x3c), irq);
        }
        pub fn bar(&mut self, at: Bdf, index: u8, value: u32, writable: u32) {
            self.regs.insert((at, 0x10 + 4 * index), value);
            self.bar_masks.insert((at, 0x10 + 4 * index), writable);
        }
    }

    impl ConfigSpace for FakeConfig {
        fn read32(&mut self, at: Bdf, off: u8) -> Result<u32, BrokerError> {
            let present = self.regs.contains_key(&(Bdf { func: 0, ..at }, 0))
                && self.regs.contains_key(&(at, 0));
            Ok(if present {
                self.regs.get(&(at, off)).copied().unwrap_or(0)
            } else {
                0xffff_ffff
            })
        }
        fn write32(&mut self, at: Bdf, off: u8, v: u32) -> Result<(), BrokerError> {
            if let Some(&w) = self.bar_masks.get(&(at, off)) {
                let old = self.regs.get(&(at, off)).copied().unwrap_or(0);
                let ro = old & !w & 0xf; // type bits are read-only
                let keep = if v == 0xffff_ffff { w | ro } else { v };
                self.regs.insert((at, off), keep);
            }
            Ok(())
        }
    }

    #[test]
    fn finds_functions_bars_and_buses_behind_bridges() {
        let mut cs = FakeConfig::default();
        let host = Bdf {
            bus: 0,
            dev: 0,
            func: 0,
        };
        cs.add(host, 0x8086, 0x1237, 0x0600_0000, 0, 0);
        let net = Bdf {
            bus: 0,
            dev: 3,
            func: 0,
        };
        cs.add(net, 0x1af4, 0x1000, 0x0200_0000, 0, 0x0000_010b);
        cs.bar(net, 0, 0xc041, 0xffff_ffe1); // I/O, 32 ports
        cs.bar(net, 1, 0xfebf_1000, 0xffff_f000); // 4 KiB memory
        cs.bar(net, 4, 0xfe00_000c, 0xffff_c000); // 64-bit prefetchable, 16 KiB
        cs.bar(net, 5, 0x0000_0000, 0xffff_ffff);
        let bridge = Bdf {
            bus: 0,
            dev: 5,
            func: 0,
        };
        cs.add(bridge, 0x1b36, 0x0001, 0x0604_0000, 1, 0);
        cs.regs.insert((bridge, 0x18), 0x0001_0100);
        let behind = Bdf {
            bus: 1,
            dev: 0,
            func: 0,
        };
        cs.add(behind, 0x1af4, 0x1001, 0x0100_0000, 0, 0);

        let devs = enumerate(&mut cs).unwrap();
        let ids: Vec<_> = devs
            .iter()
            .map(|d| (d.at.bus, d.vendor, d.device))
            .collect();
        assert_eq!(
            ids,
            [
                (0, 0x8086, 0x1237),
                (0, 0x1af4, 0x1000),
                (0, 0x1b36, 0x0001),
                (1, 0x1af4, 0x1001)
            ]
        );
        let n = &devs[1];
        assert_eq!(
            (n.class, n.subclass, n.irq_line, n.irq_pin),
            (0x02, 0x00, 0x0b, 1)
        );
        assert_eq!(n.bars.len(), 3);
        assert_eq!(
            (n.bars[0].kind, n.bars[0].base, n.bars[0].size),
            (BarKind::Io, 0xc040, 32)
        );
        assert_eq!((n.bars[1].base, n.bars[1].size), (0xfebf_1000, 0x1000));
        assert_eq!(
            n.bars[2].kind,
            BarKind::Memory {
                prefetchable: true,
                is_64bit: true
            }
        );
        assert_eq!((n.bars[2].base, n.bars[2].size), (0xfe00_0000, 0x4000));
        // Sizing put every BAR back.
        assert_eq!(cs.regs[&(net, 0x14)], 0xfebf_1000);
    }

    #[test]
    fn config_address_layout() {
        assert_eq!(
            config_address(
                Bdf {
                    bus: 1,
                    dev: 2,
                    func: 3
                },
                0x3e
            ),
            0x8001_133c
        );
    }
}
