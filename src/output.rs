//! What a person or a log file sees while a run goes: progress and log lines.
//!
//! On a terminal, an indicatif bar (files, bytes, rate, ETA) redrawn a few times a second;
//! log lines are printed above it. When stderr is not a terminal (cron), no bar: one log
//! line every `LOG_EVERY` and the final summary. `--quiet` leaves errors only.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::report::{RunStats, human_bytes};

const LOG_EVERY: Duration = Duration::from_secs(10);

/// The bar being shown, if any: log lines are printed around it.
static BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn bar_slot() -> &'static Mutex<Option<ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

#[derive(Clone, Copy)]
struct StderrAroundBar;

struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = bar_slot().lock().ok().and_then(|b| b.clone());
        match bar {
            Some(b) => b.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter
    }
}

/// Standard output, for results and `--json`. A closed pipe (`moi-ingest ... | head`) is
/// the reader saying it has enough, not an error: once it is seen, nothing more is written
/// and the command ends as it would have.
pub fn stdout_line(line: impl std::fmt::Display) {
    use std::sync::atomic::AtomicBool;
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether stderr is a terminal (a person watching) or a file (cron, a log).
pub fn stderr_is_terminal() -> bool {
    static TERMINAL: OnceLock<bool> = OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::stderr().is_terminal())
}

/// The one timestamp every log line starts with: RFC 3339 in UTC, to the millisecond
/// (`2026-12-06T20:46:41.362Z`), for our own lines and tracing's alike.
fn now_stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// tracing's lines take the same stamp as [`stderr_line`]'s.
struct LogTime;

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&now_stamp())
    }
}

/// A line for the person or the log on stderr. In a log (stderr not a terminal) every line
/// starts with an RFC 3339 timestamp, as the log lines do, so it can be read the morning
/// after; multi-line text gets one on each line.
pub fn stderr_line(text: impl std::fmt::Display) {
    let text = text.to_string();
    let stamp = (!stderr_is_terminal()).then(now_stamp);
    let mut buf = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if let Some(t) = &stamp {
            buf.push_str(t);
            buf.push(' ');
        }
        buf.push_str(line);
        buf.push('\n');
    }
    let _ = LineWriter.write_all(buf.as_bytes());
}

/// Logs go to stderr. Other crates stay at `warn` whatever the verbosity: their debug
/// output is not ours to vouch for (headers, say).
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::new(format!("warn,moi_ingest={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBar)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_timer(LogTime)
        .try_init();
}

/// Shows a run's progress until dropped or stopped.
pub struct Progress {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(stats: Arc<RunStats>, quiet: bool) -> Progress {
        let stop = CancellationToken::new();
        let task = if quiet {
            None
        } else if std::io::stderr().is_terminal() {
            Some(tokio::spawn(bar_loop(stats, stop.clone())))
        } else {
            Some(tokio::spawn(log_loop(stats, stop.clone())))
        };
        Progress { stop, task }
    }

    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn line(stats: &RunStats) -> String {
    let c = stats.counters.snapshot();
    let secs = stats.started.elapsed().as_secs_f64().max(0.001);
    if stats.following.load(Ordering::Relaxed) {
        format!(
            "following ingestion: {} ingested, {} failed, {} retries asked, {} polls",
            c.ingested, c.ingest_failed, c.ingest_retries, c.poll_requests
        )
    } else {
        let walking = if stats.walk_done.load(Ordering::Relaxed) {
            ""
        } else {
            " (still listing)"
        };
        // Transient errors that were retried are counted here, not logged one by one. The
        // rate is of bytes sent, beside which it stands: confirmed bytes stay at 0 while a
        // large file is on its way.
        let sent = stats.wire_bytes.load(Ordering::Relaxed);
        format!(
            "{}/{} files uploaded{walking}, {} unchanged, {} failed, {} retries, {} sent ({}/s)",
            c.uploaded,
            c.to_upload,
            c.unchanged,
            c.failed,
            c.retries,
            human_bytes(sent),
            human_bytes((sent as f64 / secs) as u64),
        )
    }
}

async fn log_loop(stats: Arc<RunStats>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LOG_EVERY) => tracing::info!("{}", line(&stats)),
        }
    }
}

/// The bar tells only what is known: while the walk goes on, what was found so far (no
/// total, no ETA); then files and bytes against the total, with an ETA; while following
/// ingestion, files ingested against those to follow, with their own ETA.
async fn bar_loop(stats: Arc<RunStats>, stop: CancellationToken) {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = |template: &str| {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    };
    let walking = style("{spinner} [{elapsed_precise}] walking: {msg}");
    let sending = style(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
    );
    let following =
        style("{spinner} [{elapsed_precise}] ingestion {wide_bar} {pos}/{len} ETA {eta} {msg}");
    if let Ok(mut slot) = bar_slot().lock() {
        *slot = Some(bar.clone());
    }
    #[derive(PartialEq)]
    enum Phase {
        Walking,
        Sending,
        Following,
    }
    let mut phase = None;
    loop {
        let c = stats.counters.snapshot();
        let now = if stats.following.load(Ordering::Relaxed) {
            Phase::Following
        } else if stats.walk_done.load(Ordering::Relaxed) {
            Phase::Sending
        } else {
            Phase::Walking
        };
        // Where the bar stands in this phase: (length, position, message).
        let (len, pos, msg) = match now {
            Phase::Walking => (
                None,
                0,
                format!(
                    "{} files found ({}), {} to upload, {} uploaded",
                    c.seen,
                    human_bytes(c.seen_bytes),
                    c.to_upload,
                    c.uploaded
                ),
            ),
            Phase::Sending => (
                Some(c.to_upload_bytes.max(1)),
                stats
                    .wire_bytes
                    .load(Ordering::Relaxed)
                    .min(c.to_upload_bytes),
                format!("{}/{} files", c.uploaded, c.to_upload),
            ),
            Phase::Following => (
                Some(c.to_follow.max(1)),
                (c.ingested + c.ingest_failed).min(c.to_follow),
                format!(
                    "{} failed, {} retries asked",
                    c.ingest_failed, c.ingest_retries
                ),
            ),
        };
        if phase.as_ref() != Some(&now) {
            // Parked at zero while the style changes, then moved to where this phase
            // stands, then the rate and ETA start afresh: otherwise the jump (the bytes
            // sent while walking, or bytes under a file count) reads as a speed of GiB/s.
            bar.set_message("");
            bar.set_position(0);
            bar.set_style(match now {
                Phase::Walking => walking.clone(),
                Phase::Sending => sending.clone(),
                Phase::Following => following.clone(),
            });
            if let Some(len) = len {
                bar.set_length(len);
            }
            bar.set_position(pos);
            bar.reset_eta();
            phase = Some(now);
        } else if let Some(len) = len {
            bar.set_length(len);
            bar.set_position(pos);
        }
        bar.set_message(msg);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    if let Ok(mut slot) = bar_slot().lock() {
        *slot = None;
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large file on its way: nothing confirmed yet, bytes moving. The log line must not
    /// say 0 B/s beside what was sent.
    #[test]
    fn the_progress_rate_is_of_bytes_sent() {
        let mut stats = RunStats::default();
        stats.started = std::time::Instant::now() - std::time::Duration::from_secs(10);
        stats.wire_bytes.store(10 << 20, Ordering::Relaxed);
        let text = line(&stats);
        assert!(
            text.contains("10.0 MiB sent (") && !text.contains("(0 B/s)"),
            "{text}"
        );
        assert!(
            text.contains("(1.0 MiB/s)") || text.contains("(1023.") || text.contains("(1024."),
            "about 1 MiB a second: {text}"
        );
    }
}
