//! Connectors, connector load tasks, export tasks and login, through the real binary
//! against the emulator; and no connector secret in any output without --show-secrets.

use std::time::Duration;

use crate::util::{self, Env, code, stderr, summary};

const SOURCE_SECRET: &str = "oss-secret-Admin123-7f3c";

async fn run_with_secret(env: &Env, args: &[&str]) -> std::process::Output {
    let out = util::command(env)
        .env("MOI_SOURCE_SECRET", SOURCE_SECRET)
        .args(args)
        .output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap()
}

fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_from_create_to_delete_with_secrets_kept_secret() {
    let env = util::emulator().await;
    let mut outputs = Vec::new();
    let create = [
        "connector",
        "create",
        "--name",
        "papers-oss",
        "--type",
        "oss",
        "--source-endpoint",
        "oss-cn-hangzhou.aliyuncs.com",
        "--bucket",
        "papers",
        "--access-key-id",
        "AKID",
    ];
    let out = run_with_secret(&env, &create).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    outputs.push(all_output(&out));

    // Listed with its id; the secret masked in human and JSON output.
    let out = run_with_secret(&env, &["connector", "list", "--json", "--all"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = summary(&out);
    assert_eq!(list["total"], 1);
    let c = &list["connectors"][0];
    assert_eq!(c["oss"]["access_key_secret"], "***");
    assert_eq!(c["oss"]["bucket_name"], "papers");
    let id = c["id"].as_str().unwrap().to_string();
    outputs.push(all_output(&out));
    let out = run_with_secret(&env, &["connector", "list"]).await;
    outputs.push(all_output(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("papers-oss"));
    // Asked for, it shows.
    let out = run_with_secret(&env, &["connector", "list", "--json", "--show-secrets"]).await;
    assert_eq!(
        summary(&out)["connectors"][0]["oss"]["access_key_secret"],
        SOURCE_SECRET
    );

    // Validate by id, and settings that miss what the type needs.
    let out = run_with_secret(&env, &["connector", "validate", &id, "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["valid"], true);
    let body = env.path("bad.json");
    std::fs::write(&body, r#"{"source_type": 4, "oss": {"endpoint": "e", "access_key_id": "a", "access_key_secret": "", "bucket_name": "b"}}"#).unwrap();
    let b = body.display().to_string();
    let out = run_with_secret(&env, &["connector", "validate", "--body", &b]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    outputs.push(all_output(&out));

    // Update, files (filtered by type), summary.
    let out = run_with_secret(
        &env,
        &["connector", "update", &id, "--name", "papers-renamed"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(
        &env,
        &["connector", "files", &id, "--file-types", "2,10", "--json"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let files = summary(&out);
    let types: Vec<i64> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_i64().unwrap())
        .collect();
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == 2 || *t == 10),
        "{files}"
    );
    let out = run_with_secret(&env, &["connector", "summary", "--json"]).await;
    assert_eq!(summary(&out)["total"], 1);

    // A load task from the connector: listed, followed, updated.
    let vol = env.volume.clone();
    let out = run_with_secret(
        &env,
        &[
            "task",
            "create",
            "--connector",
            &id,
            "--volume",
            &vol,
            "--uri",
            "reports/2024-annual.pdf",
            "--uri",
            "notes/readme.md",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["task", "list", "--json"]).await;
    let task = summary(&out)["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_with_secret(&env, &["task", "files", &task, "--json"]).await;
    assert_eq!(summary(&out)["total"], 2);
    let out = run_with_secret(&env, &["task", "update", &task, "--interval-type", "daily"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["connector", "list", "--json"]).await;
    assert_eq!(
        summary(&out)["connectors"][0]["related_task_ids"][0]
            .to_string()
            .trim_matches('"'),
        task
    );

    // Delete, and an unknown one is refused with the service's message and request_id.
    let out = run_with_secret(&env, &["connector", "delete", &id, "--yes"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["connector", "delete", &id, "--yes"]).await;
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("does not exist") && err.contains("request_id"),
        "{err}"
    );

    // Never the secret, in any of it.
    for o in outputs {
        assert!(!o.contains(SOURCE_SECRET), "the secret leaked: {o}");
    }
    // A refused key is exit 3.
    let out = util::command(&env)
        .env("MOI_KEY", "wrong")
        .args(["connector", "list"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_tasks_from_create_to_delete() {
    let env = util::emulator_with(|c| {
        c.faults.always_fail_suffix = Some(".bad".into());
        c.ingest_time = Duration::from_millis(100);
    })
    .await;
    let out = run_with_secret(
        &env,
        &[
            "export",
            "create",
            "--name",
            "to-dify",
            "--connector",
            "1",
            "--type",
            "dify",
            "--dataset-id",
            "ds_123",
            "--file",
            "file_1=data/a.pdf",
            "--file",
            "file_2=data/broken.bad",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The seed's own S3 body, through --body.
    let body = env.path("s3.json");
    std::fs::write(&body, include_str!("../fixtures/seed_export_s3.json")).unwrap();
    let b = body.display().to_string();
    let out = run_with_secret(&env, &["export", "create", "--body", &b]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = run_with_secret(&env, &["export", "list", "--json", "--all", "--limit", "1"]).await;
    let list = summary(&out);
    assert_eq!(
        (
            list["total"].as_u64(),
            list["tasks"].as_array().unwrap().len()
        ),
        (Some(2), 2)
    );
    let id = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "to-dify")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.emu.advance(Duration::from_millis(300));
    let out = run_with_secret(&env, &["export", "info", &id, "--json"]).await;
    let info = summary(&out);
    assert_eq!(info["file_stats"]["total"], 2);
    assert_eq!(info["file_stats"]["fileFail"], 1);
    let out = run_with_secret(&env, &["export", "files", &id, "--status", "4", "--json"]).await;
    let files = summary(&out);
    assert_eq!(files["files"][0]["file_name"], "broken.bad");
    let out = run_with_secret(&env, &["export", "files", &id]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 exported, 1 failed"));

    // Rerun: the failed file goes back to pending.
    let out = run_with_secret(&env, &["export", "rerun", &id]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["export", "info", &id, "--json"]).await;
    let stats = &summary(&out)["file_stats"];
    assert_eq!(stats["failed"], 0, "{stats}");
    let out = run_with_secret(&env, &["export", "delete", &id, "--yes"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["export", "info", &id]).await;
    assert_eq!(code(&out), 1);
    // A body that misses its type's config is refused before it is sent.
    std::fs::write(&body, r#"{"task_name": "x", "connector_id": 1, "type": 3, "config": {}, "files": [{"file_id": "f", "full_path": ["a"]}]}"#).unwrap();
    let out = run_with_secret(&env, &["export", "create", "--body", &b]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("mo_config"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_checks_a_session_and_says_when_it_expires() {
    let env = util::emulator_with(|c| {
        c.logins.push(moi_ingest::emulator::Login {
            account: "acme".into(),
            username: "alice".into(),
            password: moi_ingest::secret::Secret::new("pa55-word-9"),
        });
    })
    .await;
    let mut c = util::command(&env);
    c.env_remove("MOI_KEY")
        .env("MOI_ACCOUNT", "acme")
        .env("MOI_USERNAME", "alice")
        .env("MOI_PASSWORD", "pa55-word-9")
        .args(["login", "--json"]);
    let out = c.output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["username"], "alice");
    assert!(
        s["expires"].as_str().unwrap().len() == "2026-11-23 02:15:07".len(),
        "{s}"
    );
    let mut c = util::command(&env);
    c.env("MOI_ACCOUNT", "acme")
        .env("MOI_USERNAME", "alice")
        .env("MOI_PASSWORD", "nope-nope")
        .args(["login"]);
    let out = c.output().await.unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!all_output(&out).contains("nope-nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_and_export_tasks_survive_an_emulator_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("emu");
    let start = |data: &std::path::Path| {
        moi_ingest::emulator::start(
            moi_ingest::emulator::EmulatorConfig::new(data),
            "127.0.0.1:0",
        )
    };
    let client = |url: &str| {
        moi_ingest::api::Client::new(
            &url.parse().unwrap(),
            moi_ingest::api::Credentials::ApiKey(moi_ingest::secret::Secret::new("k-restart")),
            moi_ingest::api::ClientOptions::default(),
        )
        .unwrap()
    };
    use moi_ingest::api::calls;
    use moi_ingest::api::model::*;
    let emu = start(&data).await.unwrap();
    let c = client(&emu.url());
    let create = CreateConnector {
        name: "kept".into(),
        source_type: source_type::DIFY,
        config: SourceConfigs {
            dify: Some(DifyConfig {
                api_key: "dify-key-1234".into(),
                api_url: "https://dify".into(),
            }),
            ..SourceConfigs::default()
        },
        usage_type: None,
    };
    c.send(&calls::CreateConnector { body: &create })
        .await
        .unwrap();
    let export: ExportCreate =
        serde_json::from_str(include_str!("../fixtures/seed_export_s3.json")).unwrap();
    c.send(&calls::CreateExport { body: &export })
        .await
        .unwrap();
    emu.stop().await;

    let emu = start(&data).await.unwrap();
    let c = client(&emu.url());
    let list = c
        .send(&calls::ListConnectors {
            page: 1,
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((list.total, list.connectors[0].name.as_str()), (1, "kept"));
    let tasks = c
        .send(&calls::ListExports {
            body: &ExportListQuery::default(),
        })
        .await
        .unwrap();
    assert_eq!(tasks.total, 1);
}

/// `--body` goes out as written: no field the file lacks is added, since a `PUT` with a
/// default (`"region": ""`) would blank a stored setting. `export list` takes one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_sent_as_the_user_wrote_it() {
    let env = util::emulator().await;
    let (url, mut seen) =
        crate::api_wire::recorder(r#"{"code": "OK", "msg": "OK", "data": {}}"#).await;
    let written = r#"{"s3": {"endpoint": "s3.example.com", "bucket_name": "b", "access_key_id": "AKID", "access_key_secret": "s3cret-77"}}"#;
    let body = env.path("update.json");
    std::fs::write(&body, written).unwrap();
    let b = body.display().to_string();
    let out = util::command(&env)
        .env("MOI_ENDPOINT", &url)
        .args(["connector", "update", "42", "--body", &b])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = seen.recv().await.unwrap();
    assert_eq!(got.method, "PUT");
    assert_eq!(got.uri.path(), "/connectors/42");
    let sent: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    let want: serde_json::Value = serde_json::from_str(written).unwrap();
    assert_eq!(sent, want, "fields were added to the body");

    let list = env.path("list.json");
    std::fs::write(&list, r#"{"offset": 0, "limit": 5, "creator": "ana"}"#).unwrap();
    let l = list.display().to_string();
    let out = util::command(&env)
        .env("MOI_ENDPOINT", &url)
        .args(["export", "list", "--body", &l, "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = seen.recv().await.unwrap();
    assert!(got.uri.path().ends_with("/export/task/list"), "{}", got.uri);
    let sent: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"offset": 0, "limit": 5, "creator": "ana"})
    );
}

/// A flag-form update changes only what it names: the stored settings are read and sent
/// back, so `--bucket` alone keeps the region, the path style and the secret, which need
/// not be given again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_by_flags_changes_only_the_settings_it_names() {
    let env = util::emulator().await;
    let create = [
        "connector",
        "create",
        "--name",
        "archive",
        "--type",
        "s3",
        "--source-endpoint",
        "s3.example.com",
        "--bucket",
        "old-bucket",
        "--access-key-id",
        "AKID",
        "--region",
        "eu-west-1",
        "--path-style",
    ];
    let out = run_with_secret(&env, &create).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed = |out: &std::process::Output| summary(out)["connectors"][0].clone();
    let out = run_with_secret(&env, &["connector", "list", "--json", "--show-secrets"]).await;
    let before = listed(&out);
    let id = before["id"].as_str().unwrap().to_string();

    // No MOI_SOURCE_SECRET: the stored one goes back.
    let out = util::run(
        &env,
        &["connector", "update", &id, "--bucket", "new-bucket"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_with_secret(&env, &["connector", "list", "--json", "--show-secrets"]).await;
    let after = listed(&out);
    assert_eq!(after["s3"]["bucket_name"], "new-bucket");
    for field in [
        "endpoint",
        "access_key_id",
        "region",
        "path_style",
        "access_key_secret",
    ] {
        assert_eq!(after["s3"][field], before["s3"][field], "{field} changed");
    }
    assert_eq!(after["name"], "archive");
    assert_eq!(after["s3"]["access_key_secret"], SOURCE_SECRET);

    // Nothing to change is refused before anything is sent.
    let out = util::run(&env, &["connector", "update", &id]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to change"),
        "{}",
        stderr(&out)
    );
}
