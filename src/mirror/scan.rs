//! What the planner learns for the mirror while the walk goes on: which paths the folder
//! still has, which new files are old ones renamed, and whether the walk met errors.
//!
//! Seen paths are kept as 64-bit hashes (8 bytes a file, about 16 MiB for two million),
//! not as paths. A path that is not among them is stat'ed before it counts as gone, so a
//! hash collision can only keep a file, never delete one, and a file the filters now
//! leave out is kept too (rclone and rsync keep excluded files unless told otherwise).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use super::decide::{Shape, shape};
use crate::journal::{FileRecord, FileState, Journal, JournalError};
use crate::walk::WalkedFile;

/// How many of the first walk errors the summary quotes.
const QUOTED_ERRORS: usize = 5;

/// A new file that is a file of the journal under another name.
#[derive(Debug, Clone)]
pub struct Renamed {
    pub from: String,
    pub to: WalkedFile,
    pub shape: Shape,
}

#[derive(Debug, Default)]
pub struct NightScan {
    /// `--delete`: remember the paths seen and hold renames back.
    mirror: bool,
    seen: Mutex<HashSet<u64>>,
    renamed: Mutex<Vec<Renamed>>,
    walk_errors: Mutex<Vec<String>>,
}

pub fn path_hash(path: &str) -> u64 {
    // FNV-1a: stable and cheap; collisions only ever keep a file (see the module doc).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether nothing is at `root/rel` any more (not even something the filters leave out).
pub fn gone_from_disk(root: &Path, rel: &str) -> bool {
    match std::fs::symlink_metadata(root.join(rel)) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ),
    }
}

impl NightScan {
    pub fn new(mirror: bool) -> Self {
        NightScan {
            mirror,
            ..NightScan::default()
        }
    }

    pub fn saw(&self, files: &[WalkedFile]) {
        if !self.mirror {
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.extend(files.iter().map(|f| path_hash(&f.rel)));
        }
    }

    pub fn seen(&self, path: &str) -> bool {
        self.seen
            .lock()
            .map(|s| s.contains(&path_hash(path)))
            .unwrap_or(true)
    }

    pub fn seen_count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn walk_error(&self, what: String) {
        if let Ok(mut e) = self.walk_errors.lock()
            && e.len() < QUOTED_ERRORS
        {
            e.push(what);
        }
    }

    pub fn walk_errors(&self) -> Vec<String> {
        self.walk_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    pub fn take_renamed(&self) -> Vec<Renamed> {
        self.renamed
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Holds back the files of `files` that are renames the catalog can do in place
    /// (same folder, or a folder renamed); returns the rest with their records. A file is
    /// a rename when it is new to the journal and a file the volume holds had its
    /// (device, inode), size and modification time, at a path that is gone from disk.
    pub async fn hold_renames(
        &self,
        journal: &Journal,
        root: &Path,
        files: Vec<WalkedFile>,
        records: Vec<Option<FileRecord>>,
    ) -> Result<(Vec<WalkedFile>, Vec<Option<FileRecord>>), JournalError> {
        let is_new =
            |r: &Option<FileRecord>| r.as_ref().is_none_or(|r| r.state == FileState::Deleted);
        if !self.mirror || !records.iter().any(is_new) {
            return Ok((files, records));
        }
        let asked: Vec<(u64, u64)> = files
            .iter()
            .zip(&records)
            .filter(|(f, r)| is_new(r) && f.inode != (0, 0))
            .map(|(f, _)| f.inode)
            .collect();
        let mut found = journal.by_inode(asked).await?.into_iter();
        let mut keep_files = Vec::with_capacity(files.len());
        let mut keep_records = Vec::with_capacity(records.len());
        for (f, r) in files.into_iter().zip(records) {
            let old = if is_new(&r) && f.inode != (0, 0) {
                found.next().flatten()
            } else {
                None
            };
            let renamed = old.filter(|o| {
                o.path != f.rel
                    && o.size == f.size
                    && o.mtime_ns == f.mtime_ns
                    && gone_from_disk(root, &o.path)
            });
            match renamed.map(|o| (shape(&o.path, &f.rel), o.path)) {
                Some((s, from)) if s != Shape::Move => {
                    if let Ok(mut held) = self.renamed.lock() {
                        held.push(Renamed {
                            from,
                            to: f,
                            shape: s,
                        });
                    }
                }
                _ => {
                    keep_files.push(f);
                    keep_records.push(r);
                }
            }
        }
        Ok((keep_files, keep_records))
    }
}
