//! Load tasks and their files: list, get, files (paged, filtered by status), retry of
//! failed files, create from a connector, update, pause, resume, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::extract::{Admitted, JsonBody, Paging, QueryPairs};
use super::faults::Stats;
use super::store::RetryOutcome;
use super::{AppState, Dialect, EmuError, ok_empty, ok_json};
use moi_client::Id;
use moi_client::model::{CreateTask, RetryFiles, Task, TaskRef, UpdateTask, task_status};

type St = State<Arc<AppState>>;
type Answer = Result<Response, EmuError>;

fn no_task(task: Id) -> EmuError {
    EmuError::not_found("ErrTaskNotFound", format!("task {task} does not exist"))
}

pub(super) fn unknown_volume(volume: &str) -> EmuError {
    EmuError::not_found(
        "ErrVolumeNotFound",
        format!("volume {volume} does not exist"),
    )
}

fn task_id_param(q: &QueryPairs) -> Result<Id, EmuError> {
    q.last::<Id>("task_id")
        .ok_or_else(|| EmuError::bad("query parameter task_id is missing or not a task id"))
}

/// A task in the dialect's shape: the SDKs read `id`, `volume_id`, `status`, the times and
/// `source_connector_type` as strings. `source_connector_id` is a number in both (the
/// documents' `100004`, the Go SDK's `uint64`), 0 for a task an upload made.
fn task_json(s: &AppState, t: &Task) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    v["source_connector_id"] = t.source_connector_id.map_or(0, |c| c.0).into();
    if s.config.dialect == Dialect::Sdk {
        for key in [
            "status",
            "source_connector_type",
            "created_at",
            "updated_at",
            "start_at",
            "end_at",
        ] {
            if let Some(n) = v.get(key).and_then(|x| x.as_i64()) {
                v[key] = Value::String(n.to_string());
            }
        }
    }
    v
}

async fn files(_: Admitted, State(s): St, q: QueryPairs, paging: Paging) -> Answer {
    Stats::bump(&s.stats.task_files_requests);
    let task = task_id_param(&q)?;
    let statuses = q.all("status");
    let a = s
        .store()
        .task_files(task, &statuses, paging)?
        .ok_or_else(|| no_task(task))?;
    Ok(ok_json(json!({
        "total": a.total, "total_success": a.total_success,
        "total_failed": a.total_failed, "files": a.files,
    })))
}

async fn get(_: Admitted, State(s): St, q: QueryPairs) -> Answer {
    Stats::bump(&s.stats.task_get_requests);
    let task = task_id_param(&q)?;
    let t = s.store().task(task)?.ok_or_else(|| no_task(task))?;
    Ok(match s.config.dialect {
        Dialect::Sdk => ok_json(task_json(&s, &t)),
        Dialect::Seed => ok_json(json!({ "task": task_json(&s, &t) })),
    })
}

async fn list(_: Admitted, State(s): St, q: QueryPairs, paging: Paging) -> Answer {
    Stats::bump(&s.stats.task_list_requests);
    let statuses = q.all("status");
    let mut tasks: Vec<Task> = {
        let store = s.store();
        let mut tasks = Vec::new();
        for id in store.task_ids()? {
            if let Some(t) = store.task(id)? {
                tasks.push(t);
            }
        }
        tasks
    };
    tasks.retain(|t| statuses.is_empty() || statuses.contains(&task_status::of(&t.status)));
    match q.last::<String>("order_by").as_deref() {
        Some("end_at") => tasks.sort_by_key(|t| t.end_at.unix()),
        Some("updated_at") => tasks.sort_by_key(|t| t.updated_at.unix()),
        _ => tasks.sort_by_key(|t| (t.created_at.unix(), t.id)),
    }
    if q.last::<bool>("is_desc").unwrap_or(false) {
        tasks.reverse();
    }
    let total = tasks.len() as u64;
    let tasks: Vec<Value> = paging.slice(&tasks).map(|t| task_json(&s, t)).collect();
    Ok(ok_json(json!({ "tasks": tasks, "total": total })))
}

async fn retry(_: Admitted, State(s): St, JsonBody(req): JsonBody<RetryFiles>) -> Answer {
    Stats::bump(&s.stats.retry_requests);
    let faults = s.faults();
    let outcome = s
        .store()
        .retry(req.task_id, &req.ids, s.config.ingest_time, |name| {
            faults
                .always_fail_suffix
                .as_deref()
                .is_some_and(|x| name.ends_with(x))
                || s.chance(faults.ingest_failure)
        })?;
    match outcome {
        RetryOutcome::Retried(n) => {
            s.stats
                .retried_files
                .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            Ok(ok_empty())
        }
        RetryOutcome::NoSuchTask => Err(no_task(req.task_id)),
        RetryOutcome::NotInTask(id) => Err(EmuError::bad(format!(
            "file {id} does not belong to task {}",
            req.task_id
        ))),
    }
}

async fn create(_: Admitted, State(s): St, JsonBody(req): JsonBody<CreateTask>) -> Answer {
    let mut store = s.store();
    let volume = req.volume_id.as_str();
    if store.volume_name(volume)?.is_none() {
        return Err(unknown_volume(volume));
    }
    let connector = req.source_connector_id;
    if !store.connector_exists(connector.0 as i64)? {
        return Err(super::connectors::unknown(connector.0 as i64));
    }
    let config = serde_json::to_value(&req.source_config).unwrap_or_default();
    let uris = &req.source_config.common_file_task_config.uris;
    store.add_connector_task(connector, volume, &config, uris, s.config.ingest_time)?;
    Ok(ok_empty())
}

async fn update(_: Admitted, State(s): St, JsonBody(req): JsonBody<UpdateTask>) -> Answer {
    let store = s.store();
    let mut task = store
        .task(req.task_id)?
        .ok_or_else(|| no_task(req.task_id))?;
    let cfg = &mut task.source_config["common_file_task_config"];
    if let Some(l) = &req.load_mode_config {
        cfg["load_mode_config"] = serde_json::to_value(l).unwrap_or_default();
    }
    if let Some(u) = &req.uris {
        cfg["uris"] = serde_json::to_value(u).unwrap_or_default();
    }
    store.update_config(req.task_id, &task.source_config)?;
    Ok(ok_empty())
}

async fn delete(_: Admitted, State(s): St, JsonBody(req): JsonBody<TaskRef>) -> Answer {
    if !s.store().delete_task(req.task_id)? {
        return Err(no_task(req.task_id));
    }
    Ok(ok_empty())
}

async fn pause(_: Admitted, State(s): St, JsonBody(req): JsonBody<TaskRef>) -> Answer {
    set_paused(&s, req.task_id, true)
}

async fn resume(_: Admitted, State(s): St, JsonBody(req): JsonBody<TaskRef>) -> Answer {
    set_paused(&s, req.task_id, false)
}

fn set_paused(s: &AppState, task: Id, paused: bool) -> Answer {
    if !s.store().set_paused(task, paused)? {
        return Err(no_task(task));
    }
    Ok(ok_empty())
}

pub(super) fn routes(router: axum::Router<Arc<AppState>>) -> axum::Router<Arc<AppState>> {
    use axum::routing::{get as on_get, post};
    router
        .route("/task", post(create))
        .route("/task/files", on_get(files))
        .route("/task/get", on_get(get))
        .route("/task/list", on_get(list))
        .route("/task/retry", post(retry))
        .route("/task/update", post(update))
        .route("/task/delete", post(delete))
        .route("/task/pause", post(pause))
        .route("/task/resume", post(resume))
}
