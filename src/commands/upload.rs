//! `moi-ingest upload`.

use std::sync::Arc;

use super::{CommandResult, Output, print_summary};
use crate::api::catalog::{VolumeInfo, is_not_found};
use crate::api::{Client, ErrorKind};
use crate::cli::UploadArgs;
use crate::config::{self, UploadPlan};
use crate::metrics;
use crate::mirror::Change;
use crate::mirror::volume::no_such_call;
use crate::output::{Progress, stdout_line};
use crate::pipeline::{self, Cancel, DryRunSink};
use crate::report::{Exit, Failure, human_bytes, shown};
use crate::run::{Run, RunPlan};

pub async fn upload(args: &UploadArgs, out: Output, cancel: Cancel) -> CommandResult {
    let plan = config::upload(args)?;
    let code = run_upload(plan, out, cancel, "upload").await?;
    Ok(reported_exit(code, &args.success_exit_status))
}

/// The code the process exits with: 0 for a code `--success-exit-status` lists.
fn reported_exit(code: i32, success: &[u8]) -> i32 {
    if success.iter().any(|&s| i32::from(s) == code) {
        tracing::info!("exit {code} reported as 0 (--success-exit-status)");
        0
    } else {
        code
    }
}

/// Runs one upload job end to end; also what the demo runs.
pub async fn run_upload(
    plan: UploadPlan,
    out: Output,
    cancel: Cancel,
    command: &str,
) -> CommandResult {
    let dry_run = plan.settings.dry_run;
    let client = check_volume(&plan).await?;
    let run = Run::start(
        RunPlan {
            command: command.to_string(),
            journal: plan.journal.clone(),
            identity: Some(plan.identity.clone()),
            connection: plan.connection.clone(),
            dry_run,
            client: Some(client),
        },
        cancel,
    )
    .await?;
    run.record_settings(&plan.settings).await?;
    tracing::debug!(
        "{command} {} to volume {} via {}; journal {}",
        plan.settings.root.display(),
        plan.settings.send.volume,
        plan.identity.endpoint,
        plan.journal.display()
    );
    let progress = Progress::start(run.stats().clone(), out.quiet || dry_run);
    let publisher = (!dry_run).then(|| publisher(&plan)).flatten();
    let mut facts = metrics::Facts {
        started_at: metrics::unix_now(),
        window: plan
            .settings
            .max_duration
            .map(|d| d + plan.settings.drain_timeout),
        ..metrics::Facts::default()
    };
    if publisher.is_some() {
        facts.last_success = run.journal().last_success().await.ok().flatten();
        facts.first_run = run.journal().first_run().await.ok().flatten();
    }
    let writer = publisher
        .clone()
        .map(|p| p.spawn(run.stats().clone(), facts));
    let sink: Option<DryRunSink> = dry_run.then(|| {
        Arc::new(|path: &str, size: u64, reason: &str| {
            stdout_line(format_args!(
                "would upload\t{}\t{size}\t{reason}",
                shown(path)
            ));
        }) as DryRunSink
    });
    let outcome = pipeline::upload(&plan.settings, run.context(), sink).await;
    progress.finish().await;
    for change in &outcome.changes {
        stdout_line(dry_run_line(change));
    }
    let (would_delete, would_rename) = count_changes(&outcome.changes);
    if let Some(w) = writer {
        w.abort();
    }
    let stats = run.stats().clone();
    let journal = run.journal().clone();
    let summary = run.finish(outcome).await;
    if let Some(publisher) = &publisher {
        facts.last_success = journal.last_success().await.ok().flatten();
        facts.cutoffs_in_a_row = journal.cutoffs_in_a_row(command).await.ok();
        let state = metrics::RunState::Ended {
            exit_code: summary.exit_code,
        };
        let text = metrics::render(&stats, publisher.labels(), state, &facts);
        publisher.publish(&text).await;
    }
    if dry_run && out.json {
        stdout_line(serde_json::to_string(&summary).unwrap_or_default());
    } else if dry_run {
        let changes = plan
            .settings
            .mirror
            .delete
            .then_some((would_delete, would_rename));
        stdout_line(dry_run_total(&summary, changes));
    } else {
        print_summary(&summary, out);
    }
    Ok(summary.exit_code)
}

/// Where the night's metrics go (`--metrics-file`, `--metrics-push`), if anywhere.
fn publisher(plan: &UploadPlan) -> Option<Arc<metrics::Publisher>> {
    let labels = metrics::Labels {
        volume: plan.settings.send.volume.to_string(),
        shard: plan.settings.send.shard,
    };
    let push = plan.metrics_push.as_ref();
    metrics::Publisher::new(plan.metrics_file.clone(), push, labels).map(Arc::new)
}

/// A `--dry-run`'s last line: what the night would do, and (with `--delete`) the
/// deletes and renames.
fn dry_run_total(summary: &crate::report::Summary, changes: Option<(usize, usize)>) -> String {
    let c = &summary.counts;
    let mirror = changes.map_or(String::new(), |(delete, rename)| {
        format!(", delete {delete}, rename {rename}")
    });
    let mut total = format!(
        "would upload {} files, {}{mirror} ({} unchanged, {} skipped); nothing was sent, \
         changed or recorded",
        c.to_upload,
        human_bytes(c.to_upload_bytes),
        c.unchanged,
        c.skipped
    );
    if let Some(why) = &summary.stopped {
        total.push_str(&format!("\n{why}"));
    }
    total
}

/// A `--dry-run` line for a change to the volume, tab-separated like `would upload`.
fn dry_run_line(change: &Change) -> String {
    match change {
        Change::Delete { path, size } => format!("would delete\t{}\t{size}", shown(path)),
        Change::Rename { from, to } => format!("would rename\t{}\t{}", shown(from), shown(to)),
        Change::RenameFolder { from, to, files } => format!(
            "would rename\t{}/\t{}/\t{files} files",
            shown(from),
            shown(to)
        ),
    }
}

/// (deletes, renamed files) among `changes`.
fn count_changes(changes: &[Change]) -> (usize, usize) {
    changes.iter().fold((0, 0), |(d, r), c| match c {
        Change::Delete { .. } => (d + 1, r),
        Change::Rename { .. } => (d, r + 1),
        Change::RenameFolder { files, .. } => (d, r + files),
    })
}

/// Before anything is walked or recorded: does the volume exist, and is the credential
/// taken? A refused run leaves no journal and marks no file failed. A service without
/// `/catalog/volume/info` (a 404 for the call), or a credential that may upload but not
/// read the volume (403), goes on: the first upload tells.
async fn check_volume(plan: &UploadPlan) -> Result<Arc<Client>, Failure> {
    let c = &plan.connection;
    let client = Client::new(&c.endpoint, c.credentials.clone(), c.options.clone())
        .map(Arc::new)
        .map_err(Failure::usage)?;
    let volume = plan.settings.send.volume.as_str();
    let checked = match client
        .send(&VolumeInfo {
            id: volume.to_string(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if no_such_call(&e) => Ok(()),
        Err(e) if e.kind == ErrorKind::Auth && e.status == Some(401) => {
            Err(Failure::new(Exit::Auth, e))
        }
        Err(e) if e.kind == ErrorKind::Permanent && is_not_found(&e) => {
            Err(Failure::usage(format!(
                "the volume {volume} does not exist at {} ({e}). Check --volume (or MOI_VOLUME) \
             and --endpoint; nothing was sent or recorded",
                client.endpoint()
            )))
        }
        Err(e) => {
            tracing::debug!("the volume could not be checked before the run: {e}");
            Ok(())
        }
    };
    checked.map(|()| client)
}
