//! One unit's attempts. Each ends as an [`Attempt`]: answered, try again after a wait, or
//! over; [`triage_failure`] decides which when it failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::super::limiter::Permit;
use super::super::outage::Step;
use super::super::plan::{DedupClass, Reason, Unit};
use super::super::triage::{Failure, OutOfTries, out_of_tries, passing_fault, triage_failure};
use super::super::verdict::UnitEnd;
use super::super::{Cause, DedupMode};
use super::{Ctx, load_signal, spoken};
use crate::api::model::{Dedup, UploadAnswer};
use crate::api::{ApiError, ErrorKind, UploadSource};
use crate::policy::{RetryPolicy, full_jitter};
use crate::report::RunStats;

/// How one attempt at a unit ended.
pub(super) enum Attempt {
    /// The service answered (its answer may still refuse some files).
    Answered(UploadAnswer, Instant),
    /// Try again after this long.
    RetryIn(Duration, Wait),
    /// The unit is over.
    End(UnitEnd),
}

/// What a unit is waiting out between attempts.
pub(super) enum Wait {
    /// A transient failure's back-off: a soft stop lets it go on (it was sent once).
    Backoff,
    /// An outage, with its last error: a soft stop ends the wait.
    Outage(ApiError),
}

/// A unit's attempts so far.
pub(super) struct Tries {
    /// The back-off delays left; none left means the attempts ran out.
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    first: bool,
    outage_wait: Duration,
}

impl Ctx {
    /// Sends one request's files: attempts until one is answered or the unit ends. A unit
    /// whose attempts run out on transient failures is handed back (`UnitEnd::Transient`)
    /// for the passes at the end of the run.
    pub(super) async fn send_unit(&self, unit: Unit) -> UnitEnd {
        let c = &self.stats.counters;
        for f in &unit.files {
            if f.reason == Reason::Interrupted {
                RunStats::add(&c.resent_after_interrupt, 1);
            }
        }
        let s = &self.settings;
        let policy = RetryPolicy {
            min: s.retry_base,
            max: s.retry_max,
            retries: s.attempts.saturating_sub(1) as usize,
        };
        let mut tries = Tries {
            delays: Box::new(policy.delays()),
            first: true,
            outage_wait: s.retry_base,
        };
        loop {
            let (delay, wait) = match self.attempt(&unit, &mut tries).await {
                Attempt::Answered(answer, started) => {
                    return self.record_answer(&unit, answer, started).await;
                }
                Attempt::End(end) => return end,
                Attempt::RetryIn(delay, wait) => (delay, wait),
            };
            let stop = match &wait {
                Wait::Backoff => &self.cancel.hard,
                Wait::Outage(_) => &self.cancel.soft,
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => {}
            }
            if stop.is_cancelled() {
                let why = match wait {
                    Wait::Backoff => "interrupted before it was confirmed".to_string(),
                    Wait::Outage(e) => format!("not confirmed: {e}"),
                };
                return self.leave_pending(unit.paths(), &why).await;
            }
        }
    }

    /// One HTTP attempt at a unit, from taking a slot to what its outcome calls for.
    async fn attempt(&self, unit: &Unit, tries: &mut Tries) -> Attempt {
        let slot = tokio::select! {
            s = self.slots.acquire() => s,
            _ = self.cancel.hard.cancelled() => return Attempt::End(self.not_sent(unit).await),
        };
        // A run that is stopping starts nothing new; a unit already retrying goes on.
        if tries.first && self.cancel.soft.is_cancelled() {
            return Attempt::End(self.not_sent(unit).await);
        }
        if let Some(tps) = &self.tps {
            tps.acquire(1).await;
        }
        let dedup = self.dedup_for(unit, !tries.first);
        tries.first = false;
        RunStats::add(&self.stats.counters.requests, 1);
        let started = Instant::now();
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
        let sources: Vec<&UploadSource> = unit.files.iter().map(|f| &f.source).collect();
        let volume = &self.settings.volume;
        let result = tokio::select! {
            r = self.client.upload_with(volume, &sources, dedup.as_ref(), on_sent) => r,
            _ = self.cancel.hard.cancelled() => {
                let sent = body_sent.load(Ordering::Relaxed);
                return Attempt::End(self.cut_off(unit, sent).await);
            }
        };
        let accepted_before = self.accepted.load(Ordering::Relaxed) > 0;
        let result = result.map_err(|e| passing_fault(e, accepted_before));
        // A refused credential would be refused for every file: stop the run before this
        // slot is handed to a unit that would only try again.
        if let Err(e) = &result
            && e.kind == ErrorKind::Auth
        {
            self.cancel.stop_now(Cause::from_api(e));
        }
        if result
            .as_ref()
            .map_or_else(|e| e.status.is_some(), |_| true)
        {
            self.answered.store(true, Ordering::Relaxed);
            if let Some(d) = self.outage.answered(started) {
                let endpoint = self.client.endpoint();
                tracing::warn!(
                    "{endpoint} answers again, after {} without an answer",
                    spoken(d)
                );
            }
        }
        self.slots.report(started, load_signal(&result, started));
        match result {
            Ok(answer) => Attempt::Answered(answer, started),
            Err(e) => self.after_failure(unit, e, tries, slot).await,
        }
    }

    /// Carries out what [`triage_failure`] says of a failed attempt. The slot is held
    /// while a refusal is recorded, so that a breaker about to trip is not outrun by new
    /// requests.
    async fn after_failure(
        &self,
        unit: &Unit,
        e: ApiError,
        tries: &mut Tries,
        slot: Permit,
    ) -> Attempt {
        let answered = self.answered.load(Ordering::Relaxed);
        let failure = triage_failure(&e, unit.files.len(), answered);
        let end = match failure {
            Failure::Silent | Failure::Transient => {
                drop(slot);
                // After a working start, a silent service is an outage: it spends no
                // attempt, and the run gives up only after --unreachable-timeout.
                if failure == Failure::Silent {
                    let step = self.outage.failed();
                    if step != Step::Ordinary {
                        return self.ride_out(step, unit, e, tries).await;
                    }
                }
                let Some(delay) = tries.delays.next() else {
                    return Attempt::End(match out_of_tries(&e, answered) {
                        OutOfTries::Unreachable => self.unreachable(unit, e).await,
                        OutOfTries::HandBack => UnitEnd::Transient(unit.retried(), e),
                    });
                };
                if self.take_retry() {
                    let delay = RetryPolicy::wait(delay, e.retry_after);
                    RunStats::add(&self.stats.counters.retries, 1);
                    tracing::debug!("retrying in {delay:?}: {e}");
                    return Attempt::RetryIn(delay, Wait::Backoff);
                }
                let mut e = e;
                e.message = format!("{} (the run's retry budget is spent)", e.message);
                self.record_failed(unit, &e).await
            }
            Failure::Split => {
                tracing::debug!(
                    "a request of {} files was refused ({e}); sending each on its own",
                    unit.files.len()
                );
                UnitEnd::Split(unit.files.clone(), unit.dedup)
            }
            Failure::Changed => {
                self.changed_under_us(unit.paths(), "changed since it was listed")
                    .await
            }
            Failure::Refused => self.record_failed(unit, &e).await,
        };
        Attempt::End(end)
    }

    /// One failure without an answer after a working start: told, then waited out. Ends
    /// the unit once the outage has outlived the timeout.
    async fn ride_out(&self, step: Step, unit: &Unit, e: ApiError, tries: &mut Tries) -> Attempt {
        let endpoint = self.client.endpoint();
        match step {
            Step::Ordinary | Step::Wait => {}
            Step::Began => tracing::warn!(
                "{endpoint} stopped answering: {e}. Uploads wait and are tried again; the run \
                 stops if nothing is answered for {} (--unreachable-timeout)",
                spoken(self.outage.timeout())
            ),
            Step::Remind(d) => {
                tracing::warn!("{endpoint} has not answered for {}: {e}", spoken(d))
            }
            Step::GiveUp(d) => return Attempt::End(self.gone(unit, e, d).await),
        }
        let cap = self
            .settings
            .retry_max
            .min((self.outage.timeout() / 10).max(Duration::from_millis(100)));
        tries.outage_wait = (tries.outage_wait * 2).min(cap);
        let wait = full_jitter(tries.outage_wait).max(tries.outage_wait / 2);
        Attempt::RetryIn(wait, Wait::Outage(e))
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
}
