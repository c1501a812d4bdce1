//! One event applied in one SQL Server transaction: the source's Arrow
//! batches bulk-loaded into the target (INSERT) or into a session temp
//! table, then UPDATE ... FROM ... JOIN, DELETE ... FROM ... JOIN (counted first and
//! refused above the cap) or an upsert, and the ledger row — committed
//! together or not at all.
//!
//! The direct bulk load asks for `CHECK_CONSTRAINTS`, `FIRE_TRIGGERS` and
//! `KEEP_NULLS`: without them SQL Server skips CHECK and FOREIGN KEY
//! constraints (and marks them untrusted), fires no INSERT trigger and turns
//! a NULL into the column's DEFAULT
//! (https://learn.microsoft.com/en-us/sql/relational-databases/import-export/keep-nulls-or-use-default-values-during-bulk-import-sql-server,
//! https://learn.microsoft.com/en-us/sql/relational-databases/import-export/controlling-constraint-checking-by-bulk-import-operations,
//! https://learn.microsoft.com/en-us/sql/relational-databases/import-export/control-trigger-execution-when-bulk-importing-data),
//! so an INSERT event behaves as the UPDATE and UPSERT events (plain DML
//! from the temp table) do.

use std::future::Future;

use arrow_array::RecordBatch;
use tiberius::{SqlBulkCopyOption, SqlBulkCopyOptions, TokenRow};

use super::convert;
use super::event::{bracket, Operation, TargetTable};
use super::keys::KeyCheck;
use super::target::{ledger_insert, rows};
use crate::databricks::statements::{ArrowResult, StatementError};
use crate::sqlserver::{is_transient, Connection};
use crate::types::to_sqlserver::{Conv, TargetColumn};

/// One column copied: its name in the source, its declaration in the
/// target, and the conversion between them.
#[derive(Clone, Debug)]
pub struct PlannedColumn {
    pub source_name: String,
    pub target: TargetColumn,
    pub conv: Conv,
}

/// Everything needed to apply an event, checked beforehand.
#[derive(Clone, Debug)]
pub struct Plan {
    pub event_id: String,
    /// What the event asks, as a digest (`Plan::fingerprint`): an event id
    /// found in the ledger with another fingerprint is a re-used id, not
    /// this event applied before.
    pub request_sha256: String,
    pub operation: Operation,
    pub source_table: String,
    /// `SELECT ... FROM <source> [WHERE (filter)]`, columns in plan order.
    pub source_sql: String,
    /// The filter's string literals, as named parameters of `source_sql`.
    pub source_params: Vec<(String, String)>,
    pub target: TargetTable,
    pub columns: Vec<PlannedColumn>,
    /// Target column names of the primary key.
    pub keys: Vec<String>,
    /// DELETE cap; `None` means no cap.
    pub max_delete_rows: Option<u64>,
    pub applied_by: String,
    /// How an UPSERT is written.
    pub upsert: UpsertMethod,
    /// The bulk load into the target takes a table lock (TABLOCK); the
    /// staging table's always does.
    pub table_lock: bool,
}

impl Plan {
    /// The digest of what an event changes: its operation, the source
    /// rows and columns it reads, its target and keys.
    pub fn fingerprint(
        operation: Operation,
        source_sql: &str,
        source_params: &[(String, String)],
        target: &TargetTable,
        keys: &[String],
    ) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let params: Vec<String> = source_params
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        for part in [
            operation.as_str(),
            source_sql,
            &params.join("\u{1f}"),
            &target.to_string(),
            &keys.join("\u{1f}"),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        format!("{:x}", h.finalize())
    }
}

/// How an UPSERT is written in T-SQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum UpsertMethod {
    /// `UPDATE ... FROM ... JOIN` then `INSERT ... WHERE NOT EXISTS`, both
    /// under `UPDLOCK, HOLDLOCK` in the event's transaction: the same
    /// result as MERGE, on engines without MERGE and without MERGE's
    /// concurrency caveats
    /// (https://learn.microsoft.com/en-us/sql/t-sql/statements/merge-transact-sql#concurrency-considerations-for-merge).
    #[default]
    UpdateInsert,
    /// One `MERGE` statement.
    Merge,
}

/// Where an application's rows come from, one batch at a time: a
/// Databricks statement's result, or the batches a Spark task hands over.
pub trait Batches: Send {
    fn next_batch(
        &mut self,
    ) -> impl Future<Output = Result<Option<RecordBatch>, ApplyError>> + Send;
}

impl Batches for ArrowResult {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ApplyError> {
        Ok(ArrowResult::next_batch(self).await?)
    }
}

impl Batches for tokio::sync::mpsc::Receiver<RecordBatch> {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ApplyError> {
        Ok(self.recv().await)
    }
}

/// A stage table a task loaded, as its commit message names it: its
/// (bracketed, checked) name and the rows the task says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageRef {
    pub quoted: String,
    pub rows: u64,
}

/// The rows an application writes.
pub enum Source<'a> {
    /// Streamed and bulk-loaded in the transaction.
    Stream(&'a mut ArrowResult),
    /// Loaded beforehand into stage tables (a distributed write), copied in
    /// the transaction.
    Stages(&'a [StageRef]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub rows_read: u64,
    pub rows_affected: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("SQL Server: {message}")]
    Sql { message: String, transient: bool },
    #[error("reading the source: {0}")]
    Source(#[from] StatementError),
    /// Checked inside the transaction; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The ledger already holds this event: another run applied it.
    #[error("already applied ({1} rows)")]
    AlreadyApplied(u64, u64),
}

impl ApplyError {
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Sql { transient, .. } => *transient,
            ApplyError::Source(StatementError::Http(e)) => e.is_transient(),
            _ => false,
        }
    }
}

fn sql(e: tiberius::error::Error) -> ApplyError {
    ApplyError::Sql {
        transient: is_transient(&e),
        message: e.to_string(),
    }
}

pub(crate) async fn batch(conn: &mut Connection, text: &str) -> Result<(), ApplyError> {
    conn.simple_query(text)
        .await
        .map_err(sql)?
        .into_results()
        .await
        .map_err(sql)?;
    Ok(())
}

async fn execute(conn: &mut Connection, text: &str) -> Result<u64, ApplyError> {
    Ok(conn.execute(text, &[]).await.map_err(sql)?.total())
}

fn on_keys(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("t.{0} = s.{0}", bracket(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Applies `plan` reading rows from `source`, in one transaction: the rows
/// loaded (into the target for an INSERT, else into a staging table), the
/// operation, and the ledger row that makes the event applied. On error the
/// transaction is not committed; the caller drops the connection (it may be
/// mid-bulk).
pub async fn apply(
    conn: &mut Connection,
    plan: &Plan,
    source: Source<'_>,
) -> Result<Applied, ApplyError> {
    let temp = format!("#bridge_src_{}", uuid::Uuid::new_v4().simple());
    let cols: Vec<String> = plan
        .columns
        .iter()
        .map(|c| bracket(&c.target.name))
        .collect();
    // An INSERT loads straight into the target (one write per row); the
    // other operations stage the rows to join them on the keys.
    let direct = plan.operation == Operation::Insert;
    batch(conn, "BEGIN TRANSACTION").await?;
    if !direct {
        let decl: Vec<String> = plan
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {} NULL",
                    bracket(&c.target.name),
                    c.target.declaration()
                )
            })
            .collect();
        batch(conn, &format!("CREATE TABLE {temp} ({})", decl.join(", "))).await?;
    }
    // UPDATE and UPSERT need one source row per key. Rows streamed here are
    // checked as they load; stages were loaded by tasks that each saw only
    // their own rows, so SQL Server checks them all.
    let one_per_key = matches!(plan.operation, Operation::Update | Operation::Upsert);
    let mut key_check = KeyCheck::new(one_per_key && matches!(source, Source::Stream(_)));
    let into = if direct {
        plan.target.quoted()
    } else {
        temp.clone()
    };
    let rows_read = match source {
        Source::Stream(s) => {
            let lock = direct && plan.table_lock;
            load(conn, plan, s, &into, direct, lock, &cols, &mut key_check).await?
        }
        Source::Stages(stages) => copy_stages(conn, plan, stages, &into, direct, &cols).await?,
    };
    if one_per_key && !key_check.proven_unique() {
        refuse_repeated_keys(conn, plan, &temp).await?;
    }
    let rows_affected = write(conn, plan, &temp, &cols, rows_read).await?;
    record(conn, plan, rows_read, rows_affected).await?;
    if !direct {
        batch(conn, &format!("DROP TABLE {temp}")).await?;
    }
    batch(conn, "COMMIT TRANSACTION").await?;
    Ok(Applied {
        rows_read,
        rows_affected,
    })
}

/// Copies the stage tables' rows into `into` (the target itself when
/// `direct`, else the transaction's staging table); the rows copied. A
/// stage holding other than what its task reported is refused: it was
/// changed or cut since.
async fn copy_stages(
    conn: &mut Connection,
    plan: &Plan,
    stages: &[StageRef],
    into: &str,
    direct: bool,
    cols: &[String],
) -> Result<u64, ApplyError> {
    let list = cols.join(", ");
    let hint = if direct && plan.table_lock {
        " WITH (TABLOCK)"
    } else {
        ""
    };
    let mut n = 0;
    for s in stages {
        let copied = execute(
            conn,
            &format!(
                "INSERT INTO {into}{hint} ({list}) SELECT {list} FROM {}",
                s.quoted
            ),
        )
        .await?;
        if copied != s.rows {
            return Err(ApplyError::Refused(format!(
                "stage table {} holds {copied} rows, its task loaded {}; nothing was written",
                s.quoted, s.rows
            )));
        }
        n += copied;
    }
    Ok(n)
}

/// Bulk-loads the source's rows into `into` (the target itself when
/// `direct`, else a staging table), converting each value exactly and
/// noting the keys for `key_check`; the rows read. `lock` asks for a table
/// lock on `into`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn load(
    conn: &mut Connection,
    plan: &Plan,
    source: &mut impl Batches,
    into: &str,
    direct: bool,
    lock: bool,
    cols: &[String],
    key_check: &mut KeyCheck,
) -> Result<u64, ApplyError> {
    let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    // TABLOCK (https://learn.microsoft.com/en-us/sql/t-sql/statements/bulk-insert-transact-sql#tablock):
    // one bulk-update lock on the table for the load instead of row
    // locks — minimal logging where the recovery model allows it, and
    // other writers (and, outside snapshot isolation, readers) of the
    // table wait until the event's transaction commits.
    let lock = if lock {
        SqlBulkCopyOptions::from(SqlBulkCopyOption::TableLock)
    } else {
        SqlBulkCopyOptions::empty()
    };
    let mut load = if direct {
        conn.bulk_insert_with_options(
            into,
            &col_refs,
            SqlBulkCopyOption::CheckConstraints
                | SqlBulkCopyOption::FireTriggers
                | SqlBulkCopyOption::KeepNulls
                | lock,
            &[],
        )
        .await
    } else {
        // The staging table is the session's own, so its table lock
        // costs nobody anything, whatever `table_lock` says: it spares
        // per-row locks and, tempdb being in simple recovery, makes the
        // load minimally logged
        // (https://learn.microsoft.com/en-us/sql/relational-databases/import-export/prerequisites-for-minimal-logging-in-bulk-import).
        conn.bulk_insert_with_options(into, &col_refs, SqlBulkCopyOption::TableLock.into(), &[])
            .await
    }
    .map_err(sql)?;
    let mut n = 0u64;
    let is_key: Vec<bool> = plan
        .columns
        .iter()
        .map(|c| {
            plan.keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.target.name))
        })
        .collect();
    while let Some(b) = source.next_batch().await? {
        if b.num_columns() != plan.columns.len() {
            return Err(ApplyError::Refused(format!(
                "the source returned {} columns, {} expected",
                b.num_columns(),
                plan.columns.len()
            )));
        }
        for row in 0..b.num_rows() {
            let mut tr = TokenRow::new();
            for ((c, array), key) in plan.columns.iter().zip(b.columns()).zip(&is_key) {
                let v = convert::value(&c.conv, array.as_ref(), row).map_err(|why| {
                    ApplyError::Refused(format!(
                        "column {} (source row {}): {why}",
                        c.source_name,
                        n + row as u64 + 1
                    ))
                })?;
                if *key {
                    key_check.value(&v);
                }
                tr.push(v);
            }
            key_check.end_row();
            load.send(tr).await.map_err(sql)?;
        }
        n += b.num_rows() as u64;
    }
    load.finalize().await.map_err(sql)?;
    Ok(n)
}

/// Refuses an UPDATE or UPSERT whose source repeats a key (the load could
/// not prove the keys unique by itself).
async fn refuse_repeated_keys(
    conn: &mut Connection,
    plan: &Plan,
    temp: &str,
) -> Result<(), ApplyError> {
    let keys: Vec<String> = plan.keys.iter().map(|k| bracket(k)).collect();
    let dup = rows(
        conn,
        &format!(
            "SELECT TOP 1 COUNT(*) AS n FROM {temp} GROUP BY {} HAVING COUNT(*) > 1",
            keys.join(", ")
        ),
        &[],
    )
    .await
    .map_err(sql)?;
    if !dup.is_empty() {
        return Err(ApplyError::Refused(format!(
            "the source has rows with the same primary key ({}); {} needs one row per key",
            plan.keys.join(", "),
            plan.operation.as_str()
        )));
    }
    Ok(())
}

/// Runs the operation from the staging table; the rows it affected.
async fn write(
    conn: &mut Connection,
    plan: &Plan,
    temp: &str,
    cols: &[String],
    rows_read: u64,
) -> Result<u64, ApplyError> {
    let target = plan.target.quoted();
    let keys: Vec<String> = plan.keys.iter().map(|k| bracket(k)).collect();
    let non_keys: Vec<&String> = cols
        .iter()
        .filter(|c| !keys.iter().any(|k| k.eq_ignore_ascii_case(c)))
        .collect();
    let set = non_keys
        .iter()
        .map(|c| format!("t.{c} = s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let on = on_keys(&plan.keys);
    Ok(match plan.operation {
        // Loaded already: every row read is a row inserted.
        Operation::Insert => rows_read,
        Operation::Update => {
            if non_keys.is_empty() {
                return Err(ApplyError::Refused(
                    "UPDATE needs at least one column besides the primary key".into(),
                ));
            }
            execute(
                conn,
                &format!("UPDATE t SET {set} FROM {target} AS t INNER JOIN {temp} AS s ON {on}"),
            )
            .await?
        }
        Operation::Delete => delete(conn, plan, &target, temp, &on).await?,
        Operation::Upsert => upsert(conn, plan, &target, temp, cols, &set, &on).await?,
    })
}

/// DELETE of the staged keys, refused above the plan's `max_delete_rows`.
async fn delete(
    conn: &mut Connection,
    plan: &Plan,
    target: &str,
    temp: &str,
    on: &str,
) -> Result<u64, ApplyError> {
    let count = rows(
        conn,
        &format!(
            "SELECT CAST(COUNT(*) AS bigint) FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {temp} AS s WHERE {on})"
        ),
        &[],
    )
    .await
    .map_err(sql)?;
    let n = count
        .first()
        .and_then(|r| r.try_get::<i64, _>(0).ok().flatten())
        .unwrap_or(0)
        .max(0) as u64;
    if let Some(max) = plan.max_delete_rows {
        if n > max {
            return Err(ApplyError::Refused(format!(
                "DELETE refused: it would delete {n} rows of {}, above max_delete_rows {max} for {}; nothing was deleted",
                plan.target, plan.applied_by
            )));
        }
    }
    execute(
        conn,
        &format!("DELETE t FROM {target} AS t INNER JOIN {temp} AS s ON {on}"),
    )
    .await
}

/// UPSERT as one MERGE, or UPDATE then INSERT under key-range locks.
async fn upsert(
    conn: &mut Connection,
    plan: &Plan,
    target: &str,
    temp: &str,
    cols: &[String],
    set: &str,
    on: &str,
) -> Result<u64, ApplyError> {
    let values: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
    Ok(match plan.upsert {
        UpsertMethod::Merge => {
            let matched = if set.is_empty() {
                String::new()
            } else {
                format!(" WHEN MATCHED THEN UPDATE SET {set}")
            };
            execute(
                conn,
                &format!(
                    "MERGE {target} AS t USING {temp} AS s ON {on}{matched} \
                     WHEN NOT MATCHED BY TARGET THEN INSERT ({}) VALUES ({});",
                    cols.join(", "),
                    values.join(", ")
                ),
            )
            .await?
        }
        UpsertMethod::UpdateInsert => {
            // HOLDLOCK keeps the key ranges read locked until the
            // commit, so no other session inserts a key between the
            // UPDATE and the INSERT.
            let updated = if set.is_empty() {
                0
            } else {
                execute(
                    conn,
                    &format!(
                        "UPDATE t SET {set} FROM {target} AS t WITH (UPDLOCK, HOLDLOCK) \
                         INNER JOIN {temp} AS s ON {on}"
                    ),
                )
                .await?
            };
            let inserted = execute(
                conn,
                &format!(
                    "INSERT INTO {target} ({}) SELECT {} FROM {temp} AS s \
                     WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WITH (UPDLOCK, HOLDLOCK) WHERE {on})",
                    cols.join(", "),
                    values.join(", ")
                ),
            )
            .await?;
            updated + inserted
        }
    })
}

/// The ledger row, in the event's transaction: a primary key violation
/// (2627) means another run committed this event first.
async fn record(
    conn: &mut Connection,
    plan: &Plan,
    rows_read: u64,
    rows_affected: u64,
) -> Result<(), ApplyError> {
    let ledger = conn
        .execute(
            ledger_insert(&plan.target),
            &[
                &plan.event_id.as_str(),
                &plan.operation.as_str(),
                &plan.source_table.as_str(),
                &plan.target.to_string().as_str(),
                &(rows_read as i64),
                &(rows_affected as i64),
                &plan.applied_by.as_str(),
                &plan.request_sha256.as_str(),
            ],
        )
        .await;
    match ledger {
        Ok(_) => Ok(()),
        // Primary key violation: another run committed this event first.
        Err(tiberius::error::Error::Server(e)) if e.code() == 2627 => {
            let _ = batch(conn, "ROLLBACK TRANSACTION").await;
            Err(ApplyError::AlreadyApplied(rows_read, rows_affected))
        }
        Err(e) => Err(sql(e)),
    }
}
