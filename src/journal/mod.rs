//! The checkpoint journal: the only module that knows SQL.
//!
//! One SQLite file per (endpoint, volume, folder) holds a row per file (what was sent, what
//! the service confirmed, how its ingestion went) and a row per run.
//!
//! # Ownership and batching
//! One dedicated thread owns the connection; async code sends it closures over a bounded
//! channel and awaits the answer, so SQLite never blocks the runtime. The thread runs every
//! job already queued inside one transaction (each in its own savepoint, so a failing job
//! undoes only itself) and answers only after the commit: an answer means the write is on
//! disk as far as SQLite's WAL promises. Under load, hundreds of writes share a commit.
//!
//! # Locking
//! A run holds [`JournalLock`] for its whole length; a second run on the same journal is
//! refused at once (exit 4). The SQLite file itself is opened in WAL mode, so `status`
//! can read it while a run writes.
//!
//! # Compatibility
//! `PRAGMA application_id` marks the file as ours; `PRAGMA user_version` tracks the
//! migrations in [`schema`]. A foreign or newer file is refused with a message; nothing is
//! ever deleted or recreated silently.

mod history;
mod lock;
mod mirror;
mod ops;
mod schema;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

pub use history::*;
pub use lock::{JournalLock, LockError, lock_holder, lock_path};
pub use mirror::*;
pub use ops::*;

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "{path} is not a moi-ingest journal ({detail}). Nothing was changed. Point --journal at \
         another file, or move this one aside to start a fresh journal"
    )]
    Foreign { path: PathBuf, detail: String },
    #[error(
        "the journal {path} was written by a newer moi-ingest (schema {version}); upgrade \
         moi-ingest, or use another --journal"
    )]
    TooNew { path: PathBuf, version: i64 },
    #[error(
        "the journal {path} belongs to {field} '{recorded}', not '{requested}'. Use the \
         matching options, or another --journal for this upload"
    )]
    Mismatch {
        path: PathBuf,
        field: &'static str,
        recorded: String,
        requested: String,
    },
    #[error("cannot open the journal {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "cannot write the journal {path}: {detail}. Check free space and permissions; what \
         was recorded before stays recorded"
    )]
    Write { path: PathBuf, detail: String },
    #[error(
        "the journal {path} is damaged ({detail}); nothing more was recorded. Move it aside \
         (keep it for a look) and run again with --adopt: the files the volume already holds \
         are recorded without being sent again"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("the journal {0} was closed while the run still needed it")]
    Closed(PathBuf),
}

/// A write or read that failed: a damaged file is told as such, anything else as a write
/// that could not be made (a full disk, permissions).
pub(crate) fn failed(path: PathBuf, detail: String, damaged: bool) -> JournalError {
    if damaged || detail.contains("malformed") || detail.contains("not a database") {
        JournalError::Damaged { path, detail }
    } else {
        JournalError::Write { path, detail }
    }
}

pub(crate) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// The id in column `i`: an integer since schema 3, digits as text before it (a journal a
/// run has not migrated yet is still read, by `status` and dry runs, as it is).
pub(crate) fn stored_id(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<crate::api::Id>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Integer(v) => Some(crate::api::Id(v as u64)),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(|s| s.parse().ok()),
        _ => None,
    })
}

/// [`stored_id`] where the query guarantees one.
pub(crate) fn required_id(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<crate::api::Id> {
    stored_id(r, i)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(i, "id".into(), rusqlite::types::Type::Null)
    })
}

/// What a journal is for; a run refuses a journal recorded for something else.
#[derive(Debug, Clone)]
pub struct Identity {
    pub endpoint: String,
    pub volume: String,
    pub root: String,
}

type Delivery = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job returns whether it succeeded (a failed one is undone) and how to answer.
/// A job runs on the connection inside the transaction it assumes, or, given `Err(why)`
/// when that transaction could not be opened, not at all: it then only answers `why`.
type Job = Box<dyn FnOnce(Result<&Connection, String>) -> (bool, Delivery) + Send>;

/// A handle to the journal's thread. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.path.display())
    }
}

pub(crate) fn create_private_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !p.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p),
        _ => Ok(()),
    }
}

impl Journal {
    /// Opens (creating if needed, owner-only) and migrates the journal at `path`. With
    /// `identity`, the journal must be recorded for the same endpoint, volume and folder.
    pub fn open(path: &Path, identity: Option<&Identity>) -> Result<Journal, JournalError> {
        let open_err = |detail: String| JournalError::Open {
            path: path.to_path_buf(),
            detail,
        };
        create_private_parent(path).map_err(|e| open_err(e.to_string()))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| open_err(e.to_string()))?;
        let mut conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        let foreign = |detail: String| JournalError::Foreign {
            path: path.to_path_buf(),
            detail,
        };
        conn.execute_batch(
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(|e| foreign(e.to_string()))?;
        match schema::migrate(&mut conn).map_err(|e| foreign(e.to_string()))? {
            Ok(()) => {}
            Err(schema::SchemaProblem::Foreign) => {
                return Err(foreign("a SQLite database of another program".into()));
            }
            Err(schema::SchemaProblem::TooNew(version)) => {
                return Err(JournalError::TooNew {
                    path: path.to_path_buf(),
                    version,
                });
            }
        }
        if let Some(id) = identity {
            history::check_identity(&conn, path, id)?;
        }
        Self::serve_connection(conn, path)
    }

    /// For a dry run: reads the journal at `path` without changing it, or, when there is
    /// none yet, an empty one in memory. Nothing is created on disk.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        let open_err = |detail: String| JournalError::Open {
            path: path.to_path_buf(),
            detail,
        };
        let conn = if path.is_file() {
            Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_err(e.to_string()))?
        } else {
            let mut c = Connection::open_in_memory().map_err(|e| open_err(e.to_string()))?;
            schema::migrate(&mut c)
                .map_err(|e| open_err(e.to_string()))?
                .map_err(|_| open_err("cannot set up an empty journal".into()))?;
            c
        };
        // A read-only handle cannot migrate: an older journal is read as it is.
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 5000;")
            .map_err(|e| open_err(e.to_string()))?;
        Self::serve_connection(conn, path)
    }

    fn serve_connection(conn: Connection, path: &Path) -> Result<Journal, JournalError> {
        // Every statement this module runs stays parsed: rusqlite keeps 16 by default, fewer
        // than the journal has, and a hot one evicted is parsed again on every commit.
        conn.set_prepared_statement_cache_capacity(64);
        let open_err = |detail: String| JournalError::Open {
            path: path.to_path_buf(),
            detail,
        };
        let (jobs, rx) = mpsc::channel::<Job>(1024);
        std::thread::Builder::new()
            .name("moi-journal".into())
            .spawn(move || serve(conn, rx))
            .map_err(|e| open_err(format!("cannot start the journal thread: {e}")))?;
        Ok(Journal {
            jobs,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the journal's thread; answers after its transaction committed.
    pub(crate) async fn run<R, F>(&self, f: F) -> Result<R, JournalError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let path = self.path.clone();
        let work: Job = Box::new(move |conn| {
            let conn = match conn {
                Ok(conn) => conn,
                Err(why) => {
                    let delivery: Delivery = Box::new(move |_| {
                        let _ = tx.send(Err(failed(path, why, false)));
                    });
                    return (false, delivery);
                }
            };
            let result = f(conn);
            let ok = result.is_ok();
            let delivery: Delivery = Box::new(move |commit: Result<(), String>| {
                let answer = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(failed(path, e.to_string(), is_damage(&e))),
                    (Ok(_), Err(detail)) => Err(failed(path, detail, false)),
                };
                let _ = tx.send(answer);
            });
            (ok, delivery)
        });
        self.jobs
            .send(work)
            .await
            .map_err(|_| JournalError::Closed(self.path.clone()))?;
        rx.await
            .map_err(|_| JournalError::Closed(self.path.clone()))?
    }
}

/// The journal thread: group-commits whatever is queued.
fn serve(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 2048;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = begin(&conn) {
            // Nothing runs outside the transaction it assumes: every job answers the error.
            let why = format!("cannot begin a transaction: {e}");
            for job in batch {
                job(Err(why.clone())).1(Err(why.clone()));
            }
            continue;
        }
        // A job alone in its transaction needs no savepoint: if it fails, the whole
        // transaction is rolled back instead.
        let alone = batch.len() == 1;
        let mut undo_all = false;
        let deliveries: Vec<Delivery> = batch
            .into_iter()
            .map(|job| {
                if alone {
                    let (ok, delivery) = job(Ok(&conn));
                    undo_all = !ok;
                    delivery
                } else {
                    run_in_savepoint(&conn, job)
                }
            })
            .collect();
        let commit = if undo_all {
            statement(&conn, "ROLLBACK")
        } else {
            statement(&conn, "COMMIT")
        };
        if commit.is_err() {
            let _ = statement(&conn, "ROLLBACK");
        }
        for d in deliveries {
            d(commit.clone());
        }
    }
}

/// Runs one of the fixed transaction statements, parsed once per connection.
fn statement(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Opens a batch's transaction. Deferred: a batch of lookups takes no write lock; the
/// first write upgrades it (this process is the journal's only writer: the run lock sees
/// to that).
fn begin(conn: &Connection) -> Result<(), String> {
    #[cfg(test)]
    if tests::FAIL_BEGINS
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok()
    {
        return Err("injected by a test".into());
    }
    statement(conn, "BEGIN")
}

fn run_in_savepoint(conn: &Connection, job: Job) -> Delivery {
    if let Err(e) = statement(conn, "SAVEPOINT job") {
        // The job would run unprotected from its neighbours: it does not run.
        return job(Err(format!("cannot open a savepoint: {e}"))).1;
    }
    let (ok, delivery) = job(Ok(conn));
    if !ok {
        let _ = statement(conn, "ROLLBACK TO job");
    }
    let _ = statement(conn, "RELEASE job");
    delivery
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use rusqlite::OptionalExtension;

    use super::*;

    /// How many of the next BEGINs fail, across every journal of the test process.
    pub(super) static FAIL_BEGINS: AtomicU32 = AtomicU32::new(0);

    #[tokio::test]
    async fn a_job_whose_transaction_cannot_begin_does_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite"), None).unwrap();
        let write = |v: &'static str| {
            move |c: &Connection| {
                c.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('probe', ?1)",
                    [v],
                )
            }
        };
        FAIL_BEGINS.store(1, Ordering::SeqCst);
        let refused = journal.run(write("outside")).await;
        let err = refused.expect_err("a job without its transaction answers an error");
        assert!(
            err.to_string().contains("cannot begin a transaction"),
            "{err}"
        );
        let read = |c: &Connection| {
            c.query_row("SELECT value FROM meta WHERE key = 'probe'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        };
        assert_eq!(
            journal.run(read).await.unwrap(),
            None,
            "the job ran without its transaction"
        );
        journal.run(write("inside")).await.unwrap();
        assert_eq!(journal.run(read).await.unwrap().as_deref(), Some("inside"));
    }
}
