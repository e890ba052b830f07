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
use crate::journal::{FileRecord, FileState, Journal, JournalError, Listed, REFUSED};
use crate::mirror::adopt::Adopter;
use crate::mirror::scan::NightScan;
use crate::report::{RunStats, shown};
use crate::walk::{SkipKind, SkipWhy, WalkEvent, WalkedFile};

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

/// Whether `file` needs sending, given what the journal recorded of it.
pub fn decide(
    size: u64,
    mtime_ns: i64,
    sha: Option<&[u8]>,
    rec: Option<&FileRecord>,
) -> Option<Reason> {
    let Some(rec) = rec.filter(|r| r.state != FileState::Deleted) else {
        return Some(Reason::New);
    };
    if rec.in_flight {
        return Some(Reason::Interrupted);
    }
    let same_content = sha.is_none_or(|h| rec.sha256.as_deref() == Some(h));
    if rec.size != size || rec.mtime_ns != mtime_ns || !same_content {
        return Some(Reason::Changed);
    }
    match rec.state {
        s if s.is_confirmed() => None,
        // Ingestion failures are re-driven by /task/retry, not by sending the file again.
        FileState::Failed if rec.fail_stage.as_deref() == Some("ingest") => None,
        FileState::Failed => Some(Reason::Failed),
        _ => Some(Reason::Unconfirmed),
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

/// Groups planned files into requests per `--batch-files` / `--batch-bytes`, one open
/// request per dedup class (a request has one `dedup` part for all its files).
struct Batcher {
    max_files: usize,
    max_bytes: u64,
    open: [Unit; 3],
}

impl Batcher {
    fn new(max_files: usize, max_bytes: u64) -> Batcher {
        Batcher {
            max_files: max_files.max(1),
            max_bytes: max_bytes.max(1),
            open: DedupClass::ALL.map(|dedup| Unit {
                files: Vec::new(),
                dedup,
            }),
        }
    }

    fn slot(&mut self, class: DedupClass) -> &mut Unit {
        let i = DedupClass::ALL
            .iter()
            .position(|c| *c == class)
            .unwrap_or(0);
        &mut self.open[i]
    }

    /// Adds a file; returns the requests that are full.
    fn push(&mut self, f: PlannedFile) -> Vec<Unit> {
        let (max_files, max_bytes) = (self.max_files, self.max_bytes);
        let open = self.slot(f.dedup);
        let take = |u: &mut Unit| Unit {
            files: std::mem::take(&mut u.files),
            dedup: u.dedup,
        };
        let mut full = Vec::new();
        let fits = open.files.is_empty()
            || (open.files.len() < max_files && open.bytes() + f.listed.size <= max_bytes);
        if !fits {
            full.push(take(open));
        }
        open.files.push(f);
        if open.files.len() >= max_files || open.bytes() >= max_bytes {
            full.push(take(open));
        }
        full
    }

    fn flush(&mut self) -> Vec<Unit> {
        self.open
            .iter_mut()
            .filter(|u| !u.files.is_empty())
            .map(|u| Unit {
                files: std::mem::take(&mut u.files),
                dedup: u.dedup,
            })
            .collect()
    }
}

/// The file's path in the volume: below `--prefix`, and only the base name with
/// `--base-names`.
pub fn wire_name(rel: &str, send: &SendSettings) -> String {
    let name = if send.base_names {
        rel.rsplit('/').next().unwrap_or(rel)
    } else {
        rel
    };
    match &send.prefix {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
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

pub async fn run(
    mut source: mpsc::Receiver<WalkEvent>,
    out: mpsc::Sender<Unit>,
    ctx: PlanContext,
) -> Result<(), JournalError> {
    let PlanContext {
        journal,
        send,
        dry_run,
        stats,
        cancel,
        scan,
        root,
        mut adopter,
        run_id,
    } = ctx;
    let c = &stats.counters;
    let mut batcher = Batcher::new(send.batch_files, send.batch_bytes);
    let emit = |unit: Unit| {
        let out = out.clone();
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                r = out.send(unit) => r.is_ok(),
                _ = cancel.soft.cancelled() => false,
            }
        }
    };
    // Large batches: one journal round trip per thousand files on a rerun of millions.
    const BATCH: usize = 1024;
    const GATHER: usize = 256;
    const GATHER_WAITS: usize = 4;
    const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(1);
    let mut events = Vec::with_capacity(BATCH);
    loop {
        events.clear();
        let n = tokio::select! {
            n = source.recv_many(&mut events, BATCH) => n,
            _ = cancel.soft.cancelled() => 0,
        };
        if n == 0 {
            break;
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
        let mut files: Vec<WalkedFile> = Vec::with_capacity(events.len());
        for ev in events.drain(..) {
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
                    match why.kind() {
                        SkipKind::Unreadable => {
                            let what = format!("{}: {reason}", shown(&path.display().to_string()));
                            tracing::warn!("skipped {what}");
                            RunStats::add(&c.walk_errors, 1);
                            stats.note_failure(&path.display().to_string(), "walk", &reason);
                            scan.walk_error(what);
                        }
                        SkipKind::Unusable => {
                            tracing::warn!(
                                "skipped {}: {reason}",
                                shown(&path.display().to_string())
                            )
                        }
                        SkipKind::Filtered => {
                            tracing::debug!(
                                "skipped {}: {reason}",
                                shown(&path.display().to_string())
                            )
                        }
                    }
                }
            }
        }
        if files.is_empty() {
            continue;
        }
        scan.saw(&files);
        let records = journal
            .lookup(files.iter().map(|f| f.rel.clone()).collect())
            .await?;
        let (files, records) = scan.hold_renames(&journal, &root, files, records).await?;
        let (files, records) = match adopter.as_mut() {
            Some(a) if !dry_run && !send.checksum => {
                a.take(&journal, run_id, &stats, files, records).await?
            }
            _ => (files, records),
        };
        let mut planned = Vec::new();
        let mut hashes = Vec::new();
        let mut inodes = Vec::new();
        for (f, rec) in files.into_iter().zip(records) {
            let sha = if send.checksum {
                match sha256_of(&f.abs).await {
                    Ok(h) => Some(h),
                    Err(e) => {
                        RunStats::add(&c.skipped, 1);
                        tracing::warn!(
                            "skipped {}: cannot be read: {e}",
                            shown(&f.abs.display().to_string())
                        );
                        continue;
                    }
                }
            } else {
                None
            };
            // `--checksum` on a tree confirmed before it was used: a file whose size and
            // modification time are as confirmed gets its hash recorded, not sent again.
            if let (Some(h), Some(r)) = (&sha, &rec)
                && r.sha256.is_none()
                && r.state.is_confirmed()
                && !r.in_flight
                && r.size == f.size
                && r.mtime_ns == f.mtime_ns
            {
                hashes.push((f.rel.clone(), h.clone()));
                RunStats::add(&c.unchanged, 1);
                continue;
            }
            // Refused for good and unchanged since: the refusal stands, and is not tonight's
            // failure.
            if let Some(r) = &rec
                && r.state == FileState::Failed
                && r.fail_stage.as_deref() == Some(REFUSED)
                && !r.in_flight
                && r.size == f.size
                && r.mtime_ns == f.mtime_ns
            {
                RunStats::add(&c.refused_earlier, 1);
                continue;
            }
            let Some(reason) = decide(f.size, f.mtime_ns, sha.as_deref(), rec.as_ref()) else {
                RunStats::add(&c.unchanged, 1);
                // Confirmed before inodes were recorded: recorded now, once, so that a
                // later rename of it is known.
                if rec.as_ref().is_some_and(|r| r.inode.is_none()) && f.inode != (0, 0) {
                    inodes.push((f.rel, f.inode));
                }
                continue;
            };
            RunStats::add(&c.to_upload, 1);
            RunStats::add(&c.to_upload_bytes, f.size);
            let mime = mime_guess::from_path(&f.rel)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            planned.push(PlannedFile {
                source: UploadSource {
                    path: f.abs,
                    file_name: wire_name(&f.rel, &send),
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
            });
        }
        if !hashes.is_empty() && !dry_run {
            journal.record_hashes(hashes).await?;
        }
        if !inodes.is_empty() && !dry_run {
            journal.record_inodes(inodes).await?;
        }
        if send.dedup == DedupMode::Auto && !planned.is_empty() && !dry_run {
            let shared = journal
                .base_name_shared(planned.iter().map(|p| p.listed.path.clone()).collect())
                .await?;
            for (p, shared) in planned.iter_mut().zip(shared) {
                if shared && p.reason != Reason::New {
                    // The old version is removed by id once this one is confirmed (the
                    // copies check, where the service has the catalog calls).
                    tracing::debug!(
                        "{} is sent again without a dedup part: another path has the same \
                         base name, which a service that reads dedup names as base names \
                         would replace",
                        p.listed.path
                    );
                }
                p.dedup = match (shared, p.reason) {
                    (true, _) => DedupClass::Never,
                    (false, Reason::New) => DedupClass::OnRetry,
                    (false, _) => DedupClass::Always,
                };
            }
        }
        for p in planned {
            // Checked at each hand-over (which waits for an upload slot): once the walk
            // has ended and this batch is decided, the totals are known.
            note_walk_end(&source, &stats);
            for unit in batcher.push(p) {
                if !emit(unit).await {
                    return Ok(());
                }
            }
        }
        // Don't hold a part-filled batch while the walk is slow to produce more.
        if source.is_empty() {
            for unit in batcher.flush() {
                if !emit(unit).await {
                    return Ok(());
                }
            }
        }
    }
    // Every file is listed and planned: the totals are known from here on.
    stats
        .walk_done
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for unit in batcher.flush() {
        if !emit(unit).await {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn planned(size: u64) -> PlannedFile {
        PlannedFile {
            listed: Listed {
                path: String::new(),
                size,
                mtime_ns: 0,
                sha256: None,
                inode: (0, 0),
            },
            source: UploadSource {
                path: PathBuf::new(),
                file_name: String::new(),
                mime_type: String::new(),
                size,
                mtime_ns: 0,
            },
            reason: Reason::New,
            dedup: DedupClass::Never,
        }
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let mut b = Batcher::new(3, 100);
        let mut units = Vec::new();
        for size in [10, 10, 10, 10, 95, 10, 500, 1] {
            units.extend(b.push(planned(size)));
        }
        units.extend(b.flush());
        let sizes: Vec<Vec<u64>> = units
            .iter()
            .map(|u| u.files.iter().map(|f| f.listed.size).collect())
            .collect();
        assert_eq!(
            sizes,
            vec![
                vec![10, 10, 10],
                vec![10],
                vec![95],
                vec![10],
                vec![500],
                vec![1]
            ]
        );
        let mut single = Batcher::new(1, 1);
        assert_eq!(single.push(planned(5)).len(), 1);
    }

    #[test]
    fn batches_never_mix_dedup_classes() {
        let mut b = Batcher::new(10, 1000);
        let mut changed = planned(1);
        changed.dedup = DedupClass::Always;
        assert!(b.push(planned(1)).is_empty());
        assert!(b.push(changed).is_empty());
        assert!(b.push(planned(1)).is_empty());
        let units = b.flush();
        let shapes: Vec<(DedupClass, usize)> =
            units.iter().map(|u| (u.dedup, u.files.len())).collect();
        assert_eq!(
            shapes,
            vec![(DedupClass::Never, 2), (DedupClass::Always, 1)]
        );
    }

    #[test]
    fn wire_names_go_under_the_prefix() {
        let mut s = SendSettings::default();
        assert_eq!(wire_name("a/b.pdf", &s), "a/b.pdf");
        s.prefix = Some("nightly/2026".into());
        assert_eq!(wire_name("a/b.pdf", &s), "nightly/2026/a/b.pdf");
        s.base_names = true;
        assert_eq!(wire_name("a/b.pdf", &s), "nightly/2026/b.pdf");
    }
}
