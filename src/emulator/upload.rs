//! `POST /connectors/upload`: multipart parts `file` (repeatable), `VolumeID`, `meta` (in
//! either vocabulary, or none), and the live service's `dedup`, `file_types`, `path_regex`,
//! `unzip_keep_structure` and `table_config`, in any order. `unzip_keep_structure` and
//! `table_config` are checked and accepted but not acted on (no archive is unpacked, no
//! table filled). File parts stream to owner-only temp files as they arrive (never whole
//! in memory) and move into the volume folder only once the whole request checks out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

use md5::{Digest, Md5};

use super::faults::{InFlight, Stats};
use super::store::{NewFile, file_type_of};
use super::volume::DedupRule;
use super::{AppState, ConnectionKill, Dialect, create_private_dir, ok_json, refuse};
use crate::api::model::{UploadFileResult, UploadMeta, default_mime};

/// Checks a `file_name` before it becomes a path under the volume folder.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("file_name is empty".into());
    }
    if name.len() > 1024 {
        return Err("file_name is longer than 1024 bytes".into());
    }
    if name.contains('\0') {
        return Err("file_name contains a NUL byte".into());
    }
    if name.contains('\\') {
        return Err(format!(
            "file_name '{name}' contains a backslash; separate folders with /"
        ));
    }
    if name.starts_with('/') {
        return Err(format!(
            "file_name '{name}' is an absolute path; send a path relative to the volume"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("file_name contains control characters".into());
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err(format!(
                "file_name '{name}' has an empty folder name (// or a trailing /)"
            ));
        }
        if part == "." || part == ".." {
            return Err(format!(
                "file_name '{name}' contains '{part}'; paths may not climb out of the volume"
            ));
        }
        if part.len() > 255 {
            return Err(format!(
                "file_name '{name}' has a component longer than 255 bytes"
            ));
        }
    }
    Ok(())
}

/// Temp files of one request, removed unless they were moved into the volume.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct ReceivedFile {
    tmp: PathBuf,
    size: u64,
    /// The part's own filename: the stored name when meta gives none.
    part_name: Option<String>,
    md5: String,
}

fn bad(s: &AppState, msg: impl Into<String>) -> Response {
    Stats::bump(&s.stats.bad_requests);
    refuse(StatusCode::BAD_REQUEST, "ErrInvalidParameter", msg)
}

fn too_large(s: &AppState, limit: u64) -> Response {
    Stats::bump(&s.stats.too_large);
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ErrRequestTooLarge",
        format!("the request is larger than the {limit} bytes this service accepts"),
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get("content-length")?.to_str().ok()?.parse().ok()
}

/// The injected network faults, which strike once the body has started to flow.
enum MidBody {
    None,
    Drop(ConnectionKill),
    Stall,
}

impl MidBody {
    async fn strike(&mut self, s: &AppState) {
        match std::mem::replace(self, MidBody::None) {
            MidBody::None => {}
            MidBody::Drop(kill) => {
                Stats::bump(&s.stats.injected_drop);
                kill.kill();
                std::future::pending::<()>().await;
            }
            MidBody::Stall => {
                Stats::bump(&s.stats.injected_stall);
                // Bounded, so an abandoned request cannot hold its slot for ever.
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    }
}

pub(super) async fn upload(State(s): State<Arc<AppState>>, req: Request) -> Response {
    Stats::bump(&s.stats.requests);
    Stats::bump(&s.stats.upload_requests);
    if let Err(r) = s.authenticate(req.headers()) {
        return r;
    }
    let _slot = InFlight::enter(&s.stats);
    if let Err(r) = s.common_faults().await {
        return r;
    }
    let faults = s.faults();
    if let (Some(limit), Some(len)) = (faults.max_body_bytes, content_length(req.headers()))
        && len > limit
    {
        // Read (and drop) the rest first, as servers with a lingering close do, so the
        // client is still listening when the 413 comes; bounded, so it cannot be abused.
        use futures::StreamExt;
        let mut body = req.into_body().into_data_stream();
        let mut drained = 0u64;
        while drained < len.min(1 << 30) {
            match body.next().await {
                Some(Ok(chunk)) => drained += chunk.len() as u64,
                _ => break,
            }
        }
        return too_large(&s, limit);
    }
    let mut mid_body = match req.extensions().get::<ConnectionKill>() {
        Some(kill) if s.chance(faults.drop_connection) => MidBody::Drop(kill.clone()),
        _ if s.chance(faults.stall) => MidBody::Stall,
        _ => MidBody::None,
    };
    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => {
            return bad(
                &s,
                format!(
                    "the body must be multipart/form-data with parts file, VolumeID and meta: {e}"
                ),
            );
        }
    };
    let mut temps = TempFiles(Vec::new());
    let mut files: Vec<ReceivedFile> = Vec::new();
    let mut form = Form::default();
    let mut total: u64 = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad(&s, format!("the multipart body is malformed: {e}")),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let part_name = field.file_name().map(str::to_string);
            let n = s.tmp_counter.fetch_add(1, Ordering::SeqCst);
            let tmp = s
                .config
                .data_dir
                .join("tmp")
                .join(format!("part-{}-{n}", std::process::id()));
            temps.0.push(tmp.clone());
            let mut out = match open_private(&tmp).await {
                Ok(f) => f,
                Err(e) => return storage_error(&tmp, e),
            };
            let mut size = 0u64;
            let mut md5 = Md5::new();
            loop {
                let chunk = match field.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => return bad(&s, format!("a file part was cut short: {e}")),
                };
                mid_body.strike(&s).await;
                size += chunk.len() as u64;
                total += chunk.len() as u64;
                if let Some(limit) = faults.max_body_bytes
                    && total > limit
                {
                    return too_large(&s, limit);
                }
                md5.update(&chunk);
                if let Err(e) = out.write_all(&chunk).await {
                    return storage_error(&tmp, e);
                }
            }
            if let Err(e) = out.flush().await {
                return storage_error(&tmp, e);
            }
            files.push(ReceivedFile {
                tmp,
                size,
                part_name,
                md5: hex::encode(md5.finalize()),
            });
            continue;
        }
        let text = match field.text().await {
            Ok(t) => t,
            Err(e) => return bad(&s, format!("the {name} part is unreadable: {e}")),
        };
        if let Err(msg) = form.set(&name, text) {
            return bad(&s, msg);
        }
    }
    mid_body.strike(&s).await;
    let checked = match check_request(&s, form, &files) {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Renames and SQLite run off the async workers, so a busy store never stalls the server.
    let state = s.clone();
    tokio::task::spawn_blocking(move || store_upload(&state, checked, files, temps))
        .await
        .unwrap_or_else(|e| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            )
        })
}

/// The text parts of an upload, as received.
#[derive(Default)]
struct Form {
    volume: Option<String>,
    meta: Option<String>,
    dedup: Option<String>,
    file_types: Option<String>,
    path_regex: Option<String>,
    unzip_keep_structure: Option<String>,
    table_config: Option<String>,
}

impl Form {
    fn set(&mut self, name: &str, text: String) -> Result<(), String> {
        let slot = match name {
            "VolumeID" => &mut self.volume,
            "meta" => &mut self.meta,
            "dedup" => &mut self.dedup,
            "file_types" => &mut self.file_types,
            "path_regex" => &mut self.path_regex,
            "unzip_keep_structure" => &mut self.unzip_keep_structure,
            "table_config" => &mut self.table_config,
            // The vendor's Python SDK sends an empty placeholder part when it has no file.
            "__empty" => return Ok(()),
            other => {
                return Err(format!(
                    "unexpected part '{other}': the upload takes parts file, VolumeID, meta, \
                     dedup, file_types, path_regex, unzip_keep_structure and table_config"
                ));
            }
        };
        *slot = Some(text);
        Ok(())
    }
}

/// An upload that passed every check.
struct Checked {
    volume: String,
    names: Vec<String>,
    mimes: Vec<String>,
    dedup: Option<DedupRule>,
    /// Per file: why it is left out (file_types / path_regex), if it is.
    filtered: Vec<Option<String>>,
}

fn check_request(s: &AppState, form: Form, files: &[ReceivedFile]) -> Result<Checked, Response> {
    let volume = form
        .volume
        .ok_or_else(|| bad(s, "missing part VolumeID: the id of the target volume"))?;
    let volume = volume.trim().to_string();
    match s.store().volume_name(&volume) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(super::routes::unknown_volume(&volume)),
        Err(e) => {
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            ));
        }
    }
    if files.is_empty() {
        if form.table_config.is_some() {
            return Err(bad(
                s,
                "table_config with conn_file_ids (import of files uploaded earlier) is not \
                 emulated; send the files as file parts",
            ));
        }
        return Err(bad(s, "the request carries no file part"));
    }
    let metas: Vec<UploadMeta> = match &form.meta {
        None => vec![UploadMeta::default(); files.len()],
        Some(meta) => {
            let raw: serde_json::Value =
                serde_json::from_str(meta).map_err(|e| bad(s, format!("meta is not JSON: {e}")))?;
            if !raw.is_array() {
                return Err(bad(
                    s,
                    "meta must be a JSON array with one object per file part",
                ));
            }
            serde_json::from_value(raw).map_err(|e| {
                bad(
                    s,
                    format!(
                        "each meta entry takes filename and path (or file_name, file_size and \
                         mime_type): {e}"
                    ),
                )
            })?
        }
    };
    if metas.len() != files.len() {
        return Err(bad(
            s,
            format!(
                "meta lists {} files but the request carries {} file parts",
                metas.len(),
                files.len()
            ),
        ));
    }
    let mut names = Vec::new();
    let mut mimes = Vec::new();
    for (m, f) in metas.iter().zip(files) {
        // The stored name comes from meta; without one, from the part's filename.
        let name = match m.volume_path() {
            Some(p) => p,
            None => f
                .part_name
                .clone()
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    bad(
                        s,
                        "a file has neither a meta entry with a path nor a part filename",
                    )
                })?,
        };
        check_name(&name).map_err(|e| bad(s, e))?;
        if let Some(size) = m.file_size
            && size != f.size
        {
            return Err(bad(
                s,
                format!(
                    "meta gives file_size {size} for '{name}' but its part carried {} bytes",
                    f.size
                ),
            ));
        }
        mimes.push(m.mime_type.clone().unwrap_or_else(default_mime));
        names.push(name);
    }
    if form.dedup.is_some() {
        Stats::bump(&s.stats.dedup_parts);
    }
    let dedup = form
        .dedup
        .as_deref()
        .map(DedupRule::parse)
        .transpose()
        .map_err(|e| bad(s, e))?;
    let file_types: Option<Vec<i64>> = form
        .file_types
        .as_deref()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| {
                bad(
                    s,
                    format!("file_types must be a JSON array of type numbers: {e}"),
                )
            })
        })
        .transpose()?;
    let path_regex = form
        .path_regex
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| {
            regex_lite::Regex::new(r).map_err(|e| {
                bad(
                    s,
                    format!("path_regex '{r}' is not a regular expression: {e}"),
                )
            })
        })
        .transpose()?;
    if let Some(u) = &form.unzip_keep_structure
        && !matches!(u.as_str(), "true" | "false")
    {
        return Err(bad(s, "unzip_keep_structure must be \"true\" or \"false\""));
    }
    if let Some(t) = &form.table_config {
        serde_json::from_str::<serde_json::Value>(t)
            .map_err(|e| bad(s, format!("table_config is not JSON: {e}")))?;
    }
    let filtered = names
        .iter()
        .map(|n| {
            let t = file_type_of(n);
            if let Some(types) = &file_types
                && !types.contains(&t)
            {
                return Some(format!("left out: its type {t} is not in file_types"));
            }
            if let Some(re) = &path_regex
                && !re.is_match(n)
            {
                return Some("left out: its path does not match path_regex".to_string());
            }
            None
        })
        .collect();
    Ok(Checked {
        volume,
        names,
        mimes,
        dedup,
        filtered,
    })
}

fn store_upload(s: &AppState, c: Checked, files: Vec<ReceivedFile>, temps: TempFiles) -> Response {
    let root = s.volume_dir(&c.volume);
    let faults = s.faults();
    let mut kept: Vec<usize> = Vec::new();
    let mut new_files = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if c.filtered[i].is_some() {
            continue;
        }
        kept.push(i);
        let name = &c.names[i];
        new_files.push(NewFile {
            name: name.clone(),
            size: f.size,
            mime: c.mimes[i].clone(),
            md5: f.md5.clone(),
            will_fail: faults
                .always_fail_suffix
                .as_deref()
                .is_some_and(|x| name.ends_with(x))
                || s.chance(faults.ingest_failure),
        });
    }
    // Moves a file into the volume once the store decided it goes in.
    let place = |k: usize, gone: &[String]| -> Result<(), String> {
        for old in gone {
            let _ = std::fs::remove_file(root.join(old));
        }
        let i = kept[k];
        let dest = root.join(&c.names[i]);
        if let Some(parent) = dest.parent() {
            create_private_dir(parent)
                .map_err(|e| format!("cannot store '{}': {e}", c.names[i]))?;
        }
        if dest.is_dir() {
            return Err(format!("'{}' is a folder in this volume", c.names[i]));
        }
        std::fs::rename(&files[i].tmp, &dest)
            .map_err(|e| format!("cannot store '{}': {e}", c.names[i]))
    };
    let outcome = match s.store().add_upload(
        &c.volume,
        &new_files,
        c.dedup.as_ref(),
        s.config.ingest_time,
        place,
    ) {
        Ok(Ok(o)) => o,
        Ok(Err(conflict)) => return refuse(StatusCode::CONFLICT, "ErrNameConflict", conflict),
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            );
        }
    };
    drop(temps);
    let stored = outcome.files.iter().filter(|f| f.skipped.is_none()).count() as u64;
    s.stats.files_accepted.fetch_add(stored, Ordering::SeqCst);
    s.stats.bytes_accepted.fetch_add(
        kept.iter()
            .zip(&outcome.files)
            .filter(|(_, f)| f.skipped.is_none())
            .map(|(i, _)| files[*i].size)
            .sum(),
        Ordering::SeqCst,
    );
    s.stats
        .duplicates
        .fetch_add(outcome.duplicates, Ordering::SeqCst);
    s.stats
        .dedup_skipped
        .fetch_add(outcome.skipped, Ordering::SeqCst);
    s.stats
        .dedup_replaced
        .fetch_add(outcome.replaced, Ordering::SeqCst);
    let mut stored_iter = outcome.files.iter();
    let results: Vec<UploadFileResult> = (0..files.len())
        .map(|i| match &c.filtered[i] {
            Some(why) => UploadFileResult {
                success: false,
                file_id: None,
                message: why.clone(),
            },
            None => {
                let f = stored_iter.next();
                UploadFileResult {
                    success: true,
                    file_id: f.map(|f| f.id),
                    message: f
                        .and_then(|f| f.skipped.clone())
                        .unwrap_or_else(|| "upload succeeded".into()),
                }
            }
        })
        .collect();
    let first = results.iter().find_map(|r| r.file_id);
    let task_id = match s.config.dialect {
        // The SDKs decode task_id into an int64.
        Dialect::Sdk => serde_json::json!(outcome.task_id.0),
        Dialect::Seed => serde_json::json!(outcome.task_id.to_string()),
    };
    ok_json(serde_json::json!({
        "success": results.iter().any(|r| r.success),
        "file_id": first.map(|f| f.to_string()).unwrap_or_default(),
        "task_id": task_id,
        "message": "upload succeeded",
        "results": results,
    }))
}

fn storage_error(path: &Path, e: std::io::Error) -> Response {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ErrInternal",
        format!("emulator cannot write {}: {e}", path.display()),
    )
}

async fn open_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_that_would_escape_the_volume_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a\\b",
            "a\0b",
            "a//b",
            "a/",
            "\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_name(&"x".repeat(300)).is_err());
        assert!(check_name(&"a/".repeat(600)).is_err());
        for good in [
            "a.pdf",
            "docs/红楼梦(通行本)简体横排.pdf",
            "a b/c..d.txt",
            ".hidden",
        ] {
            assert!(check_name(good).is_ok(), "{good:?} was refused");
        }
    }
}
