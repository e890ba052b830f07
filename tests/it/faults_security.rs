//! Faults on the wire, refusals, and secrets that must never show.

use moi_ingest::emulator::Faults;
use std::os::unix::fs::PermissionsExt;

use crate::util::{self, assert_same_tree, code, stderr, summary, upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_file_run_survives_a_hostile_network() {
    let env = util::emulator_with(|c| {
        c.faults = Faults {
            seed: 11,
            unavailable: 0.15,
            too_many: 0.05,
            retry_after_secs: 0,
            drop_connection: 0.05,
            error_code: 0.05,
            ..Faults::default()
        };
    })
    .await;
    let src = env.path("src");
    util::small_files(&src, 400, 700);
    // One file per request: every file meets the faults on its own.
    let out = upload(
        &env,
        &src,
        &[
            "--concurrency",
            "8",
            "--attempts",
            "10",
            "--batch-files",
            "1",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_same_tree(&src, &env.stored());
    let st = env.emu.stats();
    assert!(
        st.injected_unavailable > 20
            && st.injected_too_many > 3
            && st.injected_drop > 3
            && st.injected_error_code > 3,
        "{st:?}"
    );
    let s = summary(&out);
    assert!(s["retries"].as_u64().unwrap() >= st.injected_drop);
    assert_eq!(s["ingested"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_stops_the_run_with_exit_3_and_never_shows_the_key() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 30, 100);
    let secret = "sk-live-THIS-MUST-NOT-LEAK-42";
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &["-vv", "--concurrency", "2"]);
    args.push("--api-key".into());
    args.push(secret.into());
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains(secret), "the key leaked:\n{all}");
    assert!(
        all.contains("the API key (MOI_KEY or --api-key) was refused"),
        "{all}"
    );
    // The credential is checked before anything is sent or recorded.
    assert_eq!(env.emu.stats().upload_requests, 0, "{:?}", env.emu.stats());
    assert!(!std::path::Path::new(&env.journal()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_refusal_for_every_file_trips_the_breaker() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 200, 10);
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &["--batch-files", "1"]);
    let vol = args.iter().position(|a| a == "--volume").unwrap() + 1;
    args[vol] = "77".into();
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("volume 77 does not exist") && err.contains("--volume"),
        "{err}"
    );
    assert!(
        env.emu.stats().upload_requests < 20,
        "{:?}",
        env.emu.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_fails_that_file_and_max_file_size_skips_it() {
    let env = util::emulator_with(|c| c.faults.max_body_bytes = Some(1 << 20)).await;
    let src = env.path("src");
    util::small_files(&src, 5, 100);
    std::fs::write(src.join("huge.bin"), vec![7u8; 2 << 20]).unwrap();
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["uploaded"].as_u64(), s["failed"].as_u64()),
        (Some(5), Some(1))
    );
    assert!(
        s["failures"][0]["reason"].as_str().unwrap().contains("413"),
        "{s}"
    );
    assert_eq!(s["failures"][0]["path"], "huge.bin");
    // Refused once in its batch, then once on its own; never retried as it is.
    let refused = env.emu.stats().too_large;
    assert_eq!(refused, 2, "a 413 is not retried");

    let out = upload(&env, &src, &["--max-file-size", "1M"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.emu.stats().too_large,
        refused,
        "--max-file-size must skip it up front"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_aborted_and_sent_again() {
    let env = util::emulator_with(|c| {
        c.faults.seed = 6;
        c.faults.stall = 0.3;
    })
    .await;
    let src = env.path("src");
    util::small_files(&src, 10, 300_000);
    let out = upload(
        &env,
        &src,
        &["--idle-timeout", "1s", "--no-wait", "--attempts", "10"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.emu.stats().injected_stall > 0);
    assert_same_tree(&src, &env.stored());
}

/// A file that failed only transiently says what its last attempt met, so the morning's
/// log names the cause (a 503 here) instead of only "transiently".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_failed_transiently_names_its_last_error() {
    let env = util::emulator_with(|c| c.faults.unavailable = 1.0).await;
    let src = env.path("src");
    util::small_files(&src, 2, 100);
    let out = upload(&env, &src, &["--attempts", "2", "--no-wait"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("every attempt failed transiently, the last:") && err.contains("HTTP 503"),
        "{err}"
    );
}

/// A file whose bad spell outlasts its `--attempts` and the first pass at the end of the
/// run still arrives on a later pass (`--retries`, rclone's default of 3); with fewer passes
/// it fails, named, and the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_give_a_file_in_a_bad_spell_more_passes() {
    let run = |passes: &'static str| async move {
        let env = util::emulator_with(|c| {
            // Two attempts in each of the first two passes.
            c.faults.unavailable_name = Some(("d1/f0001.txt".into(), 4));
        })
        .await;
        let src = env.path("src");
        let names = util::small_files(&src, 3, 100);
        let out = upload(
            &env,
            &src,
            &[
                "--attempts",
                "2",
                "--retries",
                passes,
                "--batch-files",
                "1",
                "--no-wait",
            ],
        )
        .await;
        (env, src, names, out)
    };
    let (env, src, names, out) = run("3").await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("(pass 3 of 3)"), "{}", stderr(&out));
    assert_eq!(env.emu.stats().injected_unavailable, 4);
    assert_same_tree(&src, &env.stored());
    util::assert_once_per_path(&env, &names);

    let (env, _src, _names, out) = run("2").await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("d1/f0001.txt") && err.contains("every attempt failed transiently, the last:"),
        "{err}"
    );
    assert_eq!(summary(&out)["uploaded"], 2, "{err}");
    assert!(!env.stored().join("d1/f0001.txt").exists());
}

/// `--idle-timeout` is about bytes that stop moving, not about how long a body takes: a
/// file that needs longer than the timeout to send, at a steady pace, arrives in one
/// request. (reqwest's read timeout, which the client once set, ran from the start of the
/// request to the answer's headers and cut such uploads off, every attempt.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_longer_than_the_idle_timeout_arrives_while_its_bytes_move() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 1, 2_500_000);
    let out = upload(
        &env,
        &src,
        &["--bwlimit", "1M", "--idle-timeout", "1s", "--no-wait"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_same_tree(&src, &env.stored());
    let st = env.emu.stats();
    assert_eq!(st.upload_requests, 1, "sent once, never cut off: {st:?}");
    assert_eq!(summary(&out)["retries"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_data_is_owner_only() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 1, 10);
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.path("emulator")), 0o700);
    assert_eq!(mode(&env.path("emulator/emulator.sqlite")), 0o600);
    let stored = walkdir::WalkDir::new(env.stored())
        .into_iter()
        .flatten()
        .find(|e| e.file_type().is_file())
        .unwrap();
    assert_eq!(mode(stored.path()), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_answering_html_stops_the_run_quickly() {
    let env = util::emulator().await;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {
            (
                [("content-type", "text/html")],
                "<html><body>Please sign in to the proxy</body></html>",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let src = env.path("src");
    util::small_files(&src, 200, 10);
    let d = src.display().to_string();
    // One file per request, so that "stopped early" means far fewer requests than files.
    let mut args = util::upload_args(&env, &d, &["--batch-files", "1"]);
    args.extend(["--endpoint".to_string(), proxy]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not MOI's JSON envelope") && err.contains("Please sign in"),
        "{err}"
    );
    let n = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n < 20, "{n} requests: {err}");
}

/// An endpoint that redirects is not followed, for uploads or any other call: the key
/// would go along to wherever the redirect points. The run says where it points (without
/// its query, which may hold a token) and what to do, and stops early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_endpoint_is_named_and_never_followed() {
    let env = util::emulator().await;
    let elsewhere = env.emu.url();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let to = format!("{elsewhere}{}?token=not-for-the-log", uri.path());
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", to)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let src = env.path("src");
    util::small_files(&src, 30, 10);
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &["--batch-files", "1"]);
    args.extend(["--endpoint".to_string(), front.clone()]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    let upload_to = format!(
        "redirects this call to {}/connectors/upload.",
        env.emu.url()
    );
    assert!(
        err.contains(&upload_to) && err.contains("--endpoint") && !err.contains("not-for-the-log"),
        "{err}"
    );

    // A call through the other client (a GET, which a redirect-following client would
    // repeat at the new address with every header).
    let out = util::run(&env, &["task", "list", "--endpoint", &front]).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("redirects this call to"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.emu.stats().requests,
        0,
        "a request reached the redirect's target"
    );
}

/// The independent fault mix (about 30% transient answers) with the default attempts and
/// batching: every file arrives, because files that ran out of attempts get more passes at
/// the end of the run (`--retries`). `benches/fault_mix.sh` runs this 20 times in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_arrives_through_a_30_percent_transient_mix_with_default_attempts() {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let env = util::emulator_with(|c| {
        c.faults = Faults {
            seed,
            unavailable: 0.12,
            too_many: 0.06,
            retry_after_secs: 0,
            drop_connection: 0.06,
            error_code: 0.06,
            ..Faults::default()
        };
    })
    .await;
    let src = env.path("src");
    let names = util::small_files(&src, 400, 700);
    let out = upload(&env, &src, &["--batch-files", "1", "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 400);
    assert_same_tree(&src, &env.stored());
    util::assert_once_per_path(&env, &names);
}
