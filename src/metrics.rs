//! A run's Prometheus metrics, and where they go: `--metrics-file` for node_exporter's
//! textfile collector, `--metrics-push` for a Pushgateway (Prometheus' way for batch jobs).
//!
//! Both are published every 30 s during a run and once at its end. The file is written to a
//! temporary file in the same folder and renamed over the target, so the collector never
//! reads half a file. A push replaces the run's group (`job="moi-ingest"`, `volume`, and
//! `shard` when sharded). Neither ever fails the night: a failure is a warning.
//! Every metric carries the `volume` label, and `shard` when the run has one. Where a metric
//! is what the platform reports under its own name (seed 003), the HELP text says which.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::pipeline::Shard;
use crate::report::RunStats;

const EVERY: Duration = Duration::from_secs(30);
/// A Pushgateway that does not answer in this long is down for this push.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The Pushgateway's `job` grouping label.
pub const PUSH_JOB: &str = "moi-ingest";

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

/// What the journal and the settings tell about the nights, beside the run's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts {
    /// When the run started (Unix seconds).
    pub started_at: i64,
    /// When the last night that sent everything ended (Unix seconds).
    pub last_success: Option<i64>,
    /// When this journal's first run started, the baseline before any success.
    pub first_run: Option<i64>,
    /// `--max-duration` plus `--drain-timeout`: how long a night may take.
    pub window: Option<Duration>,
    /// How many runs in a row, this one included once it ended, stopped at the cut-off.
    pub cutoffs_in_a_row: Option<u32>,
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The exposition text for a run's counters.
pub fn render(stats: &RunStats, labels: &Labels, state: RunState, facts: &Facts) -> String {
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
    gauge(
        "started_timestamp_seconds",
        "When the current or last run started, as a Unix timestamp.",
        facts.started_at as f64,
    );
    if let Some(w) = facts.window {
        gauge(
            "window_seconds",
            "How long a run may take: --max-duration plus --drain-timeout.",
            w.as_secs_f64(),
        );
    }
    if let Some(t) = facts.last_success {
        gauge(
            "last_success_timestamp_seconds",
            "When the last run that sent everything ended (exit 0, or 5: ingestion still pending), as a Unix timestamp.",
            t as f64,
        );
    }
    if let Some(t) = facts.first_run {
        gauge(
            "first_run_timestamp_seconds",
            "When this journal's first run started, as a Unix timestamp: the baseline for a folder that has not had a successful night yet.",
            t as f64,
        );
    }
    if let Some(n) = facts.cutoffs_in_a_row {
        gauge(
            "cutoffs_in_a_row",
            "How many runs in a row stopped at --max-duration (exit 6): at 2 or more the folder outgrows the window.",
            f64::from(n),
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

/// Where a run's metrics go: a file, a Pushgateway, or both.
pub struct Publisher {
    file: Option<PathBuf>,
    push: Option<Push>,
    labels: Labels,
}

struct Push {
    /// The group's URL: `{gateway}/metrics/job/moi-ingest/volume/{v}[/shard@base64/{s}]`.
    group: String,
    http: reqwest::Client,
    /// Set after a failed push, so a gateway that stays down warns once, not every 30 s.
    failing: AtomicBool,
}

impl Publisher {
    /// `None` when the run publishes nothing.
    pub fn new(
        file: Option<PathBuf>,
        gateway: Option<&url::Url>,
        labels: Labels,
    ) -> Option<Publisher> {
        if file.is_none() && gateway.is_none() {
            return None;
        }
        let push =
            gateway.and_then(
                |g| match reqwest::Client::builder().timeout(PUSH_TIMEOUT).build() {
                    Ok(http) => Some(Push {
                        group: group_url(g, &labels),
                        http,
                        failing: AtomicBool::new(false),
                    }),
                    Err(e) => {
                        tracing::warn!(
                            "metrics will not be pushed: no HTTP client for the Pushgateway ({})",
                            crate::api::error_chain(&e.without_url())
                        );
                        None
                    }
                },
            );
        Some(Publisher { file, push, labels })
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Writes the file and pushes; a failure of either is a warning, never the night's.
    pub async fn publish(&self, text: &str) {
        if let Some(path) = &self.file
            && let Err(e) = write_atomic(path, text)
        {
            tracing::warn!("cannot write the metrics file {}: {e}", path.display());
        }
        if let Some(push) = &self.push {
            push.send(text).await;
        }
    }

    /// Publishes the run's metrics every 30 s while it goes on.
    pub fn spawn(
        self: Arc<Self>,
        stats: Arc<RunStats>,
        facts: Facts,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let text = render(&stats, &self.labels, RunState::Running, &facts);
                self.publish(&text).await;
                tokio::time::sleep(EVERY).await;
            }
        })
    }
}

impl Push {
    async fn send(&self, text: &str) {
        let answer = self
            .http
            .put(&self.group)
            .header("content-type", "text/plain; version=0.0.4")
            .body(text.to_string())
            .send()
            .await;
        let problem = match answer {
            Ok(a) if a.status().is_success() => None,
            Ok(a) => {
                let status = a.status();
                let body = a.text().await.unwrap_or_default();
                Some(format!("it answered {status}: {}", body.trim()))
            }
            // Without the URL: a gateway given as http://user:password@host would leak.
            Err(e) => Some(crate::api::error_chain(&e.without_url())),
        };
        match problem {
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("metrics pushed to the Pushgateway again");
                }
            }
            Some(why) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot push the metrics to the Pushgateway ({why}); the night goes on \
                         and tries again in 30 s and at its end"
                    );
                } else {
                    tracing::debug!("metrics push failed again: {why}");
                }
            }
        }
    }
}

/// The Pushgateway URL of a run's group. Values with a `/` (a shard, `3/8`) or none at all
/// go in the gateway's `@base64` form, as its API asks.
pub fn group_url(gateway: &url::Url, labels: &Labels) -> String {
    let segment = |name: &str, value: &str| {
        if value.is_empty() || value.contains('/') {
            let b64 = base64::engine::general_purpose::URL_SAFE.encode(value);
            format!(
                "/{name}@base64/{}",
                if b64.is_empty() { "=".into() } else { b64 }
            )
        } else {
            let escaped: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            format!("/{name}/{}", escaped.replace('+', "%20"))
        }
    };
    let mut out = gateway.as_str().trim_end_matches('/').to_string();
    out.push_str("/metrics");
    out.push_str(&segment("job", PUSH_JOB));
    out.push_str(&segment("volume", &labels.volume));
    if let Some(s) = labels.shard {
        out.push_str(&segment("shard", &format!("{}/{}", s.index, s.count)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_url_names_job_volume_and_shard_as_the_gateway_reads_them() {
        let gw = url::Url::parse("http://127.0.0.1:9091/").unwrap();
        let plain = Labels {
            volume: "1889578498228068352".into(),
            shard: None,
        };
        assert_eq!(
            group_url(&gw, &plain),
            "http://127.0.0.1:9091/metrics/job/moi-ingest/volume/1889578498228068352"
        );
        let sharded = Labels {
            volume: "v 1".into(),
            shard: Some(Shard { index: 3, count: 8 }),
        };
        // "3/8" in URL-safe base64 is "My84".
        assert_eq!(
            group_url(&gw, &sharded),
            "http://127.0.0.1:9091/metrics/job/moi-ingest/volume/v%201/shard@base64/My84"
        );
    }
}
