//! Connectors in the store: one row each, its config object kept as the JSON it came as.

use rusqlite::{OptionalExtension, params};

use super::Store;

/// A stored connector.
#[derive(Debug, Clone)]
pub struct ConnectorRow {
    pub id: i64,
    pub name: String,
    pub source_type: i64,
    /// The config objects, keyed by source (`{"s3": {...}}`), as JSON text.
    pub config: String,
    /// `usage_type`, as JSON text.
    pub usage: String,
    pub created_s: i64,
    pub updated_s: i64,
}

const COLUMNS: &str = "id, name, source_type, config, usage_type, created_s, updated_s";

fn connector_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectorRow> {
    Ok(ConnectorRow {
        id: r.get(0)?,
        name: r.get(1)?,
        source_type: r.get(2)?,
        config: r.get(3)?,
        usage: r.get(4)?,
        created_s: r.get(5)?,
        updated_s: r.get(6)?,
    })
}

/// First connector id, as in the vendor's examples (100004).
const FIRST_CONNECTOR: i64 = 100_001;

impl Store {
    /// Every connector, by id.
    pub fn connectors(&self) -> rusqlite::Result<Vec<ConnectorRow>> {
        let sql = format!("SELECT {COLUMNS} FROM connectors ORDER BY id");
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([], connector_row)?;
        rows.collect()
    }

    pub fn connector(&self, id: i64) -> rusqlite::Result<Option<ConnectorRow>> {
        let sql = format!("SELECT {COLUMNS} FROM connectors WHERE id = ?1");
        self.conn.query_row(&sql, [id], connector_row).optional()
    }

    pub fn connector_exists(&self, id: i64) -> rusqlite::Result<bool> {
        let found = self
            .conn
            .query_row("SELECT 1 FROM connectors WHERE id = ?1", [id], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// Stores a new connector; returns its id.
    pub fn add_connector(
        &self,
        name: &str,
        source_type: i64,
        config: &str,
        usage: &str,
    ) -> rusqlite::Result<i64> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM connectors", [], |r| r.get(0))?;
        let id = max.map_or(FIRST_CONNECTOR, |m| m + 1);
        self.conn.execute(
            "INSERT INTO connectors(id, name, source_type, config, usage_type, created_s, updated_s)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![id, name, source_type, config, usage, self.now_ms() / 1000],
        )?;
        Ok(id)
    }

    /// Writes a connector's name, config and (when given) usage back.
    pub fn update_connector(
        &self,
        id: i64,
        name: &str,
        config: &str,
        usage: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE connectors SET name = ?2, config = ?3, usage_type = coalesce(?4, usage_type),
             updated_s = ?5 WHERE id = ?1",
            params![id, name, config, usage, self.now_ms() / 1000],
        )?;
        Ok(())
    }

    /// False when there was no such connector.
    pub fn delete_connector(&self, id: i64) -> rusqlite::Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM connectors WHERE id = ?1", [id])?;
        Ok(n > 0)
    }
}
