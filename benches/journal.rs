//! Journal throughput: batched upserts per second and lookups per second; and what the
//! journal costs on disk per file, with ids of the service's size (19 digits).
//! `cargo bench --bench journal [-- ROWS]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moi_ingest::api::Id;
use moi_ingest::journal::{Confirmed, Journal, Listed};

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // tmpfs when there is one: the journal's own cost, not this machine's disk.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let journal = Journal::open(&dir.path().join("bench.sqlite"), None).unwrap();
        let listed = |i: usize| Listed {
            path: format!("dir{}/file-{i:08}.pdf", i % 97),
            size: i as u64,
            mtime_ns: 1_700_000_000_000_000_000 + i as i64,
            sha256: None,
            inode: (0, 0),
        };
        // Many concurrent small writes, as the send stage issues them: group commit.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in (0..rows).collect::<Vec<_>>().chunks(16) {
            let j = journal.clone();
            let files: Vec<Listed> = chunk.iter().map(|&i| listed(i)).collect();
            let first = chunk[0] as u64;
            tasks.push(tokio::spawn(async move {
                j.begin_send(files.clone(), 1).await.unwrap();
                let confirmed = files
                    .into_iter()
                    .enumerate()
                    .map(|(k, f)| Confirmed {
                        file: f,
                        file_id: Some(Id(1_889_613_341_347_389_440 + first + k as u64)),
                        task_id: Some(Id(1_889_613_340_219_121_664 + first)),
                    })
                    .collect();
                j.confirm(confirmed).await.unwrap();
            }));
            if tasks.len() >= 64 {
                for t in tasks.drain(..) {
                    t.await.unwrap();
                }
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "journal: {rows} files marked in flight and confirmed in {secs:.2}s: {:.0} files/s",
            rows as f64 / secs
        );

        journal.checkpoint().await.unwrap();
        let bytes = std::fs::metadata(dir.path().join("bench.sqlite"))
            .unwrap()
            .len();
        println!(
            "journal: {:.0} bytes per file on disk ({rows} files, 20-byte paths, one task per 16)",
            bytes as f64 / rows as f64
        );

        let started = Instant::now();
        let mut found = 0;
        for chunk in (0..rows).collect::<Vec<_>>().chunks(256) {
            let paths = chunk.iter().map(|&i| listed(i).path).collect();
            found += journal
                .lookup(paths)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.is_some())
                .count();
        }
        assert_eq!(found, rows);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "journal: {rows} lookups (batches of 256) in {secs:.2}s: {:.0} lookups/s",
            rows as f64 / secs
        );
    });
}
