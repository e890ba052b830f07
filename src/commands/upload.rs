//! `moi-ingest upload`.

use std::sync::Arc;

use super::{Output, client, finish, open_locked, usage};
use crate::cli::UploadArgs;
use crate::config::{self, UploadPlan};
use crate::output::Progress;
use crate::pipeline::{self, Cancel, DryRunSink, RunContext};
use crate::report::{Exit, RunStats};

pub async fn upload(args: &UploadArgs, out: Output, cancel: Cancel) -> i32 {
    match config::upload(args) {
        Ok(plan) => run_upload(plan, out, cancel, "upload").await,
        Err(e) => usage(e),
    }
}

/// Runs one upload job end to end; also what the demo runs.
pub async fn run_upload(plan: UploadPlan, out: Output, cancel: Cancel, command: &str) -> i32 {
    let (_lock, journal) = match open_locked(&plan.journal, Some(&plan.identity)) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let client = match client(&plan.connection) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dry_run = plan.settings.dry_run;
    // A dry run changes nothing, not even the run history.
    let run_id = if dry_run {
        None
    } else {
        match journal.start_run(command).await {
            Ok(id) => Some(id),
            Err(e) => return super::complain(Exit::Failures, e),
        }
    };
    let stats = RunStats::new();
    let progress = Progress::start(stats.clone(), out.quiet || dry_run);
    let sink: Option<DryRunSink> = dry_run.then(|| {
        Arc::new(|path: &str, size: u64, reason: &str| {
            println!("would upload\t{path}\t{size}\t{reason}");
        }) as DryRunSink
    });
    tracing::debug!(
        "{command} {} to volume {} via {}; journal {}",
        plan.settings.root.display(),
        plan.settings.send.volume,
        plan.identity.endpoint,
        plan.journal.display()
    );
    let run = RunContext {
        client,
        journal: journal.clone(),
        run_id: run_id.unwrap_or(0),
        stats: stats.clone(),
        cancel,
    };
    let outcome = pipeline::upload(&plan.settings, run, sink).await;
    progress.finish().await;
    finish(command, &stats, outcome, &journal, run_id, out).await
}
