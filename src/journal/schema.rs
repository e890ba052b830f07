//! Versioned migrations, tracked with `PRAGMA user_version` (cargo's habit).
//!
//! Compatibility: the list is append-only. Never edit, reorder or remove a step; add one.
//! A journal written by a newer moi-ingest (a higher version than this list knows) is
//! refused rather than guessed at.

use rusqlite::Connection;

/// 'MOI1': marks the file as a moi-ingest journal so a foreign database is recognised.
pub const APPLICATION_ID: i64 = 0x4D4F_4931;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE files (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 BLOB,
        state TEXT NOT NULL,
        fail_stage TEXT,
        in_flight INTEGER NOT NULL DEFAULT 0,
        file_id TEXT,
        task_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        ingest_status INTEGER,
        ingest_retries INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        first_seen_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        uploaded_at INTEGER,
        run_id INTEGER
     );
     CREATE INDEX files_by_task ON files(task_id) WHERE task_id IS NOT NULL;
     CREATE INDEX files_by_file_id ON files(file_id) WHERE file_id IS NOT NULL;
     CREATE INDEX files_by_state ON files(state);
     CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        command TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        exit_code INTEGER,
        summary TEXT
     );
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: each file's base name, indexed, so a name-based `dedup` replace can be withheld
    // when another path of the same name exists (a service that reads `name` as the base
    // name would otherwise replace that other file). The expression takes what follows the
    // last `/`.
    "ALTER TABLE files ADD COLUMN base_name TEXT;
     UPDATE files SET base_name = substr(path, length(rtrim(path, replace(path, '/', ''))) + 1);
     CREATE INDEX files_by_base_name ON files(base_name);",
    // 3: a smaller journal, for folders of millions of files (about 280 bytes a file before,
    // under 200 after; see the README's journal note). Task and file ids are 8-byte
    // integers instead of 19-digit text, in the row and in the index. One index on
    // (task_id, file_id) serves both lookups, as every caller knows the task. The base name
    // is an indexed expression, not a stored column. The index on `state` goes: the queries
    // that filter by state run once a run and a scan of the table serves them. The three
    // timestamps go too (nothing read them): `run_id` says which run last touched a row,
    // and `runs` says when.
    "CREATE TABLE files_v3 (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 BLOB,
        state TEXT NOT NULL,
        fail_stage TEXT,
        in_flight INTEGER NOT NULL DEFAULT 0,
        file_id INTEGER,
        task_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        ingest_status INTEGER,
        ingest_retries INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        run_id INTEGER
     );
     INSERT INTO files_v3
        SELECT path, size, mtime_ns, sha256, state, fail_stage, in_flight,
               CAST(file_id AS INTEGER), CAST(task_id AS INTEGER), attempts, ingest_status,
               ingest_retries, last_error, run_id
        FROM files;
     DROP TABLE files;
     ALTER TABLE files_v3 RENAME TO files;
     CREATE INDEX files_by_task ON files(task_id, file_id) WHERE task_id IS NOT NULL;
     CREATE INDEX files_by_base_name
        ON files(substr(path, length(rtrim(path, replace(path, '/', ''))) + 1));",
    // 4: mirroring. Each file's device and inode, so that a file that vanished from one
    // path and appears at another is known as a rename (about 20 bytes a file, and an
    // index read only for files new to the journal). `check_copies`: a send that may have
    // left another copy at the path (a re-send, a retry, a crash mid-send), to be looked
    // for in the volume's listing once the path is confirmed. State 'deleted' is new too.
    "ALTER TABLE files ADD COLUMN dev INTEGER;
     ALTER TABLE files ADD COLUMN ino INTEGER;
     ALTER TABLE files ADD COLUMN check_copies INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX files_by_inode ON files(ino) WHERE ino IS NOT NULL;
     CREATE INDEX files_to_check ON files(check_copies) WHERE check_copies = 1;",
];

/// The indexed base-name expression of migration 3. A query must spell it exactly so for
/// SQLite to use the index.
pub(super) const BASE_NAME: &str = "substr(path, length(rtrim(path, replace(path, '/', ''))) + 1)";

#[derive(Debug)]
pub enum SchemaProblem {
    /// A SQLite database, but not one of ours.
    Foreign,
    /// Ours, from a newer moi-ingest.
    TooNew(i64),
}

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), SchemaProblem>> {
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app_id != APPLICATION_ID {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id != 0 || version != 0 || tables != 0 {
            return Ok(Err(SchemaProblem::Foreign));
        }
    }
    if version > MIGRATIONS.len() as i64 {
        return Ok(Err(SchemaProblem::TooNew(version)));
    }
    if app_id == APPLICATION_ID && version == MIGRATIONS.len() as i64 {
        // Up to date: write nothing, so `status` can open a journal a run is writing.
        return Ok(Ok(()));
    }
    let tx = conn.transaction()?;
    for step in &MIGRATIONS[version as usize..] {
        tx.execute_batch(step)?;
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
        MIGRATIONS.len()
    ))?;
    tx.commit()?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_twice_and_mark_the_file() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap().unwrap();
        migrate(&mut conn).unwrap().unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        // A journal of the first schema, with rows: migrated in place, base names filled.
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;
             INSERT INTO files(path, size, mtime_ns, state, first_seen_at, updated_at)
             VALUES ('a/b/c.pdf', 1, 1, 'ingested', 0, 0), ('top.txt', 1, 1, 'ingested', 0, 0);"
        ))
        .unwrap();
        old.execute_batch(
            "UPDATE files SET task_id = '1889613340219121664', file_id = '1889613341347389440'
             WHERE path = 'top.txt'",
        )
        .unwrap();
        migrate(&mut old).unwrap().unwrap();
        let rows: Vec<(String, Option<i64>, String)> = old
            .prepare(&format!(
                "SELECT path, task_id, {BASE_NAME} FROM files INDEXED BY files_by_base_name
                 WHERE {BASE_NAME} > '' ORDER BY path"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a/b/c.pdf".to_string(), None, "c.pdf".to_string()),
                (
                    "top.txt".to_string(),
                    Some(1_889_613_340_219_121_664),
                    "top.txt".to_string()
                )
            ]
        );
        let mut other = Connection::open_in_memory().unwrap();
        other.execute_batch("CREATE TABLE x(y)").unwrap();
        assert!(matches!(
            migrate(&mut other).unwrap(),
            Err(SchemaProblem::Foreign)
        ));
    }
}
