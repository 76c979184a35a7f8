//! The console protocol: the root task hands the components' console lines
//! (see [`crate::supervisor::CONSOLE`]) to the serial driver the manifest
//! names as `console`, on one ring of serial chunks that the driver knows
//! by the local name [`LOCAL_NAME`]. The driver prints them between its
//! client's chunks and releases their slots only once they are out, so an
//! empty ring tells the root task every line has been printed.

pub use crate::serial::{Chunk, CHUNK_BYTES, RING_SLOTS};

/// The console driver's local name for the ring (reserved in its manifest
/// entry).
pub const LOCAL_NAME: &str = "console";
