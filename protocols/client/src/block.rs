//! The block protocol's client: one request at a time on the `req` ring,
//! its response from `resp`, the data in the `data` region.

use kaal_protocols::block::{op, Request, Response, Status, RING_SLOTS};
use kaal_rt::{Env, RingRx, RingTx, SharedRegion};

/// Why a block call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The manifest binds no such channel (the local name).
    NotGranted(&'static str),
    /// A ring shared with the driver is corrupt.
    Ring,
    /// Too many responses carried other requests' tags.
    WrongTag,
    /// The driver refused the request.
    Status(Option<Status>),
}

/// A client of one block driver.
#[derive(Debug)]
pub struct BlockClient {
    req: RingTx<Request, RING_SLOTS>,
    resp: RingRx<Response, RING_SLOTS>,
    /// The region requests name their bytes in.
    pub data: SharedRegion,
    tag: u64,
}

impl BlockClient {
    /// The client on the channels bound to local names `req`, `resp` and
    /// `data`.
    pub fn new(env: &Env) -> Result<BlockClient, BlockError> {
        Ok(BlockClient {
            req: env
                .ring_tx("req")
                .map_err(|_| BlockError::NotGranted("req"))?,
            resp: env
                .ring_rx("resp")
                .map_err(|_| BlockError::NotGranted("resp"))?,
            data: env
                .shared_region("data")
                .map_err(|_| BlockError::NotGranted("data"))?,
            tag: 0,
        })
    }

    /// Sends one request and waits for its response, whatever its status;
    /// responses to earlier requests that come first are dropped.
    pub fn call(
        &mut self,
        op: u32,
        sector: u64,
        sectors: u32,
        offset: u64,
    ) -> Result<Response, BlockError> {
        let tag = self.submit(op, sector, sectors, offset)?;
        // A restarted client's first calls can meet the answers to its
        // previous incarnation's requests (tags restart at 1): those are
        // dropped. The driver answers in order, so at most a ring of
        // requests and a ring of answers come first; beyond that the
        // driver is not following the protocol.
        for _ in 0..=2 * RING_SLOTS {
            let got = self.resp.recv().map_err(|_| BlockError::Ring)?;
            self.resp.release();
            if got.tag == tag {
                return Ok(got);
            }
        }
        Err(BlockError::WrongTag)
    }

    /// Sends one request without waiting for its response; its tag. Not
    /// to be mixed with [`BlockClient::call`] while responses are due.
    pub fn submit(
        &mut self,
        op: u32,
        sector: u64,
        sectors: u32,
        offset: u64,
    ) -> Result<u64, BlockError> {
        self.tag += 1;
        let r = Request {
            tag: self.tag,
            sector,
            op,
            sectors,
            offset,
        };
        self.req.send_all(&[r]).map_err(|_| BlockError::Ring)?;
        Ok(self.tag)
    }

    /// The next response, if one arrived; does not wait.
    pub fn poll(&mut self) -> Result<Option<Response>, BlockError> {
        let got = self.resp.ring.pop().map_err(|_| BlockError::Ring)?;
        self.resp.release();
        Ok(got)
    }

    /// The next response, waiting for it.
    pub fn wait(&mut self) -> Result<Response, BlockError> {
        let got = self.resp.recv().map_err(|_| BlockError::Ring)?;
        self.resp.release();
        Ok(got)
    }

    /// Asks the driver to signal this component's notification at its next
    /// response; `true` if one is already there (then no signal comes).
    pub fn arm(&mut self) -> Result<bool, BlockError> {
        self.resp.ring.prepare_sleep().map_err(|_| BlockError::Ring)
    }

    /// [`BlockClient::call`], with any status but `Ok` an error.
    pub fn ok(
        &mut self,
        op: u32,
        sector: u64,
        sectors: u32,
        offset: u64,
    ) -> Result<Response, BlockError> {
        let r = self.call(op, sector, sectors, offset)?;
        match Status::from_code(r.status) {
            Some(Status::Ok) => Ok(r),
            other => Err(BlockError::Status(other)),
        }
    }

    /// The disk's size in sectors.
    pub fn capacity(&mut self) -> Result<u64, BlockError> {
        Ok(self.ok(op::INFO, 0, 0, 0)?.value)
    }

    /// Reads `sectors` from `sector` into the data region at `offset`.
    pub fn read(&mut self, sector: u64, sectors: u32, offset: u64) -> Result<(), BlockError> {
        self.ok(op::READ, sector, sectors, offset).map(|_| ())
    }
}

impl From<BlockError> for &'static str {
    /// What went wrong, for a component's `main` that reports a text.
    fn from(e: BlockError) -> &'static str {
        match e {
            BlockError::NotGranted(_) => "a block channel is not granted",
            BlockError::Ring => "a block ring is corrupt",
            BlockError::WrongTag => "too many responses for other requests",
            BlockError::Status(_) => "the block driver refused a request",
        }
    }
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text: &'static str = (*self).into();
        match self {
            BlockError::NotGranted(local) => write!(f, "{text} (`{local}`)"),
            _ => f.write_str(text),
        }
    }
}
