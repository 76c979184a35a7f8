//! The serial protocol's client: bytes from the driver on `rx`, bytes to it
//! on `tx`, in chunks.

use kaal_protocols::serial::{Chunk, CHUNK_BYTES, RING_SLOTS};
use kaal_rt::{Env, RingRx, RingTx};

/// Why a serial call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialError {
    /// The manifest binds no such ring (the local name).
    NotGranted(&'static str),
    /// A ring shared with the driver is corrupt.
    Ring,
}

/// A client of one serial driver: its two rings.
#[derive(Debug)]
pub struct SerialClient {
    /// From the driver.
    pub rx: RingRx<Chunk, RING_SLOTS>,
    /// To the driver.
    pub tx: RingTx<Chunk, RING_SLOTS>,
}

impl SerialClient {
    /// The client on the rings bound to local names `rx` and `tx`.
    pub fn new(env: &Env) -> Result<SerialClient, SerialError> {
        Ok(SerialClient {
            rx: env
                .ring_rx("rx")
                .map_err(|_| SerialError::NotGranted("rx"))?,
            tx: env
                .ring_tx("tx")
                .map_err(|_| SerialError::NotGranted("tx"))?,
        })
    }

    /// The next chunk from the driver, waiting for one; its slot is given
    /// back at once, so the driver may go on receiving.
    pub fn recv(&mut self) -> Result<Chunk, SerialError> {
        let chunk = self.rx.recv().map_err(|_| SerialError::Ring)?;
        self.rx.release();
        Ok(chunk)
    }

    /// Sends `bytes`, waiting while the ring is full.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), SerialError> {
        // A ring's worth of chunks at a time: one publish (and at most one
        // wake-up of the driver) per batch, not per chunk.
        let mut batch = [Chunk::default(); RING_SLOTS];
        for part in bytes.chunks(CHUNK_BYTES * RING_SLOTS) {
            let mut n = 0;
            for (slot, piece) in batch.iter_mut().zip(part.chunks(CHUNK_BYTES)) {
                *slot = Chunk::from_bytes(piece).0;
                n += 1;
            }
            let chunks = batch.get(..n).unwrap_or(&[]);
            self.tx.send_all(chunks).map_err(|_| SerialError::Ring)?;
        }
        Ok(())
    }
}

impl From<SerialError> for &'static str {
    /// What went wrong, for a component's `main` that reports a text.
    fn from(e: SerialError) -> &'static str {
        match e {
            SerialError::NotGranted(_) => "a serial ring is not granted",
            SerialError::Ring => "a serial ring is corrupt",
        }
    }
}

impl core::fmt::Display for SerialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text: &'static str = (*self).into();
        match self {
            SerialError::NotGranted(local) => write!(f, "{text} (`{local}`)"),
            SerialError::Ring => f.write_str(text),
        }
    }
}
