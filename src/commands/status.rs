//! `moi-ingest status`: what a journal holds, from the journal alone (no lock, no network),
//! and with `--follow` the follow-through of a `--no-wait` run.

use serde::Serialize;

use super::{CommandResult, Output, print_summary};
use crate::cli::StatusArgs;
use crate::config;
use crate::journal::{Failure as FileFailure, Journal, RunRecord, StateCounts, lock_holder};
use crate::output::stdout_line;
use crate::pipeline::{self, Cancel};
use crate::report::{Exit, Failure, human_bytes, local_time, shown};
use crate::run::{Run, RunPlan};

#[derive(Serialize)]
struct StatusReport {
    journal: String,
    endpoint: Option<String>,
    volume: Option<String>,
    folder: Option<String>,
    /// `running (pid N on host)` while a run holds the journal.
    running: Option<String>,
    counts: StateCounts,
    failures: Vec<FileFailure>,
    runs: Vec<RunRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<serde_json::Value>,
    exit_code: i32,
}

async fn report(journal: &Journal, failures_limit: u64) -> Result<StatusReport, Failure> {
    let fail = |e| Failure::new(Exit::Failures, e);
    let identity = journal.identity().await.map_err(fail)?;
    Ok(StatusReport {
        journal: journal.path().display().to_string(),
        endpoint: identity.as_ref().map(|i| i.endpoint.clone()),
        volume: identity.as_ref().map(|i| i.volume.clone()),
        folder: identity.map(|i| i.root),
        running: lock_holder(journal.path()),
        counts: journal.counts().await.map_err(fail)?,
        failures: journal.failures(failures_limit).await.map_err(fail)?,
        runs: journal.recent_runs(5).await.map_err(fail)?,
        follow: None,
        exit_code: 0,
    })
}

const LISTED: usize = 20;

fn print_human(r: &StatusReport) {
    let c = &r.counts;
    stdout_line(format_args!("journal: {}", r.journal));
    if let (Some(e), Some(v), Some(f)) = (&r.endpoint, &r.volume, &r.folder) {
        stdout_line(format_args!("uploads {f} to volume {v} at {e}"));
    }
    if let Some(holder) = &r.running {
        stdout_line(format_args!("a run is going on now: {holder}"));
    }
    let deleted = if c.deleted > 0 {
        format!(", {} deleted", c.deleted)
    } else {
        String::new()
    };
    stdout_line(format_args!(
        "files: {} pending, {} uploaded, {} ingesting, {} ingested, {} failed{deleted} ({} in all)",
        c.pending,
        c.uploaded,
        c.ingesting,
        c.ingested,
        c.failed,
        human_bytes(c.bytes)
    ));
    for f in r.failures.iter().take(LISTED) {
        let ids = match (&f.file_id, &f.task_id) {
            (Some(file), Some(task)) => format!(" (file {file}, task {task})"),
            _ => String::new(),
        };
        stdout_line(format_args!(
            "failed ({}): {}: {}{ids}",
            f.stage,
            shown(&f.path),
            f.reason
        ));
    }
    if c.failed as usize > LISTED {
        stdout_line(format_args!(
            "... and {} more failed: `moi-ingest status --json` lists them all",
            c.failed as usize - LISTED
        ));
    }
    for run in &r.runs {
        let summary = run
            .summary
            .as_ref()
            .and_then(|s| {
                Some(format!(
                    "{} uploaded, {} failed",
                    s.get("uploaded")?.as_u64()?,
                    s.get("failed")?.as_u64()? + s.get("ingest_failed")?.as_u64()?
                ))
            })
            .unwrap_or_else(|| match (&run.exit_code, &r.running) {
                (None, Some(holder)) if r.runs.first().is_some_and(|f| f.id == run.id) => {
                    format!("running ({holder})")
                }
                _ => "did not finish".into(),
            });
        let exit = run
            .exit_code
            .map_or(String::new(), |c| format!(": exit {c}"));
        stdout_line(format_args!(
            "run {} ({}) started {}{exit}, {summary}",
            run.id,
            run.command,
            local_time(run.started_at),
        ));
    }
}

pub async fn status(args: &StatusArgs, out: Output, cancel: Cancel) -> CommandResult {
    let path = super::locate::journal_path(&args.select, &args.connection).await?;
    let mut follow = None;
    if args.follow {
        follow = Some(follow_through(&path, args, out, cancel).await?);
    }
    // Read without a lock: a run may be writing it (WAL lets both go on).
    let journal = Journal::open_read_only(&path).map_err(Failure::usage)?;
    let limit = if out.json {
        u64::MAX >> 1
    } else {
        LISTED as u64 + 1
    };
    let mut r = report(&journal, limit).await?;
    r.exit_code = verdict(&r);
    if let Some((code, json)) = follow {
        r.follow = Some(json);
        r.exit_code = code;
    }
    if out.json {
        stdout_line(serde_json::to_string(&r).unwrap_or_default());
    } else if !out.quiet {
        print_human(&r);
    }
    Ok(r.exit_code)
}

/// `status --follow`: the follow phase of a `--no-wait` upload, as a run of its own.
/// Exit codes of a night that went wrong (5 and 6 leave work for the next night; they are
/// not failures).
const FAILED_NIGHTS: [i64; 5] = [1, 2, 3, 7, 8];

/// What `status` exits with: 1 when the journal holds failed or refused files, or the last
/// night that ended went wrong; 0 otherwise. A monitor can run it alone.
fn verdict(r: &StatusReport) -> i32 {
    let last_night_failed = r
        .runs
        .iter()
        .find_map(|run| run.exit_code)
        .is_some_and(|code| FAILED_NIGHTS.contains(&code));
    if r.counts.failed > 0 || last_night_failed {
        Exit::Failures.code()
    } else {
        0
    }
}

async fn follow_through(
    path: &std::path::Path,
    args: &StatusArgs,
    out: Output,
    cancel: Cancel,
) -> Result<(i32, serde_json::Value), Failure> {
    let identity = Journal::open_read_only(path)
        .map_err(Failure::usage)?
        .identity()
        .await
        .ok()
        .flatten();
    let connection = config::connection_with_default(
        &args.connection,
        identity.as_ref().map(|i| i.endpoint.as_str()),
    )?;
    let run = Run::start(
        RunPlan {
            command: "status --follow".into(),
            journal: path.to_path_buf(),
            identity: None,
            connection,
            dry_run: false,
            client: None,
        },
        cancel,
    )
    .await?;
    let progress = crate::output::Progress::start(run.stats().clone(), out.quiet);
    let ctx = run.context();
    let outcome = pipeline::finish_with_follow(
        &config::follow(&args.follow_args),
        &ctx.client,
        &ctx.journal,
        &ctx.stats,
        &ctx.cancel,
        Exit::Success,
    )
    .await;
    progress.finish().await;
    let summary = run.finish(outcome).await;
    print_summary(&summary, Output { json: false, ..out });
    Ok((
        summary.exit_code,
        serde_json::to_value(&summary).unwrap_or_default(),
    ))
}
