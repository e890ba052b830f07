//! The walk on several threads (`--checkers N`, rclone's name): on a network share every
//! directory listing and every `stat` is a round trip, so one thread waits through them
//! one after another while the share could answer many at once.
//!
//! One thread takes jobs until the stats show that the file system answers slowly (a
//! share): then all `--checkers` do. On a local disk more threads only cost CPU.
//!
//! The threads share a stack of jobs: a folder to list, or a batch of a folder's entries
//! to look at. Each entry costs one `fstatat` relative to its open folder, as `find`
//! makes: the type comes from the listing where it gives one (`d_type`), and where it does
//! not (`DT_UNKNOWN`, as some FUSE file systems answer) that one stat tells the type too,
//! instead of a second. Measured on the simulated share: 6.1 calls a file before (the
//! listing's type asked by a stat, then the stat again), 2.1 after, as `find`'s 2.2. A
//! folder's batches are
//! pushed after its subfolders and the stack is taken from the top, so a folder's files
//! are looked at before its subfolders are listed, and the walk goes deep first: what
//! waits is folders, about the tree's depth times its width at each level, and one
//! folder's entries at a time, never the tree's size. Events leave through the same bounded
//! channel as the one-thread walk's, so a slow upload still holds the walk back. The
//! order of events is not the one-thread walk's name order; nothing depends on it.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use tokio::sync::mpsc;

use super::{Facts, Filters, Kind, WalkEvent, classify, hand_over, unreadable};

/// Entries looked at per job: large enough that handing jobs over costs little, small
/// enough that a folder of thousands of files is shared among the threads.
const BATCH: usize = 32;

enum Job {
    /// A folder to list.
    List(PathBuf),
    /// Entries of a listed folder to look at.
    Look(Arc<Folder>, Vec<Entry>),
}

/// A listed folder, kept open while its entries wait to be looked at: each is looked at
/// relative to it, so a share resolves one name, not the whole path again.
struct Folder {
    path: PathBuf,
    fd: OwnedFd,
}

/// An entry of a listing: its name, and its kind when the listing told it.
struct Entry {
    name: OsString,
    kind: Option<Kind>,
}

/// The kind a listing or a stat gives; `None`: the listing did not say.
fn kind_of(t: FileType) -> Option<Kind> {
    Some(match t {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        FileType::Socket => Kind::Socket,
        FileType::CharacterDevice | FileType::BlockDevice => Kind::Device,
        FileType::Unknown => return None,
    })
}

/// The walk's facts from a stat, in the units `std` gives them (the journal compares them
/// with earlier nights').
// `struct stat`'s field types differ between architectures: the casts are not all no-ops.
#[allow(clippy::unnecessary_cast)]
fn facts_of(st: &Stat) -> Facts {
    let secs = st.st_mtime as i64;
    let nanos = st.st_mtime_nsec as i64;
    Facts {
        len: st.st_size as u64,
        mtime_ns: secs.saturating_mul(1_000_000_000).saturating_add(nanos),
        inode: (st.st_dev as u64, st.st_ino as u64),
    }
}

/// One `fstatat` of `name` in `folder`, not following a symlink.
fn stat_in(folder: &Folder, name: &OsString) -> std::io::Result<Stat> {
    rustix::fs::statat(&folder.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(std::io::Error::from)
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
    /// How many of the threads take jobs: one, until the file system shows that it answers
    /// slowly (a share), then all of them. On a local disk a stat takes microseconds and
    /// more threads only cost CPU: a rerun of 2,000,000 files took 1.5x `find`'s time on 16
    /// threads and 1.05x on one.
    allowed: AtomicUsize,
    checkers: usize,
    calls: AtomicUsize,
    slow_calls: AtomicUsize,
}

/// A stat slower than this is a round trip, not a local lookup.
const SLOW_CALL: Duration = Duration::from_micros(200);
/// Slow stats seen before every thread joins in, and the least share of all stats they
/// must be: on a busy machine a local stat is now and then slow too, when its thread is
/// preempted, but not one in sixteen.
const SLOW_CALLS_TO_WIDEN: usize = 8;
const SLOW_SHARE: usize = 16;

impl Stack {
    /// The next job for thread `me`; `None` when the walk is over.
    fn take(&self, me: usize) -> Option<Job> {
        let mut st = self.state.lock().ok()?;
        loop {
            if st.done {
                return None;
            }
            if me < self.allowed.load(Ordering::Relaxed)
                && let Some(job) = st.jobs.pop()
            {
                st.busy += 1;
                return Some(job);
            }
            if st.busy == 0 && st.jobs.is_empty() {
                st.done = true;
                self.changed.notify_all();
                return None;
            }
            st = self.changed.wait(st).ok()?;
        }
    }

    /// Runs a stat, and lets every thread in once the file system has been slow enough.
    fn timed<T>(&self, stat: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = stat();
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        #[cfg(test)]
        let started = if ALL_SLOW.load(Ordering::SeqCst) {
            started - SLOW_CALL * 2
        } else {
            started
        };
        if started.elapsed() > SLOW_CALL {
            let slow = self.slow_calls.fetch_add(1, Ordering::Relaxed) + 1;
            if slow >= SLOW_CALLS_TO_WIDEN
                && slow * SLOW_SHARE >= calls
                && self.allowed.swap(self.checkers, Ordering::Relaxed) < self.checkers
                && let Ok(_st) = self.state.lock()
            {
                self.changed.notify_all();
            }
        }
        out
    }

    /// A job is finished, leaving `more`; `listened` false stops the walk.
    fn finish(&self, more: Vec<Job>, listened: bool) {
        if let Ok(mut st) = self.state.lock() {
            st.busy -= 1;
            let added = more.len();
            st.jobs.extend(more);
            if !listened {
                st.done = true;
            }
            // One waiter woken for each new job, all of them only when the walk is over:
            // waking every thread for every batch of 32 entries cost a local walk of
            // 2,000,000 files a third of its time on two cores.
            if st.done || (st.busy == 0 && st.jobs.is_empty()) {
                self.changed.notify_all();
            } else {
                for _ in 0..added {
                    self.changed.notify_one();
                }
            }
        }
    }
}

pub(super) fn walk(root: &Path, filters: &Filters, tx: &mpsc::Sender<WalkEvent>, checkers: usize) {
    let checkers = checkers.max(1);
    let stack = Stack {
        state: Mutex::new(State {
            jobs: vec![Job::List(root.to_path_buf())],
            ..State::default()
        }),
        changed: Condvar::new(),
        allowed: AtomicUsize::new(1),
        checkers,
        calls: AtomicUsize::new(0),
        slow_calls: AtomicUsize::new(0),
    };
    std::thread::scope(|scope| {
        for me in 0..checkers {
            let stack = &stack;
            scope.spawn(move || {
                while let Some(job) = stack.take(me) {
                    let (more, listened) = run(job, root, filters, tx, stack);
                    stack.finish(more, listened);
                }
            });
        }
    });
}

/// Does one job; returns the jobs it leaves, and whether the events still have a reader.
fn run(
    job: Job,
    root: &Path,
    filters: &Filters,
    tx: &mpsc::Sender<WalkEvent>,
    stack: &Stack,
) -> (Vec<Job>, bool) {
    match job {
        Job::List(dir) => list(&dir, root, filters, tx),
        Job::Look(folder, entries) => {
            let mut folders = Vec::new();
            for entry in entries {
                let path = folder.path.join(&entry.name);
                // The listing's kind when it gave one; else one stat, kept for the facts.
                let (kind, stat) = match entry.kind {
                    Some(kind) => (kind, None),
                    None => match stack.timed(|| stat_in(&folder, &entry.name)) {
                        Ok(st) => {
                            let kind =
                                kind_of(FileType::from_raw_mode(st.st_mode)).unwrap_or(Kind::Other);
                            (kind, Some(st))
                        }
                        Err(e) => {
                            if !hand_over(tx, Some(unreadable(path, &e))) {
                                return (Vec::new(), false);
                            }
                            continue;
                        }
                    },
                };
                if kind == Kind::Dir {
                    if filters.enters(root, &path) {
                        folders.push(Job::List(path));
                    }
                    continue;
                }
                let facts = || match stat {
                    Some(st) => Ok(facts_of(&st)),
                    None => stack
                        .timed(|| stat_in(&folder, &entry.name))
                        .map(|st| facts_of(&st)),
                };
                if !hand_over(tx, classify(root, &path, kind, facts, filters)) {
                    return (Vec::new(), false);
                }
            }
            (folders, true)
        }
    }
}

/// Lists `dir`: its subfolders to list, its other entries (and those whose kind the listing
/// does not tell) to look at in batches. No entry is stat'ed here.
fn list(
    dir: &Path,
    root: &Path,
    filters: &Filters,
    tx: &mpsc::Sender<WalkEvent>,
) -> (Vec<Job>, bool) {
    let failed = |e: std::io::Error| {
        (
            Vec::new(),
            hand_over(tx, Some(unreadable(dir.to_path_buf(), &e))),
        )
    };
    let opened = rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from);
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) => return failed(e),
    };
    // The listing reads through a second descriptor of the same open folder (a `dup`, no
    // call to the file system), so the folder stays open for the stats after it.
    let listing = fd
        .try_clone()
        .and_then(|dup| Dir::new(dup).map_err(std::io::Error::from));
    let mut listing = match listing {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let mut folders = Vec::new();
    let mut others = Vec::new();
    while let Some(next) = listing.read() {
        let entry = match next {
            Ok(entry) => entry,
            Err(e) => return failed(e.into()),
        };
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = OsString::from(std::ffi::OsStr::from_bytes(name));
        match kind_of(entry.file_type()) {
            Some(Kind::Dir) => {
                let path = dir.join(&name);
                if filters.enters(root, &path) {
                    folders.push(Job::List(path));
                }
            }
            kind => others.push(Entry { name, kind }),
        }
    }
    let folder = Arc::new(Folder {
        path: dir.to_path_buf(),
        fd,
    });
    // The batches on top: a folder's files are looked at before its subfolders are
    // listed, so what waits on the stack is folders (a few per level), never the entries
    // of every folder listed so far.
    let mut jobs = folders;
    while !others.is_empty() {
        let rest = others.split_off(others.len().min(BATCH));
        jobs.push(Job::Look(
            folder.clone(),
            std::mem::replace(&mut others, rest),
        ));
    }
    (jobs, true)
}

/// Tests take every stat as slow, so that the walk's threads all join in at once.
#[cfg(test)]
pub(super) static ALL_SLOW: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts of one `fstatat` are those `std` gives, to the nanosecond: the journal
    /// compares them with what earlier nights recorded.
    #[test]
    fn a_stat_gives_what_std_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"hello").unwrap();
        let folder = Folder {
            path: dir.path().to_path_buf(),
            fd: rustix::fs::openat(
                CWD,
                dir.path(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap(),
        };
        let st = stat_in(&folder, &OsString::from("a.txt")).unwrap();
        let std_facts = Facts::from(&std::fs::symlink_metadata(&path).unwrap());
        assert_eq!(facts_of(&st), std_facts);
        assert_eq!(
            kind_of(FileType::from_raw_mode(st.st_mode)),
            Some(Kind::File)
        );
    }
}
