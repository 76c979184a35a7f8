//! A client of the `lent_server` over a `file` channel: each round it
//! fills the region it lends with its own pattern, has the server check
//! it (`write`), has the server fill it with the server's pattern for this
//! client (`read`) and checks that. It also writes and reads back its whole
//! private memory `scratch`, which must be zeroed at start. The component
//! named `client_a` fails its first incarnation on purpose: restarted, it
//! must find `scratch` zeroed again and its lent region as the server left
//! it.
#![no_std]
#![no_main]

use kaal_protocols::file::{FileClient, FsError};
use kaal_rpc::{Error, Lent};
use kaal_rt::{println, CapError, Env, SharedRegion};
use kaal_test_components::lent::{client_pattern, server_pattern, REGION_BYTES};

const ROUNDS: u32 = 50;

/// Fills the region, a page at a time, with `pattern`.
fn fill(region: &SharedRegion, pattern: impl Fn(u64) -> u8) -> Result<(), &'static str> {
    let mut page = [0u8; 4096];
    for at in (0..region.len()).step_by(4096) {
        for (b, i) in page.iter_mut().zip(at..) {
            *b = pattern(i);
        }
        region.write(at, &page).map_err(|_| "region write")?;
    }
    Ok(())
}

/// Whether the region holds `pattern` throughout.
fn holds(region: &SharedRegion, pattern: impl Fn(u64) -> u8) -> Result<bool, &'static str> {
    let mut page = [0u8; 4096];
    for at in (0..region.len()).step_by(4096) {
        region.read(at, &mut page).map_err(|_| "region read")?;
        if page.iter().zip(at..).any(|(&b, i)| b != pattern(i)) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn main(env: &Env) -> Result<(), &'static str> {
    let name = env.name();
    let (ep, badge) = env.client("fs").map_err(|_| "no `fs` endpoint")?;
    let region = env.lent_region("fs").map_err(|_| "no lent region")?;
    if region.len() != REGION_BYTES {
        return Err("a lent region of the wrong size");
    }
    if env.client_regions("fs").is_ok() {
        return Err("a client sees the server's view of the regions");
    }
    let scratch = env
        .private_memory("scratch")
        .map_err(|_| "no private memory `scratch`")?;
    if env.private_memory("scratch").err() != Some(CapError::Taken("scratch")) {
        return Err("private memory was handed out twice");
    }
    if scratch.iter().any(|&b| b != 0) {
        return Err("private memory was not zeroed");
    }
    if env.restarts() > 0 {
        if !holds(&region, |i| server_pattern(badge, ROUNDS - 1, i))? {
            return Err("the restarted client's lent region is not the one it had");
        }
        println!(
            "{name}: restarted, `scratch` is zeroed again and my lent region holds what the server last wrote"
        );
    }
    let fs = FileClient(ep);
    // The server marks the regions once before it serves: wait for it.
    if fs.sync() != Err(Error::App(FsError::Invalid)) {
        return Err("the server did not answer");
    }
    let whole = Lent::new(0, region.len());
    for round in 0..ROUNDS {
        fill(&region, |i| client_pattern(badge, round, i))?;
        if fs.write(round, whole) != Ok(region.len()) {
            return Err("the server did not find my pattern in my region");
        }
        if fs.read(round, whole) != Ok(region.len()) {
            return Err("the server did not fill my region");
        }
        if !holds(&region, |i| server_pattern(badge, round, i))? {
            return Err("my region does not hold the server's pattern for me");
        }
    }
    println!(
        "{name}: {ROUNDS} rounds through my own {} byte lent region (badge {})",
        region.len(),
        badge & !kaal_rpc::CALL_BADGE_BIT
    );
    let mark = |i: usize| (i as u8) ^ (i >> 12) as u8 ^ 0x5a;
    for (i, b) in scratch.iter_mut().enumerate() {
        *b = mark(i);
    }
    if !scratch.iter().enumerate().all(|(i, &b)| b == mark(i)) {
        return Err("private memory did not read back");
    }
    println!(
        "{name}: private memory `scratch` of {} bytes written and read back whole",
        scratch.len()
    );
    if name == "client_a" && env.restarts() == 0 {
        return Err("failing once on purpose, to be restarted");
    }
    Ok(())
}

kaal_rt::component!(main);
