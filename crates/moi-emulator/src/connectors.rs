//! Connectors: create, validate, list (paged and filtered as documented), update, delete,
//! the files a source holds, and a summary. State in the emulator's SQLite, so it survives
//! a restart. Secrets come back in the answers, as the service does.
//!
//! A source's files are not real: each connector lists the same plausible sample (a PDF
//! with a Chinese name, a folder, Markdown, CSV, an image), so that `POST /task` from a
//! connector has uris to load.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::extract::{Admitted, JsonBody, Paging, QueryPairs};
use super::store::{ConnectorRow, file_type_of};
use super::{AppState, EmuError, ok_empty, ok_json};
use moi_client::model::{CreateConnector, SourceConfigs, UpdateConnector, source_type};

type St = State<Arc<AppState>>;
type Answer = Result<Response, EmuError>;

/// The sample a connector's source holds: (uri, size).
const SAMPLE: &[(&str, u64)] = &[
    ("红楼梦(通行本)简体横排.pdf", 6_787_457),
    ("reports/2024-annual.pdf", 1_204_311),
    ("reports/", 0),
    ("notes/readme.md", 2_048),
    ("data/sales.csv", 88_120),
    ("images/cover.png", 310_442),
];

fn connector_json(s: &AppState, c: ConnectorRow) -> Result<Value, EmuError> {
    let tasks: Vec<u64> = s
        .store()
        .tasks_of_connector(c.id)?
        .into_iter()
        .map(|i| i.0)
        .collect();
    let mut v = json!({
        "id": c.id, "source_type": c.source_type, "name": c.name, "status": "active",
        "created_at": c.created_s, "updated_at": c.updated_s, "username": "admin",
        "related_task_ids": tasks,
        "usage_type": serde_json::from_str::<Value>(&c.usage).unwrap_or(json!([])),
    });
    if let (Some(key), Ok(Value::Object(cfg))) = (
        source_type::key(c.source_type),
        serde_json::from_str::<Value>(&c.config),
    ) && let Some(c) = cfg.get(key)
    {
        v[key] = c.clone();
    }
    Ok(v)
}

fn connector_id(raw: &str) -> Result<i64, EmuError> {
    raw.trim()
        .parse()
        .map_err(|_| EmuError::bad(format!("'{raw}' is not a connector id")))
}

pub(super) fn unknown(id: i64) -> EmuError {
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

async fn create(_: Admitted, State(s): St, JsonBody(req): JsonBody<CreateConnector>) -> Answer {
    req.check().map_err(EmuError::bad)?;
    let config = serde_json::to_value(&req.config).unwrap_or_default();
    if !valid_config(req.source_type, &config) {
        return Err(EmuError::bad("the config object misses a required field"));
    }
    let usage = serde_json::to_string(&req.usage_type.unwrap_or_default()).unwrap_or_default();
    s.store()
        .add_connector(&req.name, req.source_type, &config.to_string(), &usage)?;
    Ok(ok_empty())
}

async fn validate(_: Admitted, State(s): St, JsonBody(req): JsonBody<Value>) -> Answer {
    let valid = match req.get("connector_id").filter(|v| !v.is_null()) {
        Some(id) => {
            let id = connector_id(&id.to_string().replace('"', ""))?;
            s.store().connector_exists(id)?
        }
        None => req
            .get("source_type")
            .and_then(Value::as_i64)
            .is_some_and(|t| valid_config(t, &req)),
    };
    Ok(ok_json(json!({ "valid": valid })))
}

async fn list(_: Admitted, State(s): St, q: QueryPairs, paging: Paging) -> Answer {
    let keyword = q
        .last::<String>("keyword")
        .unwrap_or_default()
        .to_lowercase();
    let mut types = q.all("source_type_list");
    types.extend(q.all("source_type"));
    let mut found: Vec<ConnectorRow> = s
        .store()
        .connectors()?
        .into_iter()
        .filter(|c| keyword.is_empty() || c.name.to_lowercase().contains(&keyword))
        .filter(|c| types.is_empty() || types.contains(&c.source_type))
        .collect();
    match q.last::<String>("order_by").as_deref() {
        Some("name") => found.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("updated_at") => found.sort_by_key(|c| c.updated_s),
        _ => found.sort_by_key(|c| (c.created_s, c.id)),
    }
    if q.last::<String>("is_desc").as_deref() == Some("true") {
        found.reverse();
    }
    let total = found.len();
    let connectors = paging
        .slice(found)
        .map(|c| connector_json(&s, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok_json(json!({ "connectors": connectors, "total": total })))
}

async fn update(
    _: Admitted,
    State(s): St,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateConnector>,
) -> Answer {
    let id = connector_id(&id)?;
    let store = s.store();
    let c = store.connector(id)?.ok_or_else(|| unknown(id))?;
    let t = c.source_type;
    let mut cfg: Value = serde_json::from_str(&c.config).unwrap_or(json!({}));
    let new_cfg = serde_json::to_value(&req.config).unwrap_or_default();
    for (k, v) in new_cfg.as_object().into_iter().flatten() {
        if source_type::key(t) != Some(k.as_str()) {
            return Err(EmuError::bad(format!(
                "connector {id} is of source_type {t}: it takes no \"{k}\" config"
            )));
        }
        cfg[k] = v.clone();
    }
    let usage = req
        .usage_type
        .map(|u| serde_json::to_string(&u).unwrap_or_default());
    let name = req.name.unwrap_or(c.name);
    store.update_connector(id, &name, &cfg.to_string(), usage.as_deref())?;
    Ok(ok_empty())
}

async fn delete(_: Admitted, State(s): St, Path(id): Path<String>) -> Answer {
    let id = connector_id(&id)?;
    if !s.store().delete_connector(id)? {
        return Err(unknown(id));
    }
    Ok(ok_empty())
}

async fn files(_: Admitted, State(s): St, q: QueryPairs) -> Answer {
    let id = q
        .last::<String>("connector_id")
        .ok_or_else(|| EmuError::bad("query parameter connector_id is missing"))
        .and_then(|v| connector_id(&v))?;
    if !s.store().connector_exists(id)? {
        return Err(unknown(id));
    }
    let types = q.all("file_types");
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
}

async fn summary(_: Admitted, State(s): St) -> Answer {
    let all = s.store().connectors()?;
    let mut by_type = serde_json::Map::new();
    for c in &all {
        let key = source_type::key(c.source_type).unwrap_or("unknown");
        let n = by_type.get(key).and_then(Value::as_u64).unwrap_or(0) + 1;
        by_type.insert(key.to_string(), n.into());
    }
    Ok(ok_json(
        json!({"total": all.len(), "active": all.len(), "by_source_type": by_type}),
    ))
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
