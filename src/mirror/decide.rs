//! The mirror's decisions, as pure functions: what shape a rename has, whether a night's
//! deletes fit under the cap, and which copies at one path go.

use crate::api::catalog::CatalogEntry;

/// `--max-delete`: how many of the files the volume holds for this folder one night may
/// delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MaxDelete {
    Count(u64),
    Percent(u32),
    Off,
}

/// A quarter: a night that deletes one file in ten passes, one that deletes half never
/// does, so an emptied or unmounted folder is always refused (see `docs/mirroring.md`).
pub const DEFAULT_MAX_DELETE: MaxDelete = MaxDelete::Percent(25);

impl Default for MaxDelete {
    fn default() -> Self {
        DEFAULT_MAX_DELETE
    }
}

impl std::str::FromStr for MaxDelete {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(MaxDelete::Off);
        }
        let bad = || {
            format!(
                "--max-delete '{s}' is not a limit: give a count (100), a percentage of the \
                 files the volume holds for this folder (10%), or off"
            )
        };
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Ok(MaxDelete::Percent(p)),
                _ => Err(bad()),
            },
            None => s.parse().map(MaxDelete::Count).map_err(|_| bad()),
        }
    }
}

impl std::fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
            MaxDelete::Off => f.write_str("off"),
        }
    }
}

/// Whether deleting `deletes` of the `held` files the volume holds for this folder is
/// within `max`; `Err` says why not.
pub fn within_cap(deletes: u64, held: u64, max: MaxDelete) -> Result<(), String> {
    let allowed = match max {
        MaxDelete::Off => return Ok(()),
        MaxDelete::Count(n) => deletes <= n,
        MaxDelete::Percent(p) => deletes * 100 <= u64::from(p) * held,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "{deletes} of the {held} files the volume holds for this folder would be deleted, \
             more than --max-delete {max} allows"
        ))
    }
}

/// How a file got from one path to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Another name in the same folder: one `/catalog/file/update`.
    SameFolder,
    /// One folder on the way was renamed in place (`a/old/x/f` → `a/new/x/f`): these are
    /// the old and new paths of that folder.
    FolderRenamed { from: String, to: String },
    /// Anything else: the catalog has no move, so it is sent at the new path and the old
    /// copy deleted.
    Move,
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

pub fn shape(from: &str, to: &str) -> Shape {
    if parent(from) == parent(to) {
        return Shape::SameFolder;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (from.split('/').collect(), to.split('/').collect());
    if a.len() != b.len() || a.last() != b.last() {
        return Shape::Move;
    }
    let differing: Vec<usize> = (0..a.len()).filter(|i| a[*i] != b[*i]).collect();
    match differing.as_slice() {
        [i] => Shape::FolderRenamed {
            from: a[..=*i].join("/"),
            to: b[..=*i].join("/"),
        },
        _ => Shape::Move,
    }
}

/// Of the catalog entries standing for one path, which to delete so that one remains:
/// the one the service confirmed (`keep_id`, the upload's file id) when it is listed,
/// else the newest of the confirmed size. `None`: none can be told apart safely, so none
/// is deleted.
pub fn extra_copies(
    entries: &[CatalogEntry],
    keep_id: Option<&str>,
    size: u64,
) -> Option<Vec<String>> {
    if entries.len() < 2 {
        return Some(Vec::new());
    }
    let keep = match keep_id.and_then(|k| entries.iter().find(|e| e.id == k)) {
        Some(e) => e.id.clone(),
        None => {
            let sized: Vec<&CatalogEntry> = entries.iter().filter(|e| e.size == size).collect();
            let newest = sized.iter().map(|e| e.created_unix()).max()??;
            let mut at_newest = sized.iter().filter(|e| e.created_unix() == Some(newest));
            let one = at_newest.next()?;
            if at_newest.next().is_some() {
                return None;
            }
            one.id.clone()
        }
    };
    Some(
        entries
            .iter()
            .filter(|e| e.id != keep)
            .map(|e| e.id.clone())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_passes_a_tenth_and_refuses_half() {
        assert!(within_cap(100, 1000, DEFAULT_MAX_DELETE).is_ok());
        assert!(within_cap(250, 1000, DEFAULT_MAX_DELETE).is_ok());
        assert!(within_cap(251, 1000, DEFAULT_MAX_DELETE).is_err());
        assert!(within_cap(500, 1000, DEFAULT_MAX_DELETE).is_err());
        assert!(within_cap(2, 2, DEFAULT_MAX_DELETE).is_err());
        assert!(within_cap(5, 5, MaxDelete::Off).is_ok());
        assert!(within_cap(3, 5, MaxDelete::Count(3)).is_ok());
        assert!(within_cap(4, 5, MaxDelete::Count(3)).is_err());
    }

    #[test]
    fn max_delete_parses_counts_percentages_and_off() {
        assert_eq!("10%".parse(), Ok(MaxDelete::Percent(10)));
        assert_eq!("7".parse(), Ok(MaxDelete::Count(7)));
        assert_eq!("OFF".parse(), Ok(MaxDelete::Off));
        assert!("120%".parse::<MaxDelete>().is_err());
        assert!("lots".parse::<MaxDelete>().is_err());
    }

    #[test]
    fn rename_shapes() {
        assert_eq!(shape("a/x.pdf", "a/y.pdf"), Shape::SameFolder);
        assert_eq!(shape("x.pdf", "y.pdf"), Shape::SameFolder);
        assert_eq!(
            shape("a/old/x/f.pdf", "a/new/x/f.pdf"),
            Shape::FolderRenamed {
                from: "a/old".into(),
                to: "a/new".into()
            }
        );
        assert_eq!(shape("a/f.pdf", "b/c/f.pdf"), Shape::Move);
        assert_eq!(shape("a/f.pdf", "b/g.pdf"), Shape::Move);
        assert_eq!(shape("a/b/f.pdf", "c/d/f.pdf"), Shape::Move);
    }

    fn e(id: &str, size: u64, created: &str) -> CatalogEntry {
        CatalogEntry {
            id: id.into(),
            size,
            created_at: created.into(),
            ..CatalogEntry::default()
        }
    }

    #[test]
    fn extra_copies_keep_the_confirmed_one() {
        let entries = [e("1", 5, "100"), e("2", 7, "200"), e("3", 7, "300")];
        assert_eq!(
            extra_copies(&entries, Some("2"), 7),
            Some(vec!["1".into(), "3".into()])
        );
        // The confirmed id is not listed (another id space): the newest of its size stays.
        assert_eq!(
            extra_copies(&entries, Some("9"), 7),
            Some(vec!["1".into(), "2".into()])
        );
        // Two newest of that size: they cannot be told apart, nothing goes.
        let tied = [e("1", 7, "300"), e("2", 7, "300")];
        assert_eq!(extra_copies(&tied, None, 7), None);
        assert_eq!(extra_copies(&entries[..1], None, 5), Some(vec![]));
    }
}
