//! Throughput: 1,000,000 `u64` messages from one thread to another through a ring of
//! 1024 slots, one message at a time (batch 1) and 64 at a time (batch 64), for
//! `kaal-ring`, `rtrb` and `crossbeam_queue::ArrayQueue`.
//!
//! The `kaal_ring`, `rtrb` and `crossbeam` variants spin when the ring is empty or full:
//! they measure the data path. `kaal_ring_sleeping` uses the sleep/wake protocol with
//! `thread::park`/`unpark` standing in for seL4 notifications, and prints the signals it
//! needed per message.
//!
//! `cargo bench -p kaal-ring` (add `-- --quick` for a short run).

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use kaal_ring::{Notify, RingError, SharedRing};

const MESSAGES: u64 = 1_000_000;
const CAPACITY: usize = 1024;
type Ring = SharedRing<u64, CAPACITY>;

/// Checks the stream: every message once, in order.
struct Checker {
    next: u64,
}

impl Checker {
    fn take(&mut self, value: u64) {
        assert_eq!(value, self.next, "message out of order");
        self.next += 1;
    }

    fn done(&self) -> bool {
        self.next == MESSAGES
    }
}

fn ring_error(err: RingError) -> ! {
    panic!("ring: {err}")
}

/// A notification that nobody waits on (the spinning variants never sleep).
struct Never;

impl Notify for Never {
    fn notify(&self) {}
}

fn kaal_ring(batch: usize) {
    let ring = Box::new(Ring::new());
    let (mut tx, mut rx) = ring.split();
    thread::scope(|s| {
        s.spawn(move || {
            let items: Vec<u64> = (0..MESSAGES).collect();
            if batch == 1 {
                for &item in &items {
                    loop {
                        match tx.push(item) {
                            Ok(()) => break,
                            Err(RingError::Full) => spin_loop(),
                            Err(err) => ring_error(err),
                        }
                    }
                    let _ = tx.publish();
                }
            } else {
                for mut chunk in items.chunks(batch) {
                    while !chunk.is_empty() {
                        let sent = tx
                            .send_batch(chunk, &Never)
                            .unwrap_or_else(|e| ring_error(e));
                        chunk = chunk.get(sent..).unwrap_or_default();
                        if !chunk.is_empty() {
                            spin_loop();
                        }
                    }
                }
            }
            assert_eq!(
                tx.signals(),
                0,
                "a consumer that never sleeps is never signalled"
            );
        });
        let mut check = Checker { next: 0 };
        if batch == 1 {
            while !check.done() {
                match rx.pop() {
                    Ok(Some(value)) => {
                        check.take(value);
                        let _ = rx.release();
                    }
                    Ok(None) => spin_loop(),
                    Err(err) => ring_error(err),
                }
            }
        } else {
            let mut out = vec![0u64; batch];
            while !check.done() {
                let n = rx
                    .recv_batch(&mut out, &Never)
                    .unwrap_or_else(|e| ring_error(e));
                if n == 0 {
                    spin_loop();
                }
                for &value in out.iter().take(n) {
                    check.take(value);
                }
            }
        }
    });
    black_box(&ring);
}

fn rtrb(batch: usize) {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    thread::scope(|s| {
        s.spawn(move || {
            let items: Vec<u64> = (0..MESSAGES).collect();
            if batch == 1 {
                for &item in &items {
                    while tx.push(item).is_err() {
                        spin_loop();
                    }
                }
            } else {
                for mut chunk in items.chunks(batch) {
                    while !chunk.is_empty() {
                        let (_, rest) = tx.push_partial_slice(chunk);
                        chunk = rest;
                        if !chunk.is_empty() {
                            spin_loop();
                        }
                    }
                }
            }
        });
        let mut check = Checker { next: 0 };
        if batch == 1 {
            while !check.done() {
                match rx.pop() {
                    Ok(value) => check.take(value),
                    Err(_) => spin_loop(),
                }
            }
        } else {
            let mut out = vec![0u64; batch];
            while !check.done() {
                let (popped, _) = rx.pop_partial_slice(&mut out);
                if popped.is_empty() {
                    spin_loop();
                }
                for &value in popped.iter() {
                    check.take(value);
                }
            }
        }
    });
}

/// `ArrayQueue` has no batch operations: batch 64 is 64 single pushes and pops.
fn crossbeam(batch: usize) {
    let queue = ArrayQueue::<u64>::new(CAPACITY);
    thread::scope(|s| {
        let queue = &queue;
        s.spawn(move || {
            for item in 0..MESSAGES {
                while queue.push(item).is_err() {
                    spin_loop();
                }
            }
        });
        let mut check = Checker { next: 0 };
        while !check.done() {
            let mut got = 0;
            while got < batch {
                match queue.pop() {
                    Some(value) => {
                        check.take(value);
                        got += 1;
                    }
                    None => break,
                }
            }
            if got == 0 {
                spin_loop();
            }
        }
    });
}

/// Wakes a parked thread; counts the wake-ups.
struct Unpark {
    thread: Thread,
    count: AtomicU64,
}

impl Notify for Unpark {
    fn notify(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// The full protocol: both sides sleep (park) instead of spinning. Returns the signals
/// sent to the consumer and to the producer.
fn kaal_ring_sleeping(batch: usize) -> (u64, u64) {
    let ring = Box::new(Ring::new());
    let (mut tx, mut rx) = ring.split();
    let to_consumer = Unpark {
        thread: thread::current(),
        count: AtomicU64::new(0),
    };
    let to_producer_count = thread::scope(|s| {
        let to_consumer = &to_consumer;
        let producer = s.spawn(move || {
            let items: Vec<u64> = (0..MESSAGES).collect();
            for mut chunk in items.chunks(batch) {
                while !chunk.is_empty() {
                    let sent = tx
                        .send_batch(chunk, to_consumer)
                        .unwrap_or_else(|e| ring_error(e));
                    chunk = chunk.get(sent..).unwrap_or_default();
                    // Full: sleep unless a slot was freed meanwhile.
                    if !chunk.is_empty() && !tx.prepare_wait().unwrap_or_else(|e| ring_error(e)) {
                        thread::park();
                    }
                }
            }
        });
        let to_producer = Unpark {
            thread: producer.thread().clone(),
            count: AtomicU64::new(0),
        };
        let mut check = Checker { next: 0 };
        let mut out = vec![0u64; batch];
        while !check.done() {
            // Pops up to `batch`, releases them and signals a waiting producer.
            let n = rx
                .recv_batch(&mut out, &to_producer)
                .unwrap_or_else(|e| ring_error(e));
            for &value in out.iter().take(n) {
                check.take(value);
            }
            // Empty: sleep unless items arrived meanwhile.
            if n == 0 && !rx.prepare_sleep().unwrap_or_else(|e| ring_error(e)) {
                thread::park();
            }
        }
        producer.join().expect("producer thread");
        to_producer.count.load(Ordering::Relaxed)
    });
    (to_consumer.count.load(Ordering::Relaxed), to_producer_count)
}

fn throughput(c: &mut Criterion) {
    for batch in [1, 64] {
        let mut group = c.benchmark_group(format!("spsc_1M_u64/batch_{batch}"));
        group.throughput(Throughput::Elements(MESSAGES));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(5));
        group.bench_function(BenchmarkId::from_parameter("kaal_ring"), |b| {
            b.iter(|| kaal_ring(batch));
        });
        group.bench_function(BenchmarkId::from_parameter("rtrb"), |b| {
            b.iter(|| rtrb(batch));
        });
        group.bench_function(BenchmarkId::from_parameter("crossbeam_array_queue"), |b| {
            b.iter(|| crossbeam(batch));
        });
        group.bench_function(BenchmarkId::from_parameter("kaal_ring_sleeping"), |b| {
            b.iter(|| kaal_ring_sleeping(batch));
        });
        group.finish();
        let (to_consumer, to_producer) = kaal_ring_sleeping(batch);
        #[allow(clippy::cast_precision_loss)] // display only
        let per_message = (to_consumer + to_producer) as f64 / MESSAGES as f64;
        println!(
            "kaal_ring_sleeping batch {batch}: {to_consumer} signals to the consumer, \
             {to_producer} to the producer, {per_message:.4} per message"
        );
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
