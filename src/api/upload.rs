//! `POST /connectors/upload`: multipart parts `file` (one per file), `VolumeID`, `meta`.
//!
//! Bodies stream from disk in 1 MiB chunks, so memory does not grow with file size. Each
//! attempt reopens the files and checks they are still what the walk saw, so a retried
//! upload starts from byte zero of the current file and a file being rewritten is caught.
//! A watchdog aborts an upload when no byte has moved for the client's idle timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Body;
use reqwest::multipart::{Form, Part};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::client::Client;
use super::error::{ApiError, ErrorKind};
use super::id::Id;
use super::model::{UploadAnswer, UploadMeta};

pub const UPLOAD_CALL: &str = "POST /connectors/upload";
const CHUNK: usize = 1024 * 1024;

/// A local file to send, as the walk saw it.
#[derive(Debug, Clone)]
pub struct UploadSource {
    pub path: PathBuf,
    /// The name the service stores it under (`meta.file_name`).
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

/// Modification time of `meta` in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
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

impl Client {
    /// Uploads `files` to `volume` in one request. `sent` counts body bytes as they leave.
    pub async fn upload(
        &self,
        volume: Id,
        files: &[UploadSource],
        sent: Arc<AtomicU64>,
    ) -> Result<UploadAnswer, ApiError> {
        let meta: Vec<UploadMeta> = files
            .iter()
            .map(|f| UploadMeta {
                file_name: f.file_name.clone(),
                file_size: f.size,
                mime_type: f.mime_type.clone(),
            })
            .collect();
        let meta_json = serde_json::to_string(&meta)
            .map_err(|e| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string()))?;
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let url = self.url("connectors/upload");
        let request = self.execute::<UploadAnswer>(UPLOAD_CALL, |http| {
            activity.touch();
            let mut form = Form::new().percent_encode_noop();
            for src in files {
                let file = tokio::fs::File::from_std(open_unchanged(src)?);
                let activity = activity.clone();
                let sent = sent.clone();
                // A small file gets a small buffer: 1 MiB per 4 KiB file would cost an mmap each.
                let capacity = (src.size as usize).clamp(1, CHUNK);
                let stream = ReaderStream::with_capacity(file.take(src.size), capacity).inspect(
                    move |chunk| {
                        if let Ok(b) = chunk {
                            activity.touch();
                            sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                        }
                    },
                );
                let part = Part::stream_with_length(Body::wrap_stream(stream), src.size)
                    .file_name(part_filename(&src.file_name))
                    .mime_str(&src.mime_type)
                    .or_else(|_| Part::bytes(Vec::new()).mime_str("application/octet-stream"))
                    .map_err(|e| ApiError::new(ErrorKind::Local, UPLOAD_CALL, e.to_string()))?;
                form = form.part("file", part);
            }
            form = form
                .text("VolumeID", volume.to_string())
                .text("meta", meta_json.clone());
            Ok(http.post(&url).multipart(form))
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
