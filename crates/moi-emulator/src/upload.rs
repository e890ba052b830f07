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
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;

use md5::{Digest, Md5};

use super::faults::{InFlight, Stats};
use super::form::{Checked, Form, check_request};
use super::store::{NewFile, UploadOutcome};
use super::{AppState, ConnectionKill, Dialect, create_private_dir, ok_json, refuse};
use moi_client::model::UploadFileResult;

/// Temp files of one request, removed unless they were moved into the volume.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(super) struct ReceivedFile {
    pub tmp: PathBuf,
    pub size: u64,
    /// The part's own filename: the stored name when meta gives none.
    pub part_name: Option<String>,
    pub md5: String,
}

/// A 400 (counted by the router, as every one is).
pub(super) fn bad(msg: impl Into<String>) -> Response {
    crate::EmuError::bad(msg).into_response()
}

fn too_large(s: &AppState, limit: u64) -> Response {
    Stats::bump(&s.stats.too_large);
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ErrRequestTooLarge",
        format!("the request is larger than the {limit} bytes this service accepts"),
    )
}

/// Reads and drops up to `limit` bytes of a request's body before it is refused; bounded,
/// so it cannot be abused.
async fn drain(req: Request, limit: u64) {
    use futures::StreamExt;
    let mut body = req.into_body().into_data_stream();
    let mut drained = 0u64;
    while drained < limit {
        match body.next().await {
            Some(Ok(chunk)) => drained += chunk.len() as u64,
            _ => break,
        }
    }
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
    s.arrivals.note();
    if let Err(r) = s.authenticate(req.headers()) {
        // The body is read before the refusal, so the client hears the 401 rather than a
        // connection reset while it is still sending.
        drain(req, 64 << 20).await;
        return r;
    }
    let slot = InFlight::enter(&s.stats);
    let faults = s.faults();
    if let Some(max) = faults.max_in_flight
        && slot.now() > max
    {
        Stats::bump(&s.stats.overload_refused);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "ErrTooManyRequests",
            format!("more than {max} uploads at once (the emulator's --max-in-flight)"),
        );
    }
    if let Err(r) = s.common_faults().await {
        return r;
    }
    if let (Some(limit), Some(len)) = (faults.max_body_bytes, content_length(req.headers()))
        && len > limit
    {
        // Read (and drop) the rest first, as servers with a lingering close do, so the
        // client is still listening when the 413 comes.
        drain(req, len.min(1 << 30)).await;
        return too_large(&s, limit);
    }
    let lose_answer = req
        .extensions()
        .get::<ConnectionKill>()
        .filter(|_| s.chance(faults.lost_answer))
        .cloned();
    let mut mid_body = match req.extensions().get::<ConnectionKill>() {
        Some(kill) if s.chance(faults.drop_connection) => MidBody::Drop(kill.clone()),
        _ if s.chance(faults.stall) => MidBody::Stall,
        _ => MidBody::None,
    };
    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => {
            return bad(format!(
                "the body must be multipart/form-data with parts file, VolumeID and meta: {e}"
            ));
        }
    };
    let (form, files, temps) = match receive(&s, &mut multipart, &mut mid_body).await {
        Ok(parts) => parts,
        Err(r) => return r,
    };
    mid_body.strike(&s).await;
    let checked = match check_request(&s, form, &files) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some((name, _)) = &faults.unavailable_name
        && checked.names.contains(name)
        && s.unavailable_name_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        Stats::bump(&s.stats.injected_unavailable);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ErrServiceUnavailable",
            format!("service unavailable for '{name}' (injected by the emulator)"),
        );
    }
    // Renames and SQLite run off the async workers, so a busy store never stalls the server.
    let state = s.clone();
    let answer = tokio::task::spawn_blocking(move || store_upload(&state, checked, files, temps))
        .await
        .unwrap_or_else(|e| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrInternal",
                e.to_string(),
            )
        });
    after_storing(&s, &faults, answer, lose_answer).await
}

/// The faults injected after a request was stored: a garbled answer, or none at all.
async fn after_storing(
    s: &AppState,
    faults: &crate::Faults,
    answer: Response,
    lose_answer: Option<ConnectionKill>,
) -> Response {
    if answer.status().is_success() && s.chance(faults.garbled) {
        let n = s.stats.injected_garbled.fetch_add(1, Ordering::SeqCst);
        let body: &'static str = match n % 4 {
            0 => "",
            1 => "{\"code\": \"OK\", \"msg\": \"OK\", \"data\": {\"task_",
            2 => "<html><body><h1>502 Bad Gateway</h1></body></html>",
            _ => "{\"code\": \"OK\"}",
        };
        return (StatusCode::OK, body).into_response();
    }
    if let Some(kill) = lose_answer
        && answer.status().is_success()
    {
        // Stored, and the answer never leaves: closing the connection drops this handler
        // before it returns. The wait is only a bound in case it does not.
        Stats::bump(&s.stats.injected_lost_answer);
        kill.kill();
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    answer
}

/// The parts of an upload: its form fields, and each file part streamed to a temporary
/// file (with its size and MD5), the injected mid-body faults striking as it arrives.
async fn receive(
    s: &AppState,
    multipart: &mut Multipart,
    mid_body: &mut MidBody,
) -> Result<(Form, Vec<ReceivedFile>, TempFiles), Response> {
    let mut temps = TempFiles(Vec::new());
    let mut files: Vec<ReceivedFile> = Vec::new();
    let mut form = Form::default();
    let mut total: u64 = 0;
    let limit = s.faults().max_body_bytes;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad(format!("the multipart body is malformed: {e}"))),
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
                Err(e) => return Err(storage_error(&tmp, e)),
            };
            let mut size = 0u64;
            let mut md5 = Md5::new();
            loop {
                let chunk = match field.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => return Err(bad(format!("a file part was cut short: {e}"))),
                };
                mid_body.strike(s).await;
                size += chunk.len() as u64;
                total += chunk.len() as u64;
                if let Some(limit) = limit
                    && total > limit
                {
                    return Err(too_large(s, limit));
                }
                md5.update(&chunk);
                if let Err(e) = out.write_all(&chunk).await {
                    return Err(storage_error(&tmp, e));
                }
            }
            if let Err(e) = out.flush().await {
                return Err(storage_error(&tmp, e));
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
            Err(e) => return Err(bad(format!("the {name} part is unreadable: {e}"))),
        };
        if let Err(msg) = form.set(&name, text) {
            return Err(bad(msg));
        }
    }
    Ok((form, files, temps))
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
    count_stored(s, &kept, &outcome, &files);
    upload_answer(s, &c, files.len(), &outcome)
}

/// What the stats say of a stored request: files and bytes accepted, duplicates, dedup.
fn count_stored(s: &AppState, kept: &[usize], outcome: &UploadOutcome, files: &[ReceivedFile]) {
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
}

/// The answer to a stored request: one result per file part, in order.
fn upload_answer(s: &AppState, c: &Checked, n_files: usize, outcome: &UploadOutcome) -> Response {
    let mut stored_iter = outcome.files.iter();
    let results: Vec<UploadFileResult> = (0..n_files)
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
