//! `moi-ingest journals`: the journals in the state folder, and forgetting the ones a user
//! no longer wants (a typo'd volume's, a folder that moved).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CommandResult, Output};
use crate::cli::{JournalsAction, JournalsArgs};
use crate::config;
use crate::journal::{Identity, Journal, lock_holder, lock_path, now_secs};
use crate::output::stdout_line;
use crate::report::{Failure, human_bytes, local_time};

use super::locate::journals_in;

/// A journal as listed.
#[derive(serde::Serialize)]
struct Listed {
    path: String,
    folder: String,
    volume: String,
    endpoint: String,
    last_run_started: Option<i64>,
    last_exit: Option<i64>,
    bytes: u64,
    running: Option<String>,
}

fn files_of(path: &Path) -> Vec<PathBuf> {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    vec![
        path.to_path_buf(),
        with("-wal"),
        with("-shm"),
        lock_path(path),
    ]
}

async fn listed(path: &Path, id: &Identity) -> Listed {
    let last = match Journal::open_read_only(path) {
        Ok(j) => j
            .recent_runs(1)
            .await
            .ok()
            .and_then(|r| r.into_iter().next()),
        Err(_) => None,
    };
    Listed {
        path: path.display().to_string(),
        folder: id.root.clone(),
        volume: id.volume.clone(),
        endpoint: id.endpoint.clone(),
        last_run_started: last.as_ref().map(|r| r.started_at),
        last_exit: last.and_then(|r| r.exit_code),
        bytes: files_of(path)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum(),
        running: lock_holder(path),
    }
}

pub async fn journals(args: &JournalsArgs, out: Output) -> CommandResult {
    let Some(dir) = config::journals_dir() else {
        return Err(Failure::usage(
            "neither XDG_STATE_HOME nor HOME is set, so there is no state folder to look in",
        ));
    };
    let all = journals_in(&dir).await;
    match &args.action {
        None => {
            for (path, id) in &all {
                print(&listed(path, id).await, out);
            }
            if all.is_empty() && !out.json {
                stdout_line(format_args!("no journals under {}", dir.display()));
            }
            Ok(0)
        }
        Some(JournalsAction::Forget { paths, older_than }) => {
            forget(&dir, &all, paths, *older_than, out).await
        }
    }
}

fn print(l: &Listed, out: Output) {
    if out.json {
        stdout_line(serde_json::to_string(l).unwrap_or_default());
        return;
    }
    let last = match (l.last_run_started, l.last_exit, &l.running) {
        (_, _, Some(holder)) => format!("running now ({holder})"),
        (Some(at), Some(code), None) => format!("last run {}, exit {code}", local_time(at)),
        (Some(at), None, None) => format!("last run {}, did not finish", local_time(at)),
        (None, _, None) => "never ran".into(),
    };
    stdout_line(format_args!(
        "{}\n    folder {}, volume {}, endpoint {}\n    {last}, {}",
        l.path,
        l.folder,
        l.volume,
        l.endpoint,
        human_bytes(l.bytes)
    ));
}

async fn forget(
    dir: &Path,
    all: &[(PathBuf, Identity)],
    paths: &[PathBuf],
    older_than: Option<Duration>,
    out: Output,
) -> CommandResult {
    if paths.is_empty() && older_than.is_none() {
        return Err(Failure::usage(
            "name the journals to forget (as `moi-ingest journals` lists them), or give \
             --older-than D",
        ));
    }
    let mut targets: Vec<PathBuf> = Vec::new();
    for p in paths {
        let p = config::absolute(p);
        if !all.iter().any(|(known, _)| known == &p) {
            return Err(Failure::usage(format!(
                "{} is not a journal under {}; nothing was removed (`moi-ingest journals` \
                 lists them)",
                p.display(),
                dir.display()
            )));
        }
        targets.push(p);
    }
    if let Some(age) = older_than {
        let cutoff = now_secs() - age.as_secs() as i64;
        for (path, id) in all {
            let l = listed(path, id).await;
            if l.last_run_started.is_none_or(|at| at < cutoff) {
                targets.push(path.clone());
            }
        }
    }
    targets.sort();
    targets.dedup();
    let mut held = 0;
    for path in targets {
        if let Some(holder) = lock_holder(&path) {
            held += 1;
            super::stderr_line(format!(
                "moi-ingest: {} is held by a run ({holder}); not removed",
                path.display()
            ));
            continue;
        }
        for f in files_of(&path) {
            if let Err(e) = std::fs::remove_file(&f)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Failure::usage(format!(
                    "cannot remove {}: {e}",
                    f.display()
                )));
            }
        }
        if !out.quiet {
            stdout_line(format_args!("forgot {}", path.display()));
        }
    }
    Ok(if held > 0 { 1 } else { 0 })
}
