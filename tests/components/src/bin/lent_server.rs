//! Serves the file protocol's interface on `fs` to check the regions its
//! clients lend: `write(round, range)` checks that the client's region
//! holds that client's pattern for the round, `read(round, range)` fills
//! it with the server's pattern for that client and round. Every other
//! method is refused. At start it checks it has one region per client,
//! each its own memory.
#![no_std]
#![no_main]

use kaal_protocols::file::{file_dispatch, Attrs, File, FileStat, FsError};
use kaal_rpc::{Badge, Lent};
use kaal_rt::{println, Env, SharedRegion};
use kaal_test_components::lent::{client_pattern, server_pattern, CLIENTS, REGION_BYTES};

struct Server {
    /// Each client's badge and region.
    regions: [Option<(Badge, SharedRegion)>; CLIENTS],
}

impl Server {
    fn region(&self, badge: Badge) -> Result<&SharedRegion, FsError> {
        self.regions
            .iter()
            .flatten()
            .find(|(b, _)| *b == badge)
            .map(|(_, r)| r)
            .ok_or(FsError::BadRegion)
    }
}

/// Compares the range with `pattern`, a page at a time.
fn holds(region: &SharedRegion, range: Lent, pattern: impl Fn(u64) -> u8) -> Result<bool, FsError> {
    let mut page = [0u8; 4096];
    let mut at = range.offset();
    let end = range.offset() + range.len();
    while at < end {
        let n = usize::try_from((end - at).min(4096)).map_err(|_| FsError::Invalid)?;
        let buf = page.get_mut(..n).ok_or(FsError::Invalid)?;
        region.read(at, buf).map_err(|_| FsError::BadRegion)?;
        if buf.iter().zip(at..).any(|(&b, i)| b != pattern(i)) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

impl File for Server {
    fn lent_size(&self, badge: Badge) -> u64 {
        self.region(badge).map_or(0, SharedRegion::len)
    }

    fn write(&mut self, badge: Badge, round: u32, from: Lent) -> Result<u64, FsError> {
        let region = self.region(badge)?;
        if !holds(region, from, |i| client_pattern(badge, round, i))? {
            println!("lent_server: client {badge}'s region does not hold its pattern");
            return Err(FsError::Corrupt);
        }
        Ok(from.len())
    }

    fn read(&mut self, badge: Badge, round: u32, into: Lent) -> Result<u64, FsError> {
        let region = self.region(badge)?;
        let mut page = [0u8; 4096];
        let mut at = into.offset();
        let end = into.offset() + into.len();
        while at < end {
            let n = usize::try_from((end - at).min(4096)).map_err(|_| FsError::Invalid)?;
            let buf = page.get_mut(..n).ok_or(FsError::Invalid)?;
            for (b, i) in buf.iter_mut().zip(at..) {
                *b = server_pattern(badge, round, i);
            }
            region.write(at, buf).map_err(|_| FsError::BadRegion)?;
            at += n as u64;
        }
        Ok(into.len())
    }

    fn open(&mut self, _: Badge, _: &[u8], _: u32, _: u32) -> Result<u32, FsError> {
        Err(FsError::Invalid)
    }
    fn close(&mut self, _: Badge, _: u32) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn seek(&mut self, _: Badge, _: u32, _: u64, _: u32) -> Result<u64, FsError> {
        Err(FsError::Invalid)
    }
    fn stat(&mut self, _: Badge, _: &[u8]) -> Result<FileStat, FsError> {
        Err(FsError::Invalid)
    }
    fn lstat(&mut self, _: Badge, _: &[u8]) -> Result<FileStat, FsError> {
        Err(FsError::Invalid)
    }
    fn fstat(&mut self, _: Badge, _: u32) -> Result<FileStat, FsError> {
        Err(FsError::Invalid)
    }
    fn readdir(&mut self, _: Badge, _: u32, _: Lent) -> Result<u64, FsError> {
        Err(FsError::Invalid)
    }
    fn mkdir(&mut self, _: Badge, _: &[u8], _: u32) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn rmdir(&mut self, _: Badge, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn unlink(&mut self, _: Badge, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn rename(&mut self, _: Badge, _: &[u8], _: &[u8]) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn symlink(&mut self, _: Badge, _: &[u8], _: &[u8]) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn link(&mut self, _: Badge, _: &[u8], _: &[u8]) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn readlink(&mut self, _: Badge, _: &[u8], _: Lent) -> Result<u64, FsError> {
        Err(FsError::Invalid)
    }
    fn truncate(&mut self, _: Badge, _: u32, _: u64) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn sync(&mut self, _: Badge) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn setattr(&mut self, _: Badge, _: &[u8], _: u32, _: Attrs) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
    fn fsetattr(&mut self, _: Badge, _: u32, _: Attrs) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }

    fn begin(&mut self, _: Badge) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }
}

fn main(env: &Env) -> Result<(), &'static str> {
    let ep = env.server("fs").map_err(|_| "no `fs` endpoint")?;
    if env.lent_region("fs").is_ok() {
        return Err("a server has no lent region of its own");
    }
    let mut server = Server {
        regions: [None, None],
    };
    let mut n = 0;
    for (badge, region) in env.client_regions("fs").map_err(|_| "no client regions")? {
        if region.len() != REGION_BYTES {
            return Err("a client region of the wrong size");
        }
        let slot = server
            .regions
            .get_mut(n)
            .ok_or("more regions than clients")?;
        *slot = Some((badge, region));
        n += 1;
    }
    // Each region is its own memory: a mark in one shows in no other. (The
    // clients touch their regions only after a first call, which this
    // server answers only once it serves.)
    for (badge, region) in server.regions.iter().flatten() {
        region
            .write(0, &badge.to_le_bytes())
            .map_err(|_| "region write")?;
    }
    for (badge, region) in server.regions.iter().flatten() {
        let mut word = [0u8; 8];
        region.read(0, &mut word).map_err(|_| "region read")?;
        if u64::from_le_bytes(word) != *badge {
            return Err("two client regions are the same memory");
        }
    }
    let [a, b] = server.regions.each_ref().map(|r| {
        r.as_ref()
            .map_or(0, |(b, _)| *b & !kaal_rpc::CALL_BADGE_BIT)
    });
    println!(
        "lent_server: {n} client regions of {REGION_BYTES} bytes, badges {a} and {b}, each its own memory (restarts: {})",
        env.restarts()
    );
    kaal_rpc::serve(ep, |badge, req, buf| {
        file_dispatch(&mut server, badge, req, buf)
    })
}

kaal_rt::component!(main);
