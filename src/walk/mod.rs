//! The folder as a stream of files, with the user's filters. Knows nothing of HTTP.
//!
//! The walk runs on its own thread and hands entries over a bounded channel, so uploads
//! start while it goes on and a slow upload holds the walk back (backpressure) instead of
//! piling entries up in memory. Only one directory's listing is held at a time.
//!
//! What is never uploaded, with the reason reported: symlinks (unless followed), symlink
//! loops, FIFOs, sockets and devices (never opened, so a FIFO cannot hang the walk),
//! unreadable folders, names that are not valid UTF-8 (MOI names are JSON text), and the
//! journal's own files when the journal lives inside the folder.

use std::path::{Path, PathBuf};

mod filter;
mod parallel;
mod serial;

use filter::{Filters, Matcher, is_hidden, rel_path, unusable_name};
use serial::{walk_following, walk_physical};
use tokio::sync::mpsc;

pub use crate::api::mtime_ns;

#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Only files matching one of these globs (a glob without `/` matches the file name
    /// at any depth; one with `/` matches the path relative to the folder).
    pub include: Vec<String>,
    /// Files and folders matching these are left out.
    pub exclude: Vec<String>,
    /// Only files with one of these extensions (without the dot, any case).
    pub extensions: Vec<String>,
    /// Files larger than this are left out.
    pub max_size: Option<u64>,
    /// Include names starting with `.`.
    pub hidden: bool,
    pub follow_symlinks: bool,
    /// Exact paths never to upload (the journal and its companions).
    pub never: Vec<PathBuf>,
    /// Threads that list folders and look at files at once (`--checkers`); 0 or 1 walks
    /// on one thread, in name order. `--follow-symlinks` always walks on one.
    pub checkers: usize,
}

#[derive(Debug, Clone)]
pub struct WalkedFile {
    pub abs: PathBuf,
    /// Relative to the folder, `/`-separated: the name the file gets at MOI.
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// (device, inode): how a rename is recognised.
    pub inode: (u64, u64),
}

/// (device, inode) of `meta`.
pub fn inode(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// An entry's kind, from a listing or a stat: what the walk decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    Other,
}

impl From<std::fs::FileType> for Kind {
    fn from(ft: std::fs::FileType) -> Kind {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            Kind::Socket
        } else if ft.is_block_device() || ft.is_char_device() {
            Kind::Device
        } else {
            Kind::Other
        }
    }
}

/// What the walk needs of a file's metadata, from `std` or from one `fstatat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub len: u64,
    pub mtime_ns: i64,
    pub inode: (u64, u64),
}

impl From<&std::fs::Metadata> for Facts {
    fn from(m: &std::fs::Metadata) -> Facts {
        Facts {
            len: m.len(),
            mtime_ns: mtime_ns(m),
            inode: inode(m),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// Left out by the user's filters or defaults: counted, not warned about.
    Filtered,
    /// Could not be uploaded (a FIFO, a symlink loop, a name MOI cannot take): warned about.
    Unusable,
    /// A folder or file the walk could not read (permissions, an I/O error, one that
    /// vanished under it): warned about, and a night with one deletes nothing, since
    /// what it holds is unknown.
    Unreadable,
}

/// Why a file was left out, for the summary's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipWhy {
    /// `--include`, `--exclude`, `--ext`.
    Filtered,
    /// A name starting with `.` (without `--hidden`).
    Hidden,
    /// A symlink, not followed (without `--follow-symlinks`).
    Symlink,
    /// A symlink that leads back to a folder above it (with `--follow-symlinks`): warned.
    SymlinkLoop,
    /// A FIFO, socket or device: never opened.
    Special,
    /// Over `--max-file-size`.
    TooLarge,
    /// Could not be read.
    Unreadable,
    /// A name MOI cannot take (not UTF-8, a control character), or a `--files-from` line
    /// that is not a file below the folder.
    BadName,
}

impl SkipWhy {
    pub fn kind(self) -> SkipKind {
        match self {
            SkipWhy::Filtered | SkipWhy::Hidden | SkipWhy::Symlink | SkipWhy::TooLarge => {
                SkipKind::Filtered
            }
            SkipWhy::Special | SkipWhy::BadName | SkipWhy::SymlinkLoop => SkipKind::Unusable,
            SkipWhy::Unreadable => SkipKind::Unreadable,
        }
    }
}

#[derive(Debug, Clone)]
pub enum WalkEvent {
    File(WalkedFile),
    Skipped {
        path: PathBuf,
        reason: String,
        why: SkipWhy,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("the {what} pattern '{pattern}' is not a valid glob: {source}")]
    Glob {
        what: &'static str,
        pattern: String,
        source: globset::Error,
    },
    #[error(
        "cannot start the thread that walks the folder: {0}. The system is short of threads \
         or memory; end some processes and run again"
    )]
    Thread(std::io::Error),
}

/// Checks the filters without walking (so a bad glob is a usage error before anything runs).
pub fn check(options: &WalkOptions) -> Result<(), WalkError> {
    Matcher::new(&options.include, "--include")?;
    Matcher::new(&options.exclude, "--exclude")?;
    Ok(())
}

/// Starts walking `root` on its own thread; the events arrive on the returned channel.
/// The files named one per line by `list` (paths relative to `root`, `/`-separated, as
/// `--files-from` and rclone take them), as a stream like the walk's. Blank lines and lines
/// starting with `#` are ignored; a path that climbs out of `root`, is absolute, or is not
/// a regular file is reported and skipped. The list is read on its own thread, so a list
/// of millions (or a slow pipe) never sits in memory.
pub fn spawn_list(
    root: PathBuf,
    mut list: Box<dyn std::io::BufRead + Send>,
    capacity: usize,
) -> mpsc::Receiver<WalkEvent> {
    let (tx, rx) = mpsc::channel(capacity);
    std::thread::spawn(move || {
        let mut buf = String::new();
        loop {
            buf.clear();
            let line = match list.read_line(&mut buf) {
                Ok(0) => return,
                Ok(_) => Ok(buf.trim_end_matches('\n').to_string()),
                Err(e) => Err(e),
            };
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ =
                        tx.blocking_send(unusable(&root, &format!("the list cannot be read: {e}")));
                    return;
                }
            };
            let rel = line.trim_end_matches('\r').trim_start_matches("./");
            if rel.trim().is_empty() || rel.starts_with('#') {
                continue;
            }
            if tx.blocking_send(listed_file(&root, rel)).is_err() {
                return;
            }
        }
    });
    rx
}

/// One listed path, checked and looked at on disk.
pub fn listed_file(root: &Path, rel: &str) -> WalkEvent {
    let abs = root.join(rel);
    if let Some(why) = unusable_name(rel) {
        return unusable(&abs, why);
    }
    if rel.starts_with('/') || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return unusable(
            &abs,
            "is not a path below the folder (absolute, '..' or '//')",
        );
    }
    match std::fs::symlink_metadata(&abs) {
        Ok(m) if m.is_file() => WalkEvent::File(WalkedFile {
            abs,
            rel: rel.to_string(),
            size: m.len(),
            mtime_ns: mtime_ns(&m),
            inode: inode(&m),
        }),
        Ok(_) => unusable(&abs, "is not a regular file"),
        Err(e) => unusable(&abs, &format!("cannot be read: {e}")),
    }
}

fn unusable(path: &Path, reason: &str) -> WalkEvent {
    WalkEvent::Skipped {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        why: SkipWhy::BadName,
    }
}

pub fn spawn(
    root: PathBuf,
    options: WalkOptions,
    capacity: usize,
) -> Result<mpsc::Receiver<WalkEvent>, WalkError> {
    let include = Matcher::new(&options.include, "--include")?;
    let exclude = Matcher::new(&options.exclude, "--exclude")?;
    let extensions: Vec<String> = options
        .extensions
        .iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
        .collect();
    let (tx, rx) = mpsc::channel(capacity);
    let filters = Filters {
        options,
        include,
        exclude,
        extensions,
    };
    std::thread::Builder::new()
        .name("moi-walk".into())
        .spawn(move || {
            if filters.options.follow_symlinks || !root.is_dir() {
                walk_following(&root, &filters, &tx)
            } else if filters.options.checkers > 1 {
                parallel::walk(&root, &filters, &tx, filters.options.checkers)
            } else {
                walk_physical(&root, &filters, &tx)
            }
        })
        .map_err(WalkError::Thread)?;
    Ok(rx)
}

/// Hands `event` to the run; false when the run stopped listening (cancelled or done).
fn hand_over(tx: &mpsc::Sender<WalkEvent>, event: Option<WalkEvent>) -> bool {
    match event {
        Some(ev) => tx.blocking_send(ev).is_ok(),
        None => true,
    }
}

fn unreadable(path: PathBuf, e: &std::io::Error) -> WalkEvent {
    WalkEvent::Skipped {
        path,
        reason: format!("cannot be read: {e}"),
        why: SkipWhy::Unreadable,
    }
}

fn classify(
    root: &Path,
    path: &Path,
    kind: Kind,
    metadata: impl FnOnce() -> std::io::Result<Facts>,
    filters: &Filters,
) -> Option<WalkEvent> {
    let Filters {
        options,
        include,
        exclude,
        extensions,
    } = filters;
    let skip = |reason: &str, why| {
        Some(WalkEvent::Skipped {
            path: path.to_path_buf(),
            reason: reason.to_string(),
            why,
        })
    };
    if options
        .never
        .iter()
        .any(|p| p.as_os_str() == path.as_os_str())
    {
        return None;
    }
    let Some(rel) = rel_path(root, path) else {
        return skip(
            "its name is not valid UTF-8, and MOI file names are text; rename it to upload it",
            SkipWhy::BadName,
        );
    };
    if let Some(why) = unusable_name(&rel) {
        return skip(why, SkipWhy::BadName);
    }
    if !options.hidden && is_hidden(&rel) {
        return skip("hidden (use --hidden to include)", SkipWhy::Hidden);
    }
    if kind == Kind::Symlink {
        return skip(
            "symlink, not followed (use --follow-symlinks)",
            SkipWhy::Symlink,
        );
    }
    if kind != Kind::File {
        let what = match kind {
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
            _ => "not a regular file",
        };
        return skip(&format!("{what}, not uploaded"), SkipWhy::Special);
    }
    if exclude.any && exclude.matches(&rel) {
        return skip("excluded by --exclude", SkipWhy::Filtered);
    }
    if include.any && !include.matches(&rel) {
        return skip("not matched by --include", SkipWhy::Filtered);
    }
    if !extensions.is_empty() {
        let ext = rel
            .rsplit('/')
            .next()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, x)| x.to_ascii_lowercase());
        if !ext.is_some_and(|x| extensions.contains(&x)) {
            return skip("extension not listed in --ext", SkipWhy::Filtered);
        }
    }
    let meta = match metadata() {
        Ok(m) => m,
        Err(err) => return skip(&format!("cannot be read: {err}"), SkipWhy::Unreadable),
    };
    if let Some(max) = options.max_size
        && meta.len > max
    {
        return skip(
            &format!("{} bytes, larger than --max-file-size", meta.len),
            SkipWhy::TooLarge,
        );
    }
    Some(WalkEvent::File(WalkedFile {
        abs: path.to_path_buf(),
        rel,
        size: meta.len,
        mtime_ns: meta.mtime_ns,
        inode: meta.inode,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the one-thread walk (`--checkers 1`) finds, in its order.
    async fn collect_in_order(root: &Path, options: WalkOptions) -> (Vec<String>, Vec<String>) {
        let mut rx = spawn(root.to_path_buf(), options, 1).unwrap();
        let (mut files, mut skipped) = (Vec::new(), Vec::new());
        while let Some(ev) = rx.recv().await {
            match ev {
                WalkEvent::File(f) => files.push(f.rel),
                WalkEvent::Skipped { path, .. } => skipped.push(path.display().to_string()),
            }
        }
        (files, skipped)
    }

    /// What the walk finds, on one thread and on four (every stat taken as slow, so all
    /// threads join in at once): both must find the same.
    async fn collect(root: &Path, options: WalkOptions) -> (Vec<String>, Vec<String>) {
        let mut seen = Vec::new();
        for slow in [false, true] {
            parallel::ALL_SLOW.store(slow, std::sync::atomic::Ordering::SeqCst);
            let mut rx = spawn(root.to_path_buf(), options.clone(), 4).unwrap();
            let (mut files, mut skipped) = (Vec::new(), Vec::new());
            while let Some(ev) = rx.recv().await {
                match ev {
                    WalkEvent::File(f) => files.push(f.rel),
                    WalkEvent::Skipped { path, .. } => skipped.push(path.display().to_string()),
                }
            }
            files.sort();
            skipped.sort();
            seen.push((files, skipped));
        }
        parallel::ALL_SLOW.store(false, std::sync::atomic::Ordering::SeqCst);
        let widened = seen.pop().unwrap_or_default();
        let one = seen.pop().unwrap_or_default();
        assert_eq!(
            one, widened,
            "one thread and four threads found different things"
        );
        one
    }

    #[tokio::test]
    async fn both_walkers_list_the_same_files_in_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["b/2", "b/10", "a/z/deep", "a/y", "c", "B", "a b/é"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.as_bytes()).unwrap();
        }
        std::os::unix::fs::symlink(root.join("c"), root.join("link")).unwrap();
        let physical = collect_in_order(root, WalkOptions::default()).await;
        assert_eq!(
            physical.0,
            // Each folder's names in byte order, depth first: `a` before `a b`.
            ["B", "a/y", "a/z/deep", "a b/é", "b/10", "b/2", "c"]
        );
        assert_eq!(physical.1, [root.join("link").display().to_string()]);
        let following = WalkOptions {
            follow_symlinks: true,
            ..Default::default()
        };
        let followed = collect_in_order(root, following).await.0;
        assert_eq!(followed[..7], physical.0[..]);
        assert_eq!(followed[7], "link");
    }

    /// The walk on several threads finds what the one-thread walk finds, files and skips
    /// with their reasons, on a tree wider and deeper than a batch, with filters, hidden
    /// names, a FIFO, a symlink and a folder left out by --exclude.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_parallel_walk_finds_what_the_one_thread_walk_finds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for i in 0..300 {
            let p = root.join(format!("d{}/s{}/f{i:03}.txt", i % 7, i % 3));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        for f in ["d0/.hidden", "skip/me.txt", "d1/x.tmp", "top.md"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"y").unwrap();
        }
        std::os::unix::fs::symlink(root.join("top.md"), root.join("d2/link")).unwrap();
        let fifo = root.join("d3/pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let events = |checkers: usize| {
            let options = WalkOptions {
                exclude: vec!["skip".into(), "*.tmp".into()],
                checkers,
                ..WalkOptions::default()
            };
            async move {
                let mut rx = spawn(root.to_path_buf(), options, 16).unwrap();
                let mut seen = Vec::new();
                while let Some(ev) = rx.recv().await {
                    seen.push(match ev {
                        WalkEvent::File(f) => format!("file {} {}", f.rel, f.size),
                        WalkEvent::Skipped { path, reason, why } => {
                            format!("skip {} {reason} {why:?}", path.display())
                        }
                    });
                }
                seen.sort();
                seen
            }
        };
        let one = events(1).await;
        assert_eq!(one.iter().filter(|e| e.starts_with("file ")).count(), 301);
        assert_eq!(events(8).await, one);
        assert_eq!(events(3).await, one);
    }

    #[tokio::test]
    async fn filters_hidden_globs_and_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/.git")).unwrap();
        std::fs::create_dir_all(root.join("b/node_modules")).unwrap();
        for f in [
            "a/x.pdf",
            "a/y.txt",
            "a/.git/config",
            "b/z.PDF",
            "b/node_modules/m.pdf",
            ".env",
        ] {
            std::fs::write(root.join(f), b"1").unwrap();
        }
        let (files, _) = collect(root, WalkOptions::default()).await;
        assert_eq!(
            files,
            ["a/x.pdf", "a/y.txt", "b/node_modules/m.pdf", "b/z.PDF"]
        );
        let opts = WalkOptions {
            extensions: vec!["pdf".into()],
            exclude: vec!["node_modules".into()],
            ..Default::default()
        };
        assert_eq!(collect(root, opts).await.0, ["a/x.pdf", "b/z.PDF"]);
        let opts = WalkOptions {
            include: vec!["a/*".into()],
            hidden: true,
            ..Default::default()
        };
        assert_eq!(collect(root, opts).await.0, ["a/x.pdf", "a/y.txt"]);
    }
}
