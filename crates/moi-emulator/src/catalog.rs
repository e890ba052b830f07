//! The catalog calls (`/catalog/file/*`, `/catalog/folder/*`, `/catalog/volume/info`), as
//! the vendor's SDKs send them to the live service. Served in the `sdk` dialect only: the
//! 2025 documents have no such calls, and a `seed` emulator answers 404 for them as a
//! service without them would.
//!
//! Wire decisions (the live tests do not show them; `docs/mirroring.md` lists them): ids,
//! `file_type` and times are strings, a folder's `file_type` is `"10"` (the connector
//! enum's directory type), a file's is its type number, and `file_ext` has no dot.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::extract::Admitted;
use super::store::{CatalogRow, Changed, file_type_of};
use super::tasks::unknown_volume;
use super::{AppState, Dialect, EmuError, json_body, ok_json};

type St = State<Arc<AppState>>;

/// One catalog call: the gate, the dialect, the JSON body as `R`, then `f`'s answer.
fn call<R>(f: fn(&AppState, R) -> Result<Value, EmuError>) -> MethodRouter<Arc<AppState>>
where
    R: DeserializeOwned + Send + 'static,
{
    post(move |_: Admitted, State(s): St, body: Bytes| async move {
        if s.config.dialect == Dialect::Seed {
            return Err(EmuError::not_found(
                "ErrNotFound",
                "no such API path (the seed dialect has no catalog calls)",
            ));
        }
        let req = json_body::<R>(&body)?;
        f(&s, req).map(ok_json)
    })
}

pub(super) fn routes(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .route("/catalog/file/list", call(list))
        .route("/catalog/file/info", call(info))
        .route("/catalog/file/delete", call(delete_file))
        .route("/catalog/file/update", call(rename_file))
        .route("/catalog/folder/create", call(create_folder))
        .route("/catalog/folder/update", call(rename_folder))
        .route("/catalog/folder/delete", call(delete_folder))
        .route("/catalog/volume/info", call(volume_info))
}

/// An id as the SDKs send it: a string (Go's `FileID`) or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Text(String),
    Num(i64),
}

impl RawId {
    fn text(&self) -> String {
        match self {
            RawId::Text(t) => t.clone(),
            RawId::Num(n) => n.to_string(),
        }
    }
}

fn id_of(raw: &RawId) -> Result<i64, EmuError> {
    match raw {
        RawId::Num(n) => Ok(*n),
        RawId::Text(t) => t.trim().parse().map_err(|_| no_such(t)),
    }
}

fn no_such(id: &str) -> EmuError {
    EmuError::not_found("ErrFileNotFound", format!("file {id} does not exist"))
}

/// A folder id where `""` (or 0) is the volume's root.
fn parent_of(raw: Option<&RawId>) -> Result<i64, EmuError> {
    match raw {
        None => Ok(0),
        Some(RawId::Text(t)) if t.trim().is_empty() => Ok(0),
        Some(r) => id_of(r),
    }
}

#[derive(Deserialize)]
struct Filter {
    name: String,
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default)]
    fuzzy: bool,
}

#[derive(Deserialize, Default)]
struct Condition {
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    page_size: Option<u64>,
    #[serde(default)]
    filters: Vec<Filter>,
}

/// The Go SDK sends the paging and filters flat; the Python SDK's docs nest them under
/// `common_condition`. Both are read.
#[derive(Deserialize)]
struct ListRequest {
    #[serde(flatten)]
    flat: Condition,
    #[serde(default)]
    common_condition: Option<Condition>,
    #[serde(default)]
    keyword: String,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list(s: &AppState, req: ListRequest) -> Result<Value, EmuError> {
    let cond = req.common_condition.unwrap_or(req.flat);
    let filter = |name: &str| cond.filters.iter().find(|f| f.name == name);
    let volume = filter("volume_id")
        .and_then(|f| f.values.first())
        .map(value_text)
        .ok_or_else(|| EmuError::bad("filters must name a volume_id"))?;
    let store = s.store();
    if store.volume_name(&volume)?.is_none() {
        return Err(unknown_volume(&volume));
    }
    let parent = match filter("parent_id").and_then(|f| f.values.first()) {
        None => None,
        Some(Value::String(t)) if t.trim().is_empty() => Some(0),
        Some(v) => Some(value_text(v).trim().parse::<i64>().unwrap_or(-1)),
    };
    let mut rows = store.catalog_children(&volume, parent)?;
    drop(store);
    if let Some(f) = filter("file_name") {
        let wanted: Vec<String> = f.values.iter().map(value_text).collect();
        rows.retain(|r| {
            wanted
                .iter()
                .any(|w| r.name() == w || (f.fuzzy && r.name().contains(w.as_str())))
        });
    }
    if let Some(f) = filter("ref_file_id") {
        // No file here has a reference id: only an empty value matches.
        let wanted: Vec<String> = f.values.iter().map(value_text).collect();
        rows.retain(|_| wanted.iter().all(String::is_empty));
    }
    if !req.keyword.is_empty() {
        rows.retain(|r| r.name().contains(req.keyword.as_str()));
    }
    let page = cond.page.unwrap_or(1).max(1);
    let size = cond
        .page_size
        .unwrap_or(10)
        .clamp(1, s.config.max_page_size.max(1));
    let total = rows.len();
    let start = ((page - 1) * size).min(total as u64) as usize;
    let end = (start + size as usize).min(total);
    let name = volume_name(s, &volume);
    let list: Vec<Value> = rows[start..end]
        .iter()
        .map(|r| entry_json(r, &name))
        .collect();
    Ok(json!({"total": total, "list": list}))
}

#[derive(Deserialize)]
struct IdRequest {
    id: RawId,
}

#[derive(Deserialize)]
struct RenameRequest {
    id: RawId,
    name: String,
}

#[derive(Deserialize)]
struct FolderCreateRequest {
    name: String,
    volume_id: RawId,
    #[serde(default)]
    parent_id: Option<RawId>,
}

fn info(s: &AppState, req: IdRequest) -> Result<Value, EmuError> {
    let id = id_of(&req.id)?;
    let row = s.store().catalog_entry(id)?;
    let row = row.ok_or_else(|| no_such(&req.id.text()))?;
    Ok(entry_json(&row, &volume_name(s, &row.volume)))
}

/// A change to one catalog object: its volume looked up first (for the bytes on disk),
/// then `change` made in the store, then answered.
fn change_entry(
    s: &AppState,
    raw: &RawId,
    change: impl FnOnce(&mut super::store::Store, i64) -> rusqlite::Result<Changed>,
) -> Result<Value, EmuError> {
    let id = id_of(raw)?;
    let mut store = s.store();
    let volume = store.catalog_entry(id)?.map(|r| r.volume);
    let changed = change(&mut store, id)?;
    drop(store);
    apply(s, raw, changed, volume.as_deref())
}

fn delete_file(s: &AppState, req: IdRequest) -> Result<Value, EmuError> {
    change_entry(s, &req.id, |store, id| store.delete_file(id))
}

fn rename_file(s: &AppState, req: RenameRequest) -> Result<Value, EmuError> {
    check_name(&req.name)?;
    change_entry(s, &req.id, |store, id| store.rename_file(id, &req.name))
}

fn rename_folder(s: &AppState, req: RenameRequest) -> Result<Value, EmuError> {
    check_name(&req.name)?;
    change_entry(s, &req.id, |store, id| store.rename_folder(id, &req.name))
}

fn delete_folder(s: &AppState, req: IdRequest) -> Result<Value, EmuError> {
    change_entry(s, &req.id, |store, id| store.delete_folder(id))
}

fn create_folder(s: &AppState, req: FolderCreateRequest) -> Result<Value, EmuError> {
    check_name(&req.name)?;
    let volume = req.volume_id.text();
    let mut store = s.store();
    if store.volume_name(&volume)?.is_none() {
        return Err(unknown_volume(&volume));
    }
    let parent = parent_of(req.parent_id.as_ref())?;
    let id = store
        .create_folder(&volume, parent, &req.name)?
        .ok_or_else(|| {
            EmuError::not_found(
                "ErrFileNotFound",
                format!("parent folder {parent} does not exist"),
            )
        })?;
    Ok(json!({"id": id.to_string(), "name": req.name}))
}

fn volume_info(s: &AppState, req: IdRequest) -> Result<Value, EmuError> {
    let id = req.id.text();
    let name = s.store().volume_name(&id)?;
    let name = name.ok_or_else(|| unknown_volume(&id))?;
    Ok(
        json!({"id": id, "name": name, "description": "", "ref": false,
              "created_at": "0", "updated_at": "0"}),
    )
}

fn check_name(name: &str) -> Result<(), EmuError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(EmuError::bad(format!(
            "'{name}' is not a name: it must be non-empty, without '/'"
        )));
    }
    Ok(())
}

/// Answers a change, after making the same change to the bytes on disk.
fn apply(
    s: &AppState,
    id: &RawId,
    changed: Changed,
    volume: Option<&str>,
) -> Result<Value, EmuError> {
    match changed {
        Changed::Unknown => Err(no_such(&id.text())),
        Changed::Taken(name) => Err(EmuError {
            status: StatusCode::CONFLICT,
            code: "ErrNameConflict",
            msg: format!("'{name}' is already taken in this folder"),
        }),
        Changed::Done { moves, still_there } => {
            if let Some(volume) = volume {
                mirror_on_disk(&s.volume_dir(volume), &moves, still_there);
            }
            Ok(json!({"id": id.text()}))
        }
    }
}

/// The stored bytes follow the catalog: moved, or removed unless another live file
/// still stands at that path.
fn mirror_on_disk(root: &Path, moves: &[(String, String)], still_there: bool) {
    for (old, new) in moves {
        let from = root.join(old);
        if !from.exists() {
            continue;
        }
        if new.is_empty() {
            if from.is_dir() {
                let _ = std::fs::remove_dir_all(&from);
            } else if !still_there {
                let _ = std::fs::remove_file(&from);
            }
            continue;
        }
        let to = root.join(new);
        if let Some(parent) = to.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if still_there {
            let _ = std::fs::copy(&from, &to);
        } else {
            let _ = std::fs::rename(&from, &to);
        }
    }
}

fn volume_name(s: &AppState, id: &str) -> String {
    s.store().volume_name(id).ok().flatten().unwrap_or_default()
}

/// An entry as the Go SDK's `VolumeChildrenResponse` reads it.
fn entry_json(r: &CatalogRow, volume_name: &str) -> Value {
    let name = r.name();
    let ext = if r.folder {
        ""
    } else {
        name.rsplit_once('.').map_or("", |(_, e)| e)
    };
    let file_type = if r.folder {
        "10".to_string()
    } else {
        file_type_of(name).to_string()
    };
    let parent = if r.parent_id == 0 {
        String::new()
    } else {
        r.parent_id.to_string()
    };
    json!({
        "id": r.id.to_string(),
        "name": name,
        "file_type": file_type,
        "show_type": "normal",
        "file_ext": ext,
        "origin_file_ext": ext,
        "ref_file_id": "",
        "size": r.size,
        "volume_id": r.volume,
        "volume_name": volume_name,
        "volume_reserved": false,
        "ref_workflow_id": "",
        "parent_id": parent,
        "show_path": format!("/{}", r.path),
        "save_path": "",
        "created_at": (r.created_ms / 1000).to_string(),
        "created_by": "emulator",
        "updated_at": (r.updated_ms / 1000).to_string(),
    })
}
