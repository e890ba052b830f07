//! A 100 MiB upload, client and emulator in this one process, must not raise its resident
//! memory by more than a few MiB: bodies stream from disk and to disk. Its own test binary,
//! so no other test's allocations are counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moi_ingest::api::{Client, ClientOptions, Credentials, UploadSource};
use moi_ingest::emulator::{self, DEFAULT_VOLUME, EmulatorConfig};
use moi_ingest::secret::Secret;
use moi_ingest::walk::mtime_ns;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_upload_streams_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator::start(EmulatorConfig::new(dir.path().join("emu")), "127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(
        &emu.url().parse().unwrap(),
        Credentials::ApiKey(Secret::new("memory-test")),
        ClientOptions::default(),
    )
    .unwrap();
    // Warm both sides up with a small upload so one-time allocations are not counted.
    let small = dir.path().join("small.bin");
    std::fs::write(&small, vec![1u8; 300_000]).unwrap();
    let source = |path: std::path::PathBuf, name: &str| {
        let m = std::fs::metadata(&path).unwrap();
        UploadSource {
            path,
            file_name: name.into(),
            mime_type: "application/octet-stream".into(),
            size: m.len(),
            mtime_ns: mtime_ns(&m),
        }
    };
    client
        .upload(
            &DEFAULT_VOLUME.parse().unwrap(),
            &[source(small, "warm.bin")],
            None,
            Arc::new(AtomicU64::new(0)),
        )
        .await
        .unwrap();

    let big = dir.path().join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 << 20).unwrap();
    drop(f);
    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    client
        .upload(
            &DEFAULT_VOLUME.parse().unwrap(),
            &[source(big, "big.bin")],
            None,
            sent.clone(),
        )
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(sent.load(Ordering::Relaxed), 100 << 20);
    assert_eq!(
        std::fs::metadata(emu.volume_dir(DEFAULT_VOLUME).join("big.bin"))
            .unwrap()
            .len(),
        100 << 20
    );
    let grew_mib = (peak.load(Ordering::Relaxed) - baseline) as f64 / 1024.0;
    println!("resident memory grew by {grew_mib:.1} MiB during a 100 MiB upload");
    assert!(grew_mib < 12.0, "resident memory grew by {grew_mib:.1} MiB");
}
