//! Monotonic time from the time-stamp counter. seL4 calibrates the TSC
//! against the PIT at boot and the root task passes the frequency on in the
//! start-info page ([`crate::Env::clock`]); a [`Clock`] converts between
//! ticks and [`Duration`]s with it.
//!
//! The TSC of the x86_64 machines KaaL targets (and QEMU's) runs at a
//! constant rate, and a component runs on the one CPU, so readings never go
//! backwards.

use core::time::Duration;

/// The wall clock's seconds since the Unix epoch when the TSC read 0 (the
/// machine's start): KaaL has no real-time clock driver yet, so its wall
/// clock starts at 2026-01-01 00:00 UTC and runs with the TSC. Every
/// component that stamps times (the VFS, the POSIX layer) uses this one.
pub const EPOCH_AT_BOOT: u64 = 1_767_225_600;

/// A reading of the TSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    pub fn now() -> Instant {
        Instant(crate::rdtsc())
    }

    pub const fn from_ticks(ticks: u64) -> Instant {
        Instant(ticks)
    }

    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// Ticks from `earlier` to `self` (0 if `earlier` is later).
    pub const fn ticks_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Converts TSC ticks to and from durations at a known frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    mhz: u64,
}

impl Clock {
    /// A clock of a TSC running at `mhz` MHz; `None` for 0.
    pub const fn new(mhz: u64) -> Option<Clock> {
        if mhz == 0 {
            None
        } else {
            Some(Clock { mhz })
        }
    }

    pub const fn mhz(self) -> u64 {
        self.mhz
    }

    /// Ticks in `d` (saturating).
    pub fn ticks(self, d: Duration) -> u64 {
        let t = d.as_nanos().saturating_mul(u128::from(self.mhz)) / 1000;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// The duration of `ticks`.
    pub fn duration(self, ticks: u64) -> Duration {
        let nanos = u128::from(ticks) * 1000 / u128::from(self.mhz);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many of `count` things happen per second of TSC time at the rate
    /// of `count` in `ticks` (saturating; 0 ticks count as 1).
    pub fn per_second(self, count: u64, ticks: u64) -> u64 {
        let r = u128::from(count) * u128::from(self.mhz) * 1_000_000 / u128::from(ticks.max(1));
        u64::try_from(r).unwrap_or(u64::MAX)
    }

    /// Time since `since`.
    pub fn elapsed(self, since: Instant) -> Duration {
        self.duration(Instant::now().ticks_since(since))
    }

    /// Time since the machine started (the TSC's zero).
    pub fn since_boot(self, now: Instant) -> Duration {
        self.duration(now.ticks())
    }

    /// The wall clock at `now`: seconds since the Unix epoch
    /// ([`EPOCH_AT_BOOT`] plus the time since boot).
    pub fn wall_secs(self, now: Instant) -> u64 {
        EPOCH_AT_BOOT.saturating_add(self.since_boot(now).as_secs())
    }

    /// The instant `d` after `from` (saturating).
    pub fn after(self, from: Instant, d: Duration) -> Instant {
        Instant(from.0.saturating_add(self.ticks(d)))
    }
}
