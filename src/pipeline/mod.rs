//! The stages of a run, joined by bounded channels and stopped by one pair of tokens:
//!
//! ```text
//! walk ──▶ plan ──▶ send ──▶ record ──▶ follow ──▶ summary
//! ```
//!
//! [`plan`] compares each walked file with the journal, [`send`] uploads with bounded
//! concurrency, [`record`] commits the answers in bulk, [`follow`] polls ingestion and
//! re-drives failures.
//! Every stage reports into [`RunStats`]; none of them prints.

mod cause;
pub mod follow;
pub mod limiter;
pub mod outage;
pub mod pace;
pub mod plan;
pub mod record;
pub mod send;
mod settings;
mod triage;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::Client;
use crate::journal::{Journal, JournalError};
use crate::mirror::scan::NightScan;
use crate::mirror::{self, Change};
use crate::report::{Exit, RunStats};
use crate::walk::{self, WalkEvent};

pub use cause::{Cancel, Cause};
pub use follow::FollowSettings;
pub use settings::{
    DEFAULT_BATCH_BYTES, DEFAULT_BATCH_FILES, DedupMode, SendSettings, Shard, UploadSettings,
};

/// The outcome of one `upload` run, before it is turned into a summary.
#[derive(Debug)]
pub struct RunOutcome {
    pub exit: Exit,
    pub stopped: Option<String>,
    /// What the night changed in the volume besides uploads, or would have (`--dry-run`).
    pub changes: Vec<Change>,
}

impl RunOutcome {
    pub fn new(exit: Exit, stopped: Option<String>) -> RunOutcome {
        RunOutcome {
            exit,
            stopped,
            changes: Vec::new(),
        }
    }

    /// A run that stopped for `cause`, told as `why`.
    pub fn stopped(cause: &Cause, why: String) -> RunOutcome {
        RunOutcome::new(cause.exit(), Some(why))
    }
}

impl From<Cause> for RunOutcome {
    /// A run stopped by a failure, told as the failure says.
    fn from(cause: Cause) -> RunOutcome {
        let why = cause.reason().unwrap_or("stopped").to_string();
        RunOutcome::stopped(&cause, why)
    }
}

/// Lines a dry run prints: what would be uploaded, and why.
pub type DryRunSink = Arc<dyn Fn(&str, u64, &str) + Send + Sync>;

/// What one run works with, besides its settings.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub client: Arc<Client>,
    pub journal: Journal,
    /// The journal's row for this run (0 when the run is not recorded, as in a dry run).
    pub run_id: i64,
    pub stats: Arc<RunStats>,
    pub cancel: Cancel,
}

/// Runs walk → plan → send (→ follow) for one folder.
pub async fn upload(
    settings: &UploadSettings,
    run: RunContext,
    dry_run_sink: Option<DryRunSink>,
) -> RunOutcome {
    let source = match &settings.files_from {
        Some(list) => open_list(list).map(|l| walk::spawn_list(settings.root.clone(), l, 4096)),
        None => walk::spawn(settings.root.clone(), settings.walk.clone(), 4096)
            .map_err(|e| e.to_string()),
    };
    let walk_rx = match source {
        Ok(rx) => rx,
        Err(e) => return Cause::Usage(e).into(),
    };
    run_stages(settings, run, walk_rx, dry_run_sink).await
}

/// The stages after the source: shared by `upload` (the walk) and `retry` (the journal's
/// failed files).
pub async fn run_stages(
    settings: &UploadSettings,
    run: RunContext,
    source: mpsc::Receiver<WalkEvent>,
    dry_run_sink: Option<DryRunSink>,
) -> RunOutcome {
    let scan = Arc::new(NightScan::new(settings.mirror.delete));
    send_stage(settings, &run, source, dry_run_sink, scan.clone()).await;
    if let Some(failure) = run.cancel.failure() {
        return failure.into();
    }
    let RunContext {
        client,
        journal,
        stats,
        cancel,
        ..
    } = &run;
    if settings.dry_run {
        let mut outcome = RunOutcome::new(Exit::Success, None);
        if settings.mirror.delete {
            match mirror_changes(settings, &run, &scan).await {
                Ok((changes, withheld)) => {
                    outcome.changes = changes;
                    if withheld.is_some() {
                        outcome.exit = Exit::DeletesWithheld;
                        outcome.stopped = withheld;
                    }
                }
                Err(failure) => return failure.into(),
            }
        }
        return outcome;
    }
    match cancel.cause() {
        Some(Cause::Signal) => {
            let why = "interrupted; the journal holds everything confirmed so far";
            return RunOutcome::stopped(&Cause::Signal, why.into());
        }
        Some(Cause::Deadline) => {
            let c = stats.counters.snapshot();
            let why = format!(
                "stopped at the --max-duration cut-off after {} of {} files; the rest is \
                 pending and the next run continues it",
                c.uploaded, c.to_upload
            );
            return RunOutcome::stopped(&Cause::Deadline, why);
        }
        _ => {}
    }
    let (upload_exit, notes) = match after_uploads(settings, &run, &scan).await {
        Ok(end) => end,
        Err(failure) => return failure.into(),
    };
    let mut outcome = if settings.no_wait {
        RunOutcome::new(upload_exit, None)
    } else {
        finish_with_follow(
            &settings.follow,
            client,
            journal,
            stats,
            cancel,
            upload_exit,
        )
        .await
    };
    if !notes.is_empty() {
        let mut all = notes.join("; ");
        if let Some(s) = outcome.stopped.take() {
            all = format!("{s}; {all}");
        }
        outcome.stopped = Some(all);
    }
    outcome
}

/// The night's upload verdict, then (when every upload went through) the mirror: its
/// exit before following ingestion, and what the summary should add.
async fn after_uploads(
    settings: &UploadSettings,
    run: &RunContext,
    scan: &NightScan,
) -> Result<(Exit, Vec<String>), Cause> {
    let c = run.stats.counters.snapshot();
    if c.failed > 0 || c.changed > 0 {
        let notes = if settings.mirror.delete {
            vec![
                "some uploads failed, so nothing was deleted tonight; the next night that \
                 uploads everything deletes"
                    .to_string(),
            ]
        } else {
            Vec::new()
        };
        return Ok((Exit::Failures, notes));
    }
    // An unreadable folder fails the night as an unreadable file does; with --delete, the
    // rail that withholds the deletes says so more precisely (exit 8).
    let walked = if c.walk_errors > 0 {
        Exit::Failures
    } else {
        Exit::Success
    };
    let MirrorEnd { exit, notes } = mirror_night(settings, run, scan).await?;
    Ok((if exit != Exit::Success { exit } else { walked }, notes))
}

/// Plan and send: the planner on its own task, the sender here, until the source ends.
async fn send_stage(
    settings: &UploadSettings,
    run: &RunContext,
    source: mpsc::Receiver<WalkEvent>,
    dry_run_sink: Option<DryRunSink>,
    scan: Arc<NightScan>,
) {
    let RunContext {
        client,
        journal,
        run_id,
        stats,
        cancel,
    } = run.clone();
    let (units_tx, units_rx) = mpsc::channel(settings.send.concurrency * 2);
    let planner = tokio::spawn(plan::run(
        source,
        units_tx,
        plan::PlanContext {
            journal: journal.clone(),
            send: settings.send.clone(),
            dry_run: settings.dry_run,
            stats: stats.clone(),
            cancel: cancel.clone(),
            scan,
            root: settings.root.clone(),
            adopter: settings.mirror.adopt.then(|| {
                mirror::adopt::Adopter::new(
                    client.clone(),
                    settings.send.volume.as_str(),
                    settings.send.prefix.clone(),
                )
            }),
            run_id,
        },
    ));
    if let Some(sink) = dry_run_sink {
        let mut units_rx = units_rx;
        while let Some(unit) = units_rx.recv().await {
            for f in &unit.files {
                sink(&f.listed.path, f.listed.size, f.reason.as_str());
            }
        }
    } else {
        let drain = drain_guard(cancel.clone(), settings.drain_timeout);
        let cut_off = settings.max_duration.map(|d| {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                cancel.stop(Cause::Deadline);
            })
        });
        send::run(
            units_rx,
            client.clone(),
            journal.clone(),
            run_id,
            &settings.send,
            stats.clone(),
            cancel.clone(),
        )
        .await;
        drain.abort();
        if let Some(t) = cut_off {
            t.abort();
        }
    }
    match planner.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => _ = cancel.stop(Cause::from_journal(&e)),
        Err(e) => _ = cancel.stop(Cause::Journal(format!("the planning stage failed: {e}"))),
    }
    stats
        .walk_done
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

fn mirror_scope<'a>(settings: &'a UploadSettings, run: &'a RunContext) -> mirror::Scope<'a> {
    mirror::Scope {
        client: &run.client,
        journal: &run.journal,
        run_id: run.run_id,
        stats: &run.stats,
        volume: settings.send.volume.as_str(),
        prefix: settings.send.prefix.as_deref(),
        root: &settings.root,
    }
}

/// `--dry-run --delete`: what the night would rename and delete, or why it would not.
async fn mirror_changes(
    settings: &UploadSettings,
    run: &RunContext,
    scan: &NightScan,
) -> Result<(Vec<Change>, Option<String>), Cause> {
    let scope = mirror_scope(settings, run);
    let (plan, _) = mirror::prepare(&scope, &settings.mirror, scan, true)
        .await
        .map_err(|e| Cause::from_journal(&e))?;
    Ok((plan.changes, plan.withheld))
}

struct MirrorEnd {
    exit: Exit,
    notes: Vec<String>,
}

/// After every upload of the night was confirmed: one version per path, then (with
/// `--delete`) renames, the re-sends renames need, and deletes.
async fn mirror_night(
    settings: &UploadSettings,
    run: &RunContext,
    scan: &NightScan,
) -> Result<MirrorEnd, Cause> {
    let scope = mirror_scope(settings, run);
    let journal_stop = |e: JournalError| Cause::from_journal(&e);
    let mut trouble = mirror::remove_extra_copies(&scope)
        .await
        .map_err(journal_stop)?;
    let mut exit = Exit::Success;
    if settings.mirror.delete {
        let (plan, t) = mirror::prepare(&scope, &settings.mirror, scan, false)
            .await
            .map_err(journal_stop)?;
        trouble.extend(t);
        if !plan.resend.is_empty() {
            let (tx, rx) = mpsc::channel(plan.resend.len().max(1));
            for f in plan.resend.iter().cloned() {
                let _ = tx.try_send(WalkEvent::File(f));
            }
            drop(tx);
            let quiet = Arc::new(NightScan::new(false));
            send_stage(settings, run, rx, None, quiet).await;
            if let Some(failure) = run.cancel.failure() {
                return Err(failure);
            }
            if run.stats.counters.snapshot().failed > 0 {
                trouble.push(
                    "a renamed file could not be sent at its new path, so nothing was \
                     deleted tonight"
                        .into(),
                );
                return Ok(MirrorEnd {
                    exit: Exit::Failures,
                    notes: trouble,
                });
            }
        }
        if let Some(why) = plan.withheld {
            return Ok(MirrorEnd {
                exit: Exit::DeletesWithheld,
                notes: [vec![why], trouble].concat(),
            });
        }
        trouble.extend(mirror::finish(&scope, plan).await.map_err(journal_stop)?);
    }
    if !trouble.is_empty() {
        for t in &trouble {
            tracing::warn!("{t}");
        }
        exit = Exit::Failures;
    }
    Ok(MirrorEnd {
        exit,
        notes: trouble,
    })
}

/// Follows ingestion, then merges its result with the upload's.
pub async fn finish_with_follow(
    follow: &FollowSettings,
    client: &Client,
    journal: &Journal,
    stats: &Arc<RunStats>,
    cancel: &Cancel,
    upload_exit: Exit,
) -> RunOutcome {
    stats
        .following
        .store(true, std::sync::atomic::Ordering::Relaxed);
    match follow::run(follow, client, journal, stats, cancel).await {
        Err(failure) => failure.into(),
        Ok(f) => {
            let interrupted = cancel.interrupted();
            let exit = if interrupted {
                Cause::Signal.exit()
            } else if f.failed > 0 {
                Exit::Failures
            } else if upload_exit != Exit::Success {
                upload_exit
            } else if f.pending > 0 {
                Exit::Pending
            } else {
                Exit::Success
            };
            let stopped = if interrupted {
                Some(format!(
                    "interrupted while following ingestion; {} files are still being ingested \
                     and the next run or `moi-ingest status --follow` picks them up",
                    f.pending
                ))
            } else {
                (f.pending > 0).then(|| {
                    format!(
                        "{} files were still being ingested when --wait-timeout ran out; the \
                         next run or `moi-ingest status --follow` picks them up",
                        f.pending
                    )
                })
            };
            RunOutcome::new(exit, stopped)
        }
    }
}

/// The `--files-from` list: a file, or `-` for standard input.
fn open_list(list: &std::path::Path) -> Result<Box<dyn std::io::BufRead + Send>, String> {
    if list.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    std::fs::File::open(list)
        .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn std::io::BufRead + Send>)
        .map_err(|e| format!("cannot read the --files-from list {}: {e}", list.display()))
}

/// After a soft stop, gives in-flight uploads `timeout` to finish, then abandons them.
fn drain_guard(cancel: Cancel, timeout: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        cancel.soft.cancelled().await;
        tokio::select! {
            _ = tokio::time::sleep(timeout) => cancel.hard.cancel(),
            _ = cancel.hard.cancelled() => {}
        }
    })
}
