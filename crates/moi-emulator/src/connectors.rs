//! Connectors: create, validate, list (paged and filtered as documented), update, delete,
//! the files a source holds, and a summary. State in the emulator's SQLite, so it survives
//! a restart. Secrets come back in the answers, as the service does.
//!
//! A source's files are not real: each connector lists the same plausible sample (a PDF
//! with a Chinese name, a folder, Markdown, CSV, an image), so that `POST /task` from a
//! connector has uris to load.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::store::file_type_of;
use super::{AppState, EmuError, admit, json_body, ok_empty, ok_json};
use moi_client::model::{CreateConnector, SourceConfigs, UpdateConnector, source_type};

type St = State<Arc<AppState>>;

/// First connector id, as in the vendor's examples (100004).
const FIRST_CONNECTOR: i64 = 100_001;

/// The sample a connector's source holds: (uri, size).
const SAMPLE: &[(&str, u64)] = &[
    ("红楼梦(通行本)简体横排.pdf", 6_787_457),
    ("reports/2024-annual.pdf", 1_204_311),
    ("reports/", 0),
    ("notes/readme.md", 2_048),
    ("data/sales.csv", 88_120),
    ("images/cover.png", 310_442),
];

fn now_s() -> i64 {
    super::store::now_ms() / 1000
}

fn connector_json(
    s: &AppState,
    row: (i64, String, i64, String, String, i64, i64),
) -> Result<Value, EmuError> {
    let (id, name, t, config, usage, created, updated) = row;
    let tasks: Vec<u64> = s
        .store()
        .tasks_of_connector(id)?
        .into_iter()
        .map(|i| i.0)
        .collect();
    let mut v = json!({
        "id": id, "source_type": t, "name": name, "status": "active",
        "created_at": created, "updated_at": updated, "username": "admin",
        "related_task_ids": tasks,
        "usage_type": serde_json::from_str::<Value>(&usage).unwrap_or(json!([])),
    });
    if let (Some(key), Ok(Value::Object(cfg))) =
        (source_type::key(t), serde_json::from_str::<Value>(&config))
        && let Some(c) = cfg.get(key)
    {
        v[key] = c.clone();
    }
    Ok(v)
}

type Row = (i64, String, i64, String, String, i64, i64);

fn rows(s: &AppState) -> Result<Vec<Row>, EmuError> {
    let store = s.store();
    let mut st = store.conn.prepare_cached(
        "SELECT id, name, source_type, config, usage_type, created_s, updated_s FROM connectors ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn exists(s: &AppState, id: i64) -> Result<bool, EmuError> {
    Ok(s.store()
        .conn
        .query_row("SELECT 1 FROM connectors WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn connector_id(raw: &str) -> Result<i64, EmuError> {
    raw.trim()
        .parse()
        .map_err(|_| EmuError::bad(format!("'{raw}' is not a connector id")))
}

fn unknown(id: i64) -> EmuError {
    EmuError::not_found(
        "ErrConnectorNotFound",
        format!("connector {id} does not exist"),
    )
}

/// Whether `config` holds a usable object for source type `t`: every required field there
/// and not empty.
fn valid_config(t: i64, body: &Value) -> bool {
    let Some(key) = source_type::key(t) else {
        return false;
    };
    let Some(obj) = body.get(key).filter(|o| o.is_object()) else {
        return false;
    };
    let parsed: Result<SourceConfigs, _> = serde_json::from_value(json!({ key: obj }));
    let required: &[&str] = match t {
        source_type::OSS | source_type::S3 => &[
            "endpoint",
            "access_key_id",
            "access_key_secret",
            "bucket_name",
        ],
        source_type::DIFY => &["api_key", "api_url"],
        source_type::HDFS => &["address"],
        _ => &["host", "username", "password"],
    };
    parsed.is_ok()
        && required.iter().all(|f| {
            obj.get(f)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty())
        })
}

async fn create(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let req: CreateConnector = json_body(&body)?;
        req.check().map_err(EmuError::bad)?;
        if !valid_config(
            req.source_type,
            &serde_json::to_value(&req.config).unwrap_or_default(),
        ) {
            return Err(EmuError::bad("the config object misses a required field"));
        }
        let now = now_s();
        let store = s.store();
        let max: Option<i64> = store
            .conn
            .query_row("SELECT max(id) FROM connectors", [], |r| r.get(0))?;
        let id = max.map_or(FIRST_CONNECTOR, |m| m + 1);
        store.conn.execute(
            "INSERT INTO connectors(id, name, source_type, config, usage_type, created_s, updated_s)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                id,
                req.name,
                req.source_type,
                serde_json::to_string(&req.config).unwrap_or_default(),
                serde_json::to_string(&req.usage_type.unwrap_or_default()).unwrap_or_default(),
                now
            ],
        )?;
        Ok(ok_empty())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn validate(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let req: Value = json_body(&body)?;
        let valid = match req.get("connector_id").filter(|v| !v.is_null()) {
            Some(id) => exists(&s, connector_id(&id.to_string().replace('"', ""))?)?,
            None => req
                .get("source_type")
                .and_then(Value::as_i64)
                .is_some_and(|t| valid_config(t, &req)),
        };
        Ok(ok_json(json!({ "valid": valid })))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn list(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let p = super::routes::pairs(&q);
        let last = |k: &str| {
            p.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let all_of = |k: &str| super::routes::all_parsed(&p, k);
        let page: usize = last("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        let page_size: usize = last("page_size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
            .clamp(1, 1000);
        let keyword = last("keyword").unwrap_or_default().to_lowercase();
        let mut types = all_of("source_type_list");
        types.extend(all_of("source_type"));
        let mut found: Vec<Row> = rows(&s)?
            .into_iter()
            .filter(|r| keyword.is_empty() || r.1.to_lowercase().contains(&keyword))
            .filter(|r| types.is_empty() || types.contains(&r.2))
            .collect();
        match last("order_by").as_deref() {
            Some("name") => found.sort_by(|a, b| a.1.cmp(&b.1)),
            Some("updated_at") => found.sort_by_key(|r| r.6),
            _ => found.sort_by_key(|r| (r.5, r.0)),
        }
        if last("is_desc").as_deref() == Some("true") {
            found.reverse();
        }
        let total = found.len();
        let connectors = found
            .into_iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|r| connector_json(&s, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ok_json(json!({ "connectors": connectors, "total": total })))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn update(State(s): St, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let id = connector_id(&id)?;
        let req: UpdateConnector = json_body(&body)?;
        let store = s.store();
        let row: Option<(String, i64, String)> = store
            .conn
            .query_row(
                "SELECT name, source_type, config FROM connectors WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((name, t, config)) = row else {
            return Err(unknown(id));
        };
        let mut cfg: Value = serde_json::from_str(&config).unwrap_or(json!({}));
        let new_cfg = serde_json::to_value(&req.config).unwrap_or_default();
        if let Some(obj) = new_cfg.as_object() {
            for (k, v) in obj {
                if source_type::key(t) != Some(k.as_str()) {
                    return Err(EmuError::bad(format!(
                        "connector {id} is of source_type {t}: it takes no \"{k}\" config"
                    )));
                }
                cfg[k] = v.clone();
            }
        }
        store.conn.execute(
            "UPDATE connectors SET name = ?2, config = ?3, usage_type = coalesce(?4, usage_type),
             updated_s = ?5 WHERE id = ?1",
            params![
                id,
                req.name.unwrap_or(name),
                cfg.to_string(),
                req.usage_type
                    .map(|u| serde_json::to_string(&u).unwrap_or_default()),
                now_s()
            ],
        )?;
        Ok(ok_empty())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn delete(State(s): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let id = connector_id(&id)?;
        let n = s
            .store()
            .conn
            .execute("DELETE FROM connectors WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(unknown(id));
        }
        Ok(ok_empty())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn files(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let p = super::routes::pairs(&q);
        let id = p
            .iter()
            .rev()
            .find(|(k, _)| k == "connector_id")
            .ok_or_else(|| EmuError::bad("query parameter connector_id is missing"))
            .and_then(|(_, v)| connector_id(v))?;
        if !exists(&s, id)? {
            return Err(unknown(id));
        }
        let types = super::routes::all_parsed(&p, "file_types");
        let files: Vec<Value> = SAMPLE
            .iter()
            .map(|(uri, size)| {
                let t = if uri.ends_with('/') {
                    10
                } else {
                    file_type_of(uri)
                };
                let name = uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri);
                json!({"uri": uri, "filename": name, "size": size, "type": t})
            })
            .filter(|f| types.is_empty() || f["type"].as_i64().is_some_and(|t| types.contains(&t)))
            .collect();
        Ok(ok_json(json!({ "files": files })))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn summary(State(s): St, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&s, &headers).await {
        return r;
    }
    let run = || -> Result<Response, EmuError> {
        let all = rows(&s)?;
        let mut by_type = serde_json::Map::new();
        for r in &all {
            let key = source_type::key(r.2).unwrap_or("unknown");
            let n = by_type.get(key).and_then(Value::as_u64).unwrap_or(0) + 1;
            by_type.insert(key.to_string(), n.into());
        }
        Ok(ok_json(
            json!({"total": all.len(), "active": all.len(), "by_source_type": by_type}),
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(super) fn routes(router: axum::Router<Arc<AppState>>) -> axum::Router<Arc<AppState>> {
    use axum::routing::{get, post, put};
    router
        .route("/connectors", post(create))
        .route("/connectors/validate", post(validate))
        .route("/connectors/list", get(list))
        .route("/connectors/files/list", get(files))
        .route("/connectors/summary", get(summary))
        .route("/connectors/{id}", put(update).delete(delete))
}

/// Whether a connector exists (for `POST /task`).
pub(super) fn known(s: &AppState, id: i64) -> Result<bool, EmuError> {
    exists(s, id)
}
