//! Journal throughput: batched upserts per second and lookups per second.
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
        };
        // Many concurrent small writes, as the send stage issues them: group commit.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in (0..rows).collect::<Vec<_>>().chunks(16) {
            let j = journal.clone();
            let files: Vec<Listed> = chunk.iter().map(|&i| listed(i)).collect();
            tasks.push(tokio::spawn(async move {
                j.begin_send(files.clone(), 1).await.unwrap();
                let confirmed = files
                    .into_iter()
                    .map(|f| Confirmed {
                        file: f,
                        file_id: Some(Id(1)),
                        task_id: Some(Id(2)),
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
