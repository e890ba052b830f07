//! The volume as moi-ingest sees it through the catalog: folders resolved by path from
//! the root, each folder's listing read whole once and reused until something in it
//! changes. Nothing is acted on from a listing that was not read to the end.

use std::collections::HashMap;

use crate::api::catalog::{CatalogEntry, VolumeInfo};
use crate::api::endpoints::Call;
use crate::api::{ApiError, Client, ErrorKind};
use crate::policy::RetryPolicy;

/// A catalog call, with retries on transient failures (429, 503, timeouts), as
/// [`RetryPolicy::CATALOG`] says: the catalog is read and changed on a busy service too.
pub async fn retrying<C: Call>(client: &Client, req: &C) -> Result<C::Answer, ApiError> {
    RetryPolicy::CATALOG
        .run(C::ENDPOINT.name, || client.send(req))
        .await
}

pub struct VolumeView<'a> {
    client: &'a Client,
    volume: String,
    /// Folder path → its id (`None`: no such folder). The root is `""` → `""`.
    folders: HashMap<String, Option<String>>,
    /// Folder id → its entries.
    listings: HashMap<String, Vec<CatalogEntry>>,
}

pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

pub fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `e` says the service has no such call (an older or other service): a
/// catalog call that is simply not there, as opposed to one that failed.
pub fn no_such_call(e: &ApiError) -> bool {
    e.status == Some(404)
        && (e.message.to_ascii_lowercase().contains("path")
            || e.code
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case("ErrNotFound")))
}

impl<'a> VolumeView<'a> {
    pub fn new(client: &'a Client, volume: &str) -> Self {
        let mut folders = HashMap::new();
        folders.insert(String::new(), Some(String::new()));
        VolumeView {
            client,
            volume: volume.to_string(),
            folders,
            listings: HashMap::new(),
        }
    }

    /// Whether the service has the catalog calls: `/catalog/volume/info` answers, or
    /// answers that the volume does not exist (an error the caller should hear).
    pub async fn catalog_available(&self) -> Result<bool, ApiError> {
        let probe = VolumeInfo {
            id: self.volume.clone(),
        };
        match retrying(self.client, &probe).await {
            Ok(_) => Ok(true),
            Err(e) if no_such_call(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The entries of the folder with id `folder_id`.
    pub async fn children(&mut self, folder_id: &str) -> Result<&[CatalogEntry], ApiError> {
        if !self.listings.contains_key(folder_id) {
            let (client, volume) = (self.client, self.volume.as_str());
            let list = RetryPolicy::CATALOG
                .run("a folder's listing", || {
                    client.list_children(volume, folder_id)
                })
                .await?;
            self.listings.insert(folder_id.to_string(), list);
        }
        Ok(self
            .listings
            .get(folder_id)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// The id of folder `dir` (`""`: the root), or `None` when the volume has no such folder.
    pub async fn folder_id(&mut self, dir: &str) -> Result<Option<String>, ApiError> {
        if let Some(known) = self.folders.get(dir) {
            return Ok(known.clone());
        }
        let Some(up) = Box::pin(self.folder_id(parent(dir))).await? else {
            self.folders.insert(dir.to_string(), None);
            return Ok(None);
        };
        let name = base(dir);
        let found = self
            .children(&up)
            .await?
            .iter()
            .find(|e| e.is_folder() && e.name == name)
            .map(|e| e.id.clone());
        self.folders.insert(dir.to_string(), found.clone());
        Ok(found)
    }

    /// The files standing at `path` (several when copies piled up).
    pub async fn files_at(&mut self, path: &str) -> Result<Vec<CatalogEntry>, ApiError> {
        let Some(dir) = self.folder_id(parent(path)).await? else {
            return Ok(Vec::new());
        };
        let name = base(path);
        Ok(self
            .children(&dir)
            .await?
            .iter()
            .filter(|e| !e.is_folder() && e.is_named(name))
            .cloned()
            .collect())
    }

    /// Something in folder `dir` changed: read it again next time.
    pub fn changed(&mut self, dir: &str) {
        if let Some(Some(id)) = self.folders.get(dir) {
            self.listings.remove(id);
        }
    }

    /// A folder was renamed or deleted: forget every path at or below it.
    pub fn folder_changed(&mut self, dir: &str) {
        let below = format!("{dir}/");
        self.folders
            .retain(|k, _| k != dir && !k.starts_with(&below));
        self.changed(parent(dir));
    }

    /// Every file below folder `dir` (all depths), with its path, folder by folder.
    /// Bounded by the volume's size; each folder read whole.
    pub async fn files_below(
        &mut self,
        dir: &str,
    ) -> Result<Vec<(String, CatalogEntry)>, ApiError> {
        let Some(id) = self.folder_id(dir).await? else {
            return Err(ApiError::new(
                ErrorKind::Permanent,
                "POST /catalog/file/list",
                format!("the volume has no folder '{dir}'"),
            ));
        };
        let mut out = Vec::new();
        let mut todo = vec![(dir.to_string(), id)];
        while let Some((path, id)) = todo.pop() {
            let entries = self.children(&id).await?.to_vec();
            for e in entries {
                let p = join(&path, &e.full_name());
                if e.is_folder() {
                    self.folders.insert(p.clone(), Some(e.id.clone()));
                    todo.push((p, e.id));
                } else {
                    out.push((p, e));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
