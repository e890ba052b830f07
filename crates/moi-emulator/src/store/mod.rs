//! The emulator's state: volumes, tasks and files in SQLite, so it survives a restart.
//!
//! Ingestion is simulated without a background worker: each file row holds when its
//! current load attempt started, when it ends and how it ends, and its status is worked
//! out from the clock whenever somebody asks.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use moi_client::model::{TaskFile, file_status};
use moi_client::{Id, VolumeId};

use super::clock::Clock;

mod connectors;
mod exports;
mod folders;
mod tasks;

pub use connectors::ConnectorRow;
pub use exports::ExportFileRow;
pub use folders::{CatalogRow, Changed};

/// First id handed out: ids above 2^53, as the service's are, so clients must keep digits.
const FIRST_ID: i64 = 1_889_613_340_219_121_664;

/// The only holder of the emulator's SQL: handlers ask it in the reference's terms.
pub struct Store {
    conn: Connection,
    next_id: i64,
    clock: Arc<Clock>,
}

pub struct NewFile {
    /// The path in the volume.
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub md5: String,
    pub will_fail: bool,
}

/// File type numbers of the reference, from the name's extension.
pub fn file_type_of(name: &str) -> i64 {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt") => 1,
        Some("pdf") => 2,
        Some("gif" | "webp" | "tif" | "tiff") => 3,
        Some("ppt") => 4,
        Some("doc") => 5,
        Some("md" | "markdown") => 6,
        Some("csv") => 7,
        Some("parquet") => 8,
        Some("sql") => 9,
        Some("docx") => 11,
        Some("pptx") => 12,
        Some("wav") => 13,
        Some("mp3") => 14,
        Some("aac") => 15,
        Some("flac") => 16,
        Some("mp4") => 17,
        Some("mov") => 18,
        Some("mkv") => 19,
        Some("png") => 20,
        Some("jpg") => 21,
        Some("jpeg") => 22,
        Some("bmp") => 23,
        _ => 0,
    }
}

struct FileRow {
    id: i64,
    name: String,
    size: i64,
    phase_start_ms: i64,
    ready_at_ms: i64,
    will_fail: bool,
    retrying: bool,
    attempts: i64,
    created_ms: i64,
    note: String,
}

impl FileRow {
    fn status(&self, now: i64) -> i64 {
        if now >= self.ready_at_ms {
            if self.will_fail {
                file_status::FAILED
            } else {
                file_status::SUCCESS
            }
        } else if self.retrying {
            file_status::RETRYING
        } else if now < self.phase_start_ms + (self.ready_at_ms - self.phase_start_ms) / 2 {
            file_status::WAITING
        } else {
            file_status::UPLOADING
        }
    }
}

const FILE_COLUMNS: &str = "id, name, size, phase_start_ms, ready_at_ms, will_fail, retrying, \
     attempts, created_ms, coalesce(note, '')";

fn file_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        name: r.get(1)?,
        size: r.get(2)?,
        phase_start_ms: r.get(3)?,
        ready_at_ms: r.get(4)?,
        will_fail: r.get(5)?,
        retrying: r.get(6)?,
        attempts: r.get(7)?,
        created_ms: r.get(8)?,
        note: r.get(9)?,
    })
}

pub struct TaskFilesAnswer {
    pub total: u64,
    pub total_success: u64,
    pub total_failed: u64,
    pub files: Vec<TaskFile>,
}

/// What one upload request did to the volume.
pub struct UploadOutcome {
    pub task_id: Id,
    pub files: Vec<StoredFile>,
    /// Files stored at a path that already held a file (no dedup asked for).
    pub duplicates: u64,
    pub skipped: u64,
    pub replaced: u64,
}

pub struct StoredFile {
    pub id: Id,
    /// Why the file was kept out of the volume, when `dedup` skipped it.
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ListedFile {
    pub path: String,
    pub size: u64,
    pub md5: String,
    pub file_id: Id,
    pub task_id: Id,
}

/// Live files of `volume` whose `column` (`name` or `md5`) equals `value`: (id, path).
fn live_matches(
    tx: &rusqlite::Transaction<'_>,
    volume: &str,
    column: &str,
    value: &str,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let sql = match column {
        "md5" => "SELECT id, name FROM files WHERE volume_id = ?1 AND md5 = ?2 AND live = 1",
        _ => "SELECT id, name FROM files WHERE volume_id = ?1 AND name = ?2 AND live = 1",
    };
    let mut st = tx.prepare_cached(sql)?;
    let rows = st.query_map(params![volume, value], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The task an upload request becomes: a one-off load of its files.
fn insert_upload_task(
    tx: &rusqlite::Transaction<'_>,
    task_id: i64,
    volume: &str,
    files: &[NewFile],
    now: i64,
) -> rusqlite::Result<()> {
    let uris: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    let config = serde_json::json!({"common_file_task_config": {
        "uris": uris, "load_mode_config": {"load_interval_type": 4, "interval": 0}}});
    tx.execute(
        "INSERT INTO tasks(id, volume_id, name, source_config, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            task_id,
            volume,
            format!("local-upload-{task_id}"),
            config.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// A file row of an upload, as the store decided it.
struct FileInsert<'a> {
    id: i64,
    task_id: i64,
    volume: &'a str,
    file: &'a NewFile,
    now: i64,
    ready_at: i64,
    will_fail: bool,
    live: bool,
    note: Option<&'a str>,
    folder: i64,
}

fn insert_file(tx: &rusqlite::Transaction<'_>, r: &FileInsert<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO files(id, task_id, volume_id, name, size, mime, phase_start_ms,
                           ready_at_ms, will_fail, created_ms, md5, live, note, parent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?7, ?10, ?11, ?12, ?13)",
        params![
            r.id,
            r.task_id,
            r.volume,
            r.file.name,
            r.file.size as i64,
            r.file.mime,
            r.now,
            r.ready_at,
            r.will_fail,
            r.file.md5,
            r.live,
            r.note,
            r.folder
        ],
    )?;
    Ok(())
}

pub enum RetryOutcome {
    NoSuchTask,
    NotInTask(Id),
    Retried(u64),
}

impl Store {
    pub fn open(path: &Path, clock: Arc<Clock>) -> rusqlite::Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )?;
        super::schema::migrate(&mut conn)?;
        let max: Option<i64> = conn.query_row(
            "SELECT max(m) FROM (SELECT max(id) AS m FROM tasks UNION ALL SELECT max(id) FROM files
             UNION ALL SELECT max(id) FROM folders)",
            [],
            |r| r.get(0),
        )?;
        let mut store = Store {
            conn,
            clock,
            next_id: max.map_or(FIRST_ID, |m| m.max(FIRST_ID) + 1),
        };
        store.adopt_folderless_files()?;
        Ok(store)
    }

    /// Milliseconds since the epoch, on the emulator's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn new_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn ensure_volume(&self, id: &str, name: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO volumes(id, name) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING",
            params![id, name],
        )?;
        Ok(())
    }

    pub fn volume_name(&self, id: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT name FROM volumes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
    }

    /// Records one upload request: a new task holding `files`, applying `dedup` to each in
    /// order (see [`super::volume`] for the semantics). `store` is called for each file
    /// that goes into the volume, before the transaction commits; when it fails, nothing
    /// of the request is recorded.
    pub fn add_upload(
        &mut self,
        volume: &str,
        files: &[NewFile],
        dedup: Option<&super::volume::DedupRule>,
        ingest_time: Duration,
        mut store: impl FnMut(usize, &[String]) -> Result<(), String>,
    ) -> rusqlite::Result<Result<UploadOutcome, String>> {
        let now = self.clock.now_ms();
        let task_id = self.new_id();
        let ids: Vec<i64> = files.iter().map(|_| self.new_id()).collect();
        // Folders first, outside the request's transaction: creating one is idempotent,
        // and a request that fails leaves at most empty folders, as a service might.
        let folders: Vec<i64> = files
            .iter()
            .map(|f| self.ensure_folder(volume, f.name.rsplit_once('/').map_or("", |(d, _)| d)))
            .collect::<rusqlite::Result<_>>()?;
        let tx = self.conn.transaction()?;
        insert_upload_task(&tx, task_id, volume, files, now)?;
        let mut outcome = UploadOutcome {
            task_id: Id(task_id as u64),
            files: Vec::new(),
            duplicates: 0,
            skipped: 0,
            replaced: 0,
        };
        for (i, ((f, id), folder)) in files.iter().zip(&ids).zip(&folders).enumerate() {
            let same_path: Vec<(i64, String)> = live_matches(&tx, volume, "name", &f.name)?;
            // Only when asked: identical content is common (empty files), and the list of
            // every match would grow with the volume.
            let same_md5: Vec<(i64, String)> = if dedup.is_some_and(|d| d.by_md5) {
                live_matches(&tx, volume, "md5", &f.md5)?
            } else {
                Vec::new()
            };
            let decision = super::volume::decide(dedup, &same_path, &same_md5);
            let (live, note, ready_at, will_fail) = match &decision {
                super::volume::Decision::Skip(of) => {
                    outcome.skipped += 1;
                    let note = format!("skipped: the volume already holds this file as {of}");
                    (false, Some(note), now, false)
                }
                super::volume::Decision::Store { replace } => {
                    if !replace.is_empty() {
                        outcome.replaced += replace.len() as u64;
                        let mut st = tx
                            .prepare_cached("UPDATE files SET live = 0, note = ?2 WHERE id = ?1")?;
                        for (old, _) in replace {
                            st.execute(params![old, format!("replaced by file {id}")])?;
                        }
                    } else if !same_path.is_empty() {
                        outcome.duplicates += 1;
                    }
                    let gone: Vec<String> = replace
                        .iter()
                        .map(|(_, p)| p.clone())
                        .filter(|p| p != &f.name)
                        .collect();
                    if let Err(e) = store(i, &gone) {
                        return Ok(Err(e));
                    }
                    (
                        true,
                        None,
                        now + ingest_time.as_millis() as i64,
                        f.will_fail,
                    )
                }
            };
            let row = FileInsert {
                id: *id,
                task_id,
                volume,
                file: f,
                now,
                ready_at,
                will_fail,
                live,
                note: note.as_deref(),
                folder: *folder,
            };
            insert_file(&tx, &row)?;
            outcome.files.push(StoredFile {
                id: Id(*id as u64),
                skipped: note,
            });
        }
        tx.commit()?;
        Ok(Ok(outcome))
    }

    /// The files a volume holds now, one row per stored version, by path.
    pub fn volume_listing(&self, volume: &str) -> rusqlite::Result<Vec<ListedFile>> {
        let mut st = self.conn.prepare_cached(
            "SELECT name, size, coalesce(md5, ''), id, task_id FROM files
             WHERE volume_id = ?1 AND live = 1 ORDER BY name, id",
        )?;
        let rows = st.query_map([volume], |r| {
            Ok(ListedFile {
                path: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                md5: r.get(2)?,
                file_id: Id(r.get::<_, i64>(3)? as u64),
                task_id: Id(r.get::<_, i64>(4)? as u64),
            })
        })?;
        rows.collect()
    }

    /// A connector load task (`POST /task`): its files are the `uris`.
    pub fn add_connector_task(
        &mut self,
        connector: Id,
        volume: &str,
        source_config: &serde_json::Value,
        uris: &[String],
        ingest_time: Duration,
    ) -> rusqlite::Result<Id> {
        let now = self.clock.now_ms();
        let task_id = self.new_id();
        let ids: Vec<i64> = uris.iter().map(|_| self.new_id()).collect();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO tasks(id, volume_id, name, source_connector_id, source_config,
                               created_ms, updated_ms)
             VALUES (?1, ?2, '', ?3, ?4, ?5, ?5)",
            params![
                task_id,
                volume,
                connector.0 as i64,
                source_config.to_string(),
                now
            ],
        )?;
        for (uri, id) in uris.iter().zip(ids) {
            tx.execute(
                "INSERT INTO files(id, task_id, volume_id, name, size, mime, phase_start_ms,
                                   ready_at_ms, will_fail, created_ms)
                 VALUES (?1, ?2, ?3, ?4, 0, 'application/octet-stream', ?5, ?6, 0, ?5)",
                params![
                    id,
                    task_id,
                    volume,
                    uri,
                    now,
                    now + ingest_time.as_millis() as i64
                ],
            )?;
        }
        tx.commit()?;
        Ok(Id(task_id as u64))
    }
}
