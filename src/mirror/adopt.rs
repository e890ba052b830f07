//! `--adopt`: a folder the volume already holds (uploaded by the vendor's SDK or a script)
//! is taken over without sending it again. A file new to the journal is recorded as there
//! when its folder's listing shows a file at its path with its size. With `--checksum` a
//! file is sent all the same, since the listing has no hash to compare with.
//!
//! Listings are kept for one planner batch (up to a thousand files) at a time.

use std::sync::Arc;

use crate::api::{Client, Id};
use crate::journal::{Adopted, FileRecord, FileState, Journal, JournalError};
use crate::report::RunStats;
use crate::walk::WalkedFile;

use super::volume::{VolumeView, join};

pub struct Adopter {
    client: Arc<Client>,
    volume: String,
    prefix: Option<String>,
    /// `None` until asked; `Some(false)` when the service has no catalog calls.
    available: Option<bool>,
}

impl Adopter {
    pub fn new(client: Arc<Client>, volume: &str, prefix: Option<String>) -> Adopter {
        Adopter {
            client,
            volume: volume.to_string(),
            prefix,
            available: None,
        }
    }

    /// Records the files of `files` that the volume already holds; returns the rest.
    pub async fn take(
        &mut self,
        journal: &Journal,
        run_id: i64,
        stats: &RunStats,
        files: Vec<WalkedFile>,
        records: Vec<Option<FileRecord>>,
    ) -> Result<(Vec<WalkedFile>, Vec<Option<FileRecord>>), JournalError> {
        let is_new =
            |r: &Option<FileRecord>| r.as_ref().is_none_or(|r| r.state == FileState::Deleted);
        if !records.iter().any(is_new) {
            return Ok((files, records));
        }
        let client = self.client.clone();
        let mut view = VolumeView::new(&client, &self.volume);
        if self.available.is_none() {
            let available = view.catalog_available().await.unwrap_or(false);
            if !available {
                tracing::warn!(
                    "--adopt: the service has no catalog calls to list the volume with; \
                     files are sent as usual"
                );
            }
            self.available = Some(available);
        }
        if self.available != Some(true) {
            return Ok((files, records));
        }
        let mut adopted = Vec::new();
        let mut older = Vec::new();
        let mut keep_files = Vec::with_capacity(files.len());
        let mut keep_records = Vec::with_capacity(records.len());
        for (f, r) in files.into_iter().zip(records) {
            let vpath = match &self.prefix {
                Some(p) => join(p, &f.rel),
                None => f.rel.clone(),
            };
            let entries = if is_new(&r) {
                match view.files_at(&vpath).await {
                    Ok(entries) => entries,
                    Err(e) => {
                        tracing::warn!("--adopt: cannot list the folder of {vpath}: {e}");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            let there = entries.iter().find(|e| e.size == f.size).cloned();
            if there.is_none() && !entries.is_empty() {
                // An older version of this file: sent, then the old one gives way.
                older.push((f.rel.clone(), f.size, f.mtime_ns));
            }
            match there {
                Some(entry) => adopted.push(Adopted {
                    file_id: entry.id.parse::<u64>().ok().map(Id),
                    path: f.rel,
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    inode: f.inode,
                }),
                None => {
                    keep_files.push(f);
                    keep_records.push(r);
                }
            }
        }
        if !older.is_empty() {
            journal.expect_copies(older, run_id).await?;
        }
        if !adopted.is_empty() {
            RunStats::add(&stats.counters.adopted, adopted.len() as u64);
            journal.adopt(adopted, run_id).await?;
        }
        Ok((keep_files, keep_records))
    }
}
