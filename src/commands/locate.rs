//! Which journal `status`, `retry` and `verify` work on: the one named with `--journal`,
//! the default one of (endpoint, volume, DIR), or, when some of those are left out (the
//! morning after a cron night, with no MOI_ENDPOINT in the shell), the one journal under
//! the state folder that fits what was given.

use std::path::{Path, PathBuf};

use crate::cli::{ConnectionArgs, JournalSelect};
use crate::config::{self, ConfigError};
use crate::journal::{Identity, Journal};

/// What the user gave to find a journal by; `None` fits anything.
#[derive(Default)]
struct Wanted {
    endpoint: Option<String>,
    volume: Option<String>,
    root: Option<String>,
    /// A shard's journals carry `-shardK` in their names.
    shard_suffix: Option<String>,
}

pub(super) async fn journal_path(
    sel: &JournalSelect,
    conn: &ConnectionArgs,
) -> Result<PathBuf, ConfigError> {
    if let Some(p) = &sel.journal.journal {
        let path = config::absolute(p);
        if !path.is_file() {
            return Err(ConfigError(format!(
                "there is no journal at {}: check the path, or leave --journal out to use \
                 the one the upload made",
                path.display()
            )));
        }
        return Ok(path);
    }
    let root = sel.dir.as_deref().map(config::root).transpose()?;
    let volume = sel.volume.as_deref().map(config::volume).transpose()?;
    let endpoint = match &conn.endpoint {
        Some(e) => Some(config::endpoint(Some(e), conn.allow_http)?),
        None => None,
    };
    let shard = config::shard(sel.shard.as_deref())?;
    let dir = config::journals_dir();
    if let (Some(e), Some(v), Some(r)) = (&endpoint, &volume, &root) {
        return exact_journal(config::identity(e, v, r), shard, dir.as_deref()).await;
    }
    let Some(dir) = dir else {
        return Err(ConfigError(
            "neither XDG_STATE_HOME nor HOME is set, so there are no default journals: pass \
             --journal PATH"
                .into(),
        ));
    };
    let wanted = Wanted {
        endpoint: endpoint.as_ref().map(config::endpoint_key),
        volume: volume.map(|v| v.to_string()),
        root: root.map(|r| r.display().to_string()),
        shard_suffix: shard.map(|s| format!("-shard{}", s.index)),
    };
    one_that_fits(&dir, &wanted).await
}

/// The journal of an upload whose folder, volume and endpoint are all given; when there is
/// none, the same folder and volume under another spelling of the endpoint is named.
async fn exact_journal(
    id: Identity,
    shard: Option<crate::pipeline::Shard>,
    dir: Option<&Path>,
) -> Result<PathBuf, ConfigError> {
    let path = config::default_journal(&id, shard)?;
    if path.is_file() {
        return Ok(path);
    }
    // The same folder and volume under another spelling of the endpoint (localhost
    // and 127.0.0.1, a trailing path) is worth naming.
    let elsewhere = Wanted {
        endpoint: None,
        volume: Some(id.volume.clone()),
        root: Some(id.root.clone()),
        shard_suffix: None,
    };
    let others: Vec<(PathBuf, Identity)> = match dir {
        Some(d) => journals_in(d)
            .await
            .into_iter()
            .filter(|(path, id)| elsewhere.fits(path, id))
            .collect(),
        None => Vec::new(),
    };
    let mut msg = format!(
        "there is no journal for {} (volume {}, endpoint {}) at {}: nothing was uploaded \
         with these options yet",
        id.root,
        id.volume,
        id.endpoint,
        path.display()
    );
    if !others.is_empty() {
        msg.push_str(
            ". This folder and volume have journals for other endpoints; pass one with \
             --journal:",
        );
        msg.push_str(&listing(&others));
    }
    Err(ConfigError(msg))
}

/// The one journal under `dir` that fits what was given, or a message that lists them.
async fn one_that_fits(dir: &Path, wanted: &Wanted) -> Result<PathBuf, ConfigError> {
    let all = journals_in(dir).await;
    let fits: Vec<(PathBuf, Identity)> = all
        .iter()
        .filter(|(path, id)| wanted.fits(path, id))
        .cloned()
        .collect();
    match fits.as_slice() {
        [(one, _)] => Ok(one.clone()),
        [] => {
            if all.is_empty() {
                Err(ConfigError(format!(
                    "there is no journal under {} yet: run `moi-ingest upload DIR --volume ID` \
                     first, or name a journal with --journal PATH",
                    dir.display()
                )))
            } else {
                Err(ConfigError(format!(
                    "none of the journals under {} is for {}; they are:{}",
                    dir.display(),
                    wanted.describe(),
                    listing(&all)
                )))
            }
        }
        several => Err(ConfigError(format!(
            "{} journals under {} fit{}: name one with --journal, or give the folder, \
             --volume and the endpoint (MOI_ENDPOINT) it was uploaded with:{}",
            several.len(),
            dir.display(),
            if wanted.is_any() {
                String::new()
            } else {
                format!(" {}", wanted.describe())
            },
            listing(several)
        ))),
    }
}

impl Wanted {
    fn fits(&self, path: &Path, id: &Identity) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        same(&self.endpoint, &id.endpoint)
            && same(&self.volume, &id.volume)
            && same(&self.root, &id.root)
            && self
                .shard_suffix
                .as_deref()
                .is_none_or(|s| stem.as_deref().is_some_and(|n| n.ends_with(s)))
    }

    fn is_any(&self) -> bool {
        self.endpoint.is_none()
            && self.volume.is_none()
            && self.root.is_none()
            && self.shard_suffix.is_none()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.root {
            parts.push(format!("folder {r}"));
        }
        if let Some(v) = &self.volume {
            parts.push(format!("volume {v}"));
        }
        if let Some(e) = &self.endpoint {
            parts.push(format!("endpoint {e}"));
        }
        if let Some(s) = &self.shard_suffix {
            parts.push(format!("shard {}", s.trim_start_matches("-shard")));
        }
        parts.join(", ")
    }
}

/// The journals under `dir` with what each is for, sorted by path. A file that is not a
/// readable journal is passed over: the folder is ours, but a user may have put anything
/// there.
pub(super) async fn journals_in(dir: &Path) -> Vec<(PathBuf, Identity)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite") && p.is_file())
        .collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let Ok(journal) = Journal::open_read_only(&path) else {
            continue;
        };
        if let Ok(Some(id)) = journal.identity().await {
            found.push((path, id));
        }
    }
    found
}

fn listing(journals: &[(PathBuf, Identity)]) -> String {
    journals
        .iter()
        .map(|(path, id)| {
            format!(
                "\n  {}\n      folder {}, volume {}, endpoint {}",
                path.display(),
                id.root,
                id.volume,
                id.endpoint
            )
        })
        .collect()
}
