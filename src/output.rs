//! What a person or a log file sees while a run goes: progress and log lines.
//!
//! On a terminal, an indicatif bar (files, bytes, rate, ETA) redrawn a few times a second;
//! log lines are printed above it. When stderr is not a terminal (cron), no bar: one log
//! line every `LOG_EVERY` and the final summary. `--quiet` leaves errors only. Under
//! systemd, lines carry syslog priorities instead of timestamps ([`LogStyle`]).

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

/// How a line on stderr is dressed, decided once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStyle {
    /// A person at a terminal: the text alone.
    Terminal,
    /// A file or cron's mail: each line starts with a timestamp, to be read the morning
    /// after.
    Stamped,
    /// systemd's journal, which stamps lines itself: each line starts with a syslog
    /// priority (`<3>`), so `journalctl -p warning` shows what went wrong.
    Journal,
}

/// The syslog priorities our lines carry under systemd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

impl LogStyle {
    fn get() -> LogStyle {
        static STYLE: OnceLock<LogStyle> = OnceLock::new();
        *STYLE.get_or_init(|| {
            if stderr_is_journal() {
                LogStyle::Journal
            } else if stderr_is_terminal() {
                LogStyle::Terminal
            } else {
                LogStyle::Stamped
            }
        })
    }

    /// `text` as the lines this style writes, each ending in a newline. `stamp` is called
    /// once, and only by the style that shows it.
    pub fn lines(self, priority: Priority, text: &str, stamp: impl FnOnce() -> String) -> String {
        let prefix = match self {
            LogStyle::Terminal => String::new(),
            LogStyle::Stamped => format!("{} ", stamp()),
            LogStyle::Journal => format!("<{}>", priority as u8),
        };
        let mut buf = String::with_capacity(text.len() + 64);
        for line in text.lines() {
            buf.push_str(&prefix);
            buf.push_str(line);
            buf.push('\n');
        }
        buf
    }
}

/// Whether stderr is systemd's journal: `JOURNAL_STREAM` names the device and inode of the
/// stream systemd connected, and it must be stderr's own, since a child inherits the
/// variable even when its stderr was sent elsewhere (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| parse_journal_stream(&v))
    else {
        return false;
    };
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// `JOURNAL_STREAM`'s `DEVICE:INODE`, both decimal.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
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

/// tracing's lines under systemd: the priority of the event's level, then its message.
struct JournalFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => Priority::Error,
            tracing::Level::WARN => Priority::Warning,
            tracing::Level::INFO => Priority::Info,
            _ => Priority::Debug,
        };
        write!(writer, "<{}>", priority as u8)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A line for the person or the log on stderr, dressed as [`LogStyle`] says: stamped in a
/// log (multi-line text gets a stamp on each line), with a priority under systemd.
pub fn stderr_line(text: impl std::fmt::Display) {
    stderr_line_at(Priority::Info, text);
}

/// [`stderr_line`] for what went wrong: under systemd it carries `priority`.
pub fn stderr_line_at(priority: Priority, text: impl std::fmt::Display) {
    let buf = LogStyle::get().lines(priority, &text.to_string(), now_stamp);
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBar)
        .with_ansi(LogStyle::get() == LogStyle::Terminal)
        .with_target(false);
    let _ = match LogStyle::get() {
        LogStyle::Journal => builder.event_format(JournalFormat).try_init(),
        _ => builder.with_timer(LogTime).try_init(),
    };
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

    #[test]
    fn each_style_dresses_every_line_of_a_text() {
        let stamp = || "2026-12-06T20:46:41.362Z".to_string();
        let text = "upload ended with exit 1\n  a.pdf: refused";
        assert_eq!(
            LogStyle::Journal.lines(Priority::Error, text, stamp),
            "<3>upload ended with exit 1\n<3>  a.pdf: refused\n"
        );
        assert_eq!(
            LogStyle::Stamped.lines(Priority::Error, text, stamp),
            "2026-12-06T20:46:41.362Z upload ended with exit 1\n2026-12-06T20:46:41.362Z   a.pdf: refused\n"
        );
        assert_eq!(
            LogStyle::Terminal.lines(Priority::Info, "x", || unreachable!()),
            "x\n"
        );
        assert_eq!(
            LogStyle::Journal.lines(Priority::Warning, "w", stamp),
            "<4>w\n"
        );
    }

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("8:1234"), Some((8, 1234)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
    }

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
