//! The emulator refuses bad requests clearly, stores what it accepts, and renews sessions.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use moi_ingest::api::calls;
use moi_ingest::api::lenient::Code;
use moi_ingest::api::model::{RetryFiles, TaskListQuery};
use moi_ingest::api::{Client, ClientOptions, Credentials, ErrorKind, UploadSource, VolumeId};
use moi_ingest::emulator::{DEFAULT_VOLUME, Login};
use moi_ingest::secret::Secret;
use moi_ingest::walk::mtime_ns;
use reqwest::multipart::{Form, Part};

use crate::util::{self, KEY};

async fn raw_upload(url: &str, key: Option<&str>, form: Form) -> (u16, serde_json::Value) {
    let mut rb = reqwest::Client::new()
        .post(format!("{url}/connectors/upload"))
        .multipart(form);
    if let Some(k) = key {
        rb = rb.header("moi-key", k);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn form(volume: &str, meta: &str, files: &[(&str, &[u8])]) -> Form {
    let mut f = Form::new();
    for (name, body) in files {
        f = f.part(
            "file",
            Part::bytes(body.to_vec()).file_name(name.to_string()),
        );
    }
    f.text("VolumeID", volume.to_string())
        .text("meta", meta.to_string())
}

fn meta(name: &str, size: usize) -> String {
    serde_json::json!([{"file_name": name, "file_size": size, "mime_type": "text/plain"}])
        .to_string()
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let env = util::emulator().await;
    let url = env.emu.url();
    let vol = DEFAULT_VOLUME.to_string();
    let ok_meta = meta("a.txt", 3);
    let cases: Vec<(&str, Option<&str>, Form, u16, &str)> = vec![
        (
            "no key",
            None,
            form(&vol, &ok_meta, &[("a.txt", b"abc")]),
            401,
            "moi-key",
        ),
        (
            "wrong key",
            Some("nope-nope"),
            form(&vol, &ok_meta, &[("a.txt", b"abc")]),
            401,
            "API key",
        ),
        (
            "unknown volume",
            Some(KEY),
            form("42", &ok_meta, &[("a.txt", b"abc")]),
            404,
            "volume 42",
        ),
        (
            "meta not array",
            Some(KEY),
            form(
                &vol,
                r#"{"file_name":"a.txt","file_size":3}"#,
                &[("a.txt", b"abc")],
            ),
            400,
            "array",
        ),
        (
            "count mismatch",
            Some(KEY),
            form(&vol, &ok_meta, &[("a.txt", b"abc"), ("b.txt", b"d")]),
            400,
            "1 files but the request carries 2",
        ),
        (
            "size mismatch",
            Some(KEY),
            form(&vol, &meta("a.txt", 9), &[("a.txt", b"abc")]),
            400,
            "file_size 9",
        ),
        (
            "dot dot",
            Some(KEY),
            form(&vol, &meta("../escape.txt", 3), &[("x", b"abc")]),
            400,
            "..",
        ),
        (
            "absolute",
            Some(KEY),
            form(&vol, &meta("/etc/passwd", 3), &[("x", b"abc")]),
            400,
            "absolute",
        ),
        (
            "backslash",
            Some(KEY),
            form(&vol, &meta("..\\x", 3), &[("x", b"abc")]),
            400,
            "backslash",
        ),
        (
            "nul",
            Some(KEY),
            form(&vol, &meta("a\u{0}b", 3), &[("x", b"abc")]),
            400,
            "NUL",
        ),
        (
            "too long",
            Some(KEY),
            form(&vol, &meta(&"n".repeat(300), 3), &[("x", b"abc")]),
            400,
            "255",
        ),
        (
            "no volume",
            Some(KEY),
            Form::new()
                .part("file", Part::bytes(b"abc".to_vec()).file_name("a.txt"))
                .text("meta", ok_meta.clone()),
            400,
            "VolumeID",
        ),
        (
            "old data part",
            Some(KEY),
            Form::new().part("data", Part::bytes(b"abc".to_vec()).file_name("a.txt")),
            400,
            "unexpected part 'data'",
        ),
    ];
    for (what, key, f, status, needle) in cases {
        let (got, body) = raw_upload(&url, key, f).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_ne!(
            body["code"].as_str().unwrap().to_ascii_lowercase(),
            "ok",
            "{what}"
        );
        assert!(
            body["msg"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
    // Nothing was stored by any of them, and no stray temp file is left.
    assert_eq!(env.emu.stats().files_accepted, 0);
    assert_eq!(
        std::fs::read_dir(env.path("emulator/tmp")).unwrap().count(),
        0
    );
    assert!(!env.path("escape.txt").exists());
}

#[tokio::test]
async fn a_file_uploaded_through_the_client_arrives_byte_identical() {
    let env = util::emulator().await;
    let src = env.path("src.bin");
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(7) % 256) as u8)
        .collect();
    std::fs::write(&src, &bytes).unwrap();
    let m = std::fs::metadata(&src).unwrap();
    let client = Client::new(
        &env.emu.url().parse().unwrap(),
        Credentials::ApiKey(Secret::new(KEY)),
        ClientOptions::default(),
    )
    .unwrap();
    let up = UploadSource {
        path: src.clone(),
        file_name: "nested/dir/红楼梦.bin".into(),
        mime_type: "application/octet-stream".into(),
        size: m.len(),
        mtime_ns: mtime_ns(&m),
    };
    let answer = client
        .upload(
            &vol(),
            std::slice::from_ref(&up),
            None,
            Arc::new(AtomicU64::new(0)),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(env.stored().join("nested/dir/红楼梦.bin")).unwrap(),
        bytes
    );
    // The task lists the file under the same id, and ingestion finishes.
    let task = answer.task_id.unwrap();
    let file_id = answer.results[0].file_id.unwrap();
    env.emu.advance(Duration::from_millis(150));
    let page = client
        .send(&calls::ListTaskFiles {
            task_id: task,
            statuses: vec![],
            page: 1,
            page_size: 10,
        })
        .await
        .unwrap();
    assert_eq!(page.files[0].id, file_id);
    assert_eq!(page.files[0].status, Code::Num(5));
    assert_eq!(page.files[0].path, "/demo-volume/nested/dir/红楼梦.bin");

    // A file that vanished, or changed since it was listed, is reported as such.
    let gone = UploadSource {
        path: env.path("gone.bin"),
        ..up.clone()
    };
    let e = client
        .upload(&vol(), &[gone], None, Arc::new(AtomicU64::new(0)))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Local);
    assert!(e.message.contains("vanished"), "{e}");
    std::fs::write(&src, b"rewritten").unwrap();
    let e = client
        .upload(&vol(), &[up], None, Arc::new(AtomicU64::new(0)))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Changed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_once_for_many_requests() {
    let env = util::emulator_with(|c| {
        c.api_key = None;
        c.token_ttl = Duration::from_millis(600);
        c.logins = vec![Login {
            account: "acct-1".into(),
            username: "admin:accountadmin".into(),
            password: Secret::new("Mo123456!"),
        }];
    })
    .await;
    let client = Arc::new(
        Client::new(
            &env.emu.url().parse().unwrap(),
            Credentials::Session {
                account: "acct-1".into(),
                username: "admin:accountadmin".into(),
                password: Secret::new("Mo123456!"),
            },
            // The client believes tokens live 15 minutes; the server expires them sooner.
            ClientOptions::default(),
        )
        .unwrap(),
    );
    client.send(&TaskListQuery::default()).await.unwrap();
    assert_eq!(env.emu.stats().logins, 1);
    env.emu.advance(Duration::from_millis(700));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.send(&TaskListQuery::default()).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let s = env.emu.stats();
    assert_eq!(s.refreshes, 1, "{s:?}");
    assert_eq!(s.logins, 1);

    // An upload (the upload call has a client of its own) meets the expired token too:
    // renewed once, then sent, and the file arrives.
    env.emu.advance(Duration::from_millis(700));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("after-expiry.txt");
    std::fs::write(&path, b"sent with a renewed token").unwrap();
    let source = UploadSource {
        mtime_ns: mtime_ns(&std::fs::metadata(&path).unwrap()),
        path,
        file_name: "after-expiry.txt".into(),
        mime_type: "text/plain".into(),
        size: 25,
    };
    let volume = env.volume.parse().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    client.upload(&volume, &[source], None, sent).await.unwrap();
    let s = env.emu.stats();
    assert_eq!(
        (s.refreshes, s.logins, s.files_accepted),
        (2, 1, 1),
        "{s:?}"
    );

    // A wrong password is an authentication error that names the login, not the password.
    let bad = Client::new(
        &env.emu.url().parse().unwrap(),
        Credentials::Session {
            account: "acct-1".into(),
            username: "admin:accountadmin".into(),
            password: Secret::new("wrong-password"),
        },
        ClientOptions::default(),
    )
    .unwrap();
    let e = bad.send(&TaskListQuery::default()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        e.to_string().contains("admin:accountadmin") && !e.to_string().contains("wrong-password")
    );
}

#[tokio::test]
async fn retry_reloads_failed_files_and_state_survives_a_restart() {
    use moi_ingest::api::Id;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = moi_ingest::emulator::EmulatorConfig::new(dir.path());
    cfg.ingest_time = Duration::from_millis(50);
    cfg.faults.always_fail_suffix = Some(".bad".into());
    let emu = moi_ingest::emulator::start(cfg.clone(), "127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(
        &emu.url().parse().unwrap(),
        Credentials::ApiKey(Secret::new("any-key")),
        ClientOptions::default(),
    )
    .unwrap();
    let (status, body) = raw_upload(
        &emu.url(),
        None,
        form(DEFAULT_VOLUME, &meta("x.bad", 3), &[("x.bad", b"abc")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let task: Id = serde_json::from_value(body["data"]["task_id"].clone()).unwrap();
    let file: Id = serde_json::from_value(body["data"]["file_id"].clone()).unwrap();
    emu.advance(Duration::from_millis(80));
    let page = client
        .send(&calls::ListTaskFiles {
            task_id: task,
            statuses: vec![4],
            page: 1,
            page_size: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        (page.total_failed, page.files[0].status.clone()),
        (1, Code::Num(4))
    );
    assert!(!page.files[0].reason.is_empty());
    emu.stop().await;

    let emu = moi_ingest::emulator::start(cfg, "127.0.0.1:0")
        .await
        .unwrap();
    // A new process starts on the wall clock: moved on as far, the file is failed still.
    emu.advance(Duration::from_millis(80));
    let client = Client::new(
        &emu.url().parse().unwrap(),
        Credentials::ApiKey(Secret::new("any-key")),
        ClientOptions::default(),
    )
    .unwrap();
    client
        .send(&RetryFiles {
            task_id: task,
            ids: vec![file],
        })
        .await
        .unwrap();
    assert_eq!(
        client
            .send(&calls::ListTaskFiles {
                task_id: task,
                statuses: vec![],
                page: 1,
                page_size: 10
            })
            .await
            .unwrap()
            .files[0]
            .status,
        Code::Num(6)
    );
    assert_eq!(emu.stats().retried_files, 1);
    let e = client
        .send(&RetryFiles {
            task_id: Id(5),
            ids: vec![file],
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("task 5 does not exist"), "{e}");
    assert_eq!(
        client
            .send(&calls::GetTask { task_id: task })
            .await
            .unwrap()
            .task
            .id,
        task
    );
}

fn vol() -> VolumeId {
    DEFAULT_VOLUME.parse().unwrap()
}
