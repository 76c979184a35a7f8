//! Console output through the kernel's debug console (`seL4_DebugPutChar`),
//! and the `print!`/`println!` macros. A kernel built without debug syscalls
//! prints nothing here; KaaL's serial driver provides the console there.

use core::fmt;

/// Writes to the kernel debug console.
#[derive(Debug, Default, Clone, Copy)]
pub struct DebugConsole;

impl DebugConsole {
    /// Writes raw bytes.
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: the debug syscall touches no user memory.
            unsafe { crate::sys::seL4_DebugPutChar(b) };
        }
    }
}

impl fmt::Write for DebugConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _ = fmt::write(&mut DebugConsole, args);
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
