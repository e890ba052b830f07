//! The commands: each resolves its settings, runs the library, prints, and returns the
//! exit code. `main` only parses arguments and exits with what comes back.

mod demo;
mod emulator;
mod status;
mod task;
mod upload;
mod verify;

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::api::Client;
use crate::cli::{Cli, Command};
use crate::config::{ConfigError, Connection};
use crate::journal::{Identity, Journal, JournalLock, LockError};
use crate::pipeline::{Cancel, RunOutcome};
use crate::report::{Exit, RunStats, Summary};

pub use upload::run_upload;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

pub async fn run(cli: Cli) -> i32 {
    let cancel = Cancel::new();
    // Registered before anything starts: a signal that came before its handler would be
    // lost (scripts start background jobs with SIGINT ignored) or would kill the run.
    let signals = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => Some(tokio::spawn(watch_signals(int, term, cancel.clone()))),
        _ => None,
    };
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    let code = match cli.command {
        Command::Upload(args) => upload::upload(&args, out, cancel).await,
        Command::Status(args) => status::status(&args, out, cancel).await,
        Command::Retry(args) => status::retry(&args, out, cancel).await,
        Command::Verify(args) => verify::verify(&args, out).await,
        Command::Demo(args) => demo::demo(&args, out, cancel).await,
        Command::Emulator(args) => emulator::emulator(&args, out, cancel).await,
        Command::Task(args) => task::task(&args, out).await,
    };
    if let Some(s) = signals {
        s.abort();
    }
    code
}

/// First SIGINT/SIGTERM: start nothing new, let in-flight uploads finish. Second: stop now.
async fn watch_signals(mut int: Signal, mut term: Signal, cancel: Cancel) {
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        seen += 1;
        if seen == 1 {
            eprintln!(
                "moi-ingest: stopping: no new uploads; waiting for those in flight \
                 (press Ctrl-C again to stop at once)"
            );
            cancel.soft.cancel();
        } else {
            eprintln!("moi-ingest: stopping at once");
            cancel.hard.cancel();
        }
    }
}

pub(crate) fn complain(exit: Exit, msg: impl std::fmt::Display) -> i32 {
    eprintln!("moi-ingest: error: {msg}");
    exit.code()
}

pub(crate) fn usage(e: ConfigError) -> i32 {
    complain(Exit::Usage, e)
}

/// Takes the journal's lock, then opens it: exit 4 when another run holds it.
pub(crate) fn open_locked(
    path: &Path,
    identity: Option<&Identity>,
) -> Result<(JournalLock, Journal), i32> {
    let lock = JournalLock::acquire(path).map_err(|e| match e {
        LockError::Held { .. } => complain(Exit::Locked, e),
        LockError::Io { .. } => complain(Exit::Usage, e),
    })?;
    let journal = Journal::open(path, identity).map_err(|e| complain(Exit::Usage, e))?;
    Ok((lock, journal))
}

/// A client for a journal's work: the endpoint defaults to the one the journal recorded.
pub(crate) fn client_for_journal(
    args: &crate::cli::ConnectionArgs,
    identity: Option<&Identity>,
) -> Result<Arc<Client>, i32> {
    let conn = crate::config::connection_with_default(args, identity.map(|i| i.endpoint.as_str()))
        .map_err(usage)?;
    client(&conn)
}

pub(crate) fn client(conn: &Connection) -> Result<Arc<Client>, i32> {
    Client::new(
        &conn.endpoint,
        conn.credentials.clone(),
        conn.options.clone(),
    )
    .map(Arc::new)
    .map_err(|e| complain(Exit::Usage, e))
}

/// Records the run in the journal and prints its summary (human on stderr, JSON on stdout).
pub(crate) async fn finish(
    command: &str,
    stats: &RunStats,
    outcome: RunOutcome,
    journal: &Journal,
    run_id: Option<i64>,
    out: Output,
) -> i32 {
    let summary = Summary::build(
        command,
        stats,
        outcome.exit,
        outcome.stopped,
        &journal.path().display().to_string(),
    );
    let json = serde_json::to_value(&summary).unwrap_or_default();
    if let Some(run_id) = run_id
        && let Err(e) = journal
            .finish_run(run_id, outcome.exit.code(), json.clone())
            .await
    {
        tracing::error!("{e}");
    }
    if !out.quiet {
        eprintln!("{}", summary.human());
    } else if let Some(why) = &summary.stopped
        && outcome.exit != Exit::Success
    {
        eprintln!("moi-ingest: {why}");
    }
    if out.json {
        println!("{json}");
    }
    outcome.exit.code()
}
