//! The driver side of the serial protocol ([`kaal_protocols::serial`]):
//! bytes collected into chunks for the client's ring, bytes handed out of
//! the client's chunks, and the root task's console lines.

use kaal_protocols::serial::{Chunk, CHUNK_BYTES};
use kaal_ring::{Consumer, Notify, Producer, RingError};

use crate::event_loop::Announce;

/// Collects bytes into a chunk for a ring (a driver's receive side).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteSink {
    chunk: Chunk,
}

impl ByteSink {
    pub fn is_empty(&self) -> bool {
        self.chunk.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.chunk.len as usize >= CHUNK_BYTES
    }

    /// Adds a byte; `false` (and nothing added) if the chunk is full.
    pub fn push(&mut self, b: u8) -> bool {
        let n = self.chunk.len as usize;
        match self.chunk.data.get_mut(n) {
            Some(slot) => {
                *slot = b;
                self.chunk.len += 1;
                true
            }
            None => false,
        }
    }

    /// Hands the collected bytes to the ring and signals the peer if it
    /// asked; `Ok(false)` if the ring is full (the bytes stay here).
    pub fn flush<const N: usize>(
        &mut self,
        ring: &mut Producer<'_, Chunk, N>,
        peer: &impl Notify,
    ) -> Result<bool, RingError> {
        if self.is_empty() {
            return Ok(true);
        }
        match ring.push(self.chunk) {
            Ok(()) => {
                self.chunk = Chunk::default();
                if ring.publish() {
                    peer.notify();
                }
                Ok(true)
            }
            Err(RingError::Full) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Hands out the bytes of a ring's chunks one at a time (a driver's
/// transmit side).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteSource {
    chunk: Chunk,
    at: usize,
}

impl ByteSource {
    /// Whether bytes of a chunk already taken from the ring remain.
    pub fn has_pending(&self) -> bool {
        self.at < self.chunk.bytes().len()
    }

    /// Whether bytes remain, taken or still in `ring`.
    pub fn has_more<const N: usize>(
        &self,
        ring: &mut Consumer<'_, Chunk, N>,
    ) -> Result<bool, RingError> {
        Ok(self.has_pending() || ring.available()? > 0)
    }

    /// The next byte, taking chunks from the ring as needed; `None` when
    /// the ring is empty. Release the ring's slots after a batch.
    pub fn next<const N: usize>(
        &mut self,
        ring: &mut Consumer<'_, Chunk, N>,
    ) -> Result<Option<u8>, RingError> {
        while !self.has_pending() {
            match ring.pop()? {
                Some(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                None => return Ok(None),
            }
        }
        let b = self.chunk.bytes().get(self.at).copied();
        self.at += 1;
        Ok(b)
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use kaal_ring::SharedRing;

    struct NoSignal;
    impl Notify for NoSignal {
        fn notify(&self) {}
    }

    #[test]
    fn bytes_cross_a_ring_in_chunks_and_a_full_ring_keeps_them() {
        let ring: SharedRing<Chunk, 2> = SharedRing::new();
        let (mut tx, mut rx) = ring.split();
        let mut sink = ByteSink::default();
        let mut sent = 0u32;
        for round in 0..3 {
            while sink.push((sent % 251) as u8) {
                sent += 1;
            }
            let flushed = sink.flush(&mut tx, &NoSignal).unwrap();
            assert_eq!(flushed, round < 2, "the third chunk finds the ring full");
        }
        assert!(sink.is_full(), "a full ring leaves the bytes in the sink");
        let mut src = ByteSource::default();
        let mut got = 0u32;
        while let Some(b) = src.next(&mut rx).unwrap() {
            assert_eq!(u32::from(b), got % 251);
            got += 1;
        }
        assert_eq!(got, 2 * CHUNK_BYTES as u32);
    }
}

/// The console lines a serial driver prints for the root task (the
/// manifest's `console`), ahead of its client's bytes but never inside a
/// client chunk already half sent. Empty when the driver is not the
/// console. `S` signals the root task, which waits for the ring to drain
/// before the system ends.
#[derive(Debug)]
pub struct ConsoleLines<'a, const N: usize, S>(Option<(Consumer<'a, Chunk, N>, ByteSource, S)>);

/// The root task's console ring did not follow the protocol.
const CONSOLE: crate::DriverError = crate::DriverError::Device("the console ring is corrupt");

impl<'a, const N: usize, S: Notify> ConsoleLines<'a, N, S> {
    pub fn new(ring: Option<(Consumer<'a, Chunk, N>, S)>) -> Self {
        ConsoleLines(ring.map(|(r, s)| (r, ByteSource::default(), s)))
    }

    /// The next console byte, unless `client`'s chunk is half sent.
    pub fn next(&mut self, client: &ByteSource) -> Result<Option<u8>, crate::DriverError> {
        match &mut self.0 {
            Some((ring, src, _)) if src.has_pending() || !client.has_pending() => {
                src.next(ring).map_err(|_| CONSOLE)
            }
            _ => Ok(None),
        }
    }

    /// Whether console bytes remain.
    pub fn has_more(&mut self) -> Result<bool, crate::DriverError> {
        match &mut self.0 {
            Some((ring, src, _)) => src.has_more(ring).map_err(|_| CONSOLE),
            None => Ok(false),
        }
    }

    /// Gives sent chunks' slots back, but not while a chunk is half sent:
    /// the root task takes an empty ring to mean every line is out.
    pub fn release(&mut self) {
        if let Some((ring, src, root)) = &mut self.0 {
            if !src.has_pending() && ring.release() {
                root.notify();
            }
        }
    }
}

/// Wake when console lines arrive (none ever do when the driver is not the
/// console).
impl<const N: usize, S: Notify> Announce for ConsoleLines<'_, N, S> {
    fn announce(&mut self) -> Result<bool, crate::DriverError> {
        match &mut self.0 {
            Some((ring, _, _)) => ring.announce().map_err(|e| match e {
                crate::DriverError::Ring(_) => CONSOLE,
                e => e,
            }),
            None => Ok(false),
        }
    }

    fn withdraw(&mut self) {
        if let Some((ring, _, _)) = &mut self.0 {
            ring.withdraw();
        }
    }
}
