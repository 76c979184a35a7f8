//! System test `broker_pci_enumeration`: the PCI list holds the devices QEMU
//! was started with (a virtio-net-pci, vendor 0x1af4), and the device's
//! bundle maps its registers: the virtio common configuration reads back.
#![no_std]
#![no_main]

use kaal_broker::device::{DeviceInfo, DeviceSpec, Holder};
use kaal_broker::pci::BarKind;
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

const VIRTIO: u16 = 0x1af4;
const VIRTIO_NET_TRANSITIONAL: u16 = 0x1000;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut net = None;
    for d in broker.devices() {
        if let DeviceInfo::Pci(p) = d {
            println!(
                "pci {:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}.{:02x} irq {} bars {}",
                p.at.bus,
                p.at.dev,
                p.at.func,
                p.vendor,
                p.device,
                p.class,
                p.subclass,
                p.irq_line,
                p.bars.len()
            );
            if p.vendor == VIRTIO && p.device == VIRTIO_NET_TRANSITIONAL {
                net = Some(p.clone());
            }
        }
    }
    let net = net.ok_or(RootError::Check("no virtio-net-pci in the PCI list"))?;
    if net.class != 0x02 || net.bars.iter().all(|b| b.kind == BarKind::Io) {
        return Err(RootError::Check(
            "virtio-net is not a network controller with MMIO",
        ));
    }
    let id = DeviceSpec::Pci {
        vendor: VIRTIO,
        device: VIRTIO_NET_TRANSITIONAL,
    };
    let bundle = broker.request_device(Holder::ROOT, id)?;
    // QEMU puts the modern virtio registers in the 64-bit BAR: the common
    // configuration first, whose `num_queues` (offset 0x12) is at least 2.
    let bar = net
        .bars
        .iter()
        .find(|b| matches!(b.kind, BarKind::Memory { is_64bit: true, .. }))
        .ok_or(RootError::Check("no 64-bit memory BAR"))?;
    let regs = bundle
        .mmio
        .iter()
        .find(|m| m.bar == bar.index)
        .ok_or(RootError::Check("BAR not mapped"))?;
    // SAFETY: the broker mapped this BAR uncached for this task; a 16-bit
    // read of the virtio common configuration has no side effect.
    let queues = unsafe { ((regs.vaddr + 0x12) as *const u16).read_volatile() };
    println!(
        "broker_pci_enumeration: virtio-net BAR{} at {:#x} mapped at {:#x}: {queues} queues",
        bar.index, regs.paddr, regs.vaddr
    );
    if queues < 2 {
        return Err(RootError::Check("virtio common configuration not readable"));
    }
    if bundle.irq.is_none() || bundle.dma.is_none() {
        return Err(RootError::Check(
            "virtio-net bundle lacks an IRQ or DMA region",
        ));
    }
    println!("broker_pci_enumeration: ok");
    Ok(())
}

kaal_rt::root_task!(main);
