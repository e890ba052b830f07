//! The journal's side of mirroring a folder: which files the volume holds for it, which
//! of them moved or went, and what was deleted, renamed or adopted.
//!
//! "In the volume" means confirmed by the service (uploaded, ingesting, ingested, or
//! failed at ingestion, which the volume still holds); a pending, upload-failed or deleted
//! row is not.

use rusqlite::params;

use super::ops::{FileRecord, FileState, has_inodes};
use super::{Journal, JournalError, stored_id};
use crate::api::Id;

const IN_VOLUME: &str = "(state IN ('uploaded', 'ingesting', 'ingested')
     OR (state = 'failed' AND fail_stage = 'ingest'))";

/// A file the journal says the volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub path: String,
    pub size: u64,
    pub file_id: Option<Id>,
}

/// A file found in the volume, recorded without sending it (`--adopt`).
#[derive(Debug, Clone)]
pub struct Adopted {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: (u64, u64),
    pub file_id: Option<Id>,
}

fn like_below(dir: &str) -> String {
    let mut p = String::new();
    for c in dir.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str("/%");
    p
}

fn held_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Held> {
    Ok(Held {
        path: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        file_id: stored_id(r, 2)?,
    })
}

impl Journal {
    /// How many files the volume holds for this journal.
    pub async fn count_in_volume(&self) -> Result<u64, JournalError> {
        self.run(|c| {
            c.prepare_cached(&format!("SELECT count(*) FROM files WHERE {IN_VOLUME}"))?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
        .await
    }

    /// Files in the volume after `after` in path order, at most `limit`: the pages a
    /// caller walks to look at every one without holding them all.
    pub async fn in_volume_after(
        &self,
        after: String,
        limit: u32,
    ) -> Result<Vec<Held>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT path, size, file_id FROM files WHERE path > ?1 AND {IN_VOLUME}
                 ORDER BY path LIMIT ?2"
            ))?;
            let rows = st.query_map(params![after, limit], held_row)?;
            rows.collect()
        })
        .await
    }

    /// Files in the volume below folder `dir` (at any depth).
    pub async fn in_volume_below(&self, dir: String) -> Result<Vec<Held>, JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT path, size, file_id FROM files
                 WHERE path LIKE ?1 ESCAPE '\\' AND {IN_VOLUME} ORDER BY path"
            ))?;
            let rows = st.query_map([like_below(&dir)], held_row)?;
            rows.collect()
        })
        .await
    }

    /// For each (device, inode): a file in the volume that had it, with its record.
    pub async fn by_inode(
        &self,
        inodes: Vec<(u64, u64)>,
    ) -> Result<Vec<Option<FileRecord>>, JournalError> {
        self.run(move |c| {
            if !has_inodes(c)? {
                return Ok(inodes.iter().map(|_| None).collect());
            }
            let mut st = c.prepare_cached(&format!(
                "SELECT path, size, mtime_ns, sha256, state, fail_stage, in_flight, file_id,
                        task_id FROM files WHERE ino = ?2 AND dev = ?1 AND {IN_VOLUME} LIMIT 1"
            ))?;
            inodes
                .into_iter()
                .map(|(dev, ino)| {
                    let mut rows = st.query(params![dev as i64, ino as i64])?;
                    rows.next()?
                        .map(|r| {
                            Ok(FileRecord {
                                path: r.get(0)?,
                                size: r.get::<_, i64>(1)? as u64,
                                mtime_ns: r.get(2)?,
                                sha256: r.get(3)?,
                                state: FileState::parse(&r.get::<_, String>(4)?),
                                fail_stage: r.get(5)?,
                                in_flight: r.get(6)?,
                                file_id: stored_id(r, 7)?,
                                task_id: stored_id(r, 8)?,
                                inode: Some((dev, ino)),
                            })
                        })
                        .transpose()
                })
                .collect()
        })
        .await
    }

    /// Records the (device, inode) of files confirmed before schema 4.
    pub async fn record_inodes(
        &self,
        inodes: Vec<(String, (u64, u64))>,
    ) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached("UPDATE files SET dev = ?2, ino = ?3 WHERE path = ?1")?;
            for (path, (dev, ino)) in inodes {
                st.execute(params![path, dev as i64, ino as i64])?;
            }
            Ok(())
        })
        .await
    }

    /// Files whose send may have left another copy at their path, now confirmed.
    pub async fn copies_to_check(&self) -> Result<Vec<Held>, JournalError> {
        self.run(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT path, size, file_id FROM files WHERE check_copies = 1 AND {IN_VOLUME}
                 ORDER BY path"
            ))?;
            let rows = st.query_map([], held_row)?;
            rows.collect()
        })
        .await
    }

    /// The copies at these paths were looked for (and the extra ones deleted).
    pub async fn copies_checked(&self, paths: Vec<String>) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached("UPDATE files SET check_copies = 0 WHERE path = ?1")?;
            for p in paths {
                st.execute([p])?;
            }
            Ok(())
        })
        .await
    }

    /// These paths hold an older version in the volume that this journal did not send
    /// (`--adopt` found one of another size): once the new one is confirmed, the copies
    /// check removes the old.
    pub async fn expect_copies(
        &self,
        files: Vec<(String, u64, i64)>,
        run: i64,
    ) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "INSERT INTO files(path, size, mtime_ns, state, run_id, check_copies)
                 VALUES (?1, ?2, ?3, 'pending', ?4, 1)
                 ON CONFLICT(path) DO UPDATE SET check_copies = 1",
            )?;
            for (path, size, mtime_ns) in files {
                st.execute(params![path, size as i64, mtime_ns, run])?;
            }
            Ok(())
        })
        .await
    }

    /// The volume no longer holds these files: their source is gone.
    pub async fn mark_deleted(&self, paths: Vec<String>, run: i64) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE files SET state = 'deleted', fail_stage = NULL, in_flight = 0,
                    check_copies = 0, last_error = NULL, run_id = ?2 WHERE path = ?1",
            )?;
            for p in paths {
                st.execute(params![p, run])?;
            }
            Ok(())
        })
        .await
    }

    /// A file renamed in the volume: its row moves to the new path (any old row there,
    /// a deletion, gives way).
    pub async fn move_file(
        &self,
        from: String,
        to: String,
        mtime_ns: i64,
        inode: (u64, u64),
    ) -> Result<(), JournalError> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM files WHERE path = ?1")?
                .execute([&to])?;
            c.prepare_cached(
                "UPDATE files SET path = ?2, mtime_ns = ?3, dev = ?4, ino = ?5 WHERE path = ?1",
            )?
            .execute(params![from, to, mtime_ns, inode.0 as i64, inode.1 as i64])?;
            Ok(())
        })
        .await
    }

    /// A folder renamed in the volume: every row below `from` moves below `to`.
    pub async fn move_folder(&self, from: String, to: String) -> Result<(), JournalError> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM files WHERE path LIKE ?1 ESCAPE '\\'")?
                .execute([like_below(&to)])?;
            c.prepare_cached(
                "UPDATE files SET path = ?2 || substr(path, ?3) WHERE path LIKE ?1 ESCAPE '\\'",
            )?
            .execute(params![like_below(&from), to, from.len() as i64 + 1])?;
            Ok(())
        })
        .await
    }

    /// Files the volume already held, recorded as there without being sent. Their
    /// ingestion is the volume's business: they are recorded as ingested.
    pub async fn adopt(&self, files: Vec<Adopted>, run: i64) -> Result<(), JournalError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "INSERT INTO files(path, size, mtime_ns, state, in_flight, attempts, run_id,
                                   dev, ino, file_id)
                 VALUES (?1, ?2, ?3, 'ingested', 0, 0, ?4, ?5, ?6, ?7)
                 ON CONFLICT(path) DO UPDATE SET size = excluded.size,
                    mtime_ns = excluded.mtime_ns, state = 'ingested', fail_stage = NULL,
                    in_flight = 0, run_id = excluded.run_id, dev = excluded.dev,
                    ino = excluded.ino, file_id = excluded.file_id",
            )?;
            for f in files {
                st.execute(params![
                    f.path,
                    f.size as i64,
                    f.mtime_ns,
                    run,
                    f.inode.0 as i64,
                    f.inode.1 as i64,
                    f.file_id.map(|i| i.0 as i64)
                ])?;
            }
            Ok(())
        })
        .await
    }
}
