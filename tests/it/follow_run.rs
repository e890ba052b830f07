//! Ingestion follow-through: polling, automatic retries, status and retry commands.

use std::time::Duration;

use crate::util::{self, assert_same_tree, code, stderr, summary, upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_loads_are_retried_until_everything_is_ingested() {
    let env = util::emulator_with(|c| {
        c.faults.seed = 7;
        c.faults.ingest_failure = 0.4;
    })
    .await;
    let src = env.path("src");
    let names = util::small_files(&src, 30, 100);
    let out = upload(&env, &src, &["--max-retries", "10"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["ingested"], names.len());
    assert_eq!(s["ingest_failed"], 0);
    let stats = env.emu.stats();
    assert!(
        stats.retry_requests > 0 && stats.retried_files > 0,
        "{stats:?}"
    );
    assert_eq!(s["ingest_retries"].as_u64().unwrap(), stats.retried_files);
    // Polling stays within one request per followed task per round.
    let rounds = s["follow_rounds"].as_u64().unwrap();
    assert!(
        stats.task_files_requests <= names.len() as u64 * rounds,
        "{} polls for {} tasks in {rounds} rounds",
        stats.task_files_requests,
        names.len()
    );
    assert_eq!(
        stats.task_files_requests,
        s["poll_requests"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_always_fail_end_the_run_with_exit_1_and_their_reason() {
    let env = util::emulator_with(|c| c.faults.always_fail_suffix = Some(".bad".into())).await;
    let src = env.path("src");
    util::small_files(&src, 4, 100);
    std::fs::write(src.join("broken-1.bad"), b"x").unwrap();
    std::fs::write(src.join("broken-2.bad"), b"y").unwrap();
    let started = std::time::Instant::now();
    let out = upload(&env, &src, &["--max-retries", "2"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
    let s = summary(&out);
    assert_eq!(
        (s["ingested"].as_u64(), s["ingest_failed"].as_u64()),
        (Some(4), Some(2))
    );
    let failures = s["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| {
        f["stage"] == "ingest"
            && f["reason"]
                .as_str()
                .unwrap()
                .contains("could not be parsed")
    }));
    let err = stderr(&out);
    assert!(
        err.contains("broken-1.bad") && err.contains("broken-2.bad"),
        "{err}"
    );
    // Two retries per file, and no more.
    assert_eq!(env.emu.stats().retried_files, 4);

    // `status` lists them from the journal; `retry` re-drives them without walking.
    // It exits 1: the journal holds failed files.
    let status = util::run(&env, &["status", "--journal", &env.journal(), "--json"]).await;
    assert_eq!(code(&status), 1, "{}", stderr(&status));
    let st = summary(&status);
    assert_eq!(st["counts"]["failed"], 2);
    assert_eq!(st["counts"]["ingested"], 4);
    assert_eq!(st["failures"].as_array().unwrap().len(), 2);
    assert_eq!(st["runs"].as_array().unwrap().len(), 1);

    let retry = util::run(
        &env,
        &[
            "retry",
            "--journal",
            &env.journal(),
            "--json",
            "--max-retries",
            "0",
            "--poll-interval",
            "100ms",
        ],
    )
    .await;
    assert_eq!(code(&retry), 1, "{}", stderr(&retry));
    assert_eq!(env.emu.stats().retried_files, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_then_status_follow_reaches_the_same_end() {
    let env = util::emulator_with(|c| {
        c.ingest_time = Duration::from_millis(400);
        c.faults.seed = 3;
        c.faults.ingest_failure = 0.3;
    })
    .await;
    let src = env.path("src");
    let names = util::small_files(&src, 12, 100);
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.emu.stats().task_files_requests, 0);
    let before = util::run(&env, &["status", "--journal", &env.journal(), "--json"]).await;
    assert_eq!(summary(&before)["counts"]["uploaded"], names.len());

    let follow = util::run(
        &env,
        &[
            "status",
            "--journal",
            &env.journal(),
            "--follow",
            "--json",
            "--poll-interval",
            "100ms",
            "--max-retries",
            "10",
        ],
    )
    .await;
    assert_eq!(code(&follow), 0, "{}", stderr(&follow));
    let st = summary(&follow);
    assert_eq!(st["counts"]["ingested"], names.len());
    assert_eq!(st["follow"]["ingested"], names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_leaves_pending_files_for_the_next_run_with_exit_5() {
    let env = util::emulator_with(|c| c.ingest_time = Duration::from_secs(3)).await;
    let src = env.path("src");
    util::small_files(&src, 3, 100);
    let out = upload(&env, &src, &["--wait-timeout", "300ms"]).await;
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert_eq!(summary(&out)["ingest_pending"], 3);
    assert!(stderr(&out).contains("--wait-timeout"));
    // The next run follows them to the end without sending anything again.
    env.emu.advance(Duration::from_secs(3));
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        (
            summary(&out)["uploaded"].as_u64(),
            summary(&out)["ingested"].as_u64()
        ),
        (Some(0), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_file_requests_and_a_server_that_caps_page_size() {
    let env = util::emulator_with(|c| c.max_page_size = 2).await;
    let src = env.path("src");
    let names = util::small_files(&src, 23, 100);
    let out = upload(&env, &src, &["--batch-files", "5"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["uploaded"].as_u64(), s["ingested"].as_u64()),
        (Some(23), Some(23))
    );
    let stats = env.emu.stats();
    // At most five files per request (fewer when the walk was slower than the planner,
    // which then sends what it has), each request its own task...
    assert!((5..=23).contains(&stats.upload_requests), "{stats:?}");
    assert_eq!(stats.files_accepted, 23);
    // ...and every file was seen ingested although a page holds two: tasks of more than
    // two files were paged through.
    assert!(
        stats.task_files_requests >= stats.upload_requests,
        "{stats:?}"
    );
    assert_same_tree(&src, &env.stored());
    let _ = names;
}
