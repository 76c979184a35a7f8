//! Unit tests: FIFO order, full and empty, index wrap-around, corruption, signals.

use core::cell::Cell;

use super::*;

/// Counts signals, standing in for an seL4 notification.
#[derive(Default)]
struct Count(Cell<u64>);

impl Notify for Count {
    fn notify(&self) {
        self.0.set(self.0.get() + 1);
    }
}

impl Count {
    fn get(&self) -> u64 {
        self.0.get()
    }
}

#[test]
fn fifo_order_across_many_laps() {
    let ring = SharedRing::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    for round in 0..100 {
        let burst = round % 5; // 0..=4 items
        for _ in 0..burst {
            tx.push(next_in).unwrap();
            next_in += 1;
        }
        let _ = tx.publish();
        while let Some(item) = rx.pop().unwrap() {
            assert_eq!(item, next_out);
            next_out += 1;
        }
        let _ = rx.release();
    }
    assert_eq!(next_out, next_in);
    assert_eq!(tx.sent(), next_in);
    assert_eq!(rx.received(), next_in);
}

#[test]
fn full_and_empty() {
    let ring = SharedRing::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.pop(), Ok(None));
    for i in 0..4 {
        tx.push(i).unwrap();
    }
    assert_eq!(tx.push(99), Err(RingError::Full));
    // Unpublished items are invisible.
    assert_eq!(rx.pop(), Ok(None));
    assert_eq!(tx.unpublished(), 4);
    let _ = tx.publish();
    assert_eq!(rx.available(), Ok(4));
    assert_eq!(rx.pop(), Ok(Some(0)));
    // Popped but not released: still no room for the producer.
    assert_eq!(tx.push(99), Err(RingError::Full));
    assert_eq!(rx.unreleased(), 1);
    let _ = rx.release();
    assert_eq!(tx.free(), Ok(1));
    tx.push(4).unwrap();
    assert_eq!(tx.push(5), Err(RingError::Full));
    let _ = tx.publish();
    let got: Vec<u32> = core::iter::from_fn(|| rx.pop().unwrap()).collect();
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(rx.pop(), Ok(None));
}

#[test]
fn indices_wrap_around_u32_max() {
    for start in [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0] {
        let ring = SharedRing::<u64, 4>::starting_at(start);
        let (mut tx, mut rx) = ring.split();
        let mut expected = 0u64;
        for value in 0..40u64 {
            // Fill to the brim whenever possible, so full detection is tested at the wrap.
            match tx.push(value) {
                Ok(()) => {}
                Err(RingError::Full) => {
                    let _ = tx.publish();
                    while let Some(item) = rx.pop().unwrap() {
                        assert_eq!(item, expected);
                        expected += 1;
                    }
                    let _ = rx.release();
                    tx.push(value).unwrap();
                }
                Err(err) => panic!("start {start:#x}: {err}"),
            }
        }
        let _ = tx.publish();
        while let Some(item) = rx.pop().unwrap() {
            assert_eq!(item, expected);
            expected += 1;
        }
        assert_eq!(expected, 40);
        assert_eq!(tx.head(), start.wrapping_add(40));
        assert_eq!(rx.tail(), start.wrapping_add(40));
    }
}

#[test]
fn init_resets_the_header() {
    let mut ring = SharedRing::<u8, 2>::starting_at(7);
    ring.header().consumer_sleeping.store(5, Ordering::Relaxed);
    ring.init();
    assert_eq!(ring.header().head.load(Ordering::Relaxed), 0);
    assert_eq!(ring.header().tail.load(Ordering::Relaxed), 0);
    assert_eq!(ring.header().consumer_sleeping.load(Ordering::Relaxed), 0);
    ring.init_at(u32::MAX);
    let (mut tx, mut rx) = ring.split();
    tx.push(3).unwrap();
    let _ = tx.publish();
    assert_eq!(ring.header().head.load(Ordering::Relaxed), 0); // wrapped
    assert_eq!(rx.pop(), Ok(Some(3)));
}

#[test]
fn consumer_rejects_a_head_out_of_range() {
    let ring = SharedRing::<u64, 8>::starting_at(100);
    let mut rx = ring.consumer();
    let head = &ring.header().head;
    // More than N ahead of tail.
    head.store(109, Ordering::Release);
    assert_eq!(
        rx.pop(),
        Err(RingError::Corrupt {
            head: 109,
            tail: 100
        })
    );
    // Behind tail.
    head.store(99, Ordering::Release);
    assert_eq!(
        rx.available(),
        Err(RingError::Corrupt {
            head: 99,
            tail: 100
        })
    );
    assert!(rx.prepare_sleep().is_err());
    assert_eq!(
        ring.header().consumer_sleeping.load(Ordering::Relaxed),
        0,
        "flag cleared on error"
    );
    // Exactly N ahead is a full ring: accepted.
    head.store(108, Ordering::Release);
    assert_eq!(rx.available(), Ok(8));
    // Moving backwards after that is not honest either.
    head.store(104, Ordering::Release);
    assert_eq!(
        rx.available(),
        Err(RingError::Corrupt {
            head: 104,
            tail: 100
        })
    );
}

#[test]
fn producer_rejects_a_tail_out_of_range() {
    let ring = SharedRing::<u64, 8>::starting_at(u32::MAX - 1);
    let mut tx = ring.producer();
    let tail = &ring.header().tail;
    let head = u32::MAX - 1;
    // Ahead of what was published.
    tail.store(head.wrapping_add(1), Ordering::Release);
    assert_eq!(
        tx.free(),
        Err(RingError::Corrupt {
            head,
            tail: head.wrapping_add(1)
        })
    );
    // More than N behind.
    tail.store(head.wrapping_sub(9), Ordering::Release);
    assert!(matches!(tx.push(1), Err(RingError::Corrupt { .. })));
    assert!(tx.prepare_wait().is_err());
    assert_eq!(ring.header().producer_waiting.load(Ordering::Relaxed), 0);
    // Exactly N behind: a full ring.
    tail.store(head.wrapping_sub(8), Ordering::Release);
    assert_eq!(tx.push(1), Err(RingError::Full));
    tail.store(head, Ordering::Release);
    assert_eq!(tx.push(1), Ok(()));
}

#[test]
fn garbage_flags_mean_set() {
    let ring = SharedRing::<u64, 8>::new();
    let (mut tx, _rx) = ring.split();
    ring.header()
        .consumer_sleeping
        .store(0xdead_beef, Ordering::Relaxed);
    tx.push(1).unwrap();
    assert!(tx.publish());
    assert_eq!(ring.header().consumer_sleeping.load(Ordering::Relaxed), 0);
}

#[test]
fn a_busy_consumer_is_never_signalled() {
    let ring = SharedRing::<u64, 64>::new();
    let (mut tx, mut rx) = ring.split();
    let (to_rx, to_tx) = (Count::default(), Count::default());
    let batch: Vec<u64> = (0..64).collect();
    let mut out = [0u64; 64];
    for _ in 0..100 {
        assert_eq!(tx.send_batch(&batch, &to_rx), Ok(64));
        assert_eq!(rx.recv_batch(&mut out, &to_tx), Ok(64));
        assert_eq!(out.as_slice(), batch.as_slice());
    }
    assert_eq!(to_rx.get(), 0);
    assert_eq!(tx.signals(), 0);
    assert_eq!(to_tx.get(), 0);
    assert_eq!(tx.sent(), 6400);
}

#[test]
fn a_sleeping_consumer_gets_one_signal_per_batch() {
    let ring = SharedRing::<u64, 64>::new();
    let (mut tx, mut rx) = ring.split();
    let (to_rx, to_tx) = (Count::default(), Count::default());
    let mut out = [0u64; 64];
    for round in 0..100u64 {
        // The consumer finds the ring empty and goes to sleep.
        assert_eq!(rx.pop(), Ok(None));
        assert_eq!(rx.prepare_sleep(), Ok(false));
        // The producer sends a batch of 64 in four publishes: only the first signals.
        for chunk in 0..4u64 {
            let items: Vec<u64> = (0..16).map(|i| round * 64 + chunk * 16 + i).collect();
            assert_eq!(tx.send_batch(&items, &to_rx), Ok(16));
        }
        assert_eq!(to_rx.get(), round + 1);
        // Woken, the consumer takes the whole batch.
        assert_eq!(rx.recv_batch(&mut out, &to_tx), Ok(64));
        assert_eq!(out.first(), Some(&(round * 64)));
    }
    assert_eq!(tx.signals(), 100);
    assert_eq!(tx.sent(), 6400);
}

#[test]
fn prepare_sleep_sees_items_that_arrived() {
    let ring = SharedRing::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.pop(), Ok(None));
    tx.push(1).unwrap();
    assert!(!tx.publish(), "nobody asked for a signal");
    assert_eq!(rx.prepare_sleep(), Ok(true), "must not sleep");
    assert_eq!(ring.header().consumer_sleeping.load(Ordering::Relaxed), 0);
    assert_eq!(rx.pop(), Ok(Some(1)));
}

#[test]
fn a_waiting_producer_is_signalled_once_by_release() {
    let ring = SharedRing::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    let to_tx = Count::default();
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    assert_eq!(tx.push(3), Err(RingError::Full));
    let _ = tx.publish();
    assert_eq!(tx.prepare_wait(), Ok(false)); // really full: wait
    assert_eq!(rx.pop(), Ok(Some(1)));
    assert!(rx.release());
    to_tx.notify();
    assert_eq!(rx.pop(), Ok(Some(2)));
    assert!(!rx.release(), "one signal per wait");
    assert_eq!(rx.signals(), 1);
    assert_eq!(tx.push(3), Ok(()));
    // prepare_wait with room: no wait, flag cleared.
    assert_eq!(tx.prepare_wait(), Ok(true));
    assert_eq!(ring.header().producer_waiting.load(Ordering::Relaxed), 0);
}

#[test]
fn a_producer_waiting_for_the_drain_is_signalled_until_it_is_empty() {
    let ring = SharedRing::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.prepare_drain(), Ok(true), "empty: nothing to wait for");
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    let _ = tx.publish();
    assert_eq!(tx.prepare_drain(), Ok(false), "two items out: wait");
    assert_eq!(rx.pop(), Ok(Some(1)));
    assert!(rx.release(), "a release answers the wait");
    assert_eq!(
        tx.prepare_drain(),
        Ok(false),
        "room, but not empty: wait on"
    );
    assert_eq!(rx.pop(), Ok(Some(2)));
    assert!(rx.release());
    assert_eq!(tx.prepare_drain(), Ok(true));
    assert_eq!(ring.header().producer_waiting.load(Ordering::Relaxed), 0);
}

#[test]
fn nothing_to_publish_or_release_touches_nothing() {
    let ring = SharedRing::<u64, 2>::new();
    let (mut tx, mut rx) = ring.split();
    ring.header().consumer_sleeping.store(1, Ordering::Relaxed);
    ring.header().producer_waiting.store(1, Ordering::Relaxed);
    assert!(!tx.publish());
    assert!(!rx.release());
    assert_eq!(ring.header().consumer_sleeping.load(Ordering::Relaxed), 1);
    assert_eq!(ring.header().producer_waiting.load(Ordering::Relaxed), 1);
}

#[test]
fn odd_sized_elements_round_trip() {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    struct Msg {
        a: u16,
        b: [u8; 6],
    }
    // SAFETY: repr(C), no padding (2 + 6 bytes, align 2), fields Pod.
    unsafe impl bytemuck::Zeroable for Msg {}
    // SAFETY: as above.
    unsafe impl Pod for Msg {}
    let ring = SharedRing::<Msg, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let m = Msg {
        a: 0xbeef,
        b: [1, 2, 3, 4, 5, 6],
    };
    tx.push(m).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop(), Ok(Some(m)));

    let ring = SharedRing::<[u8; 3], 2>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push([7, 8, 9]).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop(), Ok(Some([7, 8, 9])));
}

#[test]
fn from_raw_uses_the_memory_in_place() {
    let mut memory = Box::new(SharedRing::<u64, 8>::new());
    memory.init();
    let ptr = NonNull::from(&mut *memory);
    {
        // SAFETY: `memory` outlives both handles, is aligned, and is not otherwise
        // borrowed while they live.
        let (mut tx, mut rx) = unsafe { (Producer::from_raw(ptr), Consumer::from_raw(ptr)) };
        tx.push(42).unwrap();
        let _ = tx.publish();
        assert_eq!(rx.pop(), Ok(Some(42)));
        let _ = rx.release();
    }
    assert_eq!(memory.header().tail.load(Ordering::Relaxed), 1);
    assert_eq!(SharedRing::<u64, 8>::BYTES, 128 + 64);
}

#[test]
fn threads_move_a_million_messages_in_order() {
    let ring = SharedRing::<u64, 256>::new();
    let (mut tx, mut rx) = ring.split();
    const COUNT: u64 = 1_000_000;
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut next = 0;
            while next < COUNT {
                match tx.push(next) {
                    Ok(()) => next += 1,
                    Err(RingError::Full) => {
                        let _ = tx.publish();
                        std::hint::spin_loop();
                    }
                    Err(err) => panic!("{err}"),
                }
                if next % 32 == 0 {
                    let _ = tx.publish();
                }
            }
            let _ = tx.publish();
        });
        let mut expected = 0;
        while expected < COUNT {
            match rx.pop().unwrap() {
                Some(item) => {
                    assert_eq!(item, expected);
                    expected += 1;
                }
                None => {
                    let _ = rx.release();
                    std::hint::spin_loop();
                }
            }
        }
    });
}

#[test]
fn errors_display_their_values() {
    let err = RingError::Corrupt {
        head: 0x10,
        tail: 0x2,
    };
    assert_eq!(err.to_string(), "ring corrupt: head 0x10, tail 0x2");
    assert_eq!(RingError::Full.to_string(), "ring full");
    let ring = SharedRing::<u64, 2>::new();
    assert!(format!("{ring:?}").contains("capacity: 2"));
}

#[test]
fn bulk_methods_keep_fifo_order_across_the_wrap() {
    for start in [u32::MAX - 5, u32::MAX, 0, 3] {
        let ring = SharedRing::<u64, 8>::starting_at(start);
        let (mut tx, mut rx) = ring.split();
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..200usize {
            let want = round % 11; // 0..=10: empty, partial, more than fits
            let sent = if round % 2 == 0 {
                let items: Vec<u64> = (next_in..next_in + want as u64).collect();
                tx.push_slice(&items).unwrap()
            } else {
                let mut make = next_in;
                let sent = tx
                    .push_with(want, || {
                        make += 1;
                        make - 1
                    })
                    .unwrap();
                assert_eq!(make, next_in + sent as u64, "make ran once per item");
                sent
            };
            assert!(sent <= want);
            next_in += sent as u64;
            let _ = tx.publish();
            let take = (round * 7) % 13;
            let got: Vec<u64> = if round % 3 == 0 {
                let mut got = Vec::new();
                rx.pop_with(take, |item| got.push(item)).unwrap();
                got
            } else {
                let mut out = vec![u64::MAX; take];
                let n = rx.pop_into(&mut out).unwrap();
                assert!(out[n..].iter().all(|&x| x == u64::MAX), "rest untouched");
                out.truncate(n);
                out
            };
            for item in got {
                assert_eq!(item, next_out);
                next_out += 1;
            }
            let _ = rx.release();
            assert_eq!(tx.head().wrapping_sub(rx.tail()) as u64, next_in - next_out);
        }
        assert!(next_out > 300, "start {start:#x}: only {next_out} moved");
    }
}

#[test]
fn push_slice_fills_the_ring_and_no_more() {
    let ring = SharedRing::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[1, 2, 3]), Ok(3));
    assert_eq!(tx.push_slice(&[4, 5, 6]), Ok(1));
    assert_eq!(tx.push_slice(&[7]), Ok(0), "full: Ok(0), not Full");
    assert_eq!(tx.push_with(5, || 9), Ok(0));
    assert_eq!(tx.push(7), Err(RingError::Full));
    assert_eq!(rx.pop_with(4, |_| panic!("nothing is published")), Ok(0));
    let _ = tx.publish();
    let mut out = [0; 8];
    assert_eq!(rx.pop_into(&mut out), Ok(4));
    assert_eq!(out[..4], [1, 2, 3, 4]);
    assert_eq!(tx.push_slice(&[8]), Ok(0), "popped but not released");
    let _ = rx.release();
    assert_eq!(tx.push_slice(&[]), Ok(0));
    assert_eq!(rx.pop_into(&mut []), Ok(0));
    assert_eq!(tx.push_slice(&[8, 9]), Ok(2));
}

#[test]
fn bulk_methods_read_the_peer_index_only_when_short() {
    // Producer: `tail` is read only if the free count cached from the last read is
    // short of the request; a bad one then fails the call, with nothing pushed.
    let ring = SharedRing::<u64, 8>::new();
    let (mut tx, _rx) = ring.split();
    assert_eq!(tx.push_slice(&[1, 2]), Ok(2)); // reads tail = 0: six free
    let _ = tx.publish();
    ring.header().tail.store(100, Ordering::Release); // ahead of head: corrupt
    assert_eq!(tx.push_slice(&[3; 6]), Ok(6), "cached count suffices");
    assert_eq!(
        tx.push_slice(&[9]),
        Err(RingError::Corrupt { head: 8, tail: 100 })
    );
    assert_eq!(
        tx.push_with(1, || panic!("not called on error")),
        Err(RingError::Corrupt { head: 8, tail: 100 })
    );
    assert_eq!(tx.head(), 8);
    // Consumer: the same for `head`.
    let ring = SharedRing::<u64, 8>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[1, 2, 3]), Ok(3));
    let _ = tx.publish();
    let mut out = [0; 2];
    assert_eq!(rx.pop_into(&mut out), Ok(2)); // reads head = 3
    ring.header().head.store(50, Ordering::Release); // more than N past tail
    assert_eq!(
        rx.pop_with(1, |x| assert_eq!(x, 3)),
        Ok(1),
        "cached count suffices"
    );
    assert_eq!(
        rx.pop_into(&mut out),
        Err(RingError::Corrupt { head: 50, tail: 3 })
    );
    assert_eq!(
        rx.pop_with(1, |_| panic!("not called on error")),
        Err(RingError::Corrupt { head: 50, tail: 3 })
    );
    assert_eq!(rx.tail(), 3);
}

#[test]
fn batches_publish_what_was_pushed_before_an_error() {
    let ring = SharedRing::<u64, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let (to_rx, to_tx) = (Count::default(), Count::default());
    assert_eq!(rx.prepare_sleep(), Ok(false));
    tx.push(1).unwrap();
    tx.push(2).unwrap(); // tail read at the first push: 4 free then
    ring.header().tail.store(7, Ordering::Release);
    assert_eq!(
        tx.send_batch(&[3, 4, 5], &to_rx),
        Err(RingError::Corrupt { head: 2, tail: 7 })
    );
    assert_eq!(tx.unpublished(), 0, "1 and 2 published");
    assert_eq!(to_rx.get(), 1, "and the sleeping consumer signalled");
    let mut out = [0; 4];
    assert_eq!(rx.pop_into(&mut out), Ok(2));
    ring.header().head.store(99, Ordering::Release);
    ring.header().producer_waiting.store(1, Ordering::Relaxed);
    assert_eq!(
        rx.recv_batch(&mut out, &to_tx),
        Err(RingError::Corrupt { head: 99, tail: 2 })
    );
    assert_eq!(rx.unreleased(), 0, "the two popped released");
    assert_eq!(to_tx.get(), 1);
}

#[test]
fn prefixes_copy_only_the_bytes_asked_for() {
    // A length word and seven data words; the ring copies in 8-byte units.
    let ring = SharedRing::<[u64; 8], 2>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push([9; 8]).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop(), Ok(Some([9; 8])));
    let _ = rx.release();
    // The next push of the same slot writes 3 bytes past the length word: two
    // words; the rest of the slot keeps the 9s.
    tx.push([2, 1, 1, 1, 1, 1, 1, 1]).unwrap();
    tx.push_prefix(&[2, 5, 5, 5, 5, 5, 5, 5], 11).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop(), Ok(Some([2, 1, 1, 1, 1, 1, 1, 1])));
    let mut out = [7u64; 8];
    // The head (one word) says how far to read: 8 + 2 * 8 bytes.
    let mut seen = 0;
    let got = rx.pop_prefix(&mut out, 8, |o| {
        seen = o[0];
        8 + 8 * o[0] as usize
    });
    assert_eq!((got, seen), (Ok(true), 2));
    // Three words read: the two written, and a 9 the prefix left.
    assert_eq!(out, [2, 5, 9, 7, 7, 7, 7, 7]);
    // Empty: `out` untouched.
    assert_eq!(rx.pop_prefix(&mut out, 8, |_| 64), Ok(false));
    assert_eq!(out, [2, 5, 9, 7, 7, 7, 7, 7]);
    let _ = rx.release();
    // The slot that took the prefix, read whole: the 9s behind it stayed.
    tx.push([0; 8]).unwrap();
    tx.push_prefix(&[1; 8], 0).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop(), Ok(Some([0; 8])));
    assert_eq!(rx.pop(), Ok(Some([2, 5, 9, 9, 9, 9, 9, 9])));
    // A length past the item is capped at its size.
    let _ = rx.release();
    tx.push_prefix(&[3; 8], 1000).unwrap();
    let _ = tx.publish();
    assert_eq!(rx.pop_prefix(&mut out, 0, |_| 1000), Ok(true));
    assert_eq!(out, [3; 8]);
}
