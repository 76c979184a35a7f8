//! A device's receive buffers (virtio-net's): which of them the device
//! holds, and frames taken out of them. Each buffer goes back to the device
//! as soon as its frame is taken: a device left holding none raises no
//! interrupt, so frames would wait (in QEMU, for virtio-net) until
//! something else woke the driver. Generic over the queue, so that this is
//! tested on the host against a fake device.

use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::Transport;
use virtio_drivers::Hal;

/// The device refused a buffer, or completed one it was never given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueError;

/// A device's receive queue, as [`Receiver`] uses it.
pub trait RxQueue {
    /// Gives `buf` to the device to receive into; the token it completes
    /// under.
    ///
    /// # Safety
    ///
    /// `buf` must not be touched until [`RxQueue::complete`] with that token.
    unsafe fn begin(&mut self, buf: &mut [u8]) -> Result<u16, QueueError>;
    /// The token of the next filled buffer, if any; it stays the device's.
    fn peek(&self) -> Option<u16>;
    /// Takes back the buffer filled under `token`: where its frame starts
    /// (after the device's header) and its length.
    ///
    /// # Safety
    ///
    /// `buf` must be the slice given to [`RxQueue::begin`] for `token`.
    unsafe fn complete(&mut self, token: u16, buf: &mut [u8])
        -> Result<(usize, usize), QueueError>;
}

impl<H: Hal, T: Transport, const N: usize> RxQueue for VirtIONetRaw<H, T, N> {
    unsafe fn begin(&mut self, buf: &mut [u8]) -> Result<u16, QueueError> {
        // SAFETY: the caller's contract is `receive_begin`'s.
        unsafe { self.receive_begin(buf) }.map_err(|_| QueueError)
    }

    fn peek(&self) -> Option<u16> {
        self.poll_receive()
    }

    unsafe fn complete(
        &mut self,
        token: u16,
        buf: &mut [u8],
    ) -> Result<(usize, usize), QueueError> {
        // SAFETY: the caller's contract is `receive_complete`'s.
        unsafe { self.receive_complete(token, buf) }.map_err(|_| QueueError)
    }
}

/// `Q` receive buffers of `len` bytes each in `mem` (DMA memory the device
/// reads and writes in place), at most 64.
pub struct Receiver<const Q: usize> {
    mem: &'static mut [u8],
    len: usize,
    /// For each token, the buffer the device holds under it.
    posted: [Option<usize>; Q],
    /// Buffers the device does not hold (bit `i` for buffer `i`).
    free: u64,
}

impl<const Q: usize> Receiver<Q> {
    /// The buffers in `mem`, none given to the device yet; `None` if `mem`
    /// is shorter than `Q` buffers of `len` bytes.
    pub fn new(mem: &'static mut [u8], len: usize) -> Option<Receiver<Q>> {
        const { assert!(Q > 0 && Q <= 64) };
        if len == 0 || mem.len() < Q.checked_mul(len)? {
            return None;
        }
        Some(Receiver {
            mem,
            len,
            posted: [None; Q],
            free: u64::MAX >> (64 - Q),
        })
    }

    /// Buffers the device holds, filled or not.
    pub fn held(&self) -> usize {
        Q - self.free.count_ones() as usize
    }

    fn buf(mem: &mut [u8], len: usize, i: usize) -> Result<&mut [u8], QueueError> {
        mem.get_mut(i * len..(i + 1) * len).ok_or(QueueError)
    }

    fn post<D: RxQueue>(&mut self, dev: &mut D, i: usize) -> Result<(), QueueError> {
        let buf = Self::buf(self.mem, self.len, i)?;
        // SAFETY: the buffer is not touched again until the device returns
        // it under the token (`take` completes it with the same slice).
        let token = unsafe { dev.begin(buf) }?;
        let slot = self.posted.get_mut(usize::from(token)).ok_or(QueueError)?;
        *slot = Some(i);
        self.free &= !(1 << i);
        Ok(())
    }

    /// Gives the device every buffer it does not hold.
    pub fn refill<D: RxQueue>(&mut self, dev: &mut D) -> Result<(), QueueError> {
        while self.free != 0 {
            self.post(dev, self.free.trailing_zeros() as usize)?;
        }
        Ok(())
    }

    /// Whether the device has filled a buffer.
    pub fn filled<D: RxQueue>(&self, dev: &D) -> bool {
        dev.peek().is_some()
    }

    /// Takes the next filled buffer, if any: hands `f` its frame (`None` if
    /// the device's lengths do not fit the buffer), then gives the buffer
    /// back to the device; what `f` returned.
    pub fn take<D: RxQueue, R>(
        &mut self,
        dev: &mut D,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<Option<R>, QueueError> {
        let Some(token) = dev.peek() else {
            return Ok(None);
        };
        let i = self
            .posted
            .get_mut(usize::from(token))
            .and_then(Option::take)
            .ok_or(QueueError)?;
        let buf = Self::buf(self.mem, self.len, i)?;
        // SAFETY: the same slice as given to `begin` for `token`.
        let (hdr, len) = unsafe { dev.complete(token, buf) }?;
        self.free |= 1 << i;
        let frame = hdr.checked_add(len).and_then(|end| buf.get(hdr..end));
        let r = f(frame);
        self.post(dev, i)?;
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;
    use alloc::vec::Vec;

    const Q: usize = 4;
    const LEN: usize = 64;
    const HDR: usize = 12;

    /// A device that fills its buffers in the order it was given them.
    #[derive(Default)]
    struct Fake {
        next: u16,
        /// Tokens of empty buffers, and of filled ones with their frames.
        empty: VecDeque<u16>,
        filled: VecDeque<(u16, Vec<u8>)>,
        /// Frames that found no empty buffer (QEMU queues them).
        waiting: VecDeque<Vec<u8>>,
    }

    impl Fake {
        fn arrive(&mut self, frame: &[u8]) {
            self.waiting.push_back(frame.to_vec());
            self.deliver();
        }

        fn deliver(&mut self) {
            while !self.waiting.is_empty() {
                let Some(t) = self.empty.pop_front() else {
                    return;
                };
                let frame = self.waiting.pop_front().unwrap_or_default();
                self.filled.push_back((t, frame));
            }
        }
    }

    impl RxQueue for Fake {
        unsafe fn begin(&mut self, buf: &mut [u8]) -> Result<u16, QueueError> {
            assert_eq!(buf.len(), LEN);
            let t = self.next;
            self.next = (self.next + 1) % Q as u16;
            self.empty.push_back(t);
            // A device given a buffer takes what waited for one.
            self.deliver();
            Ok(t)
        }

        fn peek(&self) -> Option<u16> {
            self.filled.front().map(|(t, _)| *t)
        }

        unsafe fn complete(
            &mut self,
            token: u16,
            buf: &mut [u8],
        ) -> Result<(usize, usize), QueueError> {
            let (t, frame) = self.filled.pop_front().ok_or(QueueError)?;
            assert_eq!(t, token);
            let len = frame.len().min(LEN - HDR);
            if let (Some(dst), Some(src)) = (buf.get_mut(HDR..HDR + len), frame.get(..len)) {
                dst.copy_from_slice(src);
            }
            Ok((HDR, frame.len()))
        }
    }

    fn receiver() -> Receiver<Q> {
        Receiver::new(vec![0u8; Q * LEN].leak(), LEN).expect("room for the buffers")
    }

    fn take_all(rx: &mut Receiver<Q>, dev: &mut Fake) -> Vec<Option<Vec<u8>>> {
        let mut got = Vec::new();
        while let Some(f) = rx.take(dev, |f| f.map(<[u8]>::to_vec)).expect("take") {
            got.push(f);
        }
        got
    }

    #[test]
    fn a_buffer_goes_back_as_soon_as_its_frame_is_taken() {
        let (mut rx, mut dev) = (receiver(), Fake::default());
        rx.refill(&mut dev).expect("refill");
        assert_eq!((rx.held(), dev.empty.len()), (Q, Q));
        // Every buffer filled, and more frames than buffers.
        for n in 0..Q as u8 + 2 {
            dev.arrive(&[n; 10]);
        }
        assert_eq!((dev.empty.len(), dev.waiting.len()), (0, 2));
        assert!(rx.filled(&dev));
        // Taking the frames gives the device its buffers again, with
        // nothing else done: the frames that waited are received too.
        let got = take_all(&mut rx, &mut dev);
        let want: Vec<_> = (0..Q as u8 + 2).map(|n| Some(vec![n; 10])).collect();
        assert_eq!(got, want);
        assert_eq!((rx.held(), dev.empty.len()), (Q, Q));
        assert!(dev.waiting.is_empty() && !rx.filled(&dev));
    }

    #[test]
    fn bad_lengths_and_tokens_are_refused() {
        let (mut rx, mut dev) = (receiver(), Fake::default());
        rx.refill(&mut dev).expect("refill");
        // A frame longer than the buffer: no frame, and the buffer back.
        dev.arrive(&[7; LEN]);
        assert_eq!(rx.take(&mut dev, |f| f.is_none()), Ok(Some(true)));
        assert_eq!(rx.held(), Q);
        // A token never given out.
        dev.filled.push_back((Q as u16 + 3, vec![1]));
        assert_eq!(rx.take(&mut dev, |_| ()), Err(QueueError));
        assert!(Receiver::<Q>::new(vec![0u8; Q * LEN - 1].leak(), LEN).is_none());
    }
}
