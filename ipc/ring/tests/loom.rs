//! Loom model checks of the ring protocol. Compiled only with `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release -p kaal-ring --test loom --target-dir target/loom
//! ```
//!
//! (`cargo xtask test` runs exactly this.) Under `cfg(loom)` the ring's atomics and fences
//! are loom's and its slots are loom cells, so loom explores every interleaving and every
//! value a load may return under the C++ memory model, and fails a model on a slot access
//! the indices do not order (a data race), on a deadlock (every thread waiting), or on a
//! failed assertion.
#![cfg(loom)]

use kaal_ring::{Notify, RingError, SharedRing};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// An seL4 notification: `notify` sets the word and wakes a waiter; `wait` blocks until
/// the word is set, then clears it. A signal sent before the wait is not lost.
#[derive(Default)]
struct Notification {
    pending: Mutex<bool>,
    changed: Condvar,
}

impl Notify for Notification {
    fn notify(&self) {
        let mut pending = self.pending.lock().expect("notification lock");
        *pending = true;
        self.changed.notify_one();
    }
}

impl Notification {
    fn wait(&self) {
        let mut pending = self.pending.lock().expect("notification lock");
        while !*pending {
            pending = self.changed.wait(pending).expect("notification wait");
        }
        *pending = false;
    }
}

/// Distinct, recognisable contents: a wrong or stale slot read shows as a wrong value.
fn item(i: u32) -> u32 {
    0xA0 + i
}

/// (1) Memory ordering: the producer pushes three values through a two-slot ring (so it
/// also reuses a slot after the consumer released it), the consumer pops them in order
/// with the right contents. Without Release on `head`/`tail` or Acquire on their reads,
/// loom reports the slot accesses as a race.
#[test]
fn items_arrive_in_order_with_their_contents() {
    loom::model(|| {
        let ring = Arc::new(SharedRing::<u32, 2>::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                for i in 0..3 {
                    loop {
                        match tx.push(item(i)) {
                            Ok(()) => break,
                            Err(RingError::Full) => thread::yield_now(),
                            Err(err) => panic!("producer: {err}"),
                        }
                    }
                    let _ = tx.publish();
                }
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        while got.len() < 3 {
            match rx.pop() {
                Ok(Some(value)) => {
                    got.push(value);
                    let _ = rx.release();
                }
                Ok(None) => thread::yield_now(),
                Err(err) => panic!("consumer: {err}"),
            }
        }
        assert_eq!(got, [item(0), item(1), item(2)]);
        producer.join().expect("producer thread");
    });
}

/// (1b) Batching: two items pushed, published once, popped in one go and released once;
/// a second batch reuses both slots.
#[test]
fn batches_publish_and_release_together() {
    loom::model(|| {
        let ring = Arc::new(SharedRing::<u32, 2>::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                for batch in 0..2 {
                    for i in 0..2 {
                        while let Err(err) = tx.push(item(batch * 2 + i)) {
                            assert_eq!(err, RingError::Full);
                            thread::yield_now();
                        }
                    }
                    let _ = tx.publish();
                }
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        while got.len() < 4 {
            let before = got.len();
            while let Some(value) = rx.pop().expect("consumer") {
                got.push(value);
            }
            assert!(got.len() % 2 == 0, "a batch is seen whole: {got:x?}");
            let _ = rx.release();
            if got.len() == before {
                thread::yield_now();
            }
        }
        assert_eq!(got, [item(0), item(1), item(2), item(3)]);
        producer.join().expect("producer thread");
    });
}

/// (1c) The bulk path: `push_slice`/`push_with` and `pop_into`/`pop_with` copy runs
/// that wrap around the end of the slot array (the indices start at 1), reuse slots
/// released in between, and check the free or ready count once per call.
#[test]
fn bulk_copies_wrap_and_arrive_in_order() {
    loom::model(|| {
        let ring = Arc::new(SharedRing::<u32, 2>::starting_at(1));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                let items = [item(0), item(1), item(2)];
                let mut sent = tx.push_slice(&items).expect("producer");
                let _ = tx.publish();
                while sent < items.len() {
                    let mut next = items[sent..].iter().copied();
                    let rest = items.len() - sent;
                    sent += tx
                        .push_with(rest, || next.next().expect("at most `rest` calls"))
                        .expect("producer");
                    let _ = tx.publish();
                    if sent < items.len() {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = if got.is_empty() {
                let mut out = [0; 2];
                let n = rx.pop_into(&mut out).expect("consumer");
                got.extend_from_slice(&out[..n]);
                n
            } else {
                rx.pop_with(2, |value| got.push(value)).expect("consumer")
            };
            let _ = rx.release();
            if n == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, [item(0), item(1), item(2)]);
        producer.join().expect("producer thread");
    });
}

/// (2c) No lost wake-up on the bulk path, as the README's batch loops use it:
/// `send_batch` and, when not all fit, `prepare_wait`; `recv_batch` and, when it got
/// nothing, `prepare_sleep`.
#[test]
fn no_wakeup_is_lost_in_bulk() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(4));
    builder.check(|| {
        let ring = Arc::new(SharedRing::<u32, 2>::new());
        let to_consumer = Arc::new(Notification::default());
        let to_producer = Arc::new(Notification::default());
        let producer = {
            let (ring, to_consumer, to_producer) =
                (ring.clone(), to_consumer.clone(), to_producer.clone());
            thread::spawn(move || {
                let mut tx = ring.producer();
                let items = [item(0), item(1), item(2)];
                let mut sent = 0;
                while sent < items.len() {
                    sent += tx
                        .send_batch(&items[sent..], &*to_consumer)
                        .expect("producer");
                    if sent < items.len() && !tx.prepare_wait().expect("producer") {
                        to_producer.wait();
                    }
                }
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        while got.len() < 3 {
            let mut out = [0; 2];
            let n = rx.recv_batch(&mut out, &*to_producer).expect("consumer");
            got.extend_from_slice(&out[..n]);
            if n == 0 && !rx.prepare_sleep().expect("consumer") {
                to_consumer.wait();
            }
        }
        assert_eq!(got, [item(0), item(1), item(2)]);
        producer.join().expect("producer thread");
    });
}

/// (2) No lost wake-up, both ways. Each side blocks on its own notification: the
/// consumer when the ring is empty (`pop; if empty { release; if !prepare_sleep() {
/// wait } }`), the producer when it is full (`publish; if !prepare_wait() { wait }`).
/// A lost wake-up leaves a thread waiting forever, which loom reports as a deadlock;
/// the consumer must receive every item, in order. The producer publishes every
/// `batch` items (and the last), so batches and single items both meet a sleeping
/// consumer.
///
/// `preemption_bound` bounds the interleavings explored (loom's preemption bound) unless
/// `LOOM_MAX_PREEMPTIONS` is set: `LOOM_MAX_PREEMPTIONS=100` makes every run exhaustive.
fn no_wakeup_is_lost<const N: usize>(items: u32, batch: u32, preemption_bound: usize) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(preemption_bound));
    builder.check(move || {
        let ring = Arc::new(SharedRing::<u32, N>::new());
        let to_consumer = Arc::new(Notification::default());
        let to_producer = Arc::new(Notification::default());
        let producer = {
            let (ring, to_consumer, to_producer) =
                (ring.clone(), to_consumer.clone(), to_producer.clone());
            thread::spawn(move || {
                let mut tx = ring.producer();
                for i in 0..items {
                    loop {
                        match tx.push(item(i)) {
                            Ok(()) => break,
                            Err(RingError::Full) => {
                                if tx.publish() {
                                    to_consumer.notify();
                                }
                                if !tx.prepare_wait().expect("producer") {
                                    to_producer.wait();
                                }
                            }
                            Err(err) => panic!("producer: {err}"),
                        }
                    }
                    let batch_done = (i + 1) % batch == 0 || i + 1 == items;
                    if batch_done && tx.publish() {
                        to_consumer.notify();
                    }
                }
                (tx.sent(), tx.signals())
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        while got.len() < items as usize {
            match rx.pop().expect("consumer") {
                Some(value) => got.push(value),
                None => {
                    if rx.release() {
                        to_producer.notify();
                    }
                    if !rx.prepare_sleep().expect("consumer") {
                        to_consumer.wait();
                    }
                }
            }
        }
        let _ = rx.release();
        assert_eq!(got, (0..items).map(item).collect::<Vec<_>>());
        let (sent, signals) = producer.join().expect("producer thread");
        assert_eq!(sent, u64::from(items));
        // Suppression: at most one signal per publish, never one per item of a batch.
        assert!(
            signals <= u64::from(items.div_ceil(batch)),
            "{signals} signals"
        );
    });
}

// Bounds chosen to keep the whole file at about ten seconds in release mode. Every
// missing fence or ordering in the crate is found with a bound of two (checked by
// deleting each in turn). Exhaustive runs (`LOOM_MAX_PREEMPTIONS=100`) of the first two
// pass too, in about 45 s each; the third takes over half an hour.

/// One slot, two items: each side waits for the other at least once.
#[test]
fn no_wakeup_is_lost_one_slot() {
    no_wakeup_is_lost::<1>(2, 1, 8);
}

/// Two slots, three items published in batches of two.
#[test]
fn no_wakeup_is_lost_two_slots_batched() {
    no_wakeup_is_lost::<2>(3, 2, 5);
}

/// Two slots, three items, each published alone.
#[test]
fn no_wakeup_is_lost_two_slots_single() {
    no_wakeup_is_lost::<2>(3, 1, 4);
}

/// (2b) The consumer's side alone, with one item per publish and no waiting producer:
/// the smallest form of the store-buffering race between `publish` and `prepare_sleep`.
#[test]
fn a_sleeping_consumer_sees_a_single_publish() {
    loom::model(|| {
        let ring = Arc::new(SharedRing::<u32, 2>::new());
        let to_consumer = Arc::new(Notification::default());
        let producer = {
            let (ring, to_consumer) = (ring.clone(), to_consumer.clone());
            thread::spawn(move || {
                let mut tx = ring.producer();
                tx.push(item(0)).expect("room for one");
                if tx.publish() {
                    to_consumer.notify();
                }
            })
        };
        let mut rx = ring.consumer();
        let received = loop {
            if let Some(value) = rx.pop().expect("consumer") {
                break value;
            }
            if !rx.prepare_sleep().expect("consumer") {
                to_consumer.wait();
            }
        };
        assert_eq!(received, item(0));
        producer.join().expect("producer thread");
    });
}
