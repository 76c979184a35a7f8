//! A pipe's buffer with Linux's semantics (`fs/pipe.c`), as a state
//! machine the process server's event loop drives. Nothing here blocks:
//! an operation that would sleep on Linux returns
//! [`PipeError::WouldBlock`], the server parks the caller on that pipe end
//! and retries when the state changes. Which parked side may retry after an
//! operation:
//!
//! | operation | wakes |
//! |---|---|
//! | `read` returned `Ok(n)`, n > 0 | writers (space freed) |
//! | `write` returned `Ok(n)`, n > 0 | readers (data arrived) |
//! | `close_writer` of the last writer | readers (EOF, `POLLHUP`) |
//! | `close_reader` of the last reader | writers (`EPIPE`, `POLLERR`) |
//!
//! [`Pipe::close_reader`] and [`Pipe::close_writer`] say so in a [`Wake`].
//!
//! The buffer counts bytes, not Linux's page slots: capacity is 64 KiB
//! whatever the write sizes (Linux can hold less when writes are small and
//! unmergeable). `POLLOUT` means at least `PIPE_BUF` bytes are free, so a
//! small write after `POLLOUT` never blocks, as on Linux where a free slot
//! takes a whole page.

use alloc::collections::VecDeque;

use linux_raw_sys::errno;
use linux_raw_sys::general;

/// Linux's default pipe capacity (16 pages).
pub const PIPE_CAPACITY: usize = 16 * 4096;
/// Writes of at most this many bytes are atomic (POSIX `PIPE_BUF`).
pub const PIPE_BUF: usize = general::PIPE_BUF as usize;
/// The largest capacity `F_SETPIPE_SZ` grants (Linux's default
/// `/proc/sys/fs/pipe-max-size`, for unprivileged callers).
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// Why a pipe operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeError {
    /// `EAGAIN`: a read with writers but no data, or a write with no room
    /// (for a write of at most `PIPE_BUF` bytes: not room for all of it).
    /// The server parks a blocking caller, a non-blocking one gets `EAGAIN`.
    WouldBlock,
    /// `EPIPE`: a write with no reader left. The server also sends the
    /// writer `SIGPIPE`, as Linux does.
    BrokenPipe,
}

impl PipeError {
    /// The Linux errno for this error.
    pub fn errno(self) -> u32 {
        match self {
            PipeError::WouldBlock => errno::EAGAIN,
            PipeError::BrokenPipe => errno::EPIPE,
        }
    }
}

/// Which parked callers may retry after a close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    /// Readers parked on this pipe (they now see EOF).
    pub readers: bool,
    /// Writers parked on this pipe (they now get `EPIPE`).
    pub writers: bool,
}

/// One pipe: its bytes and how many open descriptions refer to each end.
#[derive(Debug, Clone)]
pub struct Pipe {
    data: VecDeque<u8>,
    capacity: usize,
    readers: usize,
    writers: usize,
    /// Bumped by what wakes the read side (data in, the last writer
    /// gone) and the write side (room made, the last reader gone), as
    /// Linux's two wait queues: epoll's edge-triggered interests report
    /// again after them.
    read_side: u64,
    write_side: u64,
}

impl Default for Pipe {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipe {
    /// A new empty pipe with one reader and one writer, as `pipe2` makes it.
    pub fn new() -> Self {
        Pipe {
            data: VecDeque::new(),
            capacity: PIPE_CAPACITY,
            readers: 1,
            writers: 1,
            read_side: 0,
            write_side: 0,
        }
    }

    /// Open read ends (descriptions, not descriptors: the server counts a
    /// shared description once, however many descriptors or processes
    /// refer to it, and calls `close_reader` when the last one goes).
    pub fn readers(&self) -> usize {
        self.readers
    }

    /// Open write ends, counted like [`Pipe::readers`].
    pub fn writers(&self) -> usize {
        self.writers
    }

    /// Another read end (opening a FIFO, or a description the server
    /// chooses to count per descriptor).
    pub fn open_reader(&mut self) {
        self.readers = self.readers.saturating_add(1);
    }

    /// Another write end.
    pub fn open_writer(&mut self) {
        self.writers = self.writers.saturating_add(1);
    }

    /// A read end closed. When it was the last, parked writers must retry
    /// (they get `EPIPE`). Closing an end that is not open changes nothing.
    pub fn close_reader(&mut self) -> Wake {
        self.write_side = self.write_side.wrapping_add(1);
        let was_open = self.readers > 0;
        self.readers = self.readers.saturating_sub(1);
        Wake {
            readers: false,
            writers: was_open && self.readers == 0,
        }
    }

    /// A write end closed. When it was the last, parked readers must retry
    /// (they get EOF).
    pub fn close_writer(&mut self) -> Wake {
        self.read_side = self.read_side.wrapping_add(1);
        let was_open = self.writers > 0;
        self.writers = self.writers.saturating_sub(1);
        Wake {
            readers: was_open && self.writers == 0,
            writers: false,
        }
    }

    /// Moves when data comes in or the last writer goes.
    pub fn reader_changes(&self) -> u64 {
        self.read_side
    }

    /// Moves when room is made or the last reader goes.
    pub fn writer_changes(&self) -> u64 {
        self.write_side
    }

    /// Neither end is open: the server can drop the pipe.
    pub fn is_unused(&self) -> bool {
        self.readers == 0 && self.writers == 0
    }

    /// Bytes waiting to be read (`FIONREAD`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// No bytes waiting.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Free bytes.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.data.len())
    }

    /// `F_SETPIPE_SZ`: Linux rounds the size up to a power of two pages
    /// (at least one page), refuses more than `PIPE_MAX_SIZE` with `EPERM`
    /// and a size below the bytes held with `EBUSY`. Returns the new
    /// capacity. A larger capacity may let parked writers retry.
    pub fn set_capacity(&mut self, size: usize) -> Result<usize, u32> {
        if size > PIPE_MAX_SIZE {
            return Err(errno::EPERM);
        }
        let pages = size.div_ceil(4096).max(1).next_power_of_two();
        let bytes = pages.saturating_mul(4096);
        if bytes > PIPE_MAX_SIZE {
            return Err(errno::EPERM);
        }
        if bytes < self.data.len() {
            return Err(errno::EBUSY);
        }
        self.capacity = bytes;
        Ok(bytes)
    }

    /// `read`: `Ok(n)` with 1 ≤ n ≤ `buf.len()` bytes, in order; `Ok(0)` at
    /// end of file (empty and no writer) or for an empty `buf`;
    /// `WouldBlock` when empty while a writer is open.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.data.is_empty() {
            return if self.writers == 0 {
                Ok(0)
            } else {
                Err(PipeError::WouldBlock)
            };
        }
        let n = buf.len().min(self.data.len());
        for (slot, byte) in buf.iter_mut().zip(self.data.drain(..n)) {
            *slot = byte;
        }
        self.write_side = self.write_side.wrapping_add(1);
        Ok(n)
    }

    /// `write`: `BrokenPipe` without a reader (checked first, as Linux
    /// does, even for an empty `data`). A write of at most `PIPE_BUF` bytes
    /// is atomic: all of it or `WouldBlock`. A longer one takes what fits,
    /// `WouldBlock` if nothing does; a blocking caller is parked with the
    /// rest, a non-blocking one returns the partial count.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, PipeError> {
        if self.readers == 0 {
            return Err(PipeError::BrokenPipe);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.room();
        let n = if data.len() <= PIPE_BUF {
            if room < data.len() {
                return Err(PipeError::WouldBlock);
            }
            data.len()
        } else {
            data.len().min(room)
        };
        if n == 0 {
            return Err(PipeError::WouldBlock);
        }
        self.data.extend(data.iter().take(n));
        self.read_side = self.read_side.wrapping_add(1);
        Ok(n)
    }

    /// `poll` events of the read end: `POLLIN | POLLRDNORM` when bytes
    /// wait, `POLLHUP` when no writer is left (Linux sets `POLLIN` only
    /// for data: an empty pipe without writers is `POLLHUP` alone).
    pub fn poll_reader(&self) -> u32 {
        let mut mask = 0;
        if !self.data.is_empty() {
            mask |= general::POLLIN | general::POLLRDNORM;
        }
        if self.writers == 0 {
            mask |= general::POLLHUP;
        }
        mask
    }

    /// `poll` events of the write end: `POLLOUT | POLLWRNORM` when at least
    /// `PIPE_BUF` bytes are free, `POLLERR` when no reader is left.
    pub fn poll_writer(&self) -> u32 {
        let mut mask = 0;
        if self.room() >= PIPE_BUF.min(self.capacity) {
            mask |= general::POLLOUT | general::POLLWRNORM;
        }
        if self.readers == 0 {
            mask |= general::POLLERR;
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_side_counts_what_wakes_it() {
        let mut p = Pipe::new();
        let (r, w) = (p.reader_changes(), p.writer_changes());
        p.write(b"ab").unwrap();
        assert_eq!((p.reader_changes(), p.writer_changes()), (r + 1, w));
        let mut b = [0u8; 1];
        p.read(&mut b).unwrap();
        assert_eq!((p.reader_changes(), p.writer_changes()), (r + 1, w + 1));
        p.close_writer();
        assert_eq!(p.reader_changes(), r + 2);
        p.close_reader();
        assert_eq!(p.writer_changes(), w + 2);
    }

    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn eof_after_last_writer() {
        let mut p = Pipe::new();
        assert_eq!(p.write(b"hi"), Ok(2));
        let wake = p.close_writer();
        assert!(wake.readers && !wake.writers);
        let mut buf = [0u8; 8];
        assert_eq!(p.read(&mut buf), Ok(2));
        assert_eq!(&buf[..2], b"hi");
        assert_eq!(p.read(&mut buf), Ok(0));
        assert_eq!(p.poll_reader(), general::POLLHUP);
    }

    #[test]
    fn empty_with_writer_blocks() {
        let mut p = Pipe::new();
        let mut buf = [0u8; 8];
        assert_eq!(p.read(&mut buf), Err(PipeError::WouldBlock));
        assert_eq!(p.poll_reader(), 0);
        assert_eq!(p.poll_writer(), general::POLLOUT | general::POLLWRNORM);
    }

    #[test]
    fn epipe_without_reader() {
        let mut p = Pipe::new();
        let wake = p.close_reader();
        assert!(wake.writers && !wake.readers);
        assert_eq!(p.write(b"x"), Err(PipeError::BrokenPipe));
        assert_eq!(p.write(b""), Err(PipeError::BrokenPipe));
        assert_eq!(PipeError::BrokenPipe.errno(), 32);
        assert_ne!(p.poll_writer() & general::POLLERR, 0);
    }

    #[test]
    fn dup_counts_ends() {
        let mut p = Pipe::new();
        p.open_writer();
        assert!(!p.close_writer().readers);
        assert!(p.close_writer().readers);
        // Closing an end that is not open wakes no one.
        assert!(!p.close_writer().readers);
        assert!(p.close_reader().writers);
        assert!(p.is_unused());
    }

    #[test]
    fn small_writes_are_atomic_large_ones_partial() {
        let mut p = Pipe::new();
        let big = vec![7u8; PIPE_CAPACITY - 100];
        assert_eq!(p.write(&big), Ok(PIPE_CAPACITY - 100));
        assert_eq!(p.write(&[1u8; 101]), Err(PipeError::WouldBlock));
        assert_eq!(p.poll_writer(), 0);
        assert_eq!(p.write(&[1u8; 100]), Ok(100));
        assert_eq!(p.write(&[1u8; 1]), Err(PipeError::WouldBlock));
        let mut buf = vec![0u8; 5000];
        assert_eq!(p.read(&mut buf), Ok(5000));
        assert_eq!(p.write(&vec![2u8; 6000]), Ok(5000));
    }

    #[test]
    fn set_capacity_rounds_and_refuses() {
        let mut p = Pipe::new();
        assert_eq!(p.set_capacity(1), Ok(4096));
        assert_eq!(p.set_capacity(4097), Ok(8192));
        assert_eq!(p.set_capacity(PIPE_MAX_SIZE + 1), Err(errno::EPERM));
        assert_eq!(p.write(&[0u8; 5000]), Ok(5000));
        assert_eq!(p.set_capacity(4096), Err(errno::EBUSY));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Read(usize),
        Write(usize),
        OpenReader,
        CloseReader,
        OpenWriter,
        CloseWriter,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0usize..20_000).prop_map(Op::Read),
            3 => (0usize..=PIPE_BUF).prop_map(Op::Write),
            3 => (0usize..40_000).prop_map(Op::Write),
            1 => Just(Op::OpenReader),
            1 => Just(Op::CloseReader),
            1 => Just(Op::OpenWriter),
            1 => Just(Op::CloseWriter),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_bounded_queue(ops in proptest::collection::vec(op(), 0..200)) {
            let mut pipe = Pipe::new();
            let mut model: VecDeque<u8> = VecDeque::new();
            let (mut readers, mut writers) = (1usize, 1usize);
            let mut next: u8 = 0;
            for op in ops {
                match op {
                    Op::Read(n) => {
                        let mut buf = vec![0u8; n];
                        let got = pipe.read(&mut buf);
                        if n == 0 {
                            prop_assert_eq!(got, Ok(0));
                        } else if model.is_empty() {
                            let want = if writers == 0 { Ok(0) } else { Err(PipeError::WouldBlock) };
                            prop_assert_eq!(got, want);
                        } else {
                            let k = n.min(model.len());
                            prop_assert_eq!(got, Ok(k));
                            let want: Vec<u8> = model.drain(..k).collect();
                            prop_assert_eq!(buf.get(..k), Some(want.as_slice()));
                        }
                    }
                    Op::Write(n) => {
                        let data: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        let got = pipe.write(&data);
                        let room = PIPE_CAPACITY - model.len();
                        if readers == 0 {
                            prop_assert_eq!(got, Err(PipeError::BrokenPipe));
                        } else if n == 0 {
                            prop_assert_eq!(got, Ok(0));
                        } else if n <= PIPE_BUF {
                            if room >= n {
                                prop_assert_eq!(got, Ok(n));
                            } else {
                                prop_assert_eq!(got, Err(PipeError::WouldBlock));
                            }
                        } else if room == 0 {
                            prop_assert_eq!(got, Err(PipeError::WouldBlock));
                        } else {
                            prop_assert_eq!(got, Ok(n.min(room)));
                        }
                        if let Ok(k) = got {
                            model.extend(data.iter().take(k));
                            next = next.wrapping_add(k as u8);
                        }
                    }
                    Op::OpenReader => { pipe.open_reader(); readers += 1; }
                    Op::OpenWriter => { pipe.open_writer(); writers += 1; }
                    Op::CloseReader => {
                        let wake = pipe.close_reader();
                        prop_assert_eq!(wake.writers, readers == 1);
                        readers = readers.saturating_sub(1);
                    }
                    Op::CloseWriter => {
                        let wake = pipe.close_writer();
                        prop_assert_eq!(wake.readers, writers == 1);
                        writers = writers.saturating_sub(1);
                    }
                }
                prop_assert!(pipe.len() <= PIPE_CAPACITY);
                prop_assert_eq!(pipe.len(), model.len());
                prop_assert_eq!(pipe.poll_reader() & general::POLLIN != 0, !model.is_empty());
                prop_assert_eq!(pipe.poll_reader() & general::POLLHUP != 0, writers == 0);
                prop_assert_eq!(
                    pipe.poll_writer() & general::POLLOUT != 0,
                    PIPE_CAPACITY - model.len() >= PIPE_BUF
                );
                prop_assert_eq!(pipe.poll_writer() & general::POLLERR != 0, readers == 0);
            }
        }
    }
}
