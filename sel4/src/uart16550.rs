//! The 16550 UART's registers (offsets from its base port) and bits, from
//! the data sheet: shared by the root task's polled console on COM1 and the
//! interrupt-driven UART driver.

/// Receive buffer (read) and transmit holding register (write).
pub const RBR_THR: u16 = 0;
/// Interrupt enable.
pub const IER: u16 = 1;
/// FIFO control (write) and interrupt identification (read).
pub const FCR_IIR: u16 = 2;
/// Line control.
pub const LCR: u16 = 3;
/// Modem control.
pub const MCR: u16 = 4;
/// Line status.
pub const LSR: u16 = 5;
/// Modem status.
pub const MSR: u16 = 6;
/// Divisor latch, low and high byte (while `LCR_DLAB` is set).
pub const DLL: u16 = 0;
pub const DLM: u16 = 1;

pub const LCR_8N1: u8 = 0x03;
pub const LCR_DLAB: u8 = 0x80;
/// 115200 baud from the 1.8432 MHz clock.
pub const DIVISOR: u16 = 1;
pub const IER_RX: u8 = 0x01;
pub const IER_TX: u8 = 0x02;
pub const LSR_DATA: u8 = 0x01;
pub const LSR_OVERRUN: u8 = 0x02;
pub const LSR_THR_EMPTY: u8 = 0x20;
/// DTR and OUT2 (which gates the interrupt on a PC).
pub const MCR_DTR_OUT2: u8 = 0x09;
/// Request to send: the receiver can take input.
pub const MCR_RTS: u8 = 0x02;
