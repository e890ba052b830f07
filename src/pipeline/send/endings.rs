//! How a unit ends in the journal: confirmed from the answer, failed, refused, or left
//! pending for the next run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::plan::Unit;
use super::super::triage::{FileAnswer, triage_answer};
use super::super::verdict::UnitEnd;
use super::Ctx;
use crate::api::model::UploadAnswer;
use crate::api::{ApiError, ErrorKind};
use crate::journal::{Confirmed, SendEnding};
use crate::report::{RunStats, shown};
use crate::walk::mtime_ns;

impl Ctx {
    /// Records the unit's files as failed; a permanent refusal is the service's word for
    /// good (refused: not sent again until the file changes or `retry --refused`).
    pub(super) async fn record_failed(&self, unit: &Unit, e: &ApiError) -> UnitEnd {
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
        let paths = unit.paths();
        match self
            .journal
            .send_ended_unconfirmed(paths, e.to_string(), ending)
            .await
        {
            Ok(()) => UnitEnd::Failed(e.clone(), unit.paths()),
            Err(j) => UnitEnd::Journal(j),
        }
    }

    pub(super) async fn leave_pending(&self, paths: Vec<String>, why: &str) -> UnitEnd {
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
    pub(super) async fn changed_under_us(&self, paths: Vec<String>, what: &str) -> UnitEnd {
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
    pub(super) async fn unreachable(&self, unit: &Unit, e: ApiError) -> UnitEnd {
        let paths = unit.paths();
        match self.leave_pending(paths, &format!("not sent: {e}")).await {
            UnitEnd::Journal(j) => UnitEnd::Journal(j),
            _ => UnitEnd::Unreachable(e),
        }
    }

    /// The service stopped answering for longer than `--unreachable-timeout`: these files
    /// stay pending and the run stops.
    pub(super) async fn gone(&self, unit: &Unit, e: ApiError, silent: Duration) -> UnitEnd {
        let paths = unit.paths();
        match self
            .leave_pending(paths, &format!("not confirmed: {e}"))
            .await
        {
            UnitEnd::Journal(j) => UnitEnd::Journal(j),
            _ => UnitEnd::Gone(e, silent),
        }
    }

    pub(super) async fn not_sent(&self, unit: &Unit) -> UnitEnd {
        self.leave_pending(unit.paths(), "the run stopped before it was sent")
            .await
    }

    /// The run was stopped hard while `unit` was being sent, `sent` of its bytes gone.
    pub(super) async fn cut_off(&self, unit: &Unit, sent: u64) -> UnitEnd {
        // Only a streamed body tells its bytes as they leave; one held in memory may have
        // arrived whole before the cut, so it may be stored.
        let streamed = unit.files.iter().all(|f| !f.source.read_whole());
        if streamed && sent < unit.bytes() {
            let why = "cut off before its body was sent whole, so it was not stored";
            return self.leave_pending(unit.paths(), why).await;
        }
        // The body left whole and no answer came: it may be stored. Left in flight on
        // purpose, for the next run to count, and for the copies check once it is sent
        // again.
        UnitEnd::Left
    }

    /// Counts and logs the files an answer confirmed.
    fn count_confirmed(&self, confirmed: &[Confirmed], latency_ms: u64) {
        let c = &self.stats.counters;
        RunStats::add(&c.uploaded, confirmed.len() as u64);
        RunStats::add(
            &c.uploaded_bytes,
            confirmed.iter().map(|f| f.file.size).sum(),
        );
        RunStats::add(&c.latency_ms_total, latency_ms * confirmed.len() as u64);
        for f in confirmed {
            tracing::debug!(
                "uploaded {} ({} bytes; file {}, task {})",
                shown(&f.file.path),
                f.file.size,
                f.file_id.map_or("-".into(), |i| i.to_string()),
                f.task_id.map_or("-".into(), |i| i.to_string())
            );
        }
    }

    /// Records what the service answered, file by file (see [`triage_answer`]).
    pub(super) async fn record_answer(
        &self,
        unit: &Unit,
        answer: UploadAnswer,
        started: Instant,
    ) -> UnitEnd {
        let latency = started.elapsed().as_millis() as u64;
        let files = match triage_answer(&answer, unit.files.len()) {
            Ok(files) => files,
            Err(message) => {
                let why = format!("the service did not accept the upload: {message}");
                let e = ApiError::new(ErrorKind::Permanent, crate::api::UPLOAD_CALL, why);
                return self.record_failed(unit, &e).await;
            }
        };
        let mut confirmed = Vec::new();
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        for (f, said) in unit.files.iter().zip(files) {
            let file_id = match said {
                FileAnswer::Stored(id) => id,
                FileAnswer::Refused(msg) => {
                    refused.push((f, msg));
                    continue;
                }
            };
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
        self.count_confirmed(&confirmed, latency);
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
