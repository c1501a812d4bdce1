//! Delta's change data feed
//! (https://docs.databricks.com/delta/delta-change-data-feed.html): once a
//! table has `delta.enableChangeDataFeed = true`, every committed change
//! records its rows — `insert`, `update_preimage` and `update_postimage`,
//! `delete` — with the commit's version and timestamp, and
//! `table_changes(table, start [, end])` reads them back
//! (https://docs.databricks.com/sql/language-manual/functions/table_changes.html).
//!
//! SQLite triggers on the table's rows write into a shadow table; the
//! version being committed is the table's row in `__dbx_pending`
//! (`history.rs`), so a write outside a commit records nothing.

use chrono::NaiveDateTime;
use rusqlite::Connection;

use super::catalog::{quote_ident, FullName, TableInfo};
use super::error::{ErrorKind, SqlError};
use super::history;
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

/// A table_changes bound: a version or a commit timestamp.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    Version(i64),
    Timestamp(NaiveDateTime),
}

fn show_ts(ts: &NaiveDateTime) -> String {
    ts.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn timestamp_after_latest(
    given: &NaiveDateTime,
    table: &FullName,
    latest: &NaiveDateTime,
) -> SqlError {
    SqlError::invalid(
        "DELTA_TIMESTAMP_GREATER_THAN_COMMIT",
        &format!(
            "The provided timestamp ({}) is after the latest version available to this table ({}). Please use a timestamp before or at {}.",
            show_ts(given),
            table.dotted(),
            show_ts(latest)
        ),
        "42816",
    )
}

/// The versions `[start, end]` a table_changes call reads, with the errors
/// the function page lists: a start version after the latest (Delta's
/// `IllegalArgumentException` text), one before the oldest the log keeps
/// or negative (DELTA_VERSION_NOT_FOUND), a timestamp before the oldest
/// kept commit (DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION), a version
/// whose change data VACUUM removed (DELTA_CHANGE_DATA_FILE_NOT_FOUND),
/// an end version after the latest, a
/// timestamp after the latest commit (DELTA_TIMESTAMP_GREATER_THAN_COMMIT),
/// end before start (DELTA_INVALID_CDC_RANGE), and a version in the range
/// without change data (DELTA_MISSING_CHANGE_DATA).
pub fn range(
    conn: &Connection,
    table: &FullName,
    start: &Bound,
    end: Option<&Bound>,
) -> Result<(i64, i64), SqlError> {
    let versions = history::versions(conn, table)?;
    let (Some(first), Some(last)) = (versions.first(), versions.last()) else {
        return Err(SqlError::table_not_found(&table.dotted()));
    };
    let s = match start {
        // Before the oldest entry the log keeps (`retention.rs`), or negative.
        Bound::Version(v) if *v < first.version => {
            return Err(SqlError::invalid(
                "DELTA_VERSION_NOT_FOUND",
                &format!(
                    "Cannot time travel Delta table to version {v}. Available versions: [{}, {}].",
                    first.version, last.version
                ),
                "22003",
            ))
        }
        Bound::Version(v) if *v > last.version => {
            return Err(SqlError::plain(
                ErrorKind::Invalid,
                &format!(
                    "Provided Start version({v}) for reading change data is invalid. Start version cannot be greater than the latest version of the table({}).",
                    last.version
                ),
                "22023",
            ))
        }
        Bound::Version(v) => *v,
        Bound::Timestamp(ts) if *ts > last.timestamp => {
            return Err(timestamp_after_latest(ts, table, &last.timestamp))
        }
        // The log no longer reaches back to that time.
        Bound::Timestamp(ts) if *ts < first.timestamp && first.version > 0 => {
            return Err(SqlError::invalid(
                "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION",
                &format!(
                    "The provided timestamp ({}) is before the earliest version available to this table ({}). Please use a timestamp after {}.",
                    show_ts(ts),
                    show_ts(&first.timestamp),
                    show_ts(&first.timestamp)
                ),
                "42816",
            ))
        }
        Bound::Timestamp(ts) => versions
            .iter()
            .find(|v| v.timestamp >= *ts)
            .map(|v| v.version)
            .unwrap_or(last.version),
    };
    let e = match end {
        None => last.version,
        Some(Bound::Version(v)) if *v > last.version => {
            return Err(SqlError::plain(
                ErrorKind::Invalid,
                &format!(
                    "Provided end version({v}) is invalid. End version cannot be greater than the latest version of the table({}).",
                    last.version
                ),
                "22023",
            ))
        }
        Some(Bound::Version(v)) => *v,
        Some(Bound::Timestamp(ts)) if *ts > last.timestamp => {
            return Err(timestamp_after_latest(ts, table, &last.timestamp))
        }
        Some(Bound::Timestamp(ts)) => versions
            .iter()
            .rev()
            .find(|v| v.timestamp <= *ts)
            .map(|v| v.version)
            .unwrap_or(-1),
    };
    if e < s {
        return Err(SqlError::invalid(
            "DELTA_INVALID_CDC_RANGE",
            &format!(
                "CDC range from start {s} to end {e} was invalid. End cannot be before start."
            ),
            "22003",
        ));
    }
    if let Some(v) = versions
        .iter()
        .find(|v| v.version >= s && v.version <= e && !v.change_data)
    {
        return Err(SqlError::invalid(
            "DELTA_MISSING_CHANGE_DATA",
            &format!(
                "Error getting change data for range [{s} , {e}] as change data was not recorded for version [{}]. If you've enabled change data feed on this table, use `DESCRIBE HISTORY` to see when it was first enabled.\nOtherwise, to start recording change data, use `ALTER TABLE table_name SET TBLPROPERTIES (delta.enableChangeDataFeed=true)`.",
                v.version
            ),
            "KD002",
        ));
    }
    if s < super::retention::change_data_from(conn, table)? {
        let info = super::catalog::get_table(conn, table)?
            .ok_or_else(|| SqlError::table_not_found(&table.dotted()))?;
        return Err(super::retention::change_file_missing(
            &super::retention::change_file(&info, s),
        ));
    }
    Ok((s, e))
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
