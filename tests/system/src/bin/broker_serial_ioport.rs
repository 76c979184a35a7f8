//! System test `broker_serial_ioport`: the root task claims COM1 through the
//! broker and writes a line through the bundle's I/O port capability (not
//! the root task's console, which uses the all-ports one); the capability
//! covers COM1's ports only.
#![no_std]
#![no_main]

use kaal_broker::device::{DeviceSpec, Holder};
use kaal_root::{Context, RootError};
use kaal_sel4::bootinfo::BootInfo;

const LINE: &[u8] =
    b"broker_serial_ioport: this line went through the COM1 I/O port capability\r\n";

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let com1 = broker.request_device(Holder::ROOT, DeviceSpec::Serial { port: 0 })?;
    let ports = *com1
        .ioports
        .first()
        .ok_or(RootError::Check("COM1 bundle has no I/O ports"))?;
    if (ports.first, ports.last) != (0x3f8, 0x3ff) {
        return Err(RootError::Check("COM1 port range"));
    }
    for &byte in LINE {
        // Wait for the transmit holding register to empty (LSR bit 5).
        while ports.cap.in8(ports.first + 5).context("in8 LSR")? & 0x20 == 0 {}
        ports.cap.out8(ports.first, byte).context("out8 THR")?;
    }
    // The capability is confined to COM1: COM2's data port is refused.
    if ports.cap.out8(0x2f8, b'!').is_ok() {
        return Err(RootError::Check("COM1's port capability reached COM2"));
    }
    kaal_sel4::println!("broker_serial_ioport: COM2 refused through the COM1 capability");
    Ok(())
}

kaal_rt::root_task!(main);
