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
        inode: (0, 0),
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

/// A journal as the previous release wrote it (schema 2: ids as 19-digit text), with one
/// confirmed file and one whose ingestion failed.
fn write_schema_2_journal(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE files (
            path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            sha256 BLOB, state TEXT NOT NULL, fail_stage TEXT,
            in_flight INTEGER NOT NULL DEFAULT 0, file_id TEXT, task_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, ingest_status INTEGER,
            ingest_retries INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            first_seen_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            uploaded_at INTEGER, run_id INTEGER, base_name TEXT);
         CREATE INDEX files_by_task ON files(task_id) WHERE task_id IS NOT NULL;
         CREATE INDEX files_by_file_id ON files(file_id) WHERE file_id IS NOT NULL;
         CREATE INDEX files_by_state ON files(state);
         CREATE INDEX files_by_base_name ON files(base_name);
         CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL,
            started_at INTEGER NOT NULL, ended_at INTEGER, exit_code INTEGER, summary TEXT);
         CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO files(path, size, mtime_ns, state, file_id, task_id, first_seen_at,
                           updated_at, base_name)
         VALUES ('a/kept.pdf', 5, 7, 'ingested', '1889613341347389440',
                 '1889613340219121664', 0, 0, 'kept.pdf');
         INSERT INTO files(path, size, mtime_ns, state, fail_stage, last_error, file_id,
                           task_id, first_seen_at, updated_at, base_name)
         VALUES ('b/broken.pdf', 5, 7, 'failed', 'ingest', 'parse error',
                 '1889613341347389441', '1889613340219121664', 0, 0, 'broken.pdf');
         PRAGMA application_id = 1297041713; PRAGMA user_version = 2;",
    )
    .unwrap();
}

#[tokio::test]
async fn a_journal_of_the_previous_schema_is_read_as_it_is_then_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    write_schema_2_journal(&path);
    let check = |j: Journal| async move {
        let rows = j.lookup(vec!["a/kept.pdf".into()]).await.unwrap();
        let kept = rows[0].as_ref().unwrap();
        assert_eq!(kept.file_id, Some(Id(1_889_613_341_347_389_440)));
        assert_eq!(kept.task_id, Some(Id(1_889_613_340_219_121_664)));
        let failures = j.failures(10).await.unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].file_id.as_deref(), Some("1889613341347389441"));
        assert_eq!(
            j.ingest_failures().await.unwrap(),
            vec![(Id(1_889_613_340_219_121_664), Id(1_889_613_341_347_389_441))]
        );
        assert_eq!(
            j.knows_base_names(vec!["kept.pdf".into(), "other.pdf".into()])
                .await
                .unwrap(),
            vec![true, false]
        );
    };
    // `status` and dry runs read it without migrating it.
    check(Journal::open_read_only(&path).unwrap()).await;
    // A run migrates it, and the same questions get the same answers.
    check(Journal::open(&path, None).unwrap()).await;
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}
