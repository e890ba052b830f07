//! The `multipart/form-data` body of an upload, written directly (RFC 7578): a `file` part
//! per file, then `VolumeID`, `meta` and, when given, `dedup`.
//!
//! Written by hand rather than through reqwest's `Form` because that is where a small file's
//! request spent most of its encoding time: a boxed stream, a chain and a header buffer per
//! part, then a copy of every piece on its way out. Here the parts of small files are laid
//! out in one buffer, each file read straight into its place, so a request of small files
//! goes out as a single block of known length. A large file is streamed from disk in 1 MiB
//! chunks between two such blocks, so memory does not grow with file size.

use std::borrow::Borrow;
use std::hash::BuildHasher;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Body;

use super::error::{ApiError, ErrorKind};
use super::id::VolumeId;
use super::upload::{BodyPace, UPLOAD_CALL, UploadSource};

/// Files up to this size are read whole, at once, into the request's buffer when it is
/// built: one `read` on the task's own thread, instead of a hop to tokio's blocking pool
/// and back per read. The bound keeps what a request holds in memory to 1 MiB at most with
/// the default 32 files a request; larger files stream.
pub const READ_WHOLE: u64 = 32 * 1024;

const CHUNK: usize = 1024 * 1024;

/// Body chunks while a bandwidth cap applies. A cap is shared by every request in flight,
/// so each one moves a chunk every `PACED_CHUNK × requests / cap`: small chunks keep those
/// pauses short enough for a server's own body timeout (nginx's is 60 s) at slow caps.
const PACED_CHUNK: usize = 16 * 1024;

/// The longest a body waits on the bandwidth cap without telling `on_chunk` it is alive.
const PACE_HEARTBEAT: Duration = Duration::from_millis(250);

/// An upload's body with the two headers that describe it.
pub struct UploadBody {
    /// `multipart/form-data; boundary=…`
    pub content_type: String,
    /// Exact, so the request carries a `Content-Length` (never chunked).
    pub length: u64,
    pub body: Body,
    /// File bytes of a body held whole in memory: they are told as sent once an answer
    /// shows the body arrived (a streamed body tells its bytes as they leave).
    pub sent_on_answer: u64,
}

impl std::fmt::Debug for UploadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadBody")
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish()
    }
}

enum Segment {
    /// Framing, and the whole of any small files: how many of its bytes are file content.
    Bytes(Bytes, u64),
    /// A large file, opened and checked, to be streamed up to its listed size.
    File(std::fs::File, u64),
}

/// A fresh boundary per request: 32 hex digits from the process's random hash keys and a
/// counter, so no two requests share one and nobody can predict one to plant it in a file.
fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let keys = std::collections::hash_map::RandomState::new();
    format!(
        "moi-ingest-{:016x}{:016x}",
        keys.hash_one(n),
        keys.hash_one(!n)
    )
}

/// Writes the part's `filename`: the same text as `meta.file_name`, with the characters that
/// would break the `Content-Disposition` header escaped as browsers do.
fn push_part_filename(out: &mut Vec<u8>, name: &str) {
    for c in name.chars() {
        match c {
            '"' => out.extend_from_slice(b"%22"),
            c if c.is_control() => out.extend_from_slice(b"%20"),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

/// A MIME type fit for a header line; anything else goes as `application/octet-stream`.
fn header_mime(mime: &str) -> &str {
    let fits = !mime.is_empty()
        && mime.contains('/')
        && mime.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if fits {
        mime
    } else {
        "application/octet-stream"
    }
}

fn file_head(out: &mut Vec<u8>, boundary: &str, src: &UploadSource) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"");
    push_part_filename(out, &src.file_name);
    out.extend_from_slice(b"\"\r\nContent-Type: ");
    out.extend_from_slice(header_mime(&src.mime_type).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

fn text_part(out: &mut Vec<u8>, boundary: &str, name: &str, value: &str) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\"\r\n\r\n");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn local(kind: ErrorKind, msg: String) -> ApiError {
    ApiError::new(kind, UPLOAD_CALL, msg)
}

fn open(src: &UploadSource) -> Result<std::fs::File, ApiError> {
    std::fs::File::open(&src.path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "vanished since it was listed".to_string()
        } else {
            format!("cannot be read: {e}")
        };
        local(ErrorKind::Local, format!("{} {what}", src.path.display()))
    })
}

/// Whether the open `file` is still the size and age the walk saw.
fn check_unchanged(file: &std::fs::File, src: &UploadSource) -> Result<(), ApiError> {
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
    Ok(())
}

/// Appends the whole of a small file to `out`, read straight into place. The check comes
/// after the read, so the bytes sent are those of the file as listed: a file rewritten
/// before or during the read fails here, and one rewritten later is another version,
/// which the next walk finds.
fn read_into(out: &mut Vec<u8>, src: &UploadSource) -> Result<(), ApiError> {
    let mut file = open(src)?;
    let start = out.len();
    out.resize(start + src.size as usize, 0);
    file.read_exact(&mut out[start..]).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            local(
                ErrorKind::Changed,
                format!(
                    "{} changed while it was read (shorter than the {} bytes listed); it \
                     will be sent again",
                    src.path.display(),
                    src.size
                ),
            )
        } else {
            local(
                ErrorKind::Local,
                format!("{} cannot be read: {e}", src.path.display()),
            )
        }
    })?;
    check_unchanged(&file, src)
}

/// A segment's chunks, each with how many bytes of file content it carries (a block's are
/// all counted with its first chunk).
fn segment_stream(
    segment: Segment,
    chunk: usize,
) -> BoxStream<'static, std::io::Result<(Bytes, u64)>> {
    match segment {
        Segment::Bytes(b, content) => {
            let pieces: Vec<std::io::Result<(Bytes, u64)>> = (0..b.len())
                .step_by(chunk)
                .map(|at| {
                    let counted = if at == 0 { content } else { 0 };
                    Ok((b.slice(at..(at + chunk).min(b.len())), counted))
                })
                .collect();
            futures::stream::iter(pieces).boxed()
        }
        Segment::File(file, size) => file_chunks(file, size, chunk)
            .map(|r| {
                r.map(|b| {
                    let n = b.len() as u64;
                    (b, n)
                })
            })
            .boxed(),
    }
}

/// The first `size` bytes of `file`, a chunk at a time, each read on tokio's blocking pool
/// straight into the buffer that goes to the socket. (tokio's `fs::File` reads into a
/// buffer of its own and copies out of it: one more pass over every byte of a large file.)
/// A file that ends early ends the stream early; the request then fails on its length.
fn file_chunks(
    file: std::fs::File,
    size: u64,
    chunk: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold((file, size), move |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = chunk.min(usize::try_from(left).unwrap_or(chunk));
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(want);
            // `take` + `read_to_end` reads into the spare capacity, without zeroing it.
            let n = (&mut file).take(want as u64).read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>((file, buf, n))
        })
        .await
        .map_err(std::io::Error::other)?;
        let (file, buf, n) = read?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
    })
}

/// The body of one upload request. Every file is opened and checked against what the walk
/// saw (a small one is read whole here). `on_chunk` hears how many bytes of file content
/// each body chunk carries as it leaves (a body held whole in memory is heard once, here),
/// and hears 0 now and then while a bandwidth cap holds the body back.
/// Public so that `cargo bench --bench codec` measures the encoder the uploads use.
pub fn upload_body<S: Borrow<UploadSource>>(
    volume: &VolumeId,
    files: &[S],
    meta_json: &str,
    dedup_json: Option<&str>,
    pace: Option<Arc<dyn BodyPace>>,
    on_chunk: impl Fn(usize) + Send + Sync + 'static,
) -> Result<UploadBody, ApiError> {
    let boundary = boundary();
    let inline: u64 = files
        .iter()
        .map(Borrow::borrow)
        .filter(|f: &&UploadSource| f.read_whole())
        .map(|f| f.size + 256 + 2 * f.file_name.len() as u64)
        .sum();
    let mut pending = Vec::with_capacity(inline as usize + meta_json.len() + 512);
    let mut segments = Vec::new();
    let mut length = 0u64;
    let mut content = 0u64;
    for src in files.iter().map(Borrow::borrow) {
        file_head(&mut pending, &boundary, src);
        if src.read_whole() {
            read_into(&mut pending, src)?;
            content += src.size;
        } else {
            let file = open(src)?;
            check_unchanged(&file, src)?;
            length += pending.len() as u64 + src.size;
            let block = Bytes::from(std::mem::take(&mut pending));
            segments.push(Segment::Bytes(block, std::mem::take(&mut content)));
            segments.push(Segment::File(file, src.size));
        }
        pending.extend_from_slice(b"\r\n");
    }
    text_part(&mut pending, &boundary, "VolumeID", &volume.to_string());
    text_part(&mut pending, &boundary, "meta", meta_json);
    if let Some(d) = dedup_json {
        text_part(&mut pending, &boundary, "dedup", d);
    }
    pending.extend_from_slice(b"--");
    pending.extend_from_slice(boundary.as_bytes());
    pending.extend_from_slice(b"--\r\n");
    length += pending.len() as u64;
    let content_type = format!("multipart/form-data; boundary={boundary}");
    if segments.is_empty() && pace.is_none() {
        return Ok(UploadBody {
            content_type,
            length,
            body: Body::from(pending),
            sent_on_answer: content,
        });
    }
    segments.push(Segment::Bytes(Bytes::from(pending), content));
    let chunk = if pace.is_some() { PACED_CHUNK } else { CHUNK };
    let on_chunk = Arc::new(on_chunk);
    let alive = on_chunk.clone();
    let stream = futures::stream::iter(segments)
        .flat_map(move |s| segment_stream(s, chunk))
        .then(move |chunk| {
            let wait = match (&pace, &chunk) {
                (Some(p), Ok((b, _))) => p.delay(b.len() as u64),
                _ => Duration::ZERO,
            };
            let alive = alive.clone();
            async move {
                // Held back by our own cap is not stalled: the wait is told, in slices, as
                // progress of no bytes, so the upload's watchdog does not abort it.
                let mut left = wait;
                while !left.is_zero() {
                    let slice = left.min(PACE_HEARTBEAT);
                    tokio::time::sleep(slice).await;
                    left -= slice;
                    alive(0);
                }
                chunk
            }
        })
        .map(move |chunk| {
            chunk.map(|(b, counted)| {
                on_chunk(counted as usize);
                b
            })
        });
    Ok(UploadBody {
        content_type,
        length,
        body: Body::wrap_stream(stream),
        sent_on_answer: 0,
    })
}

/// Modification time of `meta` in nanoseconds since the epoch (0 when unknown): how a file
/// is known to have changed while it was sent.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_filename_keeps_utf8_and_escapes_quotes() {
        let written = |name: &str| {
            let mut out = Vec::new();
            push_part_filename(&mut out, name);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written("a/红楼梦.pdf"), "a/红楼梦.pdf");
        assert_eq!(written("say \"hi\".txt"), "say %22hi%22.txt");
        assert_eq!(written("tab\there"), "tab%20here");
    }

    #[test]
    fn a_mime_type_that_would_break_the_header_is_replaced() {
        assert_eq!(header_mime("text/plain"), "text/plain");
        assert_eq!(
            header_mime("text/plain\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(header_mime(""), "application/octet-stream");
    }

    #[test]
    fn boundaries_differ_from_request_to_request() {
        assert_ne!(boundary(), boundary());
    }
}
