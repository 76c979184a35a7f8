//! A driver's interrupt: its handler, the badge bit it arrives with, and how
//! the line signals, which decides when [`crate::run`] acknowledges it.

use kaal_sel4::cap::IrqHandler;
use kaal_sel4::ipc::Badge;

use crate::DriverError;

/// An interrupt granted to a driver: its handler, the badge bit it arrives
/// with on the driver's notification (other bits are its clients'), and how
/// the line signals (the grant says; `Env::irq`).
#[derive(Clone, Copy, Debug)]
pub struct Irq<H = IrqHandler> {
    pub handler: H,
    pub bit: Badge,
    /// Level-triggered lines (PCI INTx) stay asserted until the device is
    /// served; edge-triggered ones (ISA: COM ports, the PIT) signal once.
    pub level_triggered: bool,
}

/// Acknowledges an interrupt, so the kernel delivers the next one: the
/// kernel's handler on seL4, a model in host tests.
pub trait Ack {
    fn ack(&self) -> Result<(), DriverError>;
}

impl Ack for IrqHandler {
    #[inline]
    fn ack(&self) -> Result<(), DriverError> {
        Ok(IrqHandler::ack(*self)?)
    }
}

#[cfg(target_os = "none")]
impl From<kaal_rt::IrqGrant> for Irq {
    fn from(g: kaal_rt::IrqGrant) -> Irq {
        Irq {
            handler: g.handler,
            bit: g.bit,
            level_triggered: g.level_triggered,
        }
    }
}
