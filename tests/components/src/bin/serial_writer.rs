//! Writes a line through the COM port its manifest grants (`serial:0`),
//! polling the line status register, and checks that the port's interrupt
//! was granted too. Ports outside its range are refused by the kernel.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

/// Line status register offset and its "transmit holding register empty" bit.
const LSR: u16 = 5;
const THRE: u8 = 0x20;

fn main(env: &Env) -> Result<(), &'static str> {
    let (ports, first, last) = env.io_ports("serial:0").map_err(|_| "no serial:0 ports")?;
    env.irq("serial:0").map_err(|_| "no serial:0 interrupt")?;
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
    if ports.in8(0x2f8).is_ok() {
        return Err("a port outside the granted range was readable");
    }
    println!("serial_writer: COM2's ports are refused");
    Ok(())
}

kaal_rt::component!(main);
