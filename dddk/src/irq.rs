//! The interrupt step of a driver's loop: wait on the component's
//! notification, handle what arrived, acknowledge the interrupt.

use kaal_sel4::cap::{IrqHandler, Notification};
use kaal_sel4::ipc::Badge;

use crate::DriverError;

/// An interrupt granted to a driver: its handler and the badge bit it
/// arrives with on the driver's notification (other bits are its clients').
#[derive(Clone, Copy, Debug)]
pub struct Irq {
    pub handler: IrqHandler,
    pub bit: Badge,
}

/// Waits on `notification`, then calls `on_event` with the bits that
/// arrived; if the interrupt's bit is among them, acknowledges it after
/// `on_event` has served the device (so a level-triggered line does not
/// fire again for work already done).
pub fn wait_and_handle<E>(
    notification: Notification,
    irq: Irq,
    on_event: impl FnOnce(Badge) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<DriverError>,
{
    let bits = notification.wait();
    on_event(bits)?;
    if bits & irq.bit != 0 {
        irq.handler
            .ack()
            .map_err(|e| E::from(DriverError::Kernel(e)))?;
    }
    Ok(())
}
