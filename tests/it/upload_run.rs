//! The upload worker, run as the real binary against the emulator.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use moi_ingest::journal::JournalLock;

use crate::util::{self, assert_same_tree, code, stderr, summary, upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_arrives_once_reruns_send_only_what_changed() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = util::corpus(&src);

    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["uploaded"], names.len());
    assert_eq!(s["ingested"], names.len());
    assert_eq!(s["exit_code"], 0);
    assert!(s["PipelineLoadFileThroughput"].as_f64().unwrap() > 0.0);
    assert_same_tree(&src, &env.stored());
    let stats = env.emu.stats();
    assert_eq!(
        (stats.files_accepted, stats.duplicates),
        (names.len() as u64, 0)
    );

    // The journal is owner-only.
    let mode = std::fs::metadata(env.journal())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "journal mode {mode:o}");

    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 0);
    assert_eq!(summary(&out)["unchanged"], names.len());
    assert_eq!(env.emu.stats().files_accepted, names.len() as u64);

    std::fs::write(src.join("a/report.pdf"), b"a new version").unwrap();
    std::fs::write(src.join("a/added.txt"), b"new file").unwrap();
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 2);
    assert_eq!(env.emu.stats().files_accepted, names.len() as u64 + 2);
    assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_n_uploads_in_flight() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(60)).await;
    let src = env.path("src");
    util::small_files(&src, 24, 2000);
    let out = upload(
        &env,
        &src,
        &["--concurrency", "3", "--no-wait", "--batch-files", "1"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let peak = env.emu.stats().peak_concurrent_uploads;
    assert!((2..=3).contains(&peak), "peak concurrency {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_held_journal_exits_4() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 2, 10);
    let _held = JournalLock::acquire(std::path::Path::new(&env.journal())).unwrap();
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    assert!(
        err.contains(&env.journal()) && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert_eq!(env.emu.stats().upload_requests, 0);
}

async fn spawn_upload(
    env: &util::Env,
    src: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    let d = src.display().to_string();
    let args = util::upload_args(env, &d, extra);
    util::command(env)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_uploads_and_exits_130() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(150)).await;
    let src = env.path("src");
    let names = util::small_files(&src, 40, 500);
    // One file per request, so that some are in flight and some not yet started.
    let child = spawn_upload(&env, &src, &["--concurrency", "2", "--batch-files", "1"]).await;
    let pid = child.id().unwrap();
    util::wait_until("two uploads were accepted", || {
        env.emu.stats().files_accepted >= 2
    })
    .await;
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = util::finish(child).await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    let accepted = env.emu.stats().files_accepted;
    assert!(accepted < names.len() as u64);
    // Everything the service confirmed is in the journal: the rerun sends only the rest.
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        summary(&out)["uploaded"].as_u64().unwrap(),
        names.len() as u64 - accepted
    );
    assert_eq!(env.emu.stats().duplicates, 0);
    assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_rerun_finishes_with_few_duplicates() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(80)).await;
    let src = env.path("src");
    let names = util::small_files(&src, 60, 3000);
    let mut child = spawn_upload(&env, &src, &["--concurrency", "4", "--no-wait"]).await;
    util::wait_until("ten uploads were accepted", || {
        env.emu.stats().files_accepted >= 10
    })
    .await;
    child.kill().await.unwrap(); // SIGKILL: no chance to clean up
    let out = upload(&env, &src, &["--concurrency", "4"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_same_tree(&src, &env.stored());
    // Files in flight at the kill were sent again with dedup replace: each path holds one
    // file in the volume, none twice.
    let stats = env.emu.stats();
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    util::assert_once_per_path(&env, &names);
    // Files that were in flight at the kill are counted as possibly sent twice.
    let resent = summary(&out)["resent_after_interrupt"].as_u64().unwrap();
    assert!(resent >= stats.dedup_replaced, "{resent} < {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_symlink_loops_and_odd_names_neither_hang_nor_crash() {
    use std::os::unix::ffi::OsStrExt;
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3, 100);
    let fifo = src.join("pipe");
    util::mkfifo(&fifo);
    std::os::unix::fs::symlink(&src, src.join("d0/loop")).unwrap();
    let bad_name = src.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt"));
    std::fs::write(&bad_name, b"x").unwrap();
    std::fs::write(src.join(".hidden"), b"x").unwrap();
    for extra in [&[][..], &["--follow-symlinks"][..]] {
        let out = upload(&env, &src, extra).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("FIFO"), "{err}");
        assert!(err.contains("not valid UTF-8"), "{err}");
        if !extra.is_empty() {
            assert!(err.contains("symlink loop"), "{err}");
        }
    }
    assert_eq!(env.emu.stats().files_accepted, 3);
    assert!(!env.stored().join(".hidden").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_and_sends_nothing() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 5, 10);
    let out = upload(&env, &src, &["--dry-run"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("would upload\t"))
            .count(),
        5
    );
    // It may read (the volume's existence), never send.
    assert_eq!(env.emu.stats().upload_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_with_a_message() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 1, 10);
    let s = src.display().to_string();
    let vol = moi_ingest::emulator::DEFAULT_VOLUME.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["upload", "/no/such/dir", "--volume", &vol],
            "/no/such/dir",
        ),
        (vec!["upload", &s, "--volume", "vol a"], "--volume: 'vol a'"),
        (
            vec!["upload", &s, "--volume", &vol, "--endpoint", "not a url"],
            "not a URL",
        ),
        (
            vec![
                "upload",
                &s,
                "--volume",
                &vol,
                "--endpoint",
                "http://moi.example.com",
            ],
            "--allow-http",
        ),
        (
            vec!["upload", &s, "--volume", &vol, "--concurrency", "0"],
            "--concurrency",
        ),
        (
            vec!["upload", &s, "--volume", &vol, "--include", "a[b"],
            "--include",
        ),
    ];
    for (args, needle) in cases {
        let out = util::run(&env, &args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // An empty folder is not an error.
    std::fs::create_dir_all(env.path("empty")).unwrap();
    let out = upload(&env, &env.path("empty"), &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.emu.stats().upload_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_or_corrupt_journal_is_refused_and_kept() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 1, 10);
    std::fs::write(
        env.journal(),
        b"this is not a database at all, but somebody's notes",
    )
    .unwrap();
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&env.journal()) && stderr(&out).contains("not a moi-ingest journal"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(env.journal()).unwrap(),
        b"this is not a database at all, but somebody's notes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_catches_an_edit_that_keeps_size_and_mtime() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 4, 100);
    let out = upload(&env, &src, &["--checksum", "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 4);
    // Same length, same modification time, different bytes.
    let victim = src.join("d1/f0001.txt");
    let mtime = std::fs::metadata(&victim).unwrap().modified().unwrap();
    std::fs::write(&victim, vec![b'z'; 100]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(
        summary(&out)["uploaded"],
        0,
        "size and mtime alone cannot see the edit"
    );
    let out = upload(&env, &src, &["--checksum", "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 1);
    assert_eq!(
        std::fs::read(env.stored().join("d1/f0001.txt")).unwrap(),
        vec![b'z'; 100]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_vanishes_after_listing_fails_alone() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(80)).await;
    let src = env.path("src");
    let names = util::small_files(&src, 30, 100);
    let child = spawn_upload(
        &env,
        &src,
        &["--concurrency", "1", "--no-wait", "--batch-files", "1"],
    )
    .await;
    // The walk of 30 files is long done once the first upload is in.
    util::wait_until("the first upload", || env.emu.stats().files_accepted >= 1).await;
    let last = names.iter().max().unwrap();
    std::fs::remove_file(src.join(last)).unwrap();
    let out = util::finish(child).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["uploaded"].as_u64(), s["failed"].as_u64()),
        (Some(29), Some(1))
    );
    assert_eq!(s["failures"][0]["path"], last.as_str());
    assert!(
        s["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("vanished"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_file_rewritten_while_it_is_sent_is_not_recorded_as_done() {
    // The emulator holds each request for a while before answering: time to rewrite it.
    // The file is larger than what is read whole, so it is streamed from disk.
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(700)).await;
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let first = vec![b'1'; 64 * 1024];
    let second = vec![b'2'; 80 * 1024];
    std::fs::write(src.join("moving.txt"), &first).unwrap();
    let child = spawn_upload(&env, &src, &["--no-wait"]).await;
    util::wait_until("the upload started", || {
        env.emu.stats().upload_requests >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(src.join("moving.txt"), &second).unwrap();
    let out = util::finish(child).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["uploaded"].as_u64(), s["changed"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(
        s["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("changed while it was being sent")
    );
    // The next run sends the current version and is clean.
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 1);
    assert_eq!(
        std::fs::read(env.stored().join("moving.txt")).unwrap(),
        second
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_is_sent_as_read_and_its_next_version_the_next_night() {
    // A small file is read whole before its request leaves and checked after the read
    // (rclone's habit): a rewrite during the send does not touch what was sent, so that
    // version is recorded, and the next run sends the new one.
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(700)).await;
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("moving.txt"), b"first version").unwrap();
    let child = spawn_upload(&env, &src, &["--no-wait"]).await;
    util::wait_until("the upload started", || {
        env.emu.stats().upload_requests >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(src.join("moving.txt"), b"second, longer version").unwrap();
    let out = util::finish(child).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 1);
    assert_eq!(
        std::fs::read(env.stored().join("moving.txt")).unwrap(),
        b"first version"
    );
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 1);
    assert_eq!(
        std::fs::read(env.stored().join("moving.txt")).unwrap(),
        b"second, longer version"
    );
    assert_eq!(env.emu.stats().upload_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_stops_at_once_and_the_journal_stays_consistent() {
    // Each request takes 4 s: a graceful drain would take that long.
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_secs(4)).await;
    let src = env.path("src");
    let names = util::small_files(&src, 6, 100);
    let child = spawn_upload(
        &env,
        &src,
        &["--concurrency", "2", "--no-wait", "--batch-files", "1"],
    )
    .await;
    let pid = child.id().unwrap().to_string();
    util::wait_until("two uploads in flight", || {
        env.emu.stats().upload_requests >= 2
    })
    .await;
    let started = std::time::Instant::now();
    for _ in 0..2 {
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = util::finish(child).await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let fast = util::emulator().await;
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &["--no-wait"]);
    let at = args.iter().position(|a| a == "--journal").unwrap();
    args.splice(at..at, ["--endpoint".to_string(), fast.emu.url()]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    // A journal belongs to one endpoint: pointing it elsewhere is refused, not mixed.
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("belongs to endpoint"),
        "{}",
        stderr(&out)
    );
    // The abandoned sends are sent again, and counted as possibly sent twice.
    let out = upload(&env, &src, &["--no-wait", "--concurrency", "6"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    // Nothing was confirmed before the hard stop (each answer takes 4 s): all are sent now.
    assert_eq!(s["uploaded"], names.len());
    assert!(s["resent_after_interrupt"].as_u64().unwrap() >= 2, "{s}");
    assert_same_tree(&src, &env.stored());
}
