//! `kaal-ring`: a single-producer single-consumer ring in memory shared by two
//! components that do not trust each other, with notification-based wake-ups as in the
//! sDDF queue protocol.
//!
//! # Layout
//!
//! A [`SharedRing<T, N>`] is `#[repr(C)]`: a 128-byte [`RingHeader`] (two cache lines)
//! followed by `N` slots of `T`. `N` is a power of two (checked at compile time), so a
//! free-running `u32` index maps to a slot as `index % N` and never leaves the array.
//!
//! ```text
//!  offset  field              written by                       read by
//!  0       head: u32          producer (Release)               consumer (Acquire)
//!  4       consumer_sleeping  consumer sets; producer clears   producer after publishing
//!  8..64   (padding)
//!  64      tail: u32          consumer (Release)               producer (Acquire)
//!  68      producer_waiting   producer sets; consumer clears   consumer after releasing
//!  72..128 (padding)
//!  128     slots: [T; N]      producer before publishing       consumer after acquiring
//! ```
//!
//! `head` counts the items ever published, `tail` the items ever consumed; both wrap
//! around `u32::MAX`. The ring holds `head - tail` items (wrapping subtraction).
//! Flags are `u32`: zero is clear, anything else is set (so any bit pattern is valid).
//!
//! # Distrust
//!
//! The peer may write anything into the shared page at any time. So:
//!
//! - each side keeps a **private copy of its own index** and never re-reads it from
//!   shared memory (it reads it once, when the handle is made);
//! - every index read from shared memory is **validated** before it is used. The
//!   consumer accepts a `head` only if `0 <= head - tail <= N`; the producer accepts a
//!   `tail` only if `0 <= head - tail <= N`. Both checks are in fact a little stricter:
//!   an honest peer's index only moves forward (it is never below the value accepted
//!   last time) and never passes what this side has made possible (a `tail` past the
//!   published `head`, a `head` more than `N` past the released `tail`). Anything else
//!   is [`RingError::Corrupt`] carrying both values: never an out-of-bounds access, a
//!   panic or a loop;
//! - slots are copied in and out with relaxed atomic accesses (see below), so a peer
//!   that writes a slot while it is read yields a garbled but valid `T` (`T:`
//!   [`bytemuck::Pod`]: every bit pattern is a value). Validating a *message* is the
//!   receiver's job; the ring only guarantees it is memory-safe to look at.
//!
//! # Protocol
//!
//! ```text
//!  producer                                   consumer
//!  push(x):   slot[head % N] = x; head += 1   pop():     if nothing cached: h = head (Acquire),
//!             (private; not yet visible)                 validate; x = slot[tail % N]; tail += 1
//!  publish(): head = head (Release)           release(): tail = tail (Release)
//!             fence(SeqCst)                              fence(SeqCst)
//!             if consumer_sleeping:                      if producer_waiting:
//!                clear it, return true  ──signal──►         clear it, return true ──signal──► producer
//! ```
//!
//! Operations never block. A consumer that finds the ring empty and wants to sleep calls
//! [`Consumer::prepare_sleep`], which closes the race with a producer that publishes at
//! the same moment (a store-buffering pattern, decided by the two `SeqCst` fences):
//!
//! ```text
//!  consumer                                   producer
//!  consumer_sleeping = 1                      head = h + 1            (Release)
//!  fence(SeqCst) ────── one comes first ───── fence(SeqCst)
//!  read head: new item? clear flag, go on     read consumer_sleeping: set? clear, signal
//!             nothing?  wait for a signal
//! ```
//!
//! If the consumer's fence is first in the single total order of `SeqCst` fences, the
//! producer's flag read sees `1` and it signals; if the producer's is first, the
//! consumer's `head` read sees the item and it does not sleep. Either way no item is
//! left behind a sleeping consumer. The producer, when it finds the ring full, does the
//! mirror image with `producer_waiting` ([`Producer::prepare_wait`]) against
//! [`Consumer::release`]. A signal may be spurious (both sides saw each other); waiters
//! re-check the ring after waking, so that is harmless.
//!
//! **Signal suppression**: the side that signals clears the flag (an atomic
//! compare-exchange from the value it saw to zero), so a sleeping consumer gets one
//! signal however many batches are published before it runs again, and a consumer that
//! never sleeps is never signalled. Publishing once per batch ([`Producer::send_batch`])
//! costs one `Release` store and one fence per batch; publishing every item costs a
//! fence per item, the price of never losing a wake-up (see the README's figures).
//!
//! Blocking is the caller's business, through [`Notify`] to signal the peer (an seL4
//! notification `Signal` on seL4) and its own wait (a notification `Wait`):
//!
//! ```
//! use core::sync::atomic::{AtomicUsize, Ordering};
//! use kaal_ring::{Notify, RingError, SharedRing};
//!
//! struct Counter(AtomicUsize); // stands in for an seL4 notification
//! impl Notify for Counter {
//!     fn notify(&self) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! # fn main() -> Result<(), RingError> {
//! let ring = SharedRing::<u64, 8>::new();
//! let (mut tx, mut rx) = ring.split();
//! let (to_consumer, to_producer) = (Counter(AtomicUsize::new(0)), Counter(AtomicUsize::new(0)));
//!
//! // Consumer: nothing there, so it prepares to sleep. `false`: it must now wait.
//! assert_eq!(rx.pop()?, None);
//! if rx.release() {
//!     to_producer.notify();
//! }
//! assert!(!rx.prepare_sleep()?);
//!
//! // Producer: one batch, one publish, one signal (the consumer asked for it).
//! assert_eq!(tx.send_batch(&[1, 2, 3], &to_consumer)?, 3);
//! assert_eq!(to_consumer.0.load(Ordering::Relaxed), 1);
//!
//! // Consumer, woken: takes everything, then releases the slots.
//! let mut got = [0; 8];
//! assert_eq!(rx.recv_batch(&mut got, &to_producer)?, 3);
//! assert_eq!(got[..3], [1, 2, 3]);
//! # Ok(())
//! # }
//! ```
//!
//! The blocking loops, with `wait()` being a notification wait:
//!
//! ```text
//! consumer: loop {                              producer: loop {
//!   match rx.pop()? {                             match tx.push(x) {
//!     Some(x) => handle(x),                         Ok(()) => break,
//!     None => {                                     Err(RingError::Full) => {
//!       if rx.release() { signal(producer) }          if tx.publish() { signal(consumer) }
//!       if !rx.prepare_sleep()? { wait() }             if !tx.prepare_wait()? { wait() }
//!     }                                             }
//!   }                                               Err(e) => return Err(e),
//! }                                               }
//!                                               }
//!                                               if tx.publish() { signal(consumer) }
//! ```
//!
//! Release before sleeping and publish before waiting: the peer may be waiting for
//! exactly those slots or items.
//!
//! # Bulk
//!
//! [`Producer::push_slice`] and [`Producer::push_with`], [`Consumer::pop_into`] and
//! [`Consumer::pop_with`] move many items per call: the free (or ready) count is checked
//! once, by the peer's index cached from the last read or, if that is short of the
//! request, by one validated read; then the items are copied in a loop with no per-item
//! check, and the private index moves once. [`Producer::send_batch`] and
//! [`Consumer::recv_batch`] are these plus one publish or release.
//!
//! # Model
//!
//! Under `--cfg loom` the atomics and fences are loom's and slots are loom cells, so
//! `tests/loom.rs` can check every interleaving of both protocols (see the README).
#![cfg_attr(not(test), no_std)]

mod consumer;
mod producer;
mod sync;

use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;

use bytemuck::Pod;

pub use consumer::Consumer;
pub use producer::Producer;

use crate::sync::{AtomicU32, Ordering, Slot};

/// Signals the peer that it has work: an seL4 notification `Signal` on seL4, a test
/// double on the host.
pub trait Notify {
    /// Wakes the peer (or leaves it a pending signal if it is not waiting yet).
    fn notify(&self);
}

impl<N: Notify + ?Sized> Notify for &N {
    fn notify(&self) {
        (**self).notify();
    }
}

/// What can go wrong with a ring operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The producer found no free slot.
    Full,
    /// An index read from shared memory is one no honest peer could have written. One of
    /// the two is this side's private index, the other the value read.
    Corrupt {
        /// The producer's index (read by the consumer, private to the producer).
        head: u32,
        /// The consumer's index (read by the producer, private to the consumer).
        tail: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "ring full"),
            Self::Corrupt { head, tail } => {
                write!(f, "ring corrupt: head {head:#x}, tail {tail:#x}")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// The header of a shared ring: two cache lines, one per writer's hot index.
///
/// Every field may be written by the peer at any time; the atomics are public so that a
/// test can play a hostile peer. This component's own handles never trust them.
#[repr(C, align(64))]
pub struct RingHeader {
    /// Items ever published by the producer (free-running). Written by the producer.
    pub head: AtomicU32,
    /// Nonzero: the consumer is about to sleep and wants a signal on the next publish.
    /// Set by the consumer, cleared by the producer when it signals.
    pub consumer_sleeping: AtomicU32,
    _producer_line: UnsafeCell<[u8; 56]>,
    /// Items ever consumed (free-running). Written by the consumer.
    pub tail: AtomicU32,
    /// Nonzero: the producer found the ring full and wants a signal on the next release.
    /// Set by the producer, cleared by the consumer when it signals.
    pub producer_waiting: AtomicU32,
    _consumer_line: UnsafeCell<[u8; 56]>,
}

impl RingHeader {
    fn new(start: u32) -> Self {
        Self {
            head: AtomicU32::new(start),
            consumer_sleeping: AtomicU32::new(0),
            _producer_line: UnsafeCell::new([0; 56]),
            tail: AtomicU32::new(start),
            producer_waiting: AtomicU32::new(0),
            _consumer_line: UnsafeCell::new([0; 56]),
        }
    }
}

/// A single-producer single-consumer ring of `N` slots of `T`, meant to live in memory
/// shared between two components. See the [crate docs](crate) for the protocol.
#[repr(C)]
pub struct SharedRing<T, const N: usize> {
    header: RingHeader,
    slots: [Slot<T>; N],
}

// SAFETY: besides its atomics, the header holds only the padding cells, which are never
// accessed after construction.
unsafe impl Sync for RingHeader {}

// SAFETY: all shared state is accessed only through atomics (indices, flags, and the
// relaxed atomic copies of `Slot`), so any number of threads may use a `&SharedRing`
// without data races, whatever they do. Under loom, slots are loom cells whose
// unordered use loom reports.
unsafe impl<T: Pod + Send, const N: usize> Sync for SharedRing<T, N> {}

// Layout that a peer written in another language relies on.
#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<RingHeader>() == 128);
    assert!(core::mem::offset_of!(RingHeader, head) == 0);
    assert!(core::mem::offset_of!(RingHeader, consumer_sleeping) == 4);
    assert!(core::mem::offset_of!(RingHeader, tail) == 64);
    assert!(core::mem::offset_of!(RingHeader, producer_waiting) == 68);
    assert!(core::mem::offset_of!(SharedRing<u64, 4>, slots) == 128);
};

impl<T: Pod, const N: usize> SharedRing<T, N> {
    /// Compile-time check of `N`, evaluated by every constructor and handle.
    const VALID_N: () = assert!(
        N.is_power_of_two() && N <= 1 << 31,
        "SharedRing: N must be a power of two no larger than 2^31"
    );

    /// `N` as the index arithmetic's type (lossless: `N <= 2^31`).
    const CAPACITY: u32 = N as u32;

    /// Bytes of shared memory a ring occupies (header and slots).
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// A ring with both indices at zero and zeroed slots, for rings that live in this
    /// component's own memory (tests, benchmarks, two threads of one component).
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// A ring whose indices both start at `start`: for tests of index wrap-around.
    pub fn starting_at(start: u32) -> Self {
        let () = Self::VALID_N;
        Self {
            header: RingHeader::new(start),
            slots: core::array::from_fn(|_| Slot::new(T::zeroed())),
        }
    }

    /// Resets the header (both indices and both flags to zero) of a ring that is not in
    /// use yet, e.g. by the component that sets up the shared memory before it hands the
    /// peer its capability. Slots are left alone: any contents are valid.
    pub fn init(&mut self) {
        self.init_at(0);
    }

    /// Like [`SharedRing::init`], with both indices at `start` (tests of wrap-around).
    pub fn init_at(&mut self, start: u32) {
        let () = Self::VALID_N;
        let header = &self.header;
        header.head.store(start, Ordering::Relaxed);
        header.tail.store(start, Ordering::Relaxed);
        header.consumer_sleeping.store(0, Ordering::Relaxed);
        header.producer_waiting.store(0, Ordering::Relaxed);
    }

    /// The ring in mapped shared memory at `ptr`.
    ///
    /// # Safety
    ///
    /// For all of `'a`, `ptr` must be aligned to `align_of::<SharedRing<T, N>>()` (64)
    /// and valid for reads and writes of [`SharedRing::BYTES`] bytes of initialised
    /// memory (e.g. a frame mapped for the whole lifetime), and nothing in this program
    /// may hold a `&mut` to that memory or access it non-atomically. Its contents need
    /// not be trustworthy: any bit pattern is a valid ring, and the peer may change it
    /// at any time.
    pub unsafe fn from_raw<'a>(ptr: NonNull<Self>) -> &'a Self {
        let () = Self::VALID_N;
        // SAFETY: the caller guarantees alignment, validity and no exclusive borrow for
        // 'a; all fields are interior-mutable, so shared access by the peer is allowed.
        unsafe { ptr.as_ref() }
    }

    /// The header, as the peer sees it. Writing it plays a (possibly hostile) peer.
    pub fn header(&self) -> &RingHeader {
        &self.header
    }

    /// The producer's handle, taking its private `head` from the header now.
    ///
    /// There should be one producer per ring. Safe code cannot cause undefined behaviour
    /// with more (every access is atomic), only garbled messages and `Corrupt` errors,
    /// the same as from a misbehaving peer.
    pub fn producer(&self) -> Producer<'_, T, N> {
        let () = Self::VALID_N;
        Producer::attach(self)
    }

    /// The consumer's handle, taking its private `tail` from the header now. One per
    /// ring, as for [`SharedRing::producer`].
    pub fn consumer(&self) -> Consumer<'_, T, N> {
        let () = Self::VALID_N;
        Consumer::attach(self)
    }

    /// Both handles, for rings whose two ends live in one component.
    pub fn split(&self) -> (Producer<'_, T, N>, Consumer<'_, T, N>) {
        (self.producer(), self.consumer())
    }

    /// The slot of free-running index `index`.
    #[inline]
    fn slot(&self, index: u32) -> &Slot<T> {
        let at = index as usize & (N - 1);
        #[allow(clippy::indexing_slicing)] // masked by N - 1, N a power of two: always < N
        let slot = &self.slots[at];
        slot
    }

    /// The `count` slots from free-running index `start` on, as two contiguous runs:
    /// up to the end of the array, then from its start. `count` is capped at `N`, so the
    /// runs never overlap and never leave the array whatever the arguments.
    #[inline]
    fn runs(&self, start: u32, count: u32) -> (&[Slot<T>], &[Slot<T>]) {
        let at = start as usize & (N - 1);
        let count = (count as usize).min(N);
        let first = count.min(N - at);
        // `at < N` and `first <= N - at`; `count - first <= at`: never out of range, and
        // the empty fallbacks are never taken.
        let (before, from_at) = self.slots.split_at_checked(at).unwrap_or_default();
        (
            from_at.get(..first).unwrap_or_default(),
            before.get(..count - first).unwrap_or_default(),
        )
    }
}

impl<T: Pod, const N: usize> Default for SharedRing<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for SharedRing<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        f.debug_struct("SharedRing")
            .field("capacity", &N)
            .field("head", &h.head.load(Ordering::Relaxed))
            .field("tail", &h.tail.load(Ordering::Relaxed))
            .field(
                "consumer_sleeping",
                &h.consumer_sleeping.load(Ordering::Relaxed),
            )
            .field(
                "producer_waiting",
                &h.producer_waiting.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
