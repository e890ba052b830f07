//! `moi-ingest verify`: the journal against what the service lists.

use super::{Output, client_for_journal, complain, usage};
use crate::cli::VerifyArgs;
use crate::journal::Journal;
use crate::report::Exit;
use crate::verify::{self, VerifyError};

pub async fn verify(args: &VerifyArgs, out: Output) -> i32 {
    let path = match super::status::journal_path(&args.select, &args.connection) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let journal = match Journal::open(&path, None) {
        Ok(j) => j,
        Err(e) => return complain(Exit::Usage, e),
    };
    let identity = journal.identity().await.ok().flatten();
    let client = match client_for_journal(&args.connection, identity.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let report = match verify::verify(&journal, &client).await {
        Ok(r) => r,
        Err(VerifyError::Api(e)) if e.kind == crate::api::ErrorKind::Auth => {
            return complain(Exit::Auth, e);
        }
        Err(e) => return complain(Exit::Failures, e),
    };
    if out.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        for (kind, list) in [
            ("missing", &report.missing),
            ("mismatched", &report.mismatched),
            ("extra", &report.extra),
        ] {
            for d in list {
                println!(
                    "{kind}\t{}\t{} (file {}, task {})",
                    d.path, d.what, d.file_id, d.task_id
                );
            }
        }
    }
    if !out.quiet {
        eprintln!(
            "verify: {} files in {} tasks checked: {} missing, {} mismatched, {} extra",
            report.checked,
            report.tasks,
            report.missing.len(),
            report.mismatched.len(),
            report.extra.len()
        );
    }
    if report.differences() > 0 {
        Exit::Failures.code()
    } else {
        0
    }
}
