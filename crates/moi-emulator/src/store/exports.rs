//! Export tasks in the store: the task's body as it was created, and one row per file with
//! when its current attempt started and ends, and how.

use rusqlite::{OptionalExtension, params};

use super::Store;

/// A file of an export task.
#[derive(Debug, Clone)]
pub struct ExportFileRow {
    pub idx: i64,
    pub file_id: String,
    pub full_path: Vec<String>,
    pub start_ms: i64,
    pub ready_ms: i64,
    pub will_fail: bool,
    pub attempts: i64,
}

/// A new export file: its id, path, and whether its first attempt fails.
pub type NewExportFile<'a> = (&'a str, &'a [String], bool);

impl Store {
    /// The task's body as created, and when it was created.
    pub fn export_task(&self, id: &str) -> rusqlite::Result<Option<(String, i64)>> {
        self.conn
            .query_row(
                "SELECT body, created_ms FROM export_tasks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
    }

    /// Every export task's id, oldest first.
    pub fn export_ids(&self) -> rusqlite::Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM export_tasks ORDER BY created_ms, id")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    }

    pub fn export_files(&self, id: &str) -> rusqlite::Result<Vec<ExportFileRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT idx, file_id, full_path, phase_start_ms, ready_at_ms, will_fail, attempts
             FROM export_files WHERE task_id = ?1 ORDER BY idx",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(ExportFileRow {
                idx: r.get(0)?,
                file_id: r.get(1)?,
                full_path: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                start_ms: r.get(3)?,
                ready_ms: r.get(4)?,
                will_fail: r.get(5)?,
                attempts: r.get(6)?,
            })
        })?;
        rows.collect()
    }

    /// Stores a new export task whose files take `ingest_ms` each; returns its id.
    pub fn add_export(
        &mut self,
        body: &str,
        files: &[NewExportFile<'_>],
        ingest_ms: i64,
    ) -> rusqlite::Result<String> {
        let now = self.now_ms();
        let id = format!("export-{}", self.new_id());
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO export_tasks(id, body, created_ms) VALUES (?1, ?2, ?3)",
            params![id, body, now],
        )?;
        for (i, (file_id, path, fail)) in files.iter().enumerate() {
            let path = serde_json::to_string(path).unwrap_or_default();
            tx.execute(
                "INSERT INTO export_files(task_id, idx, file_id, full_path, phase_start_ms,
                                          ready_at_ms, will_fail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, i as i64, file_id, path, now, now + ingest_ms, fail],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Starts another attempt of the files `(idx, will_fail)` of task `id`.
    pub fn rerun_export_files(
        &self,
        id: &str,
        files: &[(i64, bool)],
        ingest_ms: i64,
    ) -> rusqlite::Result<()> {
        let now = self.now_ms();
        for (idx, fail) in files {
            self.conn.execute(
                "UPDATE export_files SET phase_start_ms = ?3, ready_at_ms = ?4, will_fail = ?5,
                 attempts = attempts + 1 WHERE task_id = ?1 AND idx = ?2",
                params![id, idx, now, now + ingest_ms, fail],
            )?;
        }
        Ok(())
    }

    /// False when there was no such task.
    pub fn delete_export(&mut self, id: &str) -> rusqlite::Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM export_files WHERE task_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM export_tasks WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }
}
