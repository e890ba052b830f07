//! The night's verdict when the run itself is refused: a typo'd volume or a wrong key
//! stops the run with exit 2 or 3, marks no file failed, and leaves no journal behind.

use moi_ingest::emulator::Dialect;

use crate::util::{self, code, stderr};

/// An upload of `dir` to `volume` instead of the emulator's own.
async fn upload_to(env: &util::Env, dir: &std::path::Path, volume: &str) -> std::process::Output {
    let mut args = util::upload_args(env, &dir.display().to_string(), &[]);
    let at = args.iter().position(|a| a == "--volume").unwrap() + 1;
    args[at] = volume.into();
    util::command(env).args(&args).output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_volume_exits_2_fails_no_file_and_leaves_no_journal() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 199, 10);
    let out = upload_to(&env, &src, "123").await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("volume 123 does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--volume"), "{}", stderr(&out));
    assert_eq!(env.emu.stats().upload_requests, 0);
    assert!(
        !std::path::Path::new(&env.journal()).exists(),
        "a journal was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_catalog_the_breaker_counts_files_and_fails_none() {
    // The 2025 dialect has no /catalog/volume/info: the first upload tells.
    let env = util::emulator_with(|c| c.dialect = Dialect::Seed).await;
    let src = env.path("src");
    util::small_files(&src, 199, 10);
    let out = upload_to(&env, &src, "123").await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let s = util::summary(&out);
    assert_eq!(s["failed"], 0, "{s}");
    assert!(
        env.emu.stats().upload_requests <= 8,
        "199 files in requests of 32 should stop at the first refusals: {:?}",
        env.emu.stats()
    );
    let status = util::status_json(&env).await;
    assert_eq!(status["counts"]["failed"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_exits_3_and_leaves_no_journal() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 40, 10);
    let d = src.display().to_string();
    let out = util::command(&env)
        .env("MOI_KEY", "not-the-key")
        .args(util::upload_args(&env, &d, &[]))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!stderr(&out).contains("not-the-key"), "the key was printed");
    assert_eq!(env.emu.stats().upload_requests, 0);
    assert!(
        !std::path::Path::new(&env.journal()).exists(),
        "a journal was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_dies_mid_run_is_told_and_stops_the_run_with_every_file_pending() {
    let util::Env { dir, emu, volume } = util::emulator_with(|c| {
        c.faults.latency = std::time::Duration::from_millis(40);
    })
    .await;
    let addr = emu.addr;
    let env = util::Env { dir, emu, volume };
    let src = env.path("src");
    let names = util::small_files(&src, 120, 10);
    let d = src.display().to_string();
    let args = util::upload_args(
        &env,
        &d,
        &[
            "--batch-files",
            "1",
            "--concurrency",
            "2",
            "--unreachable-timeout",
            "3s",
        ],
    );
    let child = util::command(&env)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    util::wait_until("uploads arrive", || env.emu.stats().upload_requests >= 10).await;
    let util::Env { dir, emu, volume } = env;
    emu.stop().await;
    let out = util::finish(child).await;
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    let endpoint = format!("http://{addr}");
    assert!(
        err.contains(&format!("{endpoint} stopped answering")),
        "{err}"
    );
    assert!(err.contains("nothing was answered for"), "{err}");
    let s = util::summary(&out);
    assert_eq!(s["failed"], 0, "{s}");
    // Retries that reached nobody sent nothing: every byte counted as sent arrived.
    assert_eq!(s["sent_bytes"], s["uploaded_bytes"], "{s}");

    // The service is back (same address, same data): the next night finishes, once each.
    let mut cfg = moi_ingest::emulator::EmulatorConfig::new(dir.path().join("emulator"));
    cfg.api_key = Some(moi_ingest::secret::Secret::new(util::KEY));
    cfg.ingest_time = std::time::Duration::from_millis(100);
    let emu = moi_ingest::emulator::start(cfg, &addr.to_string())
        .await
        .unwrap();
    let env = util::Env { dir, emu, volume };
    let status = util::status_json(&env).await;
    assert_eq!(status["counts"]["failed"], 0, "{status}");
    assert!(
        status["counts"]["pending"].as_u64().unwrap() > 0,
        "{status}"
    );
    let out = util::upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    util::assert_once_per_path(&env, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_fails_its_night_only_and_retry_refused_sends_it_again() {
    let env = util::emulator_with(|c| c.faults.max_body_bytes = Some(1 << 20)).await;
    let src = env.path("src");
    util::small_files(&src, 4, 100);
    std::fs::write(src.join("huge.bin"), vec![7u8; 2 << 20]).unwrap();
    let metrics = env.path("night.prom").display().to_string();
    let mut exits = Vec::new();
    let mut refusals_after_night_1 = 0;
    for _ in 0..3 {
        let out = util::upload(&env, &src, &["--metrics-file", &metrics]).await;
        exits.push(code(&out));
        if exits.len() == 1 {
            refusals_after_night_1 = env.emu.stats().too_large;
        }
        let s = util::summary(&out);
        if exits.len() == 1 {
            assert_eq!(
                (s["failed"].as_u64(), s["refused"].as_u64()),
                (Some(1), Some(1)),
                "{s}"
            );
        } else {
            assert_eq!(
                (s["failed"].as_u64(), s["refused_earlier"].as_u64()),
                (Some(0), Some(1)),
                "{s}"
            );
            assert!(
                stderr(&out).contains("1 files refused earlier, unchanged since"),
                "{}",
                stderr(&out)
            );
        }
        let prom = std::fs::read_to_string(&metrics).unwrap();
        assert!(
            prom.lines()
                .any(|l| l.starts_with("moi_ingest_files_refused{") && l.ends_with(" 1")),
            "{prom}"
        );
    }
    assert_eq!(exits, [1, 0, 0]);
    assert_eq!(
        env.emu.stats().too_large,
        refusals_after_night_1,
        "the refused file was sent again"
    );
    // The morning after, status names it with the service's reason.
    let out = util::run(&env, &["status", "--journal", &env.journal()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("huge.bin") && text.contains("refused"),
        "{text}"
    );

    // The limit is raised: retry --refused sends it, plain retry does not.
    env.emu.set_faults(moi_ingest::emulator::Faults::default());
    let out = util::run(&env, &["retry", "--journal", &env.journal(), "--json"]).await;
    assert_eq!(util::summary(&out)["uploaded"], 0, "{}", stderr(&out));
    let out = util::run(
        &env,
        &["retry", "--refused", "--journal", &env.journal(), "--json"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(util::summary(&out)["uploaded"], 1);
    util::assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_folder_fails_the_night_and_status_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 14, 10);
    let out = util::upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = util::run(&env, &["status", "--journal", &env.journal()]).await;
    assert_eq!(
        code(&status),
        0,
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    let locked = src.join("d3");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let d = src.display().to_string();
    let mut cmd = util::command_as_user(&env);
    cmd.args(util::upload_args(&env, &d, &[]));
    let out = cmd.output().await.unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = util::summary(&out);
    assert_eq!(s["walk_errors"], 1, "{s}");
    assert_eq!(s["failures"][0]["stage"], "walk", "{s}");
    assert!(
        s["failures"][0]["path"].as_str().unwrap().ends_with("/d3"),
        "{s}"
    );
    // The morning after, status exits 1 for that night.
    let status = util::run(&env, &["status", "--journal", &env.journal()]).await;
    assert_eq!(
        code(&status),
        1,
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    // A good night after it: status is 0 again.
    let out = util::upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = util::run(&env, &["status", "--journal", &env.journal()]).await;
    assert_eq!(
        code(&status),
        0,
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journals_lists_the_state_folder_and_forgets_what_it_is_told() {
    let env = util::emulator_with(|c| {
        c.volumes.push(("42".into(), "second".into()));
    })
    .await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    let d = src.display().to_string();
    for volume in [env.volume.as_str(), "42"] {
        let out = util::run(&env, &["upload", &d, "--volume", volume, "--no-wait"]).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let out = util::run(&env, &["journals", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let second = listed.iter().find(|j| j["volume"] == "42").unwrap();
    assert_eq!(second["last_exit"], 0);
    assert_eq!(second["folder"], d.as_str());
    let path = second["path"].as_str().unwrap().to_string();

    // Nothing is that old: --older-than keeps both.
    let out = util::run(&env, &["journals", "forget", "--older-than", "1d"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::path::Path::new(&path).exists());
    // A path that is not one of them is refused, and nothing goes.
    let out = util::run(&env, &["journals", "forget", "/etc/passwd"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = util::run(&env, &["journals", "forget", &path]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!std::path::Path::new(&path).exists());
    assert!(!std::path::Path::new(&format!("{path}.lock")).exists());
    let out = util::run(&env, &["journals"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&path) && text.contains("volume 1889578498228068352"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_says_so_and_adopt_is_the_remedy() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = util::small_files(&src, 300, 10);
    let out = util::upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = env.emu.stats().files_accepted;
    // Rows damaged mid-file: the header and schema pages are left, the middle is not.
    let mut bytes = std::fs::read(env.journal()).unwrap();
    let (from, to) = (bytes.len() * 2 / 5, bytes.len() * 3 / 5);
    bytes[from..to].fill(0xA5);
    std::fs::write(env.journal(), &bytes).unwrap();

    // Found as the run opens it, before anything starts: exit 2, as a foreign journal.
    let out = util::upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is damaged") && err.contains("--adopt"),
        "{err}"
    );
    assert!(!err.contains("free space"), "{err}");

    // The remedy the message gives: aside, then --adopt. Nothing is sent twice.
    std::fs::rename(env.journal(), env.path("damaged.sqlite")).unwrap();
    let out = util::upload(&env, &src, &["--no-wait", "--adopt"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(util::summary(&out)["adopted"], 300);
    assert_eq!(env.emu.stats().files_accepted, sent);
    util::assert_once_per_path(&env, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_why_files_were_skipped_and_retry_what_it_sent() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    std::os::unix::fs::symlink(src.join("d0/f0000.txt"), src.join("link.txt")).unwrap();
    std::fs::write(src.join(".hidden"), "h").unwrap();
    std::fs::write(src.join("notes.tmp"), "t").unwrap();
    std::fs::write(src.join("big.bin"), vec![0u8; 5000]).unwrap();
    let fifo = src.join("pipe");
    util::mkfifo(&fifo);
    let out = util::upload(
        &env,
        &src,
        &["--exclude", "*.tmp", "--max-file-size", "1K", "--no-wait"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = util::summary(&out);
    let by = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(
        [
            by("skipped"),
            by("skipped_symlinks"),
            by("skipped_hidden"),
            by("skipped_filtered"),
            by("skipped_too_large"),
            by("skipped_special")
        ],
        [5, 1, 1, 1, 1, 1],
        "{s}"
    );
    let err = stderr(&out);
    assert!(err.contains("skipped: 1 symlinks not followed (--follow-symlinks), 1 hidden (--hidden), 1 left out by the filters, 1 over --max-file-size, 1 FIFOs, sockets or devices"), "{err}");

    let out = util::run(&env, &["retry", "--journal", &env.journal(), "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("retry: no failed upload to send again"),
        "{err}"
    );
    assert!(!err.contains("files seen"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_while_following_are_counted_not_logged_one_by_one() {
    let env = util::emulator_with(|c| {
        c.faults.seed = 9;
        c.faults.unavailable = 0.4;
    })
    .await;
    let src = env.path("src");
    let names = util::small_files(&src, 30, 10);
    let out = util::upload(&env, &src, &["--batch-files", "2"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = util::summary(&out);
    assert!(s["follow_transient"].as_u64().unwrap() > 0, "{s}");
    let err = stderr(&out);
    assert!(!err.contains("following ingestion:"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
    assert!(err.contains("busy answers (503, 429) waited out"), "{err}");
    util::assert_once_per_path(&env, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_by_the_window_is_known_not_stored() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names: Vec<String> = (0..3)
        .map(|i| {
            let rel = format!("big{i}.bin");
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join(&rel), vec![i as u8; 3 << 20]).unwrap();
            rel
        })
        .collect();
    let out = util::upload(
        &env,
        &src,
        &[
            "--max-duration",
            "1s",
            "--drain-timeout",
            "1s",
            "--bwlimit",
            "256K",
            "--batch-files",
            "1",
            "--concurrency",
            "3",
            "--no-wait",
        ],
    )
    .await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(util::summary(&out)["uploaded"], 0);
    assert_eq!(env.emu.stats().files_accepted, 0);

    // The next night sends them as files never stored, with no word of duplicates.
    let out = util::upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(util::summary(&out)["resent_after_interrupt"], 0);
    assert!(
        !stderr(&out).contains("previous run stopped"),
        "{}",
        stderr(&out)
    );
    util::assert_once_per_path(&env, &names);
}
