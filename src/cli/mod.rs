//! Raw command-line flags (clap). [`crate::config`] turns them into checked settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::pipeline::DedupMode;

mod sources;
pub use sources::*;

const AFTER_HELP: &str = "\
Environment:
  MOI_KEY        API key (preferred over --api-key, which other users can see in `ps`)
  MOI_ENDPOINT   service URL, e.g. https://freetier-01.cn-hangzhou.cluster.matrixonecloud.cn
  MOI_ACCOUNT, MOI_USERNAME, MOI_PASSWORD   session login instead of an API key

Exit codes:
  0 all uploaded (and ingested)   1 some files failed      2 usage or configuration error
  3 credential refused            4 journal held by another run
  5 ingestion still pending at --wait-timeout   6 stopped at --max-duration
  7 service unreachable (files left pending)    130 interrupted

Start here: `moi-ingest demo` runs the whole pipeline against a built-in MOI emulator.";

/// Bulk upload and ingestion worker for MatrixOne Intelligence (MOI).
///
/// Walks a folder, uploads every new or changed file to a MOI volume, records each step in
/// a SQLite journal so an interrupted run resumes where it stopped, then follows each
/// file's ingestion and retries failed loads.
#[derive(Debug, Parser)]
#[command(
    name = "moi-ingest",
    version,
    long_version = env!("MOI_INGEST_LONG_VERSION"),
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How a command reports: the options every command that reports takes.
#[derive(Debug, Args, Clone, Copy, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Print one JSON object (the run's summary, or the answer's data) as the last line of
    /// stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress and no summary; what failed is still said on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More detail in the log (-v: each file, -vv: everything).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Cli {
    /// The output options of the command given (the emulator and the generators have none).
    pub fn output(&self) -> OutputArgs {
        match &self.command {
            Command::Upload(a) => a.output,
            Command::Status(a) => a.output,
            Command::Retry(a) => a.output,
            Command::Verify(a) => a.output,
            #[cfg(feature = "emulator")]
            Command::Demo(a) => a.output,
            Command::Ls(a) => a.output,
            Command::Journals(a) => a.output,
            Command::Task(a) => a.output,
            Command::Connector(a) => a.output,
            Command::Export(a) => a.output,
            Command::Login(a) => a.output,
            #[cfg(feature = "emulator")]
            Command::Emulator(_) => OutputArgs::default(),
            #[cfg(not(feature = "emulator"))]
            Command::Emulator(_) | Command::Demo(_) => OutputArgs::default(),
            Command::Completions(_) | Command::Man(_) => OutputArgs::default(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a folder to a volume, then follow ingestion (the nightly job).
    #[command(
        after_help = "Example:\n  MOI_KEY=... moi-ingest upload ./papers --volume 1889578498228068352 \\\n      --endpoint https://freetier-01.cn-hangzhou.cluster.matrixonecloud.cn"
    )]
    Upload(Box<UploadArgs>),
    /// Show what a journal holds: counts by state, failures, recent runs.
    Status(StatusArgs),
    /// Re-drive failed files now, without walking the folder.
    Retry(RetryArgs),
    /// Check that the service lists every file the journal says it confirmed (exit 1 on
    /// any difference), as `rclone check` does.
    #[command(
        after_help = "Example:\n  moi-ingest verify ./papers --volume 1889578498228068352\n\nEach difference is one line: missing (the service does not list it), mismatched\n(size, name or a failed load), or extra (listed, unknown to the journal)."
    )]
    Verify(VerifyArgs),
    /// List what a volume holds: size, creation time, id and path, folders ending in `/`
    /// (like `rclone lsf`); -R for everything below.
    #[command(
        after_help = "Examples:\n  moi-ingest ls --volume 1889578498228068352\n  moi-ingest ls --volume 1889578498228068352 -R papers/2026 --json"
    )]
    Ls(LsArgs),
    /// List the journals in the state folder (folder, volume, endpoint, last run, size),
    /// or forget the ones no longer wanted.
    #[command(
        after_help = "Examples:\n  moi-ingest journals\n  moi-ingest journals forget --older-than 30d\n  moi-ingest journals forget ~/.local/state/moi-ingest/journals/papers-1a2b3c.sqlite"
    )]
    Journals(JournalsArgs),
    /// Run the real pipeline against a built-in emulator (no MOI account needed).
    #[cfg(feature = "emulator")]
    Demo(DemoArgs),
    /// Run a local MOI-compatible server for trying and testing.
    #[cfg(feature = "emulator")]
    Emulator(EmulatorArgs),
    /// A build without the emulator still knows the command, to say so.
    #[cfg(not(feature = "emulator"))]
    #[command(hide = true)]
    Demo(NotBuiltIn),
    #[cfg(not(feature = "emulator"))]
    #[command(hide = true)]
    Emulator(NotBuiltIn),
    /// Look at and steer the service's load tasks (list, get, files, retry, pause, ...).
    Task(TaskArgs),
    /// Connectors to OSS, S3, HDFS, MatrixOne and Dify sources (create, list, files, ...).
    Connector(ConnectorArgs),
    /// Export tasks: processed files to Dify, S3/OSS or MatrixOne.
    Export(ExportArgs),
    /// Check a session login (MOI_ACCOUNT, MOI_USERNAME, MOI_PASSWORD) and when it expires.
    Login(LoginArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Install, e.g.:\n  moi-ingest completions bash > ~/.local/share/bash-completion/completions/moi-ingest\n  moi-ingest completions zsh > \"${fpath[1]}/_moi-ingest\"\n  moi-ingest completions fish > ~/.config/fish/completions/moi-ingest.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or with --dir write one page per command.
    #[command(
        after_help = "Install, e.g.:\n  moi-ingest man --dir ~/.local/share/man/man1\n  man moi-ingest-upload"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write moi-ingest.1 and a page for every command (moi-ingest-upload.1, ...) into this
    /// folder, instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct JournalsArgs {
    #[command(subcommand)]
    pub action: Option<JournalsAction>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand, Clone)]
pub enum JournalsAction {
    /// Remove journals (and their lock and WAL files). A journal a run holds is never
    /// removed. What it recorded is gone: the next upload of that folder starts afresh
    /// (see --adopt for a volume that already holds it).
    Forget {
        /// Journals to remove, by path (as `moi-ingest journals` lists them).
        paths: Vec<PathBuf>,
        /// Remove every journal in the state folder whose last run started longer ago than
        /// this (e.g. 30d), or that never ran.
        #[arg(long, value_parser = parse_duration, value_name = "D")]
        older_than: Option<Duration>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct LsArgs {
    /// A folder in the volume (`a/b`); the volume's root when left out.
    #[arg(default_value = "")]
    pub path: String,
    /// The volume id.
    #[arg(long, env = "MOI_VOLUME")]
    pub volume: String,
    /// Everything below the folder, not only what it holds directly.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Connection and credentials")]
pub struct ConnectionArgs {
    /// MOI service URL.
    #[arg(long, env = "MOI_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// API key. Visible to other users in `ps`: prefer the MOI_KEY variable.
    #[arg(long, env = "MOI_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Session login instead of an API key: the account (workspace) id.
    #[arg(long, env = "MOI_ACCOUNT", global = true)]
    pub account: Option<String>,
    /// Session login: the user name.
    #[arg(long, env = "MOI_USERNAME", global = true)]
    pub username: Option<String>,
    /// Session login: the password (environment only, never a flag).
    #[arg(skip)]
    pub password: Option<String>,
    /// Allow a plain http:// endpoint that is not on this machine (traffic and key unencrypted).
    #[arg(long, global = true)]
    pub allow_http: bool,
    /// Give up connecting after this long (e.g. 10s).
    #[arg(long, value_parser = parse_duration, default_value = "10s", global = true)]
    pub connect_timeout: Duration,
    /// Abort a request when nothing moves for this long (stalled upload or silent server).
    #[arg(long, value_parser = parse_duration, default_value = "60s", global = true)]
    pub idle_timeout: Duration,
    /// Also trust the certificates in this PEM file, beside the built-in roots: a company
    /// proxy that inspects TLS, or a private CA in front of the service.
    #[arg(long, env = "MOI_CA_CERT", value_name = "PEM", global = true)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct JournalArgs {
    /// Journal file. Default: one per (endpoint, volume, folder) under
    /// $XDG_STATE_HOME/moi-ingest (~/.local/state/moi-ingest), so the same cron line always
    /// resumes the same journal.
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Retries and follow-through")]
pub struct FollowArgs {
    /// Retries asked through /task/retry per file before its ingestion failure is final.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,
    /// Longest time to wait for ingestion; files still loading then stay in the journal
    /// for the next run (exit 5).
    #[arg(long, value_parser = parse_duration, default_value = "2h")]
    pub wait_timeout: Duration,
    /// First pause between polls of /task/files; it grows while nothing changes.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub poll_interval: Duration,
    /// Longest pause between polls.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub max_poll_interval: Duration,
}

#[derive(Debug, Args, Clone)]
pub struct UploadArgs {
    /// The folder to upload.
    pub dir: PathBuf,
    /// Target volume id.
    #[arg(long, env = "MOI_VOLUME")]
    pub volume: String,
    /// List what would be uploaded, and why; send nothing, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also compare content (SHA-256), not only size and modification time. Reads every
    /// file. Files confirmed before --checksum was first used get their hash recorded
    /// without being sent again, when size and modification time still match.
    #[arg(help_heading = "What to send", long)]
    pub checksum: bool,
    /// Upload only the files this list names, one path below DIR per line (`-`: standard
    /// input), instead of walking DIR (rclone's --files-from).
    #[arg(help_heading = "What to send", long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,
    /// Only files matching this glob (repeatable; `*.pdf` matches at any depth, `a/**` by path).
    #[arg(help_heading = "What to send", long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out files and folders matching this glob (repeatable).
    #[arg(help_heading = "What to send", long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Only files with these extensions (repeatable or comma-separated: --ext pdf,docx).
    #[arg(
        help_heading = "What to send",
        long,
        value_name = "EXT",
        value_delimiter = ','
    )]
    pub ext: Vec<String>,
    /// Skip files larger than this (e.g. 500M, 2G).
    #[arg(help_heading = "What to send", long, value_parser = parse_size, value_name = "SIZE")]
    pub max_file_size: Option<u64>,
    /// Include hidden files and folders (names starting with '.').
    #[arg(help_heading = "What to send", long)]
    pub hidden: bool,
    /// Follow symbolic links (loops are detected and skipped).
    #[arg(help_heading = "What to send", long)]
    pub follow_symlinks: bool,
    /// Send only the file's base name instead of its path below DIR (names may collide).
    #[arg(help_heading = "What to send", long)]
    pub base_names: bool,
    /// A folder in the volume that every file goes under (e.g. nightly/papers).
    #[arg(help_heading = "What to send", long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Uploads in flight at once: a number, or auto to adapt to the service (back off on
    /// 429/503/timeouts, grow while answers stay fast; up to --max-concurrency).
    #[arg(
        help_heading = "How to send",
        long,
        default_value = "8",
        value_name = "N|auto"
    )]
    pub concurrency: String,
    /// Folders listed and files looked at in parallel while walking (rclone's
    /// --checkers): on a network share each is a round trip. The walk starts on one
    /// thread and uses all N once the file system answers slowly; 1 keeps it on one, in
    /// name order.
    #[arg(
        help_heading = "How to send",
        long,
        default_value_t = 16,
        value_name = "N"
    )]
    pub checkers: usize,
    /// The ceiling of --concurrency auto.
    #[arg(help_heading = "How to send", long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// What the upload's dedup part asks: auto replaces a file's earlier version at the
    /// same path and never risks another file; replace/skip send that strategy on every
    /// request; off sends no dedup part (for a service that refuses it).
    #[arg(help_heading = "How to send", long, value_enum, default_value = "auto")]
    pub dedup: DedupMode,
    /// dedup.by for --dedup replace|skip: name (the path in the volume), md5, or both.
    #[arg(
        help_heading = "How to send",
        long,
        value_name = "BY",
        value_delimiter = ',',
        default_value = "name"
    )]
    pub dedup_by: Vec<String>,
    /// Files per upload request; small files travel together, each journaled on its own
    /// (1: one file per request).
    #[arg(help_heading = "How to send", long, default_value_t = crate::pipeline::DEFAULT_BATCH_FILES)]
    pub batch_files: usize,
    /// Largest total size of a multi-file request; a larger file goes alone.
    #[arg(help_heading = "How to send", long, value_parser = parse_size, default_value = "4M")]
    pub batch_bytes: u64,
    /// Cap the upload bandwidth of the whole run: 2M = 2 MiB/s (binary units as rclone; a
    /// bare number is KiB/s), off, or a timetable "08:00,512K 19:00,off" (local time).
    #[arg(help_heading = "How to send", long, value_name = "RATE")]
    pub bwlimit: Option<String>,
    /// At most N upload requests start per second, across all workers.
    #[arg(help_heading = "How to send", long, value_name = "N")]
    pub tps_limit: Option<f64>,
    /// Take only the files whose path hashes to shard K of N (0-based; consistent hashing,
    /// so changing N moves about 1/N of the files). K may be "env" for
    /// $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). Each shard has its own journal.
    #[arg(
        help_heading = "The nightly window and the fleet",
        long,
        value_name = "K/N"
    )]
    pub shard: Option<String>,
    /// Write Prometheus metrics for node_exporter's textfile collector to this file, at the
    /// end of the run and every 30 s during it (atomically).
    #[arg(
        help_heading = "The nightly window and the fleet",
        long,
        value_name = "PATH"
    )]
    pub metrics_file: Option<PathBuf>,
    /// Push the same metrics to a Prometheus Pushgateway at this address (e.g.
    /// http://pushgateway:9091), at the end of the run and every 30 s during it, grouped by
    /// job="moi-ingest", volume and shard. A gateway that is down is a warning, never a
    /// failed night.
    #[arg(
        help_heading = "The nightly window and the fleet",
        long,
        env = "MOI_METRICS_PUSH",
        value_name = "URL"
    )]
    pub metrics_push: Option<String>,
    /// Exit 0 instead of these codes (e.g. 5,6), for schedulers that know no other success,
    /// as systemd's SuccessExitStatus= does: a Kubernetes Job reruns a pod that exits 6. The
    /// summary, the journal and the metrics keep the real code.
    #[arg(
        help_heading = "The nightly window and the fleet",
        long,
        env = "MOI_SUCCESS_EXIT_STATUS",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u8).range(1..),
        value_name = "CODES"
    )]
    pub success_exit_status: Vec<u8>,
    /// The cut-off: after this long (e.g. 45m) no new upload starts, those in flight drain
    /// (--drain-timeout), and the run exits 6; the next run continues. Following ingestion
    /// has its own --wait-timeout.
    #[arg(help_heading = "The nightly window and the fleet", long, value_parser = parse_duration, value_name = "D")]
    pub max_duration: Option<Duration>,
    /// After Ctrl-C (or the cut-off), how long uploads in flight may take to finish.
    #[arg(help_heading = "The nightly window and the fleet", long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
    /// Upload only; the next run or `status --follow` follows ingestion.
    #[arg(help_heading = "Retries and follow-through", long)]
    pub no_wait: bool,
    /// Attempts per file on transient failures (timeouts, 429, 5xx), the first included.
    #[arg(help_heading = "Retries and follow-through", long, default_value_t = 5)]
    pub attempts: u32,
    /// Passes over the files that failed only transiently, the first included: a file that
    /// used up its --attempts waits, and is sent again after the rest (rclone's --retries).
    #[arg(help_heading = "Retries and follow-through", long, default_value_t = 3)]
    pub retries: u32,
    /// A service that answered, then answers nothing (refused, reset, timed out) for this
    /// long, stops the run with exit 7 and every file not confirmed pending. Until then
    /// the files wait for it without spending their --attempts.
    #[arg(help_heading = "Retries and follow-through", long, value_parser = parse_duration, default_value = "10m", value_name = "D")]
    pub unreachable_timeout: Duration,
    /// Transient-failure retries the whole run may spend.
    #[arg(
        help_heading = "Retries and follow-through",
        long,
        default_value_t = 10_000
    )]
    pub retry_budget: u64,
    /// First backoff delay after a transient failure (grows exponentially, full jitter).
    #[arg(help_heading = "Retries and follow-through", long, value_parser = parse_duration, default_value = "500ms")]
    pub retry_delay: Duration,
    /// Mirror the folder: once the night's uploads are confirmed, delete from the volume
    /// the files this journal put there whose source is gone, and rename in the volume the
    /// files and folders renamed here (rsync's and aws s3 sync's flag). Never touches a
    /// file moi-ingest did not upload. Try it first with --dry-run.
    #[arg(long, help_heading = "Mirroring")]
    pub delete: bool,
    /// The most one night may delete: a count (100), a percentage of the files the volume
    /// holds for this folder (10%), or off. Over it, nothing is deleted and the run exits
    /// 8; an emptied folder (an unmounted share) is always refused.
    #[arg(
        long,
        value_name = "N|P%|off",
        default_value = "25%",
        help_heading = "Mirroring"
    )]
    pub max_delete: crate::mirror::decide::MaxDelete,
    /// For a folder the volume already holds (uploaded by the vendor's SDK or a script):
    /// a file new to the journal that the volume lists at its path with its size is
    /// recorded as there, not sent again.
    #[arg(long, help_heading = "Mirroring")]
    pub adopt: bool,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    pub follow: FollowArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct JournalSelect {
    #[command(flatten)]
    pub journal: JournalArgs,
    /// The uploaded folder, to find its default journal. Whatever is left out of (DIR,
    /// --volume, endpoint) is looked up among the journals under
    /// ~/.local/state/moi-ingest/journals: with none given, the only journal there is.
    pub dir: Option<PathBuf>,
    /// The volume, to find the default journal.
    #[arg(long, env = "MOI_VOLUME")]
    pub volume: Option<String>,
    /// The shard (with DIR and --volume), to find that shard's default journal.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: JournalSelect,
    /// Follow ingestion of the files still loading, as a run would (needs credentials).
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub follow_args: FollowArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub select: JournalSelect,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RetryArgs {
    #[command(flatten)]
    pub select: JournalSelect,
    /// Ask for the retries and stop, without following ingestion.
    #[arg(long)]
    pub no_wait: bool,
    /// Also send again the files the service refused for good (otherwise they wait until
    /// they change): after a limit was raised, or a name the service now takes.
    #[arg(long)]
    pub refused: bool,
    #[command(flatten)]
    pub follow_args: FollowArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Whatever follows a command this build leaves out.
#[cfg(not(feature = "emulator"))]
#[derive(Debug, Args, Clone)]
pub struct NotBuiltIn {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[cfg(feature = "emulator")]
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// A folder to upload; default: a generated sample with nested folders, non-ASCII
    /// names, empty files and equal names in different folders.
    pub dir: Option<PathBuf>,
    /// Keep the emulator's data folder and print where it is.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[cfg(feature = "emulator")]
#[derive(Debug, Args, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: String,
    /// Folder for the emulator's database and uploaded files (kept across restarts).
    #[arg(long)]
    pub data: PathBuf,
    /// Require this API key (default: MOI_KEY if set, otherwise any request is accepted).
    #[arg(long, env = "MOI_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Volumes that exist, as ID or ID:NAME (repeatable; ids are opaque text; default
    /// 1889578498228068352).
    #[arg(long)]
    pub volume: Vec<String>,
    /// A session login the emulator accepts, as ACCOUNT:USER:PASSWORD (repeatable), for
    /// `moi-ingest login` and MOI_ACCOUNT/MOI_USERNAME/MOI_PASSWORD clients (visible in `ps`:
    /// the emulator is for trials and tests).
    #[arg(long = "login", value_name = "ACCOUNT:USER:PASSWORD")]
    pub logins: Vec<String>,
    /// Answer as the live service does (sdk: what the vendor's SDKs expect) or as the 2025
    /// documents show (seed). Requests in either shape are accepted in both.
    #[arg(long, default_value = "sdk")]
    pub dialect: crate::emulator::Dialect,
    /// How long an uploaded file takes to be ingested.
    #[arg(long, value_parser = parse_duration, default_value = "300ms")]
    pub ingest_time: Duration,
    /// Share of ingestions that fail (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub ingest_failure_rate: f64,
    /// Share of requests answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub fail_503: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub fail_429: f64,
    /// Share of uploads whose connection is dropped mid-body.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of uploads stored, whose answer is then lost (the connection closes): what
    /// an outage leaves behind.
    #[arg(long, default_value_t = 0.0)]
    pub lost_answer_rate: f64,
    /// Share of uploads stored, then answered with a garbled HTTP 200 (empty, truncated,
    /// HTML, or no data), as a broken proxy does.
    #[arg(long, default_value_t = 0.0)]
    pub garbled_rate: f64,
    /// Share of requests answered HTTP 200 with an error code.
    #[arg(long, default_value_t = 0.0)]
    pub error_code_rate: f64,
    /// Added latency per request.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub latency: Duration,
    /// Largest accepted upload body (413 above it).
    #[arg(long, value_parser = parse_size)]
    pub max_body: Option<u64>,
    /// Refuse uploads beyond this many at once with 429 (a service at its limit).
    #[arg(long)]
    pub max_in_flight: Option<u64>,
    /// Seed for the fault draws (same seed, same faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `500ms`, `30s`, `5m`, `2h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; write e.g. 500ms, 30s, 5m, 2h or 30d"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("'{s}' has an unknown unit; use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `4096`, `512K`, `100M`, `2G` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size; write e.g. 4096, 512K, 100M or 2G"))?;
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// `--help` teaches: every argument and flag of every command says what it is.
    #[test]
    fn every_argument_is_described() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "moi-ingest", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description: {missing:#?}"
        );
    }
}
