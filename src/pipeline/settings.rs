//! What a night is told: the upload's settings (dedup, batching, retries, the shard), as
//! `config` builds them from the flags and the journal records them.

use std::path::PathBuf;
use std::time::Duration;

use crate::api::VolumeId;
use crate::api::model::Dedup;
use crate::mirror::MirrorSettings;
use crate::walk::WalkOptions;

use super::FollowSettings;
use super::outage;

/// What the upload's `dedup` part says (see the README's "Dedup" section).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DedupMode {
    /// `replace` by name only where a version of the file may already be stored at its path
    /// (re-sends, retries), and only when no other path in the journal shares its base
    /// name; nothing otherwise. Never loses a file whatever `name` means to the service.
    #[default]
    Auto,
    /// `{"by": BY, "strategy": "replace"}` on every request.
    Replace,
    /// `{"by": BY, "strategy": "skip"}` on every request.
    Skip,
    /// No `dedup` part at all (for a service that refuses it).
    Off,
}

impl DedupMode {
    /// The `dedup` part every request carries, for the modes that fix one.
    pub fn fixed(self, by: &[String]) -> Option<Dedup> {
        let strategy = match self {
            DedupMode::Replace => "replace",
            DedupMode::Skip => "skip",
            DedupMode::Auto | DedupMode::Off => return None,
        };
        Some(Dedup {
            by: by.to_vec(),
            strategy: strategy.into(),
        })
    }
}

/// How uploads are sent and retried. Recorded in the journal (see [`crate::run`]), so a
/// field added later needs a default.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SendSettings {
    pub volume: VolumeId,
    /// A folder in the volume that every path goes under (`--prefix`), without slashes
    /// at either end.
    pub prefix: Option<String>,
    pub dedup: DedupMode,
    /// `dedup.by` for `--dedup replace|skip` (default `["name"]`).
    pub dedup_by: Vec<String>,
    pub concurrency: usize,
    /// Attempts per file (the first one included) before a transient failure is final.
    pub attempts: u32,
    /// Passes over the files that failed only transiently, the first included (`--retries`).
    pub passes: u32,
    /// Retries the whole run may spend on transient failures.
    pub retry_budget: u64,
    /// First backoff delay; later ones grow exponentially, with full jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Identical permanent errors in a row, with no success between, that stop the run.
    pub breaker: u32,
    /// Send base names instead of paths relative to the folder.
    pub base_names: bool,
    /// Compare content (SHA-256) as well as size and modification time.
    pub checksum: bool,
    /// Pack up to this many files into one request (1: one file per request).
    pub batch_files: usize,
    /// ...as long as the batch stays under this many bytes.
    pub batch_bytes: u64,
    /// At most this many upload requests start per second (`--tps-limit`).
    pub tps_limit: Option<f64>,
    /// `--concurrency auto`: adapt the requests in flight to the service, up to
    /// `concurrency` (then `--max-concurrency`).
    pub adaptive: bool,
    /// Only files whose path hashes to this shard (`--shard K/N`).
    pub shard: Option<Shard>,
    /// How long a service that answered before may go without answering anything before
    /// the run stops with exit 7 (`--unreachable-timeout`).
    pub unreachable_timeout: Duration,
}

/// `--shard K/N`: this process takes the files whose relative path hashes to K of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `path` is this shard's: jump consistent hash (Lamping and Veach) of a
    /// stable 64-bit hash of the path, so that going from N to N+1 shards moves only
    /// 1/(N+1) of the files, and every machine agrees.
    pub fn owns(&self, path: &str) -> bool {
        jump(fnv1a(path.as_bytes()), self.count) == self.index
    }
}

/// FNV-1a, 64 bits: stable across machines and Rust versions (the std hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// Files per request by default. The vendor's SDKs send several files per request in their
/// live tests; the README's performance section has the measurements behind these numbers.
pub const DEFAULT_BATCH_FILES: usize = 32;
/// Largest total size of a multi-file request by default; a larger file goes alone.
pub const DEFAULT_BATCH_BYTES: u64 = 4 * 1024 * 1024;

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            volume: VolumeId::default(),
            prefix: None,
            dedup: DedupMode::Auto,
            dedup_by: vec!["name".into()],
            concurrency: 8,
            attempts: 5,
            passes: 3,
            retry_budget: 10_000,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            breaker: 8,
            base_names: false,
            checksum: false,
            batch_files: DEFAULT_BATCH_FILES,
            batch_bytes: DEFAULT_BATCH_BYTES,
            tps_limit: None,
            adaptive: false,
            shard: None,
            unreachable_timeout: outage::DEFAULT_UNREACHABLE_TIMEOUT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct UploadSettings {
    pub root: PathBuf,
    pub walk: WalkOptions,
    pub send: SendSettings,
    pub follow: FollowSettings,
    /// Upload and stop; ingestion is followed by the next run or `status --follow`.
    pub no_wait: bool,
    pub dry_run: bool,
    /// How long in-flight uploads may take to finish after the first Ctrl-C.
    pub drain_timeout: Duration,
    /// Upload only the files this list names (`--files-from`; `-` is stdin), not the walk.
    pub files_from: Option<PathBuf>,
    /// The cut-off (`--max-duration`): after it no new upload starts, in-flight ones drain
    /// and the run ends with exit 6. It covers the upload phase; following has
    /// `--wait-timeout`.
    pub max_duration: Option<Duration>,
    /// `--delete`, `--max-delete`, `--adopt`.
    pub mirror: MirrorSettings,
}

impl UploadSettings {
    /// Uploading `root` to `volume` with every other setting at its default.
    pub fn new(root: PathBuf, volume: VolumeId) -> Self {
        UploadSettings {
            root,
            walk: WalkOptions::default(),
            send: SendSettings {
                volume,
                ..SendSettings::default()
            },
            follow: FollowSettings::default(),
            no_wait: false,
            dry_run: false,
            drain_timeout: Duration::from_secs(30),
            files_from: None,
            max_duration: None,
            mirror: MirrorSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_split_evenly_and_growing_moves_files_only_into_the_new_shard() {
        let paths: Vec<String> = (0..20_000)
            .map(|i| format!("d{}/file-{i}.pdf", i % 97))
            .collect();
        let owner = |p: &str, n: u32| {
            (0..n)
                .find(|k| {
                    Shard {
                        index: *k,
                        count: n,
                    }
                    .owns(p)
                })
                .unwrap()
        };
        let mut per = [0usize; 8];
        for p in &paths {
            per[owner(p, 8) as usize] += 1;
        }
        for n in per {
            assert!((2_250..2_750).contains(&n), "uneven split: {per:?}");
        }
        let moved: Vec<(u32, u32)> = paths
            .iter()
            .map(|p| (owner(p, 8), owner(p, 9)))
            .filter(|(a, b)| a != b)
            .collect();
        assert!(
            moved.iter().all(|(_, to)| *to == 8),
            "a file moved between old shards"
        );
        let share = moved.len() as f64 / paths.len() as f64;
        assert!(
            (0.09..0.13).contains(&share),
            "{share} moved, about 1/9 expected"
        );
    }
}
