//! What a volume holds, and the upload's `dedup` part, read the way moi-ingest documents it.
//!
//! The vendor leaves `dedup` undefined beyond its names. The emulator implements exactly
//! this reading (the README's "Dedup" section says why):
//!
//! - `"name"` matches a file **at the same path in the volume** (folder and file name), as
//!   a file system would; two `report.pdf` in different folders never match by name.
//! - `"md5"` matches a file with the same content anywhere in the volume.
//! - Several criteria match when **any** of them does (the Go SDK: "skip files that have
//!   the same name or MD5 hash").
//! - `"skip"`: a file that matches is not stored; the answer still succeeds for it and
//!   names the file it duplicates. `"replace"`: every file it matches leaves the volume,
//!   and the new one is stored.
//! - Without `dedup`, every upload is stored: a second upload to the same path leaves two
//!   files listed at that path (the newest bytes on disk). That is what a client that does
//!   not ask for dedup gets, and what the tests count as a duplicate.

use serde::Deserialize;

/// A checked `dedup` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupRule {
    pub by_name: bool,
    pub by_md5: bool,
    pub replace: bool,
}

#[derive(Deserialize)]
struct RawDedup {
    #[serde(default)]
    by: Vec<String>,
    #[serde(default)]
    strategy: String,
}

impl DedupRule {
    /// Parses the part; `Err` says what is wrong, for a 400.
    pub fn parse(text: &str) -> Result<DedupRule, String> {
        let raw: RawDedup = serde_json::from_str(text).map_err(|e| {
            format!(
                "dedup must be JSON like {{\"by\": [\"name\"], \"strategy\": \"replace\"}}: {e}"
            )
        })?;
        let mut rule = DedupRule {
            by_name: false,
            by_md5: false,
            replace: false,
        };
        for b in &raw.by {
            match b.as_str() {
                "name" => rule.by_name = true,
                "md5" => rule.by_md5 = true,
                other => {
                    return Err(format!(
                        "dedup.by '{other}' is not a criterion; use \"name\" and/or \"md5\""
                    ));
                }
            }
        }
        if raw.by.is_empty() {
            return Err("dedup.by is empty; list \"name\" and/or \"md5\"".into());
        }
        rule.replace = match raw.strategy.as_str() {
            "replace" => true,
            "skip" => false,
            other => {
                return Err(format!(
                    "dedup.strategy '{other}' is not a strategy; use \"skip\" or \"replace\""
                ));
            }
        };
        Ok(rule)
    }
}

/// What happens to one uploaded file.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not stored: the volume already holds it (the path of the file it duplicates).
    Skip(String),
    /// Stored; these files (id, path) leave the volume first.
    Store { replace: Vec<(i64, String)> },
}

/// Applies `rule` to a file, given the live files at its path and with its MD5.
pub fn decide(
    rule: Option<&DedupRule>,
    same_path: &[(i64, String)],
    same_md5: &[(i64, String)],
) -> Decision {
    let Some(rule) = rule else {
        return Decision::Store {
            replace: Vec::new(),
        };
    };
    let mut matched: Vec<(i64, String)> = Vec::new();
    if rule.by_name {
        matched.extend(same_path.iter().cloned());
    }
    if rule.by_md5 {
        matched.extend(same_md5.iter().cloned());
    }
    matched.sort();
    matched.dedup();
    match (rule.replace, matched.first()) {
        (false, Some((_, path))) => Decision::Skip(path.clone()),
        (false, None) => Decision::Store {
            replace: Vec::new(),
        },
        (true, _) => Decision::Store { replace: matched },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> DedupRule {
        DedupRule::parse(text).unwrap()
    }

    #[test]
    fn the_documented_reading() {
        let at_path = vec![(1, "a/x.pdf".to_string())];
        let same_bytes = vec![(2, "b/y.pdf".to_string())];
        let by_name_replace = rule(r#"{"by":["name"],"strategy":"replace"}"#);
        assert_eq!(
            decide(Some(&by_name_replace), &at_path, &same_bytes),
            Decision::Store {
                replace: at_path.clone()
            }
        );
        // Same content elsewhere is not the same name.
        assert_eq!(
            decide(Some(&by_name_replace), &[], &same_bytes),
            Decision::Store { replace: vec![] }
        );
        let either_skip = rule(r#"{"by":["name","md5"],"strategy":"skip"}"#);
        assert_eq!(
            decide(Some(&either_skip), &[], &same_bytes),
            Decision::Skip("b/y.pdf".into())
        );
        assert_eq!(
            decide(None, &at_path, &same_bytes),
            Decision::Store { replace: vec![] }
        );
        for bad in [
            r#"{"by":[],"strategy":"skip"}"#,
            r#"{"by":["size"],"strategy":"skip"}"#,
            r#"{"by":["name"],"strategy":"merge"}"#,
            "nope",
        ] {
            assert!(DedupRule::parse(bad).is_err(), "{bad}");
        }
    }
}
