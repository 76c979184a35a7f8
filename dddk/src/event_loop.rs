//! A driver's loop: serve, announce the sleep on the ring ends it waits for,
//! look again, wait; and the interrupt acknowledged at the right time for
//! its trigger mode. The driver writes the serving ([`Driver::serve`]);
//! [`run`] carries the ring protocol's no-lost-wake-up dance.
//!
//! ```text
//! run:  ack the interrupt once (a holder before may have left it masked)
//!       loop {
//!         edge-triggered interrupt among the bits?  ack      (an edge while masked is lost)
//!         driver.serve(events, &mut sleep)     (it names the ends to sleep on)
//!         level-triggered interrupt among the bits? ack      (else it fires again for work done)
//!         for each ring end in sleep: announce, look again
//!             (consumer: prepare_sleep, "wake me when items arrive";
//!              producer: prepare_wait, "wake me when room frees")
//!         work found, a ring cut off, or serve_again: poll, and serve again
//!         else: wait on the notification
//!         withdraw the announcements (cancel_sleep / cancel_wait)
//!       }
//! ```
//!
//! A peer that publishes (or releases) before the announcement is seen by
//! the look after it; one that does so after it sees the announcement and
//! signals, so the wait returns. Either way no wake-up is lost (the ring's
//! `SeqCst` fences decide which; see `kaal_ring`).

use core::convert::Infallible;

use bytemuck::Pod;
use kaal_ring::{Consumer, Producer};
use kaal_sel4::cap::Notification;
use kaal_sel4::ipc::Badge;

use crate::irq::{Ack, Irq};
use crate::{Cut, CutReport, DriverError};

/// Ring ends one [`Sleep`] may name: all a component can have.
pub const MAX_ENDS: usize = 20;

/// A driver, as [`run`] drives it.
pub trait Driver {
    /// Serves everything that can be served now (every source, whatever
    /// `events` says: a signal may have been taken by an earlier poll), then
    /// says in `sleep` what to sleep on (nothing: only the interrupt).
    /// Release what was popped and publish what was pushed first: the peer
    /// may be waiting for exactly that.
    fn serve<'a>(&'a mut self, events: Events, sleep: &mut Sleep<'a>) -> Result<(), DriverError>;

    /// A client ring the loop found corrupt while announcing a sleep: its
    /// direction is cut off now. Print it.
    fn report(&mut self, cut: CutReport);
}

/// What woke the driver: the badge bits that arrived on its notification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    bits: Badge,
    interrupt: bool,
}

impl Events {
    /// Every bit that arrived (the interrupt's and the ring peers').
    #[inline]
    pub fn bits(self) -> Badge {
        self.bits
    }

    /// Whether the device's interrupt is among them.
    #[inline]
    pub fn interrupt(self) -> bool {
        self.interrupt
    }
}

/// The notification a driver waits on: an seL4 notification, a model in
/// host tests.
pub trait Wait {
    /// Blocks until signalled; returns (and clears) the bits that arrived.
    fn wait(&self) -> Badge;
    /// The bits that arrived, without blocking (0: none).
    fn poll(&self) -> Badge;
}

impl Wait for Notification {
    #[inline]
    fn wait(&self) -> Badge {
        Notification::wait(*self)
    }
    #[inline]
    fn poll(&self) -> Badge {
        Notification::poll(*self).unwrap_or(0)
    }
}

/// A ring end a sleep can be announced on: the ring protocol's "announce,
/// then look again".
pub trait Announce {
    /// Asks the peer for a signal, then looks again: `true` if there is work
    /// already (the request is withdrawn: do not sleep).
    fn announce(&mut self) -> Result<bool, DriverError>;
    /// Withdraws the request after a wake-up from elsewhere.
    fn withdraw(&mut self);
}

/// Popped but unreleased slots would never reach a producer waiting for
/// them while the driver sleeps.
const UNRELEASED: DriverError = DriverError::Device("sleep announced with slots unreleased");
/// Pushed but unpublished items would never reach a sleeping consumer.
const UNPUBLISHED: DriverError = DriverError::Device("sleep announced with items unpublished");

/// A consumer end: wake when items arrive.
impl<T: Pod, const N: usize> Announce for Consumer<'_, T, N> {
    #[inline]
    fn announce(&mut self) -> Result<bool, DriverError> {
        if self.unreleased() != 0 {
            return Err(UNRELEASED);
        }
        Ok(self.prepare_sleep()?)
    }
    #[inline]
    fn withdraw(&mut self) {
        self.cancel_sleep();
    }
}

/// A producer end: wake when room frees.
impl<T: Pod, const N: usize> Announce for Producer<'_, T, N> {
    #[inline]
    fn announce(&mut self) -> Result<bool, DriverError> {
        if self.unpublished() != 0 {
            return Err(UNPUBLISHED);
        }
        Ok(self.prepare_wait()?)
    }
    #[inline]
    fn withdraw(&mut self) {
        self.cancel_wait();
    }
}

struct Watch<'a> {
    end: &'a mut dyn Announce,
    /// The direction a corrupt ring cuts off; `None` for a trusted peer's
    /// ring, whose corruption stops the driver.
    cut: Option<&'a mut Cut>,
    announced: bool,
}

/// What a driver sleeps on after serving: the ring ends whose peer's signal
/// it waits for (besides its interrupt, which always wakes it). Name a
/// consumer end only while the driver can take items from it, and a
/// producer end only while the driver is blocked on its room: an end with
/// work waiting would end every sleep at once. [`run`] hands `serve` an
/// empty one each round (the loop's own, so nothing is copied).
pub struct Sleep<'a> {
    ends: heapless::Vec<Watch<'a>, MAX_ENDS>,
    again: bool,
    overflow: bool,
}

impl<'a> Sleep<'a> {
    /// Sleep until the interrupt (add ring ends with [`Sleep::on`]).
    #[inline]
    fn new() -> Self {
        Sleep {
            ends: heapless::Vec::new(),
            again: false,
            overflow: false,
        }
    }

    /// Do not sleep: serve again at once (work is left that no signal will
    /// announce).
    #[inline]
    pub fn serve_again(&mut self) {
        self.again = true;
    }

    /// Also wake when `end` has work (items for a consumer, room for a
    /// producer), unless its direction `cut` is cut off; finding its ring
    /// corrupt cuts it off.
    #[inline]
    pub fn on(&mut self, end: &'a mut dyn Announce, cut: &'a mut Cut) -> &mut Self {
        if !cut.is_cut() {
            self.watch(end, Some(cut));
        }
        self
    }

    /// Also wake when `end` has work; its peer is trusted (the root task),
    /// so a corrupt ring is the driver's error.
    #[inline]
    pub fn on_trusted(&mut self, end: &'a mut dyn Announce) -> &mut Self {
        self.watch(end, None);
        self
    }

    #[inline]
    fn watch(&mut self, end: &'a mut dyn Announce, cut: Option<&'a mut Cut>) {
        let w = Watch {
            end,
            cut,
            announced: false,
        };
        self.overflow |= self.ends.push(w).is_err();
    }

    /// Announces on each end in turn. `Ok(true)`: announced on all, wait.
    /// `Ok(false)`: serve again, with the announcements made so far
    /// withdrawn: an end had work, or its ring was found corrupt (the
    /// report goes to `report`).
    #[inline]
    fn announce(&mut self, report: &mut Option<CutReport>) -> Result<bool, DriverError> {
        if self.overflow {
            return Err(DriverError::Device("a sleep names too many ring ends"));
        }
        if self.again {
            return Ok(false);
        }
        for i in 0..self.ends.len() {
            let Some(w) = self.ends.get_mut(i) else { break };
            match (w.end.announce(), &mut w.cut) {
                (Ok(false), _) => w.announced = true,
                (Ok(true), _) => {
                    self.withdraw();
                    return Ok(false);
                }
                (Err(DriverError::Ring(e)), Some(cut)) => {
                    *report = cut.cut(e);
                    self.withdraw();
                    return Ok(false);
                }
                (Err(e), _) => {
                    self.withdraw();
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    #[inline]
    fn withdraw(&mut self) {
        for w in self.ends.iter_mut().filter(|w| w.announced) {
            w.end.withdraw();
            w.announced = false;
        }
    }
}

impl core::fmt::Debug for Sleep<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sleep")
            .field("ends", &self.ends.len())
            .field("again", &self.again)
            .finish()
    }
}

/// Runs `driver` until it (or the kernel) fails: serves, announces the
/// sleep on the ring ends it names, looks again, waits on `notification`,
/// and acknowledges `irq` before serving an edge-triggered line and after
/// serving a level-triggered one.
pub fn run<D, W, H>(
    driver: &mut D,
    notification: &W,
    irq: &Irq<H>,
) -> Result<Infallible, DriverError>
where
    D: Driver + ?Sized,
    W: Wait,
    H: Ack,
{
    // A holder before us (this driver before a restart) may have left the
    // line masked with an interrupt taken but not acknowledged. A line
    // still asserted then fires at once, and is served like any other.
    irq.handler.ack()?;
    let mut bits: Badge = 0;
    loop {
        let ours = bits & irq.bit != 0;
        if ours && !irq.level_triggered {
            irq.handler.ack()?;
        }
        let mut report = None;
        {
            let mut sleep = Sleep::new();
            let events = Events {
                bits,
                interrupt: ours,
            };
            let served = driver.serve(events, &mut sleep);
            if ours && irq.level_triggered {
                irq.handler.ack()?;
            }
            served?;
            bits = if sleep.announce(&mut report)? {
                notification.wait()
            } else {
                notification.poll()
            };
            sleep.withdraw();
        }
        if let Some(r) = report {
            driver.report(r);
        }
    }
}

#[cfg(test)]
mod tests;
