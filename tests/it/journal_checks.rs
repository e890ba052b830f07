//! The journal under pressure: a full disk, reopening, history kept.

use std::sync::Arc;
use std::time::Duration;

use moi_ingest::api::{Client, ClientOptions, Credentials, Id};
use moi_ingest::emulator::DEFAULT_VOLUME;
use moi_ingest::journal::{Confirmed, FileState, Journal, Listed};
use moi_ingest::pipeline::{self, Cancel, RunContext, UploadSettings};
use moi_ingest::report::{Exit, RunStats};
use moi_ingest::secret::Secret;

use crate::util::{self, KEY};

fn listed(path: &str) -> Listed {
    Listed {
        path: path.into(),
        size: 1,
        mtime_ns: 1,
        sha256: None,
    }
}

/// Caps the database at its current size: the next growth fails as on a full disk.
async fn fill_disk(j: &Journal) {
    j.cap_at_current_size().await.unwrap();
}

#[tokio::test]
async fn a_full_disk_fails_the_write_and_keeps_what_was_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let j = Journal::open(&path, None).unwrap();
    j.begin_send(vec![listed("kept.pdf")], 1).await.unwrap();
    j.confirm(vec![Confirmed {
        file: listed("kept.pdf"),
        file_id: Some(Id(7)),
        task_id: Some(Id(8)),
    }])
    .await
    .unwrap();
    fill_disk(&j).await;
    let many: Vec<Listed> = (0..5000)
        .map(|i| listed(&format!("more/file-{i:05}-{}.pdf", "x".repeat(60))))
        .collect();
    let err = j.begin_send(many, 1).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot write the journal") && err.contains("full"),
        "{err}"
    );
    drop(j);
    let j = Journal::open(&path, None).unwrap();
    let rec = j
        .lookup(vec!["kept.pdf".into(), "more/file-00000".into()])
        .await
        .unwrap();
    assert_eq!(rec[0].as_ref().unwrap().state, FileState::Uploaded);
    assert_eq!(rec[0].as_ref().unwrap().file_id, Some(Id(7)));
    assert!(rec[1].is_none(), "the failed write was rolled back whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_journal_fills_up_stops_with_a_message() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3000, 10);
    let journal = Journal::open(&env.path("j.sqlite"), None).unwrap();
    fill_disk(&journal).await;
    let client = Arc::new(
        Client::new(
            &env.emu.url().parse().unwrap(),
            Credentials::ApiKey(Secret::new(KEY)),
            ClientOptions::default(),
        )
        .unwrap(),
    );
    let mut settings = UploadSettings::new(src, DEFAULT_VOLUME.parse().unwrap());
    settings.no_wait = true;
    let stats = RunStats::new();
    let run = RunContext {
        client,
        journal: journal.clone(),
        run_id: 1,
        stats,
        cancel: Cancel::new(),
    };
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        pipeline::upload(&settings, run, None),
    )
    .await
    .unwrap();
    assert_eq!(out.exit, Exit::Failures);
    let why = out.stopped.unwrap();
    assert!(
        why.contains("cannot write the journal") && why.contains("free space"),
        "{why}"
    );
    // It stopped early rather than sending thousands of files it could not record.
    assert!(
        env.emu.stats().upload_requests < 3000,
        "{:?}",
        env.emu.stats()
    );
    // Whatever it recorded as confirmed, the service holds.
    let counts = journal.counts().await.unwrap();
    assert!(counts.uploaded <= env.emu.stats().files_accepted);
}
