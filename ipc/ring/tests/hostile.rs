//! Property tests: a ring against a `VecDeque` model, and each end against a hostile
//! peer that writes arbitrary values into the shared header between operations.
#![cfg(not(loom))]

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use kaal_ring::{Consumer, Producer, RingError, SharedRing};
use proptest::prelude::*;

const N: usize = 8;
const CAP: u32 = N as u32;
type Ring = SharedRing<u64, N>;

/// Start indices: anywhere, with the neighbourhood of the wrap-around point favoured.
fn start() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (0..2 * CAP).prop_map(|k| u32::MAX - k),
        Just(0u32),
    ]
}

/// A value a hostile peer writes into an index: anything, or something near a valid one.
#[derive(Debug, Clone, Copy)]
enum Forged {
    Any(u32),
    /// The honest value plus this offset (wrapping): off by a little, either way.
    Near(i8),
}

fn forged() -> impl Strategy<Value = Forged> {
    prop_oneof![
        any::<u32>().prop_map(Forged::Any),
        (-(2 * CAP as i8)..=2 * CAP as i8).prop_map(Forged::Near),
    ]
}

impl Forged {
    fn value(self, honest: u32) -> u32 {
        match self {
            Self::Any(v) => v,
            Self::Near(d) => honest.wrapping_add_signed(i32::from(d)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Both ends honest: the ring behaves like a queue.

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    /// `push_slice` of these items (up to twice the capacity).
    PushSlice(Vec<u64>),
    /// `push_with(max, ..)` making `base`, `base + 1`, ...
    PushWith(usize, u64),
    Publish,
    Pop,
    /// `pop_into` a buffer of this length.
    PopInto(usize),
    /// `pop_with(max, ..)`.
    PopWith(usize),
    Release,
    PrepareSleep,
    PrepareWait,
}

/// A bulk length: empty, within the ring, or more than it holds.
fn bulk_len() -> impl Strategy<Value = usize> {
    0..=2 * N
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u64>().prop_map(Op::Push),
        2 => prop::collection::vec(any::<u64>(), 0..=2 * N).prop_map(Op::PushSlice),
        2 => (bulk_len(), any::<u64>()).prop_map(|(n, base)| Op::PushWith(n, base)),
        2 => Just(Op::Publish),
        4 => Just(Op::Pop),
        2 => bulk_len().prop_map(Op::PopInto),
        2 => bulk_len().prop_map(Op::PopWith),
        2 => Just(Op::Release),
        1 => Just(Op::PrepareSleep),
        1 => Just(Op::PrepareWait),
    ]
}

/// What `push_with` sees from its `make`: the items it made, in order.
fn made(base: u64, count: usize) -> Vec<u64> {
    (0..count as u64).map(|i| base.wrapping_add(i)).collect()
}

/// A buffer for `pop_into`, filled with a value no test pushes twice in a row.
const UNTOUCHED: u64 = 0x5eed_5eed_5eed_5eed;

/// What the two ends should do, by the protocol's definition.
#[derive(Default)]
struct Model {
    unpublished: VecDeque<u64>,
    published: VecDeque<u64>,
    /// Popped, slot not yet released.
    unreleased: u32,
    /// Pushed and not released: the slots the producer cannot use.
    occupied: u32,
    consumer_sleeping: bool,
    producer_waiting: bool,
    pushed: u32,
    released: u32,
}

proptest! {
    #[test]
    fn valid_sequences_match_a_vecdeque(
        start in start(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let ring = Ring::starting_at(start);
        let (mut tx, mut rx) = ring.split();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Push(v) => {
                    let expected = if model.occupied == CAP {
                        Err(RingError::Full)
                    } else {
                        model.unpublished.push_back(v);
                        model.occupied += 1;
                        model.pushed += 1;
                        Ok(())
                    };
                    prop_assert_eq!(tx.push(v), expected);
                }
                Op::PushSlice(items) => {
                    let n = items.len().min((CAP - model.occupied) as usize);
                    model.unpublished.extend(items.iter().take(n));
                    model.occupied += n as u32;
                    model.pushed += n as u32;
                    prop_assert_eq!(tx.push_slice(&items), Ok(n));
                }
                Op::PushWith(max, base) => {
                    let n = max.min((CAP - model.occupied) as usize);
                    let items = made(base, n);
                    model.unpublished.extend(&items);
                    model.occupied += n as u32;
                    model.pushed += n as u32;
                    let mut next = base;
                    let got = tx.push_with(max, || {
                        let item = next;
                        next = next.wrapping_add(1);
                        item
                    });
                    prop_assert_eq!(got, Ok(n));
                    prop_assert_eq!(next, base.wrapping_add(n as u64), "make ran once per item");
                }
                Op::Publish => {
                    let expected = !model.unpublished.is_empty() && model.consumer_sleeping;
                    if !model.unpublished.is_empty() {
                        model.consumer_sleeping = false;
                    }
                    model.published.extend(model.unpublished.drain(..));
                    prop_assert_eq!(tx.publish(), expected);
                }
                Op::Pop => {
                    let expected = model.published.pop_front();
                    if expected.is_some() {
                        model.unreleased += 1;
                    }
                    prop_assert_eq!(rx.pop(), Ok(expected));
                }
                Op::PopInto(len) => {
                    let n = len.min(model.published.len());
                    let mut expected: Vec<u64> = model.published.drain(..n).collect();
                    model.unreleased += n as u32;
                    let mut out = vec![UNTOUCHED; len];
                    prop_assert_eq!(rx.pop_into(&mut out), Ok(n));
                    expected.resize(len, UNTOUCHED);
                    prop_assert_eq!(out, expected);
                }
                Op::PopWith(max) => {
                    let n = max.min(model.published.len());
                    let expected: Vec<u64> = model.published.drain(..n).collect();
                    model.unreleased += n as u32;
                    let mut got = Vec::new();
                    prop_assert_eq!(rx.pop_with(max, |item| got.push(item)), Ok(n));
                    prop_assert_eq!(got, expected);
                }
                Op::Release => {
                    let expected = model.unreleased > 0 && model.producer_waiting;
                    if model.unreleased > 0 {
                        model.producer_waiting = false;
                    }
                    model.occupied -= model.unreleased;
                    model.released += model.unreleased;
                    model.unreleased = 0;
                    prop_assert_eq!(rx.release(), expected);
                }
                Op::PrepareSleep => {
                    let arrived = !model.published.is_empty();
                    model.consumer_sleeping = !arrived;
                    prop_assert_eq!(rx.prepare_sleep(), Ok(arrived));
                }
                Op::PrepareWait => {
                    let space = model.occupied < CAP;
                    model.producer_waiting = !space;
                    prop_assert_eq!(tx.prepare_wait(), Ok(space));
                }
            }
            let header = ring.header();
            let published = model.pushed - model.unpublished.len() as u32;
            prop_assert_eq!(header.head.load(Ordering::Relaxed), start.wrapping_add(published));
            prop_assert_eq!(header.tail.load(Ordering::Relaxed), start.wrapping_add(model.released));
            prop_assert_eq!(
                header.consumer_sleeping.load(Ordering::Relaxed) != 0,
                model.consumer_sleeping
            );
            prop_assert_eq!(
                header.producer_waiting.load(Ordering::Relaxed) != 0,
                model.producer_waiting
            );
            prop_assert_eq!(tx.unpublished(), model.unpublished.len());
            prop_assert_eq!(rx.unreleased(), model.unreleased as usize);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A hostile consumer: the producer must accept exactly the honest `tail` values.

#[derive(Debug, Clone)]
enum ProducerOp {
    Push(u64),
    /// `push_slice` of this many items.
    PushSlice(usize),
    /// `push_with` of up to this many items.
    PushWith(usize),
    Publish,
    PrepareWait,
    Free,
    /// The consumer writes `tail`, relative to the producer's published head.
    WriteTail(Forged),
    WriteFlag(u32),
    /// Writes `head`, which the producer must ignore.
    WriteHead(u32),
}

fn producer_op() -> impl Strategy<Value = ProducerOp> {
    prop_oneof![
        4 => any::<u64>().prop_map(ProducerOp::Push),
        2 => bulk_len().prop_map(ProducerOp::PushSlice),
        2 => bulk_len().prop_map(ProducerOp::PushWith),
        2 => Just(ProducerOp::Publish),
        1 => Just(ProducerOp::PrepareWait),
        1 => Just(ProducerOp::Free),
        4 => forged().prop_map(ProducerOp::WriteTail),
        1 => any::<u32>().prop_map(ProducerOp::WriteFlag),
        1 => any::<u32>().prop_map(ProducerOp::WriteHead),
    ]
}

/// The producer's view, by the protocol: `tail` is accepted if it lies between the value
/// accepted last (initially `head - N`) and the published head.
struct ProducerOracle {
    head: u32,
    published: u32,
    accepted_tail: u32,
}

impl ProducerOracle {
    /// The outcome of reading `tail == t`; updates the accepted value.
    fn read(&mut self, t: u32) -> Result<(), RingError> {
        if t.wrapping_sub(self.accepted_tail) <= self.published.wrapping_sub(self.accepted_tail) {
            self.accepted_tail = t;
            Ok(())
        } else {
            Err(RingError::Corrupt {
                head: self.head,
                tail: t,
            })
        }
    }

    fn free(&self) -> u32 {
        CAP - self.head.wrapping_sub(self.accepted_tail)
    }

    /// The outcome of a bulk push of `want` items with `tail == t` in memory: `tail` is
    /// read only if the free count cached from the last read is short of `want`.
    fn bulk(&mut self, want: usize, t: u32) -> Result<usize, RingError> {
        if (self.free() as usize) < want {
            self.read(t)?;
        }
        let n = want.min(self.free() as usize);
        self.head = self.head.wrapping_add(n as u32);
        Ok(n)
    }
}

proptest! {
    #[test]
    fn a_hostile_consumer_is_caught(
        start in start(),
        ops in prop::collection::vec(producer_op(), 0..200),
    ) {
        let ring = Ring::starting_at(start);
        let mut tx = ring.producer();
        let header = ring.header();
        let mut oracle = ProducerOracle {
            head: start,
            published: start,
            accepted_tail: start.wrapping_sub(CAP),
        };
        for op in ops {
            let tail = header.tail.load(Ordering::Relaxed);
            // The specification's check, independent of the oracle: a tail more than N
            // behind (or any amount ahead of) head is always corrupt.
            let spec_corrupt = oracle.head.wrapping_sub(tail) > CAP;
            match op {
                ProducerOp::Push(v) => {
                    let got = tx.push(v);
                    let reads_tail = oracle.free() == 0;
                    if reads_tail && spec_corrupt {
                        prop_assert!(matches!(got, Err(RingError::Corrupt { .. })), "push: {:?}", got);
                    }
                    let expected = if reads_tail {
                        oracle.read(tail).and_then(|()| {
                            if oracle.free() == 0 { Err(RingError::Full) } else { Ok(()) }
                        })
                    } else {
                        Ok(())
                    };
                    if expected.is_ok() {
                        oracle.head = oracle.head.wrapping_add(1);
                    }
                    prop_assert_eq!(got, expected);
                }
                ProducerOp::PushSlice(len) => {
                    let reads_tail = (oracle.free() as usize) < len;
                    let got = tx.push_slice(&vec![7; len]);
                    if reads_tail && spec_corrupt {
                        prop_assert!(got.is_err(), "push_slice: {:?}", got);
                    }
                    prop_assert_eq!(got, oracle.bulk(len, tail));
                }
                ProducerOp::PushWith(max) => {
                    let reads_tail = (oracle.free() as usize) < max;
                    let mut calls = 0;
                    let got = tx.push_with(max, || {
                        calls += 1;
                        7
                    });
                    if reads_tail && spec_corrupt {
                        prop_assert!(got.is_err(), "push_with: {:?}", got);
                    }
                    prop_assert_eq!(calls, got.unwrap_or(0), "make ran once per item");
                    prop_assert_eq!(got, oracle.bulk(max, tail));
                }
                ProducerOp::Publish => {
                    let flag = header.consumer_sleeping.load(Ordering::Relaxed);
                    let expected = oracle.head != oracle.published && flag != 0;
                    prop_assert_eq!(tx.publish(), expected);
                    if oracle.head != oracle.published {
                        prop_assert_eq!(header.head.load(Ordering::Relaxed), oracle.head);
                    }
                    oracle.published = oracle.head;
                }
                ProducerOp::PrepareWait => {
                    let got = tx.prepare_wait();
                    let expected = oracle.read(tail).map(|()| oracle.free() > 0);
                    if spec_corrupt {
                        prop_assert!(got.is_err());
                    }
                    prop_assert_eq!(got, expected);
                    let waiting = header.producer_waiting.load(Ordering::Relaxed) != 0;
                    prop_assert_eq!(waiting, expected == Ok(false));
                }
                ProducerOp::Free => {
                    let got = tx.free();
                    let expected = oracle.read(tail).map(|()| oracle.free() as usize);
                    if spec_corrupt {
                        prop_assert!(got.is_err());
                    }
                    prop_assert_eq!(got, expected);
                }
                ProducerOp::WriteTail(forged) => {
                    header.tail.store(forged.value(oracle.published), Ordering::Release);
                }
                ProducerOp::WriteFlag(v) => header.consumer_sleeping.store(v, Ordering::Relaxed),
                ProducerOp::WriteHead(v) => header.head.store(v, Ordering::Relaxed),
            }
            prop_assert_eq!(tx.head(), oracle.head);
            prop_assert!(oracle.head.wrapping_sub(oracle.accepted_tail) <= CAP);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A hostile producer: the consumer must accept exactly the honest `head` values.

#[derive(Debug, Clone)]
enum ConsumerOp {
    Pop,
    /// `pop_into` a buffer of this length.
    PopInto(usize),
    /// `pop_with` of up to this many items.
    PopWith(usize),
    Release,
    PrepareSleep,
    Available,
    /// The producer writes `head`, relative to the consumer's released tail.
    WriteHead(Forged),
    WriteFlag(u32),
    /// Writes `tail`, which the consumer must ignore.
    WriteTail(u32),
    /// Writes a slot's contents (any bit pattern is a valid `u64`).
    WriteSlot(u64),
}

fn consumer_op() -> impl Strategy<Value = ConsumerOp> {
    prop_oneof![
        4 => Just(ConsumerOp::Pop),
        2 => bulk_len().prop_map(ConsumerOp::PopInto),
        2 => bulk_len().prop_map(ConsumerOp::PopWith),
        2 => Just(ConsumerOp::Release),
        1 => Just(ConsumerOp::PrepareSleep),
        1 => Just(ConsumerOp::Available),
        4 => forged().prop_map(ConsumerOp::WriteHead),
        1 => any::<u32>().prop_map(ConsumerOp::WriteFlag),
        1 => any::<u32>().prop_map(ConsumerOp::WriteTail),
        1 => any::<u64>().prop_map(ConsumerOp::WriteSlot),
    ]
}

/// The consumer's view, by the protocol: `head` is accepted if it lies between the value
/// accepted last (initially `tail`) and `N` past the released tail.
struct ConsumerOracle {
    tail: u32,
    released: u32,
    accepted_head: u32,
}

impl ConsumerOracle {
    fn read(&mut self, h: u32) -> Result<(), RingError> {
        let limit = self.released.wrapping_add(CAP);
        if h.wrapping_sub(self.accepted_head) <= limit.wrapping_sub(self.accepted_head) {
            self.accepted_head = h;
            Ok(())
        } else {
            Err(RingError::Corrupt {
                head: h,
                tail: self.tail,
            })
        }
    }

    fn ready(&self) -> u32 {
        self.accepted_head.wrapping_sub(self.tail)
    }

    /// The outcome of a bulk pop of `want` items with `head == h` in memory: `head` is
    /// read only if the count ready from the last read is short of `want`.
    fn bulk(&mut self, want: usize, h: u32) -> Result<usize, RingError> {
        if (self.ready() as usize) < want {
            self.read(h)?;
        }
        let n = want.min(self.ready() as usize);
        self.tail = self.tail.wrapping_add(n as u32);
        Ok(n)
    }
}

proptest! {
    #[test]
    fn a_hostile_producer_is_caught(
        start in start(),
        ops in prop::collection::vec(consumer_op(), 0..200),
    ) {
        let ring = Ring::starting_at(start);
        let mut rx = ring.consumer();
        // The forged slot contents come through this producer handle, which writes slots
        // (its own bookkeeping is irrelevant here: it never publishes).
        let mut slot_writer = ring.producer();
        let header = ring.header();
        let mut oracle = ConsumerOracle { tail: start, released: start, accepted_head: start };
        for op in ops {
            let head = header.head.load(Ordering::Relaxed);
            let spec_corrupt = head.wrapping_sub(oracle.tail) > CAP;
            match op {
                ConsumerOp::Pop => {
                    let got = rx.pop();
                    let reads_head = oracle.ready() == 0;
                    if reads_head && spec_corrupt {
                        prop_assert!(got.is_err());
                    }
                    let expected = if reads_head {
                        oracle.read(head).map(|()| oracle.ready() > 0)
                    } else {
                        Ok(true)
                    };
                    prop_assert_eq!(got.map(|item| item.is_some()), expected);
                    if expected == Ok(true) {
                        oracle.tail = oracle.tail.wrapping_add(1);
                    }
                }
                ConsumerOp::PopInto(len) => {
                    let reads_head = (oracle.ready() as usize) < len;
                    let got = rx.pop_into(&mut vec![0; len]);
                    if reads_head && spec_corrupt {
                        prop_assert!(got.is_err(), "pop_into: {:?}", got);
                    }
                    prop_assert_eq!(got, oracle.bulk(len, head));
                }
                ConsumerOp::PopWith(max) => {
                    let reads_head = (oracle.ready() as usize) < max;
                    let mut calls = 0;
                    let got = rx.pop_with(max, |_| calls += 1);
                    if reads_head && spec_corrupt {
                        prop_assert!(got.is_err(), "pop_with: {:?}", got);
                    }
                    prop_assert_eq!(calls, got.unwrap_or(0), "take ran once per item");
                    prop_assert_eq!(got, oracle.bulk(max, head));
                }
                ConsumerOp::Release => {
                    let flag = header.producer_waiting.load(Ordering::Relaxed);
                    let expected = oracle.tail != oracle.released && flag != 0;
                    prop_assert_eq!(rx.release(), expected);
                    if oracle.tail != oracle.released {
                        prop_assert_eq!(header.tail.load(Ordering::Relaxed), oracle.tail);
                    }
                    oracle.released = oracle.tail;
                }
                ConsumerOp::PrepareSleep => {
                    let got = rx.prepare_sleep();
                    let expected = oracle.read(head).map(|()| oracle.ready() > 0);
                    if spec_corrupt {
                        prop_assert!(got.is_err());
                    }
                    prop_assert_eq!(got, expected);
                    let sleeping = header.consumer_sleeping.load(Ordering::Relaxed) != 0;
                    prop_assert_eq!(sleeping, expected == Ok(false));
                }
                ConsumerOp::Available => {
                    let got = rx.available();
                    let expected = oracle.read(head).map(|()| oracle.ready() as usize);
                    if spec_corrupt {
                        prop_assert!(got.is_err());
                    }
                    prop_assert_eq!(got, expected);
                }
                ConsumerOp::WriteHead(forged) => {
                    header.head.store(forged.value(oracle.released), Ordering::Release);
                }
                ConsumerOp::WriteFlag(v) => header.producer_waiting.store(v, Ordering::Relaxed),
                ConsumerOp::WriteTail(v) => header.tail.store(v, Ordering::Relaxed),
                ConsumerOp::WriteSlot(v) => {
                    // Fills some slot; Full or Corrupt (the forged tail) are fine too.
                    let _ = slot_writer.push(v);
                }
            }
            prop_assert_eq!(rx.tail(), oracle.tail);
            prop_assert!(oracle.accepted_head.wrapping_sub(oracle.tail) <= CAP);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Arbitrary memory: both ends attached to random bytes, then driven with random writes.

/// Some item value derived from a count.
fn v_of(n: usize) -> u64 {
    n as u64
}

/// Storage for a ring, filled with arbitrary bytes before the handles attach.
struct Arbitrary(Box<Ring>);

impl Arbitrary {
    fn new(bytes: &[u8]) -> Self {
        let mut ring = Box::new(Ring::new());
        let dst = std::ptr::from_mut::<Ring>(&mut *ring).cast::<u8>();
        let len = bytes.len().min(Ring::BYTES);
        // SAFETY: `dst` points to a whole `Ring` we own exclusively (`len` is at most its
        // size); every bit pattern is a valid `Ring` (atomics, byte padding, `u64` slots).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, len) };
        Self(ring)
    }

    fn ptr(&mut self) -> NonNull<Ring> {
        NonNull::from(&mut *self.0)
    }
}

#[derive(Debug, Clone)]
enum AnyOp {
    Push(u64),
    PushSlice(usize),
    PushWith(usize),
    Publish,
    Pop,
    PopInto(usize),
    PopWith(usize),
    Release,
    PrepareSleep,
    PrepareWait,
    /// Writes word `which % 4` of the header (head, flag, tail, flag).
    Scribble(u8, u32),
}

fn any_op() -> impl Strategy<Value = AnyOp> {
    prop_oneof![
        any::<u64>().prop_map(AnyOp::Push),
        bulk_len().prop_map(AnyOp::PushSlice),
        bulk_len().prop_map(AnyOp::PushWith),
        Just(AnyOp::Publish),
        Just(AnyOp::Pop),
        bulk_len().prop_map(AnyOp::PopInto),
        bulk_len().prop_map(AnyOp::PopWith),
        Just(AnyOp::Release),
        Just(AnyOp::PrepareSleep),
        Just(AnyOp::PrepareWait),
        (any::<u8>(), any::<u32>()).prop_map(|(w, v)| AnyOp::Scribble(w, v)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_memory_breaks_neither_end(
        bytes in prop::collection::vec(any::<u8>(), Ring::BYTES),
        ops in prop::collection::vec(any_op(), 0..100),
    ) {
        let mut memory = Arbitrary::new(&bytes);
        let ptr = memory.ptr();
        // SAFETY: `memory` outlives both handles and is not otherwise borrowed meanwhile;
        // the box is aligned for `Ring`.
        let (mut tx, mut rx): (Producer<'_, u64, N>, Consumer<'_, u64, N>) =
            unsafe { (Producer::from_raw(ptr), Consumer::from_raw(ptr)) };
        // SAFETY: as above; a shared view for scribbling on the header.
        let header = unsafe { Ring::from_raw(ptr) }.header();
        for op in ops {
            let (head, tail) = (
                header.head.load(Ordering::Relaxed),
                header.tail.load(Ordering::Relaxed),
            );
            match op {
                AnyOp::Push(v) => match tx.push(v) {
                    Ok(()) | Err(RingError::Full) => {}
                    Err(RingError::Corrupt { head: h, tail: t }) => {
                        prop_assert_eq!((h, t), (tx.head(), tail));
                    }
                },
                AnyOp::PushSlice(len) => match tx.push_slice(&vec![v_of(len); len]) {
                    Ok(n) => prop_assert!(n <= len.min(N)),
                    Err(RingError::Full) => prop_assert!(false, "push_slice never says Full"),
                    Err(RingError::Corrupt { head: h, tail: t }) => {
                        prop_assert_eq!((h, t), (tx.head(), tail));
                    }
                },
                AnyOp::PushWith(max) => {
                    let mut calls = 0;
                    match tx.push_with(max, || { calls += 1; v_of(calls) }) {
                        Ok(n) => prop_assert!(n <= max.min(N) && n == calls),
                        Err(RingError::Full) => prop_assert!(false, "push_with never says Full"),
                        Err(RingError::Corrupt { head: h, tail: t }) => {
                            prop_assert_eq!((h, t, calls), (tx.head(), tail, 0));
                        }
                    }
                }
                AnyOp::Publish => {
                    let _ = tx.publish();
                }
                AnyOp::Pop => match rx.pop() {
                    Ok(_) | Err(RingError::Full) => {}
                    Err(RingError::Corrupt { head: h, tail: t }) => {
                        prop_assert_eq!((h, t), (head, rx.tail()));
                    }
                },
                AnyOp::PopInto(len) => match rx.pop_into(&mut vec![0; len]) {
                    Ok(n) => prop_assert!(n <= len.min(N)),
                    Err(RingError::Full) => prop_assert!(false, "pop_into never says Full"),
                    Err(RingError::Corrupt { head: h, tail: t }) => {
                        prop_assert_eq!((h, t), (head, rx.tail()));
                    }
                },
                AnyOp::PopWith(max) => {
                    let mut calls = 0;
                    match rx.pop_with(max, |_| calls += 1) {
                        Ok(n) => prop_assert!(n <= max.min(N) && n == calls),
                        Err(RingError::Full) => prop_assert!(false, "pop_with never says Full"),
                        Err(RingError::Corrupt { head: h, tail: t }) => {
                            prop_assert_eq!((h, t, calls), (head, rx.tail(), 0));
                        }
                    }
                }
                AnyOp::Release => {
                    let _ = rx.release();
                }
                AnyOp::PrepareSleep => {
                    let _ = rx.prepare_sleep();
                }
                AnyOp::PrepareWait => {
                    let _ = tx.prepare_wait();
                }
                AnyOp::Scribble(which, v) => {
                    let word = match which % 4 {
                        0 => &header.head,
                        1 => &header.consumer_sleeping,
                        2 => &header.tail,
                        _ => &header.producer_waiting,
                    };
                    word.store(v, Ordering::Relaxed);
                }
            }
            // Whatever happened, each end's own view stays a ring of at most N items.
            if let Ok(ready) = rx.available() {
                prop_assert!(ready <= N);
            }
            if let Ok(free) = tx.free() {
                prop_assert!(free <= N);
            }
        }
    }
}
