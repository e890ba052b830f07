//! The client's requests, asserted on what a server received, and the seeds' answers.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use moi_ingest::api::calls;
use moi_ingest::api::model::Dedup;
use moi_ingest::api::model::*;
use moi_ingest::api::{Client, ClientOptions, Credentials, ErrorKind, Id, UploadSource};
use moi_ingest::secret::Secret;
use moi_ingest::walk::mtime_ns;
use tokio::sync::mpsc;

pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A server that answers every request with `answer` and passes what it saw back.
pub(crate) async fn recorder(answer: &'static str) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Seen {
                    method,
                    uri,
                    headers,
                    body,
                });
                ([("content-type", "application/json")], answer)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn key_client(url: &str) -> Client {
    Client::new(
        &url.parse().unwrap(),
        Credentials::ApiKey(Secret::new("k-123456")),
        ClientOptions::default(),
    )
    .unwrap()
}

/// Splits a multipart body into (headers, content) per part, in order.
fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let text = body.to_vec();
    let mut out = Vec::new();
    let mut pos = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(start) = find(&text, delim.as_bytes(), pos) {
        let after = start + delim.len();
        if text[after..].starts_with(b"--") {
            break;
        }
        let head_start = after + 2;
        let head_end = find(&text, b"\r\n\r\n", head_start).unwrap();
        let next = find(&text, format!("\r\n{delim}").as_bytes(), head_end).unwrap();
        out.push((
            String::from_utf8(text[head_start..head_end].to_vec()).unwrap(),
            text[head_end + 4..next].to_vec(),
        ));
        pos = next + 2;
    }
    out
}

#[tokio::test]
async fn upload_sends_file_volume_and_meta_parts() {
    let (url, mut rx) = recorder(include_str!("../fixtures/upload.json")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pdf");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let src = UploadSource {
        path,
        file_name: "sub dir/红楼梦.pdf".into(),
        mime_type: "application/pdf".into(),
        size: bytes.len() as u64,
        mtime_ns: mtime_ns(&meta),
    };
    let answer = key_client(&url)
        .upload(
            &"019b39fc-f4ee-7915-b701-66ae6a48d9fc".parse().unwrap(),
            &[src],
            Some(&Dedup::by_name("replace")),
            Arc::new(AtomicU64::new(0)),
        )
        .await
        .unwrap();
    assert_eq!(answer.task_id, Some(Id(1889613340219121664)));
    assert_eq!(answer.results[0].file_id, Some(Id(1889613341347389440)));

    let seen = rx.recv().await.unwrap();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/connectors/upload");
    assert_eq!(seen.headers["moi-key"], "k-123456");
    assert!(
        seen.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("moi-ingest/")
    );
    let ct = seen.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let p = parts(ct, &seen.body);
    assert_eq!(p.len(), 4);
    assert!(p[0].0.contains("name=\"file\""), "{}", p[0].0);
    assert!(
        p[0].0.contains("filename=\"sub dir/红楼梦.pdf\""),
        "{}",
        p[0].0
    );
    assert!(
        p[0].0
            .to_ascii_lowercase()
            .contains("content-type: application/pdf")
    );
    assert_eq!(p[0].1, bytes);
    assert!(p[1].0.contains("name=\"VolumeID\""));
    assert_eq!(p[1].1, b"019b39fc-f4ee-7915-b701-66ae6a48d9fc");
    assert!(p[2].0.contains("name=\"meta\""));
    let meta: serde_json::Value = serde_json::from_slice(&p[2].1).unwrap();
    // Both vocabularies: the 2025 documents' and the live service's.
    assert_eq!(
        meta,
        serde_json::json!([{"file_name": "sub dir/红楼梦.pdf", "file_size": 70000,
            "mime_type": "application/pdf", "filename": "红楼梦.pdf", "path": "sub dir/红楼梦.pdf"}])
    );
    assert!(p[3].0.contains("name=\"dedup\""));
    let dedup: serde_json::Value = serde_json::from_slice(&p[3].1).unwrap();
    assert_eq!(
        dedup,
        serde_json::json!({"by": ["name"], "strategy": "replace"})
    );
}

#[tokio::test]
async fn a_request_mixing_small_and_streamed_files_carries_each_whole_and_its_exact_length() {
    // Small files are read into the request's buffer, a large one streams between two such
    // blocks: each file's bytes arrive intact, in order, under the declared length.
    let (url, mut rx) = recorder(include_str!("../fixtures/upload.json")).await;
    let dir = tempfile::tempdir().unwrap();
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"small one".to_vec()),
        ("big.bin", (0..70_000u32).map(|i| (i % 251) as u8).collect()),
        ("empty.txt", Vec::new()),
        ("c.txt", b"small two".to_vec()),
    ];
    let sources: Vec<UploadSource> = contents
        .iter()
        .map(|(name, bytes)| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            UploadSource {
                path,
                file_name: format!("d/{name}"),
                mime_type: "application/octet-stream".into(),
                size: bytes.len() as u64,
                mtime_ns: mtime_ns(&meta),
            }
        })
        .collect();
    let sent = Arc::new(AtomicU64::new(0));
    key_client(&url)
        .upload(
            &"019b39fc-f4ee-7915-b701-66ae6a48d9fc".parse().unwrap(),
            &sources,
            None,
            sent.clone(),
        )
        .await
        .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        seen.headers["content-length"].to_str().unwrap(),
        seen.body.len().to_string()
    );
    assert!(seen.headers.get("transfer-encoding").is_none());
    let p = parts(seen.headers["content-type"].to_str().unwrap(), &seen.body);
    assert_eq!(
        p.len(),
        contents.len() + 2,
        "files, VolumeID, meta; no dedup"
    );
    for (i, (name, bytes)) in contents.iter().enumerate() {
        assert!(
            p[i].0.contains(&format!("filename=\"d/{name}\"")),
            "{}",
            p[i].0
        );
        assert_eq!(&p[i].1, bytes, "{name}");
    }
    assert!(p[contents.len() + 1].0.contains("name=\"meta\""));
    // What the run reports as sent is file content, not framing.
    let content: usize = contents.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(
        sent.load(std::sync::atomic::Ordering::Relaxed),
        content as u64
    );
}

#[tokio::test]
async fn task_calls_send_the_reference_query_and_bodies() {
    let (url, mut rx) = recorder(include_str!("../fixtures/task_files.json")).await;
    let c = key_client(&url);
    let page = c
        .send(&calls::ListTaskFiles {
            task_id: Id(1889613340219121664),
            statuses: vec![4, 5],
            page: 2,
            page_size: 50,
        })
        .await
        .unwrap();
    assert_eq!(page.files[0].id, Id(1889613341347389440));
    assert_eq!(file_status::of(&page.files[0].status), file_status::SUCCESS);
    let seen = rx.recv().await.unwrap();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.uri.path(), "/task/files");
    assert_eq!(
        seen.uri.query().unwrap(),
        "task_id=1889613340219121664&status=4&status=5&page=2&page_size=50"
    );

    // An OK envelope without data answers the calls that return none.
    let (url, mut rx) = recorder(include_str!("../fixtures/ok.json")).await;
    let c = key_client(&url);
    c.send(&RetryFiles {
        task_id: Id(1889074091616481280),
        ids: vec![Id(1889074111245824000)],
    })
    .await
    .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(seen.uri.path(), "/task/retry");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"task_id": "1889074091616481280", "ids": ["1889074111245824000"]})
    );
    for (call, path) in [
        ("pause", "/task/pause"),
        ("resume", "/task/resume"),
        ("delete", "/task/delete"),
    ] {
        let one = TaskRef {
            task_id: Id(1889613340219121664),
        };
        match call {
            "pause" => c.send(&calls::PauseTask(one)).await.unwrap(),
            "resume" => c.send(&calls::ResumeTask(one)).await.unwrap(),
            _ => c.send(&calls::DeleteTask(one)).await.unwrap(),
        };
        let seen = rx.recv().await.unwrap();
        assert_eq!(seen.uri.path(), path);
        assert_eq!(&seen.body[..], br#"{"task_id":"1889613340219121664"}"#);
    }
    let list = TaskListQuery {
        status: vec![1, 4],
        page: Some(1),
        page_size: Some(20),
        ..Default::default()
    };
    let _ = c.send(&list).await.unwrap();
    assert_eq!(
        rx.recv().await.unwrap().uri.query().unwrap(),
        "page=1&page_size=20&status=1&status=4"
    );
}

/// With no client-wide read timeout, the idle timeout alone must still end a call to a
/// server that takes the request and never answers: an upload (its watchdog) and any
/// other call (its whole-call limit).
#[tokio::test]
async fn a_server_that_never_answers_is_given_up_after_the_idle_timeout() {
    let url = crate::util::silent_server().await;
    let client = Client::new(
        &url.parse().unwrap(),
        Credentials::ApiKey(Secret::new("k-123456")),
        ClientOptions {
            idle_timeout: std::time::Duration::from_millis(300),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txt");
    std::fs::write(&path, b"hello").unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let src = UploadSource {
        path,
        file_name: "x.txt".into(),
        mime_type: "text/plain".into(),
        size: 5,
        mtime_ns: mtime_ns(&meta),
    };
    let bound = std::time::Duration::from_secs(10);
    let volume = "1889578498228068352".parse().unwrap();
    let files = [src];
    let upload = client.upload(&volume, &files, None, Arc::new(AtomicU64::new(0)));
    let e = tokio::time::timeout(bound, upload)
        .await
        .expect("the upload must give up by itself")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.to_string().contains("stalled"), "{e}");
    let e = tokio::time::timeout(bound, client.send(&calls::GetTask { task_id: Id(1) }))
        .await
        .expect("the call must give up by itself")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn error_envelopes_are_classified() {
    let (url, _rx) =
        recorder(r#"{"code":"ErrVolumeNotFound","msg":"volume 7 does not exist"}"#).await;
    let e = key_client(&url)
        .send(&calls::GetTask { task_id: Id(1) })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.to_string().contains("volume 7 does not exist"), "{e}");
    let (url, _rx) = recorder(r#"{"code":"ErrInternal","msg":"db down"}"#).await;
    assert_eq!(
        key_client(&url)
            .send(&calls::GetTask { task_id: Id(1) })
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Transient
    );
    let (url, _rx) = recorder("<html>proxy login</html>").await;
    let e = key_client(&url)
        .send(&calls::GetTask { task_id: Id(1) })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.to_string().contains("proxy login"));
}

#[test]
fn every_seed_answer_parses() {
    let env = |s: &str| serde_json::from_str::<Envelope<serde_json::Value>>(s).unwrap();
    let data = |s: &str| env(s).data.unwrap();
    let upload: UploadAnswer =
        serde_json::from_value(data(include_str!("../fixtures/upload.json"))).unwrap();
    assert_eq!(upload.file_id, Some(Id(1889613341347389440)));
    let list: TaskList =
        serde_json::from_value(data(include_str!("../fixtures/task_list.json"))).unwrap();
    assert_eq!(list.tasks[0].id, Id(1889223922712281088));
    assert_eq!(list.tasks[0].source_connector_id, Some(Id(100004)));
    let get: TaskGet =
        serde_json::from_value(data(include_str!("../fixtures/task_get.json"))).unwrap();
    assert_eq!(
        get.task.volume_id.as_ref().map(|v| v.as_str()),
        Some("1889578498228068352")
    );
    let files: TaskFilesPage =
        serde_json::from_value(data(include_str!("../fixtures/task_files.json"))).unwrap();
    assert_eq!(files.files[0].path, "/b-vol2/红楼梦(通行本)简体横排.pdf");
    let login: LoginAnswer =
        serde_json::from_value(data(include_str!("../fixtures/login.json"))).unwrap();
    assert!(login.uid.ends_with(":admin:accountadmin"));
    // related_task_ids arrive as bare JSON numbers above 2^53.
    let connectors = data(include_str!("../fixtures/connectors_list.json"));
    let related: Vec<Id> =
        serde_json::from_value(connectors["connectors"][0]["related_task_ids"].clone()).unwrap();
    assert_eq!(related, vec![Id(1889223922712281088)]);
    assert!(env(include_str!("../fixtures/ok.json")).is_ok());
    assert!(env(include_str!("../fixtures/connector_files.json")).is_ok());
    // The export API answers "ok" in lower case.
    for f in [
        include_str!("../fixtures/export_0.json"),
        include_str!("../fixtures/export_1.json"),
        include_str!("../fixtures/export_2.json"),
        include_str!("../fixtures/export_3.json"),
    ] {
        assert!(env(f).is_ok());
    }
}

fn typed<T: serde::de::DeserializeOwned>(seeds: &serde_json::Value, k: &str) -> T {
    serde_json::from_value(seeds[k].clone()).unwrap()
}

/// Every call beyond upload, made with the seeds' own example bodies: the server sees the
/// documented method, path, query and body, and the seeds' answers (the export API's
/// lower-case "ok" among them) decode.
#[tokio::test]
async fn every_documented_call_sends_the_seed_example_as_documented() {
    let seeds: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/seed_requests.json")).unwrap();
    let seed = |k: &str| seeds[k].clone();

    // Connectors (seed 002).
    let (url, mut rx) = recorder(include_str!("../fixtures/ok.json")).await;
    let c = key_client(&url);
    let create: CreateConnector = typed(&seeds, "connector_create");
    create.check().unwrap();
    c.send(&calls::CreateConnector { body: &create })
        .await
        .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        (seen.method, seen.uri.path()),
        (Method::POST, "/connectors")
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
        seed("connector_create")
    );

    let update: UpdateConnector = typed(&seeds, "connector_update");
    c.send(&calls::UpdateConnector {
        id: "100005".into(),
        body: &update,
    })
    .await
    .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        (seen.method, seen.uri.path()),
        (Method::PUT, "/connectors/100005")
    );
    let sent: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["s3"]["region"], "xxxx");
    assert_eq!(sent["name"], "s3-test1");

    c.send(&calls::DeleteConnector {
        id: "100004".into(),
    })
    .await
    .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        (seen.method, seen.uri.path()),
        (Method::DELETE, "/connectors/100004")
    );

    c.send(&calls::ConnectorSummary).await.unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        (seen.method, seen.uri.path()),
        (Method::GET, "/connectors/summary")
    );

    let (url, mut rx) = recorder(r#"{"code": "OK", "msg": "OK", "data": {"valid": true}}"#).await;
    let c = key_client(&url);
    let v = c
        .send(&calls::ValidateConnector {
            body: &seed("connector_validate"),
        })
        .await
        .unwrap();
    assert!(v.valid);
    assert_eq!(rx.recv().await.unwrap().uri.path(), "/connectors/validate");

    let (url, mut rx) = recorder(include_str!("../fixtures/connectors_list.json")).await;
    let list = key_client(&url)
        .send(&calls::ListConnectors {
            keyword: Some("c1".into()),
            source_type: None,
            page: 1,
            page_size: 10,
        })
        .await
        .unwrap();
    assert_eq!(list.connectors[0].id, Id(100004));
    assert_eq!(
        list.connectors[0].config["oss"]["bucket_name"],
        "moc-test-data"
    );
    let seen = rx.recv().await.unwrap();
    assert_eq!(seen.uri.query(), Some("keyword=c1&page=1&page_size=10"));

    let (url, mut rx) = recorder(include_str!("../fixtures/connector_files.json")).await;
    let files = key_client(&url)
        .send(&calls::ListConnectorFiles {
            connector_id: Id(100004),
            file_types: vec![2, 10],
        })
        .await
        .unwrap();
    assert_eq!(files.files[0].size, 6_787_457);
    assert_eq!(
        rx.recv().await.unwrap().uri.query(),
        Some("connector_id=100004&file_types=2&file_types=10")
    );

    // Load tasks from a connector.
    let (url, mut rx) = recorder(include_str!("../fixtures/ok.json")).await;
    let c = key_client(&url);
    let task: CreateTask = serde_json::from_value(serde_json::json!({
        "source_connector_id": 100004, "volume_id": "1889578498228068352",
        "source_config": {"common_file_task_config": {"load_mode_config": {"load_interval_type": 4},
            "uris": ["红楼梦 (通行本) 简体横排.pdf"]}}, "config_type": 1}))
    .unwrap();
    c.send(&calls::CreateTask { body: &task }).await.unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!((seen.method, seen.uri.path()), (Method::POST, "/task"));
    let sent: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["volume_id"], "1889578498228068352");
    assert_eq!(
        sent["source_connector_id"], 100004,
        "a number, as the seed writes it"
    );
    let update = UpdateTask {
        task_id: Id(1889613340219121664),
        load_mode_config: None,
        uris: Some(vec!["a.pdf".into()]),
    };
    c.send(&calls::UpdateTask { body: &update }).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().uri.path(), "/task/update");

    // Export (seed 004), under /byoa/api/v1, answered with a lower-case "ok".
    let (url, mut rx) = recorder(include_str!("../fixtures/export_0.json")).await;
    let c = key_client(&url);
    for k in ["export_dify", "export_mo"] {
        let body: ExportCreate = typed(&seeds, k);
        body.check().unwrap();
        c.send(&calls::CreateExport { body: &body }).await.unwrap();
        let seen = rx.recv().await.unwrap();
        assert_eq!(seen.uri.path(), "/byoa/api/v1/export/task/create");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
            seed(k)
        );
    }
    c.send(&calls::RerunExport {
        id: "task_123".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        rx.recv().await.unwrap().uri.path(),
        "/byoa/api/v1/export/task/task_123/rerun"
    );
    c.send(&calls::DeleteExport(typed::<ExportRef>(
        &seeds,
        "export_delete",
    )))
    .await
    .unwrap();
    let seen = rx.recv().await.unwrap();
    assert_eq!(seen.uri.path(), "/byoa/api/v1/export/task/delete");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
        seed("export_delete")
    );
    for (fixture, call) in [
        (include_str!("../fixtures/export_1.json"), "list"),
        (include_str!("../fixtures/export_2.json"), "info"),
        (include_str!("../fixtures/export_3.json"), "files"),
    ] {
        let (url, mut rx) = recorder(fixture).await;
        let c = key_client(&url);
        match call {
            "list" => {
                let l = c
                    .send(&calls::ListExports {
                        body: &typed::<ExportListQuery>(&seeds, "export_list"),
                    })
                    .await
                    .unwrap();
                assert_eq!(l.total, 1);
            }
            "info" => {
                let i = c
                    .send(&calls::GetExport(typed::<ExportRef>(&seeds, "export_info")))
                    .await
                    .unwrap();
                assert_eq!(i["file_stats"]["fileFail"], 5);
            }
            _ => {
                c.send(&typed::<ExportFilesQuery>(&seeds, "export_files"))
                    .await
                    .unwrap();
            }
        }
        let seen = rx.recv().await.unwrap();
        assert_eq!(seen.uri.path(), format!("/byoa/api/v1/export/task/{call}"));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
            seed(&format!("export_{call}"))
        );
    }
}
