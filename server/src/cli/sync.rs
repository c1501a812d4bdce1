//! `sync`: reverse sync from the command line — create the events table,
//! apply one table directly, or poll the events table once or forever.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sql_databricks_bridge::auth::{AuditLog, LakehouseRights, Permissions};
use sql_databricks_bridge::sqlserver::{home::HomeDatabase, pool};
use sql_databricks_bridge::sync::{
    resolve_warehouse, Authority, EventWriters, EventsTable, Poller, PollerConfig, SyncCore,
    SyncEvent, UpsertMethod, EVENTS_TABLE,
};
use tokio_util::sync::CancellationToken;

use super::connection::ConnectionArgs;
use super::extract::{workspace, TuningArgs};

#[derive(clap::Subcommand, Debug)]
pub enum SyncCommand {
    /// Create the events table (and its schema) in Databricks if missing.
    Init {
        #[command(flatten)]
        common: SyncArgs,
    },
    /// Apply one Databricks table to a SQL Server table now, without the
    /// events table (the deck's Databricks-jobs mode); prints rows affected.
    Apply(Box<ApplyArgs>),
    /// Claim and apply the pending events once, then exit (non-zero when
    /// an event failed).
    RunOnce {
        #[command(flatten)]
        poll: PollArgs,
    },
    /// Poll the events table every --interval seconds until Ctrl-C/SIGTERM.
    Watch {
        #[command(flatten)]
        poll: PollArgs,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// The events table, catalog.schema.table.
    #[arg(long, env = "BRIDGE_EVENTS_TABLE", default_value = EVENTS_TABLE)]
    pub events_table: String,
    /// SQL warehouse that runs the statements (default: a running one).
    #[arg(long, env = "DATABRICKS_WAREHOUSE_ID")]
    pub warehouse_id: Option<String>,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How events are written into SQL Server (shared by `sync` and `serve`).
#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// How an UPSERT is written: `update-insert` (UPDATE ... JOIN then
    /// INSERT ... WHERE NOT EXISTS under UPDLOCK, HOLDLOCK; works where MERGE
    /// does not) or `merge` (one MERGE statement).
    #[arg(long, value_enum, env = "BRIDGE_UPSERT_WITH", default_value_t = UpsertMethod::UpdateInsert)]
    pub upsert_with: UpsertMethod,
    /// The bulk load into the target takes a table lock (TABLOCK) instead
    /// of row locks (loads into the session's temp table always do): faster,
    /// minimally logged where the recovery model allows, but other writers
    /// of the target — and its readers, unless they use snapshot isolation —
    /// wait until the event's transaction commits. For loads into tables
    /// nobody else writes during the load.
    #[arg(long, env = "BRIDGE_TABLE_LOCK")]
    pub table_lock: bool,
}

#[derive(clap::Args, Debug)]
pub struct PollArgs {
    /// Users allowed to request events (requested_by) and their rights.
    #[arg(
        long,
        env = "BRIDGE_PERMISSIONS_FILE",
        default_value = "config/permissions.yaml"
    )]
    pub permissions_file: PathBuf,
    /// Audit trail, one JSON line per event claimed, applied, refused or failed.
    #[arg(long, env = "BRIDGE_AUDIT_LOG", default_value = "logs/audit.jsonl")]
    pub audit_log: PathBuf,
    #[command(flatten)]
    pub schedule: Schedule,
    #[command(flatten)]
    pub common: SyncArgs,
}

/// When and as whom the poller runs (shared by `sync watch` and `serve`).
#[derive(clap::Args, Debug, Clone)]
pub struct Schedule {
    /// Seconds between polls of the events table.
    #[arg(
        long = "sync-interval",
        env = "BRIDGE_SYNC_INTERVAL",
        default_value_t = 10
    )]
    pub interval: u64,
    /// Seconds after which another instance's claim on an event is taken over.
    #[arg(long, default_value_t = 600)]
    pub lease: u64,
    /// Name written to claimed_by (default: host-pid-random).
    #[arg(long)]
    pub instance_id: Option<String>,
    /// Take only events whose target is in one of these databases
    /// (comma-separated; default: every database this SQL Server login sees).
    #[arg(long, env = "BRIDGE_DATABASES", value_delimiter = ',')]
    pub databases: Vec<String>,
    /// Leave events whose target names no database to another bridge. With
    /// several bridges on one events table, run all but one with this (or
    /// name the database in every target).
    #[arg(long, env = "BRIDGE_LEAVE_UNQUALIFIED_TARGETS")]
    pub leave_unqualified_targets: bool,
    /// Attempts of an event ending in a transient failure before it fails
    /// (until then it is released for a later poll).
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// Databricks table to read: catalog.schema.table.
    #[arg(long)]
    pub source_table: String,
    /// SQL Server table to write: schema.table or database.schema.table.
    #[arg(long)]
    pub target_table: String,
    /// INSERT, UPDATE, DELETE or UPSERT.
    #[arg(long)]
    pub operation: String,
    /// Primary key column (repeatable); required for UPDATE, DELETE, UPSERT.
    #[arg(long = "primary-key")]
    pub primary_keys: Vec<String>,
    /// Copy only this column (repeatable); all of the source's by default.
    #[arg(long = "column")]
    pub columns: Vec<String>,
    /// A Databricks SQL condition on the source rows.
    #[arg(long)]
    pub filter: Option<String>,
    /// Refuse a DELETE that would remove more rows than this.
    #[arg(long)]
    pub max_delete_rows: Option<u64>,
    #[command(flatten)]
    pub common: SyncArgs,
}

/// The Databricks and SQL Server ends shared by every sync command (and
/// the server's poller).
pub async fn core(
    connection: &ConnectionArgs,
    tuning: &TuningArgs,
    write: &WriteArgs,
    warehouse_id: Option<&str>,
    pool_size: usize,
) -> anyhow::Result<SyncCore> {
    let ws = workspace(connection)?.with_retry(tuning.retry());
    let warehouse = resolve_warehouse(&ws, warehouse_id)
        .await
        .map_err(anyhow::Error::msg)?;
    let settings = connection.sqlserver().context("SQL Server settings")?;
    Ok(SyncCore {
        ws,
        warehouse,
        pool: pool::pool(
            &settings,
            pool_size,
            Duration::from_secs(connection.timeout),
        )?,
        retry: tuning.retry(),
        deadline: Duration::from_secs(3600),
        upsert: write.upsert_with,
        table_lock: write.table_lock,
    })
}

/// A poller over `events_table`.
pub fn poller(
    core: SyncCore,
    connection: &ConnectionArgs,
    events_table: &str,
    schedule: &Schedule,
    permissions: Arc<Permissions>,
    audit: Arc<AuditLog>,
) -> anyhow::Result<Poller> {
    let settings = connection.sqlserver().context("SQL Server settings")?;
    Ok(Poller {
        events: EventsTable::new(core.ws.clone(), &core.warehouse, events_table)?,
        writers: Arc::new(EventWriters::new(core.ws.clone())),
        lakehouse: Arc::new(LakehouseRights::new(
            core.ws.clone(),
            Duration::from_secs(30),
        )),
        home: Arc::new(HomeDatabase::new(
            &settings,
            Duration::from_secs(connection.timeout),
        )),
        core,
        permissions,
        audit,
        stats: Default::default(),
        config: PollerConfig {
            instance_id: schedule
                .instance_id
                .clone()
                .unwrap_or_else(PollerConfig::instance_id),
            lease: Duration::from_secs(schedule.lease.max(1)),
            interval: Duration::from_secs(schedule.interval.max(1)),
            batch: 50,
            exit_after_commit: std::env::var("BRIDGE_FAULT_EXIT_AFTER_COMMIT")
                .is_ok_and(|v| v == "1"),
            databases: {
                let d: Vec<String> = schedule
                    .databases
                    .iter()
                    .map(|d| d.trim().to_string())
                    .filter(|d| !d.is_empty())
                    .collect();
                (!d.is_empty()).then_some(d)
            },
            unqualified_targets: !schedule.leave_unqualified_targets,
            max_attempts: i64::from(schedule.max_attempts.max(1)),
        },
    })
}

/// Returns whether everything it did succeeded.
pub async fn run(cmd: SyncCommand) -> anyhow::Result<bool> {
    match cmd {
        SyncCommand::Init { common } => {
            let core = core(
                &common.connection,
                &common.tuning,
                &common.write,
                common.warehouse_id.as_deref(),
                1,
            )
            .await?;
            let table = EventsTable::new(core.ws.clone(), &core.warehouse, &common.events_table)?;
            let created = table.init().await?;
            println!(
                "{} {}",
                table.name(),
                if created { "created" } else { "already exists" }
            );
            Ok(true)
        }
        SyncCommand::Apply(a) => {
            let c = &a.common;
            let core = core(
                &c.connection,
                &c.tuning,
                &c.write,
                c.warehouse_id.as_deref(),
                1,
            )
            .await?;
            let mut event = SyncEvent::direct(
                &a.operation,
                &a.source_table,
                &a.target_table,
                a.primary_keys.clone(),
            );
            event.filter = a.filter.clone();
            event.columns = (!a.columns.is_empty()).then(|| a.columns.clone());
            let plan = core
                .plan(
                    &event,
                    Authority::Library {
                        max_delete_rows: a.max_delete_rows,
                    },
                )
                .await?;
            let o = core.execute(&plan).await?;
            println!(
                "{} {} → {}: {} rows read, {} rows affected{}",
                plan.operation.as_str(),
                a.source_table,
                plan.target,
                o.rows_expected,
                o.rows_affected,
                o.discrepancy()
                    .map(|d| format!(" (discrepancy {d})"))
                    .unwrap_or_default()
            );
            Ok(true)
        }
        SyncCommand::RunOnce { poll } | SyncCommand::Watch { poll }
            if !poll.permissions_file.exists() =>
        {
            anyhow::bail!(
                "permissions file {} not found (--permissions-file)",
                poll.permissions_file.display()
            )
        }
        SyncCommand::RunOnce { poll } => {
            let p = build(&poll).await?;
            let s = p.run_once().await?;
            println!(
                "events seen {}, claimed {}, completed {}, failed {}, released to retry {}, skipped (target database not on this server) {}",
                s.seen, s.claimed, s.completed, s.failed, s.released, s.skipped
            );
            Ok(s.failed == 0)
        }
        SyncCommand::Watch { poll } => {
            let p = build(&poll).await?;
            let cancel = CancellationToken::new();
            let stop = cancel.clone();
            tokio::spawn(async move {
                super::serve::shutdown_signal().await;
                stop.cancel();
            });
            eprintln!(
                "watching {} every {} s as {}",
                p.events.name(),
                poll.schedule.interval,
                p.config.instance_id
            );
            p.watch(cancel).await;
            Ok(true)
        }
    }
}

async fn build(poll: &PollArgs) -> anyhow::Result<Poller> {
    let permissions = Arc::new(Permissions::load(&poll.permissions_file)?);
    let audit = Arc::new(AuditLog::open(&poll.audit_log)?);
    let c = &poll.common;
    let core = core(
        &c.connection,
        &c.tuning,
        &c.write,
        c.warehouse_id.as_deref(),
        2,
    )
    .await?;
    poller(
        core,
        &c.connection,
        &c.events_table,
        &poll.schedule,
        permissions,
        audit,
    )
}
