//! The walks on one thread: depth first in name order (`--checkers 1`, and the start of
//! every walk), and with `--follow-symlinks` through walkdir, which detects loops.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use walkdir::WalkDir;

use super::*;

/// The walk without following symlinks, the default: each folder's entries in name order,
/// depth first (the order walkdir gives). Each file's metadata is read relative to its
/// open folder (`statx` on the folder's descriptor and the bare name), so the kernel
/// resolves one name per file instead of the whole path: a rerun of millions of unchanged
/// files is mostly this walk, and `find` works the same way.
pub(super) fn walk_physical(root: &Path, filters: &Filters, tx: &mpsc::Sender<WalkEvent>) {
    let list = |dir: &Path| -> Result<Vec<std::fs::DirEntry>, (PathBuf, std::io::Error)> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))? {
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => return Err((dir.to_path_buf(), e)),
            }
        }
        // Reversed, so that popping from the end yields name order.
        entries.sort_by_cached_key(|e| std::cmp::Reverse(e.file_name()));
        Ok(entries)
    };
    let mut stack = match list(root) {
        Ok(entries) => vec![entries],
        Err((path, e)) => {
            hand_over(tx, Some(unreadable(path, &e)));
            return;
        }
    };
    while let Some(top) = stack.last_mut() {
        let Some(entry) = top.pop() else {
            stack.pop();
            continue;
        };
        let path = entry.path();
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(e) => {
                if !hand_over(tx, Some(unreadable(path, &e))) {
                    return;
                }
                continue;
            }
        };
        if ft.is_dir() {
            if filters.enters(root, &path) {
                match list(&path) {
                    Ok(entries) => stack.push(entries),
                    Err((path, e)) => {
                        if !hand_over(tx, Some(unreadable(path, &e))) {
                            return;
                        }
                    }
                }
            }
            continue;
        }
        let facts = || entry.metadata().map(|m| Facts::from(&m));
        let event = classify(root, &path, ft.into(), facts, filters);
        if !hand_over(tx, event) {
            return;
        }
    }
}

/// The walk with `--follow-symlinks`: walkdir, which detects symlink loops.
pub(super) fn walk_following(root: &Path, filters: &Filters, tx: &mpsc::Sender<WalkEvent>) {
    let walker = WalkDir::new(root)
        .follow_links(filters.options.follow_symlinks)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !e.file_type().is_dir() || filters.enters(root, e.path())
        });
    for entry in walker {
        let event = match entry {
            Err(e) => {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.to_path_buf());
                let (reason, why) = if e.loop_ancestor().is_some() {
                    (
                        "symlink loop: it points back to a folder above it".to_string(),
                        SkipWhy::SymlinkLoop,
                    )
                } else {
                    (
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| format!("cannot be read: {io}")),
                        SkipWhy::Unreadable,
                    )
                };
                Some(WalkEvent::Skipped { path, reason, why })
            }
            Ok(e) if e.file_type().is_dir() => None,
            Ok(e) => classify(
                root,
                e.path(),
                e.file_type().into(),
                || {
                    e.metadata()
                        .map(|m| Facts::from(&m))
                        .map_err(std::io::Error::from)
                },
                filters,
            ),
        };
        if !hand_over(tx, event) {
            return;
        }
    }
}
