//! Which connections a server keeps (httpd's and net_echo's): each has a
//! deadline for making no progress (no byte received or sent), and when
//! every slot is taken while another connection waits, the least recently
//! active one makes room. Times are TSC ticks passed in, so the policy is
//! tested on the host.
//!
//! Eviction is the last resort: only after the table has been full for
//! [`Policy::grace`] without a slot freeing by itself (short connections
//! that end on their own make room faster, and a long quiet one is not
//! closed for them), never of a connection accepted within the last
//! [`Policy::grace`] (it gets to send its request and have its answer),
//! and of one that carried data only once it has been quiet for half its
//! [`Policy::idle`] (a flood of new connections, all in their grace, does
//! not push out the one old client that is only pausing).

/// The bounds of the connections, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Connections served at once.
    pub slots: usize,
    /// How long a connection may make no progress before it is reset.
    pub idle: u64,
    /// How long a new connection is safe from eviction, and how long the
    /// table must have been full before anything is evicted.
    pub grace: u64,
}

/// When a connection was accepted and when it last made progress, and
/// whether it ever did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub accepted: u64,
    pub last: u64,
    pub carried: bool,
}

impl Activity {
    pub fn new(now: u64) -> Activity {
        Activity {
            accepted: now,
            last: now,
            carried: false,
        }
    }

    /// A byte received or sent at `now`.
    pub fn progress(&mut self, now: u64) {
        self.last = self.last.max(now);
        self.carried = true;
    }
}

impl Policy {
    /// When `a` is reset if it makes no more progress.
    pub fn expires(&self, a: &Activity) -> u64 {
        a.last.saturating_add(self.idle)
    }

    pub fn expired(&self, a: &Activity, now: u64) -> bool {
        now >= self.expires(a)
    }

    /// When `a` may be evicted at the earliest.
    fn settles(&self, a: &Activity) -> u64 {
        let grace = a.accepted.saturating_add(self.grace);
        if a.carried {
            grace.max(a.last.saturating_add(self.idle / 2))
        } else {
            grace
        }
    }
}

/// The state of the table of connections between rounds of a poll loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    /// Since when every slot is taken; `None` while one is free.
    full_since: Option<u64>,
    /// No accepting before this: the network service had no room.
    paused_until: Option<u64>,
}

impl Slots {
    /// Notes that `open` connections are open at `now`. A slot freed by
    /// itself restarts the wait before an eviction.
    pub fn note(&mut self, p: &Policy, open: usize, now: u64) {
        if open < p.slots {
            self.full_since = None;
        } else if self.full_since.is_none() {
            self.full_since = Some(now);
        }
    }

    /// Stops accepting until `until` (the service is out of sockets).
    pub fn pause(&mut self, until: u64) {
        self.paused_until = Some(until);
    }

    fn paused(&self, now: u64) -> bool {
        self.paused_until.is_some_and(|u| now < u)
    }

    /// The connection (its index in `conns`) to close for one waiting: past
    /// its grace, one that never carried a byte before one that did (a
    /// flood of empty connections does not push out a client that is
    /// only quiet), and of those the least recently active; once the table
    /// has been full for the grace period; `None` while a slot is free or
    /// none may go.
    pub fn victim<'a>(
        &self,
        p: &Policy,
        conns: impl IntoIterator<Item = &'a Activity>,
        now: u64,
    ) -> Option<usize> {
        let since = self.full_since?;
        if now < since.saturating_add(p.grace) {
            return None;
        }
        conns
            .into_iter()
            .enumerate()
            .filter(|(_, a)| now >= p.settles(a))
            .min_by_key(|(_, a)| (a.carried, a.last, a.accepted))
            .map(|(i, _)| i)
    }

    /// Whether to watch the listener: a slot is free or one may be
    /// evicted, and the service is not out of sockets.
    pub fn listen<'a>(
        &self,
        p: &Policy,
        conns: impl IntoIterator<Item = &'a Activity> + Clone,
        now: u64,
    ) -> bool {
        if self.paused(now) {
            return false;
        }
        conns.clone().into_iter().count() < p.slots || self.victim(p, conns, now).is_some()
    }

    /// When the loop must look again though no socket is ready: the first
    /// no-progress deadline, the end of a pause, or when a connection
    /// becomes evictable while the listener is not watched. `None` (sleep
    /// until a socket is ready) when there is none.
    pub fn wake<'a>(
        &self,
        p: &Policy,
        conns: impl IntoIterator<Item = &'a Activity> + Clone,
        now: u64,
    ) -> Option<u64> {
        let deadline = conns.clone().into_iter().map(|a| p.expires(a)).min();
        let pause = self.paused_until.filter(|&u| now < u);
        let evictable = match self.full_since {
            Some(since) if !self.listen(p, conns.clone(), now) => conns
                .into_iter()
                .map(|a| p.settles(a))
                .min()
                .map(|t| t.max(since.saturating_add(p.grace))),
            _ => None,
        };
        [deadline, pause, evictable].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        slots: 3,
        idle: 100,
        grace: 10,
    };

    fn at(accepted: u64, last: u64) -> Activity {
        Activity {
            accepted,
            last,
            carried: last != accepted,
        }
    }

    #[test]
    fn deadlines_expire_without_progress() {
        let mut a = Activity::new(50);
        assert!(!P.expired(&a, 149));
        assert!(P.expired(&a, 150));
        a.progress(120);
        assert!(!P.expired(&a, 150));
        assert_eq!(P.expires(&a), 220);
        // A reading from before the last progress does not move it back.
        a.progress(60);
        assert_eq!(P.expires(&a), 220);
    }

    #[test]
    fn the_first_deadline_wakes_the_loop() {
        let conns = [at(0, 40), at(0, 30), at(0, 70)];
        let s = Slots::default();
        assert_eq!(s.wake(&P, &conns, 35), Some(130));
    }

    #[test]
    fn no_connection_no_pause_sleeps() {
        let s = Slots::default();
        assert_eq!(s.wake(&P, &[], 5), None);
        assert!(s.listen(&P, &[], 5));
    }

    #[test]
    fn the_least_recently_active_is_evicted() {
        let conns = [at(0, 50), at(0, 20), at(5, 30)];
        let mut s = Slots::default();
        s.note(&P, conns.len(), 60);
        assert_eq!(s.victim(&P, &conns, 70), Some(1));
        // Ties go to the one accepted first.
        let conns = [at(3, 20), at(1, 20), at(2, 20)];
        assert_eq!(s.victim(&P, &conns, 70), Some(1));
    }

    #[test]
    fn a_quiet_connection_that_carried_data_outlives_empty_ones() {
        // The keeper carried data long ago; the others never sent a byte.
        let keeper = at(0, 5);
        let empty = [at(10, 10), at(20, 20)];
        let conns = [empty[0], keeper, empty[1]];
        let mut s = Slots::default();
        s.note(&P, 3, 30);
        assert_eq!(s.victim(&P, &conns, 50), Some(0));
        let conns = [keeper, empty[1]];
        assert_eq!(s.victim(&P, &conns, 50), Some(1));
    }

    #[test]
    fn a_connection_in_its_grace_is_not_evicted() {
        // The one that never carried a byte was accepted at 65: safe
        // until 75; the others carried data and are quiet for less than
        // half the idle limit (50).
        let conns = [at(0, 50), at(65, 65), at(0, 30)];
        let mut s = Slots::default();
        s.note(&P, 3, 0);
        assert_eq!(s.victim(&P, &conns, 70), None);
        assert_eq!(s.victim(&P, &conns, 75), Some(1));
        // Past half its idle limit, a quiet one may go too.
        let conns = [at(0, 50), at(0, 30)];
        assert_eq!(s.victim(&P, &conns, 79), None);
        assert_eq!(s.victim(&P, &conns, 80), Some(1));
    }

    #[test]
    fn nothing_is_evicted_until_the_table_was_full_for_the_grace() {
        let conns = [at(0, 1), at(0, 2), at(0, 3)];
        let mut s = Slots::default();
        s.note(&P, 2, 40);
        assert_eq!(s.victim(&P, &conns, 40), None);
        s.note(&P, 3, 41);
        assert_eq!(s.victim(&P, &conns, 50), None);
        assert!(!s.listen(&P, &conns, 50));
        assert_eq!(s.wake(&P, &conns, 50), Some(51));
        assert_eq!(s.victim(&P, &conns, 51), Some(0));
        assert!(s.listen(&P, &conns, 51));
        // A slot freed by itself starts the wait again.
        s.note(&P, 2, 52);
        s.note(&P, 3, 53);
        assert_eq!(s.victim(&P, &conns, 60), None);
    }

    #[test]
    fn accepting_resumes_when_a_newcomer_settles() {
        // All three accepted within the grace: none may go, so the
        // listener is not watched, and the loop wakes when one settles.
        let conns = [at(20, 20), at(25, 25), at(22, 22)];
        let mut s = Slots::default();
        s.note(&P, 3, 18);
        assert!(!s.listen(&P, &conns, 26));
        assert_eq!(s.wake(&P, &conns, 26), Some(30));
        assert!(s.listen(&P, &conns, 30));
        assert_eq!(s.victim(&P, &conns, 30), Some(0));
        // After an eviction the table stays full: the next may go at once.
        let conns = [at(30, 30), at(25, 25), at(22, 22)];
        assert_eq!(s.victim(&P, &conns, 32), Some(2));
    }

    #[test]
    fn accepting_resumes_when_a_slot_frees() {
        let conns = [at(20, 20), at(25, 25), at(22, 22)];
        let mut s = Slots::default();
        s.note(&P, 3, 25);
        assert!(!s.listen(&P, &conns, 26));
        let fewer = conns.get(..2).unwrap_or(&[]);
        s.note(&P, 2, 27);
        assert!(s.listen(&P, fewer, 27));
        assert_eq!(s.wake(&P, fewer, 27), Some(120));
    }

    #[test]
    fn accepting_resumes_after_a_pause() {
        let mut s = Slots::default();
        s.pause(40);
        assert!(!s.listen(&P, &[], 30));
        assert_eq!(s.wake(&P, &[], 30), Some(40));
        assert!(s.listen(&P, &[], 40));
        assert_eq!(s.wake(&P, &[], 40), None);
    }

    #[test]
    fn times_saturate() {
        let p = Policy {
            slots: 1,
            idle: u64::MAX,
            grace: u64::MAX,
        };
        let conns = [at(u64::MAX - 1, u64::MAX - 1)];
        let mut s = Slots::default();
        s.note(&p, 1, u64::MAX - 1);
        assert!(conns.iter().all(|a| !p.expired(a, u64::MAX - 1)));
        assert_eq!(s.victim(&p, &conns, u64::MAX - 1), None);
        assert_eq!(s.wake(&p, &conns, u64::MAX - 1), Some(u64::MAX));
    }
}
