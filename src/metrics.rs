//! `--metrics-file`: Prometheus text exposition for node_exporter's textfile collector.
//!
//! Written every 30 s during a run and once at its end, each time to a temporary file in
//! the same folder and renamed over the target, so the collector never reads half a file.
//! Every metric carries the `volume` label, and `shard` when the run has one. Where a metric
//! is what the platform reports under its own name (seed 003), the HELP text says which.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Shard;
use crate::report::RunStats;

const EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Labels {
    pub volume: String,
    pub shard: Option<Shard>,
}

impl Labels {
    fn render(&self) -> String {
        let escape = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut out = format!("volume=\"{}\"", escape(&self.volume));
        if let Some(s) = self.shard {
            out.push_str(&format!(",shard=\"{}/{}\"", s.index, s.count));
        }
        out
    }
}

/// How the run stands: still going, or ended with an exit code.
#[derive(Clone, Copy, Debug)]
pub enum RunState {
    Running,
    Ended { exit_code: i32 },
}

/// The exposition text for a run's counters.
pub fn render(
    stats: &RunStats,
    labels: &Labels,
    state: RunState,
    last_success: Option<i64>,
) -> String {
    let c = stats.counters.snapshot();
    let l = labels.render();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP moi_ingest_{name} {help}");
        let _ = writeln!(out, "# TYPE moi_ingest_{name} gauge");
        let _ = writeln!(out, "moi_ingest_{name}{{{l}}} {value}");
    };
    gauge(
        "files_uploaded",
        "Files the service confirmed in the current or last run (the platform's PipelineLoadFileCount).",
        c.uploaded as f64,
    );
    gauge(
        "bytes_uploaded",
        "Bytes of the files the service confirmed in the current or last run (the platform's PipelineLoadFileSize).",
        c.uploaded_bytes as f64,
    );
    gauge(
        "files_refused",
        "Files the service refused for good and unchanged since, this run's and earlier ones' (they are not sent again until they change; `moi-ingest status` lists them).",
        (c.refused + c.refused_earlier) as f64,
    );
    gauge(
        "files_failed",
        "Files that failed for good in the current or last run (upload or ingestion).",
        (c.failed + c.ingest_failed) as f64,
    );
    gauge(
        "files_skipped",
        "Files the current or last run did not send: unchanged since confirmed, or left out.",
        (c.unchanged + c.skipped) as f64,
    );
    gauge(
        "files_resent_after_interrupt",
        "Files sent again because an earlier run stopped while sending them.",
        c.resent_after_interrupt as f64,
    );
    gauge(
        "duration_seconds",
        "How long the current or last run has taken.",
        (stats.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    );
    gauge(
        "running",
        "1 while a run is going on, 0 once it ended.",
        matches!(state, RunState::Running) as u8 as f64,
    );
    if let RunState::Ended { exit_code } = state {
        gauge(
            "last_exit_code",
            "The exit code of the last run (0 all done, 1 failures, 5 ingestion pending, 6 cut-off, 7 unreachable).",
            f64::from(exit_code),
        );
    }
    if let Some(t) = last_success {
        gauge(
            "last_success_timestamp_seconds",
            "When the last run that exited 0 ended, as a Unix timestamp.",
            t as f64,
        );
    }
    out
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".moi-ingest-metrics-")
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    // node_exporter runs as another user: the file must be readable, as any .prom file is.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Rewrites the metrics file every 30 s while the run goes on.
pub fn spawn_writer(
    path: PathBuf,
    labels: Labels,
    stats: Arc<RunStats>,
    last_success: Option<i64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let text = render(&stats, &labels, RunState::Running, last_success);
            if let Err(e) = write_atomic(&path, &text) {
                tracing::warn!("cannot write the metrics file {}: {e}", path.display());
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}
