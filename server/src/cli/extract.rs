//! `extract`: render the chosen queries for a country, run them against SQL
//! Server (several at once) and write Parquet to the destination.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sql_databricks_bridge::databricks;
use sql_databricks_bridge::databricks::names::UcName;
use sql_databricks_bridge::extract::run::{
    apply_partitioning, render_queries, Destination, DestinationPath, QueryEvents, Run,
};
use sql_databricks_bridge::extract::{Codec, ExtractOptions};
use sql_databricks_bridge::retry::RetryPolicy;
use sql_databricks_bridge::sqlserver;
use sql_databricks_bridge::tables::TableLoader;
use tokio_util::sync::CancellationToken;

use super::connection::ConnectionArgs;
use super::progress::{QueryProgress, Reporter};

impl QueryEvents for QueryProgress {
    fn rows(&self, rows: u64) {
        QueryProgress::rows(self, rows)
    }

    fn note(&self, message: &str) {
        QueryProgress::note(self, message)
    }
}

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// Directory holding the .sql files.
    #[arg(long, default_value = "./queries")]
    pub queries_path: PathBuf,
    /// Directory holding common_params.yaml and <Country>.yaml.
    #[arg(long, default_value = "./config")]
    pub config_path: PathBuf,
    /// Country whose parameters apply.
    #[arg(long)]
    pub country: String,
    /// Where the Parquet goes: a local directory or file:///path.
    /// Output lands in <destination>/<country>/<query>/.
    #[arg(long)]
    pub destination: String,
    /// Extract only this query (repeatable); all of them by default.
    #[arg(long = "query")]
    pub queries: Vec<String>,
    /// Replace existing output for a query (otherwise that query fails).
    #[arg(long)]
    pub overwrite: bool,
    /// Queries run at the same time.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// SQL warehouse for table loads (queries with a `<name>.yaml` load
    /// spec; default: a running one).
    #[arg(long, env = "DATABRICKS_WAREHOUSE_ID")]
    pub warehouse_id: Option<String>,
    /// Where table loads keep their position (catalog.schema.table).
    #[arg(long, env = "BRIDGE_STATE_TABLE", default_value = sql_databricks_bridge::tables::STATE_TABLE, value_parser = uc_name)]
    pub state_table: UcName,
    /// Read every chosen query in ranges of this column, each range on its
    /// own connection, concurrently (an integer, date or date/time column of
    /// the query's result). Overrides `partition_on` in <name>.yaml. The
    /// query must be one SELECT (it is used as a derived table).
    #[arg(long, value_name = "COLUMN")]
    pub partition_on: Option<String>,
    /// How many ranges (1-64; default 4 with --partition-on). Alone, it
    /// changes the count of the queries whose <name>.yaml has partition_on.
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// A `catalog.schema.table` argument.
pub fn uc_name(s: &str) -> Result<UcName, String> {
    UcName::parse(s).ok_or_else(|| format!("'{s}' is not catalog.schema.table"))
}

pub fn workspace(conn: &ConnectionArgs) -> anyhow::Result<databricks::Workspace> {
    let settings = conn.databricks().context("Databricks settings")?;
    Ok(databricks::Workspace::new(
        &settings,
        Duration::from_secs(conn.timeout.max(60)),
    )?)
}

fn destination(dest: &str, conn: &ConnectionArgs) -> anyhow::Result<Destination> {
    Ok(match DestinationPath::parse(dest)? {
        DestinationPath::Volume(root) => Destination::Volume(
            root,
            workspace(conn).context("a Volume destination needs Databricks")?,
        ),
        DestinationPath::Local(p) => Destination::Local(p),
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// How queries are written and retried (shared by `extract` and `serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct TuningArgs {
    /// Rows per Arrow batch read before it is handed to the Parquet writer
    /// (bounds memory: each reader holds about two batches).
    #[arg(long, default_value_t = sql_databricks_bridge::extract::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = sql_databricks_bridge::extract::DEFAULT_ROW_GROUP_ROWS)]
    pub row_group_rows: usize,
    /// Rows per Parquet part file.
    #[arg(long, default_value_t = 5_000_000)]
    pub rows_per_file: u64,
    /// Parquet compression.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: Codec,
    /// Attempts per query when SQL Server fails transiently (connection
    /// lost, timeout, deadlock 1205, Azure throttling).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Base of the exponential backoff between attempts, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub retry_base_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub retry_cap_ms: u64,
}

impl TuningArgs {
    pub fn options(&self, overwrite: bool) -> ExtractOptions {
        ExtractOptions {
            batch_rows: self.batch_rows.max(1),
            row_group_rows: self.row_group_rows.max(1),
            rows_per_file: self.rows_per_file,
            codec: self.compression,
            overwrite,
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts.max(1),
            base: Duration::from_millis(self.retry_base_ms),
            cap: Duration::from_millis(self.retry_cap_ms),
        }
    }
}

/// Returns whether every query succeeded.
pub async fn run(args: ExtractArgs) -> anyhow::Result<bool> {
    let destination = destination(&args.destination, &args.connection)?;
    // Render everything first: a missing parameter stops the run before any SQL.
    let (_, mut queries) = render_queries(
        &args.queries_path,
        &args.config_path,
        &args.country,
        &args.queries,
    )?;
    apply_partitioning(
        &mut queries,
        args.partition_on.as_deref(),
        args.partitions,
        "--partition-on/--partitions",
    )?;
    // Each running query holds a connection per partition.
    let widest = queries
        .iter()
        .filter_map(|q| q.partition.as_ref().map(|p| p.count as usize))
        .max()
        .unwrap_or(1);
    let settings = args.connection.sqlserver().context("SQL Server settings")?;
    let timeout = Duration::from_secs(args.connection.timeout);
    // Table loads run on a SQL warehouse, found only when a query has one.
    let tables = match &destination {
        Destination::Volume(_, ws) if queries.iter().any(|q| q.load.is_some()) => {
            let warehouse =
                sql_databricks_bridge::sync::resolve_warehouse(ws, args.warehouse_id.as_deref())
                    .await
                    .map_err(anyhow::Error::msg)?;
            Some(TableLoader::new(
                ws.clone(),
                &warehouse,
                &args.state_table,
                &sql_databricks_bridge::sync::PollerConfig::instance_id(),
            ))
        }
        _ => None,
    };
    let run = Arc::new(Run {
        pool: sqlserver::pool::pool(&settings, args.parallel.max(1) * widest, timeout)?,
        destination,
        country: args.country.clone(),
        options: args.tuning.options(args.overwrite),
        retry: args.tuning.retry(),
        tables,
        holder: format!(
            "`extract` on {}",
            sql_databricks_bridge::sync::PollerConfig::instance_id()
        ),
    });
    // Existing output and a missing volume are refused before any SQL runs.
    run.preflight(&queries).await?;
    let reporter = Reporter::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1)));
    // Ctrl-C stops every query; nothing half-written is published.
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping the running queries");
            on_signal.cancel();
        }
    });
    let mut tasks = Vec::new();
    for q in queries {
        let (run, limit, cancel) = (run.clone(), limit.clone(), cancel.clone());
        let progress = reporter.query(&q.name);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            progress.note("started");
            let result = run.run_query(&q, &progress, &cancel).await;
            progress.finish(if result.is_ok() { "done" } else { "failed" });
            (q.name, result)
        }));
    }
    let mut ok = true;
    let mut rows = Vec::new();
    for t in tasks {
        let (name, result) = t.await.context("an extraction task stopped unexpectedly")?;
        match result {
            Ok(o) => {
                if let Some(d) = &o.discrepancy {
                    eprintln!("[{name}] discrepancy: {d}");
                }
                rows.push(format!(
                    "{:<20} {:>8} {:>12} {:>10} {:>7.1}s  {}",
                    name,
                    "ok",
                    o.rows_written,
                    human_bytes(o.bytes),
                    o.seconds,
                    o.output.display()
                ));
                if let Some(t) = &o.table {
                    let at = match (&t.cursor_to, t.version_to) {
                        (Some(c), _) => format!(", cursor {c}"),
                        (None, Some(v)) => format!(", change version {v}"),
                        _ => String::new(),
                    };
                    rows.push(format!(
                        "{:<20} {:>8} {:>12} {:>10} {:>8}  {} {}: +{} ~{} -{} (table version {}{at})",
                        "", "table", t.rows_inserted + t.rows_updated + t.rows_deleted, "", "",
                        t.action, t.table, t.rows_inserted, t.rows_updated, t.rows_deleted,
                        t.table_version.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                    ));
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("[{name}] failed: {e}");
                rows.push(format!("{name:<20} {:>8} {e}", "FAILED"));
            }
        }
    }
    println!(
        "{:<20} {:>8} {:>12} {:>10} {:>8}  output",
        "query", "status", "rows", "size", "time"
    );
    for r in rows {
        println!("{r}");
    }
    Ok(ok)
}
