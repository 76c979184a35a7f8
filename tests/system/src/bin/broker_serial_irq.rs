//! System test `broker_serial_irq`: bytes the harness types into QEMU's
//! serial port raise IRQ 4, delivered through the bundle's notification;
//! the handler reads exactly those bytes.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use kaal_broker::device::{DeviceSpec, Holder};
use kaal_root::{Context, RootError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

/// What `tests.toml` has the harness send (keep the two in step).
const EXPECTED: &[u8] = b"KaaL reads this through IRQ 4\n";

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let com1 = broker.request_device(Holder::ROOT, DeviceSpec::Serial { port: 0 })?;
    let ports = *com1
        .ioports
        .first()
        .ok_or(RootError::Check("COM1 bundle has no I/O ports"))?;
    let irq = com1.irq.ok_or(RootError::Check("COM1 bundle has no IRQ"))?;
    let base = ports.first;
    let io = ports.cap;
    io.out8(base + 2, 0x07).context("FCR")?; // FIFO on and cleared, interrupt at 1 byte
    io.out8(base + 4, 0x0b).context("MCR")?; // DTR, RTS, OUT2 (gates the IRQ on a PC)
    io.out8(base + 1, 0x01).context("IER")?; // interrupt when data arrives
    while io.in8(base + 5).context("LSR")? & 1 != 0 {
        io.in8(base).context("RBR")?; // drop anything stale
    }
    irq.handler.ack().context("IRQHandler_Ack")?;
    println!("broker_serial_irq: ready");

    let mut got = Vec::new();
    let mut interrupts = 0u32;
    while got.len() < EXPECTED.len() {
        if irq.notification.wait() & irq.badge == 0 {
            return Err(RootError::Check("woken without the IRQ's badge"));
        }
        interrupts += 1;
        while io.in8(base + 5).context("LSR")? & 1 != 0 {
            got.push(io.in8(base).context("RBR")?);
        }
        irq.handler.ack().context("IRQHandler_Ack")?;
    }
    let text = core::str::from_utf8(&got).unwrap_or("<not UTF-8>");
    println!(
        "broker_serial_irq: {} bytes in {interrupts} interrupts: {:?}",
        got.len(),
        text.trim_end()
    );
    if got != EXPECTED {
        return Err(RootError::Check("received bytes differ from those sent"));
    }
    println!("broker_serial_irq: ok");
    Ok(())
}

kaal_rt::root_task!(main);
