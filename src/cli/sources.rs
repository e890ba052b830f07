//! Raw flags of the API families beyond upload: connectors, connector load tasks, export
//! tasks and login. Each call takes friendly flags for common use, or `--body FILE` (`-` for
//! stdin) with the documented JSON body, sent as is once it checks out.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{ConnectionArgs, OutputArgs};

#[derive(Debug, Args, Clone)]
pub struct BodyArg {
    /// The documented JSON body, from a file (`-`: stdin), instead of the flags.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Secrets")]
pub struct ShowSecrets {
    /// Show connector secrets (access_key_secret, password, api_key, session_token) as
    /// the service returns them, instead of ***.
    #[arg(long, global = true)]
    pub show_secrets: bool,
}

/// A source's connection settings as flags. The secret (access key secret, API key or
/// password) is never a flag: it comes from $MOI_SOURCE_SECRET, or a prompt on a terminal.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Source")]
pub struct SourceFlags {
    /// Source type: oss, s3, hdfs, mo (MatrixOne) or dify.
    #[arg(long = "type", value_name = "TYPE")]
    pub source_type: Option<String>,
    /// OSS/S3 endpoint of the source (--endpoint is the MOI service's).
    #[arg(long, value_name = "HOST")]
    pub source_endpoint: Option<String>,
    /// OSS/S3 bucket.
    #[arg(long)]
    pub bucket: Option<String>,
    /// OSS/S3 access key id.
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub region: Option<String>,
    /// S3 path-style addressing.
    #[arg(long)]
    pub path_style: bool,
    /// Dify API URL.
    #[arg(long)]
    pub api_url: Option<String>,
    /// HDFS address (host:port).
    #[arg(long)]
    pub address: Option<String>,
    /// HDFS authentication type (1 when a connector is created without it).
    #[arg(long)]
    pub auth_type: Option<i64>,
    /// HDFS path.
    #[arg(long)]
    pub file_path: Option<String>,
    /// MatrixOne host.
    #[arg(long)]
    pub host: Option<String>,
    /// MatrixOne port.
    #[arg(long)]
    pub port: Option<u16>,
    /// HDFS or MatrixOne user (--username is the MOI login's).
    #[arg(long)]
    pub source_user: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ConnectorArgs {
    #[command(subcommand)]
    pub action: ConnectorAction,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub secrets: ShowSecrets,
    #[command(flatten)]
    pub output: OutputArgs,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand, Clone)]
pub enum ConnectorAction {
    /// Create a connector (POST /connectors).
    #[command(
        after_help = "Example:\n  MOI_SOURCE_SECRET=... moi-ingest connector create --name papers --type oss \\\n      --source-endpoint oss-cn-hangzhou.aliyuncs.com --bucket papers --access-key-id AKID"
    )]
    Create {
        /// The connector's name.
        #[arg(long)]
        name: Option<String>,
        /// Usage types (repeatable).
        #[arg(long)]
        usage_type: Vec<i64>,
        #[command(flatten)]
        body: BodyArg,
        // Last: its help heading would carry over to the options after it.
        #[command(flatten)]
        source: SourceFlags,
    },
    /// Check a connector, or settings before creating one (POST /connectors/validate).
    Validate {
        /// A connector that exists (no settings needed then).
        id: Option<String>,
        #[command(flatten)]
        body: BodyArg,
        #[command(flatten)]
        source: SourceFlags,
    },
    /// List connectors (GET /connectors/list).
    List {
        /// Only connectors whose name contains this.
        #[arg(long)]
        keyword: Option<String>,
        /// Only this source type (oss, s3, hdfs, mo, dify, or its number).
        #[arg(long = "type", value_name = "TYPE")]
        source_type: Option<String>,
        /// The page to show, from 1.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Connectors per page.
        #[arg(long, default_value_t = 10)]
        page_size: u64,
        /// Every page, not only --page.
        #[arg(long)]
        all: bool,
    },
    /// Change a connector's name or settings (PUT /connectors/{id}).
    Update {
        /// The connector's id (as `connector list` shows it).
        id: String,
        /// A new name for the connector.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        body: BodyArg,
        #[command(flatten)]
        source: SourceFlags,
    },
    /// Delete a connector (DELETE /connectors/{id}). Asks first on a terminal.
    Delete {
        /// The connector's id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// The files a connector's source holds (GET /connectors/files/list).
    Files {
        /// The connector's id.
        id: String,
        /// Only these file types (e.g. 2,10: PDF and folders).
        #[arg(long, value_delimiter = ',')]
        file_types: Vec<i64>,
    },
    /// The connectors' summary (GET /connectors/summary).
    Summary,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub action: ExportAction,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand, Clone)]
pub enum ExportAction {
    /// Export processed files to Dify, S3/OSS or MatrixOne (POST /export/task/create).
    #[command(
        after_help = "Example:\n  moi-ingest export create --name to-dify --connector 1 --type dify \\\n      --dataset-id ds_123 --file file_456=data/documents/test.pdf"
    )]
    Create {
        /// A name for the export task.
        #[arg(long)]
        name: Option<String>,
        /// The target connector's id.
        #[arg(long)]
        connector: Option<String>,
        /// The target connector's name (instead of, or beside, --connector).
        #[arg(long)]
        connector_name: Option<String>,
        /// Where to: dify, s3 (also OSS) or mo.
        #[arg(long = "type", value_name = "TYPE")]
        export_type: Option<String>,
        /// Who the task is recorded as created by.
        #[arg(long, default_value = "moi-ingest")]
        creator: String,
        /// Dify: the dataset.
        #[arg(long)]
        dataset_id: Option<String>,
        /// Dify: the dataset's name.
        #[arg(long)]
        dataset_name: Option<String>,
        /// Dify: the embedding model the dataset uses.
        #[arg(long)]
        embedding_model: Option<String>,
        /// S3/OSS: the target path.
        #[arg(long)]
        path: Option<String>,
        /// S3/OSS: compress (e.g. zip).
        #[arg(long)]
        compress: Option<String>,
        /// MatrixOne: database and table (with --new-table to create it).
        #[arg(long)]
        database: Option<String>,
        /// MatrixOne: the table.
        #[arg(long)]
        table: Option<String>,
        /// MatrixOne: create the table.
        #[arg(long)]
        new_table: bool,
        /// A file to export, as FILE_ID=path/in/volume (repeatable).
        #[arg(long = "file", value_name = "ID=PATH")]
        files: Vec<String>,
        #[command(flatten)]
        body: BodyArg,
    },
    /// List export tasks (POST /export/task/list).
    List {
        /// Only tasks in this state (repeatable): 1 pending, 2 running, 3 completed,
        /// 4 failed (the documents name the states, not their numbers; these are the
        /// emulator's, and the service's own numbers are passed through as given).
        #[arg(long, value_name = "N")]
        status: Vec<i64>,
        /// Only tasks created by this user.
        #[arg(long, value_name = "USER")]
        creator: Option<String>,
        /// Only tasks that export through the connector of this name.
        #[arg(long, value_name = "NAME")]
        connector_name: Option<String>,
        /// Tasks to pass over first (paging).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Tasks per page.
        #[arg(long, default_value_t = 10)]
        limit: u64,
        /// Every page.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        body: BodyArg,
    },
    /// One export task with its file counts (POST /export/task/info).
    Info {
        /// The export task's id.
        id: String,
    },
    /// An export task's files and their states (POST /export/task/files).
    Files {
        /// The export task's id.
        id: String,
        /// Only files in this state (repeatable): 1 pending, 2 running, 3 completed,
        /// 4 failed (the emulator's numbers; see `export list --status`).
        #[arg(long, value_name = "N")]
        status: Vec<i64>,
        /// Files to pass over first (paging).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Files per page.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Every page.
        #[arg(long)]
        all: bool,
    },
    /// Export an export task's failed files again (POST /export/task/{id}/rerun).
    Rerun {
        /// The export task's id.
        id: String,
    },
    /// Delete an export task (POST /export/task/delete). Asks first on a terminal.
    Delete {
        /// The export task's id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub action: TaskAction,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand, Clone)]
pub enum TaskAction {
    /// List load tasks (GET /task/list).
    List {
        /// Only tasks in these states (1 running, 2 pausing, 3 paused, 4 completed).
        #[arg(long)]
        status: Vec<i64>,
        /// The page to show, from 1.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Tasks per page.
        #[arg(long, default_value_t = 20)]
        page_size: u64,
        /// Sort by end_at, created_at or updated_at.
        #[arg(long)]
        order_by: Option<String>,
        /// Newest first.
        #[arg(long)]
        desc: bool,
    },
    /// Show one task (GET /task/get).
    Get {
        /// The task's id.
        task_id: String,
    },
    /// List a task's files and their ingestion state (GET /task/files).
    Files {
        /// The task's id (as `task list` shows it).
        task_id: String,
        /// Only files in these states (1 waiting, 2 uploading, 3 paused, 4 failed, 5 success, 6 retrying).
        #[arg(long)]
        status: Vec<i64>,
        /// The page to show, from 1.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Files per page.
        #[arg(long, default_value_t = 100)]
        page_size: u64,
    },
    /// Load failed files of a task again (POST /task/retry).
    Retry {
        /// The task's id (as `task list` shows it).
        task_id: String,
        /// The file ids to retry.
        #[arg(required = true)]
        file_ids: Vec<String>,
    },
    /// Pause a task (POST /task/pause).
    Pause {
        /// The task's id.
        task_id: String,
    },
    /// Resume a paused task (POST /task/resume).
    Resume {
        /// The task's id.
        task_id: String,
    },
    /// Load files from a connector into a volume (POST /task).
    #[command(
        after_help = "Example:\n  moi-ingest task create --connector 100004 --volume 1889578498228068352 \\\n      --uri reports/2024.pdf --uri notes.md --interval-type daily"
    )]
    Create {
        /// The connector whose source holds the files (as `connector list` shows it).
        #[arg(long)]
        connector: Option<String>,
        /// The volume the files are loaded into.
        #[arg(long)]
        volume: Option<String>,
        /// A file or folder of the source to load (repeatable).
        #[arg(long = "uri")]
        uris: Vec<String>,
        /// once, daily, hourly or minutely.
        #[arg(long, default_value = "once")]
        interval_type: String,
        /// How many of --interval-type's units between loads (with daily, hourly or
        /// minutely).
        #[arg(long)]
        interval: Option<i64>,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Change a load task's schedule or files (POST /task/update).
    Update {
        /// The task's id (as `task list` shows it).
        task_id: String,
        /// The files or folders of the source the task loads, replacing its list
        /// (repeatable).
        #[arg(long = "uri")]
        uris: Vec<String>,
        /// once, daily, hourly or minutely.
        #[arg(long)]
        interval_type: Option<String>,
        /// How many of --interval-type's units between loads.
        #[arg(long)]
        interval: Option<i64>,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Delete a task (POST /task/delete). Asks first on a terminal.
    Delete {
        /// The task's id (as `task list` shows it).
        task_id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}
