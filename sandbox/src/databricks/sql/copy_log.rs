//! The files each table has loaded by `COPY INTO`, so loading them again is
//! skipped: "COPY INTO ... is idempotent: files in the source location that
//! have already been loaded are skipped"
//! (https://docs.databricks.com/en/sql/language-manual/delta-copy-into.html).
//! Kept below the command, so dropping a table forgets them without
//! calling up into it.

use std::collections::HashSet;

use rusqlite::{params, Connection};

use super::error::{map_sqlite_error as db, SqlError};
use super::names::FullName;

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_copy_into_log (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, path TEXT NOT NULL,
    version INTEGER NOT NULL, PRIMARY KEY (catalog, schema, tbl, path));
";

/// Paths this table has loaded.
pub fn loaded(conn: &Connection, table: &FullName) -> Result<HashSet<String>, SqlError> {
    let mut st = conn
        .prepare(
            "SELECT path FROM __dbx_copy_into_log WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        )
        .map_err(db)?;
    let rows = st
        .query_map([&table.catalog, &table.schema, &table.name], |r| {
            r.get::<_, String>(0)
        })
        .map_err(db)?
        .collect::<Result<HashSet<_>, _>>()
        .map_err(db)?;
    Ok(rows)
}

/// Records that `path` was loaded into `table` by the commit `version`.
pub fn record(
    conn: &Connection,
    table: &FullName,
    path: &str,
    version: i64,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT OR REPLACE INTO __dbx_copy_into_log (catalog, schema, tbl, path, version) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![table.catalog, table.schema, table.name, path, version],
    )
    .map_err(db)?;
    Ok(())
}

/// Forgets the files a dropped table loaded.
pub fn forget(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_copy_into_log WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&table.catalog, &table.schema, &table.name],
    )
    .map_err(db)?;
    Ok(())
}
