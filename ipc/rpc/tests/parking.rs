//! The parking server loop's decisions: a badge without the call bit is a
//! notification wake-up; a dispatch that parks leaves nothing to reply.
// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use kaal_rpc::{parking_turn, Badge, LocalBuffer, Msg, CALL_BADGE_BIT};

#[test]
fn a_signal_goes_to_on_signal_not_dispatch() {
    let buf = LocalBuffer::default();
    let mut signals = Vec::new();
    let mut calls = 0;
    let r = parking_turn(
        0b101,
        &Msg::empty(0),
        &buf,
        &mut |b: Badge| signals.push(b),
        &mut |_, _, _: &LocalBuffer| {
            calls += 1;
            Some(Msg::empty(0))
        },
    );
    assert_eq!(r, None);
    assert_eq!(signals, [0b101]);
    assert_eq!(calls, 0);
}

#[test]
fn a_call_is_answered_or_parked() {
    let buf = LocalBuffer::default();
    let mut signals = 0;
    let mut seen = Vec::new();
    let mut park = false;
    for (badge, label) in [(CALL_BADGE_BIT | 1, 7), (CALL_BADGE_BIT | 2, 8)] {
        let r = parking_turn(
            badge,
            &Msg::empty(label),
            &buf,
            &mut |_| signals += 1,
            &mut |b, m: &Msg, _: &LocalBuffer| {
                seen.push((b, m.label));
                (!park).then(|| Msg::empty(m.label + 100))
            },
        );
        if park {
            assert_eq!(r, None, "a parked call has no reply now");
        } else {
            assert_eq!(r, Some(Msg::empty(107)));
        }
        park = true;
    }
    assert_eq!(signals, 0);
    assert_eq!(seen, [(CALL_BADGE_BIT | 1, 7), (CALL_BADGE_BIT | 2, 8)]);
}
