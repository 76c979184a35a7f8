//! The root task's console, COM1, and the `print!`/`println!` macros.
//!
//! One back end on every kernel: the 16550 UART at I/O port 0x3f8, written
//! byte by byte (polling its transmitter) through the root task's I/O port
//! capability. Not `seL4_DebugPutChar` on the debug kernel: KaaL's default
//! kernel has no debug system calls, the debug kernel's own messages go to
//! the same port anyway, and a second back end would be a path the default
//! build and its tests never run.
//!
//! The capability is the all-ports one seL4 gives the root task
//! ([`init::IO_PORT`]): the root task holds it anyway (the broker mints every
//! device's ports from it, and the exit port is written through it), and it
//! needs no slot, so the first line of the boot summary prints before the
//! broker owns the free slots. It stays valid while the broker grants COM1's
//! ports to the UART driver (a minted copy): the root task prints here again
//! whenever the driver is not running or its ring is full.
//!
//! The root task's start-up turns the console on ([`enable`]); until then,
//! and in any other program, it prints nothing: a component's slot of that
//! number holds some other capability, or none. Components print through
//! their supervisor (`kaal_rt::println!`).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::cap::{init, IoPort};
use crate::uart16550::{
    DIVISOR, DLL, DLM, IER, LCR, LCR_8N1, LCR_DLAB, LSR, LSR_THR_EMPTY, MCR, MCR_DTR_OUT2, MCR_RTS,
    MSR, RBR_THR,
};

/// COM1's I/O ports.
const COM1: u16 = 0x3f8;
/// Whether [`enable`] has set COM1 up in this program.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Sets COM1 up and turns the console on. For the root task alone, whose slot
/// [`init::IO_PORT`] holds the all-ports capability (`kaal_rt` calls it
/// first thing).
pub fn enable() {
    if setup(init::IO_PORT).is_ok() {
        ENABLED.store(true, Ordering::Relaxed);
        // The firmware leaves its cursor mid-line.
        Console.write_bytes(b"\n");
    }
}

/// The console: COM1, written through the root task's I/O port capability.
#[derive(Debug, Default, Clone, Copy)]
pub struct Console;

impl Console {
    /// Writes raw bytes; each `\n` goes out as `\r\n`. Prints nothing before
    /// [`enable`], and stops at the first byte the port does not take.
    pub fn write_bytes(&self, bytes: &[u8]) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let port = init::IO_PORT;
        for &b in bytes {
            let sent = if b == b'\n' {
                put(port, b'\r').and_then(|()| put(port, b'\n'))
            } else {
                put(port, b)
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// 115200 baud, 8N1, interrupts off: what a debug kernel's `serial_init`
/// does, so the UART driver finds it in the same state on either kernel.
fn setup(port: IoPort) -> crate::Result<()> {
    port.out8(COM1 + IER, 0)?;
    port.out8(COM1 + LCR, LCR_DLAB)?;
    let [low, high] = DIVISOR.to_le_bytes();
    port.out8(COM1 + DLL, low)?;
    port.out8(COM1 + DLM, high)?;
    port.out8(COM1 + LCR, LCR_8N1)?;
    port.out8(COM1 + MCR, MCR_DTR_OUT2 | MCR_RTS)?;
    // Clear stale receive, line and modem status.
    port.in8(COM1 + RBR_THR)?;
    port.in8(COM1 + LSR)?;
    port.in8(COM1 + MSR)?;
    Ok(())
}

/// Waits until the transmitter takes a byte, then hands it `b`.
fn put(port: IoPort, b: u8) -> crate::Result<()> {
    while port.in8(COM1 + LSR)? & LSR_THR_EMPTY == 0 {}
    port.out8(COM1 + RBR_THR, b)
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _ = fmt::write(&mut Console, args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
