//! `moi-ingest ls`: what a volume holds, as its catalog lists it.
//!
//! One line an entry, tab-separated: size, creation time (local), id, path; a folder's
//! path ends in `/`. With `--json`, one object a line with the same fields and the
//! catalog's own ones. A path the volume does not have is a usage error (exit 2).

use super::{CommandResult, Output};
use crate::api::Client;
use crate::api::catalog::CatalogEntry;
use crate::cli::LsArgs;
use crate::config;
use crate::mirror::volume::{VolumeView, join};
use crate::output::stdout_line;
use crate::report::{Failure, local_time, shown};

use super::calls_io::api_failure;

pub async fn ls(args: &LsArgs, out: Output) -> CommandResult {
    let conn = config::connection(&args.connection)?;
    let volume = config::volume(&args.volume)?;
    let client =
        Client::new(&conn.endpoint, conn.credentials, conn.options).map_err(Failure::usage)?;
    let mut view = VolumeView::new(&client, volume.as_str());
    let dir = args.path.trim_matches('/');
    let no_folder = || {
        Failure::usage(format!(
            "the volume {volume} has no folder '{dir}'; `moi-ingest ls --volume {volume}` lists \
             its root"
        ))
    };
    let entries: Vec<(String, CatalogEntry)> = if args.recursive {
        if view.folder_id(dir).await.map_err(api_failure)?.is_none() {
            return Err(no_folder());
        }
        let mut all = Vec::new();
        let mut todo = vec![dir.to_string()];
        while let Some(d) = todo.pop() {
            for (path, e) in children(&mut view, &d).await? {
                if e.is_folder() {
                    todo.push(path.clone());
                }
                all.push((path, e));
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    } else {
        if view.folder_id(dir).await.map_err(api_failure)?.is_none() {
            return Err(no_folder());
        }
        children(&mut view, dir).await?
    };
    for (path, e) in &entries {
        print_entry(path, e, out);
    }
    Ok(0)
}

async fn children(
    view: &mut VolumeView<'_>,
    dir: &str,
) -> Result<Vec<(String, CatalogEntry)>, Failure> {
    let Some(id) = view.folder_id(dir).await.map_err(api_failure)? else {
        return Ok(Vec::new());
    };
    let mut list: Vec<(String, CatalogEntry)> = view
        .children(&id)
        .await
        .map_err(api_failure)?
        .iter()
        .map(|e| (join(dir, &e.full_name()), e.clone()))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(list)
}

fn print_entry(path: &str, e: &CatalogEntry, out: Output) {
    let shown_path = if e.is_folder() {
        format!("{}/", shown(path))
    } else {
        shown(path).into_owned()
    };
    if out.json {
        let line = serde_json::json!({
            "path": path, "folder": e.is_folder(), "size": e.size, "id": e.id,
            "created_at": e.created_unix(), "entry": e,
        });
        stdout_line(line.to_string());
    } else {
        let when = e
            .created_unix()
            .map(local_time)
            .unwrap_or_else(|| "-".into());
        stdout_line(format!("{}\t{when}\t{}\t{shown_path}", e.size, e.id));
    }
}
