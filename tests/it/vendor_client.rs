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
