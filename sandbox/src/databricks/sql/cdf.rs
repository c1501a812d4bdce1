//! Delta's change data feed
//! (https://docs.databricks.com/delta/delta-change-data-feed.html): once a
//! table has `delta.enableChangeDataFeed = true`, every committed change
//! records its rows — `insert`, `update_preimage` and `update_postimage`,
//! `delete` — with the commit's version and timestamp, and
//! `table_changes(table, start [, end])` reads them back
//! (https://docs.databricks.com/sql/language-manual/functions/table_changes.html;
//! which versions a call may read is `table_changes.rs`, above the log).
//!
//! SQLite triggers on the table's rows write into a shadow table; the
//! version being committed is the table's row in `__dbx_pending`
//! (`history.rs`), so a write outside a commit records nothing.

use rusqlite::Connection;

use super::catalog::{quote_ident, FullName, TableInfo};
use super::error::SqlError;
use super::types::DbxType;

/// The three metadata columns table_changes adds to the table's own.
pub const META_COLUMNS: [(&str, DbxType); 3] = [
    ("_change_type", DbxType::String),
    ("_commit_version", DbxType::Long),
    ("_commit_timestamp", DbxType::Timestamp),
];

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// The SQLite table holding a table's change rows.
fn shadow(table: &FullName) -> String {
    quote_ident(&format!("__cdf${}", table.dotted()))
}

fn trigger(kind: &str, table: &FullName) -> String {
    quote_ident(&format!("__cdf_{kind}${}", table.dotted()))
}

/// Starts recording changes of a table (its shadow table may already hold
/// the rows of an earlier period with the feed on).
pub fn enable(conn: &Connection, table: &TableInfo) -> Result<(), SqlError> {
    let reserved: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| {
            META_COLUMNS
                .iter()
                .any(|(m, _)| c.name.eq_ignore_ascii_case(m))
        })
        .map(|c| c.name.as_str())
        .collect();
    if !reserved.is_empty() {
        return Err(SqlError::invalid(
            "DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS",
            &format!(
                "Unable to enable Change Data Capture on the table. The table already contains reserved columns [{}] that will be used internally as metadata for the table's Change Data Feed. To enable Change Data Feed on the table rename/drop these columns.",
                reserved.join(",")
            ),
            "42711",
        ));
    }
    let name = &table.name;
    let defs: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), c.ty.sqlite_decl()))
        .collect();
    let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let row = |alias: &str| -> String {
        table
            .columns
            .iter()
            .map(|c| format!("{alias}.{}", quote_ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pending = format!(
        "FROM __dbx_pending p WHERE p.tbl = '{}'",
        name.dotted().replace('\'', "''")
    );
    let record = |alias: &str, change: &str| {
        format!(
            "INSERT INTO {} ({}, \"_change_type\", \"_commit_version\", \"_commit_timestamp\") SELECT {}, '{change}', p.version, p.ts {pending};",
            shadow(name),
            cols.join(", "),
            row(alias)
        )
    };
    disable(conn, name)?;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {shadow} ({defs}, \"_change_type\" TEXT NOT NULL, \"_commit_version\" INTEGER NOT NULL, \"_commit_timestamp\" TEXT NOT NULL);
         CREATE TRIGGER {ins} AFTER INSERT ON {t} BEGIN {i} END;
         CREATE TRIGGER {upd} AFTER UPDATE ON {t} BEGIN {pre} {post} END;
         CREATE TRIGGER {del} AFTER DELETE ON {t} BEGIN {d} END;",
        shadow = shadow(name),
        defs = defs.join(", "),
        t = name.physical(),
        ins = trigger("ins", name),
        upd = trigger("upd", name),
        del = trigger("del", name),
        i = record("NEW", "insert"),
        pre = record("OLD", "update_preimage"),
        post = record("NEW", "update_postimage"),
        d = record("OLD", "delete"),
    ))
    .map_err(db)
}

/// A table gained columns: its change rows gain them too (NULL in the
/// rows recorded before), and the triggers are made again to copy them
/// when the feed is on.
pub fn add_columns(
    conn: &Connection,
    table: &TableInfo,
    added: &[super::catalog::ColumnInfo],
) -> Result<(), SqlError> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [format!("__cdf${}", table.name.dotted())],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db)?
        > 0;
    if exists {
        for c in added {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                shadow(&table.name),
                quote_ident(&c.name),
                c.ty.sqlite_decl()
            ))
            .map_err(db)?;
        }
    }
    if super::catalog::change_data_feed(conn, &table.name)? {
        enable(conn, table)?;
    }
    Ok(())
}

/// Stops recording (the rows recorded so far stay readable).
pub fn disable(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    for kind in ["ins", "upd", "del"] {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {}", trigger(kind, table)))
            .map_err(db)?;
    }
    Ok(())
}

/// Drops the change rows of a dropped (or replaced) table.
pub fn forget(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    disable(conn, table)?;
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", shadow(table)))
        .map_err(db)
}

/// Drops the change rows of versions before `version` (their change data
/// files were vacuumed, or their log entries cleaned up).
pub fn drop_before(conn: &Connection, table: &FullName, version: i64) -> Result<(), SqlError> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [format!("__cdf${}", table.dotted())],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db)?
        > 0;
    if exists {
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE \"_commit_version\" < ?1",
                shadow(table)
            ),
            [version],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Copies the change rows of versions `[start, end]` into the temporary
/// table `temp.<into>`, in commit order; returns its typed columns.
pub fn materialize(
    conn: &Connection,
    table: &TableInfo,
    start: i64,
    end: i64,
    into: &str,
) -> Result<Vec<(String, DbxType)>, SqlError> {
    let mut cols: Vec<(String, DbxType)> = table
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.clone()))
        .collect();
    cols.extend(META_COLUMNS.iter().map(|(n, t)| (n.to_string(), t.clone())));
    let defs: Vec<String> = cols
        .iter()
        .map(|(n, t)| format!("{} {}", quote_ident(n), t.sqlite_decl()))
        .collect();
    let names: Vec<String> = cols.iter().map(|(n, _)| quote_ident(n)).collect();
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{t}; CREATE TEMP TABLE {t} ({});",
        defs.join(", "),
        t = quote_ident(into)
    ))
    .map_err(db)?;
    let exists: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [format!("__cdf${}", table.name.dotted())],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db)?
        > 0;
    if exists {
        conn.execute(
            &format!(
                "INSERT INTO temp.{} ({}) SELECT {} FROM {} WHERE \"_commit_version\" BETWEEN ?1 AND ?2 ORDER BY \"_commit_version\", rowid",
                quote_ident(into),
                names.join(", "),
                names.join(", "),
                shadow(&table.name)
            ),
            [start, end],
        )
        .map_err(db)?;
    }
    Ok(cols)
}
