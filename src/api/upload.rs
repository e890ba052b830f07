//! `POST /connectors/upload`: multipart parts `file` (one per file), `VolumeID`, `meta`,
//! and the live service's optional `dedup`.
//!
//! `meta` carries both vocabularies for every file (see [`UploadMeta`]): `file_name`,
//! `file_size`, `mime_type` for a service that reads the 2025 documents, `filename` and
//! `path` for one that speaks the SDKs' dialect.
//!
//! Bodies stream from disk in 1 MiB chunks, so memory does not grow with file size (files
//! of 32 KiB or less are read whole, see [`READ_WHOLE`]). Each
//! attempt reopens the files and checks they are still what the walk saw, so a retried
//! upload starts from byte zero of the current file and a file being rewritten is caught.
//! A watchdog aborts an upload when no byte has moved for the client's idle timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Body;
use reqwest::multipart::{Form, Part};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::walk::mtime_ns;

use super::client::Client;
use super::error::{ApiError, ErrorKind};
use super::id::VolumeId;
use super::model::{Dedup, UploadAnswer, UploadMeta};

pub const UPLOAD_CALL: &str = "POST /connectors/upload";
const CHUNK: usize = 1024 * 1024;

/// A local file to send, as the walk saw it.
#[derive(Debug, Clone)]
pub struct UploadSource {
    pub path: PathBuf,
    /// Where the service stores it: its path in the volume, `/`-separated (`meta.path` and
    /// `meta.file_name`; the base name goes in `meta.filename`).
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch, as walked.
    pub mtime_ns: i64,
}

struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Paces upload bodies (`--bwlimit`): how long to hold back `bytes` before they go out.
/// The pipeline implements it; the body stream only asks.
pub trait BodyPace: Send + Sync + std::fmt::Debug {
    fn delay(&self, bytes: u64) -> Duration;
}

/// Body chunks while a bandwidth cap applies: small enough that a slow cap still moves
/// bytes well within the idle timeout.
const PACED_CHUNK: usize = 64 * 1024;

/// The meta entry of one file, in both vocabularies.
pub fn meta_of(src: &UploadSource) -> UploadMeta {
    let base = src.file_name.rsplit('/').next().unwrap_or(&src.file_name);
    UploadMeta {
        file_name: Some(src.file_name.clone()),
        file_size: Some(src.size),
        mime_type: Some(src.mime_type.clone()),
        filename: Some(base.to_string()),
        path: Some(src.file_name.clone()),
    }
}

fn open_unchanged(src: &UploadSource) -> Result<std::fs::File, ApiError> {
    let local = |kind, msg: String| ApiError::new(kind, UPLOAD_CALL, msg);
    let file = std::fs::File::open(&src.path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "vanished since it was listed".to_string()
        } else {
            format!("cannot be read: {e}")
        };
        local(ErrorKind::Local, format!("{} {what}", src.path.display()))
    })?;
    let meta = file.metadata().map_err(|e| {
        local(
            ErrorKind::Local,
            format!("{} cannot be read: {e}", src.path.display()),
        )
    })?;
    if meta.len() != src.size || mtime_ns(&meta) != src.mtime_ns {
        return Err(local(
            ErrorKind::Changed,
            format!(
                "{} changed since it was listed (now {} bytes); it will be sent again",
                src.path.display(),
                meta.len()
            ),
        ));
    }
    Ok(file)
}

/// Files up to this size are read whole, at once, when their request is built. A small
/// file then costs one `read` on the task's own thread instead of a hop to tokio's
/// blocking pool and back per read (the larger part of a 4 KiB upload's CPU, measured with
/// `perf`). The bound keeps what a request holds in memory to `32 × 32 KiB` at most; larger
/// files stream in 1 MiB chunks.
const READ_WHOLE: u64 = 32 * 1024;

fn read_small(mut file: std::fs::File, src: &UploadSource) -> Result<Bytes, ApiError> {
    use std::io::Read;
    // Exactly the listed size, in one `read`: a file that shrank fails here, one that grew
    // or was rewritten is caught by the check after the answer (size and mtime again).
    let mut buf = vec![0; src.size as usize];
    file.read_exact(&mut buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ApiError::new(
                ErrorKind::Changed,
                UPLOAD_CALL,
                format!(
                    "{} changed while it was read (shorter than the {} bytes listed); it \
                     will be sent again",
                    src.path.display(),
                    src.size
                ),
            )
        } else {
            ApiError::new(
                ErrorKind::Local,
                UPLOAD_CALL,
                format!("{} cannot be read: {e}", src.path.display()),
            )
        }
    })?;
    Ok(Bytes::from(buf))
}

/// The part's `filename`: the same text as `meta.file_name`, with the characters that would
/// break the `Content-Disposition` header escaped as browsers do.
fn part_filename(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '"' => "%22".to_string(),
            c if c.is_control() => "%20".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The multipart form of one upload request: a `file` part per file (streamed, or read
/// whole when small), then `VolumeID`, `meta` and, when given, `dedup`. `on_chunk` hears the
/// size of every body chunk as it leaves. Public so that `cargo bench --bench codec` measures
/// the encoder the uploads use.
pub fn upload_form(
    volume: &VolumeId,
    files: &[UploadSource],
    meta_json: &str,
    dedup_json: Option<&str>,
    pace: Option<Arc<dyn BodyPace>>,
    on_chunk: impl Fn(usize) + Clone + Send + Sync + 'static,
) -> Result<Form, ApiError> {
    let mut form = Form::new().percent_encode_noop();
    for src in files {
        let file = open_unchanged(src)?;
        let on_chunk = on_chunk.clone();
        let pace = pace.clone();
        let body: BoxStream<'static, std::io::Result<Bytes>> = if src.size <= READ_WHOLE {
            futures::stream::once(futures::future::ready(Ok(read_small(file, src)?))).boxed()
        } else {
            let chunk = if pace.is_some() { PACED_CHUNK } else { CHUNK };
            let file = tokio::fs::File::from_std(file).take(src.size);
            ReaderStream::with_capacity(file, chunk).boxed()
        };
        let stream = body
            .then(move |chunk| {
                let wait = match (&pace, &chunk) {
                    (Some(p), Ok(b)) => p.delay(b.len() as u64),
                    _ => Duration::ZERO,
                };
                async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    chunk
                }
            })
            .inspect(move |chunk| {
                if let Ok(b) = chunk {
                    on_chunk(b.len());
                }
            });
        let part = Part::stream_with_length(Body::wrap_stream(stream), src.size)
            .file_name(part_filename(&src.file_name))
            .mime_str(&src.mime_type)
            .or_else(|_| Part::bytes(Vec::new()).mime_str("application/octet-stream"))
            .map_err(|e| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string()))?;
        form = form.part("file", part);
    }
    form = form
        .text("VolumeID", volume.to_string())
        .text("meta", meta_json.to_string());
    if let Some(d) = dedup_json {
        form = form.text("dedup", d.to_string());
    }
    Ok(form)
}

impl Client {
    /// Uploads `files` to `volume` in one request, with `dedup` when given. `sent` counts
    /// body bytes as they leave.
    pub async fn upload(
        &self,
        volume: &VolumeId,
        files: &[UploadSource],
        dedup: Option<&Dedup>,
        sent: Arc<AtomicU64>,
    ) -> Result<UploadAnswer, ApiError> {
        let meta: Vec<UploadMeta> = files.iter().map(meta_of).collect();
        let local =
            |e: serde_json::Error| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string());
        let meta_json = serde_json::to_string(&meta).map_err(local)?;
        let dedup_json = dedup
            .map(serde_json::to_string)
            .transpose()
            .map_err(local)?;
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let request = self.execute::<UploadAnswer>(UPLOAD_CALL, |http| {
            activity.touch();
            let activity = activity.clone();
            let sent = sent.clone();
            let form = upload_form(
                volume,
                files,
                &meta_json,
                dedup_json.as_deref(),
                self.options.body_pace.clone(),
                move |n| {
                    activity.touch();
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                },
            )?;
            Ok(http.post(self.upload_url.clone()).multipart(form))
        });
        let idle_limit = self.options.idle_timeout;
        let watchdog = async {
            let tick = (idle_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
            loop {
                tokio::time::sleep(tick).await;
                if activity.idle() > idle_limit {
                    break;
                }
            }
        };
        let answer = tokio::select! {
            r = request => r?,
            _ = watchdog => {
                return Err(ApiError::new(
                    ErrorKind::Transient,
                    UPLOAD_CALL,
                    format!("the upload stalled: nothing moved for {}s", idle_limit.as_secs_f32()),
                ));
            }
        };
        answer.ok_or_else(|| {
            ApiError::new(ErrorKind::Malformed, UPLOAD_CALL, "the answer has no data")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_filename_keeps_utf8_and_escapes_quotes() {
        assert_eq!(part_filename("a/红楼梦.pdf"), "a/红楼梦.pdf");
        assert_eq!(part_filename("say \"hi\".txt"), "say %22hi%22.txt");
    }
}
