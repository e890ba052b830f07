//! `moi-ingest task ...` against the emulator.

use crate::util::{self, code, stderr, summary, upload};

fn json_line(out: &std::process::Output) -> serde_json::Value {
    summary(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_command_lists_inspects_retries_and_steers_tasks() {
    let env = util::emulator_with(|c| c.faults.always_fail_suffix = Some(".bad".into())).await;
    let src = env.path("src");
    util::small_files(&src, 2, 10);
    std::fs::write(src.join("broken.bad"), b"x").unwrap();
    let out = upload(&env, &src, &["--max-retries", "0", "--batch-files", "1"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let failure = &summary(
        &util::run(&env, &["status", "--journal", &env.journal(), "--json"]).await,
    )["failures"][0];
    let (task, file) = (
        failure["task_id"].as_str().unwrap(),
        failure["file_id"].as_str().unwrap(),
    );

    let list = util::run(&env, &["task", "list", "--json"]).await;
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    assert_eq!(json_line(&list)["total"], 3);

    let files = util::run(&env, &["task", "files", task, "--status", "4", "--json"]).await;
    let files = json_line(&files);
    assert_eq!(files["files"][0]["id"], file);
    assert_eq!(files["files"][0]["status"], 4);

    let human = util::run(&env, &["task", "files", task]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("4 (failed)") && text.contains("/demo-volume/broken.bad"),
        "{text}"
    );
    // A task for people: its status with the name, times as local dates.
    let human = util::run(&env, &["task", "get", task]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("status: 4 (completed)"), "{text}");
    assert!(text.contains(&format!("task {task}")), "{text}");
    let created = text.lines().find(|l| l.starts_with("created: ")).unwrap();
    assert_eq!(
        created.len(),
        "created: 2026-11-23 02:15:07".len(),
        "{created}"
    );

    let retry = util::run(&env, &["task", "retry", task, file]).await;
    assert_eq!(code(&retry), 0, "{}", stderr(&retry));
    assert_eq!(env.emu.stats().retried_files, 1);

    let list = util::run(&env, &["task", "list"]).await;
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("status 4 (completed)"), "{text}");

    for action in ["pause", "resume", "delete"] {
        let out = util::run(&env, &["task", action, task]).await;
        assert_eq!(code(&out), 0, "{action}: {}", stderr(&out));
    }
    let gone = util::run(&env, &["task", "get", task]).await;
    assert_eq!(code(&gone), 1);
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    let bad = util::run(&env, &["task", "get", "not-an-id"]).await;
    assert_eq!(code(&bad), 2);
}
