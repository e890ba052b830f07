//! The checks an upload passes before anything is stored: its text parts (volume, meta in
//! either vocabulary, dedup, the filters) and every name it would store.

use axum::response::{IntoResponse, Response};

use super::store::file_type_of;
use super::upload::{ReceivedFile, bad};
use super::volume::DedupRule;
use super::{AppState, EmuError, faults::Stats};
use moi_client::model::{UploadMeta, default_mime};

/// Checks a `file_name` before it becomes a path under the volume folder.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("file_name is empty".into());
    }
    if name.len() > 1024 {
        return Err("file_name is longer than 1024 bytes".into());
    }
    if name.contains('\0') {
        return Err("file_name contains a NUL byte".into());
    }
    if name.contains('\\') {
        return Err(format!(
            "file_name '{name}' contains a backslash; separate folders with /"
        ));
    }
    if name.starts_with('/') {
        return Err(format!(
            "file_name '{name}' is an absolute path; send a path relative to the volume"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("file_name contains control characters".into());
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err(format!(
                "file_name '{name}' has an empty folder name (// or a trailing /)"
            ));
        }
        if part == "." || part == ".." {
            return Err(format!(
                "file_name '{name}' contains '{part}'; paths may not climb out of the volume"
            ));
        }
        if part.len() > 255 {
            return Err(format!(
                "file_name '{name}' has a component longer than 255 bytes"
            ));
        }
    }
    Ok(())
}

/// The text parts of an upload, as received.
#[derive(Default)]
pub(super) struct Form {
    volume: Option<String>,
    meta: Option<String>,
    dedup: Option<String>,
    file_types: Option<String>,
    path_regex: Option<String>,
    unzip_keep_structure: Option<String>,
    table_config: Option<String>,
}

impl Form {
    pub(super) fn set(&mut self, name: &str, text: String) -> Result<(), String> {
        let slot = match name {
            "VolumeID" => &mut self.volume,
            "meta" => &mut self.meta,
            "dedup" => &mut self.dedup,
            "file_types" => &mut self.file_types,
            "path_regex" => &mut self.path_regex,
            "unzip_keep_structure" => &mut self.unzip_keep_structure,
            "table_config" => &mut self.table_config,
            // The vendor's Python SDK sends an empty placeholder part when it has no file.
            "__empty" => return Ok(()),
            other => {
                return Err(format!(
                    "unexpected part '{other}': the upload takes parts file, VolumeID, meta, \
                     dedup, file_types, path_regex, unzip_keep_structure and table_config"
                ));
            }
        };
        *slot = Some(text);
        Ok(())
    }
}

/// An upload that passed every check.
pub(super) struct Checked {
    pub volume: String,
    pub names: Vec<String>,
    pub mimes: Vec<String>,
    pub dedup: Option<DedupRule>,
    /// Per file: why it is left out (file_types / path_regex), if it is.
    pub filtered: Vec<Option<String>>,
}

/// `meta`: one entry per file part, or none at all.
fn metas(meta: Option<&str>, parts: usize) -> Result<Vec<UploadMeta>, Response> {
    let metas: Vec<UploadMeta> = match meta {
        None => vec![UploadMeta::default(); parts],
        Some(meta) => {
            let raw: serde_json::Value =
                serde_json::from_str(meta).map_err(|e| bad(format!("meta is not JSON: {e}")))?;
            if !raw.is_array() {
                return Err(bad(
                    "meta must be a JSON array with one object per file part",
                ));
            }
            serde_json::from_value(raw).map_err(|e| {
                bad(format!(
                    "each meta entry takes filename and path (or file_name, file_size and \
                         mime_type): {e}"
                ))
            })?
        }
    };
    if metas.len() != parts {
        return Err(bad(format!(
            "meta lists {} files but the request carries {} file parts",
            metas.len(),
            parts
        )));
    }
    Ok(metas)
}

/// Each part's stored name (from meta, else the part's filename) and MIME type.
fn names_and_types(
    metas: &[UploadMeta],
    files: &[ReceivedFile],
) -> Result<(Vec<String>, Vec<String>), Response> {
    let mut names = Vec::new();
    let mut mimes = Vec::new();
    for (m, f) in metas.iter().zip(files) {
        // The stored name comes from meta; without one, from the part's filename.
        let name = match m.volume_path() {
            Some(p) => p,
            None => f
                .part_name
                .clone()
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    bad("a file has neither a meta entry with a path nor a part filename")
                })?,
        };
        check_name(&name).map_err(bad)?;
        if let Some(size) = m.file_size
            && size != f.size
        {
            return Err(bad(format!(
                "meta gives file_size {size} for '{name}' but its part carried {} bytes",
                f.size
            )));
        }
        mimes.push(m.mime_type.clone().unwrap_or_else(default_mime));
        names.push(name);
    }
    Ok((names, mimes))
}

/// The request's options: its dedup rule, and which parts `file_types` or `path_regex`
/// leave out (and why).
fn options(
    s: &AppState,
    form: &Form,
    names: &[String],
) -> Result<(Option<DedupRule>, Vec<Option<String>>), Response> {
    if form.dedup.is_some() {
        Stats::bump(&s.stats.dedup_parts);
    }
    let dedup = form
        .dedup
        .as_deref()
        .map(DedupRule::parse)
        .transpose()
        .map_err(bad)?;
    let file_types: Option<Vec<i64>> = form
        .file_types
        .as_deref()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| {
                bad(format!(
                    "file_types must be a JSON array of type numbers: {e}"
                ))
            })
        })
        .transpose()?;
    let path_regex = form
        .path_regex
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| {
            regex_lite::Regex::new(r)
                .map_err(|e| bad(format!("path_regex '{r}' is not a regular expression: {e}")))
        })
        .transpose()?;
    if let Some(u) = &form.unzip_keep_structure
        && !matches!(u.as_str(), "true" | "false")
    {
        return Err(bad("unzip_keep_structure must be \"true\" or \"false\""));
    }
    if let Some(t) = &form.table_config {
        serde_json::from_str::<serde_json::Value>(t)
            .map_err(|e| bad(format!("table_config is not JSON: {e}")))?;
    }
    let filtered = names
        .iter()
        .map(|n| {
            let t = file_type_of(n);
            if let Some(types) = &file_types
                && !types.contains(&t)
            {
                return Some(format!("left out: its type {t} is not in file_types"));
            }
            if let Some(re) = &path_regex
                && !re.is_match(n)
            {
                return Some("left out: its path does not match path_regex".to_string());
            }
            None
        })
        .collect();
    Ok((dedup, filtered))
}

pub(super) fn check_request(
    s: &AppState,
    form: Form,
    files: &[ReceivedFile],
) -> Result<Checked, Response> {
    let volume = form
        .volume
        .as_deref()
        .ok_or_else(|| bad("missing part VolumeID: the id of the target volume"))?;
    let volume = volume.trim().to_string();
    match s.store().volume_name(&volume) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(super::tasks::unknown_volume(&volume).into_response()),
        Err(e) => return Err(EmuError::from(e).into_response()),
    }
    if files.is_empty() {
        if form.table_config.is_some() {
            return Err(bad(
                "table_config with conn_file_ids (import of files uploaded earlier) is not \
                 emulated; send the files as file parts",
            ));
        }
        return Err(bad("the request carries no file part"));
    }
    let metas = metas(form.meta.as_deref(), files.len())?;
    let (names, mimes) = names_and_types(&metas, files)?;
    let (dedup, filtered) = options(s, &form, &names)?;
    Ok(Checked {
        volume,
        names,
        mimes,
        dedup,
        filtered,
    })
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_that_would_escape_the_volume_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a\\b",
            "a\0b",
            "a//b",
            "a/",
            "\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_name(&"x".repeat(300)).is_err());
        assert!(check_name(&"a/".repeat(600)).is_err());
        for good in [
            "a.pdf",
            "docs/红楼梦(通行本)简体横排.pdf",
            "a b/c..d.txt",
            ".hidden",
        ] {
            assert!(check_name(good).is_ok(), "{good:?} was refused");
        }
    }
}
