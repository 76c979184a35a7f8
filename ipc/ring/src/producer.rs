//! The producer's end.

use core::fmt;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::sync::{fence, Ordering};
use crate::{Notify, RingError, SharedRing};

/// The producer's end of a [`SharedRing`]: fills slots, then publishes them.
pub struct Producer<'a, T, const N: usize> {
    ring: &'a SharedRing<T, N>,
    /// Next index to fill: the private copy of `head`, ahead of it by the unpublished
    /// items.
    head: u32,
    /// What `head` in shared memory was last set to.
    published: u32,
    /// The consumer's `tail` as last read and accepted.
    tail: u32,
    /// Items published so far.
    sent: u64,
    /// Times `publish` asked the caller to signal the consumer.
    signals: u64,
}

impl<'a, T: Pod, const N: usize> Producer<'a, T, N> {
    pub(crate) fn attach(ring: &'a SharedRing<T, N>) -> Self {
        // Our own index, read once: from here on the private copy is the truth.
        let head = ring.header.head.load(Ordering::Relaxed);
        Self {
            ring,
            head,
            published: head,
            // Until `tail` is read, assume the ring is full: the first push reads it and
            // accepts anything in [head - N, head].
            tail: head.wrapping_sub(SharedRing::<T, N>::CAPACITY),
            sent: 0,
            signals: 0,
        }
    }

    /// The producer's end of the ring in mapped shared memory at `ptr`.
    ///
    /// # Safety
    ///
    /// As for [`SharedRing::from_raw`]: for all of `'a`, `ptr` is aligned and valid for
    /// reads and writes of [`SharedRing::BYTES`] initialised bytes, and nothing in this
    /// program holds a `&mut` to them or accesses them non-atomically.
    pub unsafe fn from_raw(ptr: NonNull<SharedRing<T, N>>) -> Self {
        // SAFETY: forwarded to the caller, same contract.
        unsafe { SharedRing::from_raw(ptr) }.producer()
    }

    /// Reads the consumer's `tail` and accepts it if an honest consumer could have
    /// written it: no lower than the value accepted last time, no higher than what was
    /// published. Hence `0 <= head - tail <= N` always holds afterwards.
    fn refresh_tail(&mut self) -> Result<(), RingError> {
        // Acquire: the consumer's reads of the slots it released happen before our
        // overwriting them.
        let tail = self.ring.header.tail.load(Ordering::Acquire);
        if tail.wrapping_sub(self.tail) > self.published.wrapping_sub(self.tail) {
            return Err(RingError::Corrupt {
                head: self.head,
                tail,
            });
        }
        self.tail = tail;
        Ok(())
    }

    /// Free slots by the last accepted `tail` (may be fewer than there really are).
    fn free_cached(&self) -> u32 {
        // Never saturates: `head - tail <= N` is kept by `push` and `refresh_tail`.
        SharedRing::<T, N>::CAPACITY.saturating_sub(self.head.wrapping_sub(self.tail))
    }

    /// Writes `item` into the next free slot. It is not visible to the consumer until
    /// [`Producer::publish`]. Reads `tail` only when the ring looks full.
    ///
    /// # Errors
    ///
    /// [`RingError::Full`] if there is no free slot, [`RingError::Corrupt`] if `tail` is
    /// invalid. The item is not stored then.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), RingError> {
        if self.free_cached() == 0 {
            self.refresh_tail()?;
            if self.free_cached() == 0 {
                return Err(RingError::Full);
            }
        }
        self.ring.slot(self.head).store(item);
        self.head = self.head.wrapping_add(1);
        Ok(())
    }

    /// As [`Producer::push`], but writes only the first `bytes` of `item` (rounded up
    /// to the ring's unit of copy); the rest of the slot keeps what an earlier item
    /// left there. For items whose tail is often unused (a packet's buffer), which the
    /// consumer must then not trust past what the head says.
    ///
    /// # Errors
    ///
    /// As [`Producer::push`].
    #[inline]
    pub fn push_prefix(&mut self, item: &T, bytes: usize) -> Result<(), RingError> {
        if self.free_cached() == 0 {
            self.refresh_tail()?;
            if self.free_cached() == 0 {
                return Err(RingError::Full);
            }
        }
        self.ring.slot(self.head).store_prefix(item, bytes);
        self.head = self.head.wrapping_add(1);
        Ok(())
    }

    /// Makes every pushed item visible to the consumer (one `Release` store of `head`),
    /// then checks whether the consumer went to sleep. Returns `true` if it did: the
    /// caller must then signal it. The flag is cleared here, so one sleep is answered by
    /// one signal. Returns `false` without touching shared memory if nothing was pushed
    /// since the last publish.
    ///
    /// Nothing read here needs validating (any flag value means "set" or "clear"), so
    /// this cannot fail.
    #[inline]
    #[must_use = "if it returns true, the consumer must be signalled"]
    pub fn publish(&mut self) -> bool {
        if self.head == self.published {
            return false;
        }
        let header = &self.ring.header;
        header.head.store(self.head, Ordering::Release);
        self.sent += u64::from(self.head.wrapping_sub(self.published));
        self.published = self.head;
        // Pairs with the fence in `Consumer::prepare_sleep`: either we see its flag, or
        // it sees our head.
        fence(Ordering::SeqCst);
        // Take the flag only if it is still what we saw: one signal per request. (A
        // compare-exchange rather than a swap: the same here, but loom 0.7 can pair a
        // swap with a store out of modification order and report a lost wake-up that
        // cannot happen, tokio-rs/loom#254.)
        let seen = header.consumer_sleeping.load(Ordering::Relaxed);
        let asked = seen != 0
            && header
                .consumer_sleeping
                .compare_exchange(seen, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if asked {
            self.signals += 1;
        }
        asked
    }

    /// Before waiting for the consumer to free a slot: sets `producer_waiting`, then
    /// re-reads `tail`. Returns `true` if a slot was freed meanwhile: the caller must not
    /// wait (the flag is cleared again). On `false`, wait for the consumer's signal.
    ///
    /// Publish (and signal) before calling this: the consumer may be asleep waiting for
    /// exactly the pushed items.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` is invalid (the flag is cleared).
    pub fn prepare_wait(&mut self) -> Result<bool, RingError> {
        self.prepare_wait_for(1)
    }

    /// Like [`Producer::prepare_wait`], but for the ring to drain: returns `true` if the
    /// consumer has taken every item (the caller must not wait; the flag is cleared
    /// again). On `false`, wait for the consumer's signal, which its next release sends.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` is invalid (the flag is cleared).
    pub fn prepare_drain(&mut self) -> Result<bool, RingError> {
        self.prepare_wait_for(N)
    }

    /// Sets `producer_waiting`, then re-reads `tail`: `true` (flag cleared) if at
    /// least `free` slots are free.
    fn prepare_wait_for(&mut self, free: usize) -> Result<bool, RingError> {
        let header = &self.ring.header;
        header.producer_waiting.store(1, Ordering::Relaxed);
        // Pairs with the fence in `Consumer::release`.
        fence(Ordering::SeqCst);
        let enough = self
            .refresh_tail()
            .map(|()| self.free_cached() as usize >= free);
        if !matches!(enough, Ok(false)) {
            header.producer_waiting.store(0, Ordering::Relaxed);
        }
        enough
    }

    /// Takes back a `prepare_wait` whose wait was ended by something else than the
    /// consumer's signal (clears `producer_waiting`), saving the consumer a signal.
    pub fn cancel_wait(&mut self) {
        self.ring
            .header
            .producer_waiting
            .store(0, Ordering::Relaxed);
    }

    /// How many of `want` more items fit: by the cached `tail` if that leaves room for
    /// all of them, otherwise by `tail` read (and validated) once now.
    #[inline]
    fn reserve(&mut self, want: usize) -> Result<u32, RingError> {
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        if self.free_cached() < want {
            self.refresh_tail()?;
        }
        Ok(self.free_cached().min(want))
    }

    /// Copies the front of `items` into free slots, as many as fit, and returns how many.
    /// Like [`Producer::push`], they are not visible until [`Producer::publish`].
    ///
    /// The bulk form of `push`: the free count is checked once (reading `tail` only if
    /// the count cached from the last read is short of `items.len()`), then the items are
    /// copied in a loop with no per-item check, and the private `head` moves once.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` had to be read and is invalid; nothing is pushed.
    #[inline]
    pub fn push_slice(&mut self, items: &[T]) -> Result<usize, RingError> {
        let count = self.reserve(items.len())?;
        let (first, second) = self.ring.runs(self.head, count);
        let rest = items.get(first.len()..).unwrap_or_default();
        for (slot, &item) in first.iter().zip(items) {
            slot.store(item);
        }
        for (slot, &item) in second.iter().zip(rest) {
            slot.store(item);
        }
        self.head = self.head.wrapping_add(count);
        Ok(count as usize)
    }

    /// Fills up to `max` free slots with items made by `make`, called once per slot in
    /// order, and returns how many (so `make` ran exactly that many times). Not visible
    /// until [`Producer::publish`].
    ///
    /// The same bulk path as [`Producer::push_slice`], for a caller that builds each
    /// item anyway: it goes straight into its slot, with no staging buffer.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` had to be read and is invalid; `make` is not
    /// called and nothing is pushed.
    #[inline]
    pub fn push_with(
        &mut self,
        max: usize,
        mut make: impl FnMut() -> T,
    ) -> Result<usize, RingError> {
        let count = self.reserve(max)?;
        let (first, second) = self.ring.runs(self.head, count);
        for slot in first {
            slot.store(make());
        }
        for slot in second {
            slot.store(make());
        }
        // Only now: if `make` panics, the items it filled stay unpushed.
        self.head = self.head.wrapping_add(count);
        Ok(count as usize)
    }

    /// Pushes as many of `items` as fit ([`Producer::push_slice`]), publishes once and
    /// signals `consumer` if it sleeps. Never blocks. Returns how many items were sent
    /// (from the front).
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` is invalid: none of `items` is sent, but what was
    /// pushed before this call is published (and signalled) all the same.
    pub fn send_batch(&mut self, items: &[T], consumer: &impl Notify) -> Result<usize, RingError> {
        let result = self.push_slice(items);
        if self.publish() {
            consumer.notify();
        }
        result
    }

    /// Reads `tail` now and returns the number of free slots.
    ///
    /// # Errors
    ///
    /// [`RingError::Corrupt`] if `tail` is invalid.
    pub fn free(&mut self) -> Result<usize, RingError> {
        self.refresh_tail()?;
        Ok(self.free_cached() as usize)
    }

    /// Items pushed but not yet published.
    pub fn unpublished(&self) -> usize {
        self.head.wrapping_sub(self.published) as usize
    }

    /// The private `head`: the index the next push fills.
    pub fn head(&self) -> u32 {
        self.head
    }

    /// Items published so far by this handle.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Times [`Producer::publish`] returned `true` (the consumer had to be signalled):
    /// `signals() / sent()` is the signals-per-message figure.
    pub fn signals(&self) -> u64 {
        self.signals
    }

    /// The ring's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T, const N: usize> fmt::Debug for Producer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("head", &self.head)
            .field("published", &self.published)
            .field("tail", &self.tail)
            .field("sent", &self.sent)
            .field("signals", &self.signals)
            .finish_non_exhaustive()
    }
}
