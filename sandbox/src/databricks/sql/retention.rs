//! Delta forgets, on the workspace's clock:
//!
//! - **The log**: "Log files are deleted automatically and asynchronously
//!   after checkpoint operations. The default retention period of log files
//!   is 30 days, configurable through the `delta.logRetentionDuration`
//!   property" (https://docs.databricks.com/en/delta/vacuum.html,
//!   https://docs.databricks.com/en/delta/table-properties.html). A
//!   checkpoint is written every 10 commits (`delta.checkpointInterval`);
//!   after it, the entries older than the retention are removed up to the
//!   newest checkpoint among them, so the table can still be rebuilt from
//!   that checkpoint. `DESCRIBE HISTORY` then starts there, and reading
//!   the change data feed from before it fails with `DELTA_VERSION_NOT_FOUND`.
//! - **Files**, by `VACUUM` (https://docs.databricks.com/en/sql/language-manual/delta-vacuum.html):
//!   "The data files for change data feed are managed by Delta Lake in the
//!   `_change_data` directory and removed with VACUUM"; files are removed
//!   once older than `delta.deletedFileRetentionDuration` (default
//!   `interval 1 week`) or `RETAIN n HOURS`, which must not be under 168
//!   hours (Delta's safety check). Reading the feed of a vacuumed version
//!   fails with `DELTA_CHANGE_DATA_FILE_NOT_FOUND`. Databricks does not
//!   VACUUM on its own unless predictive optimization is on; here an
//!   operator (or a test) runs it.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{self, FullName};
use super::error::{ErrorKind, SqlError};
use super::types;

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_vacuumed (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL,
    before_version INTEGER NOT NULL, PRIMARY KEY (catalog, schema, tbl));
";

pub const LOG_RETENTION: &str = "delta.logRetentionDuration";
pub const FILE_RETENTION: &str = "delta.deletedFileRetentionDuration";
/// `delta.checkpointInterval`'s default.
pub const CHECKPOINT_INTERVAL: i64 = 10;
const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_FILE_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// VACUUM's safety check: `RETAIN` under this many hours is refused.
const MIN_RETAIN_HOURS: f64 = 168.0;

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// A Delta interval property: `interval 30 days`, `interval 1 week`,
/// `interval 36 hours` (also without the `interval` word).
pub fn parse_interval(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_prefix("interval").unwrap_or(&t).trim();
    let mut words = t.split_whitespace();
    let mut total = 0u64;
    while let Some(n) = words.next() {
        let n: u64 = n.parse().ok()?;
        let unit = words.next()?;
        let secs = match unit.trim_end_matches('s') {
            "second" | "sec" => 1,
            "minute" | "min" => 60,
            "hour" => 3600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
    }
    (total > 0).then(|| Duration::from_secs(total))
}

fn property(conn: &Connection, table: &FullName, key: &str, default: Duration) -> Duration {
    catalog::properties(conn, table)
        .ok()
        .and_then(|p| {
            p.into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| parse_interval(&v))
        })
        .unwrap_or(default)
}

/// How long the table keeps its log entries.
pub fn log_retention(conn: &Connection, table: &FullName) -> Duration {
    property(conn, table, LOG_RETENTION, DEFAULT_LOG_RETENTION)
}

/// How long VACUUM keeps files by default.
pub fn file_retention(conn: &Connection, table: &FullName) -> Duration {
    property(conn, table, FILE_RETENTION, DEFAULT_FILE_RETENTION)
}

fn cutoff(now: chrono::NaiveDateTime, keep: Duration) -> String {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    types::timestamp_text(&now.checked_sub_signed(keep).unwrap_or_default())
}

/// After committing `version`: at a checkpoint, removes the log entries
/// older than the retention, up to the newest checkpoint among them (and
/// the change rows of the versions removed).
pub fn after_commit(conn: &Connection, table: &FullName, version: i64) -> Result<(), SqlError> {
    if version == 0 || version % CHECKPOINT_INTERVAL != 0 {
        return Ok(());
    }
    let now = super::functions::now(conn);
    let before = cutoff(now, log_retention(conn, table));
    let keep_from: Option<i64> = conn
        .query_row(
            "SELECT max(version) FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 \
             AND ts < ?4 AND version % ?5 = 0",
            params![table.catalog, table.schema, table.name, before, CHECKPOINT_INTERVAL],
            |r| r.get(0),
        )
        .map_err(db)?;
    let Some(keep_from) = keep_from else {
        return Ok(());
    };
    conn.execute(
        "DELETE FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND version < ?4",
        params![table.catalog, table.schema, table.name, keep_from],
    )
    .map_err(db)?;
    super::cdf::drop_before(conn, table, keep_from)
}

/// The first version whose change data VACUUM has kept (0: all of it).
pub fn change_data_from(conn: &Connection, table: &FullName) -> Result<i64, SqlError> {
    Ok(conn
        .query_row(
            "SELECT before_version FROM __dbx_vacuumed WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
            [&table.catalog, &table.schema, &table.name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?
        .unwrap_or(0))
}

/// Forgets what VACUUM removed from a dropped (or replaced) table.
pub fn forget(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_vacuumed WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&table.catalog, &table.schema, &table.name],
    )
    .map_err(db)?;
    Ok(())
}

/// The path a vacuumed change data file of `version` had, for the error.
pub fn change_file(table: &catalog::TableInfo, version: i64) -> String {
    format!(
        "s3://bridge-sandbox-metastore/__unitystorage/tables/{}/_change_data/cdc-00000-{version:020}.c000.snappy.parquet",
        table.id
    )
}

/// `DELTA_CHANGE_DATA_FILE_NOT_FOUND`, as Delta words it.
pub fn change_file_missing(path: &str) -> SqlError {
    SqlError::invalid(
        "DELTA_CHANGE_DATA_FILE_NOT_FOUND",
        &format!(
            "File {path} referenced in the transaction log cannot be found. This can occur when data has been manually deleted from the file system rather than using the table `DELETE` statement. This request appears to be targeting Change Data Feed, if that is the case, this error can occur when the change data file is out of the retention period and has been deleted by the `VACUUM` statement. For more information, see https://docs.databricks.com/delta/delta-change-data-feed.html"
        ),
        "42K03",
    )
}

/// What one VACUUM removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Vacuumed {
    /// The change data files removed (one per version here).
    pub files: Vec<String>,
}

/// VACUUM: removes the change data of versions committed before now minus
/// `retain` (the table's `delta.deletedFileRetentionDuration` when not
/// given); with `dry_run`, only lists them.
pub fn vacuum(
    conn: &Connection,
    table: &catalog::TableInfo,
    retain_hours: Option<f64>,
    dry_run: bool,
) -> Result<Vacuumed, SqlError> {
    let name = &table.name;
    let keep = match retain_hours {
        Some(h) if h < 0.0 || !h.is_finite() => {
            return Err(SqlError::invalid(
                "DELTA_VACUUM_RETENTION_PERIOD_NEGATIVE",
                "The retention period of VACUUM cannot be negative.",
                "22003",
            ))
        }
        Some(h) if h < MIN_RETAIN_HOURS => {
            return Err(SqlError::plain(
                ErrorKind::Invalid,
                &format!(
                    "requirement failed: Are you sure you would like to vacuum files with such a low retention period ({h} hours)? If you have writers that are currently writing to this table, there is a risk that you may corrupt the state of your Delta table. If you are certain that there are no operations being performed on this table, such as insert/upsert/delete/optimize, then you may turn off this check by setting: spark.databricks.delta.retentionDurationCheck.enabled = false. If you are not sure, please use a value not less than \"{MIN_RETAIN_HOURS} hours\"."
                ),
                "22023",
            ))
        }
        Some(h) => Duration::from_secs_f64(h * 3600.0),
        None => file_retention(conn, name),
    };
    let now = super::functions::now(conn);
    let before = cutoff(now, keep);
    // The newest version committed before the cutoff: its change files and
    // every older one's are past the retention.
    let upto: Option<i64> = conn
        .query_row(
            "SELECT max(version) FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND ts < ?4",
            params![name.catalog, name.schema, name.name, before],
            |r| r.get(0),
        )
        .map_err(db)?;
    let Some(upto) = upto else {
        return Ok(Vacuumed::default());
    };
    let from = change_data_from(conn, name)?;
    let files: Vec<String> = (from..=upto).map(|v| change_file(table, v)).collect();
    if dry_run || upto < from {
        return Ok(Vacuumed { files });
    }
    super::cdf::drop_before(conn, name, upto + 1)?;
    conn.execute(
        "INSERT INTO __dbx_vacuumed (catalog, schema, tbl, before_version) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (catalog, schema, tbl) DO UPDATE SET before_version = max(before_version, excluded.before_version)",
        params![name.catalog, name.schema, name.name, upto + 1],
    )
    .map_err(db)?;
    Ok(Vacuumed { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_delta_writes_them() {
        assert_eq!(
            parse_interval("interval 30 days"),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_interval("interval 1 week"),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_interval("INTERVAL 36 HOURS"),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(
            parse_interval("interval 1 day 12 hours"),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(
            parse_interval("30 days"),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse_interval("interval thirty days"), None);
        assert_eq!(parse_interval("interval 0 days"), None);
    }
}
