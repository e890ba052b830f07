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
use axum::response::Response;
use serde_json::{Value, json};

use super::extract::{Admitted, JsonBody, Paging};
use super::store::ExportFileRow;
use super::{AppState, EmuError, json_body, ok_lower};
use moi_client::model::{ExportCreate, ExportFilesQuery, ExportListQuery, ExportRef};

type St = State<Arc<AppState>>;
type Answer = Result<Response, EmuError>;

const PENDING: i64 = 1;
const RUNNING: i64 = 2;
const COMPLETED: i64 = 3;
const FAILED: i64 = 4;

/// A file's state at `now`: pending for the first third of its attempt, then running,
/// then as it ends.
fn status(f: &ExportFileRow, now: i64) -> i64 {
    if now >= f.ready_ms {
        if f.will_fail { FAILED } else { COMPLETED }
    } else if now < f.start_ms + (f.ready_ms - f.start_ms) / 3 {
        PENDING
    } else {
        RUNNING
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
    let (body, created) = s.store().export_task(id)?.ok_or_else(|| no_task(id))?;
    Ok((serde_json::from_str(&body).unwrap_or_default(), created))
}

/// A task as the list and info calls show it, with its `file_stats`.
fn task_json(s: &AppState, id: &str) -> Result<Value, EmuError> {
    let (body, created) = task_body(s, id)?;
    let (now, files) = {
        let store = s.store();
        (store.now_ms(), store.export_files(id)?)
    };
    let states: Vec<i64> = files.iter().map(|f| status(f, now)).collect();
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
        .then(|| rfc3339(files.iter().map(|f| f.ready_ms).max().unwrap_or(created)));
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

fn ingest_ms(s: &AppState) -> i64 {
    s.config.ingest_time.as_millis() as i64
}

async fn create(_: Admitted, State(s): St, JsonBody(req): JsonBody<ExportCreate>) -> Answer {
    req.check().map_err(EmuError::bad)?;
    let fails: Vec<bool> = req
        .files
        .iter()
        .map(|f| will_fail(&s, &f.full_path))
        .collect();
    let files: Vec<_> = req
        .files
        .iter()
        .zip(fails)
        .map(|(f, fail)| (f.file_id.as_str(), f.full_path.as_slice(), fail))
        .collect();
    let body = serde_json::to_string(&req).unwrap_or_default();
    s.store().add_export(&body, &files, ingest_ms(&s))?;
    Ok(ok_lower(None))
}

async fn list(_: Admitted, State(s): St, body: Bytes) -> Answer {
    // An empty body lists everything, as the first page would.
    let q: ExportListQuery = if body.is_empty() {
        ExportListQuery::default()
    } else {
        json_body(&body)?
    };
    let ids = s.store().export_ids()?;
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
    let paging = Paging::window(q.offset, q.limit, s.config.max_page_size);
    let page: Vec<Value> = paging
        .slice(tasks)
        .map(|mut t| {
            if let Some(o) = t.as_object_mut() {
                o.remove("config");
                o.remove("file_stats");
            }
            t
        })
        .collect();
    Ok(ok_lower(Some(json!({"tasks": page, "total": total}))))
}

async fn info(_: Admitted, State(s): St, JsonBody(q): JsonBody<ExportRef>) -> Answer {
    Ok(ok_lower(Some(task_json(&s, &q.id)?)))
}

fn file_json(task: &str, f: &ExportFileRow, now: i64, created: i64) -> Value {
    let status = status(f, now);
    let name = f.full_path.last().cloned().unwrap_or_default();
    let details = if status == FAILED {
        format!(
            "emulated export failure on attempt {} (the target refused the document)",
            f.attempts
        )
    } else {
        String::new()
    };
    let end = if status >= COMPLETED {
        rfc3339(f.ready_ms)
    } else {
        String::new()
    };
    json!({
        "id": format!("{task}-{}", f.idx), "file_id": f.file_id, "status": status,
        "full_path": f.full_path, "file_name": name,
        "file_type": super::store::file_type_of(&name), "details": details,
        "create_time": rfc3339(created), "start_time": rfc3339(f.start_ms), "end_time": end,
    })
}

async fn files(_: Admitted, State(s): St, JsonBody(q): JsonBody<ExportFilesQuery>) -> Answer {
    let (_, created) = task_body(&s, &q.task_id)?;
    let (now, all) = {
        let store = s.store();
        (store.now_ms(), store.export_files(&q.task_id)?)
    };
    let total_files = all.len();
    let total_success = all.iter().filter(|f| status(f, now) == COMPLETED).count();
    let total_failure = all.iter().filter(|f| status(f, now) == FAILED).count();
    let mut selected: Vec<&ExportFileRow> = all
        .iter()
        .filter(|f| q.statuses.is_empty() || q.statuses.contains(&status(f, now)))
        .collect();
    if q.order_direction.as_deref() == Some("desc") {
        selected.reverse();
    }
    let total = selected.len();
    let paging = Paging::window(q.offset, q.limit, s.config.max_page_size);
    let page: Vec<Value> = paging
        .slice(selected)
        .map(|f| file_json(&q.task_id, f, now, created))
        .collect();
    Ok(ok_lower(Some(json!({
        "files": page, "total": total, "total_failure": total_failure,
        "total_files": total_files, "total_success": total_success,
    }))))
}

async fn rerun(_: Admitted, State(s): St, Path(id): Path<String>) -> Answer {
    task_body(&s, &id)?;
    let (now, files) = {
        let store = s.store();
        (store.now_ms(), store.export_files(&id)?)
    };
    let again: Vec<(i64, bool)> = files
        .iter()
        .filter(|f| status(f, now) == FAILED)
        .map(|f| (f.idx, will_fail(&s, &f.full_path)))
        .collect();
    s.store().rerun_export_files(&id, &again, ingest_ms(&s))?;
    Ok(ok_lower(None))
}

async fn delete(_: Admitted, State(s): St, JsonBody(q): JsonBody<ExportRef>) -> Answer {
    if !s.store().delete_export(&q.id)? {
        return Err(no_task(&q.id));
    }
    Ok(ok_lower(None))
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
