//! A driver's interrupt: its handler, the badge bit it arrives with, and how
//! the line signals; and the interrupt step of a driver's loop: wait on the
//! component's notification, serve what arrived, acknowledge the interrupt.

use kaal_sel4::cap::{IrqHandler, Notification};
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

/// Waits on `notification`, then calls `on_event` with the bits that
/// arrived, acknowledging the interrupt if its bit is among them: for an
/// edge-triggered line before `on_event` (the kernel masks the line until the
/// acknowledgement, and an edge while masked would be lost), for a
/// level-triggered line after it (else the line, still asserted, would fire
/// again for work already done).
pub fn wait_and_handle<E>(
    notification: Notification,
    irq: Irq,
    on_event: impl FnOnce(Badge) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<DriverError>,
{
    let bits = notification.wait();
    let ours = bits & irq.bit != 0;
    let ack = || {
        irq.handler
            .ack()
            .map_err(|e| E::from(DriverError::Kernel(e)))
    };
    if ours && !irq.level_triggered {
        ack()?;
    }
    on_event(bits)?;
    if ours && irq.level_triggered {
        ack()?;
    }
    Ok(())
}
