//! Batching: planned files grouped into upload requests.

use super::{DedupClass, PlannedFile, Unit};

/// Groups planned files into requests per `--batch-files` / `--batch-bytes`, one open
/// request per dedup class (a request has one `dedup` part for all its files).
pub(super) struct Batcher {
    max_files: usize,
    max_bytes: u64,
    open: [Unit; 3],
}

impl Batcher {
    pub(super) fn new(max_files: usize, max_bytes: u64) -> Batcher {
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
    pub(super) fn push(&mut self, f: PlannedFile) -> Vec<Unit> {
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

    pub(super) fn flush(&mut self) -> Vec<Unit> {
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

#[cfg(test)]
mod tests {
    use super::super::Reason;
    use super::*;
    use crate::api::UploadSource;
    use crate::journal::Listed;
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
}
