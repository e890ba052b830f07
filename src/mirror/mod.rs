//! Mirroring: the volume follows the folder. After the night's uploads are confirmed,
//! files whose source is gone are deleted from the volume (`--delete`), renamed files
//! and folders are renamed there instead of sent again, and every path the night sent
//! keeps one version.
//!
//! Deleting is done with more care than uploading. Every rail is checked before the first
//! delete, so a night deletes as planned or deletes nothing ([`Plan::withheld`]): a walk
//! that met errors, more deletes than `--max-delete`, an emptied folder, a service without
//! the catalog calls. Only files this journal put in the volume are ever deleted, each
//! by the id a full listing of its folder shows at its path, and only when that entry has
//! the size the journal recorded. `docs/mirroring.md` has the rails and the readings of
//! the live service behind them.

pub mod adopt;
pub mod decide;
pub mod scan;
pub mod volume;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;

use crate::api::catalog::{FileDelete, FileRename, FolderDelete, FolderRename, is_not_found};
use crate::api::{ApiError, Client, Id};
use crate::journal::{Held, Journal, JournalError};
use crate::report::RunStats;
use crate::walk::WalkedFile;

use decide::{MaxDelete, Shape, within_cap};
use scan::{NightScan, Renamed, gone_from_disk};
use volume::{VolumeView, base, join, parent, retrying};

/// Deletes and renames in flight at once.
const CONCURRENCY: usize = 8;
/// Journal rows read at a time while looking for gone files.
const PAGE: u32 = 4096;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MirrorSettings {
    /// `--delete`: remove from the volume what this journal put there and the folder lost.
    pub delete: bool,
    pub max_delete: MaxDelete,
    /// `--adopt`: a file new to the journal that the volume holds at its path with its
    /// size is recorded, not sent.
    pub adopt: bool,
}

/// What the folder and the volume are, for the mirror.
pub struct Scope<'a> {
    pub client: &'a Client,
    pub journal: &'a Journal,
    pub run_id: i64,
    pub stats: &'a Arc<RunStats>,
    pub volume: &'a str,
    /// `--prefix`: the folder in the volume the folder's paths go under.
    pub prefix: Option<&'a str>,
    pub root: &'a Path,
}

impl Scope<'_> {
    fn in_volume(&self, rel: &str) -> String {
        match self.prefix {
            Some(p) => join(p, rel),
            None => rel.to_string(),
        }
    }
}

/// A change the night makes to the volume (what `--dry-run` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Delete {
        path: String,
        size: u64,
    },
    Rename {
        from: String,
        to: String,
    },
    RenameFolder {
        from: String,
        to: String,
        files: usize,
    },
}

/// What [`prepare`] decided.
#[derive(Debug, Default)]
pub struct Plan {
    /// A rail refused: nothing is deleted tonight, and this says why and what to do.
    pub withheld: Option<String>,
    pub changes: Vec<Change>,
    /// Renamed files the catalog cannot rename in place: they are sent at their new
    /// path, and their old copy is deleted once that is confirmed.
    pub resend: Vec<WalkedFile>,
    deletes: Vec<Held>,
}

/// What went wrong while changing the volume (the night exits 1; the rest was done).
pub type Trouble = Vec<String>;

/// The rails, the gone files and the rename plan; the renames are made here unless this
/// is a dry run. Deletes wait for [`finish`], after `resend` is confirmed.
pub async fn prepare(
    scope: &Scope<'_>,
    settings: &MirrorSettings,
    scan: &NightScan,
    dry_run: bool,
) -> Result<(Plan, Trouble), JournalError> {
    let mut plan = Plan::default();
    let mut trouble = Trouble::new();
    let renamed = scan.take_renamed();
    // A night whose deletes are withheld still sends the renamed files at their new paths
    // (held back by the planner), so they arrive; their old copies wait for a night that
    // deletes.
    let withhold = |mut plan: Plan, why: String, files: Vec<WalkedFile>| {
        plan.withheld = Some(why);
        plan.resend = files;
        plan
    };
    let mut view = VolumeView::new(scope.client, scope.volume);
    if let Some(why) = first_rails(scope, scan, &view).await {
        let files = renamed.into_iter().map(|r| r.to).collect();
        return Ok((withhold(plan, why, files), trouble));
    }
    let renamed_from: BTreeSet<String> = renamed.iter().map(|r| r.from.clone()).collect();
    let held = scope.journal.count_in_volume().await?;
    let limit = match settings.max_delete {
        MaxDelete::Off => u64::MAX,
        MaxDelete::Count(n) => n,
        MaxDelete::Percent(p) => u64::from(p) * held / 100,
    };
    let gone = gone_files(scope, scan, &renamed_from, limit).await?;
    let gone_capped = gone.len() as u64 > limit.saturating_add(renamed_from.len() as u64);
    let (renames, resend) = plan_renames(scope, &mut view, renamed).await?;
    let resend_olds: Vec<Held> = resend.iter().map(|r| r.0.clone()).collect();
    let deletes: Vec<Held> = gone.into_iter().chain(resend_olds).collect();
    let count = DeleteCount {
        deletes: deletes.len() as u64,
        held,
        capped: gone_capped,
    };
    if let Some(why) = delete_rails(scope, settings, scan, count) {
        let files = moved_files(&renames, &resend);
        return Ok((withhold(plan, why, files), trouble));
    }
    plan.changes
        .extend(renames.iter().map(|r| r.change.clone()));
    plan.changes.extend(deletes.iter().map(|d| Change::Delete {
        path: d.path.clone(),
        size: d.size,
    }));
    plan.resend = resend.into_iter().map(|r| r.1).collect();
    plan.deletes = deletes;
    if !dry_run {
        for r in renames {
            if let Err(e) = apply_rename(scope, &mut view, r).await? {
                trouble.push(e);
            }
        }
    }
    Ok((plan, trouble))
}

/// The rails checked before anything is counted: a service without the catalog, and a
/// walk that met errors. `Some` says why nothing is deleted tonight.
async fn first_rails(scope: &Scope<'_>, scan: &NightScan, view: &VolumeView<'_>) -> Option<String> {
    match view.catalog_available().await {
        Ok(true) => {}
        Ok(false) => {
            return Some(format!(
                "{} has no catalog calls (/catalog/volume/info answered 404), so --delete \
                 cannot see what the volume holds; nothing was deleted. Run without --delete \
                 against this service",
                scope.client.endpoint()
            ));
        }
        Err(e) => {
            return Some(format!(
                "the volume cannot be looked at ({e}); nothing was deleted"
            ));
        }
    }
    let errors = scope.stats.counters.snapshot().walk_errors;
    (errors > 0).then(|| {
        format!(
            "the walk met {errors} errors, so what the folder holds is not known and nothing \
             was deleted (first: {}). Fix them and the next night deletes",
            scan.walk_errors().join("; ")
        )
    })
}

/// How many the night would delete, of how many the volume holds for this folder.
#[derive(Clone, Copy)]
struct DeleteCount {
    deletes: u64,
    held: u64,
    /// The count stopped once past the cap: it is a lower bound.
    capped: bool,
}

/// The rails on the count: an emptied folder, and `--max-delete`. `Some` says why nothing
/// is deleted tonight.
fn delete_rails(
    scope: &Scope<'_>,
    settings: &MirrorSettings,
    scan: &NightScan,
    count: DeleteCount,
) -> Option<String> {
    let DeleteCount {
        deletes,
        held,
        capped,
    } = count;
    if scan.seen_count() == 0 && held > 0 && settings.max_delete != MaxDelete::Off {
        return Some(format!(
            "the folder {} holds no files, but the volume holds {held} from it: is the share \
             mounted? Nothing was deleted. If the folder really is empty now, run once with \
             --max-delete off",
            scope.root.display()
        ));
    }
    let why = within_cap(deletes, held, settings.max_delete).err()?;
    let why = if capped {
        why.replacen(" of the ", " or more of the ", 1)
    } else {
        why
    };
    Some(format!(
        "{why}; nothing was deleted. If that many files really went, run once with a higher \
         --max-delete (or off); check first with --dry-run"
    ))
}

/// Files the journal holds in the volume whose source is gone, up to one past `limit`
/// (enough to refuse), leaving out the sources of renames.
async fn gone_files(
    scope: &Scope<'_>,
    scan: &NightScan,
    renamed_from: &BTreeSet<String>,
    limit: u64,
) -> Result<Vec<Held>, JournalError> {
    let mut gone = Vec::new();
    let mut after = String::new();
    loop {
        let page = scope.journal.in_volume_after(after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.path.clone();
        for h in page {
            if !scan.seen(&h.path)
                && !renamed_from.contains(&h.path)
                && gone_from_disk(scope.root, &h.path)
            {
                gone.push(h);
                if gone.len() as u64 > limit.saturating_add(renamed_from.len() as u64) {
                    return Ok(gone);
                }
            }
        }
    }
    Ok(gone)
}

/// Every file the renames of a plan move, at its new path.
fn moved_files(renames: &[RenameStep], resend: &[(Held, WalkedFile)]) -> Vec<WalkedFile> {
    renames
        .iter()
        .flat_map(|r| r.files.iter().map(|f| f.1.clone()))
        .chain(resend.iter().map(|r| r.1.clone()))
        .collect()
}

struct RenameStep {
    change: Change,
    /// The files it moves: (old path, the file at its new path).
    files: Vec<(String, WalkedFile)>,
}

/// Sorts held renames into what the catalog can do in place and what must be sent again
/// (with the old copy to delete after).
async fn plan_renames(
    scope: &Scope<'_>,
    view: &mut VolumeView<'_>,
    renamed: Vec<Renamed>,
) -> Result<(Vec<RenameStep>, Vec<(Held, WalkedFile)>), JournalError> {
    let mut steps = Vec::new();
    let mut resend = Vec::new();
    let mut folders: BTreeMap<(String, String), Vec<Renamed>> = BTreeMap::new();
    for r in renamed {
        match &r.shape {
            Shape::FolderRenamed { from, to } => folders
                .entry((from.clone(), to.clone()))
                .or_default()
                .push(r),
            _ => steps.push(RenameStep {
                change: Change::Rename {
                    from: r.from.clone(),
                    to: r.to.rel.clone(),
                },
                files: vec![(r.from, r.to)],
            }),
        }
    }
    for ((from, to), group) in folders {
        let below = scope.journal.in_volume_below(from.clone()).await?;
        let moved: BTreeSet<&str> = group.iter().map(|r| r.from.as_str()).collect();
        let whole =
            below.len() == moved.len() && below.iter().all(|h| moved.contains(h.path.as_str()));
        let free = match view.folder_id(&scope.in_volume(&to)).await {
            Ok(id) => id.is_none(),
            Err(_) => false,
        };
        if whole && free && gone_from_disk(scope.root, &from) {
            steps.push(RenameStep {
                change: Change::RenameFolder {
                    from: from.clone(),
                    to: to.clone(),
                    files: group.len(),
                },
                files: group.into_iter().map(|r| (r.from, r.to)).collect(),
            });
        } else {
            for r in group {
                let old = below.iter().find(|h| h.path == r.from).cloned();
                resend.push((
                    old.unwrap_or(Held {
                        path: r.from.clone(),
                        size: r.to.size,
                        file_id: None,
                    }),
                    r.to,
                ));
            }
        }
    }
    Ok((steps, resend))
}

/// Makes one rename in the volume, then in the journal. `Ok(Err)`: the service refused;
/// the file is sent again next night (it stays new to the journal).
async fn apply_rename(
    scope: &Scope<'_>,
    view: &mut VolumeView<'_>,
    step: RenameStep,
) -> Result<Result<(), String>, JournalError> {
    let done = match &step.change {
        Change::RenameFolder { from, to, .. } => {
            let vfrom = scope.in_volume(from);
            let result = match view.folder_id(&vfrom).await {
                Ok(Some(id)) => retrying(
                    scope.client,
                    &FolderRename {
                        id,
                        name: base(to).to_string(),
                    },
                )
                .await
                .map(drop),
                Ok(None) => Err(missing(&vfrom)),
                Err(e) => Err(e),
            };
            view.folder_changed(&vfrom);
            if result.is_ok() {
                scope.journal.move_folder(from.clone(), to.clone()).await?;
            }
            result
        }
        Change::Rename { from, to } => {
            let vfrom = scope.in_volume(from);
            let result = match view.files_at(&vfrom).await {
                Ok(entries) if entries.len() == 1 => retrying(
                    scope.client,
                    &FileRename {
                        id: entries[0].id.clone(),
                        name: base(to).to_string(),
                    },
                )
                .await
                .map(drop),
                Ok(_) => Err(missing(&vfrom)),
                Err(e) => Err(e),
            };
            view.changed(parent(&vfrom));
            if result.is_ok() {
                let f = &step.files[0].1;
                scope
                    .journal
                    .move_file(from.clone(), to.clone(), f.mtime_ns, f.inode)
                    .await?;
            }
            result
        }
        Change::Delete { .. } => Ok(()),
    };
    Ok(match done {
        Ok(()) => {
            RunStats::add(&scope.stats.counters.renamed, step.files.len() as u64);
            Ok(())
        }
        Err(e) => Err(format!("cannot rename {}: {e}", describe(&step.change))),
    })
}

fn describe(c: &Change) -> String {
    match c {
        Change::Delete { path, .. } => path.clone(),
        Change::Rename { from, to } | Change::RenameFolder { from, to, .. } => {
            format!("{from} to {to}")
        }
    }
}

fn missing(path: &str) -> ApiError {
    ApiError::new(
        crate::api::ErrorKind::Permanent,
        "POST /catalog/file/list",
        format!("the volume does not list exactly one entry at {path}"),
    )
}

/// The deletes of [`prepare`]'s plan, after every upload of the night was confirmed;
/// then the folders they left empty.
pub async fn finish(scope: &Scope<'_>, plan: Plan) -> Result<Trouble, JournalError> {
    let mut trouble = Trouble::new();
    let mut view = VolumeView::new(scope.client, scope.volume);
    // Ids first, one listing per folder; then the deletes, several at once.
    let mut targets: Vec<(String, Vec<String>)> = Vec::new();
    for d in &plan.deletes {
        let vpath = scope.in_volume(&d.path);
        match view.files_at(&vpath).await {
            Ok(entries) => {
                let ours = |e: &&crate::api::catalog::CatalogEntry| {
                    e.size == d.size || d.file_id.is_some_and(|id| id.to_string() == e.id)
                };
                let (mine, others): (Vec<_>, Vec<_>) = entries.iter().partition(ours);
                if !others.is_empty() {
                    tracing::warn!(
                        "{vpath}: {} file(s) there have another size than moi-ingest sent; \
                         left in place",
                        others.len()
                    );
                }
                targets.push((d.path.clone(), mine.iter().map(|e| e.id.clone()).collect()));
            }
            Err(e) => trouble.push(format!("cannot delete {vpath}: {e}")),
        }
    }
    let results: Vec<(String, Result<(), ApiError>)> = futures::stream::iter(targets)
        .map(|(path, ids)| async move {
            for id in ids {
                let r = retrying(scope.client, &FileDelete { id: id.clone() }).await;
                match r {
                    Err(e) if !is_not_found(&e) => return (path, Err(e)),
                    _ => {}
                }
            }
            (path, Ok(()))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut deleted = Vec::new();
    for (path, r) in results {
        match r {
            Ok(()) => deleted.push(path),
            Err(e) => trouble.push(format!("cannot delete {}: {e}", scope.in_volume(&path))),
        }
    }
    RunStats::add(&scope.stats.counters.deleted, deleted.len() as u64);
    remove_emptied_folders(scope, &mut view, &deleted, &mut trouble).await?;
    scope.journal.mark_deleted(deleted, scope.run_id).await?;
    Ok(trouble)
}

/// Folders the deletes emptied, deepest first: removed when the folder is gone from disk
/// too, the journal holds nothing below it, and a fresh listing shows it empty.
async fn remove_emptied_folders(
    scope: &Scope<'_>,
    view: &mut VolumeView<'_>,
    deleted: &[String],
    trouble: &mut Trouble,
) -> Result<(), JournalError> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for p in deleted {
        let mut d = parent(p);
        while !d.is_empty() {
            dirs.insert(d.to_string());
            d = parent(d);
        }
    }
    let mut deepest_first: Vec<String> = dirs.into_iter().collect();
    deepest_first.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    let deleted: BTreeSet<&str> = deleted.iter().map(String::as_str).collect();
    for dir in deepest_first {
        if !gone_from_disk(scope.root, &dir) {
            continue;
        }
        let below = scope.journal.in_volume_below(dir.clone()).await?;
        if below.iter().any(|h| !deleted.contains(h.path.as_str())) {
            continue;
        }
        let vdir = scope.in_volume(&dir);
        view.changed(&vdir);
        let Ok(Some(id)) = view.folder_id(&vdir).await else {
            continue;
        };
        match view.children(&id).await {
            Ok([]) => {}
            _ => continue,
        }
        match retrying(scope.client, &FolderDelete { id: id.clone() }).await {
            Ok(_) => view.folder_changed(&vdir),
            Err(e) if is_not_found(&e) => view.folder_changed(&vdir),
            Err(e) => trouble.push(format!("cannot remove the emptied folder {vdir}: {e}")),
        }
    }
    Ok(())
}

/// One version per path: for each path the night sent whose send may have left another
/// copy (a re-send, a retry, a crash mid-send), the extra copies its folder lists at that
/// path are deleted, keeping the confirmed one. Only ever at paths the night sent.
pub async fn remove_extra_copies(scope: &Scope<'_>) -> Result<Trouble, JournalError> {
    let mut trouble = Trouble::new();
    let suspects = scope.journal.copies_to_check().await?;
    if suspects.is_empty() {
        return Ok(trouble);
    }
    let mut view = VolumeView::new(scope.client, scope.volume);
    match view.catalog_available().await {
        Ok(true) => {}
        // Without the catalog the flags stay set; nothing else to do here.
        _ => return Ok(trouble),
    }
    let mut checked = Vec::new();
    for h in suspects {
        let vpath = scope.in_volume(&h.path);
        let entries = match view.files_at(&vpath).await {
            Ok(e) => e,
            Err(e) => {
                trouble.push(format!("cannot look for extra copies of {vpath}: {e}"));
                continue;
            }
        };
        let keep = h.file_id.map(|i: Id| i.to_string());
        let Some(extra) = decide::extra_copies(&entries, keep.as_deref(), h.size) else {
            tracing::warn!(
                "{vpath}: {} copies, and none can be told to be the one confirmed; left as \
                 they are",
                entries.len()
            );
            checked.push(h.path);
            continue;
        };
        let mut ok = true;
        for id in &extra {
            match retrying(scope.client, &FileDelete { id: id.clone() }).await {
                Ok(_) => RunStats::add(&scope.stats.counters.copies_removed, 1),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    ok = false;
                    trouble.push(format!("cannot delete an extra copy at {vpath}: {e}"));
                }
            }
        }
        if !extra.is_empty() {
            view.changed(parent(&vpath));
        }
        if ok {
            checked.push(h.path);
        }
    }
    scope.journal.copies_checked(checked).await?;
    Ok(trouble)
}
