//! One copy per path through crashes and outages: answers lost after the files were
//! stored, and `kill -9` mid-night, in a tree whose base names repeat (`__init__.py`,
//! `index.md`), where the upload's `dedup` part cannot be trusted to replace by path.

use std::path::Path;
use std::time::Duration;

use moi_ingest::emulator::Faults;

use crate::util::{self, code, stderr, summary, upload};

/// `n` files whose base names repeat across folders.
fn repeated_names(root: &Path, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let rel = match i % 3 {
                0 => format!("src/pkg{i:03}/__init__.py"),
                1 => format!("site/page{i:03}/index.md"),
                _ => format!("docs/part{}/README", i / 3),
            };
            let p = root.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("body of {rel}\n")).unwrap();
            rel
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_lost_after_storing_leave_one_copy_per_path() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = repeated_names(&src, 60);
    let out = upload(&env, &src, &["--batch-files", "4"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Every file changes; the journal now knows the base names repeat, so no `dedup`
    // part goes out, and the outage loses answers of stored files.
    for n in &names {
        std::fs::write(src.join(n), format!("second version of {n}\n")).unwrap();
    }
    env.emu.set_faults(Faults {
        seed: 11,
        lost_answer: 0.3,
        ..Faults::default()
    });
    let out = upload(&env, &src, &["--batch-files", "4"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = env.emu.stats();
    assert!(stats.injected_lost_answer > 0, "{stats:?}");
    assert!(
        stats.duplicates > 0,
        "the outage left no second copy to remove: {stats:?}"
    );
    assert!(summary(&out)["copies_removed"].as_u64().unwrap() >= stats.duplicates);
    util::assert_once_per_path(&env, &names);
    util::assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_mid_night_leave_one_copy_per_path() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(20)).await;
    let src = env.path("src");
    let names = repeated_names(&src, 600);
    let d = src.display().to_string();
    let mut kills = 0;
    for round in 0..15 {
        let before = env.emu.stats().upload_requests;
        let mut child = util::command(&env)
            .args(util::upload_args(
                &env,
                &d,
                &["--batch-files", "2", "--concurrency", "4"],
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wanted = before + 8 + round;
        util::wait_until("uploads arrive", || {
            env.emu.stats().upload_requests >= wanted
        })
        .await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap();
            kills += 1;
        }
        let _ = child.wait().await;
    }
    assert!(
        kills >= 10,
        "the runs ended before they could be killed: {kills}"
    );
    env.emu.set_faults(Faults::default());
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    util::assert_once_per_path(&env, &names);
    util::assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_answers_among_good_ones_are_tried_again_in_the_same_night() {
    let env = util::emulator_with(|c| {
        c.faults = Faults {
            seed: 3,
            garbled: 0.3,
            ..Faults::default()
        };
    })
    .await;
    let src = env.path("src");
    let names = repeated_names(&src, 40);
    // One request at a time, so that the draws come in one order.
    let out = upload(&env, &src, &["--batch-files", "2", "--concurrency", "1"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = env.emu.stats();
    assert!(stats.injected_garbled >= 4, "{stats:?}");
    assert_eq!(summary(&out)["failed"], 0);
    util::assert_once_per_path(&env, &names);
    util::assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_night_is_ridden_out_with_one_copy_per_path() {
    let util::Env { dir, emu, volume } =
        util::emulator_with(|c| c.faults.latency = Duration::from_millis(30)).await;
    let addr = emu.addr;
    let env = util::Env { dir, emu, volume };
    let src = env.path("src");
    let names = repeated_names(&src, 150);
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Every file changes, so the night sends them all with no dedup part (their base
    // names repeat), and the service goes away mid-night with answers in flight.
    for n in &names {
        std::fs::write(src.join(n), format!("second version of {n}\n")).unwrap();
    }
    let d = src.display().to_string();
    let before = env.emu.stats().upload_requests;
    let child = util::command(&env)
        .args(util::upload_args(
            &env,
            &d,
            &[
                "--batch-files",
                "2",
                "--concurrency",
                "4",
                "--no-wait",
                "--unreachable-timeout",
                "20s",
            ],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    util::wait_until("uploads arrive", || {
        env.emu.stats().upload_requests >= before + 10
    })
    .await;
    let util::Env { dir, emu, volume } = env;
    emu.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut cfg = moi_ingest::emulator::EmulatorConfig::new(dir.path().join("emulator"));
    cfg.api_key = Some(moi_ingest::secret::Secret::new(util::KEY));
    let emu = moi_ingest::emulator::start(cfg, &addr.to_string())
        .await
        .unwrap();
    let env = util::Env { dir, emu, volume };
    let out = util::finish(child).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("stopped answering") && err.contains("answers again"),
        "{err}"
    );
    util::assert_once_per_path(&env, &names);
    util::assert_same_tree(&src, &env.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_pass_is_a_retry_even_without_the_catalog() {
    // The 2025 dialect: no catalog calls, so only the upload's dedup part can keep one
    // copy per path; a pass after the first must send it.
    let env = util::emulator_with(|c| {
        c.dialect = moi_ingest::emulator::Dialect::Seed;
        c.faults = Faults {
            seed: 4,
            lost_answer: 0.15,
            ..Faults::default()
        };
    })
    .await;
    let src = env.path("src");
    let names = util::small_files(&src, 40, 10);
    let out = upload(
        &env,
        &src,
        &[
            "--attempts",
            "1",
            "--retries",
            "5",
            "--batch-files",
            "1",
            "--concurrency",
            "1",
            "--no-wait",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = env.emu.stats();
    assert!(stats.injected_lost_answer > 0, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    util::assert_once_per_path(&env, &names);
}
