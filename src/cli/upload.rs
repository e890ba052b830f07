//! The flags of `upload`, the nightly command: what to send, how, within which window,
//! and (with `--delete`) how the volume follows the folder.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::*;
use crate::pipeline::DedupMode;

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
