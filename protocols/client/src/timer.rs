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
    pub last_token: u64,
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
        self.last_token += 1;
        let req = AlarmRequest {
            token: self.last_token,
            deadline_tsc: deadline.ticks(),
        };
        self.send(&[req])?;
        Ok(self.last_token)
    }

    /// Sends requests as they are (the caller chose their tokens).
    pub fn send(&mut self, requests: &[AlarmRequest]) -> Result<(), TimerError> {
        self.alarm.send_all(requests).map_err(|_| TimerError::Ring)
    }

    /// The next answer, waiting for it.
    pub fn answer(&mut self) -> Result<AlarmFired, TimerError> {
        let f = self.fired.recv().map_err(|_| TimerError::Ring)?;
        self.fired.release();
        Ok(f)
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
