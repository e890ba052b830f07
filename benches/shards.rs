//! Shards together: N pipelines with `--shard i/N` at once against one emulator (20 ms
//! latency, one file per request, concurrency 8 each), as N machines of a fleet would run.
//! Prints the combined files/s for N = 1, 2, 4 and checks every file is stored once.
//! `cargo bench --bench shards [-- FILES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use moi_ingest::api::{Client, ClientOptions, Credentials};
use moi_ingest::emulator::{self, DEFAULT_VOLUME, EmulatorConfig};
use moi_ingest::journal::Journal;
use moi_ingest::pipeline::{self, Cancel, RunContext, Shard, UploadSettings};
use moi_ingest::report::RunStats;
use moi_ingest::secret::Secret;

async fn fleet(files: usize, shards: u32) -> f64 {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let src = dir.path().join("src");
    for i in 0..files {
        let d = src.join(format!("d{}", i % 20));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.txt")), format!("file {i}")).unwrap();
    }
    let mut cfg = EmulatorConfig::new(dir.path().join("emu"));
    cfg.faults.latency = Duration::from_millis(20);
    let emu = emulator::start(cfg, "127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    let mut runs = Vec::new();
    for index in 0..shards {
        let client = Arc::new(
            Client::new(
                &emu.url().parse().unwrap(),
                Credentials::ApiKey(Secret::new("bench-key")),
                ClientOptions::default(),
            )
            .unwrap(),
        );
        let journal = Journal::open(&dir.path().join(format!("j{index}.sqlite")), None).unwrap();
        let mut settings =
            UploadSettings::new(src.clone(), DEFAULT_VOLUME.parse().unwrap_or_default());
        settings.send.batch_files = 1;
        settings.send.shard = Some(Shard {
            index,
            count: shards,
        });
        settings.no_wait = true;
        let run = RunContext {
            client,
            journal,
            run_id: 1,
            stats: RunStats::new(),
            cancel: Cancel::new(),
        };
        runs.push(tokio::spawn(async move {
            pipeline::upload(&settings, run, None).await
        }));
    }
    for r in runs {
        assert_eq!(r.await.unwrap().exit.code(), 0);
    }
    let secs = started.elapsed().as_secs_f64();
    let listing = emu.listing(DEFAULT_VOLUME);
    assert_eq!(listing.len(), files, "every file stored exactly once");
    files as f64 / secs
}

fn main() {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for n in [1, 2, 4] {
            let rate = fleet(files, n).await;
            println!("shards: {n} x concurrency 8, 20 ms latency, {files} files: {rate:.0} files/s combined");
        }
    });
}
