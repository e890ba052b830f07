//! The wire format: the JSON envelope and the typed bodies of the calls moi-ingest makes.
//!
//! Answers are parsed leniently (unknown fields ignored, missing ones defaulted) because the
//! vendor's documents disagree on which fields appear; requests are written exactly as the
//! reference shows them. The emulator uses these same types, so the two sides cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id::{self, Id};

/// `{"code": "OK", "msg": "OK", "data": ...}`; `code` other than OK (any case) is an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub msg: String,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope {
            code: "OK".into(),
            msg: "OK".into(),
            data: Some(data),
        }
    }
    pub fn is_ok(&self) -> bool {
        self.code.eq_ignore_ascii_case("ok")
    }
}

/// One object of the upload's `meta` array, in the same order as the `file` parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    pub file_name: String,
    pub file_size: u64,
    #[serde(default = "default_mime")]
    pub mime_type: String,
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
}

/// Load task states.
pub mod task_status {
    pub const UNKNOWN: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSING: i64 = 2;
    pub const PAUSED: i64 = 3;
    pub const COMPLETED: i64 = 4;
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFile {
    pub id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub file_type: i64,
    #[serde(default)]
    pub status: i64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub update_time: i64,
    #[serde(default)]
    pub other_metadata: Value,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilesPage {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub total_success: u64,
    #[serde(default)]
    pub total_failed: u64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub files: Vec<TaskFile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Task {
    pub id: Id,
    #[serde(default, with = "id::optional_serde")]
    pub source_connector_id: Option<Id>,
    #[serde(default)]
    pub source_connector_type: i64,
    #[serde(default, with = "id::optional_serde")]
    pub volume_id: Option<Id>,
    #[serde(default)]
    pub volume_name: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: i64,
    #[serde(default)]
    pub creator: String,
    #[serde(default)]
    pub source_config: Value,
    #[serde(default)]
    pub start_at: i64,
    #[serde(default)]
    pub end_at: i64,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskList {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskGet {
    pub task: Task,
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
    pub source_connector_id: Id,
    pub volume_id: Id,
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

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
