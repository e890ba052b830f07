//! The volume's catalog in the store: folders, and files seen as entries of folders.
//!
//! A file row keeps its whole path in the volume (`files.name`, what dedup and the tests
//! compare) and the id of its folder (`parent_id`, 0 for the root). Folders have their own
//! table with their whole path, so a folder rename is one prefix update. An upload to
//! `a/b/c.pdf` creates folders `a` and `a/b` as needed: the emulator's reading of the live
//! service, written down in `docs/mirroring.md`.

use rusqlite::{OptionalExtension, params};

use super::Store;

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct CatalogRow {
    pub id: i64,
    pub folder: bool,
    /// The whole path in the volume, without a leading `/`.
    pub path: String,
    pub size: u64,
    pub parent_id: i64,
    pub volume: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl CatalogRow {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// What a catalog change did, for the handler to mirror on disk.
pub enum Changed {
    /// Nothing with that id in the catalog.
    Unknown,
    /// A sibling already has the name.
    Taken(String),
    /// The paths that moved (old, new) or went (old, ""), and whether other live files
    /// still stand at the old path (a duplicate keeps the bytes on disk).
    Done {
        moves: Vec<(String, String)>,
        still_there: bool,
    },
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// `LIKE` pattern for everything below `dir`, with the wildcards in the path escaped.
fn below(dir: &str) -> String {
    let mut p = String::new();
    for c in dir.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str("/%");
    p
}

impl Store {
    /// The id of folder `dir` in `volume`, creating it and its parents (0: the root).
    pub fn ensure_folder(&mut self, volume: &str, dir: &str) -> rusqlite::Result<i64> {
        let mut parent = 0;
        let mut path = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            path = join(&path, part);
            let found: Option<i64> = self
                .conn
                .prepare_cached("SELECT id FROM folders WHERE volume_id = ?1 AND path = ?2")?
                .query_row(params![volume, path], |r| r.get(0))
                .optional()?;
            parent = match found {
                Some(id) => id,
                None => {
                    let id = self.new_id();
                    let now = self.clock.now_ms();
                    self.conn.execute(
                        "INSERT INTO folders(id, volume_id, parent_id, name, path, created_ms,
                            updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![id, volume, parent, part, path, now],
                    )?;
                    id
                }
            };
        }
        Ok(parent)
    }

    /// Gives files stored before folders existed (`parent_id` 0 with a `/` in the path)
    /// their folders.
    pub(super) fn adopt_folderless_files(&mut self) -> rusqlite::Result<()> {
        let rows: Vec<(i64, String, String)> = self
            .conn
            .prepare(
                "SELECT id, volume_id, name FROM files
                 WHERE live = 1 AND parent_id = 0 AND instr(name, '/') > 0",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, volume, path) in rows {
            let folder = self.ensure_folder(&volume, parent_of(&path))?;
            self.conn.execute(
                "UPDATE files SET parent_id = ?2 WHERE id = ?1",
                params![id, folder],
            )?;
        }
        Ok(())
    }

    /// Entries of `volume`, in folder `parent` when given (else the whole volume):
    /// folders first, then files, each oldest first.
    pub fn catalog_children(
        &self,
        volume: &str,
        parent: Option<i64>,
    ) -> rusqlite::Result<Vec<CatalogRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, 1, path, 0, parent_id, created_ms, updated_ms FROM folders
               WHERE volume_id = ?1 AND (?2 IS NULL OR parent_id = ?2)
             UNION ALL
             SELECT id, 0, name, size, parent_id, created_ms, created_ms FROM files
               WHERE volume_id = ?1 AND live = 1 AND (?2 IS NULL OR parent_id = ?2)
             ORDER BY 2 DESC, 6, 1",
        )?;
        let rows = st.query_map(params![volume, parent], |r| {
            Ok(CatalogRow {
                id: r.get(0)?,
                folder: r.get(1)?,
                path: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                parent_id: r.get(4)?,
                volume: volume.to_string(),
                created_ms: r.get(5)?,
                updated_ms: r.get(6)?,
            })
        })?;
        rows.collect()
    }

    /// The file or folder with this id.
    pub fn catalog_entry(&self, id: i64) -> rusqlite::Result<Option<CatalogRow>> {
        let row = |folder: bool| {
            move |r: &rusqlite::Row<'_>| {
                Ok(CatalogRow {
                    id,
                    folder,
                    path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    parent_id: r.get(2)?,
                    volume: r.get(3)?,
                    created_ms: r.get(4)?,
                    updated_ms: r.get(5)?,
                })
            }
        };
        let file = self
            .conn
            .query_row(
                "SELECT name, size, parent_id, volume_id, created_ms, created_ms FROM files
                 WHERE id = ?1 AND live = 1",
                [id],
                row(false),
            )
            .optional()?;
        if file.is_some() {
            return Ok(file);
        }
        self.conn
            .query_row(
                "SELECT path, 0, parent_id, volume_id, created_ms, updated_ms FROM folders
                 WHERE id = ?1",
                [id],
                row(true),
            )
            .optional()
    }

    /// Whether folder `parent` of `volume` holds an entry called `name` (other than `except`).
    fn name_taken(
        &self,
        volume: &str,
        parent: i64,
        name: &str,
        except: i64,
    ) -> rusqlite::Result<bool> {
        let dir: String = if parent == 0 {
            String::new()
        } else {
            self.conn
                .query_row("SELECT path FROM folders WHERE id = ?1", [parent], |r| {
                    r.get(0)
                })
                .optional()?
                .unwrap_or_default()
        };
        let path = join(&dir, name);
        self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM files WHERE volume_id = ?1 AND live = 1 AND name = ?2
                           AND id <> ?3)
                 OR EXISTS(SELECT 1 FROM folders WHERE volume_id = ?1 AND path = ?2 AND id <> ?3)",
            params![volume, path, except],
            |r| r.get(0),
        )
    }

    /// `/catalog/folder/create`: the same name again gives the same id. `None`: the parent
    /// does not exist.
    pub fn create_folder(
        &mut self,
        volume: &str,
        parent: i64,
        name: &str,
    ) -> rusqlite::Result<Option<i64>> {
        let dir = if parent == 0 {
            String::new()
        } else {
            match self.catalog_entry(parent)? {
                Some(p) if p.folder && p.volume == volume => p.path,
                _ => return Ok(None),
            }
        };
        self.ensure_folder(volume, &join(&dir, name)).map(Some)
    }

    /// `/catalog/file/delete`: the file leaves the volume and its task.
    pub fn delete_file(&mut self, id: i64) -> rusqlite::Result<Changed> {
        let Some(row) = self.catalog_entry(id)?.filter(|r| !r.folder) else {
            return Ok(Changed::Unknown);
        };
        self.conn.execute("DELETE FROM files WHERE id = ?1", [id])?;
        let still_there = self.live_at(&row.volume, &row.path)?;
        Ok(Changed::Done {
            moves: vec![(row.path, String::new())],
            still_there,
        })
    }

    fn live_at(&self, volume: &str, path: &str) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM files WHERE volume_id = ?1 AND name = ?2 AND live = 1)",
            params![volume, path],
            |r| r.get(0),
        )
    }

    /// `/catalog/file/update`: a rename in place.
    pub fn rename_file(&mut self, id: i64, name: &str) -> rusqlite::Result<Changed> {
        let Some(row) = self.catalog_entry(id)?.filter(|r| !r.folder) else {
            return Ok(Changed::Unknown);
        };
        if self.name_taken(&row.volume, row.parent_id, name, id)? {
            return Ok(Changed::Taken(name.to_string()));
        }
        let new = join(parent_of(&row.path), name);
        self.conn
            .execute("UPDATE files SET name = ?2 WHERE id = ?1", params![id, new])?;
        let still_there = self.live_at(&row.volume, &row.path)?;
        Ok(Changed::Done {
            moves: vec![(row.path, new)],
            still_there,
        })
    }

    /// `/catalog/folder/update`: renames the folder and so every path below it.
    pub fn rename_folder(&mut self, id: i64, name: &str) -> rusqlite::Result<Changed> {
        let Some(row) = self.catalog_entry(id)?.filter(|r| r.folder) else {
            return Ok(Changed::Unknown);
        };
        if self.name_taken(&row.volume, row.parent_id, name, id)? {
            return Ok(Changed::Taken(name.to_string()));
        }
        let old = row.path.clone();
        let new = join(parent_of(&old), name);
        let cut = old.len() as i64 + 1;
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE folders SET name = ?2, path = ?3, updated_ms = ?4 WHERE id = ?1",
            params![id, name, new, self.clock.now_ms()],
        )?;
        tx.execute(
            "UPDATE folders SET path = ?3 || substr(path, ?4)
             WHERE volume_id = ?1 AND path LIKE ?2 ESCAPE '\\'",
            params![row.volume, below(&old), new, cut],
        )?;
        tx.execute(
            "UPDATE files SET name = ?3 || substr(name, ?4)
             WHERE volume_id = ?1 AND name LIKE ?2 ESCAPE '\\'",
            params![row.volume, below(&old), new, cut],
        )?;
        tx.commit()?;
        Ok(Changed::Done {
            moves: vec![(old, new)],
            still_there: false,
        })
    }

    /// `/catalog/folder/delete`: the folder and everything in it.
    pub fn delete_folder(&mut self, id: i64) -> rusqlite::Result<Changed> {
        let Some(row) = self.catalog_entry(id)?.filter(|r| r.folder) else {
            return Ok(Changed::Unknown);
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM files WHERE volume_id = ?1 AND name LIKE ?2 ESCAPE '\\'",
            params![row.volume, below(&row.path)],
        )?;
        tx.execute(
            "DELETE FROM folders WHERE volume_id = ?1 AND (id = ?2 OR path LIKE ?3 ESCAPE '\\')",
            params![row.volume, id, below(&row.path)],
        )?;
        tx.commit()?;
        Ok(Changed::Done {
            moves: vec![(row.path, String::new())],
            still_there: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards_in_names() {
        assert_eq!(below("a_b/100%"), "a\\_b/100\\%/%");
        assert_eq!(parent_of("a/b/c.pdf"), "a/b");
        assert_eq!(parent_of("c.pdf"), "");
    }
}
