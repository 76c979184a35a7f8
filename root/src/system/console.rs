//! The console multiplexer: components' console lines go on a ring to the
//! serial driver the manifest names `console` (or to the kernel's debug
//! console when it cannot take them), are flushed before the system ends,
//! and are drained when the driver stops.

use kaal_broker::Memory;
use kaal_manifest::image::SystemImage;
use kaal_protocols::console::{Chunk, CHUNK_BYTES, RING_SLOTS as SERIAL_SLOTS};
use kaal_ring::{Consumer, Notify, Producer, SharedRing};
use kaal_rt::Signal;
use kaal_sel4::cap::{init, Cap, Notification, Rights};
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::{println, Word};

use super::grant::{nth_ring_bit, rings_of};
use super::{System, SystemError};
use crate::{Context, RootBroker, RootError};

/// The ring on which the root task hands components' console lines to the
/// serial driver the manifest names as `console`.
#[derive(Debug)]
pub(super) struct Console {
    pub(super) component: usize,
    pub(super) memory: Memory,
    ring: Producer<'static, Chunk, SERIAL_SLOTS>,
    /// Signals the driver (its notification, with the ring's bit).
    signal: Signal,
    /// The bit the ring's signals carry at the driver.
    pub(super) bit: Word,
    /// The producer's notification, which the driver signals as it releases
    /// slots; bound to the root task's thread only while it waits for the
    /// ring to drain (the supervisor never blocks on a full ring).
    pub(super) own: Notification,
    /// Lines that went through the driver, and lines printed directly (the
    /// driver not running, or the ring full).
    forwarded: u64,
    direct: u64,
}

/// The badge of the console driver's "slots released" signal: above every
/// component's supervisor badge, so the supervisor, waiting with `own`
/// bound, tells it from their messages.
pub(super) const CONSOLE_DRAINED: Word = 1 << 27;

impl System<'_> {
    /// Prints a component's console line from the message registers (MR0
    /// the byte count, then the bytes), at most what the message carries:
    /// through the console driver when there is one and it runs, else (or
    /// for what its ring has no room for) on COM1 directly.
    pub(super) fn print_line(&mut self, length: usize) {
        let mut out = [0u8; kaal_protocols::supervisor::LINE_BYTES];
        let line = kaal_protocols::supervisor::decode_line(length, ipc::mr, &mut out);
        let live = self.console_running();
        if let Some(c) = self.console.as_mut().filter(|_| live) {
            // The whole line one way: through the driver if its ring has
            // room for all of it, else directly.
            let chunks = line.len().div_ceil(CHUNK_BYTES).max(1);
            if c.ring.free().is_ok_and(|f| f >= chunks) {
                let mut rest = line;
                for _ in 0..chunks {
                    let (chunk, took) = Chunk::from_bytes(rest);
                    // Room was checked; the ring is ours to fill.
                    let _ = c.ring.push(chunk);
                    rest = rest.get(took..).unwrap_or(&[]);
                }
                if c.ring.publish() {
                    c.signal.notify();
                }
                c.forwarded += 1;
                return;
            }
            c.direct += 1;
        }
        kaal_sel4::console::Console.write_bytes(line);
    }

    /// Whether the console driver runs (and has not just ended: an exit or
    /// fault the caller of `supervise` has not yet had applied).
    fn console_running(&self) -> bool {
        self.console
            .as_ref()
            .and_then(|c| self.components.get(c.component))
            .is_some_and(|s| s.running.is_some() && !s.ended)
    }

    /// Waits until the console driver has taken every line handed to it:
    /// before the system ends, or they would be lost. Returns at once when
    /// the driver is not running.
    ///
    /// While it waits, it still answers console lines (the driver's own
    /// among them); any other message to the supervisor (the driver
    /// faulting, say) ends the wait, unanswered.
    pub fn flush_console(&mut self) {
        if !self.console_running() {
            return;
        }
        let Some(own) = self.console.as_ref().map(|c| c.own) else {
            return;
        };
        // The driver's release signals arrive on the supervisor endpoint.
        if init::TCB.bind_notification(own).is_err() {
            return;
        }
        loop {
            let drained = self.console.as_mut().map(|c| c.ring.prepare_drain());
            if !matches!(drained, Some(Ok(false))) {
                break;
            }
            let (info, badge) = self.supervisor.recv();
            if badge == CONSOLE_DRAINED {
                continue;
            }
            if badge != 0 && info.label() == kaal_protocols::supervisor::CONSOLE {
                self.print_line(info.length());
                ipc::reply(MessageInfo::new(0, 0));
                continue;
            }
            let who = (badge as usize)
                .checked_sub(1)
                .map_or("?", |i| self.name(i));
            println!("KaaL: console flush ended by a message from `{who}`");
            break;
        }
        let _ = init::TCB.unbind_notification();
    }

    /// After the console driver stopped: prints the lines it had not taken
    /// on COM1 directly, so none is lost, and leaves the ring empty for
    /// its next incarnation.
    pub(super) fn drain_console(&mut self, i: usize) {
        let Some(c) = self.console.as_mut().filter(|c| c.component == i) else {
            return;
        };
        let Some(ptr) =
            core::ptr::NonNull::new(c.memory.vaddr as *mut SharedRing<Chunk, SERIAL_SLOTS>)
        else {
            return;
        };
        // SAFETY: the ring memory is the root task's; its only consumer, the
        // driver, has just been torn down, so this is the one consumer handle
        // while it lives (dropped at the end of this function).
        let mut rx = unsafe { Consumer::<Chunk, SERIAL_SLOTS>::from_raw(ptr) };
        while let Ok(Some(chunk)) = rx.pop() {
            kaal_sel4::console::Console.write_bytes(chunk.bytes());
        }
        let _ = rx.release();
    }

    /// Console lines that went through the console driver, and lines (or
    /// their rest) printed on COM1 directly instead.
    pub fn console_lines(&self) -> Option<(u64, u64)> {
        self.console.as_ref().map(|c| (c.forwarded, c.direct))
    }
}

/// Sets up the console ring for component `index`.
pub(super) fn make_console(
    broker: &mut RootBroker,
    image: &SystemImage<'_>,
    index: usize,
    notifications: &[Notification],
) -> Result<Console, SystemError> {
    let me = u16::try_from(index).map_err(|_| RootError::Check("console index"))?;
    // After the bits of the component's own rings.
    let bit = nth_ring_bit(rings_of(&image.channels, me).count())
        .ok_or(RootError::Check("the console driver has too many rings"))?;
    let driver = *notifications
        .get(index)
        .ok_or(RootError::Check("console index"))?;
    let bytes = SharedRing::<Chunk, SERIAL_SLOTS>::BYTES as u64;
    let memory = broker.allocate_memory(bytes)?;
    let own: Notification = broker.alloc()?;
    let slot = broker.alloc_slot()?;
    init::CNODE
        .mint(slot, driver.cptr(), 64, Rights::write_only(), bit)
        .context("CNode_Mint console signal")?;
    let ptr = core::ptr::NonNull::new(memory.vaddr as *mut SharedRing<Chunk, SERIAL_SLOTS>)
        .ok_or(RootError::Check("console ring memory"))?;
    // SAFETY: the broker mapped `bytes` (at least a `SharedRing` of this
    // shape, page aligned, zeroed: an empty ring) at `memory.vaddr` for the
    // root task alone until it is shared with the driver, which only takes
    // the consumer end; this is the one producer handle, kept for the life
    // of the system.
    let ring = unsafe { Producer::from_raw(ptr) };
    Ok(Console {
        component: index,
        memory,
        ring,
        signal: Signal(Notification::from_cptr(slot)),
        bit,
        own,
        forwarded: 0,
        direct: 0,
    })
}
