//! `moi-ingest status` and `moi-ingest retry`: work from the journal, not the folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::mpsc;

use super::{Output, client_for_journal, complain, finish, open_locked, usage};
use crate::api::{ErrorKind, Id, VolumeId};
use crate::cli::{ConnectionArgs, JournalSelect, RetryArgs, StatusArgs};
use crate::config::{self, ConfigError};
use crate::journal::{Failure, Identity, Journal, RunRecord, StateCounts};
use crate::output::Progress;
use crate::pipeline::{self, Cancel, RunContext, UploadSettings};
use crate::report::{Exit, RunStats};
use crate::walk::{SkipKind, WalkEvent, WalkedFile, mtime_ns};

/// The journal a command works on: `--journal`, or the default one of (endpoint, volume, DIR).
pub(super) fn journal_path(
    sel: &JournalSelect,
    conn: &ConnectionArgs,
) -> Result<PathBuf, ConfigError> {
    let path = match (&sel.journal.journal, &sel.dir, &sel.volume) {
        (Some(p), _, _) => config::absolute(p),
        (None, Some(dir), Some(volume)) => {
            let endpoint = config::endpoint(conn.endpoint.as_deref(), conn.allow_http)?;
            let id = config::identity(&endpoint, &config::volume(volume)?, &config::root(dir)?);
            config::default_journal(&id)?
        }
        _ => {
            return Err(ConfigError(
                "name the journal: --journal PATH, or the uploaded DIR with --volume (and \
                 MOI_ENDPOINT)"
                    .into(),
            ));
        }
    };
    if !path.is_file() {
        return Err(ConfigError(format!(
            "there is no journal at {}: nothing was uploaded with these options yet (or pass \
             --journal)",
            path.display()
        )));
    }
    Ok(path)
}

#[derive(Serialize)]
struct StatusReport {
    journal: String,
    endpoint: Option<String>,
    volume: Option<String>,
    folder: Option<String>,
    counts: StateCounts,
    failures: Vec<Failure>,
    runs: Vec<RunRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<serde_json::Value>,
    exit_code: i32,
}

async fn report(journal: &Journal, failures_limit: u64) -> Result<StatusReport, i32> {
    let fail = |e| complain(Exit::Failures, e);
    let identity = journal.identity().await.map_err(fail)?;
    Ok(StatusReport {
        journal: journal.path().display().to_string(),
        endpoint: identity.as_ref().map(|i| i.endpoint.clone()),
        volume: identity.as_ref().map(|i| i.volume.clone()),
        folder: identity.map(|i| i.root),
        counts: journal.counts().await.map_err(fail)?,
        failures: journal.failures(failures_limit).await.map_err(fail)?,
        runs: journal.recent_runs(5).await.map_err(fail)?,
        follow: None,
        exit_code: 0,
    })
}

fn print_human(r: &StatusReport) {
    let c = &r.counts;
    eprintln!("journal: {}", r.journal);
    if let (Some(e), Some(v), Some(f)) = (&r.endpoint, &r.volume, &r.folder) {
        eprintln!("uploads {f} to volume {v} at {e}");
    }
    eprintln!(
        "files: {} pending, {} uploaded, {} ingesting, {} ingested, {} failed ({} in all)",
        c.pending,
        c.uploaded,
        c.ingesting,
        c.ingested,
        c.failed,
        crate::report::human_bytes(c.bytes)
    );
    for f in r.failures.iter().take(20) {
        eprintln!("failed ({}): {}: {}", f.stage, f.path, f.reason);
    }
    if r.failures.len() > 20 {
        eprintln!("... and more: `moi-ingest status --json` lists them all");
    }
    for run in &r.runs {
        let summary = run
            .summary
            .as_ref()
            .and_then(|s| {
                Some(format!(
                    "{} uploaded, {} failed",
                    s.get("uploaded")?.as_u64()?,
                    s.get("failed")?.as_u64()?
                ))
            })
            .unwrap_or_else(|| "did not finish".into());
        eprintln!(
            "run {} ({}) started {}: exit {}, {summary}",
            run.id,
            run.command,
            run.started_at,
            run.exit_code.map_or("-".to_string(), |c| c.to_string())
        );
    }
}

pub async fn status(args: &StatusArgs, out: Output, cancel: Cancel) -> i32 {
    let path = match journal_path(&args.select, &args.connection) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let mut follow_exit = None;
    let mut follow_json = None;
    let journal = if args.follow {
        let (lock, journal) = match open_locked(&path, None) {
            Ok(j) => j,
            Err(code) => return code,
        };
        let identity = journal.identity().await.ok().flatten();
        let client = match client_for_journal(&args.connection, identity.as_ref()) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let run_id = journal.start_run("status --follow").await.ok();
        let stats = RunStats::new();
        let progress = Progress::start(stats.clone(), out.quiet);
        let outcome = pipeline::finish_with_follow(
            &config::follow(&args.follow_args),
            &client,
            &journal,
            &stats,
            &cancel,
            Exit::Success,
        )
        .await;
        progress.finish().await;
        let quiet = Output {
            json: false,
            quiet: true,
        };
        let exit = outcome.exit;
        let summary = crate::report::Summary::build(
            "status --follow",
            &stats,
            exit,
            outcome.stopped.clone(),
            &path.display().to_string(),
        );
        follow_json = serde_json::to_value(&summary).ok();
        finish("status --follow", &stats, outcome, &journal, run_id, quiet).await;
        if !out.quiet {
            eprintln!("{}", summary.human());
        }
        follow_exit = Some(exit.code());
        drop(lock);
        journal
    } else {
        match Journal::open(&path, None) {
            Ok(j) => j,
            Err(e) => return complain(Exit::Usage, e),
        }
    };
    let limit = if out.json { 100_000 } else { 21 };
    let mut r = match report(&journal, limit).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    r.follow = follow_json;
    r.exit_code = follow_exit.unwrap_or(0);
    if !out.quiet {
        print_human(&r);
    }
    if out.json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    }
    r.exit_code
}

/// Feeds the files whose upload failed back into the pipeline, as if walked again.
fn failed_uploads_source(root: PathBuf, paths: Vec<String>) -> mpsc::Receiver<WalkEvent> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        for rel in paths {
            let abs = root.join(&rel);
            let event = match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.is_file() => WalkEvent::File(WalkedFile {
                    abs,
                    rel,
                    size: m.len(),
                    mtime_ns: mtime_ns(&m),
                }),
                Ok(_) => skipped(abs, "is no longer a regular file"),
                Err(e) => skipped(abs, &format!("cannot be read: {e}")),
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn skipped(path: PathBuf, reason: &str) -> WalkEvent {
    WalkEvent::Skipped {
        path,
        reason: reason.to_string(),
        kind: SkipKind::Unusable,
    }
}

pub async fn retry(args: &RetryArgs, out: Output, cancel: Cancel) -> i32 {
    let path = match journal_path(&args.select, &args.connection) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let (_lock, journal) = match open_locked(&path, None) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let Some(identity) = journal.identity().await.ok().flatten() else {
        return complain(
            Exit::Usage,
            format!(
                "the journal {} records no upload yet; run `moi-ingest upload` first",
                path.display()
            ),
        );
    };
    let volume = match config::volume(&identity.volume) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let client = match client_for_journal(&args.connection, Some(&identity)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let run_id = journal.start_run("retry").await.ok();
    let stats = RunStats::new();
    let progress = Progress::start(stats.clone(), out.quiet);
    if let Err(code) = redrive_ingestion(&journal, &client, &stats).await {
        progress.finish().await;
        return code;
    }
    let paths = journal.upload_failures().await.unwrap_or_default();
    let settings = retry_settings(&identity, volume, args);
    let source = failed_uploads_source(settings.root.clone(), paths);
    let run = RunContext {
        client,
        journal: journal.clone(),
        run_id: run_id.unwrap_or(0),
        stats: stats.clone(),
        cancel,
    };
    let outcome = pipeline::run_stages(&settings, run, source, None).await;
    progress.finish().await;
    finish("retry", &stats, outcome, &journal, run_id, out).await
}

fn retry_settings(identity: &Identity, volume: VolumeId, args: &RetryArgs) -> UploadSettings {
    UploadSettings {
        follow: config::follow(&args.follow_args),
        no_wait: args.no_wait,
        ..UploadSettings::new(Path::new(&identity.root).to_path_buf(), volume)
    }
}

/// Asks `/task/retry` for every file whose ingestion failed for good, one call per task.
async fn redrive_ingestion(
    journal: &Journal,
    client: &crate::api::Client,
    stats: &RunStats,
) -> Result<(), i32> {
    let failures = journal
        .ingest_failures()
        .await
        .map_err(|e| complain(Exit::Failures, e))?;
    let mut by_task: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    for (task, file) in failures {
        by_task.entry(task).or_default().push(file);
    }
    for (task, files) in by_task {
        for ids in files.chunks(500) {
            match client.task_retry(task, ids).await {
                Ok(()) => {
                    RunStats::add(&stats.counters.ingest_retries, ids.len() as u64);
                    journal
                        .mark_retried(ids.to_vec())
                        .await
                        .map_err(|e| complain(Exit::Failures, e))?;
                }
                Err(e) if e.kind == ErrorKind::Auth => return Err(complain(Exit::Auth, e)),
                Err(e) => tracing::warn!("retrying {} files of task {task}: {e}", ids.len()),
            }
        }
    }
    Ok(())
}
