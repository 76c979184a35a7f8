//! Reads in flight to a disk that does not wait: a cold read is sent once
//! and waits; it is served once from its slot when it arrived; other
//! slots serve others meanwhile; nothing is taken from a slot in flight.
// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use blockcache::inflight::{Covered, Reads};

#[test]
fn a_cold_read_waits_until_it_arrived_and_is_served_once() {
    let mut r = Reads::<2>::default();
    assert_eq!(r.take(100, 8), None);
    assert!(!r.in_flight(100, 8));
    let i = r.claim().unwrap();
    r.sent(i, 7, 100, 128);
    // Asked again before it arrived: in flight, nothing to take.
    assert!(r.in_flight(104, 8));
    assert_eq!(r.take(104, 8), None);
    // A response with another tag is not it.
    r.arrived(99, true);
    assert!(r.any_in_flight());
    r.arrived(7, true);
    assert!(!r.any_in_flight());
    assert_eq!(r.take(300, 8), None, "not covered");
    assert_eq!(r.take(104, 8), Some(Covered::Here { slot: i, skip: 4 }));
    assert_eq!(r.take(104, 8), None, "served once");
}

#[test]
fn a_disk_that_never_answers_holds_two_reads_and_no_more() {
    let mut r = Reads::<2>::default();
    let a = r.claim().unwrap();
    r.sent(a, 1, 0, 8);
    let b = r.claim().unwrap();
    assert_ne!(a, b);
    r.sent(b, 2, 64, 8);
    assert_eq!(r.claim(), None, "both in flight");
    assert!(r.in_flight(0, 8) && r.in_flight(64, 8) && !r.in_flight(4, 8));
    assert!(!r.take_dropped());
}

#[test]
fn a_refused_read_fails_once_and_the_oldest_arrival_makes_room() {
    let mut r = Reads::<2>::default();
    r.sent(0, 1, 0, 8);
    r.sent(1, 2, 64, 8);
    r.arrived(1, false);
    assert_eq!(r.take(0, 8), Some(Covered::Failed));
    assert_eq!(r.take(0, 8), None);
    r.sent(0, 3, 128, 8);
    r.arrived(2, true);
    r.arrived(3, true);
    // Both arrived, neither taken: the older (tag 2, slot 1) goes.
    assert_eq!(r.claim(), Some(1));
    assert!(r.take_dropped());
    assert!(!r.take_dropped());
    assert_eq!(r.take(64, 8), None);
    assert_eq!(r.take(128, 8), Some(Covered::Here { slot: 0, skip: 0 }));
}

#[test]
fn failed_reads_nobody_takes_do_not_hold_their_slots() {
    let mut r = Reads::<2>::default();
    r.sent(0, 1, 0, 8);
    r.sent(1, 2, 64, 8);
    r.arrived(1, false);
    r.arrived(2, false);
    // Their readers went away, or now ask for other ranges: both slots are
    // there for new reads (without this, nothing could be read again).
    let a = r.claim().unwrap();
    r.sent(a, 3, 200, 8);
    let b = r.claim().unwrap();
    assert_ne!(a, b);
    r.sent(b, 4, 300, 8);
    assert_eq!(r.claim(), None, "both in flight again");
    assert!(!r.take_dropped(), "a failed read drops no bytes");
}
