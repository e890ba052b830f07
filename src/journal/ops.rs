//! The journal's typed operations for a run's files: upload, confirmation, ingestion.
//! (Mirroring's are in `mirror`, the history's in `history`.)

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::schema::BASE_NAME;
use super::{Journal, JournalError, required_id, stored_id};
use crate::api::Id;

/// Where a file stands. `Pending`: seen, not confirmed by the service. `Uploaded`:
/// confirmed, ingestion not yet seen. `Ingesting`: the service is loading it (or
/// retrying). `Ingested`: loaded. `Failed`: gave up (see `fail_stage`). `Deleted`: its
/// source is gone and `--delete` removed it from the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Pending,
    Uploaded,
    Ingesting,
    Ingested,
    Failed,
    Deleted,
}

impl FileState {
    pub const ALL: [FileState; 6] = [
        FileState::Pending,
        FileState::Uploaded,
        FileState::Ingesting,
        FileState::Ingested,
        FileState::Failed,
        FileState::Deleted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Uploaded => "uploaded",
            FileState::Ingesting => "ingesting",
            FileState::Ingested => "ingested",
            FileState::Failed => "failed",
            FileState::Deleted => "deleted",
        }
    }
    pub(super) fn parse(s: &str) -> FileState {
        FileState::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .unwrap_or(FileState::Pending)
    }
    /// The service holds this file (its upload was confirmed).
    pub fn is_confirmed(self) -> bool {
        matches!(
            self,
            FileState::Uploaded | FileState::Ingesting | FileState::Ingested
        )
    }
}

/// How a send that was not confirmed ends for its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendEnding {
    /// Sent again by the next run (interrupted, changed while sent, the run refused).
    Pending,
    /// Failed for this run; the next run sends it again.
    Failed,
    /// The service refused it for good: not sent again until it changes, or until
    /// `retry --refused` asks.
    Refused,
}

/// The `fail_stage` of a file the service refused for good.
pub const REFUSED: &str = "refused";

#[derive(Debug, Clone)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: Option<Vec<u8>>,
    pub state: FileState,
    pub fail_stage: Option<String>,
    /// A send had started and no answer was recorded: the run before was interrupted.
    pub in_flight: bool,
    pub file_id: Option<Id>,
    pub task_id: Option<Id>,
    /// (device, inode), when recorded (journals before schema 4 lack it until a run
    /// back-fills it).
    pub inode: Option<(u64, u64)>,
}

/// A file as listed by this run.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: Option<Vec<u8>>,
    /// (device, inode) as the walk saw them; (0, 0) when unknown.
    pub inode: (u64, u64),
}

#[derive(Debug, Clone)]
pub struct Confirmed {
    pub file: Listed,
    pub file_id: Option<Id>,
    pub task_id: Option<Id>,
}

#[derive(Debug, Clone)]
pub struct FollowedFile {
    pub file_id: Id,
    pub path: String,
    pub ingest_retries: u64,
}

#[derive(Debug, Clone)]
pub struct IngestUpdate {
    pub file_id: Id,
    pub status: i64,
    pub state: FileState,
    pub reason: Option<String>,
    /// A retry was asked for this round.
    pub retried: bool,
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

// Ids are stored as SQLite integers (8 bytes, against 19 as text). The service's ids are
// signed 64-bit snowflakes; the cast keeps every u64 exact both ways.
fn id_int(id: Id) -> i64 {
    id.0 as i64
}

fn id_value(id: Option<Id>) -> Option<i64> {
    id.map(id_int)
}

/// Whether the journal has schema 4's inode columns (one not yet migrated does not).
pub(super) fn has_inodes(c: &rusqlite::Connection) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT count(*) FROM pragma_table_info('files') WHERE name = 'ino'")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// (device, inode) from columns `i` and `i + 1`, stored as SQLite's signed integers.
fn inode_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<(u64, u64)>> {
    Ok(
        match (r.get::<_, Option<i64>>(i)?, r.get::<_, Option<i64>>(i + 1)?) {
            (Some(d), Some(n)) => Some((d as u64, n as u64)),
            _ => None,
        },
    )
}

/// What `(dev, ino)` stores: nothing for an unknown inode.
fn inode_values(inode: (u64, u64)) -> (Option<i64>, Option<i64>) {
    match inode {
        (0, 0) => (None, None),
        (d, n) => (Some(d as i64), Some(n as i64)),
    }
}

impl Journal {
    /// The recorded rows of `paths`, in the same order.
    pub async fn lookup(
        &self,
        paths: Vec<String>,
    ) -> Result<Vec<Option<FileRecord>>, JournalError> {
        self.run(move |c| {
            // A journal of schema 3 read without migrating it (`status`, a dry run) has no
            // inode columns: they read as unknown.
            let inodes = if has_inodes(c)? {
                "dev, ino"
            } else {
                "NULL, NULL"
            };
            let mut st = c.prepare_cached(&format!(
                "SELECT size, mtime_ns, sha256, state, fail_stage, in_flight, file_id, task_id,
                        {inodes}
                 FROM files WHERE path = ?1"
            ))?;
            paths
                .into_iter()
                .map(|p| {
                    st.query_row([&p], |r| {
                        Ok(FileRecord {
                            size: r.get::<_, i64>(0)? as u64,
                            mtime_ns: r.get(1)?,
                            sha256: r.get(2)?,
                            state: FileState::parse(&r.get::<_, String>(3)?),
                            fail_stage: r.get(4)?,
                            in_flight: r.get(5)?,
                            file_id: stored_id(r, 6)?,
                            task_id: stored_id(r, 7)?,
                            inode: inode_of(r, 8)?,
                            path: p.clone(),
                        })
                    })
                    .optional()
                })
                .collect()
        })
        .await
    }

    /// For each of `paths`: whether another path in this journal has the same base name.
    pub async fn base_name_shared(&self, paths: Vec<String>) -> Result<Vec<bool>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT EXISTS(SELECT 1 FROM files WHERE {BASE_NAME} = ?1 AND path <> ?2)"
            ))?;
            paths
                .iter()
                .map(|p| st.query_row(params![base_name(p), p], |r| r.get::<_, bool>(0)))
                .collect()
        })
        .await
    }

    /// Marks `files` as being sent; answers once that is on disk, so that a crash during
    /// the send leaves a trace (`in_flight`) the next run counts as a possible duplicate.
    pub async fn begin_send(&self, files: Vec<Listed>, run: i64) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "INSERT INTO files(path, size, mtime_ns, sha256, state, in_flight, attempts, run_id,
                                   dev, ino)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 1, 1, ?5, ?6, ?7)
                 ON CONFLICT(path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    sha256 = coalesce(excluded.sha256, files.sha256), state = 'pending',
                    fail_stage = NULL, in_flight = 1, attempts = files.attempts + 1,
                    ingest_status = NULL, ingest_retries = 0,
                    run_id = excluded.run_id, dev = excluded.dev, ino = excluded.ino,
                    check_copies = CASE WHEN files.state = 'deleted' THEN 0 ELSE 1 END",
            )?;
            for f in files {
                let (dev, ino) = inode_values(f.inode);
                st.execute(params![
                    f.path,
                    f.size as i64,
                    f.mtime_ns,
                    f.sha256,
                    run,
                    dev,
                    ino
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// Records the SHA-256 of files confirmed before `--checksum` was first used.
    pub async fn record_hashes(&self, hashes: Vec<(String, Vec<u8>)>) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached("UPDATE files SET sha256 = ?2 WHERE path = ?1")?;
            for (path, sha) in hashes {
                st.execute(params![path, sha])?;
            }
            Ok(())
        })
        .await
    }

    /// Records what the service confirmed.
    pub async fn confirm(&self, files: Vec<Confirmed>) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET size = ?2, mtime_ns = ?3, sha256 = coalesce(?4, sha256),
                    state = 'uploaded', fail_stage = NULL, in_flight = 0, file_id = ?5,
                    task_id = ?6, last_error = NULL, ingest_status = NULL, ingest_retries = 0
                 WHERE path = ?1",
            )?;
            for f in files {
                st.execute(params![
                    f.file.path,
                    f.file.size as i64,
                    f.file.mtime_ns,
                    f.file.sha256,
                    id_value(f.file_id),
                    id_value(f.task_id),
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// Records a send that did not end in a confirmation: the file stays pending
    /// (interrupted, changed while sent), failed for this run, or refused for good.
    pub async fn send_ended_unconfirmed(
        &self,
        paths: Vec<String>,
        error: String,
        ending: SendEnding,
    ) -> Result<(), JournalError> {
        let stage: Option<&'static str> = match ending {
            SendEnding::Pending => None,
            SendEnding::Failed => Some("upload"),
            SendEnding::Refused => Some(REFUSED),
        };
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET in_flight = 0, last_error = ?2,
                    state = CASE WHEN ?3 IS NULL THEN 'pending' ELSE 'failed' END,
                    fail_stage = ?3
                 WHERE path = ?1",
            )?;
            for p in paths {
                st.execute(params![p, error, stage])?;
            }
            Ok(())
        })
        .await
    }

    /// Tasks that still have files whose ingestion is not final.
    pub async fn tasks_to_follow(&self) -> Result<Vec<Id>, JournalError> {
        self.run(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT task_id FROM files
                 WHERE state IN ('uploaded', 'ingesting') AND task_id IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| required_id(r, 0))?;
            rows.collect()
        })
        .await
    }

    /// Files of `task` this journal still follows, by file id.
    pub async fn followed_files(&self, task: Id) -> Result<Vec<FollowedFile>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT file_id, path, ingest_retries FROM files
                 WHERE task_id = ?1 AND state IN ('uploaded', 'ingesting') AND file_id IS NOT NULL",
            )?;
            let rows = st.query_map([id_int(task)], |r| {
                Ok(FollowedFile {
                    file_id: required_id(r, 0)?,
                    path: r.get(1)?,
                    ingest_retries: r.get::<_, i64>(2)? as u64,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Records what `/task/files` said about files of `task`.
    pub async fn record_ingest(
        &self,
        task: Id,
        updates: Vec<IngestUpdate>,
    ) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET ingest_status = ?2, state = ?3, last_error = ?4,
                    fail_stage = CASE WHEN ?3 = 'failed' THEN 'ingest' ELSE NULL END,
                    ingest_retries = ingest_retries + ?5
                 WHERE task_id = ?6 AND file_id = ?1",
            )?;
            for u in updates {
                st.execute(params![
                    id_int(u.file_id),
                    u.status,
                    u.state.as_str(),
                    u.reason,
                    u.retried as i64,
                    id_int(task)
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// Files still loading whose ingestion can be followed (task and file id known).
    pub async fn followable_pending(&self) -> Result<u64, JournalError> {
        self.run(|c| {
            c.prepare_cached(
                "SELECT count(*) FROM files WHERE state IN ('uploaded', 'ingesting')
                 AND task_id IS NOT NULL AND file_id IS NOT NULL",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
        })
        .await
    }

    /// Confirmed files the service gave no task or file id for: nothing to follow.
    pub async fn unfollowable(&self) -> Result<u64, JournalError> {
        self.run(|c| {
            c.prepare_cached(
                "SELECT count(*) FROM files WHERE state = 'uploaded'
                 AND (task_id IS NULL OR file_id IS NULL)",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
        })
        .await
    }

    /// For each of `names`: whether some file in this journal has that base name.
    pub async fn knows_base_names(&self, names: Vec<String>) -> Result<Vec<bool>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT EXISTS(SELECT 1 FROM files WHERE {BASE_NAME} = ?1)"
            ))?;
            names
                .iter()
                .map(|n| st.query_row([base_name(n)], |r| r.get::<_, bool>(0)))
                .collect()
        })
        .await
    }

    /// Tasks holding files the service confirmed (what `verify` asks the service about).
    pub async fn confirmed_tasks(&self) -> Result<Vec<Id>, JournalError> {
        self.run(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT task_id FROM files WHERE task_id IS NOT NULL
                 AND state IN ('uploaded', 'ingesting', 'ingested', 'failed')
                 AND file_id IS NOT NULL ORDER BY task_id",
            )?;
            let rows = st.query_map([], |r| required_id(r, 0))?;
            rows.collect()
        })
        .await
    }

    /// The confirmed files of `task`: (path, size, file id, state).
    pub async fn confirmed_in_task(
        &self,
        task: Id,
    ) -> Result<Vec<(String, u64, Id, FileState)>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT path, size, file_id, state FROM files WHERE task_id = ?1
                 AND state IN ('uploaded', 'ingesting', 'ingested', 'failed')
                 AND file_id IS NOT NULL ORDER BY path",
            )?;
            let rows = st.query_map([id_int(task)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    required_id(r, 2)?,
                    FileState::parse(&r.get::<_, String>(3)?),
                ))
            })?;
            rows.collect()
        })
        .await
    }

    /// Files whose ingestion failed for good, by task: what `retry` re-drives.
    pub async fn ingest_failures(&self) -> Result<Vec<(Id, Id)>, JournalError> {
        self.run(|c| {
            let mut st = c.prepare_cached(
                "SELECT task_id, file_id FROM files WHERE state = 'failed'
                 AND fail_stage = 'ingest' AND task_id IS NOT NULL AND file_id IS NOT NULL
                 ORDER BY task_id",
            )?;
            let rows = st.query_map([], |r| Ok((required_id(r, 0)?, required_id(r, 1)?)))?;
            rows.collect()
        })
        .await
    }

    /// Paths whose upload failed: what `retry` sends again (with `refused`, also those
    /// the service refused for good).
    pub async fn upload_failures(&self, refused: bool) -> Result<Vec<String>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT path FROM files WHERE state = 'failed'
                 AND (fail_stage = 'upload' OR (?1 AND fail_stage = 'refused')) ORDER BY path",
            )?;
            let rows = st.query_map([refused], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .await
    }

    /// Files refused for good become pending again (`retry --refused`).
    pub async fn requeue_refused(&self, paths: Vec<String>) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET state = 'pending', fail_stage = NULL
                 WHERE path = ?1 AND state = 'failed' AND fail_stage = 'refused'",
            )?;
            for p in paths {
                st.execute([p])?;
            }
            Ok(())
        })
        .await
    }

    /// Puts files of `task` back under follow after a retry was asked for outside the
    /// follow loop.
    pub async fn mark_retried(&self, task: Id, file_ids: Vec<Id>) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET state = 'ingesting', fail_stage = NULL, ingest_retries = 0
                 WHERE task_id = ?2 AND file_id = ?1",
            )?;
            for id in file_ids {
                st.execute(params![id_int(id), id_int(task)])?;
            }
            Ok(())
        })
        .await
    }
}
