//! `POST /connectors/upload`: multipart parts `file` (repeatable), `VolumeID` and `meta`,
//! in any order. File parts stream to owner-only temp files as they arrive (never whole
//! in memory) and move into the volume folder only once the whole request checks out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

use super::faults::{InFlight, Stats};
use super::store::NewFile;
use super::{AppState, ConnectionKill, create_private_dir, ok_json, refuse};
use crate::api::Id;
use crate::api::model::{UploadAnswer, UploadFileResult, UploadMeta};

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
    let (mut volume, mut meta) = (None, None);
    let mut total: u64 = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad(&s, format!("the multipart body is malformed: {e}")),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
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
                    if let Err(e) = out.write_all(&chunk).await {
                        return storage_error(&tmp, e);
                    }
                }
                if let Err(e) = out.flush().await {
                    return storage_error(&tmp, e);
                }
                files.push(ReceivedFile { tmp, size });
            }
            "VolumeID" => match field.text().await {
                Ok(t) => volume = Some(t),
                Err(e) => return bad(&s, format!("the VolumeID part is unreadable: {e}")),
            },
            "meta" => match field.text().await {
                Ok(t) => meta = Some(t),
                Err(e) => return bad(&s, format!("the meta part is unreadable: {e}")),
            },
            other => {
                return bad(
                    &s,
                    format!(
                        "unexpected part '{other}': the upload takes parts file, VolumeID and meta"
                    ),
                );
            }
        }
    }
    mid_body.strike(&s).await;
    let (volume, metas) = match check_request(&s, volume, meta, &files) {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Renames and SQLite run off the async workers, so a busy store never stalls the server.
    let state = s.clone();
    tokio::task::spawn_blocking(move || store_upload(&state, volume, metas, files, temps))
        .await
        .unwrap_or_else(|e| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            )
        })
}

fn check_request(
    s: &AppState,
    volume: Option<String>,
    meta: Option<String>,
    files: &[ReceivedFile],
) -> Result<(Id, Vec<UploadMeta>), Response> {
    let volume =
        volume.ok_or_else(|| bad(s, "missing part VolumeID: the id of the target volume"))?;
    let volume: Id = volume
        .parse()
        .map_err(|_| bad(s, format!("VolumeID '{volume}' is not a volume id")))?;
    match s.store().volume_name(volume) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(super::routes::unknown_volume(volume)),
        Err(e) => {
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            ));
        }
    }
    let meta = meta.ok_or_else(|| {
        bad(
            s,
            "missing part meta: a JSON array with one object per file part",
        )
    })?;
    let raw: serde_json::Value =
        serde_json::from_str(&meta).map_err(|e| bad(s, format!("meta is not JSON: {e}")))?;
    if !raw.is_array() {
        return Err(bad(
            s,
            "meta must be a JSON array with one object per file part",
        ));
    }
    let metas: Vec<UploadMeta> = serde_json::from_value(raw).map_err(|e| {
        bad(
            s,
            format!("each meta entry needs file_name (text) and file_size (bytes): {e}"),
        )
    })?;
    if files.is_empty() {
        return Err(bad(s, "the request carries no file part"));
    }
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
    for (m, f) in metas.iter().zip(files) {
        check_name(&m.file_name).map_err(|e| bad(s, e))?;
        if m.file_size != f.size {
            return Err(bad(
                s,
                format!(
                    "meta gives file_size {} for '{}' but its part carried {} bytes",
                    m.file_size, m.file_name, f.size
                ),
            ));
        }
    }
    Ok((volume, metas))
}

fn store_upload(
    s: &AppState,
    volume: Id,
    metas: Vec<UploadMeta>,
    files: Vec<ReceivedFile>,
    temps: TempFiles,
) -> Response {
    let root = s.volume_dir(volume);
    for (m, f) in metas.iter().zip(&files) {
        let dest = root.join(&m.file_name);
        if let Some(parent) = dest.parent()
            && let Err(e) = create_private_dir(parent)
        {
            return refuse(
                StatusCode::CONFLICT,
                "ErrNameConflict",
                format!("cannot store '{}': {e}", m.file_name),
            );
        }
        if dest.is_dir() {
            return refuse(
                StatusCode::CONFLICT,
                "ErrNameConflict",
                format!("'{}' is a folder in this volume", m.file_name),
            );
        }
        if let Err(e) = std::fs::rename(&f.tmp, &dest) {
            return storage_error(&dest, e);
        }
    }
    drop(temps);
    let faults = s.faults();
    let new_files: Vec<NewFile> = metas
        .iter()
        .map(|m| NewFile {
            name: m.file_name.clone(),
            size: m.file_size,
            mime: m.mime_type.clone(),
            will_fail: faults
                .always_fail_suffix
                .as_deref()
                .is_some_and(|x| m.file_name.ends_with(x))
                || s.chance(faults.ingest_failure),
        })
        .collect();
    let added = s
        .store()
        .add_upload(volume, &new_files, s.config.ingest_time);
    let (task_id, ids, duplicates) = match added {
        Ok(a) => a,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            );
        }
    };
    s.stats
        .files_accepted
        .fetch_add(ids.len() as u64, Ordering::SeqCst);
    s.stats
        .bytes_accepted
        .fetch_add(metas.iter().map(|m| m.file_size).sum(), Ordering::SeqCst);
    s.stats.duplicates.fetch_add(duplicates, Ordering::SeqCst);
    ok_json(UploadAnswer {
        success: true,
        file_id: ids.first().copied(),
        task_id: Some(task_id),
        message: "upload succeeded".into(),
        results: ids
            .iter()
            .map(|id| UploadFileResult {
                success: true,
                file_id: Some(*id),
                message: "upload succeeded".into(),
            })
            .collect(),
    })
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
