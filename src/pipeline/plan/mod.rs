//! Plan: compare each walked file with the journal and decide whether it goes out.
//!
//! A file is skipped when the journal says the service confirmed it and its size and
//! modification time (and, with `--checksum`, its SHA-256) are unchanged. Files that a
//! previous run was sending when it stopped are sent again and counted, because the
//! service may already hold them.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Cancel, DedupMode, SendSettings};
use crate::api::UploadSource;
use crate::journal::{FileRecord, Journal, JournalError, Listed};
use crate::mirror::adopt::Adopter;
use crate::mirror::scan::NightScan;
use crate::report::{RunStats, shown};
use crate::walk::{SkipKind, SkipWhy, WalkEvent, WalkedFile};

mod batch;
mod decision;

use batch::Batcher;
pub use decision::{Decision, Seen, decide, dedup_class, plan_file, wire_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    New,
    Changed,
    /// Seen before but never confirmed.
    Unconfirmed,
    /// The last attempt failed; this run tries again.
    Failed,
    /// A previous run stopped while sending it.
    Interrupted,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Changed => "changed",
            Reason::Unconfirmed => "not yet confirmed",
            Reason::Failed => "failed before",
            Reason::Interrupted => "interrupted while sending",
        }
    }
}

/// Under `--dedup auto`, which `dedup` part a file's request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupClass {
    /// None: another path of the same base name exists, so a name-based replace could hit
    /// it under a base-name reading of `name`; or the mode is not auto.
    #[default]
    Never,
    /// A version may already be at this path (changed, interrupted, failed before):
    /// `replace` on every attempt.
    Always,
    /// A new file: no `dedup` on the first attempt; `replace` on a retry, because the
    /// failed attempt may have been stored.
    OnRetry,
}

impl DedupClass {
    const ALL: [DedupClass; 3] = [DedupClass::Never, DedupClass::Always, DedupClass::OnRetry];
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub listed: Listed,
    /// What an upload needs of the file: where it is on disk, its name on the wire, its
    /// MIME type, and the size and mtime to check it against.
    pub source: UploadSource,
    pub reason: Reason,
    pub dedup: DedupClass,
}

/// What one upload request carries. Its files share one dedup class.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub files: Vec<PlannedFile>,
    pub dedup: DedupClass,
}

impl Unit {
    pub(super) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.listed.size).sum()
    }

    pub(super) fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.listed.path.clone()).collect()
    }

    /// The unit sent again by a later pass: its attempts may have been stored, so under
    /// `--dedup auto` it is a retry there (dedup replace).
    pub(super) fn retried(&self) -> Unit {
        let mut unit = self.clone();
        if unit.dedup == DedupClass::OnRetry {
            unit.dedup = DedupClass::Always;
        }
        unit
    }
}

async fn sha256_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().to_vec())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Marks the walk done once it has ended and everything it listed was decided.
fn note_walk_end(source: &mpsc::Receiver<WalkEvent>, stats: &RunStats) {
    if source.is_closed() && source.is_empty() {
        stats
            .walk_done
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the planner works with besides its input and output.
pub struct PlanContext {
    pub journal: Journal,
    pub send: SendSettings,
    pub dry_run: bool,
    pub stats: Arc<RunStats>,
    pub cancel: Cancel,
    /// What the mirror learns from the walk (seen paths, renames, walk errors).
    pub scan: Arc<NightScan>,
    /// The folder the walk's relative paths are below.
    pub root: std::path::PathBuf,
    /// `--adopt`: files the volume already holds are recorded, not sent.
    pub adopter: Option<Adopter>,
    pub run_id: i64,
}

/// Compares walked files with the journal and hands what goes out to send, in requests:
/// [`Planner::process`] for each handful of walk events, [`Planner::finalize`] at the end.
pub struct Planner {
    ctx: PlanContext,
    batcher: Batcher,
    out: mpsc::Sender<Unit>,
}

/// What becomes of a handful of walked files, before their requests are formed.
#[derive(Default)]
struct Decided {
    planned: Vec<PlannedFile>,
    hashes: Vec<(String, Vec<u8>)>,
    inodes: Vec<(String, (u64, u64))>,
}

impl Planner {
    pub fn new(ctx: PlanContext, out: mpsc::Sender<Unit>) -> Planner {
        Planner {
            batcher: Batcher::new(ctx.send.batch_files, ctx.send.batch_bytes),
            ctx,
            out,
        }
    }

    /// One handful of walk events: counted, looked up in the journal, decided, and handed
    /// over in requests. False once send takes no more (the run is stopping).
    pub async fn process(
        &mut self,
        events: Vec<WalkEvent>,
        walk: &mpsc::Receiver<WalkEvent>,
    ) -> Result<bool, JournalError> {
        let files = self.count(events);
        if files.is_empty() {
            return Ok(true);
        }
        let ctx = &mut self.ctx;
        ctx.scan.saw(&files);
        let records = ctx
            .journal
            .lookup(files.iter().map(|f| f.rel.clone()).collect())
            .await?;
        let (files, records) = ctx
            .scan
            .hold_renames(&ctx.journal, &ctx.root, files, records)
            .await?;
        let (files, records) = match ctx.adopter.as_mut() {
            Some(a) if !ctx.dry_run && !ctx.send.checksum => {
                a.take(&ctx.journal, ctx.run_id, &ctx.stats, files, records)
                    .await?
            }
            _ => (files, records),
        };
        let mut decided = self.decide(files, records).await;
        self.record(&mut decided).await?;
        for p in decided.planned {
            // Checked at each hand-over (which waits for an upload slot): once the walk
            // has ended and this batch is decided, the totals are known.
            note_walk_end(walk, &self.ctx.stats);
            for unit in self.batcher.push(p) {
                if !self.emit(unit).await {
                    return Ok(false);
                }
            }
        }
        // Don't hold a part-filled batch while the walk is slow to produce more.
        if walk.is_empty() {
            for unit in self.batcher.flush() {
                if !self.emit(unit).await {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Every file is listed and planned: the totals are known, and the part-filled
    /// requests go out.
    pub async fn finalize(mut self) {
        self.ctx
            .stats
            .walk_done
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for unit in self.batcher.flush() {
            if !self.emit(unit).await {
                break;
            }
        }
    }

    async fn emit(&self, unit: Unit) -> bool {
        tokio::select! {
            r = self.out.send(unit) => r.is_ok(),
            _ = self.ctx.cancel.soft.cancelled() => false,
        }
    }

    /// Counts the events and tells what the walk skipped; returns this shard's files.
    fn count(&self, events: Vec<WalkEvent>) -> Vec<WalkedFile> {
        let PlanContext {
            send, stats, scan, ..
        } = &self.ctx;
        let c = &stats.counters;
        let mut files = Vec::with_capacity(events.len());
        for ev in events {
            match ev {
                // Another shard's file: not this process's to count or send.
                WalkEvent::File(f) if send.shard.is_some_and(|s| !s.owns(&f.rel)) => {}
                WalkEvent::File(f) => {
                    RunStats::add(&c.seen, 1);
                    RunStats::add(&c.seen_bytes, f.size);
                    files.push(f);
                }
                WalkEvent::Skipped { path, reason, why } => {
                    RunStats::add(&c.skipped, 1);
                    let by_reason = match why {
                        SkipWhy::Filtered => Some(&c.skipped_filtered),
                        SkipWhy::Hidden => Some(&c.skipped_hidden),
                        SkipWhy::Symlink | SkipWhy::SymlinkLoop => Some(&c.skipped_symlinks),
                        SkipWhy::Special => Some(&c.skipped_special),
                        SkipWhy::TooLarge => Some(&c.skipped_too_large),
                        SkipWhy::BadName => Some(&c.skipped_bad_names),
                        // Counted as a walk error below.
                        SkipWhy::Unreadable => None,
                    };
                    if let Some(counter) = by_reason {
                        RunStats::add(counter, 1);
                    }
                    // Filtered entries can be millions: their line is built only when the
                    // debug level is on.
                    let what = || format!("{}: {reason}", shown(&path.display().to_string()));
                    match why.kind() {
                        SkipKind::Unreadable => {
                            let what = what();
                            tracing::warn!("skipped {what}");
                            RunStats::add(&c.walk_errors, 1);
                            stats.note_failure(&path.display().to_string(), "walk", &reason);
                            scan.walk_error(what);
                        }
                        SkipKind::Unusable => tracing::warn!("skipped {}", what()),
                        SkipKind::Filtered => tracing::debug!("skipped {}", what()),
                    }
                }
            }
        }
        files
    }

    /// Decides each file against its journal record ([`plan_file`]).
    async fn decide(&self, files: Vec<WalkedFile>, records: Vec<Option<FileRecord>>) -> Decided {
        let PlanContext { send, stats, .. } = &self.ctx;
        let c = &stats.counters;
        let mut decided = Decided::default();
        for (f, rec) in files.into_iter().zip(records) {
            let sha = if send.checksum {
                match sha256_of(&f.abs).await {
                    Ok(h) => Some(h),
                    Err(e) => {
                        RunStats::add(&c.skipped, 1);
                        let path = f.abs.display().to_string();
                        tracing::warn!("skipped {}: cannot be read: {e}", shown(&path));
                        continue;
                    }
                }
            } else {
                None
            };
            let seen = Seen {
                size: f.size,
                mtime_ns: f.mtime_ns,
                sha256: sha.as_deref(),
                inode: f.inode,
            };
            let reason = match plan_file(seen, rec.as_ref()) {
                Decision::Send(reason) => reason,
                Decision::RefusedEarlier => {
                    RunStats::add(&c.refused_earlier, 1);
                    continue;
                }
                Decision::Unchanged => {
                    RunStats::add(&c.unchanged, 1);
                    continue;
                }
                Decision::RecordHash => {
                    RunStats::add(&c.unchanged, 1);
                    decided.hashes.push((f.rel, sha.unwrap_or_default()));
                    continue;
                }
                Decision::RecordInode => {
                    RunStats::add(&c.unchanged, 1);
                    decided.inodes.push((f.rel, f.inode));
                    continue;
                }
            };
            RunStats::add(&c.to_upload, 1);
            RunStats::add(&c.to_upload_bytes, f.size);
            decided.planned.push(planned_file(f, sha, reason, send));
        }
        decided
    }

    /// Writes what the decisions learnt (hashes, inodes) and, under `--dedup auto`, gives
    /// each planned file its request's `dedup` part.
    async fn record(&self, decided: &mut Decided) -> Result<(), JournalError> {
        let PlanContext {
            journal,
            send,
            dry_run,
            ..
        } = &self.ctx;
        if *dry_run {
            return Ok(());
        }
        if !decided.hashes.is_empty() {
            journal
                .record_hashes(std::mem::take(&mut decided.hashes))
                .await?;
        }
        if !decided.inodes.is_empty() {
            journal
                .record_inodes(std::mem::take(&mut decided.inodes))
                .await?;
        }
        if send.dedup == DedupMode::Auto && !decided.planned.is_empty() {
            let paths = decided.planned.iter().map(|p| p.listed.path.clone());
            let shared = journal.base_name_shared(paths.collect()).await?;
            for (p, shared) in decided.planned.iter_mut().zip(shared) {
                if shared && p.reason != Reason::New {
                    tracing::debug!(
                        "{} is sent again without a dedup part: another path has the same \
                         base name, which a service that reads dedup names as base names \
                         would replace",
                        p.listed.path
                    );
                }
                p.dedup = dedup_class(send.dedup, shared, p.reason);
            }
        }
        Ok(())
    }
}

fn planned_file(
    f: WalkedFile,
    sha: Option<Vec<u8>>,
    reason: Reason,
    send: &SendSettings,
) -> PlannedFile {
    let mime = mime_guess::from_path(&f.rel)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    PlannedFile {
        source: UploadSource {
            path: f.abs,
            file_name: wire_name(&f.rel, send),
            mime_type: mime,
            size: f.size,
            mtime_ns: f.mtime_ns,
        },
        listed: Listed {
            path: f.rel,
            size: f.size,
            mtime_ns: f.mtime_ns,
            sha256: sha,
            inode: f.inode,
        },
        reason,
        dedup: DedupClass::Never,
    }
}

/// Large batches: one journal round trip per thousand files on a rerun of millions.
const BATCH: usize = 1024;
const GATHER: usize = 256;
const GATHER_WAITS: usize = 4;
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// The next handful of walk events; none when the walk has ended or the run stops.
async fn gather(source: &mut mpsc::Receiver<WalkEvent>, cancel: &Cancel) -> Vec<WalkEvent> {
    let mut events = Vec::with_capacity(BATCH);
    let n = tokio::select! {
        n = source.recv_many(&mut events, BATCH) => n,
        _ = cancel.soft.cancelled() => 0,
    };
    if n == 0 {
        return Vec::new();
    }
    // The walk hands entries over as it finds them, so a fast walk wakes this loop a few
    // entries at a time: a journal round trip (and a commit) per handful of files, which
    // was half a rerun's time. Waiting a millisecond or two for more costs the first
    // request as much and makes each lookup one of hundreds of files.
    let mut waits = 0;
    while events.len() < GATHER && waits < GATHER_WAITS {
        tokio::time::sleep(GATHER_WAIT).await;
        waits += 1;
        // Nothing new: the walk ended, or is slow (a network disk); go with what there is.
        if source.is_empty() {
            break;
        }
        let room = BATCH - events.len();
        source.recv_many(&mut events, room).await;
    }
    events
}

/// Walk → plan: runs the planner until the walk ends or the run stops.
pub async fn run(
    mut source: mpsc::Receiver<WalkEvent>,
    out: mpsc::Sender<Unit>,
    ctx: PlanContext,
) -> Result<(), JournalError> {
    let cancel = ctx.cancel.clone();
    let mut planner = Planner::new(ctx, out);
    loop {
        let events = gather(&mut source, &cancel).await;
        if events.is_empty() {
            break;
        }
        if !planner.process(events, &source).await? {
            return Ok(());
        }
    }
    planner.finalize().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_planned_under_its_wire_name_and_type() {
        let send = SendSettings {
            prefix: Some("night".into()),
            ..SendSettings::default()
        };
        let f = WalkedFile {
            abs: "/data/a/b.pdf".into(),
            rel: "a/b.pdf".into(),
            size: 3,
            mtime_ns: 9,
            inode: (1, 2),
        };
        let p = planned_file(f, None, Reason::New, &send);
        assert_eq!(p.source.file_name, "night/a/b.pdf");
        assert_eq!(p.source.mime_type, "application/pdf");
        assert_eq!((p.listed.path.as_str(), p.listed.size), ("a/b.pdf", 3));
        assert_eq!(p.dedup, DedupClass::Never);
    }
}
