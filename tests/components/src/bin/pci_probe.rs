//! Checks what a PCI device grant gives a component (QEMU's virtio-net):
//! its registers mapped uncached (the virtio common configuration reads
//! back), its I/O ports, its interrupt (level triggered), and a DMA buffer
//! whose bus address the kernel confirmed.
#![no_std]
#![no_main]

use kaal_rt::{println, Env};

const NET: &str = "nic";
/// The BAR QEMU gives virtio-net's modern registers.
const MODERN_BAR: u8 = 4;

fn main(env: &Env) -> Result<(), &'static str> {
    let regs = env
        .registers(NET, MODERN_BAR)
        .map_err(|_| "no register BAR")?;
    if regs.len() < 0x1000 {
        return Err("register region too small");
    }
    // The common configuration's `num_queues` (offset 0x12): no side effect.
    let queues: u16 = regs.read(0x12).map_err(|_| "register read refused")?;
    // Beyond the region, or misaligned: refused, not performed.
    if regs.read::<u32>(regs.len()).is_ok() || regs.read::<u32>(0x12).is_ok() {
        return Err("a register access outside the rules was performed");
    }
    let (ports, first, last) = env.io_ports(NET).map_err(|_| "no I/O BAR")?;
    // The legacy header's host features (offset 0) through the port capability.
    let features = ports.in32(first).map_err(|_| "I/O port read refused")?;
    if !env.irq(NET).map_err(|_| "no interrupt")?.level_triggered {
        return Err("a PCI interrupt was granted as edge triggered");
    }
    let (dma, dma_size, bus) = env.dma(NET).map_err(|_| "no DMA buffer")?;
    // SAFETY: the DMA buffer is mapped read-write for this component alone
    // (the device is idle: nothing was handed to it).
    let buf = unsafe { core::slice::from_raw_parts_mut(dma as *mut u64, (dma_size / 8) as usize) };
    for (i, w) in buf.iter_mut().enumerate() {
        *w = i as u64 ^ bus;
    }
    if buf.iter().enumerate().any(|(i, w)| *w != i as u64 ^ bus) {
        return Err("DMA buffer did not keep what was written");
    }
    println!(
        "pci_probe: virtio-net {queues} queues; ports {first:#x}..={last:#x}, features {features:#x}; \
         DMA {dma_size} bytes at bus {bus:#x}"
    );
    if queues < 2 || bus == 0 || bus % 4096 != 0 {
        return Err("device grant incomplete");
    }
    Ok(())
}

kaal_rt::component!(main);
