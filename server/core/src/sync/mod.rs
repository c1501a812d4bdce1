//! Reverse sync, Databricks → SQL Server. `SyncCore` checks an event and
//! applies it exactly once (ledger row in the same transaction); `Poller`
//! claims events from the events table, runs them through the core and
//! records each outcome, in the table and in the audit log.

pub(crate) mod apply;
pub(crate) mod convert;
pub mod event;
pub(crate) mod events_table;
pub(crate) mod keys;
mod poller;
pub(crate) mod provenance;
pub mod staged;
pub(crate) mod target;

use std::time::Duration;

use crate::auth::{LakehouseDenied, LakehouseRights, User};
use crate::databricks::names::UcName;
use crate::databricks::statements::{ColumnInfo, Parameter, StatementError};
use crate::databricks::types::SparkType;
use crate::databricks::Workspace;
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::pool::{self, Pool};
use crate::sqlserver::SqlServerError;
use crate::types::to_sqlserver::{self, TargetColumn};
use apply::{ApplyError, Plan, PlannedColumn};
pub use apply::{StageRef, UpsertMethod};
pub use event::{EventStatus, Operation, Refusal, SyncEvent, TargetTable};
pub use events_table::{Claim, EventsError, EventsTable, NewEvent, Routing};
pub use poller::{PollSummary, Poller, PollerConfig, SyncStats};
pub use provenance::EventWriters;

/// The default events table.
pub const EVENTS_TABLE: &str = "bridge.events.bridge_events";

/// Why an event did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The event cannot be applied as written; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The user the event is for lacks a right; nothing was written.
    #[error("unauthorized: {why}")]
    Unauthorized {
        user: String,
        object: String,
        missing: String,
        why: String,
    },
    #[error(transparent)]
    SqlServer(#[from] SqlServerError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("Databricks: {0}")]
    Statement(#[from] StatementError),
    #[error(transparent)]
    Events(#[from] EventsError),
}

impl From<Refusal> for SyncError {
    fn from(r: Refusal) -> Self {
        SyncError::Refused(r.0)
    }
}

impl SyncError {
    fn transient(&self) -> bool {
        match self {
            SyncError::SqlServer(e) => e.is_transient(),
            SyncError::Apply(e) => e.is_transient(),
            SyncError::Statement(StatementError::Http(e)) => e.is_transient(),
            SyncError::Events(EventsError::Statement {
                source: StatementError::Http(e),
                ..
            }) => e.is_transient(),
            _ => false,
        }
    }
}

fn sql_error(e: tiberius::error::Error) -> SyncError {
    SyncError::Apply(ApplyError::Sql {
        transient: crate::sqlserver::is_transient(&e),
        message: e.to_string(),
    })
}

/// What applying an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncOutcome {
    /// Rows read from the source.
    pub rows_expected: u64,
    /// Rows SQL Server reports inserted, updated, deleted or merged.
    pub rows_affected: u64,
    /// The ledger already held the event: it was applied before (for
    /// example by a run that died before recording the status), not again.
    pub from_ledger: bool,
}

impl SyncOutcome {
    /// rows_expected − rows_affected, when they differ.
    pub fn discrepancy(&self) -> Option<i64> {
        (self.rows_expected != self.rows_affected)
            .then(|| self.rows_expected as i64 - self.rows_affected as i64)
    }
}

/// Picks the warehouse: the configured one, else a running one, else the first.
pub async fn resolve_warehouse(ws: &Workspace, configured: Option<&str>) -> Result<String, String> {
    if let Some(w) = configured.filter(|w| !w.trim().is_empty()) {
        return Ok(w.trim().to_string());
    }
    let all = ws
        .list_warehouses()
        .await
        .map_err(|e| format!("cannot list SQL warehouses: {e}"))?;
    all.iter()
        .find(|w| w.state == "RUNNING")
        .or(all.first())
        .map(|w| w.id.clone())
        .ok_or_else(|| {
            "the workspace has no SQL warehouse; create one or set DATABRICKS_WAREHOUSE_ID".into()
        })
}

/// On whose rights an event is applied.
#[derive(Clone, Copy)]
pub enum Authority<'a> {
    /// Library use: the SQL Server and Databricks credentials are the
    /// right; `max_delete_rows` as the caller gives it.
    Library { max_delete_rows: Option<u64> },
    /// A user of permissions.yaml, already identified (by a token, or as
    /// the writer of an event): `write` on the target resolved in
    /// `database`, and the right to read the source in Databricks.
    User {
        user: &'a User,
        database: &'a str,
        lakehouse: &'a LakehouseRights,
    },
}

/// Checks and applies events: one Databricks warehouse, one SQL Server pool.
#[derive(Clone)]
pub struct SyncCore {
    pub ws: Workspace,
    pub warehouse: String,
    pub pool: Pool,
    pub retry: RetryPolicy,
    /// How long a source query may run.
    pub deadline: Duration,
    /// How an UPSERT is written.
    pub upsert: UpsertMethod,
    /// Bulk loads take a table lock (`--table-lock`).
    pub table_lock: bool,
}

impl SyncCore {
    /// Everything checked before any write: the operation, both tables,
    /// the keys, the columns and their types, and the rights of whoever
    /// the event is for (`who`).
    pub async fn plan(&self, e: &SyncEvent, who: Authority<'_>) -> Result<Plan, SyncError> {
        let op = Operation::parse(&e.operation).ok_or_else(|| {
            Refusal(format!(
                "unknown operation '{}'; use INSERT, UPDATE, DELETE or UPSERT",
                e.operation
            ))
        })?;
        let mut target = TargetTable::parse(&e.target_table)?;
        let source = event::source_name(&e.source_table)?;
        let (applied_by, max_delete) = self.authorize(e, &mut target, who).await?;
        if op.needs_keys() && e.primary_keys.is_empty() {
            return Err(Refusal(format!("{} needs primary_keys", op.as_str())).into());
        }
        for k in e.primary_keys.iter().chain(e.columns.iter().flatten()) {
            event::column_name(k)?;
        }
        let filter = e.filter.as_deref().map(event::check_filter).transpose()?;
        let where_ = filter
            .as_ref()
            .map(|f| format!(" WHERE ({})", f.sql))
            .unwrap_or_default();
        let source_params = filter.map(|f| f.params).unwrap_or_default();
        let described = self.describe(&source, &where_, &source_params).await?;
        let mut conn = pool::get(&self.pool).await?;
        let target_cols = target::columns(&mut conn, &target)
            .await
            .map_err(sql_error)?;
        drop(conn);
        if target_cols.is_empty() {
            return Err(Refusal(format!("target table {target} does not exist")).into());
        }
        let (columns, keys) = pair_columns(e, &described, &target_cols, &target)?;
        let list: Vec<String> = columns
            .iter()
            .map(|c| format!("`{}`", c.source_name.replace('`', "``")))
            .collect();
        let source_sql = format!("SELECT {} FROM {source}{where_}", list.join(", "));
        Ok(Plan {
            event_id: e.event_id.clone(),
            request_sha256: Plan::fingerprint(op, &source_sql, &source_params, &target, &keys),
            source_params,
            operation: op,
            source_table: e.source_table.clone(),
            source_sql,
            target,
            columns,
            keys,
            max_delete_rows: max_delete,
            applied_by,
            upsert: self.upsert,
            table_lock: self.table_lock,
        })
    }

    /// Who applies the event and the most rows it may delete, once `who`
    /// may write the target in SQL Server and read the source in
    /// Databricks, and the source has no row filter or column mask a user
    /// could be shown around. A user's target is pinned to the database it
    /// was checked in.
    async fn authorize(
        &self,
        e: &SyncEvent,
        target: &mut TargetTable,
        who: Authority<'_>,
    ) -> Result<(String, Option<u64>), SyncError> {
        Ok(match who {
            Authority::Library { max_delete_rows } => ("library".to_string(), max_delete_rows),
            Authority::User {
                user,
                database,
                lakehouse,
            } => {
                let t = target.permission_name();
                let resolved = t.in_database(database);
                if !user.can_write(&t, database) {
                    return Err(SyncError::Unauthorized {
                        user: user.name.clone(),
                        object: resolved.to_string(),
                        missing: format!("write on SQL Server table {resolved}"),
                        why: format!(
                            "user '{}' has no write permission on {resolved} (names without a database are in {database})",
                            user.name
                        ),
                    });
                }
                let uc = UcName::parse(&e.source_table).ok_or_else(|| {
                    Refusal(format!(
                        "source table '{}' must be catalog.schema.table",
                        e.source_table
                    ))
                })?;
                match lakehouse.check_table_read(user, &uc).await {
                    Ok(_) => {}
                    Err(LakehouseDenied::Denied { missing, .. }) => {
                        return Err(SyncError::Unauthorized {
                            user: user.name.clone(),
                            object: uc.to_string(),
                            missing: format!("SELECT on Databricks table {uc}"),
                            why: format!(
                                "user '{}' may not read {uc} in Databricks: {missing}",
                                user.name
                            ),
                        })
                    }
                    Err(other) => return Err(SyncError::Refused(other.to_string())),
                }
                let policies = self.policies(&uc).await?;
                if !policies.is_empty() {
                    return Err(SyncError::Refused(format!(
                        "source table {uc} has {}: Unity Catalog applies them to whoever reads it, and the bridge reads as its own principal, not as user '{}', so it cannot send only what that user may see; refused (sync from a table or view without them)",
                        policies.join(" and "),
                        user.name
                    )));
                }
                // Written, and ledgered, in the database it was checked
                // against, whichever bridge applies it.
                target.database.get_or_insert_with(|| database.to_string());
                (user.name.clone(), user.max_delete_rows(&t, database))
            }
        })
    }

    /// The source's columns and types, without reading its rows.
    async fn describe(
        &self,
        source: &str,
        where_: &str,
        params: &[(String, String)],
    ) -> Result<Vec<ColumnInfo>, SyncError> {
        let statement_params: Vec<Parameter> =
            params.iter().map(|(n, v)| Parameter::new(n, v)).collect();
        let described = self
            .ws
            .execute_json(
                &self.warehouse,
                &format!("SELECT * FROM {source}{where_} LIMIT 0"),
                &statement_params,
                self.deadline,
            )
            .await
            .map_err(|e| match e {
                StatementError::Failed { code, message } => SyncError::Refused(format!(
                    "source table {} cannot be read: {}{}",
                    e_source(source),
                    if code.is_empty() {
                        String::new()
                    } else {
                        format!("{code}: ")
                    },
                    message
                )),
                other => SyncError::Statement(other),
            })?;
        Ok(described.columns)
    }

    /// The row filter and column masks on a source table
    /// (`information_schema.row_filters`, `.column_masks`,
    /// https://docs.databricks.com/en/tables/row-and-column-filters.html),
    /// described; a failure to tell is an error (never a leak).
    async fn policies(&self, table: &UcName) -> Result<Vec<String>, SyncError> {
        let catalog = format!("`{}`", table.catalog.replace('`', "``"));
        let params = [
            Parameter::new("s", table.schema.to_lowercase()),
            Parameter::new("t", table.name.to_lowercase()),
        ];
        let mut out = Vec::new();
        for (relation, what, cols) in [
            (
                "row_filters",
                "concat(filter_catalog, '.', filter_schema, '.', filter_name)",
                "filter_col_usage",
            ),
            (
                "column_masks",
                "concat(mask_catalog, '.', mask_schema, '.', mask_name)",
                "column_name",
            ),
        ] {
            let r = self
                .ws
                .execute_json(
                    &self.warehouse,
                    &format!(
                        "SELECT {what}, {cols} FROM {catalog}.information_schema.{relation} \
                         WHERE lower(schema_name) = :s AND lower(table_name) = :t"
                    ),
                    &params,
                    self.deadline,
                )
                .await
                .map_err(|e| match e {
                    StatementError::Failed { code, message } => SyncError::Refused(format!(
                        "cannot tell whether source table {table} has row filters or column masks ({code}: {message}); refused rather than risk sending rows or values hidden from the user"
                    )),
                    other => SyncError::Statement(other),
                })?;
            for row in r.rows {
                let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                out.push(if relation == "row_filters" {
                    format!("row filter {} on ({})", get(0), get(1))
                } else {
                    format!("column mask {} on {}", get(0), get(1))
                });
            }
        }
        Ok(out)
    }

    /// Applies a checked plan, exactly once: each attempt first looks for
    /// the event in the ledger; transient failures (a dropped connection,
    /// a deadlock, Databricks throttling) roll back and try again.
    pub async fn execute(&self, plan: &Plan) -> Result<SyncOutcome, SyncError> {
        let rows = Rows::Databricks {
            ws: &self.ws,
            warehouse: &self.warehouse,
            deadline: self.deadline,
        };
        apply_once(&self.pool, &self.retry, plan, rows).await
    }
}

/// Where an application's rows are read, on each attempt.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// The plan's `source_sql`, run on a Databricks SQL warehouse.
    Databricks {
        ws: &'a Workspace,
        warehouse: &'a str,
        deadline: Duration,
    },
    /// Stage tables loaded by the tasks of a distributed write.
    Stages(&'a [StageRef]),
}

/// Applies `plan` exactly once, reading `rows`: each attempt first looks
/// for the plan's id in the ledger
/// (applied before: its counts, nothing written); transient failures roll
/// back and try again; after a failure the ledger tells whether another run
/// (or this one, its answer lost) committed it meanwhile.
pub(crate) async fn apply_once(
    pool: &Pool,
    policy: &RetryPolicy,
    plan: &Plan,
    rows: Rows<'_>,
) -> Result<SyncOutcome, SyncError> {
    retry(
        policy,
        |attempt, e: &SyncError, wait| {
            tracing::warn!(
                event = plan.event_id,
                attempt,
                error = %e,
                "applying the event failed; retrying in {:.1} s",
                wait.as_secs_f64()
            )
        },
        || async move {
            attempt_once(pool, plan, rows).await.map_err(|e| {
                let t = e.transient();
                (e, t)
            })
        },
    )
    .await
}

async fn attempt_once(pool: &Pool, plan: &Plan, rows: Rows<'_>) -> Result<SyncOutcome, SyncError> {
    let mut conn = pool::get(pool).await?;
    target::ensure_ledger(&mut conn, &plan.target)
        .await
        .map_err(sql_error)?;
    if let Some(entry) = target::ledger_entry(&mut conn, &plan.target, &plan.event_id)
        .await
        .map_err(sql_error)?
    {
        return from_ledger(plan, entry);
    }
    let applied = match rows {
        Rows::Databricks {
            ws,
            warehouse,
            deadline,
        } => {
            let params: Vec<Parameter> = plan
                .source_params
                .iter()
                .map(|(n, v)| Parameter::new(n, v))
                .collect();
            match ws
                .query_arrow(warehouse, &plan.source_sql, &params, deadline)
                .await
            {
                Ok(mut source) => apply::apply(&mut conn, plan, apply::Source::Stream(&mut source))
                    .await
                    .map_err(SyncError::Apply),
                Err(e) => Err(SyncError::Statement(e)),
            }
        }
        Rows::Stages(stages) => apply::apply(&mut conn, plan, apply::Source::Stages(stages))
            .await
            .map_err(SyncError::Apply),
    };
    match applied {
        Ok(a) => Ok(SyncOutcome {
            rows_expected: a.rows_read,
            rows_affected: a.rows_affected,
            from_ledger: false,
        }),
        Err(e) => {
            // The connection may be mid-bulk or inside the transaction:
            // closing it rolls back; it never returns to the pool.
            let _ = deadpool::managed::Object::take(conn);
            // Another run (a bridge that took the event over while its
            // holder was still applying it) may have committed it in
            // the meantime: its writes then collide with ours (2627 on
            // the ledger or on the target's key). The ledger says so.
            if let Some(entry) = committed_meanwhile(pool, plan).await {
                return from_ledger(plan, entry);
            }
            Err(match e {
                SyncError::Apply(ApplyError::Refused(why)) => SyncError::Refused(why),
                e => e,
            })
        }
    }
}

/// The plan's ledger row, read on a fresh connection after a failed
/// attempt; `None` when it is not there or cannot be read now.
async fn committed_meanwhile(pool: &Pool, plan: &Plan) -> Option<target::LedgerEntry> {
    let mut conn = pool::get(pool).await.ok()?;
    target::ledger_entry(&mut conn, &plan.target, &plan.event_id)
        .await
        .ok()
        .flatten()
}

/// The event's columns (all the source's when it names none, plus its
/// keys) paired with the target's, each pair's conversion planned by the
/// type table, and the keys as the target spells them.
fn pair_columns(
    e: &SyncEvent,
    source_cols: &[ColumnInfo],
    target_cols: &[TargetColumn],
    target: &TargetTable,
) -> Result<(Vec<PlannedColumn>, Vec<String>), SyncError> {
    let find_source = |name: &str| {
        source_cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    let find_target = |name: &str| {
        target_cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    let mut chosen: Vec<String> = match &e.columns {
        Some(c) => c.clone(),
        None => source_cols.iter().map(|c| c.name.clone()).collect(),
    };
    let mut keys = Vec::new();
    for k in &e.primary_keys {
        if find_source(k).is_none() {
            return Err(Refusal(format!(
                "primary key column {k} is not in the source table {}",
                e.source_table
            ))
            .into());
        }
        let t = find_target(k).ok_or_else(|| {
            Refusal(format!(
                "primary key column {k} is not in the target table {target}"
            ))
        })?;
        keys.push(t.name.clone());
        if !chosen.iter().any(|c| c.eq_ignore_ascii_case(k)) {
            chosen.push(k.clone());
        }
    }
    let mut columns = Vec::new();
    let mut mismatches = Vec::new();
    for name in &chosen {
        let s = find_source(name).ok_or_else(|| {
            Refusal(format!(
                "column {name} is not in the source table {}",
                e.source_table
            ))
        })?;
        let t = find_target(name).ok_or_else(|| {
            Refusal(format!(
                "column {name} of the source is not in the target table {target}"
            ))
        })?;
        let ty = if s.type_text.is_empty() {
            &s.type_name
        } else {
            &s.type_text
        };
        match to_sqlserver::plan(&SparkType::parse(ty), t) {
            Ok(conv) => columns.push(PlannedColumn {
                source_name: s.name.clone(),
                target: t.clone(),
                conv,
            }),
            Err(why) => mismatches.push(why),
        }
    }
    if !mismatches.is_empty() {
        return Err(Refusal(format!("type mismatch: {}", mismatches.join("; "))).into());
    }
    if columns.is_empty() {
        return Err(Refusal("no columns to copy".into()).into());
    }
    Ok((columns, keys))
}

/// The outcome of an event the ledger already holds: applied before, when
/// it asked the same; otherwise its id was re-used for another request,
/// which is refused (it would never be applied).
fn from_ledger(plan: &Plan, entry: target::LedgerEntry) -> Result<SyncOutcome, SyncError> {
    match &entry.request_sha256 {
        Some(f) if *f != plan.request_sha256 => Err(SyncError::Refused(format!(
            "event_id {} was already applied{} for a different request; an event needs an event_id of its own",
            plan.event_id,
            entry
                .applied_at
                .as_deref()
                .map(|a| format!(" (at {a} UTC)"))
                .unwrap_or_default()
        ))),
        _ => Ok(SyncOutcome {
            rows_expected: entry.rows_expected,
            rows_affected: entry.rows_affected,
            from_ledger: true,
        }),
    }
}

fn e_source(quoted: &str) -> String {
    quoted.replace('`', "")
}
