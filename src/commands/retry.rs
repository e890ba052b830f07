//! `moi-ingest retry`: re-drive failed files from the journal, without walking the folder,
//! with the settings the upload recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::{CommandResult, Output, print_summary};
use crate::api::model::RetryFiles;
use crate::api::{ApiError, Client, ErrorKind, Id};
use crate::cli::RetryArgs;
use crate::config;
use crate::journal::Journal;
use crate::output::Progress;
use crate::pipeline::{self, UploadSettings};
use crate::policy::RetryPolicy;
use crate::report::{Exit, Failure, RunStats};
use crate::run::{Run, RunPlan};
use crate::walk::{self, WalkEvent};

pub async fn retry(
    args: &RetryArgs,
    out: Output,
    cancel: crate::pipeline::Cancel,
) -> CommandResult {
    let path = super::locate::journal_path(&args.select, &args.connection).await?;
    let identity = Journal::open_read_only(&path)
        .map_err(Failure::usage)?
        .identity()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            Failure::usage(format!(
                "the journal {} records no upload yet; run `moi-ingest upload` first",
                path.display()
            ))
        })?;
    let volume = config::volume(&identity.volume)?;
    let connection =
        config::connection_with_default(&args.connection, Some(identity.endpoint.as_str()))?;
    let run = Run::start(
        RunPlan {
            command: "retry".into(),
            journal: path.clone(),
            identity: None,
            connection,
            dry_run: false,
            client: None,
        },
        cancel,
    )
    .await?;
    // The upload's own settings (--base-names, --prefix, --dedup, batching...), so a file
    // goes again under the name it was first sent with.
    let mut settings = UploadSettings::new(PathBuf::from(&identity.root), volume.clone());
    if let Some(recorded) = run.recorded_settings().await {
        settings.send = recorded.send;
        settings.send.volume = volume;
    }
    settings.follow = config::follow(&args.follow_args);
    settings.no_wait = args.no_wait;
    let progress = Progress::start(run.stats().clone(), out.quiet);
    let redriven = redrive_ingestion(run.journal(), run.client(), run.stats()).await;
    if let Err(f) = redriven {
        progress.finish().await;
        return Err(f);
    }
    let paths = run
        .journal()
        .upload_failures(args.refused)
        .await
        .unwrap_or_default();
    if args.refused
        && let Err(e) = run.journal().requeue_refused(paths.clone()).await
    {
        progress.finish().await;
        return Err(Failure::new(Exit::Failures, e));
    }
    let source = failed_uploads_source(settings.root.clone(), paths);
    let outcome = pipeline::run_stages(&settings, run.context(), source, None).await;
    progress.finish().await;
    let summary = run.finish(outcome).await;
    print_summary(&summary, out);
    Ok(summary.exit_code)
}

/// Feeds the files whose upload failed back into the pipeline, as if walked again.
fn failed_uploads_source(root: PathBuf, paths: Vec<String>) -> mpsc::Receiver<WalkEvent> {
    let list = paths.join("\n");
    walk::spawn_list(root, Box::new(std::io::Cursor::new(list)), 256)
}

/// `/task/retry` with the usual backoff on transient answers (503, 429 with Retry-After,
/// a dropped connection).
async fn task_retry_patiently(client: &Client, task: Id, ids: &[Id]) -> Result<(), ApiError> {
    let req = RetryFiles {
        task_id: task,
        ids: ids.to_vec(),
    };
    RetryPolicy::TASK_RETRY
        .run("/task/retry", || async {
            client.send(&req).await.map(drop)
        })
        .await
}

/// Asks `/task/retry` for every file whose ingestion failed for good, one call per task.
async fn redrive_ingestion(
    journal: &Journal,
    client: &Client,
    stats: &RunStats,
) -> Result<(), Failure> {
    let failures = journal
        .ingest_failures()
        .await
        .map_err(|e| Failure::new(Exit::Failures, e))?;
    let mut by_task: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    for (task, file) in failures {
        by_task.entry(task).or_default().push(file);
    }
    for (task, files) in by_task {
        for ids in files.chunks(500) {
            match task_retry_patiently(client, task, ids).await {
                Ok(()) => {
                    RunStats::add(&stats.counters.ingest_retries, ids.len() as u64);
                    journal
                        .mark_retried(task, ids.to_vec())
                        .await
                        .map_err(|e| Failure::new(Exit::Failures, e))?;
                }
                Err(e) if e.kind == ErrorKind::Auth => return Err(Failure::new(Exit::Auth, e)),
                Err(e) => {
                    // Still failed in the journal: counted by the follow phase and status.
                    tracing::warn!("asking task {task} to load {} files again: {e}", ids.len());
                    RunStats::add(&stats.counters.ingest_failed, ids.len() as u64);
                    stats.note_failure(
                        &format!("{} files of task {task}", ids.len()),
                        "ingest",
                        &e.to_string(),
                    );
                }
            }
        }
    }
    Ok(())
}
