//! Futex wait queues: the threads parked in `FUTEX_WAIT` per futex word,
//! keyed by address space (a process's tgid: threads share one, a fork
//! gets its own copy) and user address, in arrival order. The server
//! parks the calls; this decides who a wake or requeue takes.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// A thread id (the same number space as process ids).
pub type Tid = u32;

/// A futex word: the address space (tgid) and the user address.
pub type Key = (u32, u64);

/// `FUTEX_BITSET_MATCH_ANY`: the bitset of `FUTEX_WAIT` and `FUTEX_WAKE`.
pub const MATCH_ANY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    tid: Tid,
    bitset: u32,
}

/// Every futex word some thread waits on.
#[derive(Default, Debug)]
pub struct Futexes {
    queues: BTreeMap<Key, VecDeque<Waiter>>,
}

impl Futexes {
    pub fn new() -> Futexes {
        Futexes::default()
    }

    /// Thread `tid` waits on `key` for a wake whose bitset meets `bitset`
    /// (once: a thread already queued anywhere is left where it is).
    pub fn wait(&mut self, key: Key, tid: Tid, bitset: u32) {
        if self.is_waiting(tid) {
            return;
        }
        self.queues
            .entry(key)
            .or_default()
            .push_back(Waiter { tid, bitset });
    }

    /// True if `tid` is in some queue.
    pub fn is_waiting(&self, tid: Tid) -> bool {
        self.queues.values().any(|q| q.iter().any(|w| w.tid == tid))
    }

    /// Takes `tid` out of its queue (its wait timed out, was interrupted,
    /// or the thread ended).
    pub fn cancel(&mut self, tid: Tid) {
        self.queues.retain(|_, q| {
            q.retain(|w| w.tid != tid);
            !q.is_empty()
        });
    }

    /// Forgets every queue of address space `space` (the process ended or
    /// exec'd).
    pub fn drop_space(&mut self, space: u32) {
        self.queues.retain(|k, _| k.0 != space);
    }

    /// `FUTEX_WAKE` and `FUTEX_WAKE_BITSET`: takes up to `n` waiters of
    /// `key` whose bitset meets `bitset`, first come first; returns them.
    pub fn wake(&mut self, key: Key, n: usize, bitset: u32) -> Vec<Tid> {
        let mut woken = Vec::new();
        if let Some(q) = self.queues.get_mut(&key) {
            q.retain(|w| {
                if woken.len() < n && w.bitset & bitset != 0 {
                    woken.push(w.tid);
                    false
                } else {
                    true
                }
            });
            if q.is_empty() {
                self.queues.remove(&key);
            }
        }
        woken
    }

    /// `FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE`: wakes up to `wake` waiters of
    /// `from`, moves up to `requeue` of the rest to the end of `to`'s
    /// queue; returns the woken and how many moved.
    pub fn requeue(
        &mut self,
        from: Key,
        to: Key,
        wake: usize,
        requeue: usize,
    ) -> (Vec<Tid>, usize) {
        let woken = self.wake(from, wake, MATCH_ANY);
        if from == to {
            return (woken, 0);
        }
        let mut moved = Vec::new();
        if let Some(q) = self.queues.get_mut(&from) {
            while moved.len() < requeue {
                match q.pop_front() {
                    Some(w) => moved.push(w),
                    None => break,
                }
            }
            if q.is_empty() {
                self.queues.remove(&from);
            }
        }
        let n = moved.len();
        if n > 0 {
            self.queues.entry(to).or_default().extend(moved);
        }
        (woken, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_takes_in_order_and_at_most_n() {
        let mut f = Futexes::new();
        f.wait((1, 0x1000), 5, MATCH_ANY);
        f.wait((1, 0x1000), 6, MATCH_ANY);
        f.wait((1, 0x1000), 7, MATCH_ANY);
        f.wait((2, 0x1000), 8, MATCH_ANY);
        assert_eq!(f.wake((1, 0x1000), 2, MATCH_ANY), vec![5, 6]);
        assert_eq!(f.wake((1, 0x1000), 5, MATCH_ANY), vec![7]);
        assert!(f.wake((1, 0x1000), 5, MATCH_ANY).is_empty());
        // Another address space's word at the same address is its own.
        assert!(f.is_waiting(8));
    }

    #[test]
    fn bitsets_select_waiters() {
        let mut f = Futexes::new();
        f.wait((1, 8), 1, 0b01);
        f.wait((1, 8), 2, 0b10);
        assert_eq!(f.wake((1, 8), 9, 0b10), vec![2]);
        assert_eq!(f.wake((1, 8), 9, MATCH_ANY), vec![1]);
    }

    #[test]
    fn cancel_and_wait_once() {
        let mut f = Futexes::new();
        f.wait((1, 8), 1, MATCH_ANY);
        f.wait((1, 16), 1, MATCH_ANY);
        assert_eq!(f.wake((1, 16), 1, MATCH_ANY), Vec::<Tid>::new());
        f.cancel(1);
        assert!(!f.is_waiting(1));
        assert!(f.wake((1, 8), 1, MATCH_ANY).is_empty());
    }

    #[test]
    fn requeue_moves_the_rest() {
        let mut f = Futexes::new();
        for t in 1..=4 {
            f.wait((1, 8), t, MATCH_ANY);
        }
        f.wait((1, 16), 9, MATCH_ANY);
        let (woken, moved) = f.requeue((1, 8), (1, 16), 1, 2);
        assert_eq!((woken, moved), (vec![1], 2));
        assert_eq!(f.wake((1, 16), 9, MATCH_ANY), vec![9, 2, 3]);
        assert_eq!(f.wake((1, 8), 9, MATCH_ANY), vec![4]);
    }

    #[test]
    fn drop_space_forgets_its_queues() {
        let mut f = Futexes::new();
        f.wait((1, 8), 1, MATCH_ANY);
        f.wait((2, 8), 2, MATCH_ANY);
        f.drop_space(1);
        assert!(!f.is_waiting(1));
        assert!(f.is_waiting(2));
    }
}
