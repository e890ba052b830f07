//! Fault injection and the emulator's counters.
//!
//! Faults are drawn from one seeded generator, so a test that sets a seed sees the same
//! sequence of faults on every run (given the same order of requests).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// What can go wrong, as rates in 0.0..=1.0 per request.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub seed: u64,
    /// HTTP 503 answers.
    pub unavailable: f64,
    /// The next this many API calls are answered 503, whatever the draws: a fault a test
    /// can count on.
    pub unavailable_next: u64,
    /// Uploads that carry a file stored under this name are answered 503 this many times,
    /// whatever the draws: one file's bad spell, which a test can count on.
    pub unavailable_name: Option<(String, u64)>,
    /// HTTP 429 answers, with `Retry-After: retry_after_secs`.
    pub too_many: f64,
    pub retry_after_secs: u64,
    /// Connections closed after part of an upload body was read.
    pub drop_connection: f64,
    /// Uploads stored, then the connection closed before the answer: what an outage or a
    /// reset leaves behind (the client cannot know the files arrived).
    pub lost_answer: f64,
    /// Uploads stored, then answered with a garbled HTTP 200 (an empty body, truncated
    /// JSON, an HTML page, or `{"code":"OK"}` without data), as a broken proxy does.
    pub garbled: f64,
    /// HTTP 200 answers whose envelope carries an error code.
    pub error_code: f64,
    /// Uploads that stop reading the body (the client should notice and abort).
    pub stall: f64,
    /// Added to every API answer.
    pub latency: Duration,
    /// Share of uploaded files whose ingestion fails (each attempt draws again).
    pub ingest_failure: f64,
    /// Files whose name ends with this always fail ingestion, whatever the retries.
    pub always_fail_suffix: Option<String>,
    /// Largest upload body accepted; larger ones get 413.
    pub max_body_bytes: Option<u64>,
    /// Uploads beyond this many at once are refused with 429 (a service at its limit).
    pub max_in_flight: Option<u64>,
}

impl Faults {
    /// How many times `unavailable_name` is refused.
    pub(crate) fn unavailable_name_times(&self) -> u64 {
        self.unavailable_name.as_ref().map_or(0, |(_, n)| *n)
    }
}

/// splitmix64: tiny, seedable, good enough to draw fault decisions.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, rate: f64) -> bool {
        let draw = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        rate > 0.0 && draw < rate
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// What the emulator saw. Tests assert on these.
        #[derive(Debug, Default)]
        pub struct Stats { $(pub $name: AtomicU64,)* }

        #[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
        pub struct StatsSnapshot { $(pub $name: u64,)* }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::SeqCst),)* }
            }
        }
    };
}

counters!(
    requests,
    upload_requests,
    files_accepted,
    bytes_accepted,
    duplicates,
    dedup_parts,
    dedup_skipped,
    dedup_replaced,
    concurrent_uploads,
    peak_concurrent_uploads,
    task_files_requests,
    task_get_requests,
    task_list_requests,
    retry_requests,
    retried_files,
    logins,
    refreshes,
    auth_rejected,
    bad_requests,
    injected_unavailable,
    injected_too_many,
    injected_drop,
    injected_lost_answer,
    injected_garbled,
    injected_error_code,
    injected_stall,
    overload_refused,
    too_large,
);

/// When upload requests arrived, for tests of request-rate caps.
#[derive(Debug, Default)]
pub struct Arrivals(std::sync::Mutex<Vec<std::time::Instant>>);

impl Arrivals {
    pub fn note(&self) {
        if let Ok(mut a) = self.0.lock() {
            a.push(std::time::Instant::now());
        }
    }
    pub fn list(&self) -> Vec<std::time::Instant> {
        self.0.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// Holds one slot of `concurrent_uploads` for as long as an upload is being handled.
pub struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    pub fn enter(stats: &'a Stats) -> Self {
        let now = stats.concurrent_uploads.fetch_add(1, Ordering::SeqCst) + 1;
        stats
            .peak_concurrent_uploads
            .fetch_max(now, Ordering::SeqCst);
        InFlight(stats)
    }
    /// Uploads in flight now, this one included.
    pub fn now(&self) -> u64 {
        self.0.concurrent_uploads.load(Ordering::SeqCst)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.concurrent_uploads.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_rates_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let hits: usize = (0..10_000).filter(|_| a.chance(0.2)).count();
        let hits_b: usize = (0..10_000).filter(|_| b.chance(0.2)).count();
        assert_eq!(hits, hits_b);
        assert!((1_800..2_200).contains(&hits), "{hits}");
        assert!(!Rng::new(1).chance(0.0));
    }
}
