//! Delta table history: every committed change to a table is a version
//! (CREATE TABLE is version 0), recorded with its time, the user who ran it,
//! the operation, its parameters and metrics, as DESCRIBE HISTORY shows
//! them (https://docs.databricks.com/delta/history.html, columns from
//! https://docs.databricks.com/aws/en/tables/history-schema).
//!
//! A write runs between [`begin`] and [`finish`]: `begin` records the
//! version being committed in `__dbx_pending`, where the change data feed
//! triggers (`cdf.rs`) read it, and `finish` writes the history row. The
//! statement's savepoint makes both vanish if the statement fails.

use chrono::NaiveDateTime;
use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{self, FullName};
use super::error::SqlError;
use super::grants::Caller;
use super::result::{Column, ResultSet};
use super::types::{self, Cell, DbxType};

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_history (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, version INTEGER NOT NULL,
    ts TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, operation TEXT NOT NULL,
    parameters TEXT NOT NULL, read_version INTEGER, isolation_level TEXT NOT NULL,
    blind_append INTEGER NOT NULL, metrics TEXT NOT NULL, cdf INTEGER NOT NULL,
    PRIMARY KEY (catalog, schema, tbl, version));
CREATE TABLE IF NOT EXISTS __dbx_pending (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL, ts TEXT NOT NULL);
";

/// Databricks' default isolation level for Delta writes
/// (https://docs.databricks.com/optimizations/isolation-level.html).
const ISOLATION: &str = "WriteSerializable";

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// A version being committed.
#[derive(Clone, Debug)]
pub struct Commit {
    pub table: FullName,
    pub version: i64,
    pub timestamp: String,
}

/// What a commit did, for its history row.
#[derive(Clone, Debug, Default)]
pub struct Operation {
    /// `WRITE`, `UPDATE`, `DELETE`, `MERGE`, `CREATE TABLE`, ...
    pub name: String,
    pub parameters: Vec<(String, String)>,
    pub metrics: Vec<(String, u64)>,
    /// Only appends rows without reading the table.
    pub blind_append: bool,
}

impl Operation {
    pub fn new(name: &str) -> Self {
        Operation {
            name: name.to_string(),
            ..Operation::default()
        }
    }

    pub fn param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.parameters.push((key.to_string(), value.into()));
        self
    }

    pub fn metric(mut self, key: &str, value: u64) -> Self {
        self.metrics.push((key.to_string(), value));
        self
    }

    pub fn blind_append(mut self, yes: bool) -> Self {
        self.blind_append = yes;
        self
    }
}

/// The latest committed version and its timestamp; `None` before version 0.
pub fn latest(conn: &Connection, table: &FullName) -> Result<Option<(i64, String)>, SqlError> {
    conn.query_row(
        "SELECT version, ts FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 ORDER BY version DESC LIMIT 1",
        [&table.catalog, &table.schema, &table.name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(db)
}

/// Starts the next version of a table. Commit timestamps are whole
/// milliseconds, as in the Delta log, and increase strictly, so a
/// timestamp names one version.
pub fn begin(conn: &Connection, table: &FullName) -> Result<Commit, SqlError> {
    let last = latest(conn, table)?;
    let mut now = super::functions::now(conn);
    if let Some(prev) = last.as_ref().and_then(|(_, ts)| types::parse_timestamp(ts)) {
        if now <= prev {
            now = prev + chrono::Duration::milliseconds(1);
        }
    }
    let commit = Commit {
        table: table.clone(),
        version: last.map(|(v, _)| v + 1).unwrap_or(0),
        timestamp: types::timestamp_text(&now),
    };
    conn.execute(
        "INSERT OR REPLACE INTO __dbx_pending (tbl, version, ts) VALUES (?1, ?2, ?3)",
        params![table.dotted(), commit.version, commit.timestamp],
    )
    .map_err(db)?;
    Ok(commit)
}

/// Drops a begun commit that changed nothing: Delta commits no version for
/// an UPDATE, DELETE or MERGE that touches no row.
pub fn abandon(conn: &Connection, commit: &Commit) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_pending WHERE tbl = ?1",
        [commit.table.dotted()],
    )
    .map_err(db)?;
    Ok(())
}

fn json_map<V: ToString>(items: &[(String, V)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> = items
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// Records the commit in the table's history.
pub fn finish(
    conn: &Connection,
    commit: &Commit,
    caller: &Caller,
    op: &Operation,
) -> Result<(), SqlError> {
    let t = &commit.table;
    let cdf = catalog::change_data_feed(conn, t)?;
    conn.execute(
        "INSERT INTO __dbx_history (catalog, schema, tbl, version, ts, user_id, user_name, operation, parameters, \
         read_version, isolation_level, blind_append, metrics, cdf) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            t.catalog,
            t.schema,
            t.name,
            commit.version,
            commit.timestamp,
            caller.user_id(),
            caller.principal,
            op.name,
            json_map(&op.parameters),
            (commit.version > 0).then_some(commit.version - 1),
            ISOLATION,
            op.blind_append,
            json_map(&op.metrics),
            cdf,
        ],
    )
    .map_err(db)?;
    abandon(conn, commit)?;
    super::retention::after_commit(conn, t, commit.version)
}

/// Forgets a dropped table's history.
pub fn forget(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&table.catalog, &table.schema, &table.name],
    )
    .map_err(db)?;
    Ok(())
}

/// Marks every version so far as having no change data (a replaced table's
/// change feed does not continue across the replacement).
pub fn cut_change_data(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "UPDATE __dbx_history SET cdf = 0 WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&table.catalog, &table.schema, &table.name],
    )
    .map_err(db)?;
    Ok(())
}

/// One version as the change data feed needs it.
#[derive(Clone, Debug)]
pub struct Version {
    pub version: i64,
    pub timestamp: NaiveDateTime,
    pub change_data: bool,
}

/// Every version of a table, oldest first.
pub fn versions(conn: &Connection, table: &FullName) -> Result<Vec<Version>, SqlError> {
    let mut st = conn
        .prepare("SELECT version, ts, cdf FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 ORDER BY version")
        .map_err(db)?;
    let rows: Vec<(i64, String, bool)> = st
        .query_map([&table.catalog, &table.schema, &table.name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(version, ts, change_data)| Version {
            version,
            timestamp: types::parse_timestamp(&ts).unwrap_or_default(),
            change_data,
        })
        .collect())
}

fn col(name: &str, ty: DbxType) -> Column {
    Column {
        name: name.to_string(),
        ty,
    }
}

/// DESCRIBE HISTORY: newest first, at most `limit` rows. The 14 documented
/// columns; `job` and `notebook` (structs, set only for jobs and notebooks)
/// are always NULL here, typed STRING as the engine has no STRUCT.
pub fn describe(
    conn: &Connection,
    table: &FullName,
    limit: Option<u64>,
) -> Result<ResultSet, SqlError> {
    let map = DbxType::Map(Box::new(DbxType::String), Box::new(DbxType::String));
    let columns = vec![
        col("version", DbxType::Long),
        col("timestamp", DbxType::Timestamp),
        col("userId", DbxType::String),
        col("userName", DbxType::String),
        col("operation", DbxType::String),
        col("operationParameters", map.clone()),
        col("job", DbxType::String),
        col("notebook", DbxType::String),
        col("clusterId", DbxType::String),
        col("readVersion", DbxType::Long),
        col("isolationLevel", DbxType::String),
        col("isBlindAppend", DbxType::Boolean),
        col("operationMetrics", map),
        col("userMetadata", DbxType::String),
    ];
    let mut st = conn
        .prepare(
            "SELECT version, ts, user_id, user_name, operation, parameters, read_version, isolation_level, \
             blind_append, metrics FROM __dbx_history WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 \
             ORDER BY version DESC LIMIT ?4",
        )
        .map_err(db)?;
    let limit = limit.map(|l| l.min(i64::MAX as u64) as i64).unwrap_or(-1);
    let rows = st
        .query_map(
            params![table.catalog, table.schema, table.name, limit],
            |r| {
                let c = |i: usize| r.get_ref(i).map(Cell::from);
                Ok(vec![
                    c(0)?,
                    c(1)?,
                    c(2)?,
                    c(3)?,
                    c(4)?,
                    c(5)?,
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                    c(6)?,
                    c(7)?,
                    c(8)?,
                    c(9)?,
                    Cell::Null,
                ])
            },
        )
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    Ok(ResultSet { columns, rows })
}
