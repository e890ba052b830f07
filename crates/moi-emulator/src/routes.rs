//! The JSON calls: tasks, task files, retry, session login and refresh, and the counters.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::faults::Stats;
use super::store::RetryOutcome;
use super::{AppState, Dialect, Session, ok_empty, ok_json, refuse};
use moi_client::Id;
use moi_client::model::{
    CreateTask, LoginAnswer, LoginRequest, RetryFiles, Task, TaskRef, UpdateTask, task_status,
};

type St = State<Arc<AppState>>;

pub(super) fn router(state: Arc<AppState>) -> Router {
    let router = super::connectors::routes(Router::new());
    let router = super::export::routes(router);
    let router = super::catalog::routes(router);
    router
        .route("/connectors/upload", post(super::upload::upload))
        .route("/task", post(create_task))
        .route("/task/files", get(task_files))
        .route("/task/get", get(task_get))
        .route("/task/list", get(task_list))
        .route("/task/retry", post(task_retry))
        .route("/task/update", post(task_update))
        .route("/task/delete", post(task_delete))
        .route("/task/pause", post(task_pause))
        .route("/task/resume", post(task_resume))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/volume", get(volume_listing))
        .fallback(not_found)
        // Upload bodies are streamed to disk and limited by `Faults::max_body_bytes`, not
        // by axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "ErrNotFound",
        format!("no such API path: {}", uri.path()),
    )
}

async fn stats(State(s): St) -> Response {
    axum::Json(s.stats.snapshot()).into_response()
}

/// What a volume holds now (not a MOI call): `?volume_id=ID`, one row per stored version.
async fn volume_listing(State(s): St, RawQuery(q): RawQuery) -> Response {
    let p = pairs(&q);
    let volume = p
        .iter()
        .rev()
        .find(|(k, _)| k == "volume_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| super::DEFAULT_VOLUME.to_string());
    match s.store().volume_listing(&volume) {
        Ok(files) => axum::Json(files).into_response(),
        Err(e) => internal(e),
    }
}

/// A task in the dialect's shape: the SDKs read `id`, `volume_id`, `status`, the times and
/// `source_connector_type` as strings. `source_connector_id` is a number in both (the
/// documents' `100004`, the Go SDK's `uint64`), 0 for a task an upload made.
fn task_json(s: &AppState, t: &Task) -> serde_json::Value {
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
                v[key] = serde_json::Value::String(n.to_string());
            }
        }
    }
    v
}

/// Auth, then the injected faults: the gate in front of every API handler.
async fn gate(s: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    Stats::bump(&s.stats.requests);
    s.authenticate(headers)?;
    s.common_faults().await
}

fn bad_request(s: &AppState, msg: impl Into<String>) -> Response {
    Stats::bump(&s.stats.bad_requests);
    refuse(StatusCode::BAD_REQUEST, "ErrInvalidParameter", msg)
}

fn internal(e: impl std::fmt::Display) -> Response {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ErrInternal",
        format!("emulator storage error: {e}"),
    )
}

fn no_task(task: Id) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "ErrTaskNotFound",
        format!("task {task} does not exist"),
    )
}

fn body_json<T: DeserializeOwned>(s: &AppState, body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        bad_request(
            s,
            format!("the JSON body is not as the reference describes: {e}"),
        )
    })
}

/// Query pairs, keeping repeated keys (`status=4&status=5`).
pub(super) fn pairs(q: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The last value of `key` that parses. The vendor's `/task/files` example sends a literal
/// `task_id={task_id}` in the URL and the real id as a second parameter.
fn last_parsed<T: std::str::FromStr>(pairs: &[(String, String)], key: &str) -> Option<T> {
    pairs
        .iter()
        .rev()
        .filter(|(k, _)| k == key)
        .find_map(|(_, v)| v.parse().ok())
}

pub(super) fn all_parsed(pairs: &[(String, String)], key: &str) -> Vec<i64> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn task_id_param(s: &AppState, pairs: &[(String, String)]) -> Result<Id, Response> {
    last_parsed::<Id>(pairs, "task_id")
        .ok_or_else(|| bad_request(s, "query parameter task_id is missing or not a task id"))
}

async fn task_files(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    Stats::bump(&s.stats.task_files_requests);
    let p = pairs(&q);
    let task = match task_id_param(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let page = last_parsed::<u64>(&p, "page").unwrap_or(1).max(1);
    let page_size = last_parsed::<u64>(&p, "page_size")
        .unwrap_or(10)
        .clamp(1, s.config.max_page_size.max(1));
    let statuses = all_parsed(&p, "status");
    match s.store().task_files(task, &statuses, page, page_size) {
        Ok(Some(a)) => ok_json(serde_json::json!({
            "total": a.total, "total_success": a.total_success,
            "total_failed": a.total_failed, "files": a.files,
        })),
        Ok(None) => no_task(task),
        Err(e) => internal(e),
    }
}

async fn task_get(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    Stats::bump(&s.stats.task_get_requests);
    let task = match task_id_param(&s, &pairs(&q)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match s.store().task(task) {
        Ok(Some(t)) if s.config.dialect == Dialect::Sdk => ok_json(task_json(&s, &t)),
        Ok(Some(t)) => ok_json(serde_json::json!({ "task": task_json(&s, &t) })),
        Ok(None) => no_task(task),
        Err(e) => internal(e),
    }
}

async fn task_list(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    Stats::bump(&s.stats.task_list_requests);
    let p = pairs(&q);
    let page = last_parsed::<u64>(&p, "page").unwrap_or(1).max(1);
    let page_size = last_parsed::<u64>(&p, "page_size")
        .unwrap_or(10)
        .clamp(1, s.config.max_page_size.max(1));
    let statuses = all_parsed(&p, "status");
    let desc = last_parsed::<bool>(&p, "is_desc").unwrap_or(false);
    let store = s.store();
    let ids = match store.task_ids() {
        Ok(ids) => ids,
        Err(e) => return internal(e),
    };
    let mut tasks = Vec::new();
    for id in ids {
        match store.task(id) {
            Ok(Some(t))
                if statuses.is_empty() || statuses.contains(&task_status::of(&t.status)) =>
            {
                tasks.push(t)
            }
            Ok(_) => {}
            Err(e) => return internal(e),
        }
    }
    let order_by = p
        .iter()
        .rev()
        .find(|(k, _)| k == "order_by")
        .map(|(_, v)| v.as_str());
    match order_by {
        Some("end_at") => tasks.sort_by_key(|t| t.end_at.unix()),
        Some("updated_at") => tasks.sort_by_key(|t| t.updated_at.unix()),
        _ => tasks.sort_by_key(|t| (t.created_at.unix(), t.id)),
    }
    if desc {
        tasks.reverse();
    }
    let total = tasks.len() as u64;
    let start = ((page - 1) * page_size) as usize;
    let tasks: Vec<serde_json::Value> = tasks
        .iter()
        .skip(start)
        .take(page_size as usize)
        .map(|t| task_json(&s, t))
        .collect();
    ok_json(serde_json::json!({ "tasks": tasks, "total": total }))
}

async fn task_retry(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    Stats::bump(&s.stats.retry_requests);
    let req: RetryFiles = match body_json(&s, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let faults = s.faults();
    let outcome = s
        .store()
        .retry(req.task_id, &req.ids, s.config.ingest_time, |name| {
            faults
                .always_fail_suffix
                .as_deref()
                .is_some_and(|x| name.ends_with(x))
                || s.chance(faults.ingest_failure)
        });
    match outcome {
        Ok(RetryOutcome::Retried(n)) => {
            s.stats
                .retried_files
                .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            ok_empty()
        }
        Ok(RetryOutcome::NoSuchTask) => no_task(req.task_id),
        Ok(RetryOutcome::NotInTask(id)) => bad_request(
            &s,
            format!("file {id} does not belong to task {}", req.task_id),
        ),
        Err(e) => internal(e),
    }
}

async fn create_task(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    let req: CreateTask = match body_json(&s, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match s.store().volume_name(req.volume_id.as_str()) {
        Ok(Some(_)) => {}
        Ok(None) => return unknown_volume(req.volume_id.as_str()),
        Err(e) => return internal(e),
    }
    match super::connectors::known(&s, req.source_connector_id.0 as i64) {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "ErrConnectorNotFound",
                format!("connector {} does not exist", req.source_connector_id),
            );
        }
        Err(e) => return e.into_response(),
    }
    let config = serde_json::to_value(&req.source_config).unwrap_or_default();
    let uris = req.source_config.common_file_task_config.uris.clone();
    let mut store = s.store();
    match store.add_connector_task(
        req.source_connector_id,
        req.volume_id.as_str(),
        &config,
        &uris,
        s.config.ingest_time,
    ) {
        Ok(_) => ok_empty(),
        Err(e) => internal(e),
    }
}

pub(super) fn unknown_volume(volume: &str) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "ErrVolumeNotFound",
        format!("volume {volume} does not exist"),
    )
}

async fn task_update(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    let req: UpdateTask = match body_json(&s, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let store = s.store();
    let mut task = match store.task(req.task_id) {
        Ok(Some(t)) => t,
        Ok(None) => return no_task(req.task_id),
        Err(e) => return internal(e),
    };
    let cfg = &mut task.source_config["common_file_task_config"];
    if let Some(l) = &req.load_mode_config {
        cfg["load_mode_config"] = serde_json::to_value(l).unwrap_or_default();
    }
    if let Some(u) = &req.uris {
        cfg["uris"] = serde_json::to_value(u).unwrap_or_default();
    }
    match store.update_config(req.task_id, &task.source_config) {
        Ok(_) => ok_empty(),
        Err(e) => internal(e),
    }
}

async fn task_ref_call(s: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Id, Response> {
    gate(s, headers).await?;
    let req: TaskRef = body_json(s, body)?;
    Ok(req.task_id)
}

async fn task_delete(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let task = match task_ref_call(&s, &headers, &body).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match s.store().delete_task(task) {
        Ok(true) => ok_empty(),
        Ok(false) => no_task(task),
        Err(e) => internal(e),
    }
}

async fn pause_or_resume(
    s: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    paused: bool,
) -> Response {
    let task = match task_ref_call(s, headers, body).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match s.store().set_paused(task, paused) {
        Ok(true) => ok_empty(),
        Ok(false) => no_task(task),
        Err(e) => internal(e),
    }
}

async fn task_pause(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    pause_or_resume(&s, &headers, &body, true).await
}

async fn task_resume(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    pause_or_resume(&s, &headers, &body, false).await
}

fn new_token() -> String {
    // Tokens need only be unguessable within a test run; hash a counter and the clock.
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seed = format!("{n}-{:?}-{}", Instant::now(), std::process::id());
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn with_tokens(s: &AppState, mut resp: Response, uid: &str) -> Response {
    let access = new_token();
    let refresh = new_token();
    let session = Session {
        uid: uid.to_string(),
        refresh: refresh.clone(),
        expires: Instant::now() + s.config.token_ttl,
    };
    s.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(access.clone(), session);
    let h = resp.headers_mut();
    if let (Ok(a), Ok(r)) = (access.parse(), refresh.parse()) {
        h.insert("Access-Token", a);
        h.insert("Refresh-Token", r);
    }
    resp
}

async fn login(State(s): St, body: Bytes) -> Response {
    Stats::bump(&s.stats.requests);
    Stats::bump(&s.stats.logins);
    let req: LoginRequest = match body_json(&s, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let known = s.config.logins.iter().any(|l| {
        l.account == req.account_name
            && l.username == req.username
            && l.password.expose() == req.password
    });
    if !known {
        Stats::bump(&s.stats.auth_rejected);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "ErrLoginFailed",
            "account, username or password is wrong",
        );
    }
    let uid = format!("{}:{}", req.account_name, req.username);
    let answer = LoginAnswer {
        uid: uid.clone(),
        login_at: "2025-02-12T03:38:36Z".into(),
    };
    with_tokens(&s, ok_json(answer), &uid)
}

async fn refresh(State(s): St, headers: HeaderMap) -> Response {
    Stats::bump(&s.stats.requests);
    Stats::bump(&s.stats.refreshes);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(access), Some(refresh), Some(uid)) = (
        header("access-token"),
        header("refresh-token"),
        header("uid"),
    ) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "ErrUnauthorized",
            "refresh needs the Access-Token, Refresh-Token and uid headers",
        );
    };
    let old = s
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&access);
    match old {
        // The refresh token outlives the access token: an expired access token may be renewed.
        Some(sess) if sess.refresh == refresh && sess.uid == uid => {
            with_tokens(&s, ok_empty(), &uid)
        }
        _ => {
            Stats::bump(&s.stats.auth_rejected);
            refuse(
                StatusCode::UNAUTHORIZED,
                "ErrUnauthorized",
                "the refresh token does not match a session; log in again",
            )
        }
    }
}
