//! The journal's history and notes: counts by state, failures, runs, what the journal is
//! for (its identity) and the settings a run recorded. Every statement here reads or
//! writes those; the per-file work of a run is in `ops`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::ops::FileState;
use super::{Identity, Journal, JournalError, now_secs};

#[derive(Debug, Clone, Default, Serialize)]
pub struct StateCounts {
    pub pending: u64,
    pub uploaded: u64,
    pub ingesting: u64,
    pub ingested: u64,
    pub failed: u64,
    /// Removed from the volume by `--delete`: their source is gone.
    pub deleted: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub path: String,
    pub stage: String,
    pub reason: String,
    pub file_id: Option<String>,
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub command: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: Option<serde_json::Value>,
}

pub(super) fn check_identity(
    conn: &Connection,
    path: &Path,
    id: &Identity,
) -> Result<(), JournalError> {
    let write_err =
        |e: rusqlite::Error| super::failed(path.to_path_buf(), e.to_string(), super::is_damage(&e));
    for (field, value) in [
        ("endpoint", &id.endpoint),
        ("volume", &id.volume),
        ("folder", &id.root),
    ] {
        let recorded: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [field], |r| {
                r.get(0)
            })
            .optional()
            .map_err(write_err)?;
        match recorded {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                    params![field, value],
                )
                .map_err(write_err)?;
            }
            Some(r) if &r == value => {}
            Some(r) => {
                return Err(JournalError::Mismatch {
                    path: path.to_path_buf(),
                    field,
                    recorded: r,
                    requested: value.clone(),
                });
            }
        }
    }
    Ok(())
}

impl Journal {
    pub async fn counts(&self) -> Result<StateCounts, JournalError> {
        self.run(|c| {
            let mut counts = StateCounts::default();
            let mut st =
                c.prepare_cached("SELECT state, count(*), sum(size) FROM files GROUP BY state")?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })?;
            for row in rows {
                let (state, n, bytes) = row?;
                let n = n as u64;
                let state = FileState::parse(&state);
                if state != FileState::Deleted {
                    counts.bytes += bytes.unwrap_or(0) as u64;
                }
                match state {
                    FileState::Pending => counts.pending += n,
                    FileState::Deleted => counts.deleted += n,
                    FileState::Uploaded => counts.uploaded += n,
                    FileState::Ingesting => counts.ingesting += n,
                    FileState::Ingested => counts.ingested += n,
                    FileState::Failed => counts.failed += n,
                }
            }
            Ok(counts)
        })
        .await
    }

    pub async fn failures(&self, limit: u64) -> Result<Vec<Failure>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT path, coalesce(fail_stage, ''), coalesce(last_error, ''), file_id, task_id
                 FROM files WHERE state = 'failed' ORDER BY path LIMIT ?1",
            )?;
            let rows = st.query_map([limit as i64], |r| {
                Ok(Failure {
                    path: r.get(0)?,
                    stage: r.get(1)?,
                    reason: r.get(2)?,
                    file_id: super::stored_id(r, 3)?.map(|i| i.to_string()),
                    task_id: super::stored_id(r, 4)?.map(|i| i.to_string()),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Folds the write-ahead log into the journal file and empties it: a run ends with one
    /// self-contained file, not a large `-wal` beside it.
    pub async fn checkpoint(&self) -> Result<(), JournalError> {
        self.run(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
            .await
    }

    /// When the last run that sent everything ended (Unix seconds): exit 0, or 5, where
    /// only ingestion was still pending and the next run follows it.
    pub async fn last_success(&self) -> Result<Option<i64>, JournalError> {
        self.run(|c| {
            c.query_row(
                "SELECT max(ended_at) FROM runs WHERE exit_code IN (0, 5)",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
        })
        .await
    }

    /// When this journal's first run started (Unix seconds).
    pub async fn first_run(&self) -> Result<Option<i64>, JournalError> {
        self.run(|c| c.query_row("SELECT min(started_at) FROM runs", [], |r| r.get(0)))
            .await
    }

    /// How many of the latest ended runs of `command`, newest first, stopped at the
    /// cut-off (exit 6) before one that did not.
    pub async fn cutoffs_in_a_row(&self, command: &str) -> Result<u32, JournalError> {
        let command = command.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT exit_code FROM runs WHERE command = ?1 AND ended_at IS NOT NULL \
                 ORDER BY id DESC LIMIT 100",
            )?;
            let codes = stmt.query_map([command], |r| r.get::<_, Option<i64>>(0))?;
            let mut n = 0;
            for code in codes {
                if code? != Some(6) {
                    break;
                }
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    pub async fn start_run(&self, command: &str) -> Result<i64, JournalError> {
        let command = command.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO runs(command, started_at) VALUES (?1, ?2)",
                params![command, now_secs()],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    pub async fn finish_run(
        &self,
        run: i64,
        exit_code: i32,
        summary: serde_json::Value,
    ) -> Result<(), JournalError> {
        self.run(move |c| {
            c.execute(
                "UPDATE runs SET ended_at = ?2, exit_code = ?3, summary = ?4 WHERE id = ?1",
                params![run, now_secs(), exit_code, summary.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn recent_runs(&self, limit: u64) -> Result<Vec<RunRecord>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, command, started_at, ended_at, exit_code, summary FROM runs
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit as i64], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    command: r.get(1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    exit_code: r.get(4)?,
                    summary: r
                        .get::<_, Option<String>>(5)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Stops the journal from growing past its current size, as a full disk would (for the
    /// tests that show a full disk keeps what was confirmed).
    pub async fn cap_at_current_size(&self) -> Result<(), JournalError> {
        self.run(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        })
        .await
    }

    /// Records `value` under `key` in the journal's own notes (the run settings, say).
    pub async fn set_note(&self, key: &str, value: String) -> Result<(), JournalError> {
        let key = format!("note:{key}");
        self.run(move |c| {
            c.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
        })
        .await
    }

    pub async fn note(&self, key: &str) -> Result<Option<String>, JournalError> {
        let key = format!("note:{key}");
        self.run(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// The identity the journal was recorded for (for `status` and `retry`).
    pub async fn identity(&self) -> Result<Option<Identity>, JournalError> {
        self.run(|c| {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                c.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(match (get("endpoint")?, get("volume")?, get("folder")?) {
                (Some(endpoint), Some(volume), Some(root)) => Some(Identity {
                    endpoint,
                    volume,
                    root,
                }),
                _ => None,
            })
        })
        .await
    }
}
