//! Plan: compare each walked file with the journal and decide whether it goes out.
//!
//! A file is skipped when the journal says the service confirmed it and its size and
//! modification time (and, with `--checksum`, its SHA-256) are unchanged. Files that a
//! previous run was sending when it stopped are sent again and counted, because the
//! service may already hold them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Cancel, SendSettings};
use crate::journal::{FileRecord, FileState, Journal, JournalError, Listed};
use crate::report::RunStats;
use crate::walk::{SkipKind, WalkEvent, WalkedFile};

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

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub listed: Listed,
    pub abs: PathBuf,
    pub wire_name: String,
    pub mime: String,
    pub reason: Reason,
}

/// What one upload request carries.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub files: Vec<PlannedFile>,
}

impl Unit {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.listed.size).sum()
    }
}

/// Whether `file` needs sending, given what the journal recorded of it.
pub fn decide(
    size: u64,
    mtime_ns: i64,
    sha: Option<&[u8]>,
    rec: Option<&FileRecord>,
) -> Option<Reason> {
    let Some(rec) = rec else {
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

/// Groups planned files into requests per `--batch-files` / `--batch-bytes`.
struct Batcher {
    max_files: usize,
    max_bytes: u64,
    open: Unit,
}

impl Batcher {
    /// Adds a file; returns the requests that are full.
    fn push(&mut self, f: PlannedFile) -> Vec<Unit> {
        let mut full = Vec::new();
        let fits = self.open.files.is_empty()
            || (self.open.files.len() < self.max_files
                && self.open.bytes() + f.listed.size <= self.max_bytes);
        if !fits {
            full.push(std::mem::take(&mut self.open));
        }
        self.open.files.push(f);
        if self.open.files.len() >= self.max_files || self.open.bytes() >= self.max_bytes {
            full.push(std::mem::take(&mut self.open));
        }
        full
    }
    fn flush(&mut self) -> Option<Unit> {
        (!self.open.files.is_empty()).then(|| std::mem::take(&mut self.open))
    }
}

pub async fn run(
    mut source: mpsc::Receiver<WalkEvent>,
    journal: Journal,
    out: mpsc::Sender<Unit>,
    send: SendSettings,
    stats: Arc<RunStats>,
    cancel: Cancel,
) -> Result<(), JournalError> {
    let c = &stats.counters;
    let mut batcher = Batcher {
        max_files: send.batch_files.max(1),
        max_bytes: send.batch_bytes.max(1),
        open: Unit::default(),
    };
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
        let mut files: Vec<WalkedFile> = Vec::with_capacity(n);
        for ev in events.drain(..) {
            match ev {
                WalkEvent::File(f) => {
                    RunStats::add(&c.seen, 1);
                    RunStats::add(&c.seen_bytes, f.size);
                    files.push(f);
                }
                WalkEvent::Skipped { path, reason, kind } => {
                    RunStats::add(&c.skipped, 1);
                    match kind {
                        SkipKind::Unusable => {
                            tracing::warn!("skipped {}: {reason}", path.display())
                        }
                        SkipKind::Filtered => {
                            tracing::debug!("skipped {}: {reason}", path.display())
                        }
                    }
                }
            }
        }
        if files.is_empty() {
            continue;
        }
        let records = journal
            .lookup(files.iter().map(|f| f.rel.clone()).collect())
            .await?;
        for (f, rec) in files.into_iter().zip(records) {
            let sha = if send.checksum {
                match sha256_of(&f.abs).await {
                    Ok(h) => Some(h),
                    Err(e) => {
                        RunStats::add(&c.skipped, 1);
                        tracing::warn!("skipped {}: cannot be read: {e}", f.abs.display());
                        continue;
                    }
                }
            } else {
                None
            };
            let Some(reason) = decide(f.size, f.mtime_ns, sha.as_deref(), rec.as_ref()) else {
                RunStats::add(&c.unchanged, 1);
                continue;
            };
            RunStats::add(&c.to_upload, 1);
            RunStats::add(&c.to_upload_bytes, f.size);
            let wire_name = if send.base_names {
                f.rel.rsplit('/').next().unwrap_or(&f.rel).to_string()
            } else {
                f.rel.clone()
            };
            let mime = mime_guess::from_path(&f.rel)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            let planned = PlannedFile {
                listed: Listed {
                    path: f.rel,
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    sha256: sha,
                },
                abs: f.abs,
                wire_name,
                mime,
                reason,
            };
            for unit in batcher.push(planned) {
                if !emit(unit).await {
                    return Ok(());
                }
            }
        }
        // Don't hold a part-filled batch while the walk is slow to produce more.
        if source.is_empty()
            && let Some(unit) = batcher.flush()
            && !emit(unit).await
        {
            return Ok(());
        }
    }
    if let Some(unit) = batcher.flush() {
        emit(unit).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(size: u64) -> PlannedFile {
        PlannedFile {
            listed: Listed {
                path: String::new(),
                size,
                mtime_ns: 0,
                sha256: None,
            },
            abs: PathBuf::new(),
            wire_name: String::new(),
            mime: String::new(),
            reason: Reason::New,
        }
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let mut b = Batcher {
            max_files: 3,
            max_bytes: 100,
            open: Unit::default(),
        };
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
        let mut single = Batcher {
            max_files: 1,
            max_bytes: 1,
            open: Unit::default(),
        };
        assert_eq!(single.push(planned(5)).len(), 1);
    }
}
