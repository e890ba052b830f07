//! The walk on several threads (`--checkers N`, rclone's name): on a network share every
//! directory listing and every `stat` is a round trip, so one thread waits through them
//! one after another while the share could answer many at once.
//!
//! The threads share a stack of jobs: a folder to list, or a batch of a folder's entries
//! to look at (one `statx` a file, as the one-thread walk makes). A folder's batches are
//! pushed after its subfolders and the stack is taken from the top, so a folder's files
//! are looked at before its subfolders are listed, and the walk goes deep first: what
//! waits is folders, about the tree's depth times its width at each level, and one
//! folder's entries at a time, never the tree's size. Events leave through the same bounded
//! channel as the one-thread walk's, so a slow upload still holds the walk back. The
//! order of events is not the one-thread walk's name order; nothing depends on it.

use std::fs::DirEntry;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use tokio::sync::mpsc;

use super::{Filters, WalkEvent, classify, hand_over, unreadable};

/// Entries looked at per job: large enough that handing jobs over costs little, small
/// enough that a folder of thousands of files is shared among the threads.
const BATCH: usize = 32;

enum Job {
    /// A folder to list.
    List(PathBuf),
    /// Entries of a listed folder to look at.
    Look(Vec<DirEntry>),
}

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    /// Jobs taken and not finished: the walk is over when none are and none wait.
    busy: usize,
    /// Nobody listens any more, or the walk is over.
    done: bool,
}

struct Stack {
    state: Mutex<State>,
    changed: Condvar,
}

impl Stack {
    /// The next job; `None` when the walk is over.
    fn take(&self) -> Option<Job> {
        let mut st = self.state.lock().ok()?;
        loop {
            if st.done {
                return None;
            }
            if let Some(job) = st.jobs.pop() {
                st.busy += 1;
                return Some(job);
            }
            if st.busy == 0 {
                st.done = true;
                self.changed.notify_all();
                return None;
            }
            st = self.changed.wait(st).ok()?;
        }
    }

    /// A job is finished, leaving `more`; `listened` false stops the walk.
    fn finish(&self, more: Vec<Job>, listened: bool) {
        if let Ok(mut st) = self.state.lock() {
            st.busy -= 1;
            st.jobs.extend(more);
            if !listened {
                st.done = true;
            }
            self.changed.notify_all();
        }
    }
}

pub(super) fn walk(root: &Path, filters: &Filters, tx: &mpsc::Sender<WalkEvent>, checkers: usize) {
    let stack = Stack {
        state: Mutex::new(State {
            jobs: vec![Job::List(root.to_path_buf())],
            ..State::default()
        }),
        changed: Condvar::new(),
    };
    std::thread::scope(|scope| {
        for _ in 0..checkers.max(1) {
            scope.spawn(|| {
                while let Some(job) = stack.take() {
                    let (more, listened) = run(job, root, filters, tx);
                    stack.finish(more, listened);
                }
            });
        }
    });
}

/// Does one job; returns the jobs it leaves, and whether the events still have a reader.
fn run(job: Job, root: &Path, filters: &Filters, tx: &mpsc::Sender<WalkEvent>) -> (Vec<Job>, bool) {
    match job {
        Job::List(dir) => list(&dir, root, filters, tx),
        Job::Look(entries) => {
            for entry in entries {
                let path = entry.path();
                let event = match entry.file_type() {
                    Ok(ft) => classify(root, &path, ft, || entry.metadata(), filters),
                    Err(e) => Some(unreadable(path, &e)),
                };
                if !hand_over(tx, event) {
                    return (Vec::new(), false);
                }
            }
            (Vec::new(), true)
        }
    }
}

/// Lists `dir`: its subfolders to list, its other entries to look at in batches. The
/// entry's type comes from the listing itself (no `stat` for it), as in the one-thread walk.
fn list(
    dir: &Path,
    root: &Path,
    filters: &Filters,
    tx: &mpsc::Sender<WalkEvent>,
) -> (Vec<Job>, bool) {
    let read = std::fs::read_dir(dir).and_then(|rd| rd.collect::<std::io::Result<Vec<_>>>());
    let entries = match read {
        Ok(entries) => entries,
        Err(e) => {
            return (
                Vec::new(),
                hand_over(tx, Some(unreadable(dir.to_path_buf(), &e))),
            );
        }
    };
    let mut folders = Vec::new();
    let mut others = Vec::new();
    for entry in entries {
        match entry.file_type() {
            Ok(ft) if ft.is_dir() => {
                let path = entry.path();
                if filters.enters(root, &path) {
                    folders.push(Job::List(path));
                }
            }
            Ok(_) => others.push(entry),
            Err(e) => {
                if !hand_over(tx, Some(unreadable(entry.path(), &e))) {
                    return (Vec::new(), false);
                }
            }
        }
    }
    // The batches on top: a folder's files are looked at before its subfolders are
    // listed, so what waits on the stack is folders (a few per level), never the entries
    // of every folder listed so far.
    let mut jobs = folders;
    while !others.is_empty() {
        let rest = others.split_off(others.len().min(BATCH));
        jobs.push(Job::Look(std::mem::replace(&mut others, rest)));
    }
    (jobs, true)
}
