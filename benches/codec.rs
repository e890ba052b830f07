//! The client's own encoding and decoding, with no network: what a request's `meta` and its
//! whole multipart body cost to build, and what an answer costs to read, per file. A
//! regression here shows without nginx. `cargo bench --bench codec`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use http_body_util::BodyExt;
use moi_ingest::api::model::{TaskFilesPage, UploadAnswer};
use moi_ingest::api::{Answer, UploadSource, VolumeId, decode_body, meta_json, upload_body};
use moi_ingest::secret::Redactor;

fn rate(label: &str, files_per_round: usize, rounds: usize, mut f: impl FnMut()) {
    for _ in 0..rounds / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        f();
    }
    let secs = started.elapsed().as_secs_f64();
    let per_file = secs / (files_per_round * rounds) as f64;
    println!(
        "codec: {label}: {:.0} files/s ({:.2} µs per file)",
        1.0 / per_file,
        per_file * 1e6
    );
}

fn main() {
    let sources: Vec<UploadSource> = (0..32)
        .map(|i| UploadSource {
            path: format!("/data/papers/d{}/file-{i:05}.pdf", i % 7).into(),
            file_name: format!("d{}/file-{i:05}.pdf", i % 7),
            mime_type: "application/pdf".into(),
            size: 4096,
            mtime_ns: 1_700_000_000_000_000_000,
        })
        .collect();
    rate(
        "meta of a 32-file request (both vocabularies), as JSON",
        32,
        20_000,
        || {
            black_box(meta_json(&sources).unwrap());
        },
    );

    // The whole multipart body of a 32-file request of 4 KiB files, from the files on disk
    // to the last byte, as the uploads build it (collected into memory instead of sent).
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let on_disk: Vec<UploadSource> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = dir.path().join(format!("f{i}.pdf"));
            std::fs::write(&path, vec![b'x'; 4096]).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            UploadSource {
                path,
                size: 4096,
                mtime_ns: moi_ingest::walk::mtime_ns(&meta),
                ..s.clone()
            }
        })
        .collect();
    let volume: VolumeId = "1889578498228068352".parse().unwrap();
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // One request per file (`--batch-files 1`) and a full default batch: the first shows
    // what each request costs on its own.
    for files in [1, 32] {
        let batch = &on_disk[..files];
        let meta = meta_json(batch).unwrap();
        rate(
            &format!("multipart body of a {files}-file request of 4 KiB files"),
            files,
            160_000 / files,
            || {
                let upload = upload_body(&volume, batch, &meta, None, None, |_| {}).unwrap();
                let mut request = http
                    .post("http://127.0.0.1:9/connectors/upload")
                    .body(upload.body)
                    .build()
                    .unwrap();
                let body = request.body_mut().take().unwrap();
                let bytes = runtime.block_on(body.collect()).unwrap().to_bytes();
                assert_eq!(bytes.len() as u64, upload.length);
                black_box(bytes);
            },
        );
    }

    let results: Vec<String> = (0..32)
        .map(|i| format!(r#"{{"success":true,"file_id":"18896133413473{i:05}","message":"ok"}}"#))
        .collect();
    let upload = format!(
        r#"{{"code":"OK","msg":"OK","request_id":"r-1","data":{{"success":true,"file_id":"1889613341347300000","task_id":1889613340219121664,"message":"ok","results":[{}]}}}}"#,
        results.join(",")
    );
    let redactor = Redactor::default();
    rate("upload answer of 32 files", 32, 20_000, || {
        let a: Option<UploadAnswer> = decode_body(
            "POST /connectors/upload",
            Answer {
                status: 200,
                retry_after: None,
                request_id: None,
                redirect: None,
                body: upload.as_bytes(),
            },
            &redactor,
        )
        .unwrap();
        black_box(a);
    });

    let files: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"id":"18896133413473{i:05}","name":"d1/file-{i:05}.pdf","type":2,"status":5,"size":4096,"update_time":1739355480,"other_metadata":"","reason":"","user":"admin","start_time":1739353902,"end_time":1739355480,"path":"/vol/d1/file-{i:05}.pdf"}}"#
            )
        })
        .collect();
    let page = format!(
        r#"{{"code":"OK","msg":"OK","data":{{"total":1000,"total_success":1000,"total_failed":0,"files":[{}]}}}}"#,
        files.join(",")
    );
    rate("/task/files page of 1,000 files", 1000, 200, || {
        let p: Option<TaskFilesPage> = decode_body(
            "GET /task/files",
            Answer {
                status: 200,
                retry_after: None,
                request_id: None,
                redirect: None,
                body: page.as_bytes(),
            },
            &redactor,
        )
        .unwrap();
        black_box(p);
    });
}
