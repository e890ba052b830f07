//! `POST /connectors/upload`: multipart parts `file` (one per file), `VolumeID`, `meta`,
//! and the live service's optional `dedup`.
//!
//! `meta` carries both vocabularies for every file (see [`super::model::UploadMeta`]):
//! `file_name`, `file_size`, `mime_type` for a service that reads the 2025 documents,
//! `filename` and `path` for one that speaks the SDKs' dialect.
//!
//! The body is built by [`super::multipart`]. Each attempt reopens the files and checks
//! they are still what the walk saw, so a retried upload starts from byte zero of the
//! current file and a file being rewritten is caught. A watchdog aborts an upload when no
//! byte has moved for the client's idle timeout.

use std::borrow::Borrow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::Serialize;

use super::client::Client;
use super::error::{ApiError, ErrorKind};
use super::id::VolumeId;
use super::model::{Dedup, UploadAnswer};
use super::multipart::{READ_WHOLE, upload_body};

pub const UPLOAD_CALL: &str = "POST /connectors/upload";

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

impl UploadSource {
    /// Whether the file is read whole when its request is built (see [`READ_WHOLE`]): then
    /// the bytes sent were checked against the walk after they were read, and nothing that
    /// happens to the file during the send can change them.
    pub fn read_whole(&self) -> bool {
        self.size <= READ_WHOLE
    }
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

/// The `meta` entry of one file, in both vocabularies (the fields of [`UploadMeta`]),
/// borrowed from the file it describes.
#[derive(Serialize)]
struct MetaEntry<'a> {
    file_name: &'a str,
    file_size: u64,
    mime_type: &'a str,
    filename: &'a str,
    path: &'a str,
}

/// The `meta` part of a request of `files`: a JSON array with an entry per file, in order.
/// Public so that `cargo bench --bench codec` measures it.
pub fn meta_json<S: Borrow<UploadSource>>(files: &[S]) -> Result<String, ApiError> {
    let entries: Vec<MetaEntry> = files
        .iter()
        .map(Borrow::borrow)
        .map(|src: &UploadSource| MetaEntry {
            file_name: &src.file_name,
            file_size: src.size,
            mime_type: &src.mime_type,
            filename: src.file_name.rsplit('/').next().unwrap_or(&src.file_name),
            path: &src.file_name,
        })
        .collect();
    serde_json::to_string(&entries)
        .map_err(|e| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string()))
}

/// Runs `f`, which opens and reads files, where blocking is allowed: on a network share
/// each open and `stat` is a round trip, and on the runtime's few worker threads they would
/// wait one after another (a first night on a share took 35 s instead of 10). On a
/// current-thread runtime there is no other thread to move to, so `f` runs in place.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Client {
    /// Uploads `files` to `volume` in one request, with `dedup` when given. `sent` counts
    /// body bytes as they leave.
    pub async fn upload<S: Borrow<UploadSource> + Sync>(
        &self,
        volume: &VolumeId,
        files: &[S],
        dedup: Option<&Dedup>,
        sent: Arc<AtomicU64>,
    ) -> Result<UploadAnswer, ApiError> {
        self.upload_with(volume, files, dedup, move |n| {
            sent.fetch_add(n, Ordering::Relaxed);
        })
        .await
    }

    /// As [`Client::upload`], telling `on_sent` of the files' bytes as they leave (a
    /// caller that must know whether one request's body left whole counts them itself).
    pub async fn upload_with<S: Borrow<UploadSource> + Sync>(
        &self,
        volume: &VolumeId,
        files: &[S],
        dedup: Option<&Dedup>,
        on_sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<UploadAnswer, ApiError> {
        let on_sent = Arc::new(on_sent);
        let meta_json = meta_json(files)?;
        let dedup_json = dedup
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string()))?;
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        // Bytes of a body held in memory, told once an answer shows it arrived.
        let on_answer = AtomicU64::new(0);
        let build = || {
            activity.touch();
            let activity = activity.clone();
            let on_sent = on_sent.clone();
            let body = off_the_runtime(|| {
                upload_body(
                    volume,
                    files,
                    &meta_json,
                    dedup_json.as_deref(),
                    self.options.body_pace.clone(),
                    move |n| {
                        activity.touch();
                        on_sent(n as u64);
                    },
                )
            })?;
            on_answer.store(body.sent_on_answer, Ordering::Relaxed);
            Ok(body)
        };
        let request = async {
            match &self.direct {
                Some(direct) => self.execute_direct::<UploadAnswer>(direct, build).await,
                None => {
                    self.execute::<UploadAnswer>(UPLOAD_CALL, |http| {
                        let upload = build()?;
                        Ok(http
                            .post(self.upload_url.clone())
                            .header(CONTENT_TYPE, upload.content_type)
                            .header(CONTENT_LENGTH, upload.length)
                            .body(upload.body))
                    })
                    .await
                }
            }
        };
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
            r = request => {
                // Any answer, a refusal too, means the body arrived: its bytes left.
                if r.as_ref().map_or_else(|e| e.status.is_some(), |_| true) {
                    on_sent(on_answer.load(Ordering::Relaxed));
                }
                r?
            }
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
