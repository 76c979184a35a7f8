//! The serial client protocol: two byte streams over shared rings of
//! [`Chunk`]s, `tx` from the client to the driver and `rx` from the driver
//! to the client. Any serial driver serves it; a client never depends on
//! which.
//!
//! Each side treats the other's chunks as untrusted: a length beyond the
//! chunk is clamped, never followed.

/// Bytes one chunk carries.
pub const CHUNK_BYTES: usize = 60;
/// Slots of each serial ring (the manifest's `slots`; `slot_bytes = 64`).
pub const RING_SLOTS: usize = 64;

/// Up to [`CHUNK_BYTES`] bytes of a stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Chunk {
    pub len: u32,
    pub data: [u8; CHUNK_BYTES],
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk {
            len: 0,
            data: [0; CHUNK_BYTES],
        }
    }
}

impl Chunk {
    /// A chunk of the first bytes of `bytes`; returns it and how many it took.
    pub fn from_bytes(bytes: &[u8]) -> (Chunk, usize) {
        let mut c = Chunk::default();
        let n = bytes.len().min(CHUNK_BYTES);
        if let (Some(dst), Some(src)) = (c.data.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        c.len = n as u32;
        (c, n)
    }

    /// The bytes it carries (a length beyond the chunk is clamped).
    pub fn bytes(&self) -> &[u8] {
        let n = (self.len as usize).min(CHUNK_BYTES);
        self.data.get(..n).unwrap_or(&[])
    }
}

const _: () = assert!(core::mem::size_of::<Chunk>() == 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_at_most_their_size_and_clamp_hostile_lengths() {
        let (c, n) = Chunk::from_bytes(&[7u8; 100]);
        assert_eq!((n, c.bytes().len()), (CHUNK_BYTES, CHUNK_BYTES));
        let (c, n) = Chunk::from_bytes(b"hi");
        assert_eq!((n, c.bytes()), (2, &b"hi"[..]));
        let hostile = Chunk {
            len: u32::MAX,
            data: [1; CHUNK_BYTES],
        };
        assert_eq!(hostile.bytes().len(), CHUNK_BYTES);
    }
}
