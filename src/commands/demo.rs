//! `moi-ingest demo`: the real upload pipeline against an emulator started in-process on
//! an ephemeral loopback port, on a folder the user names or a generated sample. It runs
//! twice, to show that the second run finds nothing to do, and checks that every file
//! arrived byte-identical.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CommandResult, Output, run_upload};
use crate::api::{ClientOptions, Credentials};
use crate::config::{self, Connection, UploadPlan};
use crate::emulator::{self, DEFAULT_VOLUME, EmulatorConfig, Faults};
use crate::output::stderr_line;
use crate::pipeline::{Cancel, FollowSettings, UploadSettings};
use crate::report::{Exit, Failure};
use crate::secret::Secret;

/// Writes a small corpus with the awkward cases a real folder has.
pub fn write_sample(root: &Path) -> std::io::Result<()> {
    let files: &[(&str, usize)] = &[
        ("docs/红楼梦(通行本)简体横排.pdf", 48_000),
        ("docs/report.pdf", 12_000),
        ("archive/2024/report.pdf", 9_000),
        ("notes/empty.txt", 0),
        ("notes/readme.md", 700),
        ("data/table.csv", 30_000),
        ("images/photo.png", 200_000),
        ("big/blob.bin", 3 * 1024 * 1024),
    ];
    for (i, (name, size)) in files.iter().enumerate() {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let body: Vec<u8> = (0..*size)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
            .collect();
        std::fs::write(path, body)?;
    }
    Ok(())
}

/// Counts the files under `source` and how many of them the emulator holds identically.
fn verify(source: &Path, stored: &Path) -> (usize, usize) {
    let (mut total, mut same) = (0, 0);
    for entry in walkdir::WalkDir::new(source).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        total += 1;
        if let Ok(rel) = entry.path().strip_prefix(source) {
            let a = std::fs::read(entry.path());
            let b = std::fs::read(stored.join(rel));
            if matches!((a, b), (Ok(a), Ok(b)) if a == b) {
                same += 1;
            }
        }
    }
    (total, same)
}

/// The emulator the demo uploads to: some loads fail at first, so /task/retry is seen at
/// work.
async fn start_emulator(work: &Path, key: &str) -> Result<emulator::RunningEmulator, Failure> {
    let mut emu = EmulatorConfig::new(work.join("emulator"));
    emu.api_key = Some(Secret::new(key));
    emu.ingest_time = Duration::from_millis(300);
    emu.faults = Faults {
        seed: 42,
        ingest_failure: 0.25,
        ..Faults::default()
    };
    emulator::start(emu, "127.0.0.1:0")
        .await
        .map_err(Failure::usage)
}

/// An upload of `root` to the emulator's volume, polling at the emulator's pace.
fn demo_plan(
    server: &emulator::RunningEmulator,
    key: &str,
    root: &Path,
    work: &Path,
) -> Result<UploadPlan, Failure> {
    let endpoint = server
        .url()
        .parse()
        .map_err(|_| Failure::usage("the emulator's address is not a URL"))?;
    let connection = Connection {
        endpoint,
        credentials: Credentials::ApiKey(Secret::new(key)),
        options: ClientOptions {
            names: config::setting_names(),
            ..ClientOptions::default()
        },
    };
    let volume: crate::api::VolumeId = DEFAULT_VOLUME.parse().unwrap_or_default();
    let identity = config::identity(&connection.endpoint, &volume, root);
    let mut settings = UploadSettings::new(root.to_path_buf(), volume);
    settings.send.concurrency = 4;
    // The emulator ingests in a fraction of a second: poll at that pace.
    settings.follow = FollowSettings {
        poll_interval: Duration::from_millis(200),
        max_poll_interval: Duration::from_secs(1),
        wait_timeout: Duration::from_secs(60),
        ..FollowSettings::default()
    };
    Ok(UploadPlan {
        connection,
        identity,
        journal: work.join("journal.sqlite"),
        metrics_file: None,
        metrics_push: None,
        settings,
    })
}

/// The demo's last line: what arrived intact, and what the emulator saw.
fn report(same: usize, total: usize, stored: &Path, stats: emulator::StatsSnapshot) -> String {
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "demo: the emulator holds {same} of {total} files byte-identical under {}; it saw {} \
         and {}",
        stored.display(),
        count(stats.upload_requests, "upload request", "upload requests"),
        count(
            stats.retry_requests,
            "/task/retry call",
            "/task/retry calls"
        ),
    )
}

pub async fn demo(args: &crate::cli::DemoArgs, out: Output, cancel: Cancel) -> CommandResult {
    let work = tempfile::Builder::new()
        .prefix("moi-ingest-demo-")
        .tempdir()
        .map_err(|e| Failure::usage(format!("cannot create a temporary folder: {e}")))?;
    let source: PathBuf = match &args.dir {
        Some(d) => d.clone(),
        None => {
            let dir = work.path().join("sample");
            write_sample(&dir)
                .map_err(|e| Failure::usage(format!("cannot write the sample folder: {e}")))?;
            dir
        }
    };
    let root = config::root(&source)?;
    let key = format!("demo-{}", std::process::id());
    let server = start_emulator(work.path(), &key).await?;
    if !out.quiet {
        stderr_line(format!(
            "demo: emulator at {} (volume {DEFAULT_VOLUME}); uploading {}",
            server.url(),
            root.display()
        ));
    }
    let plan = || demo_plan(&server, &key, &root, work.path());
    let first = run_upload(
        plan()?,
        Output { json: false, ..out },
        cancel.clone(),
        "demo",
    )
    .await?;
    if first == Exit::Interrupted.code() {
        return Ok(first);
    }
    if !out.quiet {
        stderr_line("demo: second run over the same folder (resumes from the journal):");
    }
    let second = run_upload(plan()?, out, cancel, "demo (rerun)").await?;
    let stored = server.volume_dir(DEFAULT_VOLUME);
    let (total, same) = verify(&root, &stored);
    if !out.quiet {
        stderr_line(report(same, total, &stored, server.stats()));
    }
    if args.keep {
        let kept = work.keep();
        stderr_line(format!("demo: kept {}", kept.display()));
    }
    server.stop().await;
    if same != total {
        return Err(Failure::new(
            Exit::Failures,
            "some files did not arrive intact",
        ));
    }
    Ok(if first != 0 { first } else { second })
}
