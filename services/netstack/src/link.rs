//! The stack's side of a network link: frames in and out, adapted to
//! smoltcp's `Device` with every received frame checked ([`crate::wire`])
//! and counted on the way.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::wire::{self, Verdict};
use crate::Stats;

/// The longest Ethernet frame sent or received (no FCS).
pub const MAX_FRAME: usize = 1514;

/// A network link: the network driver's rings in the component, queues in
/// host tests.
pub trait Link {
    /// A frame received, owned.
    type Frame: AsRef<[u8]>;
    /// The next frame received, if any.
    fn receive(&mut self) -> Option<Self::Frame>;
    /// Whether a frame can be sent now.
    fn can_send(&mut self) -> bool;
    /// Sends `frame`; `false` if the link could not take it after all.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Frames the link takes in one go (smoltcp's `max_burst_size`).
    fn burst(&self) -> Option<usize> {
        None
    }
}

/// A [`Link`] as smoltcp's device, checking and counting frames.
pub(crate) struct Device<'a, L: Link> {
    pub link: &'a mut L,
    pub stats: &'a mut Stats,
}

impl<L: Link> phy::Device for Device<'_, L> {
    type RxToken<'b>
        = RxToken<L::Frame>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b, L>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        loop {
            let frame = self.link.receive()?;
            let bytes = frame.as_ref();
            match wire::check(bytes) {
                Verdict::Good => {
                    self.stats.frames_in += 1;
                    self.stats.bytes_in += bytes.len() as u64;
                    let tx = TxToken {
                        link: &mut *self.link,
                        stats: &mut *self.stats,
                    };
                    return Some((RxToken(frame), tx));
                }
                Verdict::Malformed => self.stats.malformed += 1,
                Verdict::Unsupported => self.stats.unsupported += 1,
            }
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if !self.link.can_send() {
            return None;
        }
        Some(TxToken {
            link: &mut *self.link,
            stats: &mut *self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = MAX_FRAME;
        c.max_burst_size = self.link.burst();
        c.checksum = wire::checksums();
        c
    }
}

pub(crate) struct RxToken<F>(F);

impl<F: AsRef<[u8]>> phy::RxToken for RxToken<F> {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        f(self.0.as_ref())
    }
}

pub(crate) struct TxToken<'a, L: Link> {
    link: &'a mut L,
    stats: &'a mut Stats,
}

impl<L: Link> phy::TxToken for TxToken<'_, L> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let mut buf = [0u8; MAX_FRAME];
        let n = len.min(MAX_FRAME);
        let frame = buf.get_mut(..n).unwrap_or_default();
        let r = f(frame);
        // A token that came with a received frame was handed out without
        // asking the link for room: a full link drops the answer (smoltcp
        // sends it again, or the peer asks again), it does not fail.
        if self.link.can_send() && self.link.send(frame) {
            self.stats.frames_out += 1;
            self.stats.bytes_out += n as u64;
        } else {
            self.stats.dropped_out += 1;
        }
        r
    }
}
