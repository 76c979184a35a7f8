//! A component's console: whole lines sent to the supervisor, which prints
//! each at once on the system console. (Printing byte by byte through the
//! kernel's debug console would interleave the lines of components that run
//! at the same time.)

use core::fmt;

use kaal_sel4::cap::{Cap, Endpoint};
use kaal_sel4::ipc::{mr, set_mr, MessageInfo};

use kaal_protocols::supervisor::{self, LINE_BYTES, LINE_WORDS};

use crate::start::slot;

/// Collects text and sends it a line (or a full buffer) at a time.
#[derive(Debug)]
pub struct LineWriter {
    buf: [u8; LINE_BYTES],
    len: usize,
}

impl Default for LineWriter {
    fn default() -> Self {
        LineWriter {
            buf: [0; LINE_BYTES],
            len: 0,
        }
    }
}

impl LineWriter {
    /// Sends what is buffered, if anything.
    pub fn flush(&mut self) {
        let text = self.buf.get(..self.len).unwrap_or(&[]);
        if text.is_empty() {
            return;
        }
        // A line may be printed between building a message in the IPC
        // buffer and sending it (a server's reply): the words this call and
        // its answer overwrite are put back.
        let mut kept = [0u64; LINE_WORDS];
        for (i, w) in kept.iter_mut().enumerate() {
            *w = mr(i);
        }
        let words = supervisor::encode_line(text, set_mr);
        let sup = Endpoint::from_cptr(slot::SUPERVISOR);
        let _ = sup.call(MessageInfo::new(supervisor::CONSOLE, words));
        for (i, &w) in kept.iter().enumerate() {
            set_mr(i, w);
        }
        self.len = 0;
    }

    fn push(&mut self, b: u8) {
        if self.len == LINE_BYTES {
            self.flush();
        }
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
        if b == b'\n' {
            self.flush();
        }
    }
}

impl fmt::Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.push(b);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut w = LineWriter::default();
    let _ = fmt::write(&mut w, args);
    w.flush();
}

/// Prints to the system console (from a component).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the system console (from a component).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
