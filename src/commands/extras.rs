//! `moi-ingest completions SHELL` and `moi-ingest man [--dir DIR]`: generated from the same clap
//! definitions as `--help`, so they cannot drift from it.

use clap::CommandFactory;

use super::CommandResult;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::report::{Exit, Failure};

pub fn completions(args: &CompletionsArgs) -> CommandResult {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "moi-ingest", &mut buf);
    if args.shell == clap_complete::Shell::Bash {
        buf = bash_fixed(&buf);
    }
    write_stdout(&buf)
}

/// clap_complete names the bash script's case arms for a hyphenated binary
/// `moi__subcmd__ingest__...` while its dispatcher sets `moi__ingest__...`, so no option of
/// any subcommand was ever offered (`moi-ingest upload --con<TAB>`). The arms take the
/// dispatcher's names.
fn bash_fixed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("moi__subcmd__ingest", "moi__ingest")
        .into_bytes()
}

pub fn man(args: &ManArgs) -> CommandResult {
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|e| {
                Failure::new(
                    Exit::Usage,
                    format!("cannot write the man pages into {}: {e}", dir.display()),
                )
            })?;
        return Ok(0);
    }
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
