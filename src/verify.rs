//! Verify: does the service hold what the journal says it confirmed? (`rclone check`.)
//!
//! For every task the journal recorded, the task's file listing (`/task/files`, all pages)
//! is compared with the journal's confirmed files of that task: a file the service does not
//! list is *missing*; one it lists with another size, another name, or a failed load is
//! *mismatched*; one it lists under a name the journal does not know at all is *extra*
//! (an earlier version of a file sent again since is history, not extra). Names are
//! compared by base name, because the listing may show the stored name without its folder.

use std::collections::HashMap;

use serde::Serialize;

use crate::api::calls::ListTaskFiles;
use crate::api::model::{TaskFile, file_status};
use crate::api::{ApiError, Client, ErrorKind, Id};
use crate::journal::{FileState, Journal, JournalError};

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub path: String,
    pub file_id: Id,
    pub task_id: Id,
    pub what: String,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    pub tasks: u64,
    pub missing: Vec<Difference>,
    pub mismatched: Vec<Difference>,
    pub extra: Vec<Difference>,
    /// The volume itself, as its catalog lists it (`None`: the service has no catalog).
    pub volume: Option<VolumeReport>,
}

/// One path where the volume differs from the journal or the folder.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeDifference {
    /// `missing` (not in the volume), `gone` (in the volume, gone from the folder:
    /// `--delete` would remove it), `size`, or `copies` (more than one file at the path).
    pub kind: &'static str,
    pub path: String,
    pub what: String,
}

#[derive(Debug, Default, Serialize)]
pub struct VolumeReport {
    /// Files the volume lists below the folder's place in it.
    pub listed: u64,
    pub differences: Vec<VolumeDifference>,
}

impl VerifyReport {
    pub fn differences(&self) -> usize {
        self.missing.len()
            + self.mismatched.len()
            + self.extra.len()
            + self.volume.as_ref().map_or(0, |v| v.differences.len())
    }
}

/// The volume's listing below `prefix` against the journal's files and the folder at
/// `root`: each journal file must stand once at its path with its size, and its source
/// must still be there.
pub async fn verify_volume(
    journal: &Journal,
    client: &Client,
    volume: &str,
    prefix: Option<&str>,
    root: &std::path::Path,
) -> Result<Option<VolumeReport>, VerifyError> {
    use crate::mirror::volume::{VolumeView, join};
    let mut view = VolumeView::new(client, volume);
    if !view.catalog_available().await? {
        return Ok(None);
    }
    let top = prefix.unwrap_or("");
    let listed = match view.folder_id(top).await? {
        Some(_) => view.files_below(top).await?,
        None => Vec::new(),
    };
    let mut report = VolumeReport {
        listed: listed.len() as u64,
        differences: Vec::new(),
    };
    let mut by_path: HashMap<String, Vec<u64>> = HashMap::new();
    for (path, e) in listed {
        by_path.entry(path).or_default().push(e.size);
    }
    let mut diff = |kind, path: &str, what: String| {
        report.differences.push(VolumeDifference {
            kind,
            path: path.to_string(),
            what,
        })
    };
    let mut after = String::new();
    loop {
        let page = journal.in_volume_after(after.clone(), 4096).await?;
        let Some(last) = page.last() else { break };
        after = last.path.clone();
        for h in page {
            let vpath = prefix.map_or_else(|| h.path.clone(), |p| join(p, &h.path));
            match by_path.get(&vpath).map(Vec::as_slice) {
                None | Some([]) => diff("missing", &h.path, "not in the volume's listing".into()),
                Some([size]) if *size != h.size => diff(
                    "size",
                    &h.path,
                    format!("{size} bytes in the volume, {} recorded", h.size),
                ),
                Some([_]) => {}
                Some(sizes) => diff(
                    "copies",
                    &h.path,
                    format!("{} files at this path in the volume", sizes.len()),
                ),
            }
            if crate::mirror::scan::gone_from_disk(root, &h.path) {
                diff(
                    "gone",
                    &h.path,
                    "in the volume, gone from the folder (upload --delete removes it)".into(),
                );
            }
        }
    }
    Ok(Some(report))
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

const PAGE: u64 = 1000;

async fn task_listing(client: &Client, task: Id) -> Result<Vec<TaskFile>, ApiError> {
    let mut files = Vec::new();
    for page in 1.. {
        let req = ListTaskFiles {
            task_id: task,
            statuses: Vec::new(),
            page,
            page_size: PAGE,
        };
        let answer = client.send(&req).await?;
        let got = answer.files.len() as u64;
        files.extend(answer.files);
        // Paged by the answer's total, not our page size: a server may cap pages lower.
        if got == 0 || files.len() as u64 >= answer.total {
            break;
        }
    }
    Ok(files)
}

fn base(name: &str) -> &str {
    name.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name)
}

pub async fn verify(journal: &Journal, client: &Client) -> Result<VerifyReport, VerifyError> {
    let mut report = VerifyReport::default();
    for task in journal.confirmed_tasks().await? {
        report.tasks += 1;
        // A task the service no longer knows lists nothing: all its files are missing.
        let listed = match task_listing(client, task).await {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::Permanent => {
                tracing::warn!("task {task}: {e}");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        let mut by_id: HashMap<Id, TaskFile> = listed.into_iter().map(|f| (f.id, f)).collect();
        for (path, size, file_id, state) in journal.confirmed_in_task(task).await? {
            report.checked += 1;
            let diff = |what: String| Difference {
                path: path.clone(),
                file_id,
                task_id: task,
                what,
            };
            let Some(f) = by_id.remove(&file_id) else {
                report
                    .missing
                    .push(diff("not listed by the service".into()));
                continue;
            };
            let mut what = Vec::new();
            if f.size != size {
                what.push(format!("size {} at the service, {size} here", f.size));
            }
            if !f.name.is_empty() && base(&f.name) != base(&path) {
                what.push(format!("named '{}' at the service", f.name));
            }
            let status = file_status::of(&f.status);
            if status == file_status::FAILED && state != FileState::Failed {
                what.push(format!("its load failed: {}", f.reason));
            }
            if !what.is_empty() {
                report.mismatched.push(diff(what.join("; ")));
            }
        }
        // An earlier version of a file the journal knows (sent again since) is history,
        // not an extra file.
        let mut extra: Vec<TaskFile> = by_id.into_values().collect();
        let known = journal
            .knows_base_names(extra.iter().map(|f| f.name.clone()).collect())
            .await?;
        let mut known = known.into_iter();
        extra.retain(|_| !known.next().unwrap_or(false));
        extra.sort_by(|a, b| a.name.cmp(&b.name));
        report.extra.extend(extra.into_iter().map(|f| Difference {
            path: f.name,
            file_id: f.id,
            task_id: task,
            what: "listed by the service, unknown to the journal".into(),
        }));
    }
    Ok(report)
}
