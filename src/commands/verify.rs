//! `moi-ingest verify`: the journal against what the service lists.

use super::{CommandResult, Output};
use crate::api::ErrorKind;
use crate::cli::VerifyArgs;
use crate::config;
use crate::journal::Journal;
use crate::output::{stderr_line, stdout_line};
use crate::report::{Exit, Failure, shown};
use crate::verify::{self, VerifyError};

pub async fn verify(args: &VerifyArgs, out: Output) -> CommandResult {
    let path = super::locate::journal_path(&args.select, &args.connection).await?;
    // Opened (and brought up to date if an older moi-ingest wrote it), not locked: verify
    // only reads, so it may run beside an upload.
    let journal = Journal::open(&path, None).map_err(Failure::usage)?;
    let identity = journal.identity().await.ok().flatten();
    let connection = config::connection_with_default(
        &args.connection,
        identity.as_ref().map(|i| i.endpoint.as_str()),
    )?;
    let client = crate::api::Client::new(
        &connection.endpoint,
        connection.credentials,
        connection.options,
    )
    .map_err(Failure::usage)?;
    let failure = |e: VerifyError| match e {
        VerifyError::Api(e) if e.kind == ErrorKind::Auth => Failure::new(Exit::Auth, e),
        e => Failure::new(Exit::Failures, e),
    };
    let mut report = verify::verify(&journal, &client).await.map_err(failure)?;
    if let Some(id) = &identity {
        let prefix = crate::run::recorded_prefix(&journal).await;
        report.volume = verify::verify_volume(
            &journal,
            &client,
            &id.volume,
            prefix.as_deref(),
            std::path::Path::new(&id.root),
        )
        .await
        .map_err(failure)?;
    }
    if out.json {
        stdout_line(serde_json::to_string(&report).unwrap_or_default());
    } else {
        for (kind, list) in [
            ("missing", &report.missing),
            ("mismatched", &report.mismatched),
            ("extra", &report.extra),
        ] {
            for d in list {
                stdout_line(format_args!(
                    "{kind}\t{}\t{} (file {}, task {})",
                    shown(&d.path),
                    d.what,
                    d.file_id,
                    d.task_id
                ));
            }
        }
    }
    if !out.json {
        for d in report.volume.iter().flat_map(|v| &v.differences) {
            stdout_line(format_args!("{}\t{}\t{}", d.kind, shown(&d.path), d.what));
        }
    }
    if let Some(v) = &report.volume
        && (!out.quiet || !v.differences.is_empty())
    {
        stderr_line(format!(
            "verify: the volume lists {} files for this folder: {} differences",
            v.listed,
            v.differences.len()
        ));
    }
    if !out.quiet || report.differences() > 0 {
        stderr_line(format!(
            "verify: {} files in {} tasks checked: {} missing, {} mismatched, {} extra",
            report.checked,
            report.tasks,
            report.missing.len(),
            report.mismatched.len(),
            report.extra.len()
        ));
    }
    Ok(if report.differences() > 0 {
        Exit::Failures.code()
    } else {
        0
    })
}
