//! The wire types of connectors (sources such as OSS, S3, HDFS, MatrixOne, Dify) and of
//! export tasks (`/byoa/api/v1/export/...`). Requests are typed and checked before they
//! go; answers are read leniently, as everywhere in the api module.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id::Id;
use super::lenient::{self, Code, Stamp};

/// `source_type` numbers.
pub mod source_type {
    pub const DIFY: i64 = 1;
    pub const HDFS: i64 = 2;
    pub const MO: i64 = 3;
    pub const OSS: i64 = 4;
    pub const S3: i64 = 5;

    /// The config object's key for a source type (`oss`, `s3`...).
    pub fn key(t: i64) -> Option<&'static str> {
        Some(match t {
            DIFY => "dify",
            HDFS => "hdfs",
            MO => "mo",
            OSS => "oss",
            S3 => "s3",
            _ => return None,
        })
    }

    pub fn from_name(name: &str) -> Option<i64> {
        Some(match name.to_ascii_lowercase().as_str() {
            "dify" => DIFY,
            "hdfs" => HDFS,
            "mo" | "matrixone" => MO,
            "oss" => OSS,
            "s3" => S3,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OssConfig {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub bucket_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3Config {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub bucket_name: String,
    #[serde(default)]
    pub region: String,
    /// Path-style addressing (true) or virtual-hosted (false).
    #[serde(default)]
    pub path_style: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DifyConfig {
    pub api_key: String,
    pub api_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HdfsConfig {
    pub address: String,
    #[serde(default)]
    pub auth_type: i64,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub file_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

/// The config objects, one per source type; a body carries the one of its type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceConfigs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dify: Option<DifyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs: Option<HdfsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mo: Option<MoConfig>,
}

impl SourceConfigs {
    fn has(&self, t: i64) -> bool {
        match t {
            source_type::DIFY => self.dify.is_some(),
            source_type::HDFS => self.hdfs.is_some(),
            source_type::MO => self.mo.is_some(),
            source_type::OSS => self.oss.is_some(),
            source_type::S3 => self.s3.is_some(),
            _ => false,
        }
    }
}

/// `POST /connectors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateConnector {
    pub name: String,
    pub source_type: i64,
    #[serde(flatten)]
    pub config: SourceConfigs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_type: Option<Vec<i64>>,
}

impl CreateConnector {
    /// What the documents require: a name, a known type, and that type's config object.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("the connector needs a name".into());
        }
        let Some(key) = source_type::key(self.source_type) else {
            return Err(format!(
                "source_type {} is not one of 1 (dify), 2 (hdfs), 3 (mo), 4 (oss), 5 (s3)",
                self.source_type
            ));
        };
        if !self.config.has(self.source_type) {
            return Err(format!(
                "a connector of source_type {} needs its \"{key}\" config object",
                self.source_type
            ));
        }
        Ok(())
    }
}

/// `PUT /connectors/{id}`: only what changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateConnector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub config: SourceConfigs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_type: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Validation {
    #[serde(default)]
    pub valid: bool,
}

/// A listed connector. Its config object comes back with its secrets: never print it
/// without [`crate::secret::mask_secrets`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Connector {
    pub id: Id,
    #[serde(default)]
    pub source_type: Code,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub status: String,
    #[serde(default)]
    pub created_at: Stamp,
    #[serde(default)]
    pub updated_at: Stamp,
    #[serde(default, deserialize_with = "lenient::text")]
    pub username: String,
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub related_task_ids: Vec<Id>,
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub usage_type: Vec<Value>,
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectorList {
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub connectors: Vec<Connector>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectorFile {
    #[serde(default, deserialize_with = "lenient::text")]
    pub uri: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub filename: String,
    #[serde(default, deserialize_with = "lenient::number")]
    pub size: u64,
    #[serde(default, rename = "type")]
    pub file_type: Code,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectorFiles {
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub files: Vec<ConnectorFile>,
    /// Seed 003's cursor paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Value>,
}

/// Export `type`: where the processed files go.
pub mod export_type {
    pub const DIFY: i64 = 1;
    pub const S3: i64 = 2;
    pub const MO: i64 = 3;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DifyExport {
    pub dataset_id: String,
    #[serde(default)]
    pub dataset_name: String,
    #[serde(default)]
    pub embedding_model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3Export {
    pub path: String,
    #[serde(default)]
    pub need_compress: bool,
    #[serde(default)]
    pub compress_method: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub source_column: String,
    pub mapping_column: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoColumns {
    #[serde(default)]
    pub export_column: Vec<ColumnMapping>,
    #[serde(default)]
    pub combine_column: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoExport {
    pub database_name: String,
    pub table_name: String,
    #[serde(default)]
    pub new_table: bool,
    #[serde(default)]
    pub column: MoColumns,
    #[serde(default)]
    pub duplicated_strategy: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dify_config: Option<DifyExport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_config: Option<S3Export>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mo_config: Option<MoExport>,
    #[serde(default)]
    pub merge_title_to_text: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    #[serde(deserialize_with = "lenient::text")]
    pub file_id: String,
    #[serde(default)]
    pub full_path: Vec<String>,
    #[serde(default)]
    pub is_raw: bool,
}

/// `POST /export/task/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportCreate {
    pub task_name: String,
    #[serde(default)]
    pub creator: String,
    #[serde(with = "super::id::as_number")]
    pub connector_id: Id,
    #[serde(default)]
    pub connector_name: String,
    #[serde(rename = "type")]
    pub export_type: i64,
    pub config: ExportConfig,
    pub files: Vec<ExportFile>,
}

impl ExportCreate {
    /// A name, at least one file, and the config object of its `type`.
    pub fn check(&self) -> Result<(), String> {
        if self.task_name.trim().is_empty() {
            return Err("the export task needs a task_name".into());
        }
        if self.files.is_empty() {
            return Err("the export task lists no files".into());
        }
        let c = &self.config;
        let ok = match self.export_type {
            export_type::DIFY => c.dify_config.is_some(),
            export_type::S3 => c.s3_config.is_some(),
            export_type::MO => c.mo_config.is_some(),
            t => return Err(format!("type {t} is not 1 (dify), 2 (s3/oss) or 3 (mo)")),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "an export of type {} needs config.{}",
                self.export_type,
                ["dify_config", "s3_config", "mo_config"][(self.export_type - 1) as usize]
            ))
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_direction: Option<String>,
}

/// An export task as `/export/task/list` shows it: what moi-ingest reads, typed, and the
/// rest kept as the service sent it (times, sources, config), so `--json` passes it on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportTask {
    #[serde(default, deserialize_with = "lenient::text")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: String,
    /// 1 pending, 2 running, 3 completed, 4 failed (the emulator's reading; the documents
    /// give no numbers).
    #[serde(default)]
    pub status: Code,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportList {
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub tasks: Vec<ExportTask>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportRef {
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFilesQuery {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_direction: Option<String>,
}

/// One file of an export task, as `/export/task/files` shows it; the rest kept as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFileState {
    #[serde(default, deserialize_with = "lenient::text")]
    pub id: String,
    #[serde(default)]
    pub status: Code,
    #[serde(default, deserialize_with = "lenient::text")]
    pub file_name: String,
    /// Why it failed, or the service's word on it.
    #[serde(default, deserialize_with = "lenient::text")]
    pub details: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFiles {
    #[serde(default, deserialize_with = "super::model::null_as_empty")]
    pub files: Vec<ExportFileState>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_failure: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_files: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_success: u64,
}
