//! SQL Server Change Tracking: per-database settings and version counter,
//! per-table side tables of changed primary keys, and the SQL behind
//! CHANGETABLE(CHANGES ...) and CHANGETABLE(VERSION ...).
//! learn.microsoft.com/sql/relational-databases/track-changes/about-change-tracking-sql-server
//! learn.microsoft.com/sql/relational-databases/system-functions/changetable-transact-sql
//!
//! The sandbox keeps, like SQL Server's internal change tables, one record
//! per primary key per committing transaction: its operation (I, U, D),
//! the columns an update assigned, and the version. A statement's changes
//! are recorded with no version; the commit of their transaction gives
//! them the database's next version (`stamp`), so a transaction that
//! changes tracked tables consumes exactly one version, a rollback none,
//! and CHANGE_TRACKING_CURRENT_VERSION() is the last committed one.
//!
//! Retention: SQL Server's background cleanup runs on its own schedule;
//! the sandbox cleans up only when asked, deterministically:
//! `EXEC sp_sandbox_change_tracking_cleanup [@table_name =] 'dbo.t',
//! [@version =] n` (sandbox-only) drops the records of versions up to n and
//! makes n the table's minimum valid version; `sp_flush_CT_internal_table_on_demand`
//! (SQL Server's manual cleanup) and the sandbox procedure without
//! `@version` drop what is older than CHANGE_RETENTION by the clock.

use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{self, quote_ident, quote_str, TableMeta};
use super::error::SqlError;

fn sqlite_err(e: rusqlite::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox change tracking: {e}"))
}

/// The system databases, where change tracking cannot be set (5090).
const SYSTEM_DATABASES: [&str; 4] = ["master", "tempdb", "model", "msdb"];

/// A database's change tracking settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub retention: i64,
    /// 1 MINUTES, 2 HOURS, 3 DAYS (sys.change_tracking_databases).
    pub units: i64,
    pub auto_cleanup: bool,
    pub current_version: i64,
}

/// The side table holding a tracked table's change records.
pub fn side_table(table_id: i64) -> String {
    quote_ident(&format!("__sb_ct.{table_id}"))
}

pub fn database(conn: &Connection, db: &str) -> Result<Option<DatabaseSettings>, SqlError> {
    conn.query_row(
        "SELECT retention, retention_units, auto_cleanup, current_version FROM __sb_ct_databases WHERE db = ?1",
        [db],
        |r| {
            Ok(DatabaseSettings {
                retention: r.get(0)?,
                units: r.get(1)?,
                auto_cleanup: r.get(2)?,
                current_version: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(sqlite_err)
}

/// Whether a table's changes are tracked.
pub fn is_tracked(conn: &Connection, table_id: i64) -> Result<bool, SqlError> {
    conn.prepare_cached("SELECT 1 FROM __sb_ct_tables WHERE object_id = ?1")
        .and_then(|mut st| st.exists([table_id]))
        .map_err(sqlite_err)
}

/// Whether a tracked table records which columns an update assigned.
pub fn tracks_columns(conn: &Connection, table_id: i64) -> Result<bool, SqlError> {
    conn.query_row(
        "SELECT track_columns FROM __sb_ct_tables WHERE object_id = ?1",
        [table_id],
        |r| r.get(0),
    )
    .optional()
    .map(|o| o.unwrap_or(false))
    .map_err(sqlite_err)
}

fn alter_failed(e: SqlError) -> SqlError {
    // SQL Server follows these with 5069 "ALTER DATABASE statement failed.";
    // the sandbox reports the cause.
    e
}

fn unit_code(unit: &str) -> Option<i64> {
    match unit {
        "MINUTE" | "MINUTES" => Some(1),
        "HOUR" | "HOURS" => Some(2),
        "DAY" | "DAYS" => Some(3),
        _ => None,
    }
}

/// ALTER DATABASE ... SET CHANGE_TRACKING = ON [(...)] | = OFF | (...).
/// learn.microsoft.com/sql/t-sql/statements/alter-database-transact-sql-set-options#change_tracking
pub fn set_database(
    conn: &Connection,
    db: &str,
    on: Option<bool>,
    retention: Option<&(i64, String)>,
    auto_cleanup: Option<bool>,
) -> Result<(), SqlError> {
    if SYSTEM_DATABASES.iter().any(|s| s.eq_ignore_ascii_case(db)) {
        return Err(alter_failed(SqlError::new(
            5090,
            1,
            16,
            format!("Database '{db}' is a system database. Change tracking settings cannot be modified for system databases."),
        )));
    }
    let retention = match retention {
        Some((n, unit)) => {
            let code = unit_code(unit).ok_or_else(|| {
                SqlError::new(
                    155,
                    2,
                    15,
                    format!("'{unit}' is not a recognized CHANGE RETENTION UNIT option."),
                )
            })?;
            if *n <= 0 {
                return Err(SqlError::new(
                    5092,
                    1,
                    15,
                    "The value for change tracking option 'CHANGE_RETENTION' is not valid. The value must be between 1 and 2147483647 minutes.",
                ));
            }
            Some((*n, code))
        }
        None => None,
    };
    let current = database(conn, db)?;
    match (on, current) {
        (Some(true), Some(_)) => Err(alter_failed(SqlError::new(
            5088,
            1,
            16,
            format!("Change tracking is already enabled for database '{db}'."),
        ))),
        (Some(true), None) => {
            // Defaults: CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON.
            let (n, units) = retention.unwrap_or((2, 3));
            conn.execute(
                "INSERT INTO __sb_ct_databases(db, retention, retention_units, auto_cleanup, current_version)
                 VALUES (?1, ?2, ?3, ?4, 0)",
                params![db, n, units, auto_cleanup.unwrap_or(true)],
            )
            .map_err(sqlite_err)?;
            Ok(())
        }
        (Some(false), None) | (None, None) => Err(alter_failed(SqlError::new(
            5089,
            if on.is_some() { 1 } else { 2 },
            16,
            format!("Change tracking is disabled for database '{db}'. Change tracking must be enabled on a database to modify change tracking settings."),
        ))),
        (Some(false), Some(_)) => {
            let tracked: bool = conn
                .query_row(
                    "SELECT count(*) FROM __sb_ct_tables WHERE db = ?1",
                    [db],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(sqlite_err)?
                > 0;
            if tracked {
                return Err(alter_failed(SqlError::new(
                    22115,
                    1,
                    16,
                    format!("Change tracking is enabled for one or more tables in database '{db}'. Disable change tracking on each table before disabling it for the database. Use the sys.change_tracking_tables catalog view to obtain a list of tables for which change tracking is enabled."),
                )));
            }
            conn.execute("DELETE FROM __sb_ct_databases WHERE db = ?1", [db])
                .map_err(sqlite_err)?;
            conn.execute("DELETE FROM __sb_ct_commits WHERE db = ?1", [db])
                .map_err(sqlite_err)?;
            Ok(())
        }
        (None, Some(_)) => {
            if let Some((n, units)) = retention {
                conn.execute(
                    "UPDATE __sb_ct_databases SET retention = ?2, retention_units = ?3 WHERE db = ?1",
                    params![db, n, units],
                )
                .map_err(sqlite_err)?;
            }
            if let Some(a) = auto_cleanup {
                conn.execute(
                    "UPDATE __sb_ct_databases SET auto_cleanup = ?2 WHERE db = ?1",
                    params![db, a],
                )
                .map_err(sqlite_err)?;
            }
            Ok(())
        }
    }
}

/// ALTER TABLE ... ENABLE CHANGE_TRACKING: the database must track (1718),
/// the table must not yet (4996) and needs a primary key (4997).
/// learn.microsoft.com/sql/relational-databases/track-changes/enable-and-disable-change-tracking-sql-server
pub fn enable_table(
    conn: &Connection,
    db: &str,
    meta: &TableMeta,
    track_columns: bool,
) -> Result<(), SqlError> {
    let Some(id) = meta.object_id else {
        return Err(SqlError::new(
            1718,
            1,
            16,
            format!(
                "Change tracking must be enabled on database 'tempdb' before it can be enabled on table '{}'.",
                meta.name
            ),
        ));
    };
    let Some(settings) = database(conn, db)? else {
        return Err(SqlError::new(
            1718,
            1,
            16,
            format!(
                "Change tracking must be enabled on database '{db}' before it can be enabled on table '{}'.",
                meta.name
            ),
        ));
    };
    if is_tracked(conn, id)? {
        return Err(SqlError::new(
            4996,
            1,
            16,
            format!(
                "Change tracking is already enabled for table '{}'.",
                meta.name
            ),
        ));
    }
    let pk: Vec<&catalog::ColumnDef> = meta.columns.iter().filter(|c| c.in_pk).collect();
    if pk.is_empty() {
        return Err(SqlError::new(
            4997,
            1,
            16,
            format!("Cannot enable change tracking on table '{}'. Change tracking requires a primary key on the table. Create a primary key on the table before enabling change tracking.", meta.name),
        ));
    }
    // The side table: the key's columns as the table declares them (same
    // collation, so keys compare as the table's do), then the record.
    let mut key_meta = meta.clone();
    key_meta.columns = pk.iter().map(|c| (*c).clone()).collect();
    for c in key_meta.columns.iter_mut() {
        c.identity = None;
        c.computed = None;
        c.rowversion = false;
        c.nullable = false;
        c.in_pk = false;
    }
    key_meta.physical = side_table(id);
    let ddl = catalog::sqlite_ddl(&key_meta);
    let create = ddl
        .first()
        .map(|d| {
            let body = d.strip_suffix(')').unwrap_or(d);
            format!(
                "{body}, \"__version\" INTEGER, \"__op\" TEXT NOT NULL, \"__columns\" TEXT, \"__context\" BLOB)"
            )
        })
        .unwrap_or_default();
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {}; {create}",
        side_table(id)
    ))
    .map_err(sqlite_err)?;
    let keys: Vec<String> = pk.iter().map(|c| quote_ident(&c.name)).collect();
    conn.execute_batch(&format!(
        "CREATE INDEX {} ON {} ({}, \"__version\")",
        quote_ident(&format!("__sb_ct.{id}.key")),
        side_table(id),
        keys.join(", ")
    ))
    .map_err(sqlite_err)?;
    conn.execute(
        "INSERT INTO __sb_ct_tables(object_id, db, track_columns, begin_version, cleanup_version, min_valid_version)
         VALUES (?1, ?2, ?3, ?4, 0, ?4)",
        params![id, db, track_columns, settings.current_version],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// ALTER TABLE ... DISABLE CHANGE_TRACKING (4998 when it is not tracked).
pub fn disable_table(conn: &Connection, meta: &TableMeta) -> Result<(), SqlError> {
    let id = meta.object_id.unwrap_or_default();
    if !is_tracked(conn, id)? {
        return Err(SqlError::new(
            4998,
            1,
            16,
            format!("Change tracking is not enabled on table '{}'.", meta.name),
        ));
    }
    forget_table(conn, id)
}

/// DROP TABLE: the table's change tracking goes with it.
/// Forgets a dropped database's Change Tracking: its tables' side tables,
/// its setting and its commits.
pub fn forget_database(conn: &Connection, db: &str) -> Result<(), SqlError> {
    for id in tracked_tables(conn, db)? {
        forget_table(conn, id)?;
    }
    conn.execute("DELETE FROM __sb_ct_databases WHERE db = ?1", [db])
        .map_err(sqlite_err)?;
    conn.execute("DELETE FROM __sb_ct_commits WHERE db = ?1", [db])
        .map_err(sqlite_err)?;
    Ok(())
}

pub fn forget_table(conn: &Connection, table_id: i64) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sb_ct_tables WHERE object_id = ?1",
        [table_id],
    )
    .map_err(sqlite_err)?;
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", side_table(table_id)))
        .map_err(sqlite_err)
}

/// Gives the changes recorded by the committing transaction (those with
/// no version yet) the next version of their database; one version per
/// database per transaction.
pub fn stamp(conn: &Connection) -> Result<(), SqlError> {
    let tables: Vec<(i64, String)> = {
        let mut st = conn
            .prepare_cached("SELECT object_id, db FROM __sb_ct_tables")
            .map_err(sqlite_err)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sqlite_err)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_err)?
    };
    let mut bumped: Vec<(String, i64)> = Vec::new();
    for (id, db) in tables {
        let pending = conn
            .prepare(&format!(
                "SELECT 1 FROM {} WHERE \"__version\" IS NULL LIMIT 1",
                side_table(id)
            ))
            .and_then(|mut st| st.exists([]))
            .map_err(sqlite_err)?;
        if !pending {
            continue;
        }
        let version = match bumped.iter().find(|(d, _)| d.eq_ignore_ascii_case(&db)) {
            Some((_, v)) => *v,
            None => {
                let v: i64 = conn
                    .query_row(
                        "UPDATE __sb_ct_databases SET current_version = current_version + 1 WHERE db = ?1
                         RETURNING current_version",
                        [&db],
                        |r| r.get(0),
                    )
                    .map_err(sqlite_err)?;
                conn.execute(
                    "INSERT OR REPLACE INTO __sb_ct_commits(db, version, committed) VALUES (?1, ?2, __sysutcdatetime())",
                    params![db, v],
                )
                .map_err(sqlite_err)?;
                bumped.push((db.clone(), v));
                v
            }
        };
        conn.execute(
            &format!(
                "UPDATE {} SET \"__version\" = ?1 WHERE \"__version\" IS NULL",
                side_table(id)
            ),
            [version],
        )
        .map_err(sqlite_err)?;
    }
    Ok(())
}

/// TRUNCATE TABLE resets a tracked table's change information as if
/// tracking had just been enabled: its records go and its minimum valid
/// version moves past every earlier sync (CHANGETABLE page, "Deleting rows
/// by using TRUNCATE TABLE"). The truncation is a change of its own, so
/// the database's version moves on.
pub fn truncated(conn: &Connection, db: &str, table_id: i64) -> Result<(), SqlError> {
    if !is_tracked(conn, table_id)? {
        return Ok(());
    }
    conn.execute_batch(&format!("DELETE FROM {}", side_table(table_id)))
        .map_err(sqlite_err)?;
    let v: i64 = conn
        .query_row(
            "UPDATE __sb_ct_databases SET current_version = current_version + 1 WHERE db = ?1
             RETURNING current_version",
            [db],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    conn.execute(
        "UPDATE __sb_ct_tables SET begin_version = ?2, min_valid_version = ?2 WHERE object_id = ?1",
        params![table_id, v],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Drops a table's records up to `version` (or, with None, those older
/// than the database's CHANGE_RETENTION by the clock); the table's minimum
/// valid version becomes the cleanup version. Returns the rows removed.
pub fn cleanup(
    conn: &Connection,
    db: &str,
    table_id: i64,
    version: Option<i64>,
) -> Result<u64, SqlError> {
    let Some(settings) = database(conn, db)? else {
        return Ok(0);
    };
    let upto = match version {
        Some(v) => v,
        None => {
            let minutes = settings.retention
                * match settings.units {
                    1 => 1,
                    2 => 60,
                    _ => 1440,
                };
            conn.query_row(
                "SELECT coalesce(max(version), 0) FROM __sb_ct_commits
                 WHERE db = ?1 AND committed < strftime('%Y-%m-%d %H:%M:%f', __sysutcdatetime(), ?2)",
                params![db, format!("-{minutes} minutes")],
                |r| r.get(0),
            )
            .map_err(sqlite_err)?
        }
    };
    let removed = conn
        .execute(
            &format!(
                "DELETE FROM {} WHERE \"__version\" <= ?1",
                side_table(table_id)
            ),
            [upto],
        )
        .map_err(sqlite_err)?;
    conn.execute(
        "UPDATE __sb_ct_tables SET cleanup_version = max(cleanup_version, ?2),
             min_valid_version = max(min_valid_version, ?2) WHERE object_id = ?1",
        params![table_id, upto],
    )
    .map_err(sqlite_err)?;
    conn.execute(
        "UPDATE __sb_ct_databases SET max_cleanup_version = max(max_cleanup_version, ?2) WHERE db = ?1",
        params![db, upto],
    )
    .map_err(sqlite_err)?;
    Ok(removed as u64)
}

/// The ids of a database's tracked tables.
pub fn tracked_tables(conn: &Connection, db: &str) -> Result<Vec<i64>, SqlError> {
    let mut st = conn
        .prepare("SELECT object_id FROM __sb_ct_tables WHERE db = ?1 ORDER BY object_id")
        .map_err(sqlite_err)?;
    let rows = st.query_map([db], |r| r.get(0)).map_err(sqlite_err)?;
    rows.collect::<Result<_, _>>().map_err(sqlite_err)
}

/// SQL for CHANGETABLE(CHANGES t, last_sync): one row per changed key with
/// the net operation since `last_sync` (NULL: every tracked change).
/// Relative to the baseline: a key whose first change after it is an
/// insert is 'I'; a key whose last change is a delete is 'D' (the docs do
/// not say what a key inserted and then deleted after the baseline
/// returns; the sandbox returns 'D', its last operation); otherwise 'U'.
/// SYS_CHANGE_COLUMNS lists the columns the updates assigned, NULL unless
/// the table tracks columns and every change after the baseline was an
/// update that named its columns.
/// Changes of the transaction still open read as the next version.
pub fn changes_sql(
    meta: &TableMeta,
    table_id: i64,
    last_sync: &str,
    current: &str,
    track_columns: bool,
) -> String {
    let side = side_table(table_id);
    let keys: Vec<String> = meta
        .columns
        .iter()
        .filter(|c| c.in_pk)
        .map(|c| quote_ident(&c.name))
        .collect();
    let on = |a: &str, b: &str| {
        keys.iter()
            .map(|k| format!("{a}.{k} = {b}.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let ver = format!("coalesce(\"__version\", ({current}) + 1)");
    let recs = format!("(SELECT *, {ver} AS \"__v\" FROM {side})");
    let key_list: Vec<String> = keys.iter().map(|k| format!("\"__g\".{k}")).collect();
    let columns = if track_columns {
        "CASE WHEN \"__g\".\"__non_u\" = 0 THEN __ct_mask(\"__g\".\"__cols\") END".to_string()
    } else {
        "NULL".to_string()
    };
    format!(
        "SELECT {keys_out}, \"__l\".\"__v\" AS \"SYS_CHANGE_VERSION\", \
         (SELECT max(\"__i\".\"__v\") FROM {recs} AS \"__i\" WHERE {on_i} AND \"__i\".\"__op\" = 'I') AS \"SYS_CHANGE_CREATION_VERSION\", \
         CASE WHEN \"__l\".\"__op\" = 'D' THEN 'D' WHEN \"__f\".\"__op\" = 'I' THEN 'I' ELSE 'U' END AS \"SYS_CHANGE_OPERATION\", \
         CASE WHEN \"__l\".\"__op\" = 'U' AND \"__f\".\"__op\" = 'U' THEN {columns} END AS \"SYS_CHANGE_COLUMNS\", \
         \"__l\".\"__context\" AS \"SYS_CHANGE_CONTEXT\" \
         FROM (SELECT {keys}, min(\"__v\") AS \"__v0\", max(\"__v\") AS \"__v1\", \
                      group_concat(\"__columns\") AS \"__cols\", \
                      sum(\"__op\" <> 'U' OR \"__columns\" IS NULL) AS \"__non_u\" \
               FROM {recs} WHERE \"__v\" > coalesce({last_sync}, -1) GROUP BY {keys}) AS \"__g\" \
         JOIN {recs} AS \"__f\" ON {on_f} AND \"__f\".\"__v\" = \"__g\".\"__v0\" \
         JOIN {recs} AS \"__l\" ON {on_l} AND \"__l\".\"__v\" = \"__g\".\"__v1\"",
        keys_out = key_list
            .iter()
            .zip(&keys)
            .map(|(g, k)| format!("{g} AS {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        keys = keys.join(", "),
        on_i = on("\"__i\"", "\"__g\""),
        on_f = on("\"__f\"", "\"__g\""),
        on_l = on("\"__l\"", "\"__g\""),
    )
}

/// SQL for CHANGETABLE(VERSION t, (keys), (values)): the key's row when
/// the table has it, with the version of its last change (NULL when none
/// is kept).
pub fn version_sql(
    meta: &TableMeta,
    table_id: i64,
    keys: &[(String, String)],
    current: &str,
) -> String {
    let side = side_table(table_id);
    let cond_t: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("\"__t\".{} = {v}", quote_ident(k)))
        .collect();
    let cond_s: Vec<String> = keys
        .iter()
        .map(|(k, _)| format!("\"__s\".{k} = \"__t\".{k}", k = quote_ident(k)))
        .collect();
    let pk: Vec<String> = meta
        .columns
        .iter()
        .filter(|c| c.in_pk)
        .map(|c| format!("\"__t\".{c} AS {c}", c = quote_ident(&c.name)))
        .collect();
    format!(
        "SELECT (SELECT max(coalesce(\"__s\".\"__version\", ({current}) + 1)) FROM {side} AS \"__s\" WHERE {cs}) AS \"SYS_CHANGE_VERSION\", \
         (SELECT \"__s\".\"__context\" FROM {side} AS \"__s\" WHERE {cs} ORDER BY coalesce(\"__s\".\"__version\", ({current}) + 1) DESC LIMIT 1) AS \"SYS_CHANGE_CONTEXT\", \
         {pk} FROM {table} AS \"__t\" WHERE {ct}",
        cs = cond_s.join(" AND "),
        pk = pk.join(", "),
        table = meta.physical,
        ct = cond_t.join(" AND "),
    )
}

/// The current version expression of a database, for CHANGETABLE.
pub fn current_version_sql(db: &str) -> String {
    format!(
        "SELECT current_version FROM __sb_ct_databases WHERE db = {}",
        quote_str(db)
    )
}

/// SYS_CHANGE_COLUMNS from a list of column ids ("2,3,2"): four bytes of
/// header, then each column id once, ascending, as a 4-byte little-endian
/// integer. Clients read it only through CHANGE_TRACKING_IS_COLUMN_IN_MASK.
pub fn mask(list: &str) -> Vec<u8> {
    let mut ids: Vec<i32> = list
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = vec![0u8; 4];
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// CHANGE_TRACKING_IS_COLUMN_IN_MASK: whether `mask` lists `column_id`
/// (NULL, all columns, lists every one); 22101 for a value no CHANGETABLE
/// returned.
pub fn column_in_mask(column_id: i64, mask: Option<&[u8]>) -> Result<bool, SqlError> {
    let Some(m) = mask else {
        return Ok(true);
    };
    if m.len() < 8 || m.len() % 4 != 0 {
        return Err(SqlError::new(
            22101,
            1,
            16,
            "The value supplied for the change_columns argument of CHANGE_TRACKING_IS_COLUMN_IN_MASK function is not valid. The value must be a bitmask returned by the CHANGETABLE(CHANGES ...) function.",
        ));
    }
    Ok(m[4..]
        .chunks(4)
        .any(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])) == column_id))
}

/// Registers `__ct_mask(list)` and `__ct_in_mask(id, mask)`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = rusqlite::functions::FunctionFlags::SQLITE_UTF8
        | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__ct_mask", 1, det, |ctx| {
        let list: Option<String> = ctx.get(0)?;
        Ok(list.map(|l| mask(&l)))
    })?;
    conn.create_scalar_function("__ct_in_mask", 2, det, |ctx| {
        let id: Option<i64> = ctx.get(0)?;
        let m: Option<Vec<u8>> = ctx.get(1)?;
        let Some(id) = id else {
            return Ok(None);
        };
        column_in_mask(id, m.as_deref())
            .map(Some)
            .map_err(|e| e.to_fn_error())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_list_column_ids() {
        let m = mask("3,2,3");
        assert_eq!(m, [0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert!(column_in_mask(3, Some(&m)).unwrap());
        assert!(!column_in_mask(4, Some(&m)).unwrap());
        assert!(column_in_mask(4, None).unwrap());
        assert_eq!(column_in_mask(1, Some(&[1, 2])).unwrap_err().number, 22101);
    }
}
