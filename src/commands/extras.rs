//! `moi-ingest completions SHELL` and `moi-ingest man`: generated from the same clap
//! definitions as `--help`, so they cannot drift from it.

use clap::CommandFactory;

use super::CommandResult;
use crate::cli::{Cli, CompletionsArgs};
use crate::report::{Exit, Failure};

pub fn completions(args: &CompletionsArgs) -> CommandResult {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "moi-ingest", &mut buf);
    write_stdout(&buf)
}

pub fn man() -> CommandResult {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Failure::new(Exit::Failures, format!("cannot render the man page: {e}")))?;
    write_stdout(&buf)
}

fn write_stdout(bytes: &[u8]) -> CommandResult {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(0),
        // `| head` has read enough: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Failure::new(
            Exit::Failures,
            format!("cannot write to stdout: {e}"),
        )),
    }
}
