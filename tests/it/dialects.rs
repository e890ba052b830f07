//! The pipeline against both dialects of the emulator, and the dedup policy that keeps one
//! file per path without ever risking another file.

use std::time::Duration;

use moi_ingest::emulator::Dialect;

use crate::util::{
    self, Env, assert_once_per_path, assert_same_tree, code, stderr, summary, upload,
};

const UUID_VOLUME: &str = "019b39fc-f4ee-7915-b701-66ae6a48d9fc";

async fn env_for(dialect: Dialect, volume: &str) -> Env {
    util::emulator_with(|c| {
        c.dialect = dialect;
        c.volumes = vec![(volume.to_string(), "papers".to_string())];
        // A third of the loads fail at first, so follow and /task/retry are exercised.
        c.faults.seed = 3;
        c.faults.ingest_failure = 0.3;
    })
    .await
}

/// Upload, rerun, change and add, kill -9 and resume, follow and retry: one life of a
/// folder, with the checks a user would make after each night.
async fn a_folders_life(dialect: Dialect, volume: &str) {
    let env = env_for(dialect, volume).await;
    let src = env.path("src");
    let mut names = util::corpus(&src);
    // (c) identical bytes at two paths are two files.
    for n in ["LICENSE", "vendor/LICENSE"] {
        std::fs::create_dir_all(src.join(n).parent().unwrap()).unwrap();
        std::fs::write(src.join(n), b"Apache License 2.0").unwrap();
        names.push(n.to_string());
    }

    // Enough retries that a 30% failure rate cannot exhaust them (0.3^11).
    let out = upload(&env, &src, &["--max-retries", "10"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["uploaded"], names.len());
    assert_eq!(s["ingested"], names.len(), "{s}");
    assert!(env.emu.stats().retried_files > 0, "no load was retried");
    assert_same_tree(&src, &env.stored());
    assert_once_per_path(&env, &names);

    // A rerun sends nothing.
    let requests = env.emu.stats().upload_requests;
    let out = upload(&env, &src, &["--max-retries", "10"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 0);
    assert_eq!(env.emu.stats().upload_requests, requests);

    // (a) A changed file replaces its earlier version; a new one is added.
    std::fs::write(src.join("many/file-03.txt"), b"the new version, shorter").unwrap();
    std::fs::write(src.join("added.txt"), b"new").unwrap();
    names.push("added.txt".into());
    let out = upload(&env, &src, &["--max-retries", "10"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 2);
    assert_same_tree(&src, &env.stored());
    assert_once_per_path(&env, &names);
    let st = env.emu.stats();
    assert_eq!((st.duplicates, st.dedup_replaced), (0, 1), "{st:?}");

    // (b) Files in flight at a kill -9 end as one file per path after the next run.
    for i in 0..40 {
        let n = format!("later/f{i:02}.txt");
        std::fs::create_dir_all(src.join("later")).unwrap();
        std::fs::write(src.join(&n), format!("file {i}")).unwrap();
        names.push(n);
    }
    env.emu.set_faults(moi_ingest::emulator::Faults {
        latency: Duration::from_millis(100),
        ..Default::default()
    });
    let d = src.display().to_string();
    let args = util::upload_args(&env, &d, &["--batch-files", "4", "--no-wait"]);
    let mut child = util::command(&env)
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let accepted = env.emu.stats().files_accepted;
    util::wait_until("some uploads were accepted", || {
        env.emu.stats().files_accepted >= accepted + 8
    })
    .await;
    child.kill().await.unwrap();
    env.emu.set_faults(Default::default());
    let out = upload(&env, &src, &["--max-retries", "10"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_same_tree(&src, &env.stored());
    assert_once_per_path(&env, &names);
    assert_eq!(env.emu.stats().duplicates, 0);

    // The journal and the service agree.
    let out = util::run(
        &env,
        &[
            "verify",
            &d,
            "--volume",
            volume,
            "--journal",
            &env.journal(),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folders_life_in_the_sdk_dialect_with_a_uuid_volume() {
    a_folders_life(Dialect::Sdk, UUID_VOLUME).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folders_life_in_the_seed_dialect_with_a_numeric_volume() {
    a_folders_life(Dialect::Seed, "1889578498228068352").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_off_sends_no_part_and_skip_keeps_the_old_version() {
    let env = util::emulator().await;
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"first").unwrap();
    let out = upload(&env, &src, &["--dedup", "off"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Off: no dedup part, so the service keeps both versions at the path.
    std::fs::write(src.join("a.txt"), b"second!").unwrap();
    let out = upload(&env, &src, &["--dedup", "off"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = env.emu.stats();
    assert_eq!((st.dedup_parts, st.duplicates), (0, 1), "{st:?}");

    // Skip: the service keeps what it has.
    std::fs::write(src.join("a.txt"), b"third!!!").unwrap();
    let out = upload(&env, &src, &["--dedup", "skip"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = env.emu.stats();
    assert_eq!((st.dedup_parts, st.dedup_skipped), (1, 1), "{st:?}");
    assert_eq!(
        std::fs::read(env.stored().join("a.txt")).unwrap(),
        b"second!"
    );

    // Replace: one version again, the newest.
    std::fs::write(src.join("a.txt"), b"fourth").unwrap();
    let out = upload(&env, &src, &["--dedup", "replace"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(env.stored().join("a.txt")).unwrap(),
        b"fourth"
    );
    assert_once_per_path(&env, &["a.txt".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_dedup_never_replaces_by_a_shared_base_name() {
    // Were `name` the base name, a replace for a/report.pdf would hit b/report.pdf: such a
    // file is sent again without a dedup part.
    let env = util::emulator().await;
    let src = env.path("src");
    util::corpus(&src);
    let out = upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let parts = env.emu.stats().dedup_parts;
    std::fs::write(src.join("a/report.pdf"), b"changed").unwrap();
    std::fs::write(src.join("many/file-00.txt"), b"changed too").unwrap();
    let out = upload(&env, &src, &["--no-wait", "--batch-files", "1"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = env.emu.stats();
    // file-00.txt has a unique base name: replaced. report.pdf: sent without dedup.
    assert_eq!(st.dedup_parts, parts + 1, "{st:?}");
    assert_eq!((st.dedup_replaced, st.duplicates), (1, 1), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_puts_every_path_under_a_folder_of_the_volume() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = util::small_files(&src, 5, 10);
    let out = upload(&env, &src, &["--prefix", "/nightly/papers/", "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want: Vec<String> = names
        .iter()
        .map(|n| format!("nightly/papers/{n}"))
        .collect();
    assert_once_per_path(&env, &want);
    let out = upload(&env, &src, &["--prefix", "../up"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--prefix"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_what_the_service_lost() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 6, 10);
    let out = upload(&env, &src, &["--batch-files", "3", "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let journal = env.journal();
    let out = util::run(&env, &["verify", "--journal", &journal]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // How many requests six files took depends on how fast the walk fed the planner.
    assert!(
        stderr(&out).contains("verify: 6 files in "),
        "{}",
        stderr(&out)
    );

    // The service loses a task: its files are missing, and verify says which.
    let tasks = util::run(&env, &["task", "list", "--json"]).await;
    let task = summary(&tasks)["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let in_task = summary(&util::run(&env, &["task", "files", &task, "--json"]).await)["total"]
        .as_u64()
        .unwrap();
    let out = util::run(&env, &["task", "delete", &task, "--yes"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = util::run(&env, &["verify", "--journal", &journal, "--json"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = summary(&out);
    assert_eq!(
        report["missing"].as_array().unwrap().len() as u64,
        in_task,
        "{report}"
    );
    assert!(in_task > 0);
    assert_eq!(report["missing"][0]["task_id"], task.as_str());
}
