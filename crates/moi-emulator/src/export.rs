//! Export tasks (`/byoa/api/v1/export/task/...`): create, list, info with `file_stats`,
//! per-file states, rerun of the failed files, delete. Answers use the export API's own
//! lower-case `"ok"`. State in the emulator's SQLite.
//!
//! The documents give no status numbers; the emulator uses, for tasks and files alike:
//! 1 pending, 2 running, 3 completed, 4 failed (a task is failed when all its files are
//! done and some failed). A file moves from pending to running to its end over the
//! emulator's `--ingest-time`; the ingestion fault settings decide which ones fail.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::{AppState, EmuError, admit, json_body, ok_lower};
use moi_client::model::{ExportCreate, ExportFilesQuery, ExportListQuery, ExportRef};

type St = State<Arc<AppState>>;

const PENDING: i64 = 1;
const RUNNING: i64 = 2;
const COMPLETED: i64 = 3;
const FAILED: i64 = 4;

struct FileRow {
    idx: i64,
    file_id: String,
    full_path: Vec<String>,
    start: i64,
    ready: i64,
    will_fail: bool,
    attempts: i64,
}

impl FileRow {
    fn status(&self, now: i64) -> i64 {
        if now >= self.ready {
            if self.will_fail { FAILED } else { COMPLETED }
        } else if now < self.start + (self.ready - self.start) / 3 {
            PENDING
        } else {
            RUNNING
        }
    }
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn no_task(id: &str) -> EmuError {
    EmuError::not_found(
        "ErrExportTaskNotFound",
        format!("export task {id} does not exist"),
    )
}

fn task_body(s: &AppState, id: &str) -> Result<(ExportCreate, i64), EmuError> {
    let row: Option<(String, i64)> = s
        .store()
        .conn
        .query_row(
            "SELECT body, created_ms FROM export_tasks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (body, created) = row.ok_or_else(|| no_task(id))?;
    Ok((serde_json::from_str(&body).unwrap_or_default(), created))
}

fn files_of(s: &AppState, id: &str) -> Result<Vec<FileRow>, EmuError> {
    let store = s.store();
    let mut st = store.conn.prepare_cached(
        "SELECT idx, file_id, full_path, phase_start_ms, ready_at_ms, will_fail, attempts
         FROM export_files WHERE task_id = ?1 ORDER BY idx",
    )?;
    let rows = st.query_map([id], |r| {
        Ok(FileRow {
            idx: r.get(0)?,
            file_id: r.get(1)?,
            full_path: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
            start: r.get(3)?,
            ready: r.get(4)?,
            will_fail: r.get(5)?,
            attempts: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A task as the list and info calls show it, with its `file_stats`.
fn task_json(s: &AppState, id: &str) -> Result<Value, EmuError> {
    let (body, created) = task_body(s, id)?;
    let now = super::store::now_ms();
    let files = files_of(s, id)?;
    let states: Vec<i64> = files.iter().map(|f| f.status(now)).collect();
    let count = |st: i64| states.iter().filter(|x| **x == st).count();
    let (pending, running, completed, failed) = (
        count(PENDING),
        count(RUNNING),
        count(COMPLETED),
        count(FAILED),
    );
    let status = if pending + running == 0 {
        if failed > 0 { FAILED } else { COMPLETED }
    } else if running > 0 || completed + failed > 0 {
        RUNNING
    } else {
        PENDING
    };
    let end = (pending + running == 0)
        .then(|| rfc3339(files.iter().map(|f| f.ready).max().unwrap_or(created)));
    Ok(json!({
        "id": id, "name": body.task_name, "creator": body.creator,
        "connector_name": body.connector_name, "connector_id": body.connector_id,
        "type": body.export_type, "status": status, "config": body.config,
        "export_source": files.iter().map(|f| f.full_path.clone()).collect::<Vec<_>>(),
        "create_time": rfc3339(created), "end_time": end.unwrap_or_default(),
        "file_stats": {"total": files.len(), "pending": pending, "running": running,
            "failed": failed, "completed": completed, "fileSuccess": completed, "fileFail": failed},
    }))
}

fn will_fail(s: &AppState, path: &[String]) -> bool {
    let f = s.faults();
    let name = path.last().map(String::as_str).unwrap_or("");
    f.always_fail_suffix
        .as_deref()
        .is_some_and(|x| name.ends_with(x))
        || s.chance(f.ingest_failure)
}

async fn create(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let req: ExportCreate = json_body(&body)?;
        req.check().map_err(EmuError::bad)?;
        let now = super::store::now_ms();
        let ingest = s.config.ingest_time.as_millis() as i64;
        let fails: Vec<bool> = req
            .files
            .iter()
            .map(|f| will_fail(&s, &f.full_path))
            .collect();
        let mut store = s.store();
        let id = format!("export-{}", store.new_id());
        let tx = store.conn.transaction()?;
        tx.execute(
            "INSERT INTO export_tasks(id, body, created_ms) VALUES (?1, ?2, ?3)",
            params![id, serde_json::to_string(&req).unwrap_or_default(), now],
        )?;
        for (i, (f, fail)) in req.files.iter().zip(fails).enumerate() {
            tx.execute(
                "INSERT INTO export_files(task_id, idx, file_id, full_path, phase_start_ms, ready_at_ms, will_fail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, i as i64, f.file_id, serde_json::to_string(&f.full_path).unwrap_or_default(), now, now + ingest, fail],
            )?;
        }
        tx.commit()?;
        Ok(ok_lower(None))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn list(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let q: ExportListQuery = if body.is_empty() {
            ExportListQuery::default()
        } else {
            json_body(&body)?
        };
        let ids: Vec<String> = {
            let store = s.store();
            let mut st = store
                .conn
                .prepare_cached("SELECT id FROM export_tasks ORDER BY created_ms, id")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut tasks = Vec::new();
        for id in ids {
            let t = task_json(&s, &id)?;
            let keep = (q.statuses.is_empty()
                || q.statuses.contains(&t["status"].as_i64().unwrap_or(0)))
                && q.creator
                    .as_ref()
                    .is_none_or(|c| t["creator"] == c.as_str())
                && q.connector_name
                    .as_ref()
                    .is_none_or(|c| t["connector_name"] == c.as_str())
                && q.task_id.as_ref().is_none_or(|i| t["id"] == i.as_str());
            if keep {
                tasks.push(t);
            }
        }
        if q.order_direction.as_deref() != Some("asc") {
            tasks.reverse();
        }
        let total = tasks.len();
        let page: Vec<Value> = tasks
            .into_iter()
            .skip(q.offset.unwrap_or(0) as usize)
            .take(q.limit.unwrap_or(10).clamp(1, 1000) as usize)
            .map(|mut t| {
                if let Some(o) = t.as_object_mut() {
                    o.remove("config");
                    o.remove("file_stats");
                }
                t
            })
            .collect();
        Ok(ok_lower(Some(json!({"tasks": page, "total": total}))))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn info(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let q: ExportRef = json_body(&body)?;
        Ok(ok_lower(Some(task_json(&s, &q.id)?)))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn files(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let q: ExportFilesQuery = json_body(&body)?;
        let (_, created) = task_body(&s, &q.task_id)?;
        let now = super::store::now_ms();
        let all = files_of(&s, &q.task_id)?;
        let total_files = all.len();
        let total_success = all.iter().filter(|f| f.status(now) == COMPLETED).count();
        let total_failure = all.iter().filter(|f| f.status(now) == FAILED).count();
        let mut selected: Vec<&FileRow> = all
            .iter()
            .filter(|f| q.statuses.is_empty() || q.statuses.contains(&f.status(now)))
            .collect();
        if q.order_direction.as_deref() == Some("desc") {
            selected.reverse();
        }
        let total = selected.len();
        let page: Vec<Value> = selected
            .into_iter()
            .skip(q.offset.unwrap_or(0) as usize)
            .take(q.limit.unwrap_or(10).clamp(1, 1000) as usize)
            .map(|f| {
                let status = f.status(now);
                let name = f.full_path.last().cloned().unwrap_or_default();
                json!({
                    "id": format!("{}-{}", q.task_id, f.idx), "file_id": f.file_id, "status": status,
                    "full_path": f.full_path, "file_name": name,
                    "file_type": super::store::file_type_of(&name),
                    "details": if status == FAILED {
                        format!("emulated export failure on attempt {} (the target refused the document)", f.attempts)
                    } else { String::new() },
                    "create_time": rfc3339(created), "start_time": rfc3339(f.start),
                    "end_time": if status >= COMPLETED { rfc3339(f.ready) } else { String::new() },
                })
            })
            .collect();
        Ok(ok_lower(Some(json!({
            "files": page, "total": total, "total_failure": total_failure,
            "total_files": total_files, "total_success": total_success,
        }))))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn rerun(State(s): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        task_body(&s, &id)?;
        let now = super::store::now_ms();
        let ingest = s.config.ingest_time.as_millis() as i64;
        let failed: Vec<FileRow> = files_of(&s, &id)?
            .into_iter()
            .filter(|f| f.status(now) == FAILED)
            .collect();
        let fails: Vec<bool> = failed.iter().map(|f| will_fail(&s, &f.full_path)).collect();
        let store = s.store();
        for (f, fail) in failed.iter().zip(fails) {
            store.conn.execute(
                "UPDATE export_files SET phase_start_ms = ?3, ready_at_ms = ?4, will_fail = ?5,
                 attempts = attempts + 1 WHERE task_id = ?1 AND idx = ?2",
                params![id, f.idx, now, now + ingest, fail],
            )?;
        }
        Ok(ok_lower(None))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn delete(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let q: ExportRef = json_body(&body)?;
        let mut store = s.store();
        let tx = store.conn.transaction()?;
        tx.execute("DELETE FROM export_files WHERE task_id = ?1", [&q.id])?;
        let n = tx.execute("DELETE FROM export_tasks WHERE id = ?1", [&q.id])?;
        tx.commit()?;
        if n == 0 {
            return Err(no_task(&q.id));
        }
        Ok(ok_lower(None))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(super) fn routes(router: axum::Router<Arc<AppState>>) -> axum::Router<Arc<AppState>> {
    use axum::routing::post;
    const P: &str = "/byoa/api/v1/export/task";
    router
        .route(&format!("{P}/create"), post(create))
        .route(&format!("{P}/list"), post(list))
        .route(&format!("{P}/info"), post(info))
        .route(&format!("{P}/files"), post(files))
        .route(&format!("{P}/{{task_id}}/rerun"), post(rerun))
        .route(&format!("{P}/delete"), post(delete))
}
