//! The planner's decision, without I/O: what becomes of one walked file given what the
//! journal recorded of it, and which `dedup` part its request carries.

use super::super::{DedupMode, SendSettings};
use super::{DedupClass, Reason};
use crate::journal::{FileRecord, FileState, REFUSED};

/// What the planner does with one walked file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It goes out, for this reason.
    Send(Reason),
    /// As confirmed: nothing to do.
    Unchanged,
    /// As confirmed, before its hash was recorded (`--checksum` on a tree confirmed
    /// without it): its hash is recorded, not the file sent again.
    RecordHash,
    /// As confirmed, before inodes were recorded: its inode is recorded, once, so that a
    /// later rename of it is known.
    RecordInode,
    /// Refused for good and unchanged since: the refusal stands, and is not tonight's
    /// failure.
    RefusedEarlier,
}

/// What the walk found of a file (and its hash, with `--checksum`).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: Option<&'a [u8]>,
    pub inode: (u64, u64),
}

pub fn plan_file(seen: Seen<'_>, rec: Option<&FileRecord>) -> Decision {
    let as_recorded =
        |r: &FileRecord| !r.in_flight && r.size == seen.size && r.mtime_ns == seen.mtime_ns;
    if let (Some(_), Some(r)) = (seen.sha256, rec)
        && r.sha256.is_none()
        && r.state.is_confirmed()
        && as_recorded(r)
    {
        return Decision::RecordHash;
    }
    if let Some(r) = rec
        && r.state == FileState::Failed
        && r.fail_stage.as_deref() == Some(REFUSED)
        && as_recorded(r)
    {
        return Decision::RefusedEarlier;
    }
    match decide(seen.size, seen.mtime_ns, seen.sha256, rec) {
        Some(reason) => Decision::Send(reason),
        None if rec.is_some_and(|r| r.inode.is_none()) && seen.inode != (0, 0) => {
            Decision::RecordInode
        }
        None => Decision::Unchanged,
    }
}

/// Whether `file` needs sending, given what the journal recorded of it.
pub fn decide(
    size: u64,
    mtime_ns: i64,
    sha: Option<&[u8]>,
    rec: Option<&FileRecord>,
) -> Option<Reason> {
    let Some(rec) = rec.filter(|r| r.state != FileState::Deleted) else {
        return Some(Reason::New);
    };
    if rec.in_flight {
        return Some(Reason::Interrupted);
    }
    let same_content = sha.is_none_or(|h| rec.sha256.as_deref() == Some(h));
    if rec.size != size || rec.mtime_ns != mtime_ns || !same_content {
        return Some(Reason::Changed);
    }
    match rec.state {
        s if s.is_confirmed() => None,
        // Ingestion failures are re-driven by /task/retry, not by sending the file again.
        FileState::Failed if rec.fail_stage.as_deref() == Some("ingest") => None,
        FileState::Failed => Some(Reason::Failed),
        _ => Some(Reason::Unconfirmed),
    }
}

/// Under `--dedup auto`, the `dedup` part of a file that goes out for `reason`, when
/// another path has the same base name (`shared`) or not.
pub fn dedup_class(mode: DedupMode, shared: bool, reason: Reason) -> DedupClass {
    match (mode, shared, reason) {
        (DedupMode::Auto, false, Reason::New) => DedupClass::OnRetry,
        (DedupMode::Auto, false, _) => DedupClass::Always,
        // A service that reads dedup names as base names would replace the other path's
        // file: sent without a dedup part, the old version removed by id once this one is
        // confirmed (the copies check).
        _ => DedupClass::Never,
    }
}

/// The file's path in the volume: below `--prefix`, and only the base name with
/// `--base-names`.
pub fn wire_name(rel: &str, send: &SendSettings) -> String {
    let name = if send.base_names {
        rel.rsplit('/').next().unwrap_or(rel)
    } else {
        rel
    };
    match &send.prefix {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: FileState) -> FileRecord {
        FileRecord {
            path: "a.pdf".into(),
            size: 10,
            mtime_ns: 5,
            sha256: None,
            state,
            fail_stage: None,
            in_flight: false,
            file_id: None,
            task_id: None,
            inode: Some((1, 2)),
        }
    }

    fn seen() -> Seen<'static> {
        Seen {
            size: 10,
            mtime_ns: 5,
            sha256: None,
            inode: (1, 2),
        }
    }

    #[test]
    fn a_file_goes_out_for_its_reason() {
        assert_eq!(plan_file(seen(), None), Decision::Send(Reason::New));
        let deleted = record(FileState::Deleted);
        assert_eq!(
            plan_file(seen(), Some(&deleted)),
            Decision::Send(Reason::New)
        );
        let mut sending = record(FileState::Uploaded);
        sending.in_flight = true;
        assert_eq!(
            plan_file(seen(), Some(&sending)),
            Decision::Send(Reason::Interrupted)
        );
        let grown = Seen { size: 11, ..seen() };
        let confirmed = record(FileState::Ingested);
        assert_eq!(
            plan_file(grown, Some(&confirmed)),
            Decision::Send(Reason::Changed)
        );
        let failed = record(FileState::Failed);
        assert_eq!(
            plan_file(seen(), Some(&failed)),
            Decision::Send(Reason::Failed)
        );
        let pending = record(FileState::Pending);
        assert_eq!(
            plan_file(seen(), Some(&pending)),
            Decision::Send(Reason::Unconfirmed)
        );
    }

    #[test]
    fn a_confirmed_file_as_recorded_stays() {
        for state in [
            FileState::Uploaded,
            FileState::Ingesting,
            FileState::Ingested,
        ] {
            assert_eq!(plan_file(seen(), Some(&record(state))), Decision::Unchanged);
        }
        let mut ingest_failed = record(FileState::Failed);
        ingest_failed.fail_stage = Some("ingest".into());
        assert_eq!(plan_file(seen(), Some(&ingest_failed)), Decision::Unchanged);
    }

    #[test]
    fn checksums_back_fill_and_decide() {
        let hash = [7u8; 32];
        let hashed = Seen {
            sha256: Some(&hash),
            ..seen()
        };
        let confirmed = record(FileState::Uploaded);
        assert_eq!(plan_file(hashed, Some(&confirmed)), Decision::RecordHash);
        let mut other = record(FileState::Uploaded);
        other.sha256 = Some(vec![1; 32]);
        assert_eq!(
            plan_file(hashed, Some(&other)),
            Decision::Send(Reason::Changed)
        );
        other.sha256 = Some(hash.to_vec());
        assert_eq!(plan_file(hashed, Some(&other)), Decision::Unchanged);
    }

    #[test]
    fn a_refusal_stands_until_the_file_changes() {
        let mut refused = record(FileState::Failed);
        refused.fail_stage = Some(REFUSED.into());
        assert_eq!(plan_file(seen(), Some(&refused)), Decision::RefusedEarlier);
        let touched = Seen {
            mtime_ns: 6,
            ..seen()
        };
        assert_eq!(
            plan_file(touched, Some(&refused)),
            Decision::Send(Reason::Changed)
        );
    }

    #[test]
    fn an_inode_is_recorded_once_where_one_is_known() {
        let mut old = record(FileState::Ingested);
        old.inode = None;
        assert_eq!(plan_file(seen(), Some(&old)), Decision::RecordInode);
        let unknown = Seen {
            inode: (0, 0),
            ..seen()
        };
        assert_eq!(plan_file(unknown, Some(&old)), Decision::Unchanged);
    }

    #[test]
    fn dedup_parts_under_auto() {
        use DedupMode::*;
        assert_eq!(dedup_class(Auto, false, Reason::New), DedupClass::OnRetry);
        assert_eq!(
            dedup_class(Auto, false, Reason::Changed),
            DedupClass::Always
        );
        assert_eq!(dedup_class(Auto, true, Reason::Changed), DedupClass::Never);
        assert_eq!(dedup_class(Replace, false, Reason::New), DedupClass::Never);
    }

    #[test]
    fn wire_names_go_under_the_prefix() {
        let mut s = SendSettings::default();
        assert_eq!(wire_name("a/b.pdf", &s), "a/b.pdf");
        s.prefix = Some("nightly/2026".into());
        assert_eq!(wire_name("a/b.pdf", &s), "nightly/2026/a/b.pdf");
        s.base_names = true;
        assert_eq!(wire_name("a/b.pdf", &s), "nightly/2026/b.pdf");
    }
}
