//! Walk throughput: entries per second over a generated tree (the plan stage's input).
//! `cargo bench --bench walk [-- FILES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moi_ingest::walk::{self, WalkEvent, WalkOptions};

fn main() {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    // tmpfs when there is one: the walk's own cost, not this machine's disk.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    for i in 0..files {
        let d = dir.path().join(format!("a{}/b{}", i % 50, i % 7));
        if i < 350 {
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(d.join(format!("f{i}.txt")), b"x").unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for round in 0..3 {
            let started = Instant::now();
            let mut rx =
                walk::spawn(dir.path().to_path_buf(), WalkOptions::default(), 4096).unwrap();
            let mut n = 0;
            while let Some(ev) = rx.recv().await {
                if matches!(ev, WalkEvent::File(_)) {
                    n += 1;
                }
            }
            assert_eq!(n, files);
            let secs = started.elapsed().as_secs_f64();
            println!(
                "walk (round {round}): {n} files in {secs:.3}s: {:.0} entries/s",
                n as f64 / secs
            );
        }
    });
}
