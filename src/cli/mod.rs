//! Raw command-line flags (clap). [`crate::config`] turns them into checked settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod sources;
mod upload;
pub use sources::*;
pub use upload::UploadArgs;

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
