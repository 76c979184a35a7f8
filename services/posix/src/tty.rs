//! The console's terminal: Linux's `N_TTY` line discipline
//! (`drivers/tty/n_tty.c`) and the terminal ioctls, as a state machine the
//! process server's event loop drives. Nothing here blocks:
//!
//! ```text
//!  UART bytes --input()--> [line discipline] --read()--> process
//!                                | echo
//!                                v
//!  process ----write()---> [output queue] --pending_output()--> UART
//!                                            consume_output(n)
//! ```
//!
//! Each call returns [`Effects`]: a signal for the foreground process group
//! (the tty knows the group's number, the server knows its members), and
//! which parked callers may retry. A read that would sleep on Linux returns
//! a [`ReadBlock`] saying what it waits for; the server parks the caller and
//! calls `read` again when `Effects::readable` says so (or a deadline it
//! armed for `VTIME` passes, then [`Tty::read_expired`]).
//!
//! What follows Linux, and where it differs:
//! - Input: `ISTRIP`, `IUCLC`, `IGNCR`/`ICRNL`/`INLCR`, `IXON`/`IXANY`
//!   (`VSTOP` holds the output queue), `ISIG` (`VINTR`, `VQUIT`, `VSUSP`;
//!   the input and pending output are flushed unless `NOFLSH`), canonical
//!   editing with `VERASE`, `VKILL`, `VWERASE`, `VLNEXT`, `VREPRINT`, `VEOF`,
//!   `VEOL`, `VEOL2`, and echo with `ECHO`, `ECHOE`, `ECHOK`, `ECHOKE`,
//!   `ECHONL`, `ECHOCTL`, `ECHOPRT`, `IUTF8` (whole characters erased).
//! - Output: `OPOST` with `ONLCR`, `OCRNL`, `ONOCR`, `ONLRET`, `OLCUC` and
//!   `XTABS`, with Linux's column bookkeeping (tabs are erased by the right
//!   number of backspaces).
//! - Differences: a `c_cc` value of 0 is always disabled (Linux treats a
//!   typed NUL as `VEOL` when `VEOL` is 0); control characters are ASCII
//!   (Linux's ctype also counts 0x80-0x9f, which mangles UTF-8 echo under
//!   `ECHOCTL`); in canonical mode 0x08 erases like `VERASE` by default (for
//!   serial terminals that send ^H; [`Tty::set_backspace_erases`] turns it
//!   off); a full canonical buffer drops ordinary bytes but always takes a
//!   line end (Linux overwrites the last byte); parity, break and `PARMRK`
//!   are not modelled (the UART hands over plain bytes).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use linux_raw_sys::errno;
use linux_raw_sys::general as g;
use linux_raw_sys::ioctl as io;

/// Control characters in the kernel's `struct termios` (`NCCS`).
pub const NCCS: usize = g::NCCS as usize;
/// Size of the kernel's `struct termios` that `TCGETS`/`TCSETS` copy
/// (glibc's user-space struct is larger; the ioctl uses this one).
pub const TERMIOS_SIZE: usize = 16 + 1 + NCCS;
/// Size of `struct termios2` (`TCGETS2`): the same plus input and output
/// speeds, which newer C libraries use.
pub const TERMIOS2_SIZE: usize = TERMIOS_SIZE + 8;
/// Size of `struct winsize`.
pub const WINSIZE_SIZE: usize = 8;
/// Input bytes held (Linux's `N_TTY_BUF_SIZE`).
pub const INPUT_CAPACITY: usize = 4096;
/// Output bytes queued before `write` blocks (the serial core's transmit
/// buffer, one page).
pub const OUTPUT_CAPACITY: usize = 4096;
/// `poll` reports `POLLOUT` while fewer output bytes wait (Linux's
/// `WAKEUP_CHARS`).
pub const WAKEUP_CHARS: usize = 256;

const fn ctrl(c: u8) -> u8 {
    c & 0x1f
}

/// The kernel's x86_64 `struct termios`: what `TCGETS` and `TCSETS` copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Default for Termios {
    /// Linux's `tty_std_termios` with `INIT_C_CC`.
    fn default() -> Self {
        let mut cc = [0u8; NCCS];
        let set = [
            (g::VINTR, ctrl(b'C')),
            (g::VQUIT, ctrl(b'\\')),
            (g::VERASE, 0x7f),
            (g::VKILL, ctrl(b'U')),
            (g::VEOF, ctrl(b'D')),
            (g::VTIME, 0),
            (g::VMIN, 1),
            (g::VSTART, ctrl(b'Q')),
            (g::VSTOP, ctrl(b'S')),
            (g::VSUSP, ctrl(b'Z')),
            (g::VREPRINT, ctrl(b'R')),
            (g::VDISCARD, ctrl(b'O')),
            (g::VWERASE, ctrl(b'W')),
            (g::VLNEXT, ctrl(b'V')),
        ];
        for (index, value) in set {
            if let Some(slot) = cc.get_mut(index as usize) {
                *slot = value;
            }
        }
        Termios {
            iflag: g::ICRNL | g::IXON,
            oflag: g::OPOST | g::ONLCR,
            cflag: g::B38400 | g::CS8 | g::CREAD | g::HUPCL,
            lflag: g::ISIG
                | g::ICANON
                | g::ECHO
                | g::ECHOE
                | g::ECHOK
                | g::ECHOCTL
                | g::ECHOKE
                | g::IEXTEN,
            line: 0,
            cc,
        }
    }
}

impl Termios {
    /// The 36 bytes `TCGETS` copies out (little-endian x86_64 layout).
    pub fn to_bytes(&self) -> [u8; TERMIOS_SIZE] {
        let mut out = [0u8; TERMIOS_SIZE];
        let words = [self.iflag, self.oflag, self.cflag, self.lflag];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        if let Some(line) = out.get_mut(16) {
            *line = self.line;
        }
        if let Some(cc) = out.get_mut(17..) {
            cc.copy_from_slice(&self.cc);
        }
        out
    }

    /// Parses what `TCSETS` copies in; `None` when shorter than 36 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(bytes.get(17..TERMIOS_SIZE)?);
        Some(Termios {
            iflag: word(0)?,
            oflag: word(4)?,
            cflag: word(8)?,
            lflag: word(12)?,
            line: *bytes.get(16)?,
            cc,
        })
    }

    /// The control character at `index` (a `V*` constant); 0 is disabled.
    pub fn cc(&self, index: u32) -> u8 {
        self.cc.get(index as usize).copied().unwrap_or(0)
    }

    fn i(&self, flag: u32) -> bool {
        self.iflag & flag != 0
    }
    fn o(&self, flag: u32) -> bool {
        self.oflag & flag != 0
    }
    fn l(&self, flag: u32) -> bool {
        self.lflag & flag != 0
    }
    /// `c` is the enabled control character `index`.
    fn is(&self, c: u8, index: u32) -> bool {
        c != 0 && self.cc(index) == c
    }
}

/// `struct winsize` (`TIOCGWINSZ`/`TIOCSWINSZ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl Default for Winsize {
    /// 24 x 80: a serial console reports no size of its own.
    fn default() -> Self {
        Winsize {
            rows: 24,
            cols: 80,
            xpixel: 0,
            ypixel: 0,
        }
    }
}

impl Winsize {
    /// The 8 bytes `TIOCGWINSZ` copies out.
    pub fn to_bytes(&self) -> [u8; WINSIZE_SIZE] {
        let mut out = [0u8; WINSIZE_SIZE];
        let fields = [self.rows, self.cols, self.xpixel, self.ypixel];
        for (chunk, field) in out.chunks_exact_mut(2).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// Parses what `TIOCSWINSZ` copies in; `None` when shorter than 8 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let field = |at: usize| -> Option<u16> {
            Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
        };
        Some(Winsize {
            rows: field(0)?,
            cols: field(2)?,
            xpixel: field(4)?,
            ypixel: field(6)?,
        })
    }
}

/// A signal the tty raises for its foreground process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `VINTR` typed: `SIGINT`.
    Interrupt,
    /// `VQUIT` typed: `SIGQUIT`.
    Quit,
    /// `VSUSP` typed: `SIGTSTP`.
    Suspend,
    /// The window size changed (`TIOCSWINSZ`): `SIGWINCH`.
    WindowChange,
}

impl Signal {
    /// The Linux signal number.
    pub fn number(self) -> u32 {
        match self {
            Signal::Interrupt => g::SIGINT,
            Signal::Quit => g::SIGQUIT,
            Signal::Suspend => g::SIGTSTP,
            Signal::WindowChange => g::SIGWINCH,
        }
    }
}

/// What an operation changed, for the server to act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// Send this signal to the foreground process group, if there is one.
    pub signal: Option<Signal>,
    /// Parked readers and pollers for input may retry (a line completed, a
    /// byte arrived in non-canonical mode, or the mode changed).
    pub readable: bool,
    /// New bytes wait in [`Tty::pending_output`]: drain them to the UART.
    pub output: bool,
    /// Parked writers and pollers for output may retry (room in the output
    /// queue, or output restarted).
    pub writable: bool,
    /// The output queue is empty: callers parked in `TCSETSW`, `TCSETSF` or
    /// `TCSBRK` (`tcdrain`) may retry.
    pub drained: bool,
}

/// Why a read did not complete yet: park the caller until
/// [`Effects::readable`] (or the deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBlock {
    /// Wait for input; no timer runs.
    Input,
    /// Wait for input, but arm a deadline `deciseconds` tenths of a second
    /// from now (re-armed each time `read` says so, which gives `VTIME`'s
    /// inter-byte timer) and call [`Tty::read_expired`] when it passes.
    InputOrTimeout { deciseconds: u8 },
}

/// Why a tty operation failed or must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyError {
    /// Fail the call with this Linux errno.
    Errno(u32),
    /// Job control: send this signal (`SIGTTIN` or `SIGTTOU`) to the
    /// caller's process group and restart the call when it continues
    /// (Linux's `-ERESTARTSYS`).
    Stop(u32),
    /// Park the caller until [`Effects::drained`], then repeat the call.
    WaitDrain,
}

/// A write found the output queue full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldBlock;

/// Whose controlling terminal a caller has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controlling {
    None,
    /// This tty.
    This,
    /// Another terminal.
    Other,
}

/// What the tty needs to know about the calling process for job control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub pid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub controlling: Controlling,
    /// `SIGTTIN` is blocked or ignored by the caller.
    pub sigttin_ignored: bool,
    /// `SIGTTOU` is blocked or ignored by the caller.
    pub sigttou_ignored: bool,
    /// The caller's process group is orphaned (no parent in the session
    /// outside the group): stopping it is refused with `EIO`.
    pub orphaned: bool,
    /// `CAP_SYS_ADMIN` (may steal the tty with `TIOCSCTTY` 1).
    pub privileged: bool,
}

/// A change of controlling terminal the server records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CttyChange {
    /// The caller (a session leader) now has this tty as controlling
    /// terminal; the session it had before, if stolen, lost it.
    Acquired { stolen_from: Option<i32> },
    /// The caller gave it up (`TIOCNOTTY`). When it was the session leader
    /// the whole session lost it and the former foreground group must get
    /// `SIGHUP` then `SIGCONT`.
    Released { hangup_group: Option<i32> },
}

/// A terminal ioctl the tty serves (anything else is `ENOTTY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ioctl {
    /// `TCGETS`, or `TCGETS2` when `speeds`.
    GetTermios { speeds: bool },
    /// `TCSETS` (now), `TCSETSW` (after output drains), `TCSETSF` (flush
    /// input, then as `TCSETSW`); the `TCSETS*2` forms when `speeds`.
    SetTermios {
        drain: bool,
        flush: bool,
        speeds: bool,
    },
    /// `TIOCGWINSZ`.
    GetWinsize,
    /// `TIOCSWINSZ`.
    SetWinsize,
    /// `TIOCGPGRP`.
    GetPgrp,
    /// `TIOCSPGRP`.
    SetPgrp,
    /// `TIOCGSID`.
    GetSid,
    /// `FIONREAD` (`TIOCINQ`).
    InputQueued,
    /// `TIOCOUTQ`.
    OutputQueued,
    /// `TCFLSH` (argument by value: `TCIFLUSH`, `TCOFLUSH`, `TCIOFLUSH`).
    Flush,
    /// `TCXONC` (argument by value: `TCOOFF`, `TCOON`, `TCIOFF`, `TCION`).
    FlowControl,
    /// `TCSBRK` (`tcdrain` passes 1; 0 would send a break, which a
    /// byte-stream console cannot, so both only drain).
    Drain,
    /// `TIOCSCTTY` (argument by value: 1 steals when privileged).
    SetControlling,
    /// `TIOCNOTTY`.
    NoControlling,
}

impl Ioctl {
    /// Decodes an ioctl request number; `Err(ENOTTY)` for anything the
    /// tty does not serve (generic ones such as `FIONBIO` and `FIOCLEX`
    /// belong to the descriptor layer, before this).
    pub fn decode(request: u32) -> Result<Ioctl, u32> {
        Ok(match request {
            io::TCGETS => Ioctl::GetTermios { speeds: false },
            io::TCGETS2 => Ioctl::GetTermios { speeds: true },
            io::TCSETS => Ioctl::set_termios(false, false, false),
            io::TCSETSW => Ioctl::set_termios(true, false, false),
            io::TCSETSF => Ioctl::set_termios(true, true, false),
            io::TCSETS2 => Ioctl::set_termios(false, false, true),
            io::TCSETSW2 => Ioctl::set_termios(true, false, true),
            io::TCSETSF2 => Ioctl::set_termios(true, true, true),
            io::TIOCGWINSZ => Ioctl::GetWinsize,
            io::TIOCSWINSZ => Ioctl::SetWinsize,
            io::TIOCGPGRP => Ioctl::GetPgrp,
            io::TIOCSPGRP => Ioctl::SetPgrp,
            io::TIOCGSID => Ioctl::GetSid,
            io::FIONREAD => Ioctl::InputQueued,
            io::TIOCOUTQ => Ioctl::OutputQueued,
            io::TCFLSH => Ioctl::Flush,
            io::TCXONC => Ioctl::FlowControl,
            io::TCSBRK => Ioctl::Drain,
            io::TIOCSCTTY => Ioctl::SetControlling,
            io::TIOCNOTTY => Ioctl::NoControlling,
            _ => return Err(errno::ENOTTY),
        })
    }

    fn set_termios(drain: bool, flush: bool, speeds: bool) -> Ioctl {
        Ioctl::SetTermios {
            drain,
            flush,
            speeds,
        }
    }

    /// Bytes the server copies in from the argument pointer before
    /// [`Tty::ioctl`] (0: the argument is a value or unused).
    pub fn copy_in_len(self) -> usize {
        match self {
            Ioctl::SetTermios { speeds: false, .. } => TERMIOS_SIZE,
            Ioctl::SetTermios { speeds: true, .. } => TERMIOS2_SIZE,
            Ioctl::SetWinsize => WINSIZE_SIZE,
            Ioctl::SetPgrp => 4,
            _ => 0,
        }
    }
}

/// A completed ioctl.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoctlDone {
    /// Bytes to write to the argument pointer (empty: none); `EFAULT` if
    /// that fails. The call returns 0.
    pub copy_out: Vec<u8>,
    pub effects: Effects,
    /// A controlling-terminal change for the server's process records.
    pub ctty: Option<CttyChange>,
}

impl IoctlDone {
    fn out(bytes: &[u8]) -> Self {
        IoctlDone {
            copy_out: bytes.to_vec(),
            ..Default::default()
        }
    }
    fn effects(effects: Effects) -> Self {
        IoctlDone {
            effects,
            ..Default::default()
        }
    }
}

/// One input byte: canonical lines end with a delivered byte or with an
/// end-of-file mark that reads as nothing (Linux keeps a flag bit per
/// byte and a NUL for the mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Byte(u8),
    End(u8),
    Eof,
}

impl Slot {
    fn byte(self) -> u8 {
        match self {
            Slot::Byte(b) | Slot::End(b) => b,
            Slot::Eof => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

/// ASCII control characters (see the module note on Linux's ctype).
fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// A terminal: its modes, input line discipline, output queue and job
/// control state.
#[derive(Debug, Clone)]
pub struct Tty {
    termios: Termios,
    winsize: Winsize,
    input: VecDeque<Slot>,
    /// Leading slots that form complete lines (canonical mode).
    canon_len: usize,
    output: Vec<u8>,
    column: usize,
    /// Column where the current input line's echo began, for erasing tabs.
    canon_column: usize,
    /// Inside an `ECHOPRT` `\...` erase sequence.
    erasing: bool,
    /// The next byte is literal (`VLNEXT`).
    lnext: bool,
    /// Output held by `VSTOP` or `TCOOFF`.
    stopped: bool,
    backspace_erases: bool,
    /// Input and output speeds `TCGETS2` reports.
    speeds: (u32, u32),
    session: Option<i32>,
    foreground: Option<i32>,
}

impl Default for Tty {
    fn default() -> Self {
        Self::new()
    }
}

impl Tty {
    /// A terminal in Linux's default modes, 24 x 80, no session.
    pub fn new() -> Self {
        Tty {
            termios: Termios::default(),
            winsize: Winsize::default(),
            input: VecDeque::new(),
            canon_len: 0,
            output: Vec::new(),
            column: 0,
            canon_column: 0,
            erasing: false,
            lnext: false,
            stopped: false,
            backspace_erases: true,
            speeds: (38400, 38400),
            session: None,
            foreground: None,
        }
    }

    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    pub fn winsize(&self) -> Winsize {
        self.winsize
    }

    /// Whether 0x08 also erases in canonical mode (default: yes).
    pub fn set_backspace_erases(&mut self, on: bool) {
        self.backspace_erases = on;
    }

    // ----- job control -----

    /// The session this tty controls, if any.
    pub fn session(&self) -> Option<i32> {
        self.session
    }

    /// The foreground process group, if any.
    pub fn foreground(&self) -> Option<i32> {
        self.foreground
    }

    /// Makes this the controlling terminal of session `sid` with `pgrp` in
    /// the foreground (a session leader opening it without `O_NOCTTY`).
    pub fn attach(&mut self, sid: i32, pgrp: i32) {
        self.session = Some(sid);
        self.foreground = Some(pgrp);
    }

    /// The session leader exited or gave up the tty: forget the session.
    /// Returns the foreground group that must get `SIGHUP` then `SIGCONT`.
    pub fn detach(&mut self) -> Option<i32> {
        self.session = None;
        self.foreground.take()
    }

    /// Linux's `__tty_check_change`: may `caller` change this tty or write
    /// to it (`sig` = `SIGTTOU`) or read from it (`sig` = `SIGTTIN`)?
    /// A background member of the tty's session is stopped, or gets `EIO`
    /// when the signal is ignored (for reads) or its group is orphaned.
    fn check(&self, caller: &Caller, sig: u32) -> Result<(), TtyError> {
        if caller.controlling != Controlling::This {
            return Ok(());
        }
        match self.foreground {
            Some(fg) if fg != caller.pgrp => {}
            _ => return Ok(()),
        }
        let ignored = if sig == g::SIGTTIN {
            caller.sigttin_ignored
        } else {
            caller.sigttou_ignored
        };
        if ignored {
            if sig == g::SIGTTIN {
                Err(TtyError::Errno(errno::EIO))
            } else {
                Ok(())
            }
        } else if caller.orphaned {
            Err(TtyError::Errno(errno::EIO))
        } else {
            Err(TtyError::Stop(sig))
        }
    }

    /// Call before [`Tty::read`]: background readers are stopped with
    /// `SIGTTIN` (or get `EIO`).
    pub fn check_read(&self, caller: &Caller) -> Result<(), TtyError> {
        self.check(caller, g::SIGTTIN)
    }

    /// Call before [`Tty::write`]: with `TOSTOP`, background writers are
    /// stopped with `SIGTTOU`.
    pub fn check_write(&self, caller: &Caller) -> Result<(), TtyError> {
        if self.termios.l(g::TOSTOP) {
            self.check(caller, g::SIGTTOU)
        } else {
            Ok(())
        }
    }

    // ----- output -----

    /// Output bytes for the UART, oldest first; empty while output is
    /// stopped (`VSTOP`, `TCOOFF`).
    pub fn pending_output(&self) -> &[u8] {
        if self.stopped {
            &[]
        } else {
            &self.output
        }
    }

    /// Bytes queued for output, stopped or not (`TIOCOUTQ`).
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Output stopped by `VSTOP` or `TCOOFF`.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The UART took the first `n` bytes of [`Tty::pending_output`].
    pub fn consume_output(&mut self, n: usize) -> Effects {
        let before = self.output.len();
        let n = n.min(before);
        self.output.drain(..n);
        Effects {
            // Linux wakes writers once fewer than WAKEUP_CHARS wait.
            writable: n > 0 && self.output.len() < WAKEUP_CHARS,
            drained: n > 0 && self.output.is_empty(),
            ..Default::default()
        }
    }

    /// `write`: output-processes bytes into the queue. `Ok(n)` took the
    /// first n bytes (a blocking caller is parked with the rest until
    /// [`Effects::writable`]); `WouldBlock` when the queue is full.
    pub fn write(&mut self, data: &[u8]) -> Result<(usize, Effects), WouldBlock> {
        let mut taken = 0;
        for &c in data {
            if self.output.len() >= OUTPUT_CAPACITY {
                break;
            }
            self.out_char(c);
            taken += 1;
        }
        if taken == 0 && !data.is_empty() {
            return Err(WouldBlock);
        }
        let effects = Effects {
            output: !self.stopped && !self.output.is_empty(),
            ..Default::default()
        };
        Ok((taken, effects))
    }

    /// Linux's `do_output_char`: `OPOST` processing and column tracking.
    fn out_char(&mut self, c: u8) {
        let t = self.termios;
        if !t.o(g::OPOST) {
            self.output.push(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(g::ONLRET) {
                    self.column = 0;
                }
                if t.o(g::ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    self.output.extend_from_slice(b"\r\n");
                    return;
                }
                self.canon_column = self.column;
                self.output.push(c);
            }
            b'\r' => {
                if t.o(g::ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(g::OCRNL) {
                    if t.o(g::ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                    self.output.push(b'\n');
                    return;
                }
                self.column = 0;
                self.canon_column = 0;
                self.output.push(c);
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                self.column += spaces;
                if t.oflag & g::TABDLY == g::XTABS {
                    self.output.extend(core::iter::repeat_n(b' ', spaces));
                } else {
                    self.output.push(c);
                }
            }
            0x08 => {
                self.column = self.column.saturating_sub(1);
                self.output.push(c);
            }
            _ => {
                let mut c = c;
                if !is_cntrl(c) {
                    if t.o(g::OLCUC) {
                        c = c.to_ascii_uppercase();
                    }
                    if !self.is_continuation(c) {
                        self.column += 1;
                    }
                }
                self.output.push(c);
            }
        }
    }

    fn is_continuation(&self, c: u8) -> bool {
        self.termios.i(g::IUTF8) && c & 0xc0 == 0x80
    }

    // ----- echo -----

    fn echo_raw(&mut self, c: u8) {
        self.out_char(c);
    }

    /// Echo of a typed byte: `^X` for control characters under `ECHOCTL`
    /// (not tab), else the byte through output processing.
    fn echo_char(&mut self, c: u8) {
        if self.termios.l(g::ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.output.push(b'^');
            self.output.push(c ^ 0x40);
            self.column += 2;
        } else {
            self.out_char(c);
        }
    }

    fn finish_erasing(&mut self) {
        if self.erasing {
            self.echo_raw(b'/');
            self.erasing = false;
        }
    }

    /// Before echoing the first byte of a line, remember its column.
    fn mark_line_start(&mut self) {
        if self.input.len() == self.canon_len {
            self.canon_column = self.column;
        }
    }

    // ----- input -----

    /// Whether `input` will keep a byte now; when not, the server should
    /// hold bytes in its own buffer (Linux throttles the UART) and feed
    /// them after a read frees room. In canonical mode editing goes on
    /// until a complete line waits.
    pub fn accepts_input(&self) -> bool {
        self.input.len() < INPUT_CAPACITY || (self.icanon() && self.canon_len == 0)
    }

    fn icanon(&self) -> bool {
        self.termios.l(g::ICANON)
    }

    /// Room for one more input slot (`line_end`: a canonical line end,
    /// which may use the last slot).
    fn has_room(&self, line_end: bool) -> bool {
        let limit = if self.icanon() && !line_end {
            INPUT_CAPACITY - 1
        } else {
            INPUT_CAPACITY
        };
        self.input.len() < limit
    }

    /// Linux's `char_map`: bytes that take the special path.
    fn is_special(&self, c: u8) -> bool {
        let t = &self.termios;
        if c == 0 {
            return false;
        }
        if c == b'\r' && (t.i(g::IGNCR) || t.i(g::ICRNL)) {
            return true;
        }
        if c == b'\n' && t.i(g::INLCR) {
            return true;
        }
        if t.l(g::ICANON) {
            if c == b'\n'
                || t.is(c, g::VERASE)
                || t.is(c, g::VKILL)
                || t.is(c, g::VEOF)
                || t.is(c, g::VEOL)
                || (c == 0x08 && self.backspace_erases)
            {
                return true;
            }
            if t.l(g::IEXTEN)
                && (t.is(c, g::VWERASE)
                    || t.is(c, g::VLNEXT)
                    || t.is(c, g::VEOL2)
                    || (t.l(g::ECHO) && t.is(c, g::VREPRINT)))
            {
                return true;
            }
        }
        if t.i(g::IXON) && (t.is(c, g::VSTART) || t.is(c, g::VSTOP)) {
            return true;
        }
        t.l(g::ISIG) && (t.is(c, g::VINTR) || t.is(c, g::VQUIT) || t.is(c, g::VSUSP))
    }

    /// One byte typed on the console.
    pub fn input(&mut self, byte: u8) -> Effects {
        let mut fx = Effects::default();
        let was_stopped = self.stopped;
        self.receive(byte, &mut fx);
        fx.output = !self.stopped && !self.output.is_empty();
        if was_stopped && !self.stopped {
            fx.writable = true;
        }
        fx
    }

    /// Several bytes typed; the effects combined (the last signal wins).
    pub fn input_bytes(&mut self, bytes: &[u8]) -> Effects {
        let mut all = Effects::default();
        for &b in bytes {
            let fx = self.input(b);
            all.signal = fx.signal.or(all.signal);
            all.readable |= fx.readable;
            all.output |= fx.output;
            all.writable |= fx.writable;
            all.drained |= fx.drained;
        }
        all
    }

    fn receive(&mut self, c: u8, fx: &mut Effects) {
        let t = self.termios;
        let mut c = c;
        if t.i(g::ISTRIP) {
            c &= 0x7f;
        }
        if t.i(g::IUCLC) && t.l(g::IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            self.receive_plain(c, fx);
        } else if self.is_special(c) {
            self.receive_special(c, fx);
        } else {
            self.receive_plain(c, fx);
        }
    }

    /// Linux's `n_tty_receive_char`: an ordinary byte.
    fn receive_plain(&mut self, c: u8, fx: &mut Effects) {
        let t = self.termios;
        if self.stopped && t.i(g::IXON) && t.i(g::IXANY) {
            self.stopped = false;
        }
        if !self.has_room(false) {
            return;
        }
        if t.l(g::ECHO) {
            self.finish_erasing();
            self.mark_line_start();
            self.echo_char(c);
        }
        self.queue(Slot::Byte(c), fx);
    }

    fn queue(&mut self, slot: Slot, fx: &mut Effects) {
        self.input.push_back(slot);
        match slot {
            Slot::Byte(_) if self.icanon() => {}
            Slot::Byte(_) => fx.readable = true,
            Slot::End(_) | Slot::Eof => {
                self.canon_len = self.input.len();
                fx.readable = true;
            }
        }
    }

    /// Linux's `n_tty_receive_char_special`.
    fn receive_special(&mut self, c: u8, fx: &mut Effects) {
        let t = self.termios;
        let mut c = c;
        if t.i(g::IXON) {
            if t.is(c, g::VSTART) {
                self.stopped = false;
                return;
            }
            if t.is(c, g::VSTOP) {
                self.stopped = true;
                return;
            }
        }
        if t.l(g::ISIG) {
            let signal = if t.is(c, g::VINTR) {
                Some(Signal::Interrupt)
            } else if t.is(c, g::VQUIT) {
                Some(Signal::Quit)
            } else if t.is(c, g::VSUSP) {
                Some(Signal::Suspend)
            } else {
                None
            };
            if let Some(signal) = signal {
                self.receive_signal(signal, c, fx);
                return;
            }
        }
        if self.stopped && t.i(g::IXON) && t.i(g::IXANY) {
            self.stopped = false;
        }
        if c == b'\r' {
            if t.i(g::IGNCR) {
                return;
            }
            if t.i(g::ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(g::INLCR) {
            c = b'\r';
        }
        if t.l(g::ICANON) {
            let iexten = t.l(g::IEXTEN);
            if t.is(c, g::VERASE) || (c == 0x08 && self.backspace_erases) {
                self.eraser(Erase::Char);
                return;
            }
            if t.is(c, g::VKILL) {
                self.eraser(Erase::Line);
                return;
            }
            if iexten && t.is(c, g::VWERASE) {
                self.eraser(Erase::Word);
                return;
            }
            if iexten && t.is(c, g::VLNEXT) {
                self.lnext = true;
                if t.l(g::ECHO) {
                    self.finish_erasing();
                    if t.l(g::ECHOCTL) {
                        // Shows ^ under the cursor until the literal byte
                        // overwrites it.
                        self.echo_raw(b'^');
                        self.echo_raw(0x08);
                    }
                }
                return;
            }
            if iexten && t.l(g::ECHO) && t.is(c, g::VREPRINT) {
                self.finish_erasing();
                self.echo_char(c);
                self.echo_raw(b'\n');
                let line: Vec<u8> = self
                    .input
                    .iter()
                    .skip(self.canon_len)
                    .map(|s| s.byte())
                    .collect();
                for b in line {
                    self.echo_char(b);
                }
                return;
            }
            if c == b'\n' {
                if !self.has_room(true) {
                    return;
                }
                if t.l(g::ECHO) || t.l(g::ECHONL) {
                    self.echo_raw(b'\n');
                }
                self.queue(Slot::End(c), fx);
                return;
            }
            if t.is(c, g::VEOF) {
                // Not echoed; ends the line without a byte of its own.
                if self.has_room(true) {
                    self.queue(Slot::Eof, fx);
                }
                return;
            }
            if t.is(c, g::VEOL) || (iexten && t.is(c, g::VEOL2)) {
                if !self.has_room(true) {
                    return;
                }
                if t.l(g::ECHO) {
                    self.mark_line_start();
                    self.echo_char(c);
                }
                self.queue(Slot::End(c), fx);
                return;
            }
        }
        if !self.has_room(false) {
            return;
        }
        if t.l(g::ECHO) {
            self.finish_erasing();
            if c == b'\n' {
                self.echo_raw(b'\n');
            } else {
                self.mark_line_start();
                self.echo_char(c);
            }
        }
        self.queue(Slot::Byte(c), fx);
    }

    /// Linux's `isig` and `n_tty_receive_signal_char`: flush input and
    /// pending output unless `NOFLSH`, restart output, echo the character.
    fn receive_signal(&mut self, signal: Signal, c: u8, fx: &mut Effects) {
        fx.signal = Some(signal);
        if !self.termios.l(g::NOFLSH) {
            self.flush_input();
            if !self.output.is_empty() {
                self.output.clear();
                fx.writable = true;
                fx.drained = true;
            }
        }
        if self.termios.i(g::IXON) {
            self.stopped = false;
        }
        if self.termios.l(g::ECHO) {
            self.echo_char(c);
        }
    }

    fn flush_input(&mut self) {
        self.input.clear();
        self.canon_len = 0;
        self.erasing = false;
    }

    /// Linux's `eraser`: `VERASE`, `VWERASE` or `VKILL` in canonical mode.
    fn eraser(&mut self, kind: Erase) {
        let t = self.termios;
        if self.input.len() == self.canon_len {
            return;
        }
        if kind == Erase::Line {
            if !t.l(g::ECHO) {
                self.input.truncate(self.canon_len);
                return;
            }
            if !t.l(g::ECHOK) || !t.l(g::ECHOKE) || !t.l(g::ECHOE) {
                self.input.truncate(self.canon_len);
                self.finish_erasing();
                self.echo_char(t.cc(g::VKILL));
                if t.l(g::ECHOK) {
                    self.echo_raw(b'\n');
                }
                return;
            }
        }
        let mut seen_alnums = 0usize;
        while self.input.len() > self.canon_len {
            // One whole character: its continuation bytes go with it.
            let mut head = self.input.len();
            let mut c;
            loop {
                head -= 1;
                c = self.input.get(head).map_or(0, |s| s.byte());
                if !(self.is_continuation(c) && head > self.canon_len) {
                    break;
                }
            }
            if self.is_continuation(c) {
                break;
            }
            if kind == Erase::Word {
                // Linux's word: alphanumerics and '_' (BSD's ALTWERASE).
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            let removed: Vec<u8> = self.input.drain(head..).map(|s| s.byte()).collect();
            if t.l(g::ECHO) {
                if t.l(g::ECHOPRT) {
                    if !self.erasing {
                        self.echo_raw(b'\\');
                        self.erasing = true;
                    }
                    self.echo_char(c);
                    for &b in removed.iter().skip(1) {
                        self.echo_raw(b);
                        self.column = self.column.saturating_sub(1);
                    }
                } else if kind == Erase::Char && !t.l(g::ECHOE) {
                    self.echo_char(t.cc(g::VERASE));
                } else if c == b'\t' {
                    self.erase_tab();
                } else {
                    let width = if is_cntrl(c) {
                        usize::from(t.l(g::ECHOCTL)) * 2
                    } else {
                        1
                    };
                    for _ in 0..width {
                        self.echo_raw(0x08);
                        self.echo_raw(b' ');
                        self.echo_raw(0x08);
                    }
                }
            }
            if kind == Erase::Char {
                break;
            }
        }
        if self.input.len() == self.canon_len && t.l(g::ECHO) {
            self.finish_erasing();
        }
    }

    /// Backspaces over an erased tab: the columns used since the previous
    /// tab or the line's start decide its width (Linux's
    /// `ECHO_OP_ERASE_TAB`).
    fn erase_tab(&mut self) {
        let echoctl = self.termios.l(g::ECHOCTL);
        let mut chars = 0usize;
        let mut after_tab = false;
        for slot in self.input.iter().skip(self.canon_len).rev() {
            let c = slot.byte();
            if c == b'\t' {
                after_tab = true;
                break;
            } else if is_cntrl(c) {
                if echoctl {
                    chars += 2;
                }
            } else if !self.is_continuation(c) {
                chars += 1;
            }
        }
        if !after_tab {
            chars += self.canon_column;
        }
        let backspaces = 8 - (chars & 7);
        for _ in 0..backspaces {
            self.output.push(0x08);
            self.column = self.column.saturating_sub(1);
        }
    }

    // ----- reading -----

    /// Whether a read would not block (`poll`: `poll` true uses `VMIN` in
    /// non-canonical mode when `VTIME` is 0, as Linux's
    /// `input_available_p`).
    fn input_available(&self, poll: bool) -> bool {
        if self.icanon() {
            return self.canon_len > 0;
        }
        let vmin = usize::from(self.termios.cc(g::VMIN));
        let amount = if poll && self.termios.cc(g::VTIME) == 0 && vmin > 0 {
            vmin
        } else {
            1
        };
        self.input.len() >= amount
    }

    /// `read`. Canonical mode: at most one line (its end included, an
    /// end-of-file mark excluded); `Ok(0)` for `VEOF` at the start of a line.
    /// A line longer than `buf` is delivered over several reads.
    /// Non-canonical mode (Linux's `VMIN`/`VTIME`): with `VMIN` = 0 what is
    /// there, and with `VTIME` = 0 even nothing (`Ok(0)`); with `VMIN` > 0
    /// at least `min(VMIN, buf.len())` bytes, or what arrived when the
    /// `VTIME` inter-byte timer expires.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadBlock> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.icanon() {
            if self.canon_len == 0 {
                return Err(ReadBlock::Input);
            }
            return Ok(self.read_canon(buf));
        }
        let vmin = usize::from(self.termios.cc(g::VMIN));
        let vtime = self.termios.cc(g::VTIME);
        let avail = self.input.len();
        if vmin == 0 {
            if avail > 0 || vtime == 0 {
                return Ok(self.read_raw(buf));
            }
            return Err(ReadBlock::InputOrTimeout { deciseconds: vtime });
        }
        if avail >= vmin.min(buf.len()) {
            Ok(self.read_raw(buf))
        } else if avail > 0 && vtime > 0 {
            Err(ReadBlock::InputOrTimeout { deciseconds: vtime })
        } else {
            Err(ReadBlock::Input)
        }
    }

    /// The `VTIME` deadline a [`ReadBlock::InputOrTimeout`] armed passed:
    /// returns what is there, 0 included. In canonical mode (the modes
    /// changed meanwhile) it is a `read` that returns 0 instead of
    /// blocking.
    pub fn read_expired(&mut self, buf: &mut [u8]) -> usize {
        if self.icanon() {
            return self.read(buf).unwrap_or(0);
        }
        self.read_raw(buf)
    }

    fn read_raw(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.input.len());
        for (dst, slot) in buf.iter_mut().zip(self.input.drain(..n)) {
            *dst = slot.byte();
        }
        n
    }

    /// Linux's `canon_copy_from_read_buf`: the line end is looked for only
    /// within the first `buf.len()` bytes, so a short buffer takes the
    /// line in pieces (and "ab^D" read 2 bytes at a time gives "ab" then
    /// an end of file).
    fn read_canon(&mut self, buf: &mut [u8]) -> usize {
        let window = buf.len().min(self.canon_len);
        let end = self
            .input
            .iter()
            .take(window)
            .position(|s| !matches!(s, Slot::Byte(_)));
        let (copy, consume) = match end {
            Some(at) => match self.input.get(at) {
                Some(Slot::Eof) => (at, at + 1),
                _ => (at + 1, at + 1),
            },
            None => (window, window),
        };
        for (dst, slot) in buf.iter_mut().zip(self.input.iter().take(copy)) {
            *dst = slot.byte();
        }
        self.input.drain(..consume);
        self.canon_len -= consume;
        copy
    }

    /// Bytes a read could return now (`FIONREAD`): Linux counts a
    /// canonical mode's complete lines without end-of-file marks, and all
    /// bytes otherwise.
    pub fn input_len(&self) -> usize {
        if self.icanon() {
            self.input
                .iter()
                .take(self.canon_len)
                .filter(|s| !matches!(s, Slot::Eof))
                .count()
        } else {
            self.input.len()
        }
    }

    /// `poll` events: `POLLIN | POLLRDNORM` when a read would not block,
    /// `POLLOUT | POLLWRNORM` while fewer than `WAKEUP_CHARS` output bytes
    /// wait.
    pub fn poll(&self) -> u32 {
        let mut mask = 0;
        if self.input_available(true) {
            mask |= g::POLLIN | g::POLLRDNORM;
        }
        if self.output.len() < WAKEUP_CHARS {
            mask |= g::POLLOUT | g::POLLWRNORM;
        }
        mask
    }

    // ----- modes -----

    /// Sets new modes (Linux's `n_tty_set_termios`). Switching canonical
    /// mode on makes pending input one readable line; switching it off
    /// makes every pending byte readable (an end-of-file mark becomes a NUL
    /// byte, as on Linux). Turning `IXON` off restarts stopped output.
    pub fn set_termios(&mut self, new: Termios) -> Effects {
        let old = self.termios;
        self.termios = new;
        let mut fx = Effects {
            readable: true,
            ..Default::default()
        };
        if (old.lflag ^ new.lflag) & g::ICANON != 0 {
            for slot in self.input.iter_mut() {
                *slot = Slot::Byte(slot.byte());
            }
            self.canon_len = 0;
            if new.l(g::ICANON) {
                if let Some(last) = self.input.back_mut() {
                    *last = Slot::End(last.byte());
                    self.canon_len = self.input.len();
                }
            }
            self.erasing = false;
            self.lnext = false;
        }
        if self.stopped && !new.i(g::IXON) && old.i(g::IXON) {
            self.stopped = false;
            fx.output = !self.output.is_empty();
            fx.writable = true;
        }
        fx
    }

    /// `TCFLSH`: `TCIFLUSH`, `TCOFLUSH` or `TCIOFLUSH`.
    pub fn flush(&mut self, queue: u32) -> Result<Effects, u32> {
        let (input, output) = match queue {
            g::TCIFLUSH => (true, false),
            g::TCOFLUSH => (false, true),
            g::TCIOFLUSH => (true, true),
            _ => return Err(errno::EINVAL),
        };
        let mut fx = Effects::default();
        if input {
            self.flush_input();
        }
        if output && !self.output.is_empty() {
            self.output.clear();
            fx.writable = true;
            fx.drained = true;
        }
        Ok(fx)
    }

    // ----- ioctl -----

    /// Serves a decoded ioctl. `input` holds the [`Ioctl::copy_in_len`]
    /// bytes the server read from the argument pointer, `arg` the raw
    /// argument (used by value for `TCFLSH`, `TCXONC`, `TCSBRK`,
    /// `TIOCSCTTY`). `group_session` answers the session of a process
    /// group, `None` when no such group exists (for `TIOCSPGRP`).
    pub fn ioctl(
        &mut self,
        request: Ioctl,
        arg: u64,
        input: &[u8],
        caller: &Caller,
        group_session: &dyn Fn(i32) -> Option<i32>,
    ) -> Result<IoctlDone, TtyError> {
        let fault = TtyError::Errno(errno::EFAULT);
        match request {
            Ioctl::GetTermios { speeds } => {
                let mut out = self.termios.to_bytes().to_vec();
                if speeds {
                    out.extend_from_slice(&self.speeds.0.to_le_bytes());
                    out.extend_from_slice(&self.speeds.1.to_le_bytes());
                }
                Ok(IoctlDone::out(&out))
            }
            Ioctl::SetTermios {
                drain,
                flush,
                speeds,
            } => {
                self.check(caller, g::SIGTTOU)?;
                let new = Termios::from_bytes(input).ok_or(fault)?;
                let new_speeds = if speeds {
                    let speed = |at: usize| -> Option<u32> {
                        Some(u32::from_le_bytes(input.get(at..at + 4)?.try_into().ok()?))
                    };
                    let ispeed = speed(TERMIOS_SIZE).ok_or(fault)?;
                    let ospeed = speed(TERMIOS_SIZE + 4).ok_or(fault)?;
                    (ispeed, ospeed)
                } else {
                    self.speeds
                };
                let mut fx = Effects::default();
                if flush {
                    // Linux flushes before waiting; a retry after the wait
                    // flushes again, so input typed meanwhile is lost too.
                    self.flush_input();
                }
                if drain && !self.output.is_empty() {
                    return Err(TtyError::WaitDrain);
                }
                let set = self.set_termios(new);
                // Only recorded: the console's line speed is the UART's.
                self.speeds = new_speeds;
                fx.readable = set.readable;
                fx.output = set.output;
                fx.writable = set.writable;
                Ok(IoctlDone::effects(fx))
            }
            Ioctl::GetWinsize => Ok(IoctlDone::out(&self.winsize.to_bytes())),
            Ioctl::SetWinsize => {
                let new = Winsize::from_bytes(input).ok_or(fault)?;
                let mut fx = Effects::default();
                if new != self.winsize {
                    self.winsize = new;
                    fx.signal = Some(Signal::WindowChange);
                }
                Ok(IoctlDone::effects(fx))
            }
            Ioctl::GetPgrp => {
                if caller.controlling != Controlling::This {
                    return Err(TtyError::Errno(errno::ENOTTY));
                }
                Ok(IoctlDone::out(&self.foreground.unwrap_or(0).to_le_bytes()))
            }
            Ioctl::SetPgrp => {
                match self.check(caller, g::SIGTTOU) {
                    Err(TtyError::Errno(e)) if e == errno::EIO => {
                        return Err(TtyError::Errno(errno::ENOTTY));
                    }
                    other => other?,
                }
                let bytes: [u8; 4] = input
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(fault)?;
                let pgrp = i32::from_le_bytes(bytes);
                if pgrp < 0 {
                    return Err(TtyError::Errno(errno::EINVAL));
                }
                if caller.controlling != Controlling::This || self.session != Some(caller.sid) {
                    return Err(TtyError::Errno(errno::ENOTTY));
                }
                match group_session(pgrp) {
                    None => Err(TtyError::Errno(errno::ESRCH)),
                    Some(sid) if sid != caller.sid => Err(TtyError::Errno(errno::EPERM)),
                    Some(_) => {
                        self.foreground = Some(pgrp);
                        Ok(IoctlDone::default())
                    }
                }
            }
            Ioctl::GetSid => match self.session {
                Some(sid) if caller.controlling == Controlling::This => {
                    Ok(IoctlDone::out(&sid.to_le_bytes()))
                }
                _ => Err(TtyError::Errno(errno::ENOTTY)),
            },
            Ioctl::InputQueued => Ok(IoctlDone::out(&(self.input_len() as i32).to_le_bytes())),
            Ioctl::OutputQueued => Ok(IoctlDone::out(&(self.output.len() as i32).to_le_bytes())),
            Ioctl::Flush => {
                self.check(caller, g::SIGTTOU)?;
                let queue = u32::try_from(arg).map_err(|_| TtyError::Errno(errno::EINVAL))?;
                let fx = self.flush(queue).map_err(TtyError::Errno)?;
                Ok(IoctlDone::effects(fx))
            }
            Ioctl::FlowControl => {
                self.check(caller, g::SIGTTOU)?;
                let action = u32::try_from(arg).map_err(|_| TtyError::Errno(errno::EINVAL))?;
                let mut fx = Effects::default();
                match action {
                    g::TCOOFF => self.stopped = true,
                    g::TCOON => {
                        if self.stopped {
                            self.stopped = false;
                            fx.output = !self.output.is_empty();
                            fx.writable = true;
                        }
                    }
                    g::TCIOFF | g::TCION => {
                        let index = if action == g::TCIOFF {
                            g::VSTOP
                        } else {
                            g::VSTART
                        };
                        let c = self.termios.cc(index);
                        if c != 0 {
                            // Linux sends it ahead of queued output.
                            self.output.insert(0, c);
                            fx.output = !self.stopped;
                        }
                    }
                    _ => return Err(TtyError::Errno(errno::EINVAL)),
                }
                Ok(IoctlDone::effects(fx))
            }
            Ioctl::Drain => {
                self.check(caller, g::SIGTTOU)?;
                if self.output.is_empty() {
                    Ok(IoctlDone::default())
                } else {
                    Err(TtyError::WaitDrain)
                }
            }
            Ioctl::SetControlling => {
                let leader = caller.pid == caller.sid;
                if leader && self.session == Some(caller.sid) {
                    return Ok(IoctlDone::default());
                }
                if !leader || caller.controlling != Controlling::None {
                    return Err(TtyError::Errno(errno::EPERM));
                }
                let stolen_from = match self.session {
                    Some(other) if arg == 1 && caller.privileged => Some(other),
                    Some(_) => return Err(TtyError::Errno(errno::EPERM)),
                    None => None,
                };
                self.attach(caller.sid, caller.pgrp);
                Ok(IoctlDone {
                    ctty: Some(CttyChange::Acquired { stolen_from }),
                    ..Default::default()
                })
            }
            Ioctl::NoControlling => {
                if caller.controlling != Controlling::This {
                    return Err(TtyError::Errno(errno::ENOTTY));
                }
                let hangup_group = if caller.pid == caller.sid {
                    self.detach()
                } else {
                    None
                };
                Ok(IoctlDone {
                    ctty: Some(CttyChange::Released { hangup_group }),
                    ..Default::default()
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const DEL: u8 = 0x7f;

    fn drain(tty: &mut Tty) -> Vec<u8> {
        let out = tty.pending_output().to_vec();
        tty.consume_output(out.len());
        out
    }

    fn read_all(tty: &mut Tty) -> Result<Vec<u8>, ReadBlock> {
        let mut buf = [0u8; 256];
        let n = tty.read(&mut buf)?;
        Ok(buf[..n].to_vec())
    }

    fn caller() -> Caller {
        Caller {
            pid: 10,
            pgrp: 10,
            sid: 1,
            controlling: Controlling::This,
            sigttin_ignored: false,
            sigttou_ignored: false,
            orphaned: false,
            privileged: false,
        }
    }

    fn no_groups(_: i32) -> Option<i32> {
        None
    }

    fn console() -> Tty {
        let mut tty = Tty::new();
        tty.attach(1, 10);
        tty
    }

    fn set_modes(tty: &mut Tty, change: impl FnOnce(&mut Termios)) {
        let mut t = *tty.termios();
        change(&mut t);
        let req = Ioctl::decode(io::TCSETS).unwrap();
        tty.ioctl(req, 0, &t.to_bytes(), &caller(), &no_groups)
            .unwrap();
    }

    #[test]
    fn termios_has_the_kernel_layout() {
        assert_eq!(core::mem::size_of::<g::termios>(), TERMIOS_SIZE);
        assert_eq!(core::mem::size_of::<g::winsize>(), WINSIZE_SIZE);
        let t = Termios::default();
        let bytes = t.to_bytes();
        assert_eq!(bytes[0..4], (g::ICRNL | g::IXON).to_le_bytes());
        assert_eq!(bytes[4..8], (g::OPOST | g::ONLCR).to_le_bytes());
        assert_eq!(bytes[12..16], 0x8a3bu32.to_le_bytes());
        // c_cc follows c_line: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1.
        assert_eq!(bytes[17..24], [3, 0x1c, 0x7f, 0x15, 4, 0, 1]);
        assert_eq!(Termios::from_bytes(&bytes), Some(t));
        assert_eq!(Termios::from_bytes(&bytes[..35]), None);
    }

    #[test]
    fn typed_line_with_erase_echoes_like_linux() {
        let mut tty = console();
        let fx = tty.input_bytes(b"ab");
        assert!(fx.output && !fx.readable);
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        let fx = tty.input_bytes(&[DEL, b'c', b'\r']);
        assert!(fx.readable);
        assert_eq!(drain(&mut tty), b"ab\x08 \x08c\r\n");
        assert_eq!(read_all(&mut tty), Ok(b"ac\n".to_vec()));
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
    }

    #[test]
    fn backspace_erases_unless_turned_off() {
        let mut tty = console();
        tty.input_bytes(b"ab\x08\n");
        assert_eq!(drain(&mut tty), b"ab\x08 \x08\r\n");
        assert_eq!(read_all(&mut tty), Ok(b"a\n".to_vec()));
        tty.set_backspace_erases(false);
        tty.input_bytes(b"ab\x08\n");
        assert_eq!(drain(&mut tty), b"ab^H\r\n");
        assert_eq!(read_all(&mut tty), Ok(b"ab\x08\n".to_vec()));
    }

    #[test]
    fn kill_and_word_erase() {
        let mut tty = console();
        tty.input_bytes(b"abc\x15");
        assert_eq!(drain(&mut tty), b"abc\x08 \x08\x08 \x08\x08 \x08");
        tty.input_bytes(b"ls foo \x17");
        // The trailing blank, then the word; "ls " stays.
        assert_eq!(
            drain(&mut tty),
            b"ls foo \x08 \x08\x08 \x08\x08 \x08\x08 \x08"
        );
        tty.input_bytes(b"x\r");
        drain(&mut tty);
        assert_eq!(read_all(&mut tty), Ok(b"ls x\n".to_vec()));
        // Erasing at the start of a line does nothing.
        tty.input(DEL);
        assert!(drain(&mut tty).is_empty());
    }

    #[test]
    fn kill_without_echoke_echoes_the_character_and_newline() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag &= !g::ECHOKE);
        tty.input_bytes(b"abc\x15");
        assert_eq!(drain(&mut tty), b"abc^U\r\n");
    }

    #[test]
    fn interrupt_signals_and_flushes() {
        let mut tty = console();
        tty.input_bytes(b"done\n");
        tty.input_bytes(b"abc");
        drain(&mut tty);
        let fx = tty.input(3);
        assert_eq!(fx.signal, Some(Signal::Interrupt));
        assert_eq!(fx.signal.map(Signal::number), Some(g::SIGINT));
        assert_eq!(drain(&mut tty), b"^C");
        // The complete line went too.
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        tty.input_bytes(b"x\n");
        drain(&mut tty);
        assert_eq!(read_all(&mut tty), Ok(b"x\n".to_vec()));
        // Pending output is flushed as well.
        tty.write(b"pending").unwrap();
        tty.input(0x1c);
        assert_eq!(drain(&mut tty), b"^\\");
        assert_eq!(tty.input(0x1a).signal, Some(Signal::Suspend));
    }

    #[test]
    fn noflsh_keeps_input() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag |= g::NOFLSH);
        tty.input_bytes(b"ab");
        assert_eq!(tty.input(3).signal, Some(Signal::Interrupt));
        tty.input(b'\n');
        assert_eq!(read_all(&mut tty), Ok(b"ab\n".to_vec()));
    }

    #[test]
    fn eof_at_line_start_and_mid_line() {
        let mut tty = console();
        let fx = tty.input(4);
        assert!(fx.readable);
        assert!(drain(&mut tty).is_empty());
        assert_eq!(read_all(&mut tty), Ok(vec![]));
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        tty.input_bytes(b"ab\x04");
        assert_eq!(drain(&mut tty), b"ab");
        assert_eq!(read_all(&mut tty), Ok(b"ab".to_vec()));
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
    }

    #[test]
    fn short_reads_take_a_line_in_pieces() {
        let mut tty = console();
        tty.input_bytes(b"abc\nd\n");
        let mut buf = [0u8; 2];
        assert_eq!(tty.read(&mut buf), Ok(2));
        assert_eq!(&buf, b"ab");
        assert_eq!(tty.read(&mut buf), Ok(2));
        assert_eq!(&buf, b"c\n");
        assert_eq!(tty.read(&mut buf), Ok(2));
        assert_eq!(&buf, b"d\n");
        // As Linux: the mark is found only within the buffer's length.
        tty.input_bytes(b"ab\x04");
        assert_eq!(tty.read(&mut buf), Ok(2));
        assert_eq!(tty.read(&mut buf), Ok(0));
    }

    #[test]
    fn echoctl_and_erasing_control_characters() {
        let mut tty = console();
        tty.input_bytes(&[b'a', 1, DEL, DEL]);
        assert_eq!(drain(&mut tty), b"a^A\x08 \x08\x08 \x08\x08 \x08");
        set_modes(&mut tty, |t| t.lflag &= !g::ECHOCTL);
        tty.input_bytes(&[b'a', 1, DEL]);
        assert_eq!(drain(&mut tty), b"a\x01");
    }

    #[test]
    fn erasing_a_tab_goes_back_to_its_start() {
        let mut tty = console();
        tty.input_bytes(b"abc\t");
        assert_eq!(drain(&mut tty), b"abc\t");
        tty.input(DEL);
        assert_eq!(drain(&mut tty), b"\x08\x08\x08\x08\x08");
        // The line began after a prompt of 2 columns.
        tty.input(b'\n');
        drain(&mut tty);
        tty.write(b"$ ").unwrap();
        tty.input_bytes(b"\t");
        tty.input(DEL);
        assert_eq!(drain(&mut tty), b"$ \t\x08\x08\x08\x08\x08\x08");
    }

    #[test]
    fn echoprt_shows_erased_characters() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag |= g::ECHOPRT);
        tty.input_bytes(b"ab\x7f\x7fc");
        assert_eq!(drain(&mut tty), b"ab\\ba/c");
    }

    #[test]
    fn literal_next_and_reprint() {
        let mut tty = console();
        let fx = tty.input_bytes(&[0x16, 3]);
        assert_eq!(fx.signal, None);
        assert_eq!(drain(&mut tty), b"^\x08^C");
        tty.input_bytes(&[b'x', 0x12]);
        assert_eq!(drain(&mut tty), b"x^R\r\n^Cx");
        tty.input(b'\n');
        assert_eq!(read_all(&mut tty), Ok(vec![3, b'x', b'\n']));
    }

    #[test]
    fn raw_mode_through_tcsets() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag &= !(g::ICANON | g::ECHO));
        let fx = tty.input(b'x');
        assert!(fx.readable && !fx.output);
        assert_ne!(tty.poll() & g::POLLIN, 0);
        // ICRNL still maps CR.
        tty.input(b'\r');
        assert_eq!(read_all(&mut tty), Ok(b"x\n".to_vec()));
        assert_eq!(tty.read(&mut [0u8; 4]), Err(ReadBlock::Input));
        // VMIN 3: poll and read wait for three bytes (or a shorter buffer).
        set_modes(&mut tty, |t| t.cc[g::VMIN as usize] = 3);
        tty.input_bytes(b"ab");
        assert_eq!(tty.poll() & g::POLLIN, 0);
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        assert_eq!(tty.read(&mut [0u8; 2]), Ok(2));
        tty.input_bytes(b"cde");
        assert_ne!(tty.poll() & g::POLLIN, 0);
        assert_eq!(read_all(&mut tty), Ok(b"cde".to_vec()));
        // VMIN 0, VTIME 0: what is there, even nothing.
        set_modes(&mut tty, |t| t.cc[g::VMIN as usize] = 0);
        assert_eq!(tty.read(&mut [0u8; 8]), Ok(0));
        // VMIN 0, VTIME 5: a deadline, then 0.
        set_modes(&mut tty, |t| t.cc[g::VTIME as usize] = 5);
        assert_eq!(
            tty.read(&mut [0u8; 8]),
            Err(ReadBlock::InputOrTimeout { deciseconds: 5 })
        );
        assert_eq!(tty.read_expired(&mut [0u8; 8]), 0);
        // VMIN 2, VTIME 5: no timer before the first byte, then one.
        set_modes(&mut tty, |t| t.cc[g::VMIN as usize] = 2);
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        tty.input(b'q');
        assert_eq!(
            tty.read(&mut [0u8; 8]),
            Err(ReadBlock::InputOrTimeout { deciseconds: 5 })
        );
        assert_eq!(tty.read_expired(&mut [0u8; 8]), 1);
    }

    #[test]
    fn raw_mode_echo_follows_linux() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag &= !g::ICANON);
        // CR (mapped) echoes as a newline, a typed ^J is not special and
        // echoes as ^J, DEL as ^?.
        tty.input_bytes(b"a\r\n\x7f");
        assert_eq!(drain(&mut tty), b"a\r\n^J^?");
        assert_eq!(read_all(&mut tty), Ok(b"a\n\n\x7f".to_vec()));
    }

    #[test]
    fn switching_modes_keeps_pending_input() {
        let mut tty = console();
        tty.input_bytes(b"ab");
        set_modes(&mut tty, |t| t.lflag &= !g::ICANON);
        assert_eq!(read_all(&mut tty), Ok(b"ab".to_vec()));
        tty.input_bytes(b"cd");
        set_modes(&mut tty, |t| t.lflag |= g::ICANON);
        // Pending raw input becomes one line.
        assert_eq!(read_all(&mut tty), Ok(b"cd".to_vec()));
    }

    #[test]
    fn output_processing() {
        let mut tty = console();
        let (n, fx) = tty.write(b"hi\nthere\n").unwrap();
        assert_eq!(n, 9);
        assert!(fx.output);
        assert_eq!(drain(&mut tty), b"hi\r\nthere\r\n");
        set_modes(&mut tty, |t| t.oflag |= g::XTABS);
        tty.write(b"ab\tc").unwrap();
        assert_eq!(drain(&mut tty), b"ab      c");
        set_modes(&mut tty, |t| t.oflag &= !g::OPOST);
        tty.write(b"x\n").unwrap();
        assert_eq!(drain(&mut tty), b"x\n");
    }

    #[test]
    fn output_queue_is_bounded_and_drains() {
        let mut tty = console();
        let big = vec![b'x'; OUTPUT_CAPACITY + 10];
        assert_eq!(tty.write(&big).map(|w| w.0), Ok(OUTPUT_CAPACITY));
        assert_eq!(tty.write(b"y"), Err(WouldBlock));
        assert_eq!(tty.poll() & g::POLLOUT, 0);
        let fx = tty.consume_output(OUTPUT_CAPACITY - WAKEUP_CHARS + 1);
        assert!(fx.writable && !fx.drained);
        assert_ne!(tty.poll() & g::POLLOUT, 0);
        let fx = tty.consume_output(usize::MAX);
        assert!(fx.drained);
    }

    #[test]
    fn flow_control_holds_output() {
        let mut tty = console();
        tty.input(0x13);
        assert!(tty.is_stopped());
        tty.write(b"held").unwrap();
        assert!(tty.pending_output().is_empty());
        let fx = tty.input(0x11);
        assert!(fx.output && fx.writable);
        assert_eq!(drain(&mut tty), b"held");
    }

    #[test]
    fn tcsetsw_waits_for_drain_and_tcsetsf_flushes() {
        let mut tty = console();
        tty.write(b"out").unwrap();
        tty.input_bytes(b"typed");
        let raw = {
            let mut t = *tty.termios();
            t.lflag &= !g::ICANON;
            t.to_bytes()
        };
        let setsw = Ioctl::decode(io::TCSETSW).unwrap();
        assert_eq!(
            tty.ioctl(setsw, 0, &raw, &caller(), &no_groups),
            Err(TtyError::WaitDrain)
        );
        assert!(tty.consume_output(usize::MAX).drained);
        let setsf = Ioctl::decode(io::TCSETSF).unwrap();
        assert!(tty.ioctl(setsf, 0, &raw, &caller(), &no_groups).is_ok());
        assert!(!tty.termios().l(g::ICANON));
        assert_eq!(tty.read(&mut [0u8; 8]), Err(ReadBlock::Input));
        let drain_req = Ioctl::decode(io::TCSBRK).unwrap();
        assert!(tty.ioctl(drain_req, 1, &[], &caller(), &no_groups).is_ok());
    }

    #[test]
    fn ioctls_copy_in_and_out() {
        let mut tty = console();
        assert_eq!(
            Ioctl::decode(0x5401),
            Ok(Ioctl::GetTermios { speeds: false })
        );
        assert_eq!(Ioctl::decode(0x1234), Err(errno::ENOTTY));
        let get = |tty: &mut Tty, req: u32| {
            let req = Ioctl::decode(req).unwrap();
            tty.ioctl(req, 0, &[], &caller(), &no_groups)
                .unwrap()
                .copy_out
        };
        assert_eq!(get(&mut tty, io::TCGETS), Termios::default().to_bytes());
        let mut t2 = Termios::default().to_bytes().to_vec();
        t2.extend_from_slice(&38400u32.to_le_bytes());
        t2.extend_from_slice(&38400u32.to_le_bytes());
        assert_eq!(get(&mut tty, io::TCGETS2), t2);
        assert_eq!(core::mem::size_of::<g::termios2>(), TERMIOS2_SIZE);
        let set2 = Ioctl::decode(io::TCSETSF2).unwrap();
        assert_eq!(set2.copy_in_len(), TERMIOS2_SIZE);
        t2[TERMIOS_SIZE] = 0;
        t2[TERMIOS_SIZE + 1] = 0xc2;
        t2[TERMIOS_SIZE + 2] = 1;
        tty.ioctl(set2, 0, &t2, &caller(), &no_groups).unwrap();
        assert_eq!(get(&mut tty, io::TCGETS2), t2);
        assert_eq!(get(&mut tty, io::TIOCGWINSZ), [24, 0, 80, 0, 0, 0, 0, 0]);
        let set = Ioctl::decode(io::TIOCSWINSZ).unwrap();
        assert_eq!(set.copy_in_len(), 8);
        let done = tty
            .ioctl(set, 0, &[50, 0, 132, 0, 0, 0, 0, 0], &caller(), &no_groups)
            .unwrap();
        assert_eq!(done.effects.signal, Some(Signal::WindowChange));
        assert_eq!(tty.winsize().cols, 132);
        assert_eq!(
            tty.ioctl(set, 0, &[1, 2], &caller(), &no_groups),
            Err(TtyError::Errno(errno::EFAULT))
        );
        tty.input_bytes(b"ab\ncd\x04ef");
        assert_eq!(get(&mut tty, io::FIONREAD), 5i32.to_le_bytes());
        assert_eq!(get(&mut tty, io::TIOCGPGRP), 10i32.to_le_bytes());
        assert_eq!(get(&mut tty, io::TIOCGSID), 1i32.to_le_bytes());
        let flush = Ioctl::decode(io::TCFLSH).unwrap();
        assert!(tty
            .ioctl(flush, u64::from(g::TCIFLUSH), &[], &caller(), &no_groups)
            .is_ok());
        assert_eq!(get(&mut tty, io::FIONREAD), 0i32.to_le_bytes());
        assert_eq!(
            tty.ioctl(flush, 7, &[], &caller(), &no_groups),
            Err(TtyError::Errno(errno::EINVAL))
        );
    }

    #[test]
    fn foreground_group_and_job_control() {
        let mut tty = console();
        let spgrp = Ioctl::decode(io::TIOCSPGRP).unwrap();
        let groups = |pgrp: i32| match pgrp {
            10 | 20 => Some(1),
            30 => Some(2),
            _ => None,
        };
        let me = caller();
        assert!(tty
            .ioctl(spgrp, 0, &20i32.to_le_bytes(), &me, &groups)
            .is_ok());
        assert_eq!(tty.foreground(), Some(20));
        // Now the caller (group 10) is in the background.
        assert_eq!(
            tty.ioctl(spgrp, 0, &10i32.to_le_bytes(), &me, &groups),
            Err(TtyError::Stop(g::SIGTTOU))
        );
        assert_eq!(tty.check_read(&me), Err(TtyError::Stop(g::SIGTTIN)));
        assert_eq!(tty.check_write(&me), Ok(()));
        let ignoring = Caller {
            sigttou_ignored: true,
            sigttin_ignored: true,
            ..me
        };
        assert_eq!(tty.check_read(&ignoring), Err(TtyError::Errno(errno::EIO)));
        assert_eq!(
            tty.ioctl(spgrp, 0, &99i32.to_le_bytes(), &ignoring, &groups),
            Err(TtyError::Errno(errno::ESRCH))
        );
        assert_eq!(
            tty.ioctl(spgrp, 0, &30i32.to_le_bytes(), &ignoring, &groups),
            Err(TtyError::Errno(errno::EPERM))
        );
        assert_eq!(
            tty.ioctl(spgrp, 0, &(-1i32).to_le_bytes(), &ignoring, &groups),
            Err(TtyError::Errno(errno::EINVAL))
        );
        let orphan = Caller {
            orphaned: true,
            ..me
        };
        assert_eq!(
            tty.ioctl(spgrp, 0, &10i32.to_le_bytes(), &orphan, &groups),
            Err(TtyError::Errno(errno::ENOTTY))
        );
        assert!(tty
            .ioctl(spgrp, 0, &10i32.to_le_bytes(), &ignoring, &groups)
            .is_ok());
        set_modes(&mut tty, |t| t.lflag |= g::TOSTOP);
        let bg = Caller { pgrp: 20, ..me };
        assert_eq!(tty.check_write(&bg), Err(TtyError::Stop(g::SIGTTOU)));
        // Not this tty's session: no job control applies.
        let other = Caller {
            controlling: Controlling::None,
            ..bg
        };
        assert_eq!(tty.check_read(&other), Ok(()));
    }

    #[test]
    fn controlling_terminal() {
        let mut tty = Tty::new();
        let leader = Caller {
            pid: 1,
            pgrp: 1,
            sid: 1,
            controlling: Controlling::None,
            ..caller()
        };
        let sctty = Ioctl::decode(io::TIOCSCTTY).unwrap();
        let done = tty.ioctl(sctty, 0, &[], &leader, &no_groups).unwrap();
        assert_eq!(done.ctty, Some(CttyChange::Acquired { stolen_from: None }));
        assert_eq!((tty.session(), tty.foreground()), (Some(1), Some(1)));
        let other = Caller {
            pid: 5,
            pgrp: 5,
            sid: 5,
            ..leader
        };
        assert_eq!(
            tty.ioctl(sctty, 1, &[], &other, &no_groups),
            Err(TtyError::Errno(errno::EPERM))
        );
        let root = Caller {
            privileged: true,
            ..other
        };
        let done = tty.ioctl(sctty, 1, &[], &root, &no_groups).unwrap();
        assert_eq!(
            done.ctty,
            Some(CttyChange::Acquired {
                stolen_from: Some(1)
            })
        );
        let notty = Ioctl::decode(io::TIOCNOTTY).unwrap();
        let owner = Caller {
            controlling: Controlling::This,
            ..root
        };
        let done = tty.ioctl(notty, 0, &[], &owner, &no_groups).unwrap();
        assert_eq!(
            done.ctty,
            Some(CttyChange::Released {
                hangup_group: Some(5)
            })
        );
        assert_eq!(tty.session(), None);
    }

    #[test]
    fn full_canonical_buffer_still_ends_the_line() {
        let mut tty = console();
        set_modes(&mut tty, |t| t.lflag &= !g::ECHO);
        tty.input_bytes(&vec![b'a'; INPUT_CAPACITY + 10]);
        assert!(tty.accepts_input());
        tty.input(b'\n');
        assert!(!tty.accepts_input());
        let mut buf = vec![0u8; INPUT_CAPACITY + 10];
        assert_eq!(tty.read(&mut buf), Ok(INPUT_CAPACITY));
        assert_eq!(buf[INPUT_CAPACITY - 1], b'\n');
    }

    proptest::proptest! {
        /// Any bytes, modes and reads: no panic, and the bookkeeping holds.
        #[test]
        fn never_panics_and_stays_bounded(
            iflag in proptest::prelude::any::<u32>(),
            oflag in proptest::prelude::any::<u32>(),
            lflag in proptest::prelude::any::<u32>(),
            cc in proptest::prelude::any::<[u8; NCCS]>(),
            steps in proptest::collection::vec(
                (proptest::prelude::any::<u8>(), 0usize..8, proptest::prelude::any::<bool>()),
                0..600,
            ),
        ) {
            let mut tty = console();
            let mut modes = *tty.termios();
            for (n, &(byte, read_len, switch)) in steps.iter().enumerate() {
                if switch && n % 97 == 0 {
                    modes = Termios { iflag, oflag, lflag, cc, ..modes };
                    tty.set_termios(modes);
                }
                tty.input(byte);
                if n % 5 == 0 {
                    let mut buf = [0u8; 8];
                    let _ = tty.read(&mut buf[..read_len]);
                    let _ = tty.read_expired(&mut buf[..read_len]);
                    let _ = tty.write(&buf[..read_len]);
                }
                if n % 11 == 0 {
                    tty.consume_output(read_len * 3);
                }
                proptest::prop_assert!(tty.input.len() <= INPUT_CAPACITY);
                proptest::prop_assert!(tty.canon_len <= tty.input.len());
                proptest::prop_assert!(tty.input_len() <= tty.input.len());
                // Line ends only inside complete lines, the last slot of
                // which is one.
                proptest::prop_assert!(tty
                    .input
                    .iter()
                    .skip(tty.canon_len)
                    .all(|s| matches!(s, Slot::Byte(_))));
                if tty.canon_len > 0 {
                    let last = tty.input.get(tty.canon_len - 1);
                    proptest::prop_assert!(!matches!(last, Some(Slot::Byte(_))));
                }
                if !tty.icanon() {
                    proptest::prop_assert_eq!(tty.canon_len, 0);
                }
            }
        }
    }
}
