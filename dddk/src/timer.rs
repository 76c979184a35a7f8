//! The driver side of the timer protocol ([`kaal_protocols::timer`]),
//! device-independent: the [`DeadlineQueue`] of pending alarms, and
//! [`AlarmServer`], which moves requests into it and fired alarms out.
//! Nothing the client writes is trusted: any deadline and token are
//! accepted, a full queue is answered with [`AlarmFired::QUEUE_FULL`], and a
//! corrupt ring is an error for the driver's guard. And the PIT's count for
//! a wait ([`pit_count`]).

use heapless::binary_heap::{BinaryHeap, Min};
use kaal_protocols::timer::{AlarmFired, AlarmRequest};
use kaal_ring::{Consumer, Notify, Producer, RingError};

/// A pending alarm. Ordered by deadline, then by arrival, so equal
/// deadlines fire in the order they were asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alarm {
    pub deadline: u64,
    seq: u64,
    pub token: u64,
}

/// The queue is full; the request was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

/// At most `Q` pending alarms, earliest first.
#[derive(Debug, Default)]
pub struct DeadlineQueue<const Q: usize> {
    heap: BinaryHeap<Alarm, Min, Q>,
    seq: u64,
}

impl<const Q: usize> DeadlineQueue<Q> {
    pub fn new() -> Self {
        DeadlineQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn insert(&mut self, token: u64, deadline: u64) -> Result<(), QueueFull> {
        let alarm = Alarm {
            deadline,
            seq: self.seq,
            token,
        };
        self.heap.push(alarm).map_err(|_| QueueFull)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }

    /// The earliest deadline pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|a| a.deadline)
    }

    /// The earliest alarm if its deadline is at or before `now`; it stays
    /// queued until [`DeadlineQueue::remove_earliest`].
    pub fn due(&self, now: u64) -> Option<Alarm> {
        self.heap.peek().filter(|a| a.deadline <= now).copied()
    }

    pub fn remove_earliest(&mut self) -> Option<Alarm> {
        self.heap.pop()
    }
}

/// What a round of [`AlarmServer::serve`] left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// The earliest pending deadline: arm the device for it.
    pub next_deadline: Option<u64>,
    /// Answers wait for room in `fired`: wait for the client to take some.
    pub stalled: bool,
}

/// The device-independent half of a timer driver for one client (a driver
/// with several keeps one each).
#[derive(Debug, Default)]
pub struct AlarmServer<const Q: usize> {
    queue: DeadlineQueue<Q>,
}

impl<const Q: usize> AlarmServer<Q> {
    pub fn new() -> Self {
        AlarmServer {
            queue: DeadlineQueue::new(),
        }
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// At TSC `now`: answers every due alarm and takes the client's
    /// requests, while `fired` has room (a request is taken only when there
    /// is room to refuse it); then publishes the answers and releases the
    /// requests, signalling the client through each ring's `peer` when it
    /// asked. An error is a corrupt ring.
    pub fn serve<const N: usize, const M: usize>(
        &mut self,
        now: u64,
        (requests, requests_peer): (&mut Consumer<'_, AlarmRequest, N>, &impl Notify),
        (fired, fired_peer): (&mut Producer<'_, AlarmFired, M>, &impl Notify),
    ) -> Result<Served, RingError> {
        let r = self.exchange(now, requests, fired);
        if fired.publish() {
            fired_peer.notify();
        }
        if requests.release() {
            requests_peer.notify();
        }
        let stalled = r?;
        Ok(Served {
            next_deadline: self.queue.next_deadline(),
            stalled,
        })
    }

    fn exchange<const N: usize, const M: usize>(
        &mut self,
        now: u64,
        requests: &mut Consumer<'_, AlarmRequest, N>,
        fired: &mut Producer<'_, AlarmFired, M>,
    ) -> Result<bool, RingError> {
        loop {
            while let Some(a) = self.queue.due(now) {
                let answer = AlarmFired {
                    token: a.token,
                    at_tsc: now,
                    status: AlarmFired::FIRED,
                };
                match fired.push(answer) {
                    Ok(()) => {
                        self.queue.remove_earliest();
                    }
                    Err(RingError::Full) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            if requests.available()? == 0 {
                return Ok(false);
            }
            if fired.free()? == 0 {
                return Ok(true);
            }
            let Some(req) = requests.pop()? else {
                return Ok(false);
            };
            if self.queue.insert(req.token, req.deadline_tsc).is_err() {
                // Room was checked above.
                fired.push(AlarmFired {
                    token: req.token,
                    at_tsc: now,
                    status: AlarmFired::QUEUE_FULL,
                })?;
            }
        }
    }
}

/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// The one-shot count for the PIT to interrupt no earlier than
/// `delta_tsc` ticks of a TSC at `tsc_mhz` from now: rounded up, at least
/// 1, at most 65535 (about 54.9 ms; a longer wait is armed again when it
/// ends). An unknown frequency (0) gives the longest count.
pub fn pit_count(delta_tsc: u64, tsc_mhz: u64) -> u16 {
    let per_sec = u128::from(tsc_mhz) * 1_000_000;
    if per_sec == 0 {
        return u16::MAX;
    }
    let counts = (u128::from(delta_tsc) * u128::from(PIT_HZ)).div_ceil(per_sec);
    u16::try_from(counts.max(1)).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use kaal_ring::SharedRing;

    #[derive(Default)]
    struct Count(Cell<u32>);
    impl Notify for Count {
        fn notify(&self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn earliest_first_ties_in_arrival_order_and_full_is_an_error() {
        let mut q: DeadlineQueue<4> = DeadlineQueue::new();
        q.insert(1, 300).unwrap();
        q.insert(2, 100).unwrap();
        q.insert(3, 200).unwrap();
        q.insert(4, 100).unwrap();
        assert_eq!(q.insert(5, 50), Err(QueueFull));
        assert_eq!(q.len(), 4);
        assert_eq!(q.next_deadline(), Some(100));
        assert_eq!(q.due(99), None);
        let mut order = Vec::new();
        while let Some(a) = q.due(250) {
            order.push(a.token);
            q.remove_earliest();
        }
        assert_eq!(order, [2, 4, 3]);
        assert_eq!(q.next_deadline(), Some(300));
    }

    #[test]
    fn pit_counts_round_up_and_clamp() {
        // 1 ms of a 1 GHz TSC is 1193.182 PIT counts.
        assert_eq!(pit_count(1_000_000, 1000), 1194);
        assert_eq!(pit_count(0, 3000), 1);
        assert_eq!(pit_count(1, 3000), 1);
        // 54 ms fits, 55 ms does not.
        assert_eq!(pit_count(54_000_000, 1000), 64432);
        assert_eq!(pit_count(55_000_000, 1000), u16::MAX);
        assert_eq!(
            pit_count(u64::MAX, u64::MAX),
            2,
            "no overflow in the products"
        );
        assert_eq!(pit_count(u64::MAX, 1), u16::MAX);
        assert_eq!(pit_count(10, 0), u16::MAX);
    }

    fn req(token: u64, deadline_tsc: u64) -> AlarmRequest {
        AlarmRequest {
            token,
            deadline_tsc,
        }
    }

    #[test]
    fn due_alarms_fire_in_order_and_later_ones_wait() {
        let alarm: SharedRing<AlarmRequest, 8> = SharedRing::new();
        let fired: SharedRing<AlarmFired, 8> = SharedRing::new();
        let (mut c_tx, mut d_rx) = alarm.split();
        let (mut d_tx, mut c_rx) = fired.split();
        let client = Count::default();
        c_tx.push_slice(&[req(1, 500), req(2, 100), req(3, 300)])
            .unwrap();
        let _ = c_tx.publish();
        let mut s: AlarmServer<4> = AlarmServer::new();
        let served = s
            .serve(50, (&mut d_rx, &client), (&mut d_tx, &client))
            .unwrap();
        assert_eq!(
            served,
            Served {
                next_deadline: Some(100),
                stalled: false
            }
        );
        assert_eq!(c_rx.pop().unwrap(), None, "nothing is due yet");
        let served = s
            .serve(300, (&mut d_rx, &client), (&mut d_tx, &client))
            .unwrap();
        assert_eq!(served.next_deadline, Some(500));
        let got: Vec<_> = core::iter::from_fn(|| c_rx.pop().unwrap()).collect();
        assert_eq!(
            got.iter()
                .map(|f| (f.token, f.at_tsc, f.is_fired()))
                .collect::<Vec<_>>(),
            [(2, 300, true), (3, 300, true)]
        );
        assert_eq!(s.pending(), 1);
    }

    #[test]
    fn a_full_queue_refuses_and_a_full_ring_stalls_without_losing_alarms() {
        let alarm: SharedRing<AlarmRequest, 8> = SharedRing::new();
        let fired: SharedRing<AlarmFired, 2> = SharedRing::new();
        let (mut c_tx, mut d_rx) = alarm.split();
        let (mut d_tx, mut c_rx) = fired.split();
        let client = Count::default();
        // Three alarms for a queue of two: the third is refused.
        c_tx.push_slice(&[req(1, 10), req(2, 20), req(3, 30)])
            .unwrap();
        let _ = c_tx.publish();
        let mut s: AlarmServer<2> = AlarmServer::new();
        let served = s
            .serve(0, (&mut d_rx, &client), (&mut d_tx, &client))
            .unwrap();
        assert!(!served.stalled);
        let refusal = c_rx.pop().unwrap().unwrap();
        assert_eq!((refusal.token, refusal.status), (3, AlarmFired::QUEUE_FULL));
        let _ = c_rx.release();
        // Four more alarms, all due, into a ring of two slots: the driver
        // stalls with the rest kept, and takes no request it could not
        // refuse.
        c_tx.push_slice(&[req(4, 5), req(5, 5)]).unwrap();
        let _ = c_tx.publish();
        let served = s
            .serve(100, (&mut d_rx, &client), (&mut d_tx, &client))
            .unwrap();
        assert!(served.stalled);
        let mut got = Vec::new();
        for _ in 0..4 {
            while let Some(f) = c_rx.pop().unwrap() {
                assert!(f.is_fired());
                got.push(f.token);
            }
            let _ = c_rx.release();
            s.serve(100, (&mut d_rx, &client), (&mut d_tx, &client))
                .unwrap();
        }
        assert_eq!(got, [1, 2, 4, 5]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_corrupt_ring_is_an_error_not_a_panic() {
        let alarm: SharedRing<AlarmRequest, 8> = SharedRing::new();
        let fired: SharedRing<AlarmFired, 8> = SharedRing::new();
        let (_c_tx, mut d_rx) = alarm.split();
        let (mut d_tx, _c_rx) = fired.split();
        alarm
            .header()
            .head
            .store(1000, core::sync::atomic::Ordering::Release);
        let mut s: AlarmServer<4> = AlarmServer::new();
        let r = s.serve(
            0,
            (&mut d_rx, &Count::default()),
            (&mut d_tx, &Count::default()),
        );
        assert!(matches!(r, Err(RingError::Corrupt { .. })));
    }
}
