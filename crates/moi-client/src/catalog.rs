//! Files and folders in a volume: the catalog calls the vendor's SDKs use against the live
//! service (`/catalog/file/*`, `/catalog/folder/*`, `/catalog/volume/info`).
//!
//! Each call is a request type that implements [`Call`](crate::endpoints::Call), as every
//! call is: a caller writes `client.send(&FileDelete { id })` and gets a typed answer,
//! never an `Option` to unwrap. Catalog ids are opaque text (the Go SDK's
//! `FileID string`); a number in their place is read as its digits.
//!
//! What the live tests leave open is read in one place each, here, and written down in
//! `docs/mirroring.md`: how a folder looks in a listing ([`CatalogEntry::is_folder`]),
//! whether a stored name keeps its extension ([`CatalogEntry::is_named`]), and that pages
//! are walked to the end and checked against `total` ([`Client::list_children`]).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::client::Client;
use super::endpoints::{Call, FromEmpty, call};
use super::error::{ApiError, ErrorKind};

/// `{id}`: the body of the calls about one catalog object.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub id: String,
}
#[derive(Debug, Clone, Serialize)]
pub struct FileDelete {
    pub id: String,
}
#[derive(Debug, Clone, Serialize)]
pub struct FolderDelete {
    pub id: String,
}
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    pub id: String,
}

/// A rename in place (the catalog has no move).
#[derive(Debug, Clone, Serialize)]
pub struct FileRename {
    pub id: String,
    pub name: String,
}
#[derive(Debug, Clone, Serialize)]
pub struct FolderRename {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderCreate {
    pub name: String,
    pub volume_id: String,
    /// `""`: the volume's root.
    pub parent_id: String,
}

/// One filter of a listing: `{"name": "parent_id", "values": [""], "fuzzy": false}`.
#[derive(Debug, Clone, Serialize)]
pub struct Filter {
    pub name: &'static str,
    pub values: Vec<String>,
    pub fuzzy: bool,
}

/// `/catalog/file/list`, flat as the Go SDK (whose tests run live) sends it.
#[derive(Debug, Clone, Serialize)]
pub struct FileList {
    pub page: u64,
    pub page_size: u64,
    pub order: &'static str,
    pub order_by: &'static str,
    pub filters: Vec<Filter>,
    pub keyword: String,
}

/// `{id}` or `{id, name}`, as the rename, delete and create calls answer.
#[derive(Debug, Clone, Deserialize)]
pub struct IdAnswer {
    #[serde(default, deserialize_with = "text")]
    pub id: String,
    #[serde(default, deserialize_with = "text")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FilePage {
    #[serde(default, deserialize_with = "count")]
    pub total: u64,
    #[serde(default)]
    pub list: Vec<CatalogEntry>,
}

/// A file or folder as the catalog lists it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct CatalogEntry {
    #[serde(default, deserialize_with = "text")]
    pub id: String,
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    #[serde(default, deserialize_with = "text")]
    pub file_type: String,
    #[serde(default, deserialize_with = "text")]
    pub file_ext: String,
    #[serde(default, deserialize_with = "count")]
    pub size: u64,
    #[serde(default, deserialize_with = "text")]
    pub volume_id: String,
    #[serde(default, deserialize_with = "text")]
    pub parent_id: String,
    #[serde(default, deserialize_with = "text")]
    pub created_at: String,
    #[serde(default, deserialize_with = "text")]
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VolumeDetails {
    #[serde(default, deserialize_with = "text")]
    pub id: String,
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    #[serde(default, deserialize_with = "text")]
    pub description: String,
}

// Strict: a catalog answer without data is malformed.
impl FromEmpty for FilePage {}
impl FromEmpty for CatalogEntry {}
impl FromEmpty for IdAnswer {}
impl FromEmpty for VolumeDetails {}

call!(FileList => POST "/catalog/file/list" -> FilePage, body: self);
call!(FileInfo => POST "/catalog/file/info" -> CatalogEntry, body: self);
call!(FileDelete => POST "/catalog/file/delete" -> IdAnswer, body: self);
call!(FileRename => POST "/catalog/file/update" -> IdAnswer, body: self);
call!(FolderCreate => POST "/catalog/folder/create" -> IdAnswer, body: self);
call!(FolderRename => POST "/catalog/folder/update" -> IdAnswer, body: self);
call!(FolderDelete => POST "/catalog/folder/delete" -> IdAnswer, body: self);
call!(VolumeInfo => POST "/catalog/volume/info" -> VolumeDetails, body: self);

/// The `file_type` words read as a folder. The live tests never list one; the connector
/// enum's directory type is 10. Changing the reading is changing this list.
const FOLDER_TYPES: [&str; 4] = ["10", "folder", "dir", "directory"];

impl CatalogEntry {
    pub fn is_folder(&self) -> bool {
        FOLDER_TYPES
            .iter()
            .any(|t| self.file_type.eq_ignore_ascii_case(t))
    }

    /// Whether this entry stands for a file called `base`: its name as it is, or (a live
    /// test stored `file1.txt` as `file1`) its name with `file_ext`, with or without a dot.
    pub fn is_named(&self, base: &str) -> bool {
        if self.name == base {
            return true;
        }
        let ext = self.file_ext.trim_start_matches('.');
        !ext.is_empty()
            && base.len() == self.name.len() + 1 + ext.len()
            && base.starts_with(self.name.as_str())
            && base[self.name.len()..].starts_with('.')
            && base.ends_with(ext)
    }

    /// The file's name with its extension, however the catalog stores it.
    pub fn full_name(&self) -> String {
        let ext = self.file_ext.trim_start_matches('.');
        if self.is_folder() || ext.is_empty() || self.name.ends_with(&format!(".{ext}")) {
            self.name.clone()
        } else {
            format!("{}.{ext}", self.name)
        }
    }

    /// The creation time as Unix seconds, when it reads as one (digits, or RFC 3339).
    pub fn created_unix(&self) -> Option<i64> {
        let t = self.created_at.trim();
        t.parse::<i64>()
            .ok()
            .map(|n| if n > 100_000_000_000 { n / 1000 } else { n })
            .or_else(|| t.parse::<jiff::Timestamp>().ok().map(|ts| ts.as_second()))
    }
}

/// Entries a listing asks for at once. The live default is 10; a larger page means fewer
/// round trips on a folder of thousands, and a service that caps it still pages correctly.
pub const PAGE_SIZE: u64 = 200;

impl Client {
    /// Every entry directly in folder `parent` (`""`: the root) of `volume`: all pages,
    /// checked against `total`. A listing that changes while it is paged (a page shifted
    /// by another client's delete) is read once more from the start; one that changes
    /// again is an error, so nothing is ever acted on from half a listing.
    pub async fn list_children(
        &self,
        volume: &str,
        parent: &str,
    ) -> Result<Vec<CatalogEntry>, ApiError> {
        let mut last = String::new();
        for _ in 0..2 {
            match self.list_children_once(volume, parent).await? {
                Ok(entries) => return Ok(entries),
                Err(why) => last = why,
            }
        }
        Err(ApiError::new(
            ErrorKind::Transient,
            FileList::ENDPOINT.name,
            format!("the listing of folder '{parent}' kept changing while it was read: {last}"),
        ))
    }

    async fn list_children_once(
        &self,
        volume: &str,
        parent: &str,
    ) -> Result<Result<Vec<CatalogEntry>, String>, ApiError> {
        let mut entries: Vec<CatalogEntry> = Vec::new();
        let mut total = None;
        let mut page = 1;
        // Bounded: a page more than the first answer's total needs.
        while page <= 1 + total.unwrap_or(0) / PAGE_SIZE + 1 {
            let answer = self.send(&children_request(volume, parent, page)).await?;
            if *total.get_or_insert(answer.total) != answer.total {
                return Ok(Err("its total changed".into()));
            }
            let got = answer.list.len();
            entries.extend(answer.list);
            if got == 0 || entries.len() as u64 >= answer.total {
                break;
            }
            page += 1;
        }
        let total = total.unwrap_or(0);
        if entries.len() as u64 != total {
            return Ok(Err(format!("{} of {total} entries came", entries.len())));
        }
        let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != entries.len() {
            return Ok(Err("an entry came on two pages".into()));
        }
        // A listing by `parent_id` that also returned deeper entries (it is not shown
        // whether the filter is exact) keeps only this folder's children.
        entries.retain(|e| e.parent_id == parent || (parent.is_empty() && e.parent_id == "0"));
        Ok(Ok(entries))
    }
}

fn children_request(volume: &str, parent: &str, page: u64) -> FileList {
    FileList {
        page,
        page_size: PAGE_SIZE,
        order: "asc",
        order_by: "created_at",
        filters: vec![
            Filter {
                name: "volume_id",
                values: vec![volume.to_string()],
                fuzzy: false,
            },
            Filter {
                name: "parent_id",
                values: vec![parent.to_string()],
                fuzzy: false,
            },
        ],
        keyword: String::new(),
    }
}

/// Whether `e` says the object is not there (an unknown id): a delete that meets it
/// counts as done.
pub fn is_not_found(e: &ApiError) -> bool {
    if e.status == Some(404) {
        return true;
    }
    let code = e.code.as_deref().unwrap_or("").to_ascii_lowercase();
    let msg = e.message.to_ascii_lowercase();
    code.contains("notfound")
        || code.contains("not_found")
        || msg.contains("not found")
        || msg.contains("not exist")
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// Text, from a string or a number (ids above 2^53 keep every digit); null is empty.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextVisitor)
}

/// A size or count, from a number or a string of digits; anything else is 0.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let t = d.deserialize_any(TextVisitor)?;
    Ok(t.trim().parse::<u64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, ext: &str, file_type: &str) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            file_ext: ext.into(),
            file_type: file_type.into(),
            ..CatalogEntry::default()
        }
    }

    #[test]
    fn a_stored_name_matches_with_or_without_its_extension() {
        assert!(entry("a.txt", "txt", "1").is_named("a.txt"));
        assert!(entry("a", "txt", "1").is_named("a.txt"));
        assert!(entry("a", ".txt", "1").is_named("a.txt"));
        assert!(!entry("a", "txt", "1").is_named("ab.txt"));
        assert!(!entry("a", "", "1").is_named("a.txt"));
        assert!(!entry("a.txt", "txt", "1").is_named("b.txt"));
    }

    #[test]
    fn folders_are_read_from_file_type() {
        assert!(entry("d", "", "10").is_folder());
        assert!(entry("d", "", "Folder").is_folder());
        assert!(!entry("d.txt", "txt", "1").is_folder());
    }

    #[test]
    fn entries_read_ids_and_sizes_as_text_or_numbers() {
        let page: FilePage = serde_json::from_str(
            r#"{"total": "2", "list": [
                {"id": 1889613341347389440, "name": "a.pdf", "size": "12", "parent_id": null},
                {"id": "019b", "name": "b", "size": 3, "created_at": "2026-01-02T03:04:05Z"}]}"#,
        )
        .unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.list[0].id, "1889613341347389440");
        assert_eq!(page.list[0].size, 12);
        assert_eq!(page.list[0].parent_id, "");
        assert_eq!(page.list[1].created_unix(), Some(1_767_323_045));
    }

    #[test]
    fn not_found_is_read_from_status_code_or_message() {
        let mut e = ApiError::new(ErrorKind::Permanent, "x", "file does not exist");
        assert!(is_not_found(&e));
        e.message = "name taken".into();
        assert!(!is_not_found(&e));
        e.code = Some("ErrFileNotFound".into());
        assert!(is_not_found(&e));
    }
}
