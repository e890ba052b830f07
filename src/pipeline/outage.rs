//! A service that stops answering mid-run: told at once, retried without spending the
//! files' attempts, given up after `--unreachable-timeout`.
//!
//! After a working start, a request that gets no answer at all (refused, reset, timed out)
//! while nothing has been answered for a while ([`grace`]) starts an outage. Its first failure is a warning naming the endpoint and the error, and
//! a line follows every minute while it lasts; the files wait for the service instead of
//! failing. When no request has been answered for the timeout, the run stops with exit 7
//! and every file not confirmed stays pending, as when the service is unreachable from the
//! start. The decision is [`decide`], a pure function of the clock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a lasting outage is logged again.
pub const REMIND_EVERY: Duration = Duration::from_secs(60);

/// Ten minutes by default: long enough to ride out a restart or a failover, short enough
/// that a dead service is reported within the hour instead of holding the night.
pub const DEFAULT_UNREACHABLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
pub struct State {
    pub last_answer: Instant,
    /// When the outage began, if one is going on.
    pub since: Option<Instant>,
    pub last_told: Option<Instant>,
}

/// What a failure without an answer means now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Others were answered a moment ago: a passing fault (a dropped connection among
    /// good ones), retried as any transient failure, with the file's attempts.
    Ordinary,
    /// The outage began: say so, then wait and try again.
    Began,
    /// It goes on, and a minute has passed since it was last told: say so again.
    Remind(Duration),
    /// It goes on: wait and try again.
    Wait,
    /// Nothing was answered for the timeout: stop the run.
    GiveUp(Duration),
}

/// How long the service must have been silent before a failure without an answer is an
/// outage: a tenth of the timeout, at most 10 s. Shorter silences happen on any busy
/// night (a dropped connection while others are answered) and are not told.
pub fn grace(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_secs(10))
}

pub fn decide(state: &mut State, now: Instant, timeout: Duration) -> Step {
    let silent = now.saturating_duration_since(state.last_answer);
    if state.since.is_none() && silent < grace(timeout) {
        return Step::Ordinary;
    }
    let began = *state.since.get_or_insert(now);
    if silent >= timeout {
        return Step::GiveUp(silent);
    }
    match state.last_told {
        None => {
            state.last_told = Some(now);
            Step::Began
        }
        Some(t) if now.saturating_duration_since(t) >= REMIND_EVERY => {
            state.last_told = Some(now);
            Step::Remind(now.saturating_duration_since(began))
        }
        Some(_) => Step::Wait,
    }
}

#[derive(Debug)]
pub struct Outage {
    timeout: Duration,
    state: Mutex<State>,
}

impl Outage {
    pub fn new(timeout: Duration) -> Outage {
        Outage {
            timeout,
            state: Mutex::new(State {
                last_answer: Instant::now(),
                since: None,
                last_told: None,
            }),
        }
    }

    /// The service answered a request sent at `sent`; returns how long it had been silent
    /// when this ends an outage. An answer to a request sent before the outage began says
    /// nothing of the service now, and changes nothing.
    pub fn answered(&self, sent: Instant) -> Option<Duration> {
        let mut s = self.state.lock().ok()?;
        if s.since.is_some_and(|since| sent < since) {
            return None;
        }
        let now = Instant::now();
        let ended = s
            .since
            .take()
            .map(|since| now.saturating_duration_since(since));
        s.last_answer = now;
        s.last_told = None;
        ended
    }

    pub fn failed(&self) -> Step {
        match self.state.lock() {
            Ok(mut s) => decide(&mut s, Instant::now(), self.timeout),
            Err(_) => Step::Wait,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_told_reminded_and_given_up() {
        let t0 = Instant::now();
        let mut s = State {
            last_answer: t0,
            since: None,
            last_told: None,
        };
        let timeout = Duration::from_secs(600);
        let at = |secs| t0 + Duration::from_secs(secs);
        // A failure right after an answer is a passing fault, not an outage.
        assert_eq!(decide(&mut s, at(5), timeout), Step::Ordinary);
        assert_eq!(decide(&mut s, at(10), timeout), Step::Began);
        assert_eq!(decide(&mut s, at(30), timeout), Step::Wait);
        assert_eq!(
            decide(&mut s, at(71), timeout),
            Step::Remind(Duration::from_secs(61))
        );
        assert_eq!(decide(&mut s, at(100), timeout), Step::Wait);
        assert_eq!(
            decide(&mut s, at(600), timeout),
            Step::GiveUp(Duration::from_secs(600))
        );
    }
}
