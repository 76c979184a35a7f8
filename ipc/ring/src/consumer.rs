//! The consumer's end.

use core::fmt;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::sync::{fence, Ordering};
use crate::{Notify, RingError, SharedRing};

/// The consumer's end of a [`SharedRing`]: takes items, then releases their slots.
pub struct Consumer<'a, T, const N: usize> {
    ring: &'a SharedRing<T, N>,
    /// Next index to read: the private copy of `tail`, ahead of it by the unreleased
    /// items.
    tail: u32,
    /// What `tail` in shared memory was last set to.
    released: u32,
    /// The producer's `head` as last read and accepted.
    head: u32,
    /// Items released so far.
    received: u64,
    /// Times `release` asked the caller to signal the producer.
    signals: u64,
}

impl<'a, T: Pod, const N: usize> Consumer<'a, T, N> {
    pub(crate) fn attach(ring: &'a SharedRing<T, N>) -> Self {
        // Our own index, read once: from here on the private copy is the truth.
        let tail = ring.header.tail.load(Ordering::Relaxed);
        Self {
            ring,
            tail,
            released: tail,
            // Until `head` is read, assume the ring is empty: the first pop reads it and
            // accepts anything in [tail, tail + N].
            head: tail,
            received: 0,
            signals: 0,
        }
    }

    /// The consumer's end of the ring in mapped shared memory at `ptr`.
    ///
    /// # Safety
    ///
    /// As for [`SharedRing::from_raw`]: for all of `'a`, `ptr` is aligned and valid for
    /// reads and writes of [`SharedRing::BYTES`] initialised bytes, and nothing in this
    /// program holds a `&mut` to them or accesses them non-atomically.
    pub unsafe fn from_raw(ptr: NonNull<SharedRing<T, N>>) -> Self {
        // SAFETY: forwarded to the caller, same contract.
        unsafe { SharedRing::from_raw(ptr) }.consumer()
    }

    /// Reads the producer's `head` and accepts it if an honest producer could have
    /// written it: no lower than the value accepted last time, at most `N` past the
    /// released `tail`. Hence `0 <= head - tail <= N` always holds afterwards.
    fn refresh_head(&mut self) -> Result<(), RingError> {
        // Acquire: the producer's slot writes happen before our reading them.
        let head = self.ring.header.head.load(Ordering::Acquire);
        let limit = self.released.wrapping_add(SharedRing::<T, N>::CAPACITY);
        if head.wrapping_sub(self.head) > limit.wrapping_sub(self.head) {
            return Err(RingError::Corrupt {
                head,
                tail: self.tail,
            });
        }
        self.head = head;
        Ok(())
    }

    /// Takes the next item, or `None` if the ring is empty. Reads `head` only when the
    /// items seen last time are used up. The slot stays reserved until
    /// [`Consumer::release`].
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` is invalid.
    #[inline]
    pub fn pop(&mut self) -> Result<Option<T>, RingError> {
        if self.head == self.tail {
            self.refresh_head()?;
            if self.head == self.tail {
                return Ok(None);
            }
        }
        let item = self.ring.slot(self.tail).load();
        self.tail = self.tail.wrapping_add(1);
        Ok(Some(item))
    }

    /// As [`Consumer::pop`], into `out`, reading only what matters of the slot: its
    /// first `head` bytes, then up to the byte `len(out)` returns (each rounded to the
    /// ring's unit of copy). Bytes of `out` past that keep what they held. `false` if
    /// the ring is empty (`out` untouched).
    ///
    /// # Errors
    ///
    /// As [`Consumer::pop`].
    #[inline]
    pub fn pop_prefix(
        &mut self,
        out: &mut T,
        head: usize,
        len: impl FnOnce(&T) -> usize,
    ) -> Result<bool, RingError> {
        if self.head == self.tail {
            self.refresh_head()?;
            if self.head == self.tail {
                return Ok(false);
            }
        }
        let slot = self.ring.slot(self.tail);
        slot.load_range(out, 0, head);
        let end = len(out);
        if end > head {
            slot.load_range(out, head, end);
        }
        self.tail = self.tail.wrapping_add(1);
        Ok(true)
    }

    /// Gives the slots of every popped item back to the producer (one `Release` store of
    /// `tail`), then checks whether the producer is waiting for space. Returns `true` if
    /// it is: the caller must then signal it (the flag is cleared here). Returns `false`
    /// without touching shared memory if nothing was popped since the last release.
    #[inline]
    #[must_use = "if it returns true, the producer must be signalled"]
    pub fn release(&mut self) -> bool {
        if self.tail == self.released {
            return false;
        }
        let header = &self.ring.header;
        header.tail.store(self.tail, Ordering::Release);
        self.received += u64::from(self.tail.wrapping_sub(self.released));
        self.released = self.tail;
        // Pairs with the fence in `Producer::prepare_wait`.
        fence(Ordering::SeqCst);
        // Take the flag only if it is still what we saw: one signal per request. (A
        // compare-exchange rather than a swap: the same here, but loom 0.7 can pair a
        // swap with a store out of modification order and report a lost wake-up that
        // cannot happen, tokio-rs/loom#254.)
        let seen = header.producer_waiting.load(Ordering::Relaxed);
        let asked = seen != 0
            && header
                .producer_waiting
                .compare_exchange(seen, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if asked {
            self.signals += 1;
        }
        asked
    }

    /// Before sleeping on an empty ring: sets `consumer_sleeping` (then a `SeqCst`
    /// fence), then re-reads `head`. Returns `true` if items arrived meanwhile: the caller
    /// must not sleep (the flag is cleared again). On `false`, wait for the producer's
    /// signal; the next publish sends it.
    ///
    /// Release (and signal) before calling this: the producer may be waiting for exactly
    /// those slots.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` is invalid (the flag is cleared).
    pub fn prepare_sleep(&mut self) -> Result<bool, RingError> {
        let header = &self.ring.header;
        header.consumer_sleeping.store(1, Ordering::Relaxed);
        // Pairs with the fence in `Producer::publish`: either we see its head, or it
        // sees our flag.
        fence(Ordering::SeqCst);
        let arrived = self.refresh_head().map(|()| self.head != self.tail);
        if !matches!(arrived, Ok(false)) {
            header.consumer_sleeping.store(0, Ordering::Relaxed);
        }
        arrived
    }

    /// Takes back a `prepare_sleep` whose sleep was ended by something else than the
    /// producer's signal (clears `consumer_sleeping`), saving the producer a signal.
    pub fn cancel_sleep(&mut self) {
        self.ring
            .header
            .consumer_sleeping
            .store(0, Ordering::Relaxed);
    }

    /// How many of `want` more items are ready: by the cached `head` if that covers all
    /// of them, otherwise by `head` read (and validated) once now.
    #[inline]
    fn ready(&mut self, want: usize) -> Result<u32, RingError> {
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        // Never above `N`: `refresh_head` keeps `0 <= head - tail <= N`.
        if self.head.wrapping_sub(self.tail) < want {
            self.refresh_head()?;
        }
        Ok(self.head.wrapping_sub(self.tail).min(want))
    }

    /// Copies up to `out.len()` ready items to the front of `out` and returns how many.
    /// Like [`Consumer::pop`], their slots stay reserved until [`Consumer::release`].
    ///
    /// The bulk form of `pop`: the ready count is checked once (reading `head` only if
    /// the count cached from the last read is short of `out.len()`), then the items are
    /// copied in a loop with no per-item check, and the private `tail` moves once.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` had to be read and is invalid; nothing is popped.
    #[inline]
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<usize, RingError> {
        let count = self.ready(out.len())?;
        let (first, second) = self.ring.runs(self.tail, count);
        let (out_first, out_rest) = out.split_at_mut_checked(first.len()).unwrap_or_default();
        for (dst, slot) in out_first.iter_mut().zip(first) {
            *dst = slot.load();
        }
        for (dst, slot) in out_rest.iter_mut().zip(second) {
            *dst = slot.load();
        }
        self.tail = self.tail.wrapping_add(count);
        Ok(count as usize)
    }

    /// Hands up to `max` ready items, in order, to `take` and returns how many (so `take`
    /// ran exactly that many times). Their slots stay reserved until
    /// [`Consumer::release`].
    ///
    /// The same bulk path as [`Consumer::pop_into`], for a caller that looks at each
    /// item once: each is read from its slot straight into `take`, with no staging
    /// buffer. Every item is a copy, so `take` never sees a slot the producer can change.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` had to be read and is invalid; `take` is not
    /// called and nothing is popped.
    #[inline]
    pub fn pop_with(&mut self, max: usize, mut take: impl FnMut(T)) -> Result<usize, RingError> {
        let count = self.ready(max)?;
        let (first, second) = self.ring.runs(self.tail, count);
        for slot in first {
            take(slot.load());
        }
        for slot in second {
            take(slot.load());
        }
        // Only now: if `take` panics, the items stay unpopped.
        self.tail = self.tail.wrapping_add(count);
        Ok(count as usize)
    }

    /// Pops up to `out.len()` items into `out` ([`Consumer::pop_into`]), releases their
    /// slots (and any popped before) once and signals `producer` if it waits for space.
    /// Never blocks. Returns how many were taken.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` is invalid: nothing is taken, but what was popped
    /// before this call is released (and signalled) all the same.
    pub fn recv_batch(
        &mut self,
        out: &mut [T],
        producer: &impl Notify,
    ) -> Result<usize, RingError> {
        let result = self.pop_into(out);
        if self.release() {
            producer.notify();
        }
        result
    }

    /// Reads `head` now and returns the number of items ready to pop.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `head` is invalid.
    pub fn available(&mut self) -> Result<usize, RingError> {
        self.refresh_head()?;
        Ok(self.head.wrapping_sub(self.tail) as usize)
    }

    /// Items popped but not yet released.
    pub fn unreleased(&self) -> usize {
        self.tail.wrapping_sub(self.released) as usize
    }

    /// The private `tail`: the index the next pop reads.
    pub fn tail(&self) -> u32 {
        self.tail
    }

    /// Items released so far by this handle.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Times [`Consumer::release`] returned `true` (the producer had to be signalled).
    pub fn signals(&self) -> u64 {
        self.signals
    }

    /// The ring's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T, const N: usize> fmt::Debug for Consumer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("tail", &self.tail)
            .field("released", &self.released)
            .field("head", &self.head)
            .field("received", &self.received)
            .field("signals", &self.signals)
            .finish_non_exhaustive()
    }
}
