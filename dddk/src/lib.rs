//! The KaaL device driver kit (DDDK): what a driver needs besides its device
//! logic. Typed register access through the I/O port capability a device
//! grant gives ([`regs`]); the driver's loop with the ring protocol's sleep
//! announcements and the interrupt's acknowledgement ([`event_loop`],
//! [`irq`]); a corrupt client ring cut off ([`Cut`]); buffers in a device
//! grant's DMA memory ([`dma`]); and the device-independent driver side of
//! the protocols in `kaal_protocols` ([`serial`] byte streams and console
//! lines, the [`timer`]'s deadline queue).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod dma;
pub mod event_loop;
pub mod irq;
pub mod regs;
pub mod serial;
pub mod timer;

pub use event_loop::{run, Driver, Events, Sleep};
pub use irq::Irq;

use core::fmt;

/// What can go wrong in a driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// A register offset beyond the device's range.
    OutOfRange { offset: u16, len: u16 },
    /// The kernel refused an operation (a port access, an acknowledgement).
    Kernel(kaal_sel4::Error),
    /// A ring shared with a client was found corrupt.
    Ring(kaal_ring::RingError),
    /// The device does not behave as its class requires.
    Device(&'static str),
}

impl From<kaal_sel4::Error> for DriverError {
    fn from(e: kaal_sel4::Error) -> Self {
        DriverError::Kernel(e)
    }
}

impl From<kaal_ring::RingError> for DriverError {
    fn from(e: kaal_ring::RingError) -> Self {
        DriverError::Ring(e)
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::OutOfRange { offset, len } => {
                write!(
                    f,
                    "register offset {offset:#x} beyond the device's {len:#x} ports"
                )
            }
            DriverError::Kernel(e) => write!(f, "kernel: {e:?}"),
            DriverError::Ring(e) => write!(f, "client ring: {e}"),
            DriverError::Device(what) => write!(f, "device: {what}"),
        }
    }
}

/// One direction of a client's service, named by the ring it runs over: a
/// ring found corrupt cuts that direction off (reported once, never touched
/// again) while the other direction goes on.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    ring: &'static str,
    dead: bool,
}

/// What to report when a direction is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutReport {
    pub ring: &'static str,
    pub error: kaal_ring::RingError,
}

impl fmt::Display for CutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client ring `{}` is corrupt ({}); no longer serving it",
            self.ring, self.error
        )
    }
}

impl Cut {
    /// The direction over ring `ring` (the local name, for the report).
    #[inline]
    pub const fn new(ring: &'static str) -> Cut {
        Cut { ring, dead: false }
    }

    /// The ring's name, as its reports give it.
    #[inline]
    pub fn ring(&self) -> &'static str {
        self.ring
    }

    /// Whether the ring was found corrupt: skip its calls from now on.
    #[inline]
    pub fn is_cut(&self) -> bool {
        self.dead
    }

    /// Cuts the direction off for `error`; the report comes the first time.
    #[inline]
    pub fn cut(&mut self, error: kaal_ring::RingError) -> Option<CutReport> {
        let first = !self.dead;
        self.dead = true;
        first.then_some(CutReport {
            ring: self.ring,
            error,
        })
    }

    /// Runs one step of this direction: a corrupt ring cuts it off and
    /// yields `T::default()` (with the report the first time); any other
    /// error is the driver's own.
    #[inline]
    pub fn check<T: Default>(
        &mut self,
        r: Result<T, DriverError>,
    ) -> Result<(T, Option<CutReport>), DriverError> {
        match r {
            Err(DriverError::Ring(e)) => Ok((T::default(), self.cut(e))),
            r => r.map(|v| (v, None)),
        }
    }

    /// [`Cut::check`], handing a new cut's report to `report` (the
    /// driver's printer) and the value on.
    pub fn guard<T: Default>(
        &mut self,
        r: Result<T, DriverError>,
        report: impl FnOnce(CutReport),
    ) -> Result<T, DriverError> {
        let (v, cut) = self.check(r)?;
        if let Some(c) = cut {
            report(c);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaal_ring::RingError;

    #[test]
    fn a_corrupt_ring_is_reported_once_and_other_errors_pass() {
        let mut c = Cut::new("rx");
        let bad = RingError::Corrupt { head: 9, tail: 0 };
        assert_eq!(c.check(Ok::<u8, _>(3)).unwrap(), (3, None));
        let (v, report) = c.check::<u8>(Err(bad.into())).unwrap();
        assert_eq!((v, report.map(|r| r.ring)), (0, Some("rx")));
        assert!(c.is_cut());
        assert_eq!(c.check::<u8>(Err(bad.into())).unwrap(), (0, None));
        let e = DriverError::Device("x");
        assert_eq!(c.check::<u8>(Err(e)), Err(e));
    }

    #[test]
    fn guard_hands_the_first_report_to_the_printer() {
        let mut c = Cut::new("tx");
        let bad = RingError::Corrupt { head: 9, tail: 0 };
        let mut seen = std::vec::Vec::new();
        assert_eq!(c.guard(Ok::<u8, _>(5), |r| seen.push(r)), Ok(5));
        assert_eq!(c.guard::<u8>(Err(bad.into()), |r| seen.push(r)), Ok(0));
        assert_eq!(c.guard::<u8>(Err(bad.into()), |r| seen.push(r)), Ok(0));
        assert_eq!(
            seen,
            [CutReport {
                ring: "tx",
                error: bad
            }]
        );
    }
}
