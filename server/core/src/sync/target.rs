//! The SQL Server side of a sync: the target table's declared columns, and
//! the ledger (`dbo.bridge_sync_ledger` in the target's database) whose row,
//! written in the same transaction as the change, makes applying an event
//! twice impossible.

use futures_util::TryStreamExt;
use tiberius::QueryItem;

use super::event::{bracket, TargetTable};
use crate::sqlserver::Connection;
use crate::types::to_sqlserver::TargetColumn;

pub const LEDGER: &str = "bridge_sync_ledger";

fn text(row: &tiberius::Row, i: usize) -> Option<String> {
    row.try_get::<&str, _>(i).ok().flatten().map(str::to_string)
}

fn int(row: &tiberius::Row, i: usize) -> Option<i64> {
    row.try_get::<i64, _>(i)
        .ok()
        .flatten()
        .or_else(|| row.try_get::<i32, _>(i).ok().flatten().map(i64::from))
        .or_else(|| row.try_get::<u8, _>(i).ok().flatten().map(i64::from))
        .or_else(|| row.try_get::<i16, _>(i).ok().flatten().map(i64::from))
}

/// The rows of the first result of a parameterised query.
pub async fn rows(
    conn: &mut Connection,
    sql: &str,
    params: &[&dyn tiberius::ToSql],
) -> Result<Vec<tiberius::Row>, tiberius::error::Error> {
    let mut stream = conn.query(sql, params).await?;
    let mut out = Vec::new();
    while let Some(item) = stream.try_next().await? {
        if let QueryItem::Row(r) = item {
            if r.result_index() == 0 {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The databases on this server the login sees (`sys.databases`).
pub async fn databases(conn: &mut Connection) -> Result<Vec<String>, tiberius::error::Error> {
    let r = rows(conn, "SELECT name FROM sys.databases", &[]).await?;
    Ok(r.iter().filter_map(|row| text(row, 0)).collect())
}

/// The target's columns in declaration order; empty when it does not exist.
pub async fn columns(
    conn: &mut Connection,
    t: &TargetTable,
) -> Result<Vec<TargetColumn>, tiberius::error::Error> {
    let sql = format!(
        "SELECT COLUMN_NAME, DATA_TYPE, CAST(CHARACTER_MAXIMUM_LENGTH AS bigint), \
         CAST(NUMERIC_PRECISION AS int), CAST(NUMERIC_SCALE AS int), CAST(DATETIME_PRECISION AS int), IS_NULLABLE, \
         COLLATION_NAME \
         FROM {}INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = @P1 AND TABLE_NAME = @P2 \
         ORDER BY ORDINAL_POSITION",
        t.database_prefix()
    );
    let r = rows(conn, &sql, &[&t.schema.as_str(), &t.table.as_str()]).await?;
    Ok(r.iter()
        .map(|row| TargetColumn {
            name: text(row, 0).unwrap_or_default(),
            data_type: text(row, 1).unwrap_or_default().to_lowercase(),
            max_length: int(row, 2),
            precision: int(row, 3).map(|v| v.clamp(0, 38) as u8),
            scale: int(row, 4).map(|v| v.clamp(0, 38) as u8),
            datetime_precision: int(row, 5).map(|v| v.clamp(0, 7) as u8),
            nullable: text(row, 6).is_none_or(|v| v.eq_ignore_ascii_case("YES")),
            collation: text(row, 7),
        })
        .collect())
}

fn ledger_name(t: &TargetTable) -> String {
    format!("{}[dbo].{}", t.database_prefix(), bracket(LEDGER))
}

/// Creates the ledger in the target's database when missing.
pub async fn ensure_ledger(
    conn: &mut Connection,
    t: &TargetTable,
) -> Result<(), tiberius::error::Error> {
    let exists = rows(
        conn,
        &format!(
            "SELECT TABLE_NAME FROM {}INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'dbo' AND TABLE_NAME = @P1",
            t.database_prefix()
        ),
        &[&LEDGER],
    )
    .await?;
    if !exists.is_empty() {
        // Ledgers made before events carried a fingerprint gain the column.
        let has = rows(
            conn,
            &format!(
                "SELECT COLUMN_NAME FROM {}INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'dbo' AND TABLE_NAME = @P1 AND COLUMN_NAME = 'request_sha256'",
                t.database_prefix()
            ),
            &[&LEDGER],
        )
        .await?;
        if has.is_empty() {
            let add = format!(
                "ALTER TABLE {} ADD request_sha256 nvarchar(64) NULL",
                ledger_name(t)
            );
            match conn.simple_query(add).await {
                Ok(s) => s.into_results().await.map(|_| ())?,
                // Another instance added it in between.
                Err(tiberius::error::Error::Server(e)) if e.code() == 2705 => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }
    let create = format!(
        "CREATE TABLE {} (
            event_id nvarchar(100) NOT NULL PRIMARY KEY,
            operation nvarchar(10) NOT NULL,
            source_table nvarchar(400) NOT NULL,
            target_table nvarchar(400) NOT NULL,
            rows_expected bigint NOT NULL,
            rows_affected bigint NOT NULL,
            applied_by nvarchar(200) NOT NULL,
            applied_at datetime2(3) NOT NULL,
            request_sha256 nvarchar(64) NULL)",
        ledger_name(t)
    );
    match conn.simple_query(create).await {
        Ok(s) => s.into_results().await.map(|_| ()),
        // Another instance created it in between.
        Err(tiberius::error::Error::Server(e)) if e.code() == 2714 => Ok(()),
        Err(e) => Err(e),
    }
}

/// An event's row in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub rows_expected: u64,
    pub rows_affected: u64,
    /// The fingerprint of what was applied (`None` in rows written before
    /// the ledger kept one).
    pub request_sha256: Option<String>,
    pub applied_at: Option<String>,
}

/// What the ledger holds for an event.
pub async fn ledger_entry(
    conn: &mut Connection,
    t: &TargetTable,
    event_id: &str,
) -> Result<Option<LedgerEntry>, tiberius::error::Error> {
    let r = rows(
        conn,
        &format!(
            "SELECT rows_expected, rows_affected, request_sha256, CONVERT(nvarchar(30), applied_at, 126) FROM {} WHERE event_id = @P1",
            ledger_name(t)
        ),
        &[&event_id],
    )
    .await?;
    Ok(r.first().map(|row| LedgerEntry {
        rows_expected: int(row, 0).unwrap_or(0).max(0) as u64,
        rows_affected: int(row, 1).unwrap_or(0).max(0) as u64,
        request_sha256: text(row, 2),
        applied_at: text(row, 3),
    }))
}

/// The ledger row, written inside the event's transaction.
pub fn ledger_insert(t: &TargetTable) -> String {
    format!(
        "INSERT INTO {} (event_id, operation, source_table, target_table, rows_expected, rows_affected, applied_by, applied_at, request_sha256) \
         VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, SYSUTCDATETIME(), @P8)",
        ledger_name(t)
    )
}
