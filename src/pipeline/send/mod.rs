//! Send: at most N uploads in flight, each retried on transient failures and recorded.
//!
//! Each request is marked in the journal before it goes out (in bulk, for the units about to
//! be sent) and recorded as confirmed only from the service's answer (by the recorder).
//! Transient failures back off as [`RetryPolicy`] says (exponential, full jitter,
//! `Retry-After` obeyed), within a per-file attempt limit and a
//! run-wide retry budget. An authentication refusal stops the run at
//! once; the same permanent refusal many times in a row (unknown volume, wrong endpoint,
//! an HTML proxy page) trips a breaker instead of failing every file one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::limiter::{Limiter, Signal};
use super::outage::Outage;
use super::plan::Unit;
use super::record::Recorder;
use super::verdict::{UnitEnd, Verdict};
use super::{Cancel, Cause, SendSettings};
use crate::api::{ApiError, Client, ErrorKind};
use crate::journal::{Journal, SendEnding};
use crate::report::RunStats;

mod attempt;
mod endings;

struct Ctx {
    client: Arc<Client>,
    journal: Journal,
    recorder: Recorder,
    run_id: i64,
    settings: SendSettings,
    stats: Arc<RunStats>,
    cancel: Cancel,
    budget: AtomicU64,
    /// Whether the service ever answered (anything, even a refusal): until it has, failing
    /// connections mean it cannot be reached, not that these files are at fault.
    answered: AtomicBool,
    /// Requests the service accepted in this run: more passes run only while some do.
    accepted: AtomicU64,
    /// `--tps-limit`, shared by every worker.
    tps: Option<super::pace::Pacer>,
    /// What the ends so far mean for the run; judged as each unit ends.
    verdict: std::sync::Mutex<Verdict>,
    /// HTTP attempts in flight. Units may wait on the journal beyond this, so its commits
    /// overlap with other uploads instead of holding an upload slot.
    slots: Arc<Limiter>,
    /// A service that stops answering mid-run (see `outage`).
    outage: Outage,
}

/// A duration as a person reads it in a log line: `45s`, `3m 20s`.
fn spoken(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{}s", d.as_secs_f64().round().max(1.0)),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{}m {}s", s / 60, s % 60),
    }
}

impl Ctx {
    fn judge(&self, end: UnitEnd) {
        if let Ok(mut v) = self.verdict.lock() {
            v.judge(end, self.client.endpoint(), &self.cancel);
        }
    }

    fn take_retry(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok()
    }
}

/// What an attempt says about the service's load, for `--concurrency auto`.
fn load_signal(
    attempt: &Result<crate::api::model::UploadAnswer, ApiError>,
    started: Instant,
) -> Signal {
    match attempt {
        Ok(_) => Signal::Answered(started.elapsed()),
        // 429, 503, and timeouts or resets (no status): the service is at its limit.
        Err(e) if matches!(e.status, Some(429 | 503) | None) && e.is_transient() => {
            Signal::Overloaded
        }
        Err(_) => Signal::Neutral,
    }
}

/// Sends a unit as a task of its own (so building requests and reading answers spreads
/// over the runtime's workers), splitting a refused multi-file request file by file. Each
/// end is judged as soon as it happens, so a reason to stop stops new requests at once.
/// Returns the units that failed only transiently, each with its last error.
fn spawn_unit(ctx: Arc<Ctx>, unit: Unit) -> tokio::task::JoinHandle<Vec<(Unit, ApiError)>> {
    tokio::spawn(async move {
        let mut transient = Vec::new();
        let ends = match ctx.send_unit(unit).await {
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
        };
        for end in ends {
            match end {
                UnitEnd::Transient(unit, e) => {
                    tracing::debug!(
                        "{} files wait for another pass at the end of the run: {e}",
                        unit.files.len()
                    );
                    transient.push((unit, e));
                }
                end => ctx.judge(end),
            }
        }
        transient
    })
}

/// Units marked in flight together, at most.
const MARK_AHEAD: usize = 32;

/// Sends `units` with bounded concurrency; returns those that failed only transiently,
/// each with its last error.
async fn drive(units: impl futures::Stream<Item = Unit>, ctx: &Arc<Ctx>) -> Vec<(Unit, ApiError)> {
    let concurrency = ctx.settings.concurrency.max(1);
    // The in-flight mark, one commit for the units about to go out rather than one each.
    // A crash then may count a few units that never left as possible duplicates, which
    // only means they are sent with `dedup` replace where that is safe.
    let marked = units
        .ready_chunks(MARK_AHEAD)
        .then(|chunk| {
            let ctx = ctx.clone();
            async move {
                let listed = chunk
                    .iter()
                    .flat_map(|u| u.files.iter().map(|f| f.listed.clone()))
                    .collect();
                match ctx.journal.begin_send(listed, ctx.run_id).await {
                    Ok(()) => chunk,
                    Err(e) => {
                        ctx.judge(UnitEnd::Journal(e));
                        Vec::new()
                    }
                }
            }
        })
        .flat_map(futures::stream::iter);
    let done = marked
        .map(|unit| spawn_unit(ctx.clone(), unit))
        .buffer_unordered(concurrency * 2);
    futures::pin_mut!(done);
    let mut transient = Vec::new();
    while let Some(joined) = done.next().await {
        match joined {
            Ok(units) => transient.extend(units),
            Err(e) => ctx.judge(UnitEnd::Failed(
                ApiError::new(
                    ErrorKind::Local,
                    crate::api::UPLOAD_CALL,
                    format!("an upload task failed: {e}"),
                ),
                Vec::new(),
            )),
        }
    }
    transient
}

/// Sends what the planner hands over, then gives what failed only transiently its passes
/// at the end of the run, and settles what is left.
pub async fn run(
    units: mpsc::Receiver<Unit>,
    client: Arc<Client>,
    journal: Journal,
    run_id: i64,
    settings: &SendSettings,
    stats: Arc<RunStats>,
    cancel: Cancel,
) {
    let ctx = Arc::new(Ctx {
        client,
        recorder: Recorder::start(journal.clone()),
        journal,
        run_id,
        budget: AtomicU64::new(settings.retry_budget),
        answered: AtomicBool::new(false),
        accepted: AtomicU64::new(0),
        settings: settings.clone(),
        stats,
        cancel: cancel.clone(),
        outage: Outage::new(settings.unreachable_timeout),
        slots: if settings.adaptive {
            Limiter::adaptive(settings.concurrency)
        } else {
            Limiter::fixed(settings.concurrency)
        },
        verdict: std::sync::Mutex::new(Verdict::new(settings.breaker)),
        tps: settings
            .tps_limit
            .map(|n| super::pace::Pacer::new(super::pace::Schedule::constant(Some(n)))),
    });
    let units = ReceiverStream::new(units).take_until(cancel.soft.clone().cancelled_owned());
    let transient = drive(units, &ctx).await;
    let transient = more_passes(transient, &ctx).await;
    settle(transient, &ctx).await;
}

/// rclone's habit (`--retries`): what failed only transiently gets more passes at the end,
/// while the service accepts other requests and the budget lasts, so a file that met a bad
/// minute still arrives. Returns what still failed.
async fn more_passes(
    mut transient: Vec<(Unit, ApiError)>,
    ctx: &Arc<Ctx>,
) -> Vec<(Unit, ApiError)> {
    let (settings, cancel) = (&ctx.settings, &ctx.cancel);
    let passes = settings.passes.max(1);
    for pass in 2..=passes {
        let sweep = !cancel.soft.is_cancelled()
            && ctx.accepted.load(Ordering::Relaxed) > 0
            && ctx.budget.load(Ordering::Relaxed) > 0;
        if transient.is_empty() || !sweep {
            break;
        }
        let files: usize = transient.iter().map(|(u, _)| u.files.len()).sum();
        tracing::info!(
            "{files} files failed only transiently; sending them again (pass {pass} of {passes})"
        );
        tokio::select! {
            _ = tokio::time::sleep(settings.retry_base * 4 * (pass - 1)) => {}
            _ = cancel.soft.cancelled() => {}
        }
        let units = futures::stream::iter(transient.into_iter().map(|(unit, _)| unit))
            .take_until(cancel.soft.clone().cancelled_owned());
        transient = drive(units, ctx).await;
    }
    transient
}

/// The end of sending: what still failed transiently fails now (or waits, when the run
/// stopped for the service), what was confirmed is committed, and files the run's refusal
/// failed go back to pending.
async fn settle(transient: Vec<(Unit, ApiError)>, ctx: &Ctx) {
    let cancel = &ctx.cancel;
    let unreachable = matches!(cancel.cause(), Some(Cause::Unreachable(_)));
    for (unit, last) in transient {
        let end = if unreachable {
            // The run stopped for the service, not for these files: they wait for it.
            ctx.leave_pending(unit.paths(), "not confirmed").await
        } else {
            // The last error says what to look at (a 500 and its message, a timeout).
            let message = format!(
                "every attempt failed transiently, the last: {}",
                last.message
            );
            let e = ApiError { message, ..last };
            ctx.record_failed(&unit, &e).await
        };
        if let UnitEnd::Journal(j) = end {
            ctx.judge(UnitEnd::Journal(j));
        }
    }
    // Every unit has ended: what they confirmed is committed before the run goes on.
    if let Err(e) = ctx.recorder.finish().await {
        ctx.judge(UnitEnd::Journal(e));
    }
    let unfail = ctx
        .verdict
        .lock()
        .map(|mut v| std::mem::take(&mut v.unfail))
        .unwrap_or_default();
    if let Some(failure) = cancel.failure()
        && !unfail.is_empty()
    {
        // The run was refused, not these files: they wait for a night that can send them.
        ctx.stats.unfail(&unfail);
        let why = failure.reason().unwrap_or_default().to_string();
        let put_back = ctx
            .journal
            .send_ended_unconfirmed(unfail, why, SendEnding::Pending);
        if let Err(e) = put_back.await {
            tracing::error!("{e}");
        }
    }
}
