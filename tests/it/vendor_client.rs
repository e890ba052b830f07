//! The vendor's own Python uploader (seed 002), unchanged but for its host, against the
//! emulator. Needs python3 with `requests` (`.ci/run` installs it).

use crate::util::{self, KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_python_uploader_works_against_the_emulator() {
    let env = util::emulator().await;
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(
        src.join("红楼梦(通行本)简体横排.pdf"),
        b"%PDF-1.4 vendor test",
    )
    .unwrap();
    std::fs::write(src.join("sub/notes.txt"), b"hello from requests").unwrap();
    std::fs::write(src.join("sub/skip.bin"), b"not listed in the extensions").unwrap();
    let harness = format!(
        r#"
import sys
code = open(sys.argv[1], encoding="utf-8").read()
code = code.replace("https://freetier-01.cn-hangzhou.cluster.matrixonecloud.cn", sys.argv[2])
exec(code)
results = upload_directory(sys.argv[3], "{volume}", file_extensions=[".pdf", ".txt"], recursive=True, moi_key="{KEY}")
ok = [r for r in results if r["success"] and r["result"]["code"] == "OK"]
print(len(results), len(ok))
sys.exit(0 if results and len(ok) == len(results) else 1)
"#,
        volume = moi_ingest::emulator::DEFAULT_VOLUME
    );
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vendor_upload.py"
    );
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            &harness,
            fixture,
            &env.emu.url(),
            &src.display().to_string(),
        ])
        .output()
        .await
        .expect("python3 is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 2"), "{stdout}");
    // The vendor's script sends base names only.
    let stored = env.stored();
    assert_eq!(
        std::fs::read(stored.join("红楼梦(通行本)简体横排.pdf")).unwrap(),
        b"%PDF-1.4 vendor test"
    );
    assert_eq!(
        std::fs::read(stored.join("notes.txt")).unwrap(),
        b"hello from requests"
    );
}

/// The vendor's connector and export examples (seeds 002 and 004), host replaced, against
/// `moi-ingest emulator` run as a user runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_connector_and_export_examples_get_the_documented_answers() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("emu").display().to_string();
    let mut emu = tokio::process::Command::new(env!("CARGO_BIN_EXE_moi-ingest"))
        .args([
            "emulator",
            "--data",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
        ])
        .env_remove("MOI_KEY")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(emu.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vendor_sources.py"
        ))
        .args([&url, KEY])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["connector_id"], 100001);
    let _ = emu.kill().await;
}
