//! Tasks in the store as the task calls read and change them: their files (paged, with
//! statuses from the clock), retries of failed files, pause, resume, update and delete.

use rusqlite::{OptionalExtension, params};

use moi_client::Id;
use moi_client::model::{Task, TaskFile, file_status, task_status};

use super::*;

impl Store {
    /// Task ids whose source is `connector`.
    pub fn tasks_of_connector(&self, connector: i64) -> rusqlite::Result<Vec<Id>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM tasks WHERE source_connector_id = ?1 ORDER BY id")?;
        let rows = st.query_map([connector], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|i| Id(i as u64))).collect()
    }

    fn task_files_rows(&self, task: Id) -> rusqlite::Result<Vec<FileRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE task_id = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([task.0 as i64], file_row)?;
        rows.collect()
    }

    fn task_volume(&self, task: Id) -> rusqlite::Result<Option<(String, String)>> {
        self.conn
            .query_row(
                "SELECT t.volume_id, coalesce(v.name, '') FROM tasks t
                 LEFT JOIN volumes v ON v.id = t.volume_id WHERE t.id = ?1",
                [task.0 as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
    }

    pub fn task_files(
        &self,
        task: Id,
        statuses: &[i64],
        paging: crate::extract::Paging,
    ) -> rusqlite::Result<Option<TaskFilesAnswer>> {
        let Some((_, volume_name)) = self.task_volume(task)? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let rows = self.task_files_rows(task)?;
        let status_of: Vec<i64> = rows.iter().map(|r| r.status(now)).collect();
        let total_success = status_of
            .iter()
            .filter(|s| **s == file_status::SUCCESS)
            .count();
        let total_failed = status_of
            .iter()
            .filter(|s| **s == file_status::FAILED)
            .count();
        let selected: Vec<(&FileRow, i64)> = rows
            .iter()
            .zip(status_of.iter().copied())
            .filter(|(_, s)| statuses.is_empty() || statuses.contains(s))
            .collect();
        let files = paging
            .slice(selected.iter())
            .map(|(r, status)| TaskFile {
                id: Id(r.id as u64),
                name: r.name.clone(),
                file_type: file_type_of(&r.name).into(),
                status: (*status).into(),
                size: r.size as u64,
                update_time: (r.phase_start_ms.max(r.ready_at_ms.min(now)) / 1000).into(),
                other_metadata: serde_json::Value::String(String::new()),
                reason: if *status == file_status::FAILED {
                    format!(
                        "emulated ingestion failure on attempt {} (the document could not be parsed)",
                        r.attempts
                    )
                } else {
                    r.note.clone()
                },
                user: "admin".into(),
                start_time: (r.created_ms / 1000).into(),
                end_time: if file_status::is_final(*status) { r.ready_at_ms / 1000 } else { 0 }.into(),
                path: format!("/{volume_name}/{}", r.name),
            })
            .collect();
        Ok(Some(TaskFilesAnswer {
            total: selected.len() as u64,
            total_success: total_success as u64,
            total_failed: total_failed as u64,
            files,
        }))
    }

    /// Re-arms the failed files among `ids`; `fails` decides how each new attempt ends.
    pub fn retry(
        &mut self,
        task: Id,
        ids: &[Id],
        ingest_time: Duration,
        mut fails: impl FnMut(&str) -> bool,
    ) -> rusqlite::Result<RetryOutcome> {
        if self.task_volume(task)?.is_none() {
            return Ok(RetryOutcome::NoSuchTask);
        }
        let now = self.clock.now_ms();
        let rows = self.task_files_rows(task)?;
        for id in ids {
            if !rows.iter().any(|r| r.id as u64 == id.0) {
                return Ok(RetryOutcome::NotInTask(*id));
            }
        }
        let tx = self.conn.transaction()?;
        let mut retried = 0;
        for r in rows.iter().filter(|r| ids.contains(&Id(r.id as u64))) {
            // Only a failed load can be retried; others are left as they are.
            if r.status(now) != file_status::FAILED {
                continue;
            }
            tx.execute(
                "UPDATE files SET phase_start_ms = ?2, ready_at_ms = ?3, will_fail = ?4,
                 retrying = 1, attempts = attempts + 1 WHERE id = ?1",
                params![
                    r.id,
                    now,
                    now + ingest_time.as_millis() as i64,
                    fails(&r.name)
                ],
            )?;
            retried += 1;
        }
        tx.execute(
            "UPDATE tasks SET updated_ms = ?2 WHERE id = ?1",
            params![task.0 as i64, now],
        )?;
        tx.commit()?;
        Ok(RetryOutcome::Retried(retried))
    }

    pub fn task(&self, task: Id) -> rusqlite::Result<Option<Task>> {
        let row = self
            .conn
            .query_row(
                "SELECT t.id, t.volume_id, coalesce(v.name, ''), t.name, t.source_connector_id,
                        t.source_config, t.paused, t.created_ms, t.updated_ms
                 FROM tasks t LEFT JOIN volumes v ON v.id = t.volume_id WHERE t.id = ?1",
                [task.0 as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, bool>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, i64>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, volume, volume_name, name, connector, config, paused, created, updated)) =
            row
        else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let files = self.task_files_rows(Id(id as u64))?;
        let done = files.iter().all(|f| file_status::is_final(f.status(now)));
        let end = files.iter().map(|f| f.ready_at_ms).max().unwrap_or(created);
        let status = if paused {
            task_status::PAUSED
        } else if done {
            task_status::COMPLETED
        } else {
            task_status::RUNNING
        };
        Ok(Some(Task {
            id: Id(id as u64),
            source_connector_id: connector.map(|c| Id(c as u64)),
            source_connector_type: if connector.is_some() { 4 } else { 0 }.into(),
            volume_id: Some(VolumeId::from_str(&volume).unwrap_or_default()),
            volume_name,
            name,
            status: status.into(),
            creator: "admin".into(),
            source_config: serde_json::from_str(&config).unwrap_or_default(),
            start_at: (created / 1000).into(),
            end_at: if done { end / 1000 } else { 0 }.into(),
            created_at: (created / 1000).into(),
            updated_at: (updated.max(if done { end } else { 0 }) / 1000).into(),
        }))
    }

    pub fn task_ids(&self) -> rusqlite::Result<Vec<Id>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM tasks ORDER BY id")?;
        let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|i| Id(i as u64))).collect()
    }

    pub fn set_paused(&self, task: Id, paused: bool) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "UPDATE tasks SET paused = ?2, updated_ms = ?3 WHERE id = ?1",
            params![task.0 as i64, paused, self.clock.now_ms()],
        )?;
        Ok(n > 0)
    }

    pub fn update_config(&self, task: Id, config: &serde_json::Value) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "UPDATE tasks SET source_config = ?2, updated_ms = ?3 WHERE id = ?1",
            params![task.0 as i64, config.to_string(), self.clock.now_ms()],
        )?;
        Ok(n > 0)
    }

    pub fn delete_task(&mut self, task: Id) -> rusqlite::Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM files WHERE task_id = ?1", [task.0 as i64])?;
        let n = tx.execute("DELETE FROM tasks WHERE id = ?1", [task.0 as i64])?;
        tx.commit()?;
        Ok(n > 0)
    }
}
