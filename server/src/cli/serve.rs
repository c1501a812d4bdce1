//! `serve`: the REST API, with the job runner behind it, until SIGTERM or
//! Ctrl-C; and `openapi`, which prints the document the server serves.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use sql_databricks_bridge::api::{self, paths::Roots, ServerState};
use sql_databricks_bridge::auth::audit::Rotation;
use sql_databricks_bridge::auth::{AuditLog, LakehouseRights, Permissions};
use sql_databricks_bridge::databricks::names::UcName;
use sql_databricks_bridge::jobs::{JobRunner, JobStore, RunnerConfig};
use sql_databricks_bridge::metrics::{Counter, Histogram};
use sql_databricks_bridge::sqlserver::{self, home::HomeDatabase};
use sql_databricks_bridge::tables::TableLoader;

use super::connection::ConnectionArgs;
use super::extract::{workspace, TuningArgs};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BRIDGE_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "BRIDGE_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Users, tokens and table permissions.
    #[arg(
        long,
        env = "BRIDGE_PERMISSIONS_FILE",
        default_value = "config/permissions.yaml"
    )]
    pub permissions_file: PathBuf,
    /// The job store (SQLite); history survives restarts.
    #[arg(long, env = "BRIDGE_JOBS_DB", default_value = "data/jobs.sqlite")]
    pub jobs_db: PathBuf,
    /// Audit trail, one JSON line per decision (also sent to the log).
    #[arg(long, env = "BRIDGE_AUDIT_LOG", default_value = "logs/audit.jsonl")]
    pub audit_log: PathBuf,
    /// The audit file is rotated (audit.jsonl → audit.jsonl.1 → .2 ...)
    /// before a line would take it past this many bytes.
    #[arg(long, env = "BRIDGE_AUDIT_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub audit_max_bytes: u64,
    /// Rotated audit files kept; the oldest beyond them is deleted (0: the
    /// file is emptied at the cap).
    #[arg(long, env = "BRIDGE_AUDIT_KEEP", default_value_t = 5)]
    pub audit_keep: usize,
    /// Requests' `queries_path` must resolve inside this directory.
    #[arg(long, env = "BRIDGE_QUERIES_ROOT", default_value = ".")]
    pub queries_root: PathBuf,
    /// Requests' `config_path` must resolve inside this directory.
    #[arg(long, env = "BRIDGE_CONFIG_ROOT", default_value = ".")]
    pub config_root: PathBuf,
    /// Allows local `destination`s, inside this directory (otherwise only
    /// Unity Catalog Volumes).
    #[arg(long, env = "BRIDGE_OUTPUT_ROOT")]
    pub output_root: Option<PathBuf>,
    /// Jobs running at once; more wait in a queue.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent_jobs: usize,
    /// Queries of one job running at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// On SIGTERM/Ctrl-C, seconds running jobs get to finish before they
    /// are stopped and marked interrupted.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Seconds each /health/ready check may take.
    #[arg(long, default_value_t = 5)]
    pub ready_timeout: u64,
    /// Seconds an `Idempotency-Key` of POST /extract or /sync/events is
    /// kept with its answer (retries within it get that answer again).
    #[arg(long, env = "BRIDGE_IDEMPOTENCY_TTL", default_value_t = 24 * 60 * 60)]
    pub idempotency_ttl: u64,
    /// Do not poll the sync events table (the /sync/events endpoints still
    /// write and read it).
    #[arg(long)]
    pub no_sync: bool,
    /// The sync events table, catalog.schema.table.
    #[arg(long, env = "BRIDGE_EVENTS_TABLE", default_value = sql_databricks_bridge::sync::EVENTS_TABLE)]
    pub events_table: String,
    /// SQL warehouse for sync statements (default: a running one).
    #[arg(long, env = "DATABRICKS_WAREHOUSE_ID")]
    pub warehouse_id: Option<String>,
    #[command(flatten)]
    pub schedule: super::sync::Schedule,
    #[command(flatten)]
    pub write: super::sync::WriteArgs,
    /// Where table loads keep their position (catalog.schema.table).
    #[arg(long, env = "BRIDGE_STATE_TABLE", default_value = sql_databricks_bridge::tables::STATE_TABLE, value_parser = super::extract::uc_name)]
    pub state_table: UcName,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Who the server is in SQL Server and in Databricks, and how it signed in
/// to each, as the audit trail's first lines (never a secret).
async fn audit_sign_in(state: Arc<ServerState>) {
    use sql_databricks_bridge::auth::audit::{AuditEvent, EventType};
    let s = &state.sqlserver;
    let at = format!("sqlserver {}:{}", s.host, s.port);
    state
        .audit
        .record(match sqlserver::probe(s, state.ready_timeout).await {
            Ok(info) => AuditEvent::new(EventType::BridgeSignedIn, at, "sign_in")
                .user(info.login)
                .detail(s.authentication.to_string()),
            Err(e) => AuditEvent::new(EventType::BridgeSignInFailed, at, "sign_in")
                .detail(format!("{}: {e}", s.authentication)),
        });
    if let Ok(ws) = &state.databricks {
        let at = format!("databricks {}", ws.host());
        state.audit.record(match ws.current_principal().await {
            Ok(principal) => AuditEvent::new(EventType::BridgeSignedIn, at, "sign_in")
                .user(principal)
                .detail(ws.auth_method().to_string()),
            Err(e) => AuditEvent::new(EventType::BridgeSignInFailed, at, "sign_in")
                .detail(format!("{}: {e}", ws.auth_method())),
        });
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let permissions = Permissions::load(&args.permissions_file)?;
    let audit = Arc::new(AuditLog::open_rotating(
        &args.audit_log,
        Rotation {
            max_bytes: args.audit_max_bytes.max(1),
            keep: args.audit_keep,
        },
    )?);
    let (store, interrupted) = JobStore::open(&args.jobs_db)?;
    if interrupted > 0 {
        tracing::warn!(
            jobs = interrupted,
            "jobs that were queued or running when the bridge last stopped are marked interrupted"
        );
    }
    let settings = args.connection.sqlserver().context("SQL Server settings")?;
    let timeout = Duration::from_secs(args.connection.timeout);
    let pool_size = args.max_concurrent_jobs.max(1) * args.parallel.max(1);
    let pool = sqlserver::pool::pool(&settings, pool_size, timeout)?;
    // Databricks is optional at start: without it, Volume destinations and
    // readiness say why.
    let databricks = workspace(&args.connection).map_err(|e| format!("{e:#}"));
    if let Err(why) = &databricks {
        tracing::warn!("Databricks is not configured: {why}");
    }
    let roots = Roots::new(
        &args.queries_root,
        &args.config_root,
        args.output_root.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let runner = JobRunner::new(
        Arc::new(store),
        audit.clone(),
        pool,
        RunnerConfig {
            max_concurrent_jobs: args.max_concurrent_jobs.max(1),
            parallel_queries: args.parallel.max(1),
            options: args.tuning.options(false),
            retry: args.tuning.retry(),
        },
    );
    // Sync: the events table for the API, and the poller unless --no-sync.
    let permissions = Arc::new(permissions);
    let (sync, poller, tables) = match &databricks {
        Err(why) => (Err(why.clone()), None, None),
        Ok(_) => match super::sync::core(
            &args.connection,
            &args.tuning,
            &args.write,
            args.warehouse_id.as_deref(),
            2,
        )
        .await
        .and_then(|core| {
            super::sync::poller(
                core,
                &args.connection,
                &args.events_table,
                &args.schedule,
                permissions.clone(),
                audit.clone(),
            )
        }) {
            Ok(p) => {
                let tables = TableLoader::new(
                    p.core.ws.clone(),
                    &p.core.warehouse,
                    &args.state_table,
                    &p.config.instance_id,
                );
                (
                    Ok((p.events.clone(), p.stats.clone(), p.writers.clone())),
                    (!args.no_sync).then_some(p),
                    Some(tables),
                )
            }
            Err(e) => {
                tracing::warn!("sync is off: {e:#}");
                (Err(format!("{e:#}")), None, None)
            }
        },
    };
    let stop_polling = tokio_util::sync::CancellationToken::new();
    let polling = poller.map(|p| {
        tracing::info!(
            table = p.events.name(),
            instance = p.config.instance_id,
            "polling sync events every {} s",
            p.config.interval.as_secs()
        );
        let stop = stop_polling.clone();
        tokio::spawn(async move { p.watch(stop).await })
    });
    let lakehouse = databricks
        .as_ref()
        .ok()
        .map(|ws| Arc::new(LakehouseRights::new(ws.clone(), Duration::from_secs(30))));
    let state = Arc::new(ServerState {
        home: HomeDatabase::new(&settings, timeout),
        tables,
        lakehouse,
        permissions: (*permissions).clone(),
        audit: audit.clone(),
        runner,
        sync,
        roots,
        sqlserver: settings,
        databricks,
        ready_timeout: Duration::from_secs(args.ready_timeout.max(1)),
        cancel_wait: Duration::from_secs(30),
        idempotency_ttl: args.idempotency_ttl,
        http_requests: Counter::default(),
        http_durations: Histogram::default(),
        spec: OnceLock::new(),
        started: Instant::now(),
        finished_jobs: Default::default(),
        readiness: Default::default(),
    });
    tokio::spawn(audit_sign_in(state.clone()));
    let addr = format!("{}:{}", args.host, args.port);
    api::serve(
        state,
        &addr,
        args.body_limit,
        Duration::from_secs(args.shutdown_timeout),
        shutdown_signal(),
        |a| {
            // Tests and scripts read this line for the port.
            println!("listening on http://{a}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            tracing::info!(%a, "serving the REST API; docs at /docs");
        },
    )
    .await?;
    // The poller finishes the event in hand, then stops.
    stop_polling.cancel();
    if let Some(task) = polling {
        let grace = Duration::from_secs(args.shutdown_timeout.max(1));
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("the sync poller did not stop in time");
        }
    }
    // The last lines (interrupted jobs, the shutdown's own) on disk first.
    audit.flush();
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
