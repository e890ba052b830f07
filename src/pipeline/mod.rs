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
mod triage;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::model::Dedup;
use crate::api::{Client, VolumeId};
use crate::journal::{Journal, JournalError};
use crate::mirror::scan::NightScan;
use crate::mirror::{self, Change, MirrorSettings};
use crate::report::{Exit, RunStats};
use crate::walk::{self, WalkEvent, WalkOptions};

pub use cause::{Cancel, Cause};
pub use follow::FollowSettings;

/// What the upload's `dedup` part says (see the README's "Dedup" section).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DedupMode {
    /// `replace` by name only where a version of the file may already be stored at its path
    /// (re-sends, retries), and only when no other path in the journal shares its base
    /// name; nothing otherwise. Never loses a file whatever `name` means to the service.
    #[default]
    Auto,
    /// `{"by": BY, "strategy": "replace"}` on every request.
    Replace,
    /// `{"by": BY, "strategy": "skip"}` on every request.
    Skip,
    /// No `dedup` part at all (for a service that refuses it).
    Off,
}

impl DedupMode {
    /// The `dedup` part every request carries, for the modes that fix one.
    pub fn fixed(self, by: &[String]) -> Option<Dedup> {
        let strategy = match self {
            DedupMode::Replace => "replace",
            DedupMode::Skip => "skip",
            DedupMode::Auto | DedupMode::Off => return None,
        };
        Some(Dedup {
            by: by.to_vec(),
            strategy: strategy.into(),
        })
    }
}

/// How uploads are sent and retried. Recorded in the journal (see [`crate::run`]), so a
/// field added later needs a default.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SendSettings {
    pub volume: VolumeId,
    /// A folder in the volume that every path goes under (`--prefix`), without slashes
    /// at either end.
    pub prefix: Option<String>,
    pub dedup: DedupMode,
    /// `dedup.by` for `--dedup replace|skip` (default `["name"]`).
    pub dedup_by: Vec<String>,
    pub concurrency: usize,
    /// Attempts per file (the first one included) before a transient failure is final.
    pub attempts: u32,
    /// Passes over the files that failed only transiently, the first included (`--retries`).
    pub passes: u32,
    /// Retries the whole run may spend on transient failures.
    pub retry_budget: u64,
    /// First backoff delay; later ones grow exponentially, with full jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Identical permanent errors in a row, with no success between, that stop the run.
    pub breaker: u32,
    /// Send base names instead of paths relative to the folder.
    pub base_names: bool,
    /// Compare content (SHA-256) as well as size and modification time.
    pub checksum: bool,
    /// Pack up to this many files into one request (1: one file per request).
    pub batch_files: usize,
    /// ...as long as the batch stays under this many bytes.
    pub batch_bytes: u64,
    /// At most this many upload requests start per second (`--tps-limit`).
    pub tps_limit: Option<f64>,
    /// `--concurrency auto`: adapt the requests in flight to the service, up to
    /// `concurrency` (then `--max-concurrency`).
    pub adaptive: bool,
    /// Only files whose path hashes to this shard (`--shard K/N`).
    pub shard: Option<Shard>,
    /// How long a service that answered before may go without answering anything before
    /// the run stops with exit 7 (`--unreachable-timeout`).
    pub unreachable_timeout: Duration,
}

/// `--shard K/N`: this process takes the files whose relative path hashes to K of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `path` is this shard's: jump consistent hash (Lamping and Veach) of a
    /// stable 64-bit hash of the path, so that going from N to N+1 shards moves only
    /// 1/(N+1) of the files, and every machine agrees.
    pub fn owns(&self, path: &str) -> bool {
        jump(fnv1a(path.as_bytes()), self.count) == self.index
    }
}

/// FNV-1a, 64 bits: stable across machines and Rust versions (the std hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// Files per request by default. The vendor's SDKs send several files per request in their
/// live tests; the README's performance section has the measurements behind these numbers.
pub const DEFAULT_BATCH_FILES: usize = 32;
/// Largest total size of a multi-file request by default; a larger file goes alone.
pub const DEFAULT_BATCH_BYTES: u64 = 4 * 1024 * 1024;

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            volume: VolumeId::default(),
            prefix: None,
            dedup: DedupMode::Auto,
            dedup_by: vec!["name".into()],
            concurrency: 8,
            attempts: 5,
            passes: 3,
            retry_budget: 10_000,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            breaker: 8,
            base_names: false,
            checksum: false,
            batch_files: DEFAULT_BATCH_FILES,
            batch_bytes: DEFAULT_BATCH_BYTES,
            tps_limit: None,
            adaptive: false,
            shard: None,
            unreachable_timeout: outage::DEFAULT_UNREACHABLE_TIMEOUT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct UploadSettings {
    pub root: PathBuf,
    pub walk: WalkOptions,
    pub send: SendSettings,
    pub follow: FollowSettings,
    /// Upload and stop; ingestion is followed by the next run or `status --follow`.
    pub no_wait: bool,
    pub dry_run: bool,
    /// How long in-flight uploads may take to finish after the first Ctrl-C.
    pub drain_timeout: Duration,
    /// Upload only the files this list names (`--files-from`; `-` is stdin), not the walk.
    pub files_from: Option<PathBuf>,
    /// The cut-off (`--max-duration`): after it no new upload starts, in-flight ones drain
    /// and the run ends with exit 6. It covers the upload phase; following has
    /// `--wait-timeout`.
    pub max_duration: Option<Duration>,
    /// `--delete`, `--max-delete`, `--adopt`.
    pub mirror: MirrorSettings,
}

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

impl UploadSettings {
    /// Uploading `root` to `volume` with every other setting at its default.
    pub fn new(root: PathBuf, volume: VolumeId) -> Self {
        UploadSettings {
            root,
            walk: WalkOptions::default(),
            send: SendSettings {
                volume,
                ..SendSettings::default()
            },
            follow: FollowSettings::default(),
            no_wait: false,
            dry_run: false,
            drain_timeout: Duration::from_secs(30),
            files_from: None,
            max_duration: None,
            mirror: MirrorSettings::default(),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_split_evenly_and_growing_moves_files_only_into_the_new_shard() {
        let paths: Vec<String> = (0..20_000)
            .map(|i| format!("d{}/file-{i}.pdf", i % 97))
            .collect();
        let owner = |p: &str, n: u32| {
            (0..n)
                .find(|k| {
                    Shard {
                        index: *k,
                        count: n,
                    }
                    .owns(p)
                })
                .unwrap()
        };
        let mut per = [0usize; 8];
        for p in &paths {
            per[owner(p, 8) as usize] += 1;
        }
        for n in per {
            assert!((2_250..2_750).contains(&n), "uneven split: {per:?}");
        }
        let moved: Vec<(u32, u32)> = paths
            .iter()
            .map(|p| (owner(p, 8), owner(p, 9)))
            .filter(|(a, b)| a != b)
            .collect();
        assert!(
            moved.iter().all(|(_, to)| *to == 8),
            "a file moved between old shards"
        );
        let share = moved.len() as f64 / paths.len() as f64;
        assert!(
            (0.09..0.13).contains(&share),
            "{share} moved, about 1/9 expected"
        );
    }
}
