//! The commands: each resolves its settings, runs the library, and returns its exit code or
//! a [`Failure`]. This layer is the only one that prints: results on stdout (a closed pipe
//! ends them quietly), people's lines on stderr (timestamped in a log).

mod calls_io;
#[cfg(feature = "emulator")]
mod demo;
#[cfg(feature = "emulator")]
mod emulator;
mod export;
mod extras;
mod journals;
mod locate;
mod ls;
mod retry;
mod sources;
mod status;
mod task;
mod upload;
mod verify;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{Cli, Command};
use crate::output::{Priority, stderr_line, stderr_line_at, stdout_line};
use crate::pipeline::{Cancel, Cause};
use crate::report::{Failure, Summary};

pub use upload::run_upload;

/// What a command owes the caller, for `--json` and `--quiet`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

pub type CommandResult = Result<i32, Failure>;

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
    let o = cli.output();
    let out = Output {
        json: o.json,
        quiet: o.quiet,
    };
    let result = match cli.command {
        Command::Upload(args) => upload::upload(&args, out, cancel).await,
        Command::Status(args) => status::status(&args, out, cancel).await,
        Command::Retry(args) => retry::retry(&args, out, cancel).await,
        Command::Verify(args) => verify::verify(&args, out).await,
        #[cfg(feature = "emulator")]
        Command::Demo(args) => demo::demo(&args, out, cancel).await,
        #[cfg(not(feature = "emulator"))]
        Command::Demo(_) => Err(not_built_in("demo")),
        Command::Ls(args) => ls::ls(&args, out).await,
        Command::Journals(args) => journals::journals(&args, out).await,
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => emulator::emulator(&args, cancel).await,
        #[cfg(not(feature = "emulator"))]
        Command::Emulator(_) => Err(not_built_in("emulator")),
        Command::Task(args) => task::task(&args, out).await,
        Command::Connector(args) => sources::connector(&args, out).await,
        Command::Export(args) => export::export(&args, out).await,
        Command::Login(args) => sources::login(&args, out).await,
        Command::Completions(args) => extras::completions(&args),
        Command::Man(args) => extras::man(&args),
    };
    if let Some(s) = signals {
        s.abort();
    }
    match result {
        Ok(code) => code,
        Err(f) => {
            stderr_line_at(Priority::Error, format!("moi-ingest: error: {}", f.message));
            f.exit.code()
        }
    }
}

/// What a build without the emulator says to `moi-ingest emulator` or `demo`.
#[cfg(not(feature = "emulator"))]
fn not_built_in(command: &str) -> Failure {
    Failure::new(
        crate::report::Exit::Usage,
        format!(
            "`moi-ingest {command}` is not in this build: the packaged binary leaves the local \
             emulator out, so the nightly job links no server. For the emulator, build the \
             default features from a checkout: cargo install --locked --path ."
        ),
    )
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
            stderr_line(
                "moi-ingest: stopping: no new uploads; waiting for those in flight \
                 (press Ctrl-C again to stop at once)",
            );
            cancel.stop(Cause::Signal);
        } else {
            stderr_line("moi-ingest: stopping at once");
            cancel.stop_now(Cause::Signal);
        }
    }
}

/// A run's summary: JSON on stdout with `--json`; on stderr the human lines, or with
/// `--quiet` only what went wrong (quiet means no progress, never no failures).
pub(crate) fn print_summary(summary: &Summary, out: Output) {
    if out.json {
        stdout_line(serde_json::to_string(summary).unwrap_or_default());
    }
    // Under systemd, `journalctl -p warning` shows a night that went wrong.
    let priority = match summary.exit_code {
        0 | 5 | 6 => Priority::Info,
        8 => Priority::Warning,
        _ => Priority::Error,
    };
    if !out.quiet {
        stderr_line_at(priority, summary.human());
    } else if let Some(lines) = summary.quiet_lines() {
        stderr_line_at(priority, lines);
    }
}
