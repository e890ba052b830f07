//! What the walk takes and leaves: the user's `--include`/`--exclude` globs and filters,
//! hidden files, and names MOI cannot hold.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{WalkError, WalkOptions};

pub(super) struct Matcher {
    by_name: GlobSet,
    by_path: GlobSet,
    pub(super) any: bool,
}

impl Matcher {
    pub(super) fn new(patterns: &[String], what: &'static str) -> Result<Matcher, WalkError> {
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for p in patterns {
            // `*` stays within one folder; `**` crosses folders, as in rsync and rclone.
            let glob = GlobBuilder::new(p.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .map_err(|source| WalkError::Glob {
                    what,
                    pattern: p.clone(),
                    source,
                })?;
            if p.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder, pattern: &str| {
            b.build().map_err(|source| WalkError::Glob {
                what,
                pattern: pattern.to_string(),
                source,
            })
        };
        Ok(Matcher {
            by_name: build(by_name, "")?,
            by_path: build(by_path, "")?,
            any: !patterns.is_empty(),
        })
    }

    pub(super) fn matches(&self, rel: &str) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.by_name.is_match(name) || self.by_path.is_match(rel)
    }
}

/// The path below `root`, `/`-separated; `None` when it is not valid UTF-8. The walk
/// builds every path as `root/...`, so slicing the bytes is exact (and, per file of a
/// million, much cheaper than comparing components).
pub(super) fn rel_path(root: &Path, path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let (root, path) = (root.as_os_str().as_bytes(), path.as_os_str().as_bytes());
    let rest = path.strip_prefix(root)?;
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    std::str::from_utf8(rest).ok().map(str::to_string)
}

/// Why MOI cannot take `rel` as a name, if it cannot: a control character (a tab, a
/// newline) is refused by the service, so the file is left out here, once, instead of
/// failing every night.
pub(super) fn unusable_name(rel: &str) -> Option<&'static str> {
    rel.chars()
        .any(char::is_control)
        .then_some("its name has a control character (a tab or a newline), which MOI names cannot hold; rename it to upload it")
}

pub(super) fn is_hidden(rel: &str) -> bool {
    rel.rsplit('/').next().is_some_and(|n| n.starts_with('.'))
}

/// The user's filters, checked.
pub(super) struct Filters {
    pub(super) options: WalkOptions,
    pub(super) include: Matcher,
    pub(super) exclude: Matcher,
    pub(super) extensions: Vec<String>,
}

impl Filters {
    /// Whether the walk goes into the folder at `path` (not for the root itself).
    pub(super) fn enters(&self, root: &Path, path: &Path) -> bool {
        match rel_path(root, path) {
            Some(rel) => {
                (self.options.hidden || !is_hidden(&rel))
                    && !(self.exclude.any && self.exclude.matches(&rel))
            }
            None => true,
        }
    }
}
