//! End to end: small files through the real pipeline to an in-process emulator.
//! Prints files/s with and without added latency, against the ideal concurrency ÷ latency,
//! and what `--batch-files` buys. `cargo bench --bench pipeline [-- FILES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use moi_ingest::api::{Client, ClientOptions, Credentials};
use moi_ingest::emulator::{self, DEFAULT_VOLUME, EmulatorConfig};
use moi_ingest::journal::Journal;
use moi_ingest::pipeline::{self, Cancel, RunContext, UploadSettings};
use moi_ingest::report::RunStats;
use moi_ingest::secret::Secret;

async fn one(files: usize, latency: Duration, concurrency: usize, batch: usize) -> f64 {
    run(files, latency, concurrency, batch, false).await
}

async fn run(
    files: usize,
    latency: Duration,
    concurrency: usize,
    batch: usize,
    adaptive: bool,
) -> f64 {
    // On tmpfs when there is one: this measures the worker, not the machine's disk (the
    // emulator writes every file and a SQLite row, which on a slow disk dominates).
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let src = dir.path().join("src");
    for i in 0..files {
        let d = src.join(format!("d{}", i % 20));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.txt")), vec![b'x'; 4096]).unwrap();
    }
    let mut cfg = EmulatorConfig::new(dir.path().join("emu"));
    cfg.faults.latency = latency;
    let emu = emulator::start(cfg, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(
        Client::new(
            &emu.url().parse().unwrap(),
            Credentials::ApiKey(Secret::new("bench-key")),
            ClientOptions::default(),
        )
        .unwrap(),
    );
    let journal = Journal::open(&dir.path().join("j.sqlite"), None).unwrap();
    let mut settings = UploadSettings::new(src, DEFAULT_VOLUME.parse().unwrap_or_default());
    settings.send.concurrency = concurrency;
    settings.send.batch_files = batch;
    settings.send.adaptive = adaptive;
    settings.no_wait = true;
    let run = RunContext {
        client,
        journal,
        run_id: 1,
        stats: RunStats::new(),
        cancel: Cancel::new(),
    };
    let started = Instant::now();
    let out = pipeline::upload(&settings, run, None).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(out.exit.code(), 0);
    assert_eq!(emu.stats().files_accepted, files as u64);
    files as f64 / secs
}

fn main() {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let rate = one(files, Duration::ZERO, 16, 1).await;
        println!("pipeline: {files} x 4 KiB, concurrency 16, no latency: {rate:.0} files/s");
        let latency = Duration::from_millis(20);
        let ideal = 16.0 / latency.as_secs_f64();
        let rate = one(files, latency, 16, 1).await;
        println!(
            "pipeline: {files} x 4 KiB, concurrency 16, 20 ms latency: {rate:.0} files/s = {:.2} x the ideal {ideal:.0}",
            rate / ideal
        );
        // What the default batching buys, at the default concurrency (8): the figures
        // behind DEFAULT_BATCH_FILES.
        for batch in [1, 4, 8, 16, 32, 64] {
            let fast = one(files, Duration::ZERO, 8, batch).await;
            let slow = one(files, latency, 8, batch).await;
            println!(
                "pipeline: --batch-files {batch:>2}, concurrency 8: {fast:>6.0} files/s on loopback, {slow:>6.0} files/s with 20 ms latency"
            );
        }
        // --concurrency auto against the best fixed setting, one file per request, 20 ms.
        let mut best = (0, 0.0f64);
        for n in [8, 16, 32, 64] {
            let rate = one(files, latency, n, 1).await;
            println!("pipeline: --concurrency {n:>2}, 20 ms latency: {rate:.0} files/s");
            if rate > best.1 {
                best = (n, rate);
            }
        }
        let auto = run(files, latency, 64, 1, true).await;
        println!(
            "pipeline: --concurrency auto, 20 ms latency: {auto:.0} files/s = {:.2} x the best fixed setting ({})",
            auto / best.1,
            best.0
        );
    });
}
