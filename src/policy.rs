//! How a transient failure is tried again, the one policy of every call that retries:
//! the uploads (`send`), `/task/retry` (`moi-ingest retry`), the catalog calls of
//! `--delete` (`mirror`), and following ingestion (`follow`, whose next poll obeys a
//! `Retry-After` the same way).
//!
//! Exponential backoff with full jitter (backon's schedule), a server's `Retry-After`
//! obeyed in its place up to five minutes, and a bounded number of tries.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::api::ApiError;

/// The longest `Retry-After` obeyed: a service that asks for an hour gets five minutes.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait, before jitter.
    pub min: Duration,
    /// The longest wait, before jitter.
    pub max: Duration,
    /// Tries after the first.
    pub retries: usize,
}

impl RetryPolicy {
    /// `/task/retry` from `moi-ingest retry`: patient, since nothing else is waiting.
    pub const TASK_RETRY: RetryPolicy = RetryPolicy {
        min: Duration::from_millis(500),
        max: Duration::from_secs(30),
        retries: 8,
    };

    /// The catalog calls of `--delete`: five tries in all, on a busy service too.
    pub const CATALOG: RetryPolicy = RetryPolicy {
        min: Duration::from_millis(300),
        max: Duration::from_secs(20),
        retries: 4,
    };

    /// The scheduled waits, one per retry, each drawn at random below the exponential
    /// schedule's ("full jitter": a fleet that failed together does not retry together).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_max_times(self.retries)
            .build()
            .map(full_jitter)
    }

    /// The wait before the next try: the server's `Retry-After` when it sent one (up to
    /// [`RETRY_AFTER_CAP`]), else the schedule's.
    pub fn wait(scheduled: Duration, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or(scheduled, |r| r.min(RETRY_AFTER_CAP))
    }

    /// Makes `call` until it succeeds, fails for good, or the retries are spent.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut delays = self.delays();
        loop {
            match call().await {
                Err(e) if e.is_transient() => {
                    let Some(scheduled) = delays.next() else {
                        return Err(e);
                    };
                    let wait = Self::wait(scheduled, e.retry_after);
                    tracing::debug!("retrying {what} in {wait:?}: {e}");
                    tokio::time::sleep(wait).await;
                }
                done => return done,
            }
        }
    }
}

/// A uniformly random duration in `[0, d]`.
pub fn full_jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(d.as_nanos() as u64);
    let r = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(r)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::api::ErrorKind;

    #[test]
    fn jitter_stays_within_the_delay() {
        for ms in [0u64, 1, 10, 1000] {
            let d = Duration::from_millis(ms);
            assert!(full_jitter(d) <= d);
        }
    }

    #[test]
    fn a_servers_retry_after_wins_up_to_five_minutes() {
        let s = Duration::from_millis(700);
        assert_eq!(RetryPolicy::wait(s, None), s);
        assert_eq!(
            RetryPolicy::wait(s, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            RetryPolicy::wait(s, Some(Duration::from_secs(3600))),
            RETRY_AFTER_CAP
        );
    }

    #[test]
    fn the_schedule_has_one_wait_a_retry_within_the_bounds() {
        let p = RetryPolicy {
            min: Duration::from_millis(10),
            max: Duration::from_millis(40),
            retries: 5,
        };
        let waits: Vec<Duration> = p.delays().collect();
        assert_eq!(waits.len(), 5);
        assert!(waits.iter().all(|w| *w <= p.max), "{waits:?}");
    }

    #[tokio::test]
    async fn transient_failures_are_tried_again_and_a_refusal_is_not() {
        let p = RetryPolicy {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
            retries: 3,
        };
        let calls = AtomicU32::new(0);
        let flaky = || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(ApiError::new(ErrorKind::Transient, "POST /x", "503")),
                _ => Ok(7),
            }
        };
        assert_eq!(p.run("x", flaky).await.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let refused = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ApiError::new(ErrorKind::Permanent, "POST /x", "400"))
        };
        assert!(p.run("x", refused).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is not repeated");

        let calls = AtomicU32::new(0);
        let down = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ApiError::new(ErrorKind::Transient, "POST /x", "503"))
        };
        assert!(p.run("x", down).await.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the first try and three retries"
        );
    }
}
