//! An incremental table load (issue 14) beside the full load it replaces,
//! same table, same run: `sql-databricks-bridge extract` of a query with a
//! load spec (`mode: incremental`, cursor `fecha`) over an N-row generated
//! SQL Server table into a Delta table of the Databricks double — first
//! run (a full load), then, after 1% of the rows are changed (their cursor
//! moved), the second run. Printed: rows each run read from SQL Server,
//! wall time, the child's peak RSS, and the ratios second/first; the table
//! is checked equal to the source afterwards (row count and changed rows).
//! A benchmark, not a test: run by `bench/run.sh`, from the repository root.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bridge_sandbox::databricks::sql::types::render;
use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use bridge_sandbox::generate::{generate, GenerateSpec};
use bridge_sandbox::sqlserver::{self, SqlServerConfig};
use clap::Parser;

const TOKEN: &str = "dapi-bench";

#[derive(Parser)]
struct Args {
    /// Rows of the generated table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Share of rows changed between the runs, in percent.
    #[arg(long, default_value_t = 1.0)]
    changed_percent: f64,
    /// The bridge binary (build it with --release).
    #[arg(long, default_value = "target/release/sql-databricks-bridge")]
    bridge: PathBuf,
}

/// VmHWM of a running process (KiB).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Measured {
    secs: f64,
    peak_kib: u64,
    stdout: String,
}

/// Runs the child to its end: wall time, and peak RSS sampled every 5 ms.
fn run(cmd: &mut Command) -> anyhow::Result<Measured> {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the bridge")?;
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(k) = vm_hwm_kib(pid) {
                    peak = peak.max(k);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_string(&mut stdout)?;
    child
        .stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut stderr)?;
    let status = child.wait()?;
    stop.store(true, Ordering::Relaxed);
    let peak_kib = sampler.join().unwrap_or(0);
    ensure!(status.success(), "the bridge failed:\n{stdout}\n{stderr}");
    Ok(Measured {
        secs: t.elapsed().as_secs_f64(),
        peak_kib,
        stdout,
    })
}

fn count(d: &DatabricksHandle, sql: &str) -> anyhow::Result<u64> {
    let r = d
        .engine()
        .execute(sql, &Default::default(), &[])
        .map_err(|e| anyhow::anyhow!("{sql}: {e:?}"))?;
    let cell = render(&r.rows[0][0], &r.columns[0].ty).unwrap_or_default();
    Ok(cell.parse()?)
}

fn rows_read(d: &DatabricksHandle) -> anyhow::Result<u64> {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(
        d.engine()
            .volumes_root()
            .join("main/bench/landing/Bench/ventas/_manifest.json"),
    )?)?;
    m["rows"].as_u64().context("manifest rows")
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.bridge = std::fs::canonicalize(&args.bridge)
        .with_context(|| format!("{} (build it with --release)", args.bridge.display()))?;
    let sql = sqlserver::start(SqlServerConfig::default())?;
    let spec: GenerateSpec = format!("bench.ventas:{}", args.rows)
        .parse()
        .map_err(anyhow::Error::msg)?;
    generate(sql.engine(), &spec, |_| {})?;
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec![TOKEN.into()],
        ..DatabricksConfig::default()
    })?;
    dbx.engine()
        .run_script(
            "CREATE SCHEMA IF NOT EXISTS main.bench; CREATE VOLUME IF NOT EXISTS main.bench.landing; \
             CREATE CATALOG IF NOT EXISTS bridge",
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let dir = std::env::temp_dir().join(format!("bench-incremental-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("queries"))?;
    std::fs::create_dir_all(dir.join("config"))?;
    std::fs::write(dir.join("config/common_params.yaml"), "schema: dbo\n")?;
    std::fs::write(dir.join("config/Bench.yaml"), "database: bench\n")?;
    std::fs::write(
        dir.join("queries/ventas.sql"),
        "SELECT id, fecha, pais, id_producto, cantidad, monto_total, factor, cliente, activo FROM {database}.{schema}.ventas",
    )?;
    std::fs::write(
        dir.join("queries/ventas.yaml"),
        "table: main.bench.ventas\nmode: incremental\nprimary_key: [id]\ncursor: fecha\n",
    )?;
    let extract = || {
        let mut c = Command::new(&args.bridge);
        c.args([
            "extract",
            "--country",
            "Bench",
            "--destination",
            "/Volumes/main/bench/landing",
            "--overwrite",
            "--timeout",
            "60",
        ])
        .current_dir(&dir)
        .env("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port()))
        .env("SQLSERVER_USERNAME", "sa")
        .env("SQLSERVER_PASSWORD", "Bridge!Passw0rd")
        .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
        .env("DATABRICKS_HOST", dbx.url())
        .env("DATABRICKS_TOKEN", TOKEN)
        .env("HOME", &dir)
        .env_remove("SQLSERVER_DATABASE")
        .env_remove("DATABRICKS_CONFIG_PROFILE");
        c
    };

    let first = run(&mut extract())?;
    let first_rows = rows_read(&dbx)?;
    let changed = ((args.rows as f64) * args.changed_percent / 100.0).round() as u64;
    let step = (args.rows / changed.max(1)).max(1);
    sql.engine()
        .run_script(&format!(
            "USE bench\nGO\nUPDATE dbo.ventas SET fecha = '2031-01-01', monto_total = monto_total + 1 WHERE id % {step} = 0\nGO\n"
        ))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let second = run(&mut extract())?;
    let second_rows = rows_read(&dbx)?;

    let total = count(&dbx, "SELECT count(*) FROM main.bench.ventas")?;
    let moved = count(
        &dbx,
        "SELECT count(*) FROM main.bench.ventas WHERE fecha >= TIMESTAMP_NTZ '2031-01-01 00:00:00'",
    )?;
    ensure!(
        total == args.rows,
        "the table has {total} rows, the source {}",
        args.rows
    );
    ensure!(
        moved == second_rows,
        "{moved} changed rows in the table, {second_rows} read"
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "rows {}   changed {} ({:.1}%)",
        args.rows,
        second_rows,
        100.0 * second_rows as f64 / args.rows as f64
    );
    println!(
        "{:<34} {:>12} {:>9} {:>10}",
        "", "rows read", "seconds", "peak RSS"
    );
    for (name, m, rows) in [
        ("first run (full load)", &first, first_rows),
        ("second run (incremental)", &second, second_rows),
    ] {
        println!(
            "{name:<34} {rows:>12} {:>9.2} {:>7} MiB",
            m.secs,
            m.peak_kib / 1024
        );
    }
    println!(
        "second / first: {:.2}% of the rows read, {:.1}% of the time",
        100.0 * second_rows as f64 / first_rows as f64,
        100.0 * second.secs / first.secs
    );
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        println!("{}\n{}", first.stdout, second.stdout);
    }
    Ok(())
}
