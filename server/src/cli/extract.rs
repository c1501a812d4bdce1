//! `extract`: render the chosen queries for a country, run them against SQL
//! Server (several at once) and write Parquet to the destination.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sql_databricks_bridge::config::params;
use sql_databricks_bridge::databricks;
use sql_databricks_bridge::extract::{self, Codec, ExtractOptions, VolumeRoot};
use sql_databricks_bridge::queries::{load_queries, render, select};
use sql_databricks_bridge::retry::RetryPolicy;
use sql_databricks_bridge::sqlserver;

use super::connection::ConnectionArgs;
use super::progress::{QueryProgress, Reporter};

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
    /// Rows per batch and Parquet row group (bounds memory).
    #[arg(long, default_value_t = 65_536)]
    pub batch_rows: usize,
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
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Where `--destination` points.
enum Destination {
    Local(PathBuf),
    Volume(VolumeRoot, databricks::Workspace),
}

fn destination(dest: &str, conn: &ConnectionArgs) -> anyhow::Result<Destination> {
    if dest.starts_with("dbfs:") {
        bail!("destination {dest}: DBFS is not supported; use a Unity Catalog Volume (/Volumes/...) or a local directory");
    }
    if let Some(root) = VolumeRoot::parse(dest).map_err(anyhow::Error::msg)? {
        let settings = conn
            .databricks()
            .context("Databricks settings for a Volume destination")?;
        let ws = databricks::Workspace::new(&settings, Duration::from_secs(conn.timeout.max(60)))?;
        return Ok(Destination::Volume(root, ws));
    }
    let path = dest.strip_prefix("file://").unwrap_or(dest);
    if path.is_empty() {
        bail!("--destination is empty");
    }
    Ok(Destination::Local(PathBuf::from(path)))
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

/// Returns whether every query succeeded.
pub async fn run(args: ExtractArgs) -> anyhow::Result<bool> {
    let destination = destination(&args.destination, &args.connection)?;
    let params = params::load(&args.config_path, &args.country)?;
    let all = load_queries(&args.queries_path)?;
    let chosen = select(&all, &args.queries)?;
    // Render everything first: a missing parameter stops the run before any SQL.
    let mut jobs = Vec::new();
    for q in chosen {
        let sql = render(&q.sql, &q.path, &params)?;
        jobs.push((q.name.clone(), sql));
    }
    // Existing output and a missing volume are refused before any SQL runs.
    if let Destination::Volume(root, ws) = &destination {
        for (name, _) in &jobs {
            extract::check_volume(ws, root, &args.country, name, args.overwrite).await?;
        }
    }
    let settings = args.connection.sqlserver().context("SQL Server settings")?;
    let timeout = Duration::from_secs(args.connection.timeout);
    let opts = ExtractOptions {
        batch_rows: args.batch_rows.max(1),
        rows_per_file: args.rows_per_file,
        codec: args.compression,
        overwrite: args.overwrite,
    };
    let ctx = Arc::new(RunContext {
        pool: sqlserver::pool::pool(&settings, args.parallel.max(1), timeout)?,
        destination,
        country: args.country.clone(),
        opts,
    });
    let policy = RetryPolicy {
        attempts: args.attempts.max(1),
        base: Duration::from_millis(args.retry_base_ms),
        cap: Duration::from_millis(args.retry_cap_ms),
    };
    let reporter = Reporter::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1)));
    let mut tasks = Vec::new();
    for (name, sql) in jobs {
        let (ctx, limit, policy) = (ctx.clone(), limit.clone(), policy.clone());
        let progress = reporter.query(&name);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            progress.note("started");
            let note = progress.clone();
            let result = sql_databricks_bridge::retry::retry(
                &policy,
                |attempt, e: &anyhow::Error, wait| {
                    note.note(&format!(
                        "attempt {attempt} failed: {e:#}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    ))
                },
                || run_one(&name, &sql, &ctx, &progress),
            )
            .await;
            progress.finish(if result.is_ok() { "done" } else { "failed" });
            (name, result)
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
            }
            Err(e) => {
                ok = false;
                eprintln!("[{name}] failed: {e:#}");
                rows.push(format!("{name:<20} {:>8} {e:#}", "FAILED"));
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

/// What every query of one run shares.
struct RunContext {
    pool: sqlserver::pool::Pool,
    destination: Destination,
    country: String,
    opts: ExtractOptions,
}

/// One attempt at one query: connect, extract, publish. The flag says
/// whether another attempt may succeed.
async fn run_one(
    name: &str,
    sql: &str,
    ctx: &RunContext,
    reporter: &QueryProgress,
) -> Result<extract::Outcome, (anyhow::Error, bool)> {
    let (destination, country, opts) = (&ctx.destination, ctx.country.as_str(), &ctx.opts);
    let mut conn = sqlserver::pool::get(&ctx.pool).await.map_err(|e| {
        let t = e.is_transient();
        (anyhow::Error::from(e), t)
    })?;
    let bar = reporter.clone();
    let progress = move |rows: u64| bar.rows(rows);
    let extracted = |e: extract::ExtractError| {
        let t = e.is_transient();
        (anyhow::Error::from(e), t)
    };
    match destination {
        Destination::Local(dir) => {
            extract::extract_query(&mut conn, name, sql, dir, country, opts, &progress)
                .await
                .map_err(extracted)
        }
        Destination::Volume(root, ws) => {
            // Parts are written locally first, then uploaded; the local copy
            // goes away either way.
            let stage = std::env::temp_dir()
                .join(format!("bridge-extract-{}", uuid::Uuid::new_v4().simple()));
            let mut local_opts = opts.clone();
            local_opts.overwrite = true;
            let result = async {
                let mut o = extract::extract_query(
                    &mut conn,
                    name,
                    sql,
                    &stage,
                    country,
                    &local_opts,
                    &progress,
                )
                .await
                .map_err(extracted)?;
                reporter.note(&format!(
                    "uploading {} part(s) to {}",
                    o.parts.len(),
                    root.query_dir(country, name)
                ));
                // Uploads retry transient HTTP failures themselves.
                let dir = extract::publish_to_volume(ws, &o.output, root, country, name, &o.parts)
                    .await
                    .map_err(|e| (anyhow::Error::from(e), false))?;
                o.output = PathBuf::from(dir);
                Ok(o)
            }
            .await;
            let _ = std::fs::remove_dir_all(&stage);
            result
        }
    }
}
