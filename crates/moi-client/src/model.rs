//! The wire format: the JSON envelope and the typed bodies of the calls moi-ingest makes.
//!
//! Answers are parsed leniently (unknown fields ignored, missing ones defaulted) because the
//! vendor's documents disagree on which fields appear; requests are written exactly as the
//! reference shows them. The emulator uses these same types, so the two sides cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id::{self, Id, VolumeId};
use super::lenient::{self, Code, Stamp};

/// `{"code": "OK", "msg": "OK", "data": ..., "request_id": ...}`; `code` other than OK (any
/// case) is an error. `request_id` is the live service's addition: support asks for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(default, deserialize_with = "lenient::text")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub msg: String,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(
        default,
        deserialize_with = "lenient::text",
        skip_serializing_if = "String::is_empty"
    )]
    pub request_id: String,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope {
            code: "OK".into(),
            msg: "OK".into(),
            data: Some(data),
            request_id: String::new(),
        }
    }
    pub fn is_ok(&self) -> bool {
        self.code.eq_ignore_ascii_case("ok")
    }
}

/// One object of the upload's `meta` array, in the same order as the `file` parts.
///
/// Two vocabularies describe the same file: the 2025 documents' `file_name`, `file_size`
/// and `mime_type`, and the live service's `filename` (base name) and `path` (where the
/// file goes in the volume). moi-ingest sends all five, so either reader finds what it
/// needs; the emulator accepts any subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl UploadMeta {
    /// Where the file goes in the volume (the live service takes the stored name from
    /// meta, not from the part): `path`, read as a folder when it ends with `/` (the Go
    /// SDK's examples send `"path": "/"` with the name in `filename`); else `file_name`;
    /// else `filename`.
    pub fn volume_path(&self) -> Option<String> {
        let name = self
            .file_name
            .as_deref()
            .or(self.filename.as_deref())
            .filter(|n| !n.is_empty());
        match self.path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p.ends_with('/') => {
                let folder = p.trim_matches('/');
                let base = self.filename.as_deref().or(name)?;
                Some(if folder.is_empty() {
                    base.to_string()
                } else {
                    format!("{folder}/{base}")
                })
            }
            Some(p) => Some(p.trim_start_matches('/').to_string()),
            None => name.map(str::to_string),
        }
    }
}

/// The live service's `dedup` part: which files count as the same, and what to do then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    pub by: Vec<String>,
    pub strategy: String,
}

impl Dedup {
    pub fn by_name(strategy: &str) -> Dedup {
        Dedup {
            by: vec!["name".into()],
            strategy: strategy.into(),
        }
    }
}

pub fn default_mime() -> String {
    "application/octet-stream".to_string()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadAnswer {
    #[serde(default)]
    pub success: bool,
    #[serde(default, with = "id::optional_serde")]
    pub file_id: Option<Id>,
    #[serde(default, with = "id::optional_serde")]
    pub task_id: Option<Id>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub results: Vec<UploadFileResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadFileResult {
    #[serde(default)]
    pub success: bool,
    #[serde(default, with = "id::optional_serde")]
    pub file_id: Option<Id>,
    #[serde(default)]
    pub message: String,
}

/// File ingestion states of `/task/files`.
pub mod file_status {
    use super::Code;

    pub const UNKNOWN: i64 = 0;
    pub const WAITING: i64 = 1;
    pub const UPLOADING: i64 = 2;
    pub const PAUSED: i64 = 3;
    pub const FAILED: i64 = 4;
    pub const SUCCESS: i64 = 5;
    pub const RETRYING: i64 = 6;

    /// 4 and 5 stay as they are unless a retry is asked for.
    pub fn is_final(status: i64) -> bool {
        status == FAILED || status == SUCCESS
    }

    pub fn name(status: i64) -> &'static str {
        match status {
            WAITING => "waiting",
            UPLOADING => "uploading",
            PAUSED => "paused",
            FAILED => "failed",
            SUCCESS => "success",
            RETRYING => "retrying",
            _ => "unknown",
        }
    }

    fn from_word(w: &str) -> Option<i64> {
        Some(match w {
            "waiting" | "pending" | "queued" => WAITING,
            "uploading" | "loading" | "running" | "processing" => UPLOADING,
            "paused" => PAUSED,
            "failed" | "fail" | "failure" | "error" => FAILED,
            "success" | "succeeded" | "completed" | "done" => SUCCESS,
            "retrying" => RETRYING,
            _ => return None,
        })
    }

    /// The status as a number; a word the reference does not know is `UNKNOWN` (not final).
    pub fn of(status: &Code) -> i64 {
        status.resolve(from_word).unwrap_or(UNKNOWN)
    }

    /// `4 (failed)`, or the service's own word when it sent one we do not know.
    pub fn describe(status: &Code) -> String {
        super::describe_code(status, from_word, name)
    }
}

/// Load task states.
pub mod task_status {
    use super::Code;

    pub const UNKNOWN: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSING: i64 = 2;
    pub const PAUSED: i64 = 3;
    pub const COMPLETED: i64 = 4;

    pub fn name(status: i64) -> &'static str {
        match status {
            RUNNING => "running",
            PAUSING => "pausing",
            PAUSED => "paused",
            COMPLETED => "completed",
            _ => "unknown",
        }
    }

    fn from_word(w: &str) -> Option<i64> {
        Some(match w {
            "running" | "runnable" => RUNNING,
            "pausing" => PAUSING,
            "paused" => PAUSED,
            "completed" | "success" | "done" | "finished" => COMPLETED,
            _ => return None,
        })
    }

    pub fn of(status: &Code) -> i64 {
        status.resolve(from_word).unwrap_or(UNKNOWN)
    }

    /// `4 (completed)`, or the service's own word.
    pub fn describe(status: &Code) -> String {
        super::describe_code(status, from_word, name)
    }
}

/// A status as people read it: the number with its name, or the word the service sent.
fn describe_code(
    status: &Code,
    from_word: fn(&str) -> Option<i64>,
    name: fn(i64) -> &'static str,
) -> String {
    match status.resolve(from_word) {
        Some(n) => format!("{n} ({})", name(n)),
        None => format!("'{status}' (unknown)"),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFile {
    pub id: Id,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: String,
    #[serde(default, rename = "type")]
    pub file_type: Code,
    #[serde(default)]
    pub status: Code,
    #[serde(default, deserialize_with = "lenient::number")]
    pub size: u64,
    #[serde(default)]
    pub update_time: Stamp,
    #[serde(default)]
    pub other_metadata: Value,
    #[serde(default, deserialize_with = "lenient::text")]
    pub reason: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub user: String,
    #[serde(default)]
    pub start_time: Stamp,
    #[serde(default)]
    pub end_time: Stamp,
    #[serde(default, deserialize_with = "lenient::text")]
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilesPage {
    #[serde(default, deserialize_with = "lenient::number")]
    pub total: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_success: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_failed: u64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub files: Vec<TaskFile>,
}

/// A load task. The documents send integers; the live service sends `id`, `volume_id`,
/// `status`, the times and `source_connector_type` as strings. Both read into these types.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Task {
    pub id: Id,
    #[serde(default, with = "id::optional_serde")]
    pub source_connector_id: Option<Id>,
    #[serde(default)]
    pub source_connector_type: Code,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<VolumeId>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub volume_name: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: String,
    #[serde(default)]
    pub status: Code,
    #[serde(default, deserialize_with = "lenient::text")]
    pub creator: String,
    #[serde(default)]
    pub source_config: Value,
    #[serde(default)]
    pub start_at: Stamp,
    #[serde(default)]
    pub end_at: Stamp,
    #[serde(default)]
    pub created_at: Stamp,
    #[serde(default)]
    pub updated_at: Stamp,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskList {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tasks: Vec<Task>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total: u64,
}

/// `/task/get`'s data: `{"task": {...}}` in the documents, the task itself at the service.
#[derive(Debug, Clone, Serialize)]
pub struct TaskGet {
    pub task: Task,
}

impl<'de> Deserialize<'de> for TaskGet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let nested = v.get("id").is_none() && v.get("task").is_some_and(Value::is_object);
        if nested {
            v = v["task"].take();
        }
        serde_json::from_value(v)
            .map(|task| TaskGet { task })
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadModeConfig {
    pub load_interval_type: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
}

/// `load_interval_type` values.
pub mod load_interval {
    pub const UNKNOWN: i64 = 0;
    pub const DAILY: i64 = 1;
    pub const HOURLY: i64 = 2;
    pub const MINUTELY: i64 = 3;
    pub const ONCE: i64 = 4;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommonFileTaskConfig {
    pub load_mode_config: LoadModeConfig,
    #[serde(default)]
    pub uris: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceConfig {
    pub common_file_task_config: CommonFileTaskConfig,
}

/// `POST /task`: load files from a configured connector into a volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTask {
    #[serde(with = "id::as_number")]
    pub source_connector_id: Id,
    pub volume_id: VolumeId,
    pub source_config: SourceConfig,
    #[serde(default = "default_config_type")]
    pub config_type: i64,
}

fn default_config_type() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateTask {
    pub task_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_mode_config: Option<LoadModeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRef {
    pub task_id: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryFiles {
    pub task_id: Id,
    pub ids: Vec<Id>,
}

/// Query of `GET /task/list`; empty fields are not sent.
#[derive(Debug, Clone, Default)]
pub struct TaskListQuery {
    pub is_desc: Option<bool>,
    pub load_interval_types: Vec<i64>,
    pub order_by: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    pub status: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub account_name: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginAnswer {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub login_at: String,
}

pub use super::sources::*;

pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
