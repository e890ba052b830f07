//! Send: at most N uploads in flight, each retried on transient failures and recorded.
//!
//! Each request is marked in the journal before it goes out and recorded as confirmed only
//! from the service's answer. Transient failures back off exponentially with full jitter
//! (backon's schedule; `Retry-After` wins when the server sends one), within a per-file
//! attempt limit and a run-wide retry budget. An authentication refusal stops the run at
//! once; the same permanent refusal many times in a row (unknown volume, wrong endpoint,
//! an HTML proxy page) trips a breaker instead of failing every file one by one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::plan::{DedupClass, PlannedFile, Unit};
use super::{Cancel, DedupMode, SendSettings, Stop, StopReason};
use crate::api::model::Dedup;
use crate::api::{ApiError, Client, ErrorKind, Id, UploadSource};
use crate::journal::{Confirmed, Journal, JournalError};
use crate::report::{Exit, RunStats};
use crate::walk::mtime_ns;

enum UnitEnd {
    /// The service answered; per-file refusals inside the answer were recorded.
    Answered,
    /// The request failed for good; its files were recorded as failed.
    Failed(ApiError),
    /// A file changed under us, or the run was stopped hard mid-send.
    Left,
    Journal(JournalError),
    /// A request of several files was refused for good: each file goes again on its own,
    /// so one bad file (too large, a refused name) does not fail its companions.
    Split(Vec<PlannedFile>, DedupClass),
}

struct Ctx {
    client: Arc<Client>,
    journal: Journal,
    run_id: i64,
    settings: SendSettings,
    stats: Arc<RunStats>,
    cancel: Cancel,
    budget: AtomicU64,
    /// HTTP attempts in flight. Units may wait on the journal beyond this, so its commits
    /// overlap with other uploads instead of holding an upload slot.
    slots: tokio::sync::Semaphore,
}

/// A uniformly random duration in `[0, d]`: "full jitter".
fn full_jitter(d: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(d.as_nanos() as u64);
    let r = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(r)
}

impl Ctx {
    fn take_retry(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok()
    }

    async fn record_failed(&self, unit: &Unit, e: &ApiError) -> UnitEnd {
        let c = &self.stats.counters;
        for f in &unit.files {
            RunStats::add(&c.failed, 1);
            self.stats
                .note_failure(&f.listed.path, "upload", &e.to_string());
            tracing::warn!("upload of {} failed: {e}", f.listed.path);
        }
        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
        match self
            .journal
            .send_ended_unconfirmed(paths, e.to_string(), true)
            .await
        {
            Ok(()) => UnitEnd::Failed(e.clone()),
            Err(j) => UnitEnd::Journal(j),
        }
    }

    async fn leave_pending(&self, paths: Vec<String>, why: &str) -> UnitEnd {
        match self
            .journal
            .send_ended_unconfirmed(paths, why.to_string(), false)
            .await
        {
            Ok(()) => UnitEnd::Left,
            Err(j) => UnitEnd::Journal(j),
        }
    }

    /// A file that is not what was listed is never recorded as done: it stays pending for
    /// the next run, and this run reports it (and exits 1), as rclone does.
    async fn changed_under_us(&self, paths: Vec<String>, what: &str) -> UnitEnd {
        let reason = format!("{what}; it will be sent again next run");
        RunStats::add(&self.stats.counters.changed, paths.len() as u64);
        for p in &paths {
            tracing::warn!("{p} {reason}");
            self.stats.note_failure(p, "upload", &reason);
        }
        self.leave_pending(paths, &reason).await
    }

    async fn not_sent(&self, unit: &Unit) -> UnitEnd {
        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
        self.leave_pending(paths, "the run stopped before it was sent")
            .await
    }

    /// The `dedup` part of an attempt: fixed by `--dedup replace|skip|off`, or under auto
    /// by the unit's class (a retry may find the first attempt stored).
    fn dedup_for(&self, unit: &Unit, retry: bool) -> Option<Dedup> {
        let s = &self.settings;
        match (s.dedup, unit.dedup) {
            (DedupMode::Auto, DedupClass::Always) => Some(Dedup::by_name("replace")),
            (DedupMode::Auto, DedupClass::OnRetry) if retry => Some(Dedup::by_name("replace")),
            (DedupMode::Auto, _) => None,
            (mode, _) => mode.fixed(&s.dedup_by),
        }
    }

    async fn send_unit(&self, unit: Unit) -> UnitEnd {
        let c = &self.stats.counters;
        let listed = unit.files.iter().map(|f| f.listed.clone()).collect();
        if let Err(e) = self.journal.begin_send(listed, self.run_id).await {
            return UnitEnd::Journal(e);
        }
        for f in &unit.files {
            if f.reason == super::plan::Reason::Interrupted {
                RunStats::add(&c.resent_after_interrupt, 1);
            }
        }
        let sources: Vec<UploadSource> = unit
            .files
            .iter()
            .map(|f| UploadSource {
                path: f.abs.clone(),
                file_name: f.wire_name.clone(),
                mime_type: f.mime.clone(),
                size: f.listed.size,
                mtime_ns: f.listed.mtime_ns,
            })
            .collect();
        let s = &self.settings;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(s.retry_base)
            .with_max_delay(s.retry_max)
            .with_max_times(s.attempts.saturating_sub(1) as usize)
            .build();
        let mut started;
        let mut first_attempt = true;
        let answer = loop {
            let slot = tokio::select! {
                s = self.slots.acquire() => s,
                _ = self.cancel.hard.cancelled() => return self.not_sent(&unit).await,
            };
            // A run that is stopping starts nothing new; a unit already retrying goes on.
            if first_attempt && self.cancel.soft.is_cancelled() {
                return self.not_sent(&unit).await;
            }
            let dedup = self.dedup_for(&unit, !first_attempt);
            first_attempt = false;
            RunStats::add(&c.requests, 1);
            started = Instant::now();
            let attempt = tokio::select! {
                r = self.client.upload(&s.volume, &sources, dedup.as_ref(), self.stats.wire_bytes.clone()) => r,
                _ = self.cancel.hard.cancelled() => {
                    // Left in flight on purpose: the next run counts it as a possible duplicate.
                    return UnitEnd::Left;
                }
            };
            // A refused credential would be refused for every file: stop the run before
            // this slot is handed to a unit that would only try again.
            if attempt.as_ref().is_err_and(|e| e.kind == ErrorKind::Auth) {
                self.cancel.stop_now(StopReason::Auth);
            }
            drop(slot);
            match attempt {
                Ok(a) => break a,
                Err(e) if e.is_transient() => {
                    let Some(delay) = delays.next() else {
                        return self.record_failed(&unit, &e).await;
                    };
                    if !self.take_retry() {
                        let mut e = e;
                        e.message = format!("{} (the run's retry budget is spent)", e.message);
                        return self.record_failed(&unit, &e).await;
                    }
                    let delay = e
                        .retry_after
                        .map(|r| r.min(Duration::from_secs(300)))
                        .unwrap_or_else(|| full_jitter(delay));
                    RunStats::add(&c.retries, 1);
                    tracing::debug!("retrying in {delay:?}: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.hard.cancelled() => {
                            let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
                            return self.leave_pending(paths, "interrupted before it was confirmed").await;
                        }
                    }
                }
                Err(e) if unit.files.len() > 1 && splits(&e) => {
                    tracing::debug!(
                        "a request of {} files was refused ({e}); sending each on its own",
                        unit.files.len()
                    );
                    return UnitEnd::Split(unit.files, unit.dedup);
                }
                Err(e) if e.kind == ErrorKind::Changed => {
                    let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
                    return self
                        .changed_under_us(paths, "changed since it was listed")
                        .await;
                }
                Err(e) => return self.record_failed(&unit, &e).await,
            }
        };
        let latency = started.elapsed().as_millis() as u64;
        if !answer.success && answer.results.is_empty() {
            let e = ApiError::new(
                ErrorKind::Permanent,
                crate::api::UPLOAD_CALL,
                format!("the service did not accept the upload: {}", answer.message),
            );
            return self.record_failed(&unit, &e).await;
        }
        let single = unit.files.len() == 1;
        let mut confirmed = Vec::new();
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        for (i, f) in unit.files.iter().enumerate() {
            let result = answer.results.get(i);
            let file_id: Option<Id> =
                result
                    .and_then(|r| r.file_id)
                    .or(if single { answer.file_id } else { None });
            let ok = result.map_or(answer.success, |r| r.success);
            if !ok {
                let msg = result.map_or(answer.message.clone(), |r| r.message.clone());
                refused.push((f, msg));
                continue;
            }
            // A file rewritten while it was sent must not be recorded as done.
            let still_same = std::fs::symlink_metadata(&f.abs)
                .is_ok_and(|m| m.len() == f.listed.size && mtime_ns(&m) == f.listed.mtime_ns);
            if !still_same {
                changed.push(f.listed.path.clone());
                continue;
            }
            confirmed.push(Confirmed {
                file: f.listed.clone(),
                file_id,
                task_id: answer.task_id,
            });
        }
        RunStats::add(&c.uploaded, confirmed.len() as u64);
        RunStats::add(
            &c.uploaded_bytes,
            confirmed.iter().map(|f| f.file.size).sum(),
        );
        RunStats::add(&c.latency_ms_total, latency * confirmed.len() as u64);
        if let Err(e) = self.journal.confirm(confirmed).await {
            return UnitEnd::Journal(e);
        }
        if !changed.is_empty()
            && let UnitEnd::Journal(e) = self
                .changed_under_us(changed, "changed while it was being sent")
                .await
        {
            return UnitEnd::Journal(e);
        }
        for (f, msg) in refused {
            let e = ApiError::new(ErrorKind::Permanent, crate::api::UPLOAD_CALL, msg);
            let one = Unit {
                files: vec![f.clone()],
                dedup: unit.dedup,
            };
            if let UnitEnd::Journal(j) = self.record_failed(&one, &e).await {
                return UnitEnd::Journal(j);
            }
        }
        UnitEnd::Answered
    }
}

/// Whether a refused request of several files should be sent again file by file: when the
/// refusal may concern one file only (it vanished or changed, is too large, or has a name
/// the service refuses), not when it concerns every request (unknown volume, HTML proxy).
fn splits(e: &ApiError) -> bool {
    match e.kind {
        ErrorKind::Local | ErrorKind::Changed => true,
        ErrorKind::Permanent => matches!(e.status, Some(400 | 413 | 422)),
        _ => false,
    }
}

/// Trips when the same permanent error repeats with no success in between.
struct Breaker {
    limit: u32,
    signature: String,
    count: u32,
}

impl Breaker {
    fn success(&mut self) {
        self.count = 0;
    }
    fn failure(&mut self, e: &ApiError) -> bool {
        let sig = e.signature();
        if sig == self.signature {
            self.count += 1;
        } else {
            self.signature = sig;
            self.count = 1;
        }
        self.count >= self.limit
    }
}

pub async fn run(
    units: mpsc::Receiver<Unit>,
    client: Arc<Client>,
    journal: Journal,
    run_id: i64,
    settings: &SendSettings,
    stats: Arc<RunStats>,
    cancel: Cancel,
) -> Option<Stop> {
    let ctx = Arc::new(Ctx {
        client,
        journal,
        run_id,
        budget: AtomicU64::new(settings.retry_budget),
        settings: settings.clone(),
        stats,
        cancel: cancel.clone(),
        slots: tokio::sync::Semaphore::new(settings.concurrency.max(1)),
    });
    let mut breaker = Breaker {
        limit: settings.breaker.max(1),
        signature: String::new(),
        count: 0,
    };
    let results = ReceiverStream::new(units)
        .take_until(cancel.soft.clone().cancelled_owned())
        // Each unit is its own task, so building requests and reading answers spreads
        // over the runtime's workers instead of all being polled by this one loop.
        .map(|unit| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                match ctx.send_unit(unit).await {
                    UnitEnd::Split(files, dedup) => {
                        let mut ends = Vec::with_capacity(files.len());
                        for f in files {
                            let one = Unit {
                                files: vec![f],
                                dedup,
                            };
                            ends.push(ctx.send_unit(one).await);
                        }
                        ends
                    }
                    end => vec![end],
                }
            })
        })
        .buffer_unordered(settings.concurrency.max(1) * 2);
    futures::pin_mut!(results);
    let mut stop = None;
    let ends = results.flat_map(|joined| {
        let ends = joined.unwrap_or_else(|e| {
            vec![UnitEnd::Failed(ApiError::new(
                ErrorKind::Local,
                crate::api::UPLOAD_CALL,
                format!("an upload task failed: {e}"),
            ))]
        });
        futures::stream::iter(ends)
    });
    futures::pin_mut!(ends);
    while let Some(end) = ends.next().await {
        let next_stop = match end {
            UnitEnd::Answered => {
                breaker.success();
                None
            }
            UnitEnd::Left | UnitEnd::Split(..) => None,
            UnitEnd::Journal(e) => Some(Stop::from_journal(&e)),
            UnitEnd::Failed(e) if e.kind == ErrorKind::Auth => Some(Stop::from_api(&e)),
            UnitEnd::Failed(e) if matches!(e.kind, ErrorKind::Permanent | ErrorKind::Malformed) => {
                breaker.failure(&e).then(|| {
                    let check = if e.message.to_ascii_lowercase().contains("dedup") {
                        "The service seems to refuse the dedup part: run again with --dedup off"
                    } else {
                        "Check --endpoint and --volume"
                    };
                    Stop {
                        exit: Exit::Usage,
                        reason: format!(
                            "the service refused {} uploads in a row the same way, so the run \
                             stopped instead of failing every file: {e}. {check}",
                            breaker.count
                        ),
                    }
                })
            }
            UnitEnd::Failed(_) => None,
        };
        if stop.is_none()
            && let Some(s) = next_stop
        {
            tracing::error!("{}", s.reason);
            stop = Some(s);
            // Start nothing new; what is in flight ends on its own (an auth refusal
            // would only repeat, so those are abandoned at once).
            if stop.as_ref().is_some_and(|s| s.exit == Exit::Auth) {
                cancel.stop_now(StopReason::Auth);
            } else {
                cancel.stop(StopReason::Breaker);
            }
        }
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_delay() {
        let d = Duration::from_millis(800);
        for _ in 0..100 {
            assert!(full_jitter(d) <= d);
        }
    }
}
