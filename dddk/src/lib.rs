//! The KaaL device driver kit (DDDK): what a driver needs besides its device
//! logic. Typed register access through the I/O port capability a device
//! grant gives ([`regs`]), the interrupt wait/handle/acknowledge step
//! ([`irq`]), and the device-independent driver side of the protocols in
//! `kaal_protocols` ([`serial`] byte streams and console lines, the
//! [`timer`]'s deadline queue).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod irq;
pub mod regs;
pub mod serial;
pub mod timer;

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

/// Runs one direction of a client's service: a ring found corrupt marks
/// that direction `dead` (and is reported once, through the returned
/// error), any other error is the driver's own. A call that finds its ring
/// corrupt yields `T::default()`; the caller skips a dead direction's calls
/// from then on.
pub fn guard<T: Default>(
    r: Result<T, DriverError>,
    dead: &mut bool,
) -> Result<(T, Option<kaal_ring::RingError>), DriverError> {
    match r {
        Err(DriverError::Ring(e)) => {
            let first = !*dead;
            *dead = true;
            Ok((T::default(), first.then_some(e)))
        }
        r => r.map(|v| (v, None)),
    }
}

/// Which directions of a client a driver has cut off (a ring found corrupt
/// is not touched again; the other direction goes on).
#[derive(Clone, Copy, Debug, Default)]
pub struct CutOff {
    /// The driver-to-client ring.
    pub rx: bool,
    /// The client-to-driver ring.
    pub tx: bool,
}

/// What to report when a direction is cut off.
#[derive(Clone, Copy, Debug)]
pub struct CutReport {
    ring: &'static str,
    error: kaal_ring::RingError,
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

impl CutOff {
    /// [`guard`] for direction `rx` (else `tx`): the report comes once, when
    /// the direction is cut off.
    pub fn check<T: Default>(
        &mut self,
        r: Result<T, DriverError>,
        rx: bool,
    ) -> Result<(T, Option<CutReport>), DriverError> {
        let (dead, ring) = if rx {
            (&mut self.rx, "rx")
        } else {
            (&mut self.tx, "tx")
        };
        let (v, newly) = guard(r, dead)?;
        Ok((v, newly.map(|error| CutReport { ring, error })))
    }
}
