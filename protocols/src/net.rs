//! The network client protocol: Ethernet frames in inline packet buffers
//! over two rings, `tx` (client to driver) and `rx` (driver to client),
//! each slot one [`Packet`] of 2048 bytes (the manifest's `slot_bytes`).
//! Any network driver serves it, and a client never depends on which.
//!
//! The client sends frames as [`kind::FRAME`] entries on `tx`; the driver
//! delivers received frames as [`kind::FRAME`] entries on `rx`. The driver
//! trusts nothing in a `tx` entry: [`check`] refuses an unknown kind and a
//! length outside an Ethernet frame, and the client gets a
//! [`kind::TX_ERROR`] entry on `rx` carrying the entry's `token` and a
//! [`Status`]; the driver goes on serving. The driver's first `rx` entry
//! is [`kind::ADDRESS`], the interface's MAC address; a client asks for it
//! again with an [`kind::ADDRESS`] entry on `tx`.

/// Slots of each network ring (the manifest's `slots`; `slot_bytes = 2048`).
pub const RING_SLOTS: usize = 32;
/// Bytes of a packet buffer.
pub const DATA_BYTES: usize = 2032;
/// The shortest frame: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// The longest frame: an Ethernet header and a 1500-byte payload (no FCS).
pub const MAX_FRAME: usize = 1514;

/// What an entry is.
pub mod kind {
    /// `tx`: a frame to send; `rx`: a frame received (`token` counts the
    /// frames the driver delivered).
    pub const FRAME: u16 = 1;
    /// `rx` only: the `tx` entry with this `token` was not sent; `status`
    /// says why.
    pub const TX_ERROR: u16 = 2;
    /// `rx`: the interface's MAC address (`len` 6), the source address of
    /// the client's frames; the driver's first entry, and its answer to a
    /// `tx` entry of this kind (a client that restarted asks again).
    pub const ADDRESS: u16 = 3;
}

/// One ring slot: a frame of `len` bytes at the start of `data`. Aligned
/// to 8 so that the ring copies it in 8-byte words, not 4-byte ones: the
/// copy in and out of a slot is a large part of a frame's cost.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Packet {
    /// A [`kind`].
    pub kind: u16,
    pub len: u16,
    /// Chosen by the client for `tx` entries and returned in a
    /// [`kind::TX_ERROR`]; for received frames, the driver's count.
    pub token: u32,
    /// A [`Status`] code ([`kind::TX_ERROR`] only).
    pub status: u32,
    pub _reserved: u32,
    pub data: [u8; DATA_BYTES],
}

const _: () = assert!(core::mem::size_of::<Packet>() == 2048);
const _: () = assert!(core::mem::align_of::<Packet>() == 8);

/// Why a `tx` entry was refused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    /// Not a kind a client may send.
    BadKind = 1,
    /// Shorter than an Ethernet header (an empty entry among them).
    TooShort = 2,
    /// Longer than [`MAX_FRAME`] (or than the buffer).
    TooLong = 3,
    /// The device refused the frame.
    DeviceError = 4,
}

impl Status {
    pub fn from_code(c: u32) -> Option<Status> {
        Some(match c {
            0 => Status::Ok,
            1 => Status::BadKind,
            2 => Status::TooShort,
            3 => Status::TooLong,
            4 => Status::DeviceError,
            _ => return None,
        })
    }
}

/// Bytes of a packet before its `data`: what a ring must copy to read
/// `kind` and `len`.
pub const HEAD_BYTES: usize = core::mem::offset_of!(Packet, data);

impl Packet {
    /// An entry of kind 0 and nothing else, to build entries in.
    pub fn empty() -> Packet {
        bytemuck::Zeroable::zeroed()
    }

    /// Makes this a [`kind::FRAME`] entry holding `frame`, in place: the
    /// bytes of `data` past the frame keep what they held (sent with
    /// [`Packet::used_bytes`], only the frame is copied). `None`, and the
    /// packet unchanged, if it does not fit.
    pub fn set_frame(&mut self, token: u32, frame: &[u8]) -> Option<()> {
        let len = u16::try_from(frame.len()).ok()?;
        self.data.get_mut(..frame.len())?.copy_from_slice(frame);
        self.kind = kind::FRAME;
        self.len = len;
        self.token = token;
        self.status = 0;
        Some(())
    }

    /// The bytes of the packet that carry something: the head and `len`
    /// bytes of `data` (clamped to the buffer). What a ring need copy.
    pub fn used_bytes(&self) -> usize {
        HEAD_BYTES + usize::from(self.len).min(DATA_BYTES)
    }

    /// A [`kind::FRAME`] entry holding `frame`; `None` if it does not fit.
    pub fn frame(token: u32, frame: &[u8]) -> Option<Packet> {
        let mut p: Packet = bytemuck::Zeroable::zeroed();
        p.set_frame(token, frame)?;
        Some(p)
    }

    /// The driver's answer to a refused `tx` entry.
    pub fn error(token: u32, status: Status) -> Packet {
        let mut p: Packet = bytemuck::Zeroable::zeroed();
        p.kind = kind::TX_ERROR;
        p.token = token;
        p.status = status as u32;
        p
    }

    /// A client's [`kind::ADDRESS`] entry on `tx`: asks the driver to send
    /// its address again (a client that restarted missed the first).
    pub fn ask_address() -> Packet {
        let mut p: Packet = bytemuck::Zeroable::zeroed();
        p.kind = kind::ADDRESS;
        p
    }

    /// The driver's [`kind::ADDRESS`] entry.
    pub fn address(mac: [u8; 6]) -> Packet {
        let mut p = Packet::frame(0, &mac).unwrap_or_else(bytemuck::Zeroable::zeroed);
        p.kind = kind::ADDRESS;
        p
    }

    /// The entry's bytes: `len` clamped to the buffer (the other side
    /// wrote `len`).
    pub fn bytes(&self) -> &[u8] {
        let n = usize::from(self.len).min(DATA_BYTES);
        self.data.get(..n).unwrap_or(&[])
    }
}

/// Checks a `tx` entry from a client; returns the frame to send.
pub fn check(p: &Packet) -> Result<&[u8], Status> {
    if p.kind != kind::FRAME {
        return Err(Status::BadKind);
    }
    let len = usize::from(p.len);
    if len < MIN_FRAME {
        return Err(Status::TooShort);
    }
    if len > MAX_FRAME {
        return Err(Status::TooLong);
    }
    p.data.get(..len).ok_or(Status::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: u16, len: u16) -> Packet {
        let mut p: Packet = bytemuck::Zeroable::zeroed();
        p.kind = kind;
        p.len = len;
        p.token = 9;
        for (i, b) in p.data.iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    #[test]
    fn entries_are_checked_for_kind_and_length() {
        let ok = entry(kind::FRAME, 60);
        assert_eq!(check(&ok).map(<[u8]>::len), Ok(60));
        assert_eq!(check(&ok).ok().and_then(|f| f.get(59).copied()), Some(59));
        assert_eq!(check(&entry(kind::FRAME, 14)).map(<[u8]>::len), Ok(14));
        assert_eq!(check(&entry(kind::FRAME, 1514)).map(<[u8]>::len), Ok(1514));
        assert_eq!(check(&entry(kind::FRAME, 0)), Err(Status::TooShort));
        assert_eq!(check(&entry(kind::FRAME, 13)), Err(Status::TooShort));
        assert_eq!(check(&entry(kind::FRAME, 1515)), Err(Status::TooLong));
        assert_eq!(check(&entry(kind::FRAME, 2048)), Err(Status::TooLong));
        assert_eq!(check(&entry(kind::FRAME, u16::MAX)), Err(Status::TooLong));
        // A client may not send what only the driver sends, nor anything else.
        assert_eq!(check(&entry(kind::TX_ERROR, 60)), Err(Status::BadKind));
        assert_eq!(check(&entry(0, 60)), Err(Status::BadKind));
        assert_eq!(check(&entry(0x7777, 60)), Err(Status::BadKind));
    }

    #[test]
    fn frames_and_errors_are_built_and_read_back() {
        let p = Packet::frame(5, &[1, 2, 3]).unwrap_or_else(|| entry(0, 0));
        assert_eq!(
            (p.kind, p.len, p.token, p.bytes()),
            (kind::FRAME, 3, 5, &[1u8, 2, 3][..])
        );
        assert!(Packet::frame(1, &[0; DATA_BYTES + 1]).is_none());
        let a = Packet::address([2, 0, 0, 0, 0, 1]);
        assert_eq!(
            (a.kind, a.bytes()),
            (kind::ADDRESS, &[2u8, 0, 0, 0, 0, 1][..])
        );
        assert_eq!(check(&a), Err(Status::BadKind), "a client may not send it");
        let e = Packet::error(7, Status::TooLong);
        assert_eq!(
            (e.kind, e.token, Status::from_code(e.status)),
            (kind::TX_ERROR, 7, Some(Status::TooLong))
        );
        // A length beyond the buffer reads as the whole buffer, never past it.
        assert_eq!(entry(kind::FRAME, u16::MAX).bytes().len(), DATA_BYTES);
        assert_eq!(entry(kind::FRAME, u16::MAX).used_bytes(), 2048);
    }

    #[test]
    fn a_frame_set_in_place_leaves_the_rest_of_the_buffer() {
        let mut p = Packet::frame(1, &[9; 100]).unwrap_or_else(|| entry(0, 0));
        p.status = 3;
        assert_eq!(p.set_frame(2, &[1, 2, 3]), Some(()));
        assert_eq!(
            (p.kind, p.len, p.token, p.status, p.bytes()),
            (kind::FRAME, 3, 2, 0, &[1u8, 2, 3][..])
        );
        assert_eq!(
            (p.data[3], p.data[99], p.used_bytes()),
            (9, 9, HEAD_BYTES + 3)
        );
        assert_eq!(HEAD_BYTES, 16);
        // Too long: unchanged.
        assert_eq!(p.set_frame(4, &[0; DATA_BYTES + 1]), None);
        assert_eq!((p.len, p.token), (3, 2));
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [
            Status::Ok,
            Status::BadKind,
            Status::TooShort,
            Status::TooLong,
            Status::DeviceError,
        ] {
            assert_eq!(Status::from_code(s as u32), Some(s));
        }
        assert_eq!(Status::from_code(99), None);
    }
}
