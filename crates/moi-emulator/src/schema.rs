//! The emulator's SQL schema as an append-only list of migrations under
//! `PRAGMA user_version` (the journal's habit): never edit, reorder or remove a step.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema (integer volume ids). `IF NOT EXISTS`, because data folders made
    // before migrations were tracked already have these tables at user_version 0.
    "CREATE TABLE IF NOT EXISTS volumes(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS tasks(
        id INTEGER PRIMARY KEY, volume_id INTEGER NOT NULL, name TEXT NOT NULL,
        source_connector_id INTEGER, source_config TEXT NOT NULL DEFAULT '{}',
        paused INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS files(
        id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, volume_id INTEGER NOT NULL,
        name TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL,
        phase_start_ms INTEGER NOT NULL, ready_at_ms INTEGER NOT NULL,
        will_fail INTEGER NOT NULL, retrying INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 1, created_ms INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS files_by_task ON files(task_id, id);
     CREATE INDEX IF NOT EXISTS files_by_name ON files(volume_id, name);",
    // 2: volume ids are opaque text (the live service's UUID-like ids); each stored file
    // keeps its MD5 (for `dedup` by md5) and whether it is still in the volume (`live`:
    // 0 once replaced, or when a `skip` kept it out); `note` says why.
    "CREATE TABLE volumes2(id TEXT PRIMARY KEY, name TEXT NOT NULL);
     INSERT INTO volumes2 SELECT CAST(id AS TEXT), name FROM volumes;
     DROP TABLE volumes;
     ALTER TABLE volumes2 RENAME TO volumes;
     CREATE TABLE tasks2(
        id INTEGER PRIMARY KEY, volume_id TEXT NOT NULL, name TEXT NOT NULL,
        source_connector_id INTEGER, source_config TEXT NOT NULL DEFAULT '{}',
        paused INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL);
     INSERT INTO tasks2 SELECT id, CAST(volume_id AS TEXT), name, source_connector_id,
        source_config, paused, created_ms, updated_ms FROM tasks;
     DROP TABLE tasks;
     ALTER TABLE tasks2 RENAME TO tasks;
     CREATE TABLE files2(
        id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, volume_id TEXT NOT NULL,
        name TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL,
        phase_start_ms INTEGER NOT NULL, ready_at_ms INTEGER NOT NULL,
        will_fail INTEGER NOT NULL, retrying INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 1, created_ms INTEGER NOT NULL,
        md5 TEXT, live INTEGER NOT NULL DEFAULT 1, note TEXT);
     INSERT INTO files2(id, task_id, volume_id, name, size, mime, phase_start_ms,
        ready_at_ms, will_fail, retrying, attempts, created_ms)
        SELECT id, task_id, CAST(volume_id AS TEXT), name, size, mime, phase_start_ms,
        ready_at_ms, will_fail, retrying, attempts, created_ms FROM files;
     DROP TABLE files;
     ALTER TABLE files2 RENAME TO files;
     CREATE INDEX files_by_task ON files(task_id, id);
     CREATE INDEX files_by_path ON files(volume_id, name) WHERE live = 1;
     CREATE INDEX files_by_md5 ON files(volume_id, md5) WHERE live = 1;",
    // 3: connectors and export tasks.
    "CREATE TABLE connectors(
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, source_type INTEGER NOT NULL,
        config TEXT NOT NULL, usage_type TEXT NOT NULL DEFAULT '[]',
        created_s INTEGER NOT NULL, updated_s INTEGER NOT NULL);
     CREATE TABLE export_tasks(
        id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms INTEGER NOT NULL);
     CREATE TABLE export_files(
        task_id TEXT NOT NULL, idx INTEGER NOT NULL, file_id TEXT NOT NULL,
        full_path TEXT NOT NULL, phase_start_ms INTEGER NOT NULL, ready_at_ms INTEGER NOT NULL,
        will_fail INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY(task_id, idx));",
    // 4: the catalog. Folders with their whole path (a rename is one prefix update), and
    // each file's folder (0: the root); files stored before this get theirs at open.
    "CREATE TABLE folders(
        id INTEGER PRIMARY KEY, volume_id TEXT NOT NULL, parent_id INTEGER NOT NULL,
        name TEXT NOT NULL, path TEXT NOT NULL, created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL);
     CREATE UNIQUE INDEX folders_by_path ON folders(volume_id, path);
     CREATE INDEX folders_by_parent ON folders(volume_id, parent_id);
     ALTER TABLE files ADD COLUMN parent_id INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX files_by_parent ON files(volume_id, parent_id) WHERE live = 1;",
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for step in &MIGRATIONS[version.max(0) as usize..] {
        tx.execute_batch(step)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {};", MIGRATIONS.len()))?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_twice_and_keep_integer_volumes_as_text() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute("INSERT INTO volumes VALUES (1889578498228068352, 'v')", [])
            .unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let id: String = conn
            .query_row("SELECT id FROM volumes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, "1889578498228068352");
    }
}
