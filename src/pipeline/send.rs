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

use super::policy::{RetryPolicy, full_jitter};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::limiter::{Limiter, Signal};
use super::outage::{Outage, Step};
use super::plan::{DedupClass, Unit};
use super::record::Recorder;
use super::verdict::{UnitEnd, Verdict, splits};
use super::{Cancel, DedupMode, SendSettings, Stop, StopReason};
use crate::api::model::Dedup;
use crate::api::{ApiError, Client, ErrorKind, Id, UploadSource};
use crate::journal::{Confirmed, Journal, SendEnding};
use crate::report::{RunStats, shown};
use crate::walk::mtime_ns;

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

    /// Records the unit's files as failed; a permanent refusal is the service's word for
    /// good (refused: not sent again until the file changes or `retry --refused`).
    async fn record_failed(&self, unit: &Unit, e: &ApiError) -> UnitEnd {
        let c = &self.stats.counters;
        let ending = if e.kind == ErrorKind::Permanent {
            RunStats::add(&c.refused, unit.files.len() as u64);
            SendEnding::Refused
        } else {
            SendEnding::Failed
        };
        for f in &unit.files {
            RunStats::add(&c.failed, 1);
            self.stats
                .note_failure(&f.listed.path, "upload", &e.to_string());
            tracing::warn!("upload of {} failed: {e}", shown(&f.listed.path));
        }
        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
        match self
            .journal
            .send_ended_unconfirmed(paths, e.to_string(), ending)
            .await
        {
            Ok(()) => UnitEnd::Failed(
                e.clone(),
                unit.files.iter().map(|f| f.listed.path.clone()).collect(),
            ),
            Err(j) => UnitEnd::Journal(j),
        }
    }

    async fn leave_pending(&self, paths: Vec<String>, why: &str) -> UnitEnd {
        match self
            .journal
            .send_ended_unconfirmed(paths, why.to_string(), SendEnding::Pending)
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

    /// The service never answered: these files are not at fault, so they stay pending
    /// (the next run sends them) and the run stops.
    async fn unreachable(&self, unit: &Unit, e: ApiError) -> UnitEnd {
        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
        match self.leave_pending(paths, &format!("not sent: {e}")).await {
            UnitEnd::Journal(j) => UnitEnd::Journal(j),
            _ => UnitEnd::Unreachable(e),
        }
    }

    /// The service stopped answering for longer than `--unreachable-timeout`: these files
    /// stay pending and the run stops.
    async fn gone(&self, unit: &Unit, e: ApiError, silent: Duration) -> UnitEnd {
        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
        match self
            .leave_pending(paths, &format!("not confirmed: {e}"))
            .await
        {
            UnitEnd::Journal(j) => UnitEnd::Journal(j),
            _ => UnitEnd::Gone(e, silent),
        }
    }

    /// One failure without an answer after a working start: told, then waited out.
    /// `Some` ends the unit (the run stops, or the outage outlived the timeout).
    async fn ride_out(
        &self,
        step: Step,
        unit: &Unit,
        e: &ApiError,
        wait: &mut Duration,
    ) -> Option<UnitEnd> {
        let endpoint = self.client.endpoint();
        match step {
            Step::Ordinary => {}
            Step::Began => tracing::warn!(
                "{endpoint} stopped answering: {e}. Uploads wait and are tried again; the run \
                 stops if nothing is answered for {} (--unreachable-timeout)",
                spoken(self.outage.timeout())
            ),
            Step::Remind(d) => {
                tracing::warn!("{endpoint} has not answered for {}: {e}", spoken(d))
            }
            Step::Wait => {}
            Step::GiveUp(d) => return Some(self.gone(unit, e.clone(), d).await),
        }
        let cap = self
            .settings
            .retry_max
            .min((self.outage.timeout() / 10).max(Duration::from_millis(100)));
        *wait = (*wait * 2).min(cap);
        tokio::select! {
            _ = tokio::time::sleep(full_jitter(*wait).max(*wait / 2)) => {}
            _ = self.cancel.soft.cancelled() => {}
        }
        if self.cancel.soft.is_cancelled() {
            let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
            return Some(
                self.leave_pending(paths, &format!("not confirmed: {e}"))
                    .await,
            );
        }
        None
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

    /// Sends one request's files. A unit whose attempts run out on transient failures is
    /// handed back (`UnitEnd::Transient`) for the passes at the end of the run.
    async fn send_unit(&self, unit: Unit) -> UnitEnd {
        let c = &self.stats.counters;
        for f in &unit.files {
            if f.reason == super::plan::Reason::Interrupted {
                RunStats::add(&c.resent_after_interrupt, 1);
            }
        }
        let sources: Vec<&UploadSource> = unit.files.iter().map(|f| &f.source).collect();
        let s = &self.settings;
        let mut delays = RetryPolicy {
            min: s.retry_base,
            max: s.retry_max,
            retries: s.attempts.saturating_sub(1) as usize,
        }
        .delays();
        let mut started;
        let mut first_attempt = true;
        let mut outage_wait = s.retry_base;
        let answer = loop {
            let slot = tokio::select! {
                s = self.slots.acquire() => s,
                _ = self.cancel.hard.cancelled() => return self.not_sent(&unit).await,
            };
            // A run that is stopping starts nothing new; a unit already retrying goes on.
            if first_attempt && self.cancel.soft.is_cancelled() {
                return self.not_sent(&unit).await;
            }
            if let Some(tps) = &self.tps {
                tps.acquire(1).await;
            }
            let dedup = self.dedup_for(&unit, !first_attempt);
            first_attempt = false;
            RunStats::add(&c.requests, 1);
            started = Instant::now();
            // This attempt's file bytes that left, beside the run's total: a body cut off
            // before it left whole cannot have been stored.
            let body_sent = Arc::new(AtomicU64::new(0));
            let on_sent = {
                let (run, this) = (self.stats.wire_bytes.clone(), body_sent.clone());
                move |n: u64| {
                    run.fetch_add(n, Ordering::Relaxed);
                    this.fetch_add(n, Ordering::Relaxed);
                }
            };
            let attempt = tokio::select! {
                r = self.client.upload_with(&s.volume, &sources, dedup.as_ref(), on_sent) => r,
                _ = self.cancel.hard.cancelled() => {
                    // Only a streamed body tells its bytes as they leave; one held in
                    // memory may have arrived whole before the cut, so it may be stored.
                    let streamed = unit.files.iter().all(|f| !f.source.read_whole());
                    let whole: u64 = unit.files.iter().map(|f| f.listed.size).sum();
                    if streamed && body_sent.load(Ordering::Relaxed) < whole {
                        let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
                        return self
                            .leave_pending(
                                paths,
                                "cut off before its body was sent whole, so it was not stored",
                            )
                            .await;
                    }
                    // The body left whole and no answer came: it may be stored. Left in
                    // flight on purpose, for the next run to count, and for the copies
                    // check once it is sent again.
                    return UnitEnd::Left;
                }
            };
            // A malformed answer among good ones is a passing fault (a proxy's error page,
            // a cut body): the files may even be stored, so it is tried again like a
            // timeout. A run whose answers were all malformed keeps it permanent, for the
            // breaker (a wrong endpoint).
            let attempt = attempt.map_err(|mut e| {
                if e.kind == ErrorKind::Malformed && self.accepted.load(Ordering::Relaxed) > 0 {
                    e.kind = ErrorKind::Transient;
                }
                e
            });
            // A refused credential would be refused for every file: stop the run before
            // this slot is handed to a unit that would only try again.
            if attempt.as_ref().is_err_and(|e| e.kind == ErrorKind::Auth) {
                self.cancel.stop_now(StopReason::Auth);
            }
            if attempt
                .as_ref()
                .map_or_else(|e| e.status.is_some(), |_| true)
            {
                self.answered.store(true, Ordering::Relaxed);
                if let Some(d) = self.outage.answered(started) {
                    tracing::warn!(
                        "{} answers again, after {} without an answer",
                        self.client.endpoint(),
                        spoken(d)
                    );
                }
            }
            self.slots.report(started, load_signal(&attempt, started));
            // The slot is held while a refusal is recorded, so that a breaker about to trip
            // is not outrun by new requests; an answer is recorded without it (the journal
            // then overlaps with other uploads).
            match attempt {
                Ok(a) => {
                    drop(slot);
                    break a;
                }
                Err(e) if e.is_transient() => {
                    drop(slot);
                    // After a working start, a silent service is an outage: it spends no
                    // attempt, and the run gives up only after --unreachable-timeout.
                    if e.status.is_none() && self.answered.load(Ordering::Relaxed) {
                        let step = self.outage.failed();
                        if step != Step::Ordinary {
                            match self.ride_out(step, &unit, &e, &mut outage_wait).await {
                                Some(end) => return end,
                                None => continue,
                            }
                        }
                    }
                    let Some(delay) = delays.next() else {
                        if e.status.is_none() && !self.answered.load(Ordering::Relaxed) {
                            return self.unreachable(&unit, e).await;
                        }
                        // A later pass sends it again: its attempts may have been
                        // stored, so it is a retry there (dedup replace under auto).
                        let mut unit = unit;
                        if unit.dedup == DedupClass::OnRetry {
                            unit.dedup = DedupClass::Always;
                        }
                        return UnitEnd::Transient(unit, e);
                    };
                    if !self.take_retry() {
                        let mut e = e;
                        e.message = format!("{} (the run's retry budget is spent)", e.message);
                        return self.record_failed(&unit, &e).await;
                    }
                    let delay = RetryPolicy::wait(delay, e.retry_after);
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
            // A file rewritten while it was sent must not be recorded as done. A file read
            // whole was checked after it was read, so what was sent is what was listed.
            let still_same = f.source.read_whole()
                || std::fs::symlink_metadata(&f.source.path)
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
        for f in &confirmed {
            tracing::debug!(
                "uploaded {} ({} bytes; file {}, task {})",
                shown(&f.file.path),
                f.file.size,
                f.file_id.map_or("-".into(), |i| i.to_string()),
                f.task_id.map_or("-".into(), |i| i.to_string())
            );
        }
        if self.recorder.confirm(confirmed).await.is_err() {
            // The recorder stopped on a journal error: the first unit to find out stops
            // the run with it.
            return match self.recorder.finish().await {
                Err(e) => UnitEnd::Journal(e),
                Ok(()) => UnitEnd::Left,
            };
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
        self.accepted.fetch_add(1, Ordering::Relaxed);
        UnitEnd::Answered
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
    let passes = settings.passes.max(1);
    let mut transient = drive(units, &ctx).await;
    // rclone's habit (`--retries`): what failed only transiently gets more passes at the
    // end, while the service accepts other requests and the budget lasts, so a file that
    // met a bad minute still arrives. Otherwise they fail now.
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
        transient = drive(units, &ctx).await;
    }
    let unreachable = cancel.reason() == Some(StopReason::Unreachable);
    for (unit, last) in transient {
        if unreachable {
            // The run stopped for the service, not for these files: they wait for it.
            let paths = unit.files.iter().map(|f| f.listed.path.clone()).collect();
            if let UnitEnd::Journal(j) = ctx.leave_pending(paths, "not confirmed").await {
                ctx.judge(UnitEnd::Journal(j));
            }
            continue;
        }
        // The last error says what to look at (a 500 and its message, a timeout).
        let e = ApiError {
            message: format!(
                "every attempt failed transiently, the last: {}",
                last.message
            ),
            ..last
        };
        if let UnitEnd::Journal(j) = ctx.record_failed(&unit, &e).await {
            ctx.judge(UnitEnd::Journal(j));
        }
    }
    // Every unit has ended: what they confirmed is committed before the run goes on.
    if let Err(e) = ctx.recorder.finish().await {
        ctx.judge(UnitEnd::Journal(e));
    }
    let (stop, unfail) = ctx
        .verdict
        .lock()
        .map(|mut v| (v.stop.take(), std::mem::take(&mut v.unfail)))
        .unwrap_or_default();
    if let Some(stop) = &stop
        && !unfail.is_empty()
    {
        // The run was refused, not these files: they wait for a night that can send them.
        ctx.stats.unfail(&unfail);
        if let Err(e) = ctx
            .journal
            .send_ended_unconfirmed(unfail, stop.reason.clone(), SendEnding::Pending)
            .await
        {
            tracing::error!("{e}");
        }
    }
    stop
}
