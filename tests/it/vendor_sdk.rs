//! The vendor's own Python SDK (`moi-python-sdk`, pinned in `.ci/run`) against the
//! emulator, as a user of that SDK would call it: what it sends must be stored where the
//! SDK says, and what the emulator answers must decode in the SDK.

use std::path::PathBuf;

use crate::util::{self, KEY};

const UUID_VOLUME: &str = "019b39fc-f4ee-7915-b701-66ae6a48d9fc";

/// The venv `.ci/run` makes (`MOI_SDK_PYTHON` overrides). These tests are `#[ignore]`d, so
/// that a machine without the SDK says so in the test output ("ignored, needs ..."), and
/// `.ci/run` runs them with `--ignored`, where a missing SDK fails them.
fn sdk_python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOI_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/vendor-sdk-venv/bin/python");
    assert!(
        venv.is_file(),
        "the vendor SDK is not installed: run `bash .ci/run` once, or python3 -m venv \
         target/vendor-sdk-venv && target/vendor-sdk-venv/bin/pip install moi-python-sdk==0.1.1.dev0"
    );
    venv
}

/// Runs the fixture `script` (in tests/fixtures) with the vendor's SDK against a fresh
/// emulator whose volume has a UUID-like id, as the SDK's examples do; returns the
/// emulator and the JSON the script printed.
async fn run_fixture(script: &str) -> (util::Env, serde_json::Value) {
    let python = sdk_python();
    let env = util::emulator_with(|c| {
        c.volumes = vec![(UUID_VOLUME.into(), "sdk-volume".into())];
    })
    .await;
    let work = env.path("local");
    std::fs::create_dir_all(&work).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(script);
    let out = tokio::process::Command::new(&python)
        .arg(fixture)
        .args([
            &env.emu.url(),
            KEY,
            UUID_VOLUME,
            &work.display().to_string(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = serde_json::from_str(stdout.trim()).unwrap();
    (env, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the vendor's Python SDK in target/vendor-sdk-venv: .ci/run installs it and runs ignored tests"]
async fn the_vendors_python_sdk_uploads_and_reads_tasks() {
    let (env, answer) = run_fixture("vendor_sdk.py").await;
    assert_eq!(answer["wrong_key"], "HTTPError", "{answer}");
    assert_eq!(answer["task"]["volume_id"], UUID_VOLUME);
    assert!(
        answer["skipped_message"]
            .as_str()
            .unwrap()
            .contains("skipped"),
        "{answer}"
    );

    // Stored byte-identical under the SDK's paths, one file per path.
    let stored = env.stored();
    let read = |p: &str| std::fs::read(stored.join(p)).unwrap();
    assert_eq!(read("docs/a.txt"), b"alpha, second version\n");
    assert_eq!(read("docs/b.txt"), b"bravo\n");
    assert_eq!(read("中文/红楼梦.txt"), "红楼梦\n".as_bytes());
    assert_eq!(read("d.txt"), b"delta\n");
    util::assert_once_per_path(
        &env,
        &[
            "d.txt".to_string(),
            "docs/a.txt".into(),
            "docs/b.txt".into(),
            "中文/红楼梦.txt".into(),
        ],
    );
    let st = env.emu.stats();
    assert_eq!(
        (st.dedup_skipped, st.dedup_replaced, st.duplicates),
        (1, 1, 0),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the vendor's Python SDK in target/vendor-sdk-venv: .ci/run installs it and runs ignored tests"]
async fn the_vendors_python_sdk_lists_renames_and_deletes_in_the_catalog() {
    let (env, a) = run_fixture("vendor_catalog.py").await;
    assert_eq!(a["found"], serde_json::json!(["top.txt"]), "{a}");
    assert_eq!(a["root"], serde_json::json!(["docs", "top.txt"]), "{a}");
    assert_eq!(a["root_total"], 2, "{a}");
    assert_eq!(
        (a["docs_total"].as_u64(), a["docs_page_1"].as_u64()),
        (Some(2), Some(1)),
        "{a}"
    );
    assert_eq!(
        a["docs_files"],
        serde_json::json!(["a.txt", "b.txt"]),
        "{a}"
    );
    assert_eq!(
        a["a_info"],
        serde_json::json!({"name": "a.txt", "size": 6, "parent_id": true})
    );
    assert_eq!(a["rename_onto_sibling"], "HTTPError", "{a}");
    assert_eq!(a["delete_again"], "HTTPError", "{a}");
    assert_eq!(a["create_folder_same_id"], true, "{a}");
    assert_eq!(a["volume_name"], "sdk-volume", "{a}");
    // What the volume holds after: the rename, the folder rename, the delete.
    util::assert_once_per_path(&env, &["papers/a2.txt".to_string(), "top.txt".into()]);
    assert_eq!(
        std::fs::read(env.stored().join("papers/a2.txt")).unwrap(),
        b"alpha\n"
    );
    assert!(!env.stored().join("docs").exists());
}
