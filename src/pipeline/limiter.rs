//! How many upload requests may be in flight: a fixed `--concurrency N`, or
//! `--concurrency auto`, which adapts to the service the way TCP adapts to a network.
//!
//! Auto starts at 4 and doubles each round trip while answers come back fast and clean
//! (slow start); after the first sign of overload it grows by one per round trip (additive
//! increase). A 429, a 503 or a timeout halves it (multiplicative decrease), once per round
//! trip: signals from requests that started before the last decrease are the same
//! congestion, already answered. It never exceeds `--max-concurrency` and never drops
//! below 1. "Fast" means within twice the fastest answer seen plus 20 ms, so a service
//! that queues (answers slowing down) stops the growth before it starts refusing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What became of one request, for the controller.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    /// Answered, after this long.
    Answered(Duration),
    /// Refused for load (429, 503) or timed out.
    Overloaded,
    /// Anything else: says nothing about load.
    Neutral,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    limit: usize,
    adaptive: bool,
    ceiling: usize,
    slow_start: bool,
    /// Answers counted towards the next increase (one round trip = `limit` answers).
    answered_in_round: usize,
    fastest: Option<Duration>,
    last_decrease: Option<Instant>,
}

#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    freed: Notify,
}

/// One request's place; dropping it frees the place.
pub struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.limiter.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.limiter.freed.notify_one();
    }
}

pub const AUTO_START: usize = 4;

impl Limiter {
    pub fn fixed(n: usize) -> Arc<Limiter> {
        Limiter::new(n.max(1), false, n.max(1))
    }

    pub fn adaptive(ceiling: usize) -> Arc<Limiter> {
        Limiter::new(AUTO_START.min(ceiling.max(1)), true, ceiling.max(1))
    }

    fn new(limit: usize, adaptive: bool, ceiling: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            state: Mutex::new(State {
                in_flight: 0,
                limit,
                adaptive,
                ceiling,
                slow_start: true,
                answered_in_round: 0,
                fastest: None,
                last_decrease: None,
            }),
            freed: Notify::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.state.lock().map(|s| s.limit).unwrap_or(1)
    }

    /// Waits for a place.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            if let Ok(mut s) = self.state.lock()
                && s.in_flight < s.limit
            {
                s.in_flight += 1;
                return Permit {
                    limiter: self.clone(),
                };
            }
            freed.await;
        }
    }

    /// Tells the controller how a request that started at `started` ended.
    pub fn report(&self, started: Instant, signal: Signal) {
        let Ok(mut s) = self.state.lock() else { return };
        if !s.adaptive {
            return;
        }
        let before = s.limit;
        match signal {
            Signal::Overloaded => {
                let same_congestion = s.last_decrease.is_some_and(|d| started < d);
                if !same_congestion {
                    s.limit = (s.limit / 2).max(1);
                    s.slow_start = false;
                    s.answered_in_round = 0;
                    s.last_decrease = Some(Instant::now());
                }
            }
            Signal::Answered(latency) => {
                let fastest = s.fastest.map_or(latency, |f| f.min(latency));
                s.fastest = Some(fastest);
                let fast = latency <= fastest * 2 + Duration::from_millis(20);
                if fast {
                    s.answered_in_round += 1;
                    if s.answered_in_round >= s.limit {
                        s.answered_in_round = 0;
                        let grown = if s.slow_start {
                            s.limit * 2
                        } else {
                            s.limit + 1
                        };
                        s.limit = grown.min(s.ceiling);
                    }
                }
            }
            Signal::Neutral => {}
        }
        let after = s.limit;
        drop(s);
        if after != before {
            tracing::debug!("concurrency {before} -> {after}");
            if after > before {
                self.freed.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_grows_while_clean_and_halves_once_per_congestion() {
        let l = Limiter::adaptive(64);
        assert_eq!(l.limit(), 4);
        let t0 = Instant::now();
        for _ in 0..4 {
            l.report(t0, Signal::Answered(Duration::from_millis(20)));
        }
        assert_eq!(l.limit(), 8, "slow start doubles each round trip");
        l.report(Instant::now(), Signal::Overloaded);
        assert_eq!(l.limit(), 4);
        // The rest of that window's refusals are the same congestion.
        l.report(t0, Signal::Overloaded);
        assert_eq!(l.limit(), 4);
        for _ in 0..4 {
            l.report(Instant::now(), Signal::Answered(Duration::from_millis(20)));
        }
        assert_eq!(l.limit(), 5, "after congestion: one more per round trip");
        // Slow answers (queueing) do not grow it.
        for _ in 0..20 {
            l.report(Instant::now(), Signal::Answered(Duration::from_millis(500)));
        }
        assert_eq!(l.limit(), 5);
        let fixed = Limiter::fixed(8);
        fixed.report(Instant::now(), Signal::Overloaded);
        assert_eq!(fixed.limit(), 8);
    }
}
