//! One run per journal: an advisory lock on `<journal>.lock`, held for the whole run.
//!
//! The operating system drops the lock when the process dies, even by `kill -9`, so a
//! crashed run never leaves a stale lock behind. The file also records who holds it, so
//! the refusal can name the holder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct JournalLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another moi-ingest run is using the journal {journal} ({holder}); \
         wait for it to finish, or give this run its own --journal"
    )]
    Held { journal: PathBuf, holder: String },
    #[error(
        "cannot create the journal's folder {dir}: {source}. Pass --journal PATH in a folder \
         you can write, or set XDG_STATE_HOME to one (default journals go under \
         $XDG_STATE_HOME/moi-ingest, else ~/.local/state/moi-ingest)"
    )]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot create the lock file {path}: {source}. Pass --journal PATH in a folder you \
         can write"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn lock_path(journal: &Path) -> PathBuf {
    let mut p = journal.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

/// Who holds the lock of `journal` now (`pid N on host since ...`), without taking it.
pub fn lock_holder(journal: &Path) -> Option<String> {
    let path = lock_path(journal);
    let mut file = OpenOptions::new().read(true).open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Some(if holder.is_empty() {
                "holder unknown".into()
            } else {
                holder.to_string()
            })
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

impl JournalLock {
    pub fn acquire(journal: &Path) -> Result<JournalLock, LockError> {
        let path = lock_path(journal);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // The default journal's folder does not exist on a new machine's first night.
        super::create_private_parent(&path).map_err(|source| LockError::Folder {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            source,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    journal: journal.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".into()
                    } else {
                        format!("held by {holder}")
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Shown as it is by the next run's refusal and by `status`: a local date, as a
        // person reads it.
        let since = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %Z");
        let note = format!("pid {} on {} since {since}", std::process::id(), hostname());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(note.as_bytes()).map_err(io)?;
        Ok(JournalLock { _file: file, path })
    }
}
