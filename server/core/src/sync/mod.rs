//! Reverse sync, Databricks → SQL Server. `SyncCore` checks an event and
//! applies it exactly once (ledger row in the same transaction); `Poller`
//! claims events from the events table, runs them through the core and
//! records each outcome, in the table and in the audit log.

pub mod apply;
pub mod convert;
pub mod event;
pub mod events_table;
pub mod keys;
pub mod provenance;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::{
    AuditEvent, AuditLog, EventType, LakehouseDenied, LakehouseRights, Permissions, User,
};
use crate::databricks::names::UcName;
use crate::databricks::statements::{Parameter, StatementError};
use crate::databricks::Workspace;
use crate::metrics::Counter;
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::home::HomeDatabase;
use crate::sqlserver::pool::{self, Pool};
use crate::sqlserver::SqlServerError;
pub use apply::UpsertMethod;
use apply::{ApplyError, Plan, PlannedColumn};
use convert::SourceType;
pub use event::{EventStatus, Operation, Refusal, SyncEvent, TargetTable};
pub use events_table::{Claim, EventsError, EventsTable, NewEvent, Routing};
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
        let (applied_by, max_delete) = match who {
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
        };
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
        let statement_params: Vec<Parameter> = source_params
            .iter()
            .map(|(n, v)| Parameter::new(n, v))
            .collect();

        // The source's columns and types, without reading its rows.
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
                    e_source(&source),
                    if code.is_empty() {
                        String::new()
                    } else {
                        format!("{code}: ")
                    },
                    message
                )),
                other => SyncError::Statement(other),
            })?;
        let mut conn = pool::get(&self.pool).await?;
        let target_cols = target::columns(&mut conn, &target)
            .await
            .map_err(sql_error)?;
        drop(conn);
        if target_cols.is_empty() {
            return Err(Refusal(format!("target table {target} does not exist")).into());
        }
        let find_source = |name: &str| {
            described
                .columns
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
            None => described.columns.iter().map(|c| c.name.clone()).collect(),
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
            match convert::plan(&SourceType::parse(ty), t) {
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
        retry(
            &self.retry,
            |attempt, e: &SyncError, wait| {
                tracing::warn!(
                    event = plan.event_id,
                    attempt,
                    error = %e,
                    "applying the event failed; retrying in {:.1} s",
                    wait.as_secs_f64()
                )
            },
            || async {
                self.attempt(plan).await.map_err(|e| {
                    let t = e.transient();
                    (e, t)
                })
            },
        )
        .await
    }

    async fn attempt(&self, plan: &Plan) -> Result<SyncOutcome, SyncError> {
        let mut conn = pool::get(&self.pool).await?;
        target::ensure_ledger(&mut conn, &plan.target)
            .await
            .map_err(sql_error)?;
        if let Some(entry) = target::ledger_entry(&mut conn, &plan.target, &plan.event_id)
            .await
            .map_err(sql_error)?
        {
            return from_ledger(plan, entry);
        }
        let mut source = self
            .ws
            .query_arrow(
                &self.warehouse,
                &plan.source_sql,
                &plan
                    .source_params
                    .iter()
                    .map(|(n, v)| Parameter::new(n, v))
                    .collect::<Vec<_>>(),
                self.deadline,
            )
            .await?;
        match apply::apply(&mut conn, plan, &mut source).await {
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
                if let Some(entry) = self.committed_meanwhile(plan).await {
                    return from_ledger(plan, entry);
                }
                Err(match e {
                    ApplyError::Refused(why) => SyncError::Refused(why),
                    e => SyncError::Apply(e),
                })
            }
        }
    }

    /// The event's ledger row, read on a fresh connection after a failed
    /// attempt; `None` when it is not there or cannot be read now.
    async fn committed_meanwhile(&self, plan: &Plan) -> Option<target::LedgerEntry> {
        let mut conn = pool::get(&self.pool).await.ok()?;
        target::ledger_entry(&mut conn, &plan.target, &plan.event_id)
            .await
            .ok()
            .flatten()
    }
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

/// How the poller runs.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Written to `claimed_by`; unique per running bridge.
    pub instance_id: String,
    /// A claim older than this is taken over (its holder is presumed dead).
    pub lease: Duration,
    pub interval: Duration,
    /// Events looked at per poll.
    pub batch: usize,
    /// Test hook: exit the process right after a commit, before the
    /// status is recorded (`BRIDGE_FAULT_EXIT_AFTER_COMMIT=1`), to prove
    /// the ledger makes the next run complete without applying again.
    pub exit_after_commit: bool,
    /// The databases whose events this bridge takes; `None`: every
    /// database its SQL Server login sees (`sys.databases`).
    pub databases: Option<Vec<String>>,
    /// Take events whose target names no database (written into this
    /// bridge's own). With several bridges on one events table, one of
    /// them at most should.
    pub unqualified_targets: bool,
    /// After this many attempts ending in a transient failure an event
    /// fails; before, it is released for a later poll.
    pub max_attempts: i64,
}

impl PollerConfig {
    pub fn instance_id() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "bridge".into());
        format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    pub seen: usize,
    pub claimed: usize,
    pub completed: usize,
    pub failed: usize,
    /// Targets in a database this server does not hold (left for others).
    pub skipped: usize,
    /// Given back after a transient failure, to be tried again.
    pub released: usize,
}

/// What became of a claimed event.
enum Handled {
    Completed,
    Failed,
    Released,
}

/// Whether `routing` gives this event's target to this bridge (the exact
/// check after the query's narrowing): a named database it holds, or no
/// database when it takes those. Unreadable targets go to the bridge that
/// takes unqualified ones, which fails them with the reason.
fn routes_here(e: &SyncEvent, routing: &Routing) -> bool {
    match TargetTable::parse(&e.target_table) {
        Ok(TargetTable {
            database: Some(d), ..
        }) => routing
            .databases
            .iter()
            .any(|h| h.trim_end().eq_ignore_ascii_case(d.trim_end())),
        _ => routing.unqualified,
    }
}

/// What the poller has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Events by outcome (`completed`, `failed`).
    pub events: Counter,
    /// Rows SQL Server reported affected by completed events.
    pub rows: Counter,
}

#[derive(Clone)]
pub struct Poller {
    pub core: SyncCore,
    pub events: EventsTable,
    pub permissions: Arc<Permissions>,
    pub audit: Arc<AuditLog>,
    pub config: PollerConfig,
    pub stats: Arc<SyncStats>,
    /// Who wrote each event, from the events table's feed and history.
    pub writers: Arc<EventWriters>,
    /// Users' rights on the Databricks side.
    pub lakehouse: Arc<LakehouseRights>,
    /// The database targets without one are written in.
    pub home: Arc<HomeDatabase>,
}

impl Poller {
    fn audit(&self, t: EventType, e: &SyncEvent, detail: String) {
        let mut line =
            AuditEvent::new(t, e.target_table.clone(), &e.operation.to_ascii_lowercase())
                .detail(format!("event {}: {detail}", e.event_id));
        if let Some(u) = &e.requested_by {
            line = line.user(u.clone());
        }
        self.audit.record(line);
    }

    /// Claims and applies what is pending, once.
    pub async fn run_once(&self) -> Result<PollSummary, SyncError> {
        let cfg = &self.config;
        let routing = self.routing().await?;
        let events = self
            .events
            .claimable(cfg.lease, cfg.batch, &routing)
            .await?;
        let mut s = PollSummary {
            seen: events.len(),
            ..PollSummary::default()
        };
        for e in events {
            if !routes_here(&e, &routing) {
                s.skipped += 1;
                continue;
            }
            match self
                .events
                .claim(&e.event_id, &cfg.instance_id, cfg.lease)
                .await?
            {
                Claim::Won => {}
                Claim::Lost => continue,
                Claim::Duplicated(n) => {
                    // Which row is meant cannot be told: all are refused,
                    // and each asker must send its own id.
                    s.claimed += 1;
                    s.failed += 1;
                    let why = format!(
                        "refused: event_id {} is on {n} rows of the events table; an event needs an event_id of its own (insert it again with a new one)",
                        e.event_id
                    );
                    tracing::warn!(event = e.event_id, "{why}");
                    self.stats.events.add("outcome=\"failed\"", 1);
                    self.events
                        .finish(
                            &e.event_id,
                            &cfg.instance_id,
                            EventStatus::Failed,
                            None,
                            None,
                            Some(&why),
                        )
                        .await?;
                    self.audit(EventType::SyncEventRefused, &e, why);
                    continue;
                }
            }
            s.claimed += 1;
            self.audit(
                EventType::SyncEventClaimed,
                &e,
                format!("claimed by {}", cfg.instance_id),
            );
            match self.handle(&e).await? {
                Handled::Completed => s.completed += 1,
                Handled::Failed => s.failed += 1,
                Handled::Released => s.released += 1,
            }
        }
        Ok(s)
    }

    /// The databases this bridge takes events for.
    async fn routing(&self) -> Result<Routing, SyncError> {
        let databases = match &self.config.databases {
            Some(d) => d.clone(),
            None => {
                let mut conn = pool::get(&self.core.pool).await?;
                target::databases(&mut conn).await.map_err(sql_error)?
            }
        };
        Ok(Routing {
            databases,
            unqualified: self.config.unqualified_targets,
        })
    }

    /// Applies one claimed event and records the outcome. The claim is
    /// renewed every third of the lease while it applies, so a long event is
    /// not taken over.
    async fn handle(&self, e: &SyncEvent) -> Result<Handled, SyncError> {
        let me = &self.config.instance_id;
        let work = async {
            let user = self.identify(e).await?;
            let database = self.home.name().await?;
            let plan = self
                .core
                .plan(
                    e,
                    Authority::User {
                        user,
                        database,
                        lakehouse: &self.lakehouse,
                    },
                )
                .await?;
            self.core.execute(&plan).await
        };
        tokio::pin!(work);
        let mut beat =
            tokio::time::interval((self.config.lease / 3).max(Duration::from_millis(100)));
        beat.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = beat.tick() => match self.events.renew(&e.event_id, me).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        event = e.event_id,
                        "the claim was taken over while applying; the ledger keeps the event from being applied twice"
                    ),
                    Err(err) => tracing::warn!(event = e.event_id, error = %err, "renewing the claim failed"),
                },
            }
        };
        match result {
            Ok(o) => {
                if self.config.exit_after_commit && !o.from_ledger {
                    tracing::error!(event = e.event_id, "fault hook: exiting after commit");
                    self.audit.flush();
                    std::process::exit(86);
                }
                let recorded = self
                    .events
                    .finish(
                        &e.event_id,
                        me,
                        EventStatus::Completed,
                        Some(o.rows_expected),
                        Some(o.rows_affected),
                        None,
                    )
                    .await?;
                let mut detail = format!(
                    "{} rows read, {} affected{}",
                    o.rows_expected,
                    o.rows_affected,
                    if o.from_ledger {
                        " (already in the ledger: not applied again)"
                    } else {
                        ""
                    }
                );
                if let Some(d) = o.discrepancy() {
                    detail.push_str(&format!("; discrepancy {d}"));
                    tracing::warn!(
                        event = e.event_id,
                        discrepancy = d,
                        "rows read and rows affected differ"
                    );
                }
                if !recorded {
                    detail.push_str("; the claim had been taken over, status left to its holder");
                }
                tracing::info!(event = e.event_id, "{detail}");
                self.audit(EventType::SyncEventApplied, e, detail);
                self.stats.events.add("outcome=\"completed\"", 1);
                if !o.from_ledger {
                    self.stats.rows.add(
                        &format!(
                            "operation=\"{}\"",
                            Operation::parse(&e.operation).map_or("?", Operation::as_str)
                        ),
                        o.rows_affected,
                    );
                }
                Ok(Handled::Completed)
            }
            Err(err)
                if err.transient() && e.attempts.unwrap_or(0) + 1 < self.config.max_attempts =>
            {
                let message = err.to_string();
                tracing::warn!(event = e.event_id, error = %message, "transient failure; the event is released for a later poll");
                self.events.release(&e.event_id, me, &message).await?;
                self.audit(
                    EventType::SyncEventFailed,
                    e,
                    format!("{message}; released to be tried again"),
                );
                Ok(Handled::Released)
            }
            Err(err) => {
                let refused = matches!(err, SyncError::Refused(_) | SyncError::Unauthorized { .. });
                let message = err.to_string();
                tracing::warn!(event = e.event_id, error = %message, "sync event failed");
                self.stats.events.add("outcome=\"failed\"", 1);
                self.events
                    .finish(
                        &e.event_id,
                        me,
                        EventStatus::Failed,
                        None,
                        None,
                        Some(&message),
                    )
                    .await?;
                let t = if refused {
                    EventType::SyncEventRefused
                } else {
                    EventType::SyncEventFailed
                };
                match &err {
                    SyncError::Unauthorized {
                        user,
                        object,
                        missing,
                        ..
                    } => self.audit.record(
                        AuditEvent::new(t, object.clone(), &e.operation.to_ascii_lowercase())
                            .user(user.clone())
                            .missing(missing.clone())
                            .detail(format!("event {}: {message}", e.event_id)),
                    ),
                    _ => self.audit(t, e, message),
                }
                Ok(Handled::Failed)
            }
        }
    }

    /// The user an event is applied for: the one its writer — the
    /// Databricks principal that inserted it, learned from the events
    /// table's feed and history — acts for, and that it names in
    /// `requested_by`. Events a bridge wrote (`POST /sync/events`) are for
    /// the token's user the bridge recorded in `requested_by`.
    async fn identify(&self, e: &SyncEvent) -> Result<&User, SyncError> {
        let me = self
            .writers
            .me()
            .await
            .map_err(|w| SyncError::Refused(w.to_string()))?
            .to_string();
        let is_bridge =
            |p: &str| p.trim().eq_ignore_ascii_case(&me) || self.permissions.is_bridge_principal(p);
        let writer = self
            .writers
            .writer(&self.events, e, is_bridge)
            .await
            .map_err(|w| match w {
                provenance::WriterError::Events(x) => SyncError::Events(x),
                other => SyncError::Unauthorized {
                    user: e.requested_by.clone().unwrap_or_default(),
                    object: format!("event {}", e.event_id),
                    missing: "an established writer".into(),
                    why: other.to_string(),
                },
            })?;
        let named = e
            .requested_by
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if is_bridge(&writer) {
            let name = named
                .ok_or_else(|| Refusal("unauthorized: the event has no requested_by".into()))?;
            return self.permissions.user(name).ok_or_else(|| {
                Refusal(format!(
                    "unauthorized: requested_by '{name}' is not a user in permissions.yaml"
                ))
                .into()
            });
        }
        let acts_for = self.permissions.users_of_principal(&writer);
        let names: Vec<&str> = acts_for.iter().map(|u| u.name.as_str()).collect();
        let denied = |asked: &str, why: String| SyncError::Unauthorized {
            user: names
                .first()
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("databricks:{writer}")),
            object: format!("user {asked}"),
            missing: format!("Databricks principal {writer} acting for user {asked}"),
            why,
        };
        match named {
            Some(name) => acts_for
                .iter()
                .find(|u| u.name.eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| {
                    denied(
                        name,
                        format!(
                            "the event was written by Databricks principal {writer}, which {} in permissions.yaml, not for '{name}'",
                            if names.is_empty() {
                                "acts for no user".to_string()
                            } else {
                                format!("acts for {}", names.join(", "))
                            }
                        ),
                    )
                }),
            None => match acts_for.as_slice() {
                [only] => Ok(*only),
                _ => Err(denied(
                    "?",
                    format!(
                        "the event names no requested_by and its writer, Databricks principal {writer}, acts for {} users",
                        acts_for.len()
                    ),
                )),
            },
        }
    }

    /// Polls every `interval` until cancelled; errors are logged and the
    /// next poll tries again.
    pub async fn watch(&self, cancel: CancellationToken) {
        loop {
            match self.run_once().await {
                Ok(s) if s.claimed > 0 => tracing::info!(?s, "sync poll"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sync poll failed; will try again"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}
