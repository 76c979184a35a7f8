//! Devices of a pc99 machine and what a holder gets for one.

mod claim;
pub(crate) use claim::DeviceResources;

use crate::dma::DmaRegion;
use crate::pci::{Bdf, PciDevice};
use kaal_sel4::cap::{IoPort, IrqHandler, Notification};
use kaal_sel4::Word;

/// How a holder names a device: the manifest's own type, so a component's
/// `devices` entry is passed to the broker as it is.
pub use kaal_manifest::DeviceSpec;

/// A device as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceInfo {
    Serial { port: u8, io_base: u16, irq: u8 },
    Pci(PciDevice),
    Pit,
}

/// The registry's own key for a device (a `DeviceSpec` may match several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKey {
    Serial(u8),
    Pci(Bdf),
    Pit,
}

impl DeviceKey {
    /// Whether the device's interrupt line is level triggered: a PCI
    /// function's INTx is, the ISA lines (COM ports, the PIT) are edge
    /// triggered. The broker programs the IOAPIC line so when it binds the
    /// interrupt; the root task tells the holder.
    pub fn irq_level_triggered(self) -> bool {
        matches!(self, DeviceKey::Pci(_))
    }
}

impl DeviceInfo {
    pub fn key(&self) -> DeviceKey {
        match self {
            DeviceInfo::Serial { port, .. } => DeviceKey::Serial(*port),
            DeviceInfo::Pci(p) => DeviceKey::Pci(p.at),
            DeviceInfo::Pit => DeviceKey::Pit,
        }
    }

    pub fn matches(&self, spec: DeviceSpec) -> bool {
        match (self, spec) {
            (DeviceInfo::Serial { port, .. }, DeviceSpec::Serial { port: p }) => *port == p,
            (DeviceInfo::Pci(d), DeviceSpec::Pci { vendor, device }) => {
                d.vendor == vendor && d.device == device
            }
            (DeviceInfo::Pci(d), DeviceSpec::PciClass { class, subclass }) => {
                d.class == class && d.subclass == subclass
            }
            (DeviceInfo::Pit, DeviceSpec::Pit) => true,
            _ => false,
        }
    }
}

/// The legacy COM ports: base port and ISA IRQ.
pub const COM_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];
/// Ports each COM port decodes.
pub const COM_PORT_SPAN: u16 = 8;

/// The PIT's ports: channels 0 to 2, then the mode/command register.
pub const PIT_PORTS: (u16, u16) = (0x40, 0x43);
/// The IOAPIC pin of the PIT's ISA IRQ 0: the MADT's interrupt source
/// override routes it to GSI 2 (QEMU's pc machine, like most PCs).
pub const PIT_IOAPIC_PIN: u8 = 2;

/// Who holds a device (the root task is holder 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holder(pub u32);

impl Holder {
    pub const ROOT: Holder = Holder(0);
}

/// A memory-mapped register region, mapped uncached for the holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRegion {
    pub vaddr: Word,
    pub paddr: Word,
    pub size: u64,
    /// The BAR it came from.
    pub bar: u8,
}

/// Where a device's interrupt is to be delivered: a notification of the
/// holder's and the badge the interrupt carries there (not 0: a waiter must
/// tell it from other signals and from "not signalled").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqDestination {
    pub notification: Notification,
    pub badge: Word,
}

/// An interrupt delivered to a notification: the holder's, when it named
/// one ([`crate::Broker::request_device_to`]), else one the broker made for
/// the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqBinding {
    pub handler: IrqHandler,
    pub notification: Notification,
    /// The badge `notification.wait()` returns for this interrupt.
    pub badge: Word,
    /// The IOAPIC pin (ISA IRQ or PCI interrupt line).
    pub line: u8,
}

/// A capability for a range of I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPortRange {
    pub cap: IoPort,
    pub first: u16,
    pub last: u16,
}

/// Everything a driver needs for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceBundle {
    pub key: DeviceKey,
    pub mmio: heapless::Vec<MmioRegion, 6>,
    pub irq: Option<IrqBinding>,
    pub ioports: heapless::Vec<IoPortRange, 6>,
    pub dma: Option<DmaRegion>,
    /// A PCI function's configuration space, read after the broker enabled
    /// decoding and bus mastering (the holder gets no access of its own).
    pub config: Option<[u32; 64]>,
}
