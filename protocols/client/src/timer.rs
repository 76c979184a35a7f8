//! The timer protocol's client: alarms asked on the `alarm` ring, answers
//! from `fired`.

use core::time::Duration;

use kaal_protocols::timer::{AlarmFired, AlarmRequest, RING_SLOTS};
use kaal_rt::time::{Clock, Instant};
use kaal_rt::{Env, RingRx, RingTx};

/// Why a timer call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// The manifest binds no such ring (the local name).
    NotGranted(&'static str),
    /// The kernel did not say how fast the TSC runs.
    NoClock,
    /// A ring shared with the driver is corrupt.
    Ring,
    /// The answer was not the firing of the alarm asked.
    WrongAnswer(AlarmFired),
}

/// A client of one timer driver.
#[derive(Debug)]
pub struct TimerClient {
    pub clock: Clock,
    alarm: RingTx<AlarmRequest, RING_SLOTS>,
    fired: RingRx<AlarmFired, RING_SLOTS>,
    /// The token of the last alarm asked.
    last_token: u64,
}

impl TimerClient {
    /// The client on the rings bound to local names `alarm` and `fired`.
    pub fn new(env: &Env) -> Result<TimerClient, TimerError> {
        Ok(TimerClient {
            clock: env.clock().ok_or(TimerError::NoClock)?,
            alarm: env
                .ring_tx("alarm")
                .map_err(|_| TimerError::NotGranted("alarm"))?,
            fired: env
                .ring_rx("fired")
                .map_err(|_| TimerError::NotGranted("fired"))?,
            last_token: 0,
        })
    }

    /// Asks for an alarm at `deadline`; returns its token.
    pub fn ask(&mut self, deadline: Instant) -> Result<u64, TimerError> {
        let token = self.last_token + 1;
        self.send_at(&[deadline])?;
        Ok(token)
    }

    /// Asks for an alarm at each of `deadlines`, in one batch; returns the
    /// first one's token (the others follow it).
    pub fn send_at(&mut self, deadlines: &[Instant]) -> Result<u64, TimerError> {
        let first = self.last_token + 1;
        // A ring's worth at a time, so the driver takes them in batches.
        let mut batch = [AlarmRequest::default(); RING_SLOTS];
        for (k, part) in deadlines.chunks(RING_SLOTS).enumerate() {
            let base = first + (k * RING_SLOTS) as u64;
            for ((slot, deadline), token) in batch.iter_mut().zip(part).zip(base..) {
                *slot = AlarmRequest {
                    token,
                    deadline_tsc: deadline.ticks(),
                };
            }
            let reqs = batch.get(..part.len()).unwrap_or(&[]);
            self.alarm.send_all(reqs).map_err(|_| TimerError::Ring)?;
        }
        self.last_token += deadlines.len() as u64;
        Ok(first)
    }

    /// The token of the last alarm asked.
    pub fn last_token(&self) -> u64 {
        self.last_token
    }

    /// The next answer, waiting for it.
    pub fn answer(&mut self) -> Result<AlarmFired, TimerError> {
        let f = self.fired.recv().map_err(|_| TimerError::Ring)?;
        self.fired.release();
        Ok(f)
    }

    /// The next answer, if one arrived; does not wait.
    pub fn poll_answer(&mut self) -> Result<Option<AlarmFired>, TimerError> {
        let f = self.fired.ring.pop().map_err(|_| TimerError::Ring)?;
        self.fired.release();
        Ok(f)
    }

    /// The ring the answers arrive on, for an event loop to sleep on.
    pub fn fired_ring(&mut self) -> &mut kaal_ring::Consumer<'static, AlarmFired, RING_SLOTS> {
        &mut self.fired.ring
    }

    /// Sleeps `d` through the driver; returns the TSC ticks it took.
    pub fn sleep(&mut self, d: Duration) -> Result<u64, TimerError> {
        let start = Instant::now();
        let token = self.ask(self.clock.after(start, d))?;
        let f = self.answer()?;
        let end = Instant::now();
        if f.token != token || !f.is_fired() {
            return Err(TimerError::WrongAnswer(f));
        }
        Ok(end.ticks_since(start))
    }
}

impl From<TimerError> for &'static str {
    /// What went wrong, for a component's `main` that reports a text.
    fn from(e: TimerError) -> &'static str {
        match e {
            TimerError::NotGranted(_) => "a timer ring is not granted",
            TimerError::NoClock => "the TSC frequency is unknown",
            TimerError::Ring => "a timer ring is corrupt",
            TimerError::WrongAnswer(_) => "the timer answered another alarm",
        }
    }
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text: &'static str = (*self).into();
        match self {
            TimerError::NotGranted(local) => write!(f, "{text} (`{local}`)"),
            _ => f.write_str(text),
        }
    }
}
