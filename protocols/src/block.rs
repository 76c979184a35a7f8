//! The block client protocol: requests on a ring from the client to the
//! driver (`req`), responses on a ring back (`resp`), and the data in a
//! memory channel both map (`data`). A request names its bytes in the data
//! region by offset and length; any block driver serves it, and a client
//! never depends on which.
//!
//! The driver trusts nothing in a request: [`check`] refuses an unknown
//! operation, a range beyond the disk, and a buffer outside the data region
//! (or empty, or larger than one transfer), each with its own [`Status`];
//! the driver answers and goes on serving. Lengths are in sectors; offsets
//! into the data region need no alignment.

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Slots of each block ring (the manifest's `slots`; `slot_bytes = 32`).
pub const RING_SLOTS: usize = 64;

/// What a request asks.
pub mod op {
    /// Read `sectors` from `sector` into the data region at `offset`.
    pub const READ: u32 = 1;
    /// Write `sectors` at `sector` from the data region at `offset`.
    pub const WRITE: u32 = 2;
    /// Make earlier writes durable.
    pub const FLUSH: u32 = 3;
    /// The disk's size: the response's `value` is its sectors.
    pub const INFO: u32 = 4;
}

/// A request, client to driver.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Request {
    /// Chosen by the client; returned in the response.
    pub tag: u64,
    pub sector: u64,
    pub op: u32,
    pub sectors: u32,
    /// Where the data is in the data region, in bytes.
    pub offset: u64,
}

/// A response, driver to client.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Response {
    pub tag: u64,
    /// A [`Status`] code.
    pub status: u32,
    pub _pad: u32,
    /// For `INFO`, the disk's sectors.
    pub value: u64,
    pub _pad2: u64,
}

const _: () = assert!(core::mem::size_of::<Request>() == 32);
const _: () = assert!(core::mem::size_of::<Response>() == 32);

/// How a request ended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    /// Not an operation of the protocol.
    BadOp = 1,
    /// The sectors are not all on the disk.
    OutOfRange = 2,
    /// The buffer is not inside the data region, or is empty, or is larger
    /// than the driver takes in one request.
    BadBuffer = 3,
    /// The device reported an error.
    IoError = 4,
}

impl Status {
    pub fn from_code(c: u32) -> Option<Status> {
        Some(match c {
            0 => Status::Ok,
            1 => Status::BadOp,
            2 => Status::OutOfRange,
            3 => Status::BadBuffer,
            4 => Status::IoError,
            _ => return None,
        })
    }
}

impl Response {
    pub fn new(tag: u64, status: Status, value: u64) -> Response {
        Response {
            tag,
            status: status as u32,
            value,
            ..Response::default()
        }
    }
}

/// A request that passed [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Read {
        sector: u64,
        offset: usize,
        len: usize,
    },
    Write {
        sector: u64,
        offset: usize,
        len: usize,
    },
    Flush,
    Info,
}

/// Checks a request against a disk of `capacity` sectors, a data region of
/// `region` bytes, and the driver's largest transfer of `max_bytes`.
pub fn check(r: &Request, capacity: u64, region: u64, max_bytes: u64) -> Result<Checked, Status> {
    let transfer = |r: &Request| -> Result<(u64, usize, usize), Status> {
        let len = u64::from(r.sectors) * SECTOR;
        let end = r.offset.checked_add(len).ok_or(Status::BadBuffer)?;
        if len == 0 || len > max_bytes || end > region {
            return Err(Status::BadBuffer);
        }
        let last = r.sector.checked_add(u64::from(r.sectors));
        if last.is_none_or(|l| l > capacity) {
            return Err(Status::OutOfRange);
        }
        let offset = usize::try_from(r.offset).map_err(|_| Status::BadBuffer)?;
        let len = usize::try_from(len).map_err(|_| Status::BadBuffer)?;
        Ok((r.sector, offset, len))
    };
    match r.op {
        op::READ => transfer(r).map(|(sector, offset, len)| Checked::Read {
            sector,
            offset,
            len,
        }),
        op::WRITE => transfer(r).map(|(sector, offset, len)| Checked::Write {
            sector,
            offset,
            len,
        }),
        op::FLUSH => Ok(Checked::Flush),
        op::INFO => Ok(Checked::Info),
        _ => Err(Status::BadOp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: u32, sector: u64, sectors: u32, offset: u64) -> Request {
        Request {
            tag: 7,
            sector,
            op,
            sectors,
            offset,
        }
    }

    #[test]
    fn requests_are_checked_against_disk_region_and_transfer_size() {
        let (cap, region, max) = (2048, 1 << 20, 64 * 1024);
        assert_eq!(
            check(&req(op::READ, 0, 128, 0), cap, region, max),
            Ok(Checked::Read {
                sector: 0,
                offset: 0,
                len: 65536
            })
        );
        assert_eq!(
            check(&req(op::WRITE, 2047, 1, 4096), cap, region, max),
            Ok(Checked::Write {
                sector: 2047,
                offset: 4096,
                len: 512
            })
        );
        // One sector past the end, and a sector number that wraps.
        assert_eq!(
            check(&req(op::READ, 2047, 2, 0), cap, region, max),
            Err(Status::OutOfRange)
        );
        assert_eq!(
            check(&req(op::READ, u64::MAX, 2, 0), cap, region, max),
            Err(Status::OutOfRange)
        );
        // Buffers outside the region, wrapping, empty or too large.
        assert_eq!(
            check(&req(op::READ, 0, 1, region - 256), cap, region, max),
            Err(Status::BadBuffer)
        );
        assert_eq!(
            check(&req(op::READ, 0, 1, u64::MAX - 100), cap, region, max),
            Err(Status::BadBuffer)
        );
        assert_eq!(
            check(&req(op::READ, 0, 0, 0), cap, region, max),
            Err(Status::BadBuffer)
        );
        assert_eq!(
            check(&req(op::READ, 0, 129, 0), cap, region, max),
            Err(Status::BadBuffer)
        );
        assert_eq!(
            check(&req(9, 0, 1, 0), cap, region, max),
            Err(Status::BadOp)
        );
        assert_eq!(
            check(&req(op::INFO, 0, 0, 0), cap, region, max),
            Ok(Checked::Info)
        );
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [
            Status::Ok,
            Status::BadOp,
            Status::OutOfRange,
            Status::BadBuffer,
            Status::IoError,
        ] {
            assert_eq!(Status::from_code(s as u32), Some(s));
        }
        assert_eq!(Status::from_code(99), None);
    }
}
