//! Writes a line through the COM port its manifest grants (`serial:0`),
//! polling the line status register; then has the UART raise its
//! transmitter-empty interrupt and receives it on its own notification with
//! the interrupt's badge bit (granted as edge triggered). Ports outside its
//! range are refused.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

/// Line status register offset and its "transmit holding register empty" bit.
const LSR: u16 = 5;
const THRE: u8 = 0x20;

fn main(env: &Env) -> Result<(), &'static str> {
    let (ports, first, last) = env.io_ports("port").map_err(|_| "no `port` ports")?;
    let kaal_rt::IrqGrant {
        handler: irq,
        bit,
        level_triggered,
    } = env.irq("port").map_err(|_| "no `port` interrupt")?;
    if level_triggered {
        return Err("an ISA interrupt was granted as level triggered");
    }
    if (first, last) != (0x3f8, 0x3ff) {
        return Err("unexpected port range");
    }
    for &b in b"serial_writer: written through the granted COM1 ports\r\n" {
        let mut spins = 0u32;
        while ports.in8(first + LSR).map_err(|_| "LSR read refused")? & THRE == 0 {
            spins += 1;
            if spins > 1_000_000 {
                return Err("the UART never became ready");
            }
        }
        ports.out8(first, b).map_err(|_| "write refused")?;
    }
    // Interrupt on an empty transmitter (IER bit 1), routed out of the UART
    // by OUT2 (MCR bit 3); it is empty now, so the interrupt comes at once.
    let mcr = ports.in8(first + 4).map_err(|_| "MCR read refused")?;
    ports
        .out8(first + 4, mcr | 0x08)
        .map_err(|_| "MCR write refused")?;
    ports
        .out8(first + 1, 0x02)
        .map_err(|_| "IER write refused")?;
    let badge = env.notification().wait();
    ports.out8(first + 1, 0).map_err(|_| "IER write refused")?;
    let _ = ports.in8(first + 2); // reading IIR clears the THRE interrupt
    irq.ack().map_err(|_| "IRQ ack refused")?;
    if badge & bit == 0 {
        println!("serial_writer: woke with badge {badge:#x}, interrupt bit is {bit:#x}");
        return Err("woken without the interrupt's bit");
    }
    println!("serial_writer: COM1 interrupt arrived with bit {bit:#x}");
    if ports.in8(0x2f8).is_ok() {
        return Err("a port outside the granted range was readable");
    }
    println!("serial_writer: COM2's ports are refused");
    Ok(())
}

kaal_rt::component!(main);
