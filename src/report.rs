//! What a run counts as it goes, and the summary it ends with.
//!
//! The pipeline only bumps atomic counters in [`RunStats`]; whoever shows progress (bars on
//! a terminal, log lines under cron, nothing with `--quiet`) reads them on its own clock.
//! The library never touches the terminal. The summary's metric names are the platform's
//! (seed 003), so the worker's report reads like MOI's own.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub struct Counters { $($(#[$doc])* pub $name: AtomicU64,)* }

        #[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
        pub struct CountersSnapshot { $(pub $name: u64,)* }

        impl Counters {
            pub fn snapshot(&self) -> CountersSnapshot {
                CountersSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    /// Regular files the walk found that passed the filters.
    seen,
    seen_bytes,
    /// Already uploaded and unchanged.
    unchanged,
    /// Left out by filters or unusable (FIFOs, loops, bad names...).
    skipped,
    /// Planned for upload in this run.
    to_upload,
    to_upload_bytes,
    /// Confirmed by the service in this run.
    uploaded,
    uploaded_bytes,
    /// Gave up on in this run (upload stage).
    failed,
    /// Changed while being sent: left for the next run.
    changed,
    /// Sent again because a previous run was interrupted while sending them.
    resent_after_interrupt,
    /// Transient failures that were retried.
    retries,
    /// Upload requests sent.
    requests,
    /// Sum of confirmed requests' latency in milliseconds.
    latency_ms_total,
    /// Files whose ingestion the follow phase set out to follow.
    to_follow,
    ingested,
    ingest_failed,
    ingest_pending,
    /// `/task/retry` ids asked for.
    ingest_retries,
    poll_requests,
    follow_rounds,
    /// Transient answers (503, 429, timeouts) while following ingestion, waited out.
    follow_transient,
    /// Folders or files the walk could not read (a night with one deletes nothing).
    walk_errors,
    /// Removed from the volume because their source is gone (`--delete`).
    deleted,
    /// Renamed in the volume instead of sent again (files, and folders with all inside).
    renamed,
    /// Found in the volume at their path and size, recorded without sending (`--adopt`).
    adopted,
    /// Extra copies at a path the night sent, deleted so that one version remains.
    copies_removed,
    /// Skipped, by reason (they add up to `skipped`, with `walk_errors`): left out by
    /// --include/--exclude/--ext, hidden, symlinks not followed, FIFOs, sockets and
    /// devices, over --max-file-size, names MOI cannot take.
    skipped_filtered,
    skipped_hidden,
    skipped_symlinks,
    skipped_special,
    skipped_too_large,
    skipped_bad_names,
    /// Refused for good by the service in this run (counted in `failed` too).
    refused,
    /// Refused in an earlier run and unchanged since: not sent, not a failure tonight.
    refused_earlier,
);

#[derive(Debug, Clone, Serialize)]
pub struct FailureNote {
    pub path: String,
    pub stage: &'static str,
    pub reason: String,
}

/// Live state of one run, shared between the pipeline and whoever displays it.
#[derive(Debug)]
pub struct RunStats {
    pub started: Instant,
    pub counters: Counters,
    pub walk_done: AtomicBool,
    pub following: AtomicBool,
    /// Failures noted, listed or not (the summary lists the first [`LISTED_FAILURES`]).
    failures_noted: AtomicU64,
    /// Body bytes that left, retries included; updated as they go, for progress.
    pub wire_bytes: Arc<AtomicU64>,
    failures: Mutex<Vec<FailureNote>>,
}

/// How many failures a summary lists; the journal keeps them all (`status`).
pub const LISTED_FAILURES: usize = 50;

impl Default for RunStats {
    fn default() -> Self {
        RunStats {
            started: Instant::now(),
            counters: Counters::default(),
            walk_done: AtomicBool::new(false),
            following: AtomicBool::new(false),
            failures_noted: AtomicU64::new(0),
            wire_bytes: Arc::new(AtomicU64::new(0)),
            failures: Mutex::new(Vec::new()),
        }
    }
}

impl RunStats {
    pub fn new() -> Arc<RunStats> {
        Arc::new(RunStats::default())
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn note_failure(&self, path: &str, stage: &'static str, reason: &str) {
        self.failures_noted.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.failures.lock()
            && f.len() < LISTED_FAILURES
        {
            f.push(FailureNote {
                path: path.to_string(),
                stage,
                reason: reason.to_string(),
            });
        }
    }

    /// `n` files counted as failed were not theirs to fail (the run was refused): they are
    /// pending again, and the summary lists no failure for them.
    pub fn unfail(&self, paths: &[String]) {
        let n = paths.len() as u64;
        let c = &self.counters;
        let _ = c
            .failed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(n))
            });
        let _ = self
            .failures_noted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(n))
            });
        if let Ok(mut f) = self.failures.lock() {
            let gone: std::collections::HashSet<&str> = paths.iter().map(String::as_str).collect();
            f.retain(|note| !gone.contains(note.path.as_str()));
        }
    }

    pub fn failures(&self) -> Vec<FailureNote> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Failures noted beyond the ones listed.
    pub fn failures_not_listed(&self) -> u64 {
        let listed = self.failures.lock().map(|f| f.len()).unwrap_or(0) as u64;
        self.failures_noted
            .load(Ordering::Relaxed)
            .saturating_sub(listed)
    }
}

/// A command that could not do its work: the exit code it means and what to tell the
/// user (which names the thing and what to do). Only the command layer prints it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl std::fmt::Display) -> Failure {
        Failure {
            exit,
            message: message.to_string(),
        }
    }
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure::new(Exit::Usage, message)
    }
}

/// Exit codes: the documented contract with scripts and cron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Every file uploaded and (unless `--no-wait`) ingested.
    Success,
    /// Some files failed; the summary lists them.
    Failures,
    /// Usage or configuration error, including a service that refuses every request the
    /// same way (unknown volume, wrong endpoint).
    Usage,
    /// The credential was refused.
    Auth,
    /// Another run holds the journal.
    Locked,
    /// Uploads done, but ingestion still pending when `--wait-timeout` ran out.
    Pending,
    /// Interrupted (SIGINT/SIGTERM); the journal is consistent.
    Interrupted,
    /// No request ever reached the service; nothing was sent, the files stay pending.
    Unreachable,
    /// Stopped at the `--max-duration` cut-off; the rest is pending for the next run.
    CutOff,
    /// Uploads went well, but `--delete` deleted nothing: a rail withheld the deletes
    /// (walk errors, over `--max-delete`, an emptied folder). The summary says which.
    DeletesWithheld,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::Failures => 1,
            Exit::Usage => 2,
            Exit::Auth => 3,
            Exit::Locked => 4,
            Exit::Pending => 5,
            Exit::CutOff => 6,
            Exit::Unreachable => 7,
            Exit::DeletesWithheld => 8,
            Exit::Interrupted => 130,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: String,
    pub status: Exit,
    pub exit_code: i32,
    /// Why the run stopped early, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub journal: String,
    pub duration_s: f64,
    #[serde(flatten)]
    pub counts: CountersSnapshot,
    pub sent_bytes: u64,
    #[serde(rename = "PipelineLoadFileCount")]
    pub load_file_count: u64,
    #[serde(rename = "PipelineLoadFileSize")]
    pub load_file_size: u64,
    #[serde(rename = "PipelineLoadFileLatency")]
    pub load_file_latency_ms: f64,
    #[serde(rename = "PipelineLoadFileThroughput")]
    pub load_file_throughput: f64,
    #[serde(rename = "PipelineLoadFilePerSecond")]
    pub load_file_per_second: f64,
    #[serde(rename = "PipelineLoadFileSuccessRate")]
    pub load_file_success_rate: f64,
    pub failures: Vec<FailureNote>,
    /// Failures past the listed ones (`moi-ingest status` lists them all).
    pub failures_not_listed: u64,
    /// The run's outcome could not be recorded in the journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
}

impl Exit {
    /// What the code means, for the last line of a run.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "everything done",
            Exit::Failures => "some files failed",
            Exit::Usage => "usage or configuration error",
            Exit::Auth => "credential refused",
            Exit::Locked => "journal held by another run",
            Exit::Pending => "ingestion still pending",
            Exit::Interrupted => "interrupted",
            Exit::Unreachable => "service unreachable",
            Exit::CutOff => "stopped at the cut-off",
            Exit::DeletesWithheld => "deletes withheld by a safety rail",
        }
    }
}

impl Summary {
    pub fn build(
        command: &str,
        stats: &RunStats,
        exit: Exit,
        stopped: Option<String>,
        journal: &str,
    ) -> Summary {
        let c = stats.counters.snapshot();
        let secs = stats.started.elapsed().as_secs_f64().max(1e-9);
        let attempted = c.uploaded + c.failed;
        Summary {
            command: command.to_string(),
            status: exit,
            exit_code: exit.code(),
            stopped,
            journal: journal.to_string(),
            duration_s: (secs * 1000.0).round() / 1000.0,
            load_file_count: c.uploaded,
            load_file_size: c.uploaded_bytes,
            load_file_latency_ms: if c.uploaded > 0 {
                c.latency_ms_total as f64 / c.uploaded as f64
            } else {
                0.0
            },
            load_file_throughput: c.uploaded_bytes as f64 / secs,
            load_file_per_second: c.uploaded as f64 / secs,
            load_file_success_rate: if attempted > 0 {
                c.uploaded as f64 / attempted as f64
            } else {
                1.0
            },
            failures: stats.failures(),
            failures_not_listed: stats.failures_not_listed(),
            journal_error: None,
            sent_bytes: stats.wire_bytes.load(Ordering::Relaxed),
            counts: c,
        }
    }

    /// A few human lines for the end of a run.
    pub fn human(&self) -> String {
        let c = &self.counts;
        let mut out = self.headline();
        if let Some(skipped) = counted(&[
            (
                c.skipped_symlinks,
                "symlinks not followed (--follow-symlinks)",
            ),
            (c.skipped_hidden, "hidden (--hidden)"),
            (c.skipped_filtered, "left out by the filters"),
            (c.skipped_too_large, "over --max-file-size"),
            (c.skipped_special, "FIFOs, sockets or devices"),
            (c.skipped_bad_names, "with names MOI cannot take"),
            (c.walk_errors, "unreadable"),
        ]) {
            out.push_str(&format!("\nskipped: {skipped}"));
        }
        if c.ingested + c.ingest_failed + c.ingest_pending > 0 {
            out.push_str(&format!(
                "\ningestion: {} ingested, {} failed, {} still pending ({} retries asked)",
                c.ingested, c.ingest_failed, c.ingest_pending, c.ingest_retries
            ));
            if c.follow_transient > 0 {
                out.push_str(&format!(
                    "; {} busy answers (503, 429) waited out",
                    c.follow_transient
                ));
            }
        }
        if c.refused_earlier > 0 {
            out.push_str(&format!(
                "\n{} files refused earlier, unchanged since (see `moi-ingest status`; \
                 `moi-ingest retry --refused` sends them again)",
                c.refused_earlier
            ));
        }
        if let Some(volume) = counted(&[
            (c.deleted, "deleted (source gone)"),
            (c.renamed, "renamed in the volume"),
            (c.adopted, "adopted from the volume"),
            (c.copies_removed, "extra copies removed"),
        ]) {
            out.push_str(&format!("\nvolume: {volume}"));
        }
        if c.resent_after_interrupt > 0 {
            out.push_str(&format!(
                "\n{} files were being sent when a previous run stopped and were sent again (a second copy one left at its path is removed once the path is confirmed, where the service has the catalog calls)",
                c.resent_after_interrupt
            ));
        }
        out.push_str(&self.failure_lines());
        if let Some(why) = &self.stopped {
            out.push_str(&format!("\nstopped: {why}"));
        }
        if let Some(e) = &self.journal_error {
            out.push_str(&format!("\nthe run could not be recorded: {e}"));
        }
        out.push_str(&format!("\njournal: {}", self.journal));
        out.push_str(&format!(
            "\n{} ended with exit {} ({})",
            self.command,
            self.exit_code,
            self.status.meaning()
        ));
        out
    }

    /// The summary's first line: what the run saw and did.
    fn headline(&self) -> String {
        let c = &self.counts;
        if self.command == "retry" {
            // A retry walks nothing: what it sent again is what there is to say.
            if c.to_upload == 0 {
                format!(
                    "retry: no failed upload to send again ({:.1}s)",
                    self.duration_s
                )
            } else {
                format!(
                    "retry: {} files sent again: {} uploaded ({}), {} failed in {:.1}s",
                    c.to_upload,
                    c.uploaded,
                    human_bytes(c.uploaded_bytes),
                    c.failed,
                    self.duration_s
                )
            }
        } else {
            format!(
                "{}: {} files seen, {} unchanged, {} uploaded ({}), {} failed, {} skipped in {:.1}s ({}/s)",
                self.command,
                c.seen,
                c.unchanged,
                c.uploaded,
                human_bytes(c.uploaded_bytes),
                c.failed,
                c.skipped,
                self.duration_s,
                human_bytes(self.load_file_throughput as u64),
            )
        }
    }

    /// One line per listed failure, and how many more there are.
    pub fn failure_lines(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            out.push_str(&format!(
                "\nfailed ({}): {}: {}",
                f.stage,
                shown(&f.path),
                f.reason
            ));
        }
        if self.failures_not_listed > 0 {
            out.push_str(&format!(
                "\n... and {} more failed: `moi-ingest status` lists them all",
                self.failures_not_listed
            ));
        }
        out
    }

    /// What `--quiet` still says: quiet means no progress, never no failures.
    pub fn quiet_lines(&self) -> Option<String> {
        let c = &self.counts;
        let failed = c.failed + c.ingest_failed + c.changed;
        if self.status == Exit::Success {
            return None;
        }
        let mut out = format!(
            "{}: {failed} files failed; exit {} ({})",
            self.command,
            self.exit_code,
            self.status.meaning()
        );
        out.push_str(&self.failure_lines());
        if let Some(why) = &self.stopped {
            out.push_str(&format!("\nstopped: {why}"));
        }
        Some(out)
    }
}

/// Unix seconds as a local date and time, `2026-11-23 02:15:07`, as a person reads a log.
pub fn local_time(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => secs.to_string(),
    }
}

/// A time the service gave, as a person reads it: a local date for Unix seconds, the text
/// as the service wrote it otherwise, `-` when unset.
pub fn stamp(t: &crate::api::lenient::Stamp) -> String {
    match t {
        crate::api::lenient::Stamp::Unix(0) => "-".to_string(),
        crate::api::lenient::Stamp::Unix(n) => local_time(*n),
        crate::api::lenient::Stamp::Text(t) => t.clone(),
    }
}

/// A path as a line of output shows it: control characters (a newline or tab in a file
/// name) escaped as `\n`, `\t`, `\u{1b}`, so that one file stays on one line and a
/// tab-separated line keeps its columns; everything else, Chinese included, as it is.
pub fn shown(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `"3 this, 1 that"` of the counts that are not zero; `None` when all are.
fn counted(counts: &[(u64, &str)]) -> Option<String> {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_path_shows_on_one_line_with_its_columns() {
        assert_eq!(shown("报告/report 1.pdf"), "报告/report 1.pdf");
        assert_eq!(
            shown("new\nline\tand\u{1b}esc.txt"),
            "new\\nline\\tand\\u{1b}esc.txt"
        );
    }
}
