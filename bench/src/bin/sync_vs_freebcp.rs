//! Reverse sync (issue 7) beside FreeTDS `freebcp`, same rows, same SQL
//! Server sandbox, same run: `sql-databricks-bridge sync apply` copies an
//! N-row Databricks table into an empty SQL Server table (INSERT) and then
//! applies a U-row change table to it (UPDATE); `freebcp` loads the same N
//! rows from a tab-separated file into an identical empty table, and the U
//! changed rows into a staging table that one `UPDATE ... FROM ... JOIN`
//! (the statement the bridge runs), sent by FreeTDS's `bsqldb`, then applies.
//!
//! Both sandboxes run inside this process (each on threads of its own); the
//! bridge, freebcp and bsqldb are child processes: peak RSS from their VmHWM, CPU
//! time from `wait4`. The source is generated once, written as Parquet
//! into a Volume of the Databricks double (read into Delta-style tables with
//! `read_files`) and as the TSV file freebcp reads, so both load the same
//! values; afterwards every row of both targets is read back and compared
//! with the generator. A benchmark, not a test: run by `bench/run.sh`, from
//! the repository root.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bridge_sandbox::databricks::paths::VolumePath;
use bridge_sandbox::databricks::sql::catalog::FullName;
use bridge_sandbox::databricks::sql::types::render as render_cell;
use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use bridge_testkit::sqlserver::{Sql, PASSWORD};
use clap::{Parser, ValueEnum};
use futures_util::TryStreamExt;
use parquet::arrow::ArrowWriter;
use tiberius::time::chrono::{NaiveDate, NaiveDateTime};
use tiberius::{ColumnData, EncryptionLevel, FromSql, QueryItem};

const TOKEN: &str = "dapi-bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Tls {
    /// TLS for the whole connection, both clients (the bridge's default,
    /// SQLSERVER_ENCRYPT=true; FreeTDS `encryption = require`).
    Full,
    /// TLS for the login only, both clients (SQLSERVER_ENCRYPT=false;
    /// FreeTDS `encryption = request`).
    Login,
}

#[derive(Parser)]
struct Args {
    /// Rows of the INSERT event (the Databricks source table).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Rows of the UPDATE event (spread evenly over the inserted ids; at
    /// most --rows).
    #[arg(long, default_value_t = 100_000)]
    update_rows: u64,
    /// Encryption of both clients' SQL Server connections.
    #[arg(long, value_enum, default_value = "full")]
    tls: Tls,
    /// freebcp's batch size (-b).
    #[arg(long, default_value_t = 10_000)]
    bcp_batch: u64,
    /// The bridge binary (build it with --release).
    #[arg(long, default_value = "target/release/sql-databricks-bridge")]
    bridge: PathBuf,
    /// The freebcp binary.
    #[arg(long, default_value = "freebcp")]
    freebcp: String,
    /// FreeTDS's bsqldb, which runs the UPDATE ... JOIN after freebcp's
    /// staging load.
    #[arg(long, default_value = "bsqldb")]
    bsqldb: String,
    /// Extra environment for the bridge, KEY=VALUE (repeatable), e.g.
    /// `BRIDGE_LOG=info`.
    #[arg(long = "bridge-env", value_name = "KEY=VALUE")]
    bridge_env: Vec<String>,
    /// Skip reading both targets back and comparing every row.
    #[arg(long)]
    no_verify: bool,
    /// Diagnostics: run the bridge with BRIDGE_LOG=debug and print its
    /// phases from the log's timestamps, and time the sandbox copying the
    /// N rows from one table to another with INSERT ... SELECT (the
    /// bridge's second write).
    #[arg(long)]
    phases: bool,
    /// Keep the working directory (TSV and Parquet files, the bridge's
    /// stderr as bridge-insert.log and bridge-update.log).
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------------------
// The rows: one generator for the Parquet source, the TSV file and the check.
// ---------------------------------------------------------------------------

const NOMBRES: [&str; 8] = [
    "Ana María Pérez",
    "José Núñez",
    "Zoë Brontë",
    "Łukasz Żółć",
    "Ñandú S.A.",
    "O'Brien & Hijos",
    "Müller GmbH",
    "北京 商店",
];
/// 1990-01-01 00:00:00 in microseconds since the epoch.
const TS_BASE: i64 = 631_152_000_000_000;

/// One row; `version` 0 is the inserted row, 1 its change.
struct Row {
    id: i64,
    n: Option<i32>,
    /// DECIMAL(18,4) as the unscaled integer.
    monto: Option<i128>,
    nombre: Option<String>,
    /// Days since 1970-01-01.
    fecha: Option<i32>,
    /// Microseconds since 1970-01-01 00:00:00.
    ts: Option<i64>,
    activo: Option<bool>,
}

fn row(id: i64, version: i64) -> Row {
    let v = version;
    let null = |m: i64| (id + v) % m == 0;
    let h = (id.wrapping_mul(2_654_435_761) + v * 97).rem_euclid(2_000_000);
    let raw = ((id * 7919 + v * 13) % 10_000_000_000) as i128;
    Row {
        id,
        n: (!null(101)).then_some((h - 1_000_000) as i32),
        monto: (!null(103)).then_some(if (id + v) % 5 == 0 { -raw } else { raw }),
        nombre: (!null(107)).then(|| {
            format!(
                "{} {id}{}",
                NOMBRES[((id + v) % 8) as usize],
                if v > 0 { " (actualizado)" } else { "" }
            )
        }),
        fecha: (!null(109)).then_some((-3653 + (id * 31 + v * 7) % 40_000) as i32),
        ts: (!null(113)).then_some(TS_BASE + id * 987_654_321 + v * 3_600_000_000),
        activo: (!null(127)).then_some((id + v) % 3 != 0),
    }
}

fn decimal_text(raw: i128, scale: u32) -> String {
    let p = 10i128.pow(scale);
    let sign = if raw < 0 { "-" } else { "" };
    let a = raw.unsigned_abs();
    format!(
        "{sign}{}.{:0w$}",
        a / p as u128,
        a % p as u128,
        w = scale as usize
    )
}

fn date_of(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::TimeDelta::days(days as i64)
}

fn ts_of(micros: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .naive_utc()
}

/// The row as freebcp's character format wants it: tab-separated, NULL as
/// an empty field (no value here is an empty string).
fn tsv_line(r: &Row, out: &mut String) {
    fn field<T>(out: &mut String, v: &Option<T>, f: impl Fn(&T) -> String) {
        if let Some(v) = v {
            out.push_str(&f(v));
        }
    }
    let _ = write!(out, "{}\t", r.id);
    field(out, &r.n, |v| v.to_string());
    out.push('\t');
    field(out, &r.monto, |v| decimal_text(*v, 4));
    out.push('\t');
    field(out, &r.nombre, |v| v.clone());
    out.push('\t');
    field(out, &r.fecha, |v| {
        date_of(*v).format("%Y-%m-%d").to_string()
    });
    out.push('\t');
    field(out, &r.ts, |v| {
        ts_of(*v).format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    });
    out.push('\t');
    field(out, &r.activo, |v| if *v { "1" } else { "0" }.to_string());
    out.push('\n');
}

/// Which ids the UPDATE event changes: `update_rows` ids spread evenly.
#[derive(Clone, Copy)]
struct Changes {
    step: i64,
    count: i64,
}

impl Changes {
    fn new(rows: u64, update_rows: u64) -> Changes {
        Changes {
            step: (rows / update_rows.max(1)).max(1) as i64,
            count: update_rows as i64,
        }
    }
    fn ids(self) -> impl Iterator<Item = i64> {
        (0..self.count).map(move |k| 1 + k * self.step)
    }
    fn version(self, id: i64) -> i64 {
        let k = id - 1;
        (k % self.step == 0 && k / self.step < self.count) as i64
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("n", DataType::Int32, true),
        Field::new("monto", DataType::Decimal128(18, 4), true),
        Field::new("nombre", DataType::Utf8, true),
        Field::new("fecha", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("activo", DataType::Boolean, true),
    ]))
}

/// Writes the rows (id, version) as one Parquet file and one TSV file.
fn write_files(
    rows: impl Iterator<Item = (i64, i64)>,
    parquet_path: &Path,
    tsv_path: &Path,
) -> anyhow::Result<u64> {
    const BATCH: usize = 65_536;
    let schema = schema();
    let mut pq = ArrowWriter::try_new(std::fs::File::create(parquet_path)?, schema.clone(), None)?;
    let mut tsv = BufWriter::with_capacity(1 << 20, std::fs::File::create(tsv_path)?);
    let mut line = String::new();
    let mut rows = rows.peekable();
    let mut total = 0u64;
    while rows.peek().is_some() {
        let mut id = Int64Builder::with_capacity(BATCH);
        let mut n = Int32Builder::with_capacity(BATCH);
        let mut monto = Decimal128Builder::with_capacity(BATCH).with_precision_and_scale(18, 4)?;
        let mut nombre = StringBuilder::new();
        let mut fecha = Date32Builder::with_capacity(BATCH);
        let mut ts = TimestampMicrosecondBuilder::with_capacity(BATCH);
        let mut activo = BooleanBuilder::with_capacity(BATCH);
        for (i, v) in rows.by_ref().take(BATCH) {
            let r = row(i, v);
            id.append_value(r.id);
            n.append_option(r.n);
            monto.append_option(r.monto);
            nombre.append_option(r.nombre.as_deref());
            fecha.append_option(r.fecha);
            ts.append_option(r.ts);
            activo.append_option(r.activo);
            line.clear();
            tsv_line(&r, &mut line);
            tsv.write_all(line.as_bytes())?;
            total += 1;
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(n.finish()),
            Arc::new(monto.finish()),
            Arc::new(nombre.finish()),
            Arc::new(fecha.finish()),
            Arc::new(ts.finish()),
            Arc::new(activo.finish()),
        ];
        pq.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
    }
    pq.close()?;
    tsv.flush()?;
    Ok(total)
}

// ---------------------------------------------------------------------------
// Processes: wall time, peak RSS and CPU of a child (wait4), CPU of this
// process (the two sandboxes) meanwhile.
// ---------------------------------------------------------------------------

struct Run {
    secs: f64,
    stdout: String,
    stderr: String,
    success: bool,
    peak_rss_kib: u64,
    child_cpu: f64,
    /// (SQL Server sandbox, Databricks double) CPU seconds meanwhile.
    sandbox_cpu: (f64, f64),
    /// CPU seconds the rest of the machine used meanwhile (other processes:
    /// a disturbed run shows here).
    other_cpu: f64,
}

/// User + system CPU seconds of this process (both sandboxes' threads; the
/// benchmark's own thread only waits while a child runs).
fn own_cpu_secs() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU seconds of each of this process's threads named `databricks-double`
/// (the Databricks double's runtime and blocking threads), by thread id.
fn dbx_threads_cpu() -> HashMap<u32, f64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(tid) = t.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains("(databricks-dou") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.insert(tid, (ticks(11) + ticks(12)) / 100.0);
    }
    out
}

/// Busy CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy / 100.0
}

/// CPU time of the calling thread.
fn thread_cpu_secs() -> f64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes into the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// CPU the two sandboxes use over an interval. The Databricks double's
/// threads are read one by one (and re-read while the interval runs, so a
/// blocking-pool thread that ends meanwhile still counts); the SQL Server
/// sandbox's share is the rest of this process (its connection threads end
/// with their connections), less the benchmark's own sampling thread.
struct CpuWatch {
    total0: f64,
    dbx0: HashMap<u32, f64>,
    dbx_last: HashMap<u32, f64>,
}

impl CpuWatch {
    fn start() -> CpuWatch {
        let dbx0 = dbx_threads_cpu();
        CpuWatch {
            total0: own_cpu_secs(),
            dbx_last: dbx0.clone(),
            dbx0,
        }
    }
    fn observe(&mut self) {
        self.dbx_last.extend(dbx_threads_cpu());
    }
    /// (SQL Server sandbox, Databricks double) seconds; `total` is this
    /// process's CPU at the end, `own` what the benchmark used meanwhile.
    fn finish(mut self, total: f64, own: f64) -> (f64, f64) {
        self.observe();
        let dbx: f64 = self
            .dbx_last
            .iter()
            .map(|(tid, v)| v - self.dbx0.get(tid).copied().unwrap_or(0.0))
            .sum();
        ((total - self.total0 - dbx - own).max(0.0), dbx)
    }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// VmHWM of a running process (KiB).
fn vm_hwm_kib(pid: libc::pid_t) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn run_child(cmd: &mut Command) -> anyhow::Result<Run> {
    let mut watch = CpuWatch::start();
    let own0 = own_cpu_secs();
    let busy0 = machine_busy_secs();
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let out_t = std::thread::Builder::new()
        .name("bench-io".into())
        .spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        })?;
    let err_t = std::thread::Builder::new()
        .name("bench-io".into())
        .spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        })?;
    // Peak RSS by sampling VmHWM: the child's own high-water mark. (wait4's
    // ru_maxrss is no good here: Linux carries the spawning process's
    // high-water mark into the child at exec, and this process holds both
    // sandboxes.) VmHWM only grows, so a sample misses at most the last 5 ms.
    // The same thread re-reads the Databricks double's threads every 50 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("bench-rss".into())
            .spawn(move || {
                let mut peak = 0;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(k) = vm_hwm_kib(pid) {
                        peak = peak.max(k);
                    }
                    if i.is_multiple_of(10) {
                        watch.observe();
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                (peak, watch, thread_cpu_secs())
            })?
    };
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped (std's Child never waits on
    // drop); status and ru are valid for writing.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    let total = own_cpu_secs();
    let busy = machine_busy_secs() - busy0;
    stop.store(true, Ordering::Relaxed);
    let (peak_rss_kib, watch, sampler_cpu) = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the sampling thread panicked"))?;
    let sandbox_cpu = watch.finish(total, sampler_cpu);
    ensure!(r == pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    Ok(Run {
        secs,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        peak_rss_kib,
        child_cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        sandbox_cpu,
        other_cpu: (busy - (total - own0) - tv(ru.ru_utime) - tv(ru.ru_stime)).max(0.0),
    })
}

/// The bridge's phases from its debug log: connecting and planning up to
/// the Databricks statement's answer (BEGIN TRANSACTION follows it), then
/// the result's chunks fetched over HTTP while the bulk load waits, and the
/// rest of the transaction (bulk load, the INSERT/UPDATE from the temp
/// table, the ledger row) up to COMMIT.
fn print_phases(op: &str, log: &str) {
    let at = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let lines: Vec<(chrono::DateTime<chrono::FixedOffset>, &str)> =
        log.lines().filter_map(|l| at(l).map(|t| (t, l))).collect();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    };
    let (Some(first), Some(login), Some(begin), Some(commit)) = (
        lines.first().map(|(t, _)| *t),
        find("login complete"),
        find("Begin transaction"),
        find("Commit transaction"),
    ) else {
        println!("phases ({op}): markers not found in the bridge's debug log");
        return;
    };
    // HTTP requests inside the transaction: a connection taken from the
    // pool ("reuse idle connection") until it is given back ("pooling idle").
    let (mut fetching, mut fetches, mut since) = (0.0, 0, None);
    for (t, l) in &lines {
        if *t < begin || *t > commit {
            continue;
        }
        if l.contains("reuse idle connection") || l.contains("starting new connection") {
            since = Some(*t);
        } else if l.contains("pooling idle connection") {
            if let Some(s) = since.take() {
                fetching += (*t - s).as_seconds_f64();
                fetches += 1;
            }
        }
    }
    type Ts = chrono::DateTime<chrono::FixedOffset>;
    let secs = |a: Ts, b: Ts| (b - a).as_seconds_f64();
    println!(
        "phases ({op}, from the bridge's debug log): start to SQL Server login {:.2} s; \
         login to BEGIN TRANSACTION (plan, Databricks statement) {:.2} s; \
         BEGIN to COMMIT {:.2} s, of which {:.2} s waiting on {fetches} HTTP requests (result chunks) \
         and {:.2} s bulk load, INSERT/UPDATE and ledger",
        secs(first, login),
        secs(login, begin),
        secs(begin, commit),
        fetching,
        secs(begin, commit) - fetching
    );
}

/// The SQL Server sandbox's duration for each request it served (its
/// `bridge_sandbox::timing` debug events), collected while --phases is on.
#[derive(Clone, Default)]
struct Timings(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Timings {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Timings {
    /// Sends the sandbox's timing events here from now on.
    fn install(&self) -> anyhow::Result<()> {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "bridge_sandbox::timing=debug",
            ))
            .without_time()
            .with_target(false)
            .with_level(false)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .try_init()
            .map_err(|e| anyhow::anyhow!("tracing: {e}"))
    }

    /// Forgets what was collected (requests outside the measured runs).
    fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }

    /// Prints the requests served since the last call: each one of at
    /// least 5 ms by name, the others summed.
    fn report(&self, what: &str) {
        let text = self
            .0
            .lock()
            .map(|mut v| String::from_utf8_lossy(&std::mem::take(&mut *v)).into_owned())
            .unwrap_or_default();
        // Requests of the same kind and text are summed: freebcp sends one
        // bulk load per batch.
        let mut kinds: Vec<(String, u32, f64)> = Vec::new();
        let (mut total, mut small, mut smalls) = (0.0, 0.0, 0);
        for line in text.lines() {
            // `<kind> <text> spid=N ms=F` (the fmt layer puts fields last).
            let Some((rest, ms)) = line.rsplit_once(" ms=") else {
                continue;
            };
            let Ok(ms) = ms.trim().parse::<f64>() else {
                continue;
            };
            let name: String = rest
                .rsplit_once(" spid=")
                .map_or(rest, |(n, _)| n)
                .trim()
                .chars()
                .take(48)
                .collect();
            total += ms;
            match kinds.iter_mut().find(|(n, ..)| *n == name) {
                Some((_, count, sum)) => {
                    *count += 1;
                    *sum += ms;
                }
                None => kinds.push((name, 1, ms)),
            }
        }
        let mut parts = Vec::new();
        for (name, count, ms) in kinds {
            if ms < 5.0 {
                small += ms;
                smalls += count;
            } else if count == 1 {
                parts.push(format!("{name} {ms:.0} ms"));
            } else {
                parts.push(format!("{name} ×{count} {ms:.0} ms"));
            }
        }
        parts.push(format!("{smalls} other requests {small:.0} ms"));
        println!(
            "phases ({what}, the SQL Server sandbox's own time per request): {:.0} ms in all: {}",
            total,
            parts.join("; ")
        );
    }
}

fn number_before(text: &str, marker: &str) -> Option<u64> {
    let i = text.find(marker)?;
    text[..i].split_whitespace().last()?.parse().ok()
}

// ---------------------------------------------------------------------------
// SQL Server: a tiberius client for counting, checking and the UPDATE.
// ---------------------------------------------------------------------------

async fn sql_client(port: u16) -> anyhow::Result<Sql> {
    let mut c = bridge_testkit::sqlserver::config(port, EncryptionLevel::Off);
    c.packet_size(32767);
    Ok(bridge_testkit::sqlserver::connect_with(c).await?)
}

fn cell_text(d: &ColumnData<'static>) -> anyhow::Result<Option<String>> {
    Ok(match d {
        ColumnData::I64(v) => v.map(|v| v.to_string()),
        ColumnData::I32(v) => v.map(|v| v.to_string()),
        ColumnData::Numeric(v) => v.map(|v| decimal_text(v.value(), v.scale() as u32)),
        ColumnData::String(v) => v.as_ref().map(|v| v.to_string()),
        ColumnData::Bit(v) => v.map(|v| if v { "1" } else { "0" }.to_string()),
        ColumnData::Date(_) => NaiveDate::from_sql(d)?.map(|v| v.format("%Y-%m-%d").to_string()),
        ColumnData::DateTime2(_) => {
            NaiveDateTime::from_sql(d)?.map(|v| v.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        other => bail!("unexpected column type {other:?}"),
    })
}

/// Reads every row of `table` in id order and compares it with the
/// generator (changed ids at version 1 once `changed`); returns the number
/// of rows read.
async fn verify(
    c: &mut Sql,
    table: &str,
    rows: u64,
    changes: Option<Changes>,
) -> anyhow::Result<u64> {
    let mut s = c
        .simple_query(format!(
            "SELECT id, n, monto, nombre, fecha, ts, activo FROM {table} ORDER BY id"
        ))
        .await?;
    let mut expected_id = 0i64;
    let (mut want, mut got) = (String::new(), String::new());
    while let Some(item) = s.try_next().await? {
        let QueryItem::Row(r) = item else { continue };
        expected_id += 1;
        let version = changes.map(|ch| ch.version(expected_id)).unwrap_or(0);
        want.clear();
        tsv_line(&row(expected_id, version), &mut want);
        got.clear();
        for (i, d) in r.into_iter().enumerate() {
            if i > 0 {
                got.push('\t');
            }
            if let Some(t) = cell_text(&d)? {
                got.push_str(&t);
            }
        }
        got.push('\n');
        ensure!(
            want == got,
            "{table}: row {expected_id} differs\n  expected {want:?}\n  found    {got:?}"
        );
    }
    ensure!(
        expected_id as u64 == rows,
        "{table}: {expected_id} rows, {rows} expected"
    );
    Ok(expected_id as u64)
}

async fn count(c: &mut Sql, table: &str) -> anyhow::Result<u64> {
    let row = c
        .simple_query(format!("SELECT CAST(COUNT(*) AS bigint) FROM {table}"))
        .await?
        .into_row()
        .await?
        .context("COUNT(*) returned no row")?;
    Ok(row.get::<i64, _>(0).unwrap_or(0) as u64)
}

// ---------------------------------------------------------------------------

const TARGET_DDL: &str = "
CREATE DATABASE Bench
GO
USE Bench
GO
CREATE TABLE dbo.filas (id bigint NOT NULL PRIMARY KEY, n int NULL, monto decimal(18,4) NULL,
    nombre nvarchar(100) NULL, fecha date NULL, ts datetime2(6) NULL, activo bit NULL)
GO
CREATE TABLE dbo.filas_bcp (id bigint NOT NULL PRIMARY KEY, n int NULL, monto decimal(18,4) NULL,
    nombre nvarchar(100) NULL, fecha date NULL, ts datetime2(6) NULL, activo bit NULL)
GO
CREATE TABLE dbo.cambios_bcp (id bigint NULL, n int NULL, monto decimal(18,4) NULL,
    nombre nvarchar(100) NULL, fecha date NULL, ts datetime2(6) NULL, activo bit NULL)
GO
";

/// The statement the bridge runs for an UPDATE event, on freebcp's tables.
const BCP_UPDATE: &str =
    "UPDATE t SET t.[n] = s.[n], t.[monto] = s.[monto], t.[nombre] = s.[nombre], \
    t.[fecha] = s.[fecha], t.[ts] = s.[ts], t.[activo] = s.[activo] \
    FROM Bench.dbo.filas_bcp AS t INNER JOIN Bench.dbo.cambios_bcp AS s ON t.[id] = s.[id]";

const SOURCE_COLUMNS: &str = "id BIGINT NOT NULL, n INT, monto DECIMAL(18,4), nombre STRING, \
    fecha DATE, ts TIMESTAMP_NTZ, activo BOOLEAN";

struct World {
    sql: SqlServerHandle,
    dbx: DatabricksHandle,
    dir: PathBuf,
    keep: bool,
}

impl Drop for World {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn dbx_count(dbx: &DatabricksHandle, table: &str) -> anyhow::Result<u64> {
    let r = dbx
        .engine()
        .execute(
            &format!("SELECT COUNT(*) FROM {table}"),
            &Default::default(),
            &[],
        )
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    render_cell(&r.rows[0][0], &r.columns[0].ty)
        .and_then(|v| v.parse().ok())
        .context("COUNT(*)")
}

fn dbx_script(dbx: &DatabricksHandle, sql: &str) -> anyhow::Result<()> {
    dbx.engine()
        .run_script(sql)
        .map_err(|e| anyhow::anyhow!("Databricks double: {}", e.message))
}

struct Figure {
    operation: String,
    client: &'static str,
    rows: u64,
    secs: f64,
    rss_mib: Option<f64>,
    client_cpu: Option<f64>,
    sandbox_cpu: (f64, f64),
    other_cpu: Option<f64>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    ensure!(args.rows > 0, "--rows must be at least 1");
    // The UPDATE changes rows that exist: at most all of them.
    args.update_rows = args.update_rows.clamp(1, args.rows);
    let bridge = std::fs::canonicalize(&args.bridge)
        .with_context(|| format!("{} (build it with --release)", args.bridge.display()))?;
    let timings = Timings::default();
    if args.phases {
        timings.install()?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let changes = Changes::new(args.rows, args.update_rows);

    let dir = std::env::temp_dir().join(format!("bridge-sync-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sql = sqlserver::start(SqlServerConfig {
        port: 0,
        ..Default::default()
    })?;
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec![TOKEN.into()],
        ..Default::default()
    })?;
    let w = World {
        sql,
        dbx,
        dir: dir.clone(),
        keep: args.keep,
    };
    println!(
        "sandboxes: SQL Server 127.0.0.1:{} (login-only TLS offered), Databricks {}; work dir {}",
        w.sql.port(),
        w.dbx.url(),
        dir.display()
    );

    // 1. Source files from the generator: Parquet for the double, TSV for freebcp.
    dbx_script(
        &w.dbx,
        "CREATE SCHEMA IF NOT EXISTS main.bench; CREATE VOLUME IF NOT EXISTS main.bench.staging",
    )?;
    let vol = VolumePath::volume_dir(
        w.dbx.engine().volumes_root(),
        &FullName::new("main", "bench", "staging"),
    );
    std::fs::create_dir_all(&vol)?;
    let t = Instant::now();
    let n = write_files(
        (1..=args.rows as i64).map(|id| (id, 0)),
        &vol.join("filas.parquet"),
        &dir.join("filas.tsv"),
    )?;
    let u = write_files(
        changes.ids().map(|id| (id, 1)),
        &vol.join("cambios.parquet"),
        &dir.join("cambios.tsv"),
    )?;
    let files_secs = t.elapsed().as_secs_f64();
    println!(
        "files: {n} + {u} rows as Parquet (Volume /Volumes/main/bench/staging) and TSV in {files_secs:.1} s \
         (filas.tsv {:.0} MiB)",
        mib(std::fs::metadata(dir.join("filas.tsv"))?.len() / 1024)
    );

    // 2. The Databricks source tables, filled from the Parquet files.
    let t = Instant::now();
    for (table, file) in [("filas", "filas.parquet"), ("cambios", "cambios.parquet")] {
        dbx_script(
            &w.dbx,
            &format!(
                "CREATE TABLE main.bench.{table} ({SOURCE_COLUMNS}); \
                 INSERT INTO main.bench.{table} SELECT * FROM read_files('/Volumes/main/bench/staging/{file}')"
            ),
        )?;
    }
    let fill_secs = t.elapsed().as_secs_f64();
    ensure!(dbx_count(&w.dbx, "main.bench.filas")? == args.rows);
    ensure!(dbx_count(&w.dbx, "main.bench.cambios")? == args.update_rows);
    println!(
        "Databricks double filled in {fill_secs:.1} s: main.bench.filas {} rows, main.bench.cambios {} rows \
         (INSERT ... SELECT * FROM read_files; not part of the figures)",
        args.rows, args.update_rows
    );

    // 3. The SQL Server targets.
    w.sql
        .engine()
        .run_script(TARGET_DDL)
        .map_err(|e| anyhow::anyhow!("SQL Server sandbox: {e}"))?;

    let port = w.sql.port();
    let bridge_cmd = |source: &str, op: &str| {
        let mut c = Command::new(&bridge);
        c.args([
            "sync",
            "apply",
            "--source-table",
            source,
            "--target-table",
            "Bench.dbo.filas",
            "--operation",
            op,
            "--primary-key",
            "id",
        ])
        .current_dir(&dir)
        .env_remove("SQLSERVER_DATABASE")
        .env_remove("SQLSERVER_CONNECTION_STRING")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env("HOME", &dir)
        .env("SQLSERVER_HOST", format!("127.0.0.1,{port}"))
        .env("SQLSERVER_USERNAME", "sa")
        .env("SQLSERVER_PASSWORD", PASSWORD)
        .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
        .env(
            "SQLSERVER_ENCRYPT",
            if args.tls == Tls::Full {
                "true"
            } else {
                "false"
            },
        )
        .env("DATABRICKS_HOST", w.dbx.url())
        .env("DATABRICKS_TOKEN", TOKEN);
        if args.phases {
            c.env("BRIDGE_LOG", "debug");
        }
        for kv in &args.bridge_env {
            if let Some((k, v)) = kv.split_once('=') {
                c.env(k, v);
            }
        }
        c
    };
    let conf = dir.join("freetds.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\n\ttds version = 7.4\n\tclient charset = UTF-8\n\tencryption = {}\n",
            if args.tls == Tls::Full {
                "require"
            } else {
                "request"
            }
        ),
    )?;
    // A FreeTDS tool with its leading arguments (freebcp takes the table,
    // direction and file first), logged in to the sandbox with the
    // configuration above and nothing from the caller's environment.
    let freetds = |program: &str, leading: &[std::ffi::OsString]| {
        let mut c = Command::new(program);
        c.args(leading)
            .args([
                "-S",
                &format!("127.0.0.1:{port}"),
                "-U",
                "sa",
                "-P",
                PASSWORD,
            ])
            .current_dir(&dir)
            .env("FREETDSCONF", &conf)
            .env("TDSVER", "7.4")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env_remove("FREETDS")
            .env_remove("SYBASE");
        c
    };
    let bcp_cmd = |table: &str, file: &str| {
        let mut c = freetds(
            &args.freebcp,
            &[table.into(), "in".into(), dir.join(file).into()],
        );
        c.args([
            "-c",
            "-t",
            "\t",
            "-r",
            "\n",
            "-b",
            &args.bcp_batch.to_string(),
        ]);
        c
    };
    // FreeTDS's batch SQL tool, for the statement that follows freebcp's
    // staging load.
    let bsqldb_cmd = |file: &str| {
        let mut c = freetds(&args.bsqldb, &[]);
        c.arg("-i").arg(dir.join(file));
        c
    };
    let check = |r: &Run, what: &str| -> anyhow::Result<()> {
        if !r.success {
            bail!("{what} failed\n{}\n{}", r.stdout, r.stderr);
        }
        Ok(())
    };
    let mut figures = Vec::new();
    let mut c = rt.block_on(sql_client(port))?;

    // 4. INSERT: the bridge, then freebcp.
    timings.clear();
    let r = run_child(&mut bridge_cmd("main.bench.filas", "INSERT"))?;
    std::fs::write(dir.join("bridge-insert.log"), &r.stderr)?;
    if args.phases {
        print_phases("INSERT", &r.stderr);
        timings.report("bridge INSERT");
    }
    check(&r, "bridge INSERT")?;
    let line = r.stdout.trim().to_string();
    let read = number_before(&line, "rows read").context(line.clone())?;
    let affected = number_before(&line, "rows affected").context(line.clone())?;
    let in_target = rt.block_on(count(&mut c, "Bench.dbo.filas"))?;
    ensure!(
        read == args.rows && affected == args.rows && in_target == args.rows,
        "bridge INSERT: {line}; target holds {in_target} rows, {} expected",
        args.rows
    );
    println!("bridge INSERT: {line} ({:.2} s)", r.secs);
    figures.push(Figure {
        operation: "INSERT".into(),
        client: "bridge sync apply",
        rows: args.rows,
        secs: r.secs,
        rss_mib: Some(mib(r.peak_rss_kib)),
        client_cpu: Some(r.child_cpu),
        sandbox_cpu: r.sandbox_cpu,
        other_cpu: Some(r.other_cpu),
    });

    timings.clear();
    let r = run_child(&mut bcp_cmd("Bench.dbo.filas_bcp", "filas.tsv"))?;
    check(&r, "freebcp (filas)")?;
    let copied = number_before(&r.stdout, "rows copied").context(r.stdout.clone())?;
    let in_target = rt.block_on(count(&mut c, "Bench.dbo.filas_bcp"))?;
    ensure!(
        copied == args.rows && in_target == args.rows,
        "freebcp: {copied} rows copied, table holds {in_target}, {} expected\n{}",
        args.rows,
        r.stdout
    );
    println!("freebcp: {copied} rows copied ({:.2} s)", r.secs);
    if args.phases {
        timings.report("freebcp INSERT");
    }
    figures.push(Figure {
        operation: "INSERT".into(),
        client: "freebcp in",
        rows: args.rows,
        secs: r.secs,
        rss_mib: Some(mib(r.peak_rss_kib)),
        client_cpu: Some(r.child_cpu),
        sandbox_cpu: r.sandbox_cpu,
        other_cpu: Some(r.other_cpu),
    });

    if !args.no_verify {
        let t = Instant::now();
        for table in ["Bench.dbo.filas", "Bench.dbo.filas_bcp"] {
            rt.block_on(verify(&mut c, table, args.rows, None))?;
        }
        println!(
            "verified: every row of both targets equals the generator's ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }

    if args.phases {
        let t = Instant::now();
        rt.block_on(async {
            c.simple_query(
                "CREATE TABLE Bench.dbo.filas_copia (id bigint NOT NULL PRIMARY KEY, n int NULL, \
                 monto decimal(18,4) NULL, nombre nvarchar(100) NULL, fecha date NULL, \
                 ts datetime2(6) NULL, activo bit NULL)",
            )
            .await?
            .into_results()
            .await?;
            let n = c
                .execute(
                    "INSERT INTO Bench.dbo.filas_copia (id, n, monto, nombre, fecha, ts, activo) \
                     SELECT id, n, monto, nombre, fecha, ts, activo FROM Bench.dbo.filas_bcp",
                    &[],
                )
                .await?
                .total();
            c.simple_query("DROP TABLE Bench.dbo.filas_copia")
                .await?
                .into_results()
                .await?;
            anyhow::Ok(n)
        })?;
        println!(
            "phases: the sandbox's INSERT ... SELECT of the {} rows from one table into another: {:.2} s",
            args.rows,
            t.elapsed().as_secs_f64()
        );
    }

    // 5. UPDATE: the bridge, then freebcp into a staging table + the bridge's UPDATE statement.
    timings.clear();
    let r = run_child(&mut bridge_cmd("main.bench.cambios", "UPDATE"))?;
    std::fs::write(dir.join("bridge-update.log"), &r.stderr)?;
    if args.phases {
        print_phases("UPDATE", &r.stderr);
        timings.report("bridge UPDATE");
    }
    check(&r, "bridge UPDATE")?;
    let line = r.stdout.trim().to_string();
    let read = number_before(&line, "rows read").context(line.clone())?;
    let affected = number_before(&line, "rows affected").context(line.clone())?;
    ensure!(
        read == args.update_rows && affected == args.update_rows,
        "bridge UPDATE: {line}; {} expected",
        args.update_rows
    );
    println!("bridge UPDATE: {line} ({:.2} s)", r.secs);
    figures.push(Figure {
        operation: "UPDATE".into(),
        client: "bridge sync apply",
        rows: args.update_rows,
        secs: r.secs,
        rss_mib: Some(mib(r.peak_rss_kib)),
        client_cpu: Some(r.child_cpu),
        sandbox_cpu: r.sandbox_cpu,
        other_cpu: Some(r.other_cpu),
    });

    timings.clear();
    let r = run_child(&mut bcp_cmd("Bench.dbo.cambios_bcp", "cambios.tsv"))?;
    check(&r, "freebcp (cambios)")?;
    let copied = number_before(&r.stdout, "rows copied").context(r.stdout.clone())?;
    ensure!(
        copied == args.update_rows,
        "freebcp: {copied} rows copied, {} expected",
        args.update_rows
    );
    let bcp_secs = r.secs;
    figures.push(Figure {
        operation: "UPDATE (bulk part)".into(),
        client: "freebcp in (staging)",
        rows: args.update_rows,
        secs: r.secs,
        rss_mib: Some(mib(r.peak_rss_kib)),
        client_cpu: Some(r.child_cpu),
        sandbox_cpu: r.sandbox_cpu,
        other_cpu: Some(r.other_cpu),
    });
    // The statement through FreeTDS's batch tool, a process and a login of
    // its own as a user would run it (the bridge's figure includes its own
    // start and login too).
    std::fs::write(dir.join("update.sql"), format!("{BCP_UPDATE}\ngo\n"))?;
    let r = run_child(&mut bsqldb_cmd("update.sql"))?;
    check(&r, "bsqldb (the UPDATE ... JOIN)")?;
    let both = format!("{}{}", r.stdout, r.stderr);
    let updated = number_before(&both, "rows affected").context(both.clone())?;
    let upd_secs = r.secs;
    if args.phases {
        timings.report("freebcp UPDATE: staging load, then the UPDATE ... JOIN");
    }
    ensure!(
        updated == args.update_rows,
        "UPDATE ... FROM staging: {updated} rows, {} expected",
        args.update_rows
    );
    println!(
        "freebcp: {copied} rows copied to staging ({bcp_secs:.2} s), then bsqldb ran the UPDATE ... JOIN: \
         {updated} rows ({upd_secs:.2} s)"
    );
    let bulk = figures.last().map(|f: &Figure| {
        (
            f.sandbox_cpu,
            f.rss_mib,
            f.client_cpu.unwrap_or(0.0),
            f.other_cpu.unwrap_or(0.0),
        )
    });
    figures.push(Figure {
        operation: "UPDATE".into(),
        client: "freebcp + bsqldb UPDATE",
        rows: args.update_rows,
        secs: bcp_secs + upd_secs,
        rss_mib: bulk.and_then(|b| b.1).map(|m| m.max(mib(r.peak_rss_kib))),
        client_cpu: Some(bulk.map_or(0.0, |b| b.2) + r.child_cpu),
        sandbox_cpu: bulk.map_or(r.sandbox_cpu, |b| {
            (b.0 .0 + r.sandbox_cpu.0, b.0 .1 + r.sandbox_cpu.1)
        }),
        other_cpu: Some(bulk.map_or(0.0, |b| b.3) + r.other_cpu),
    });

    if !args.no_verify {
        let t = Instant::now();
        for table in ["Bench.dbo.filas", "Bench.dbo.filas_bcp"] {
            rt.block_on(verify(&mut c, table, args.rows, Some(changes)))?;
        }
        println!(
            "verified: after the updates every row of both targets equals the generator's ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
    drop(c);

    // 6. The table.
    println!();
    println!(
        "{:<19} {:<23} {:>9} {:>8} {:>10} {:>15} {:>9} {:>10} {:>11} {:>11} {:>9}",
        "operation",
        "client",
        "rows",
        "seconds",
        "rows/s",
        "bridge/freebcp",
        "peak RSS",
        "client CPU",
        "SQL Srv CPU",
        "Dbx CPU",
        "other CPU"
    );
    let opt = |v: Option<f64>, unit: &str, prec: usize| {
        v.map(|v| format!("{v:.prec$} {unit}"))
            .unwrap_or_else(|| "-".into())
    };
    for f in &figures {
        let ratio = if f.client.starts_with("bridge") {
            // The bridge's rows/s over its peer's: the peer's seconds over the bridge's.
            figures
                .iter()
                .rfind(|g| g.operation == f.operation && !g.client.starts_with("bridge"))
                .map(|g| format!("{:.2}x", g.secs / f.secs))
                .unwrap_or_else(|| "-".into())
        } else {
            "(peer)".into()
        };
        println!(
            "{:<19} {:<23} {:>9} {:>8.2} {:>10.0} {:>15} {:>9} {:>10} {:>11} {:>11} {:>9}",
            f.operation,
            f.client,
            f.rows,
            f.secs,
            f.rows as f64 / f.secs,
            ratio,
            opt(f.rss_mib, "MiB", 1),
            opt(f.client_cpu, "s", 2),
            format!("{:.2} s", f.sandbox_cpu.0),
            format!("{:.2} s", f.sandbox_cpu.1),
            opt(f.other_cpu, "s", 2),
        );
    }
    println!(
        "\nbridge/freebcp = bridge rows/s ÷ freebcp rows/s (for UPDATE against freebcp's staging load + bsqldb running the UPDATE ... JOIN; peak RSS the larger of the two, CPU their sum).\n\
         Not in the figures: writing the source files {files_secs:.1} s, filling the Databricks double {fill_secs:.1} s.\n\
         SQL Server connections: {} for both clients. The bridge's time is end to end (process start, reading the \
         source from the Databricks double over HTTP as Arrow external links, type checks, bulk load straight \
         into the target (INSERT) or into a temp table and UPDATE from it, in one transaction with the ledger row); freebcp reads a local TSV file straight \
         into the table, and bsqldb logs in to send the UPDATE. Peak RSS is the child's VmHWM; client CPU its user+system time (wait4); SQL Srv CPU and Dbx CPU are the \
         SQL Server sandbox's and the Databricks double's CPU time (threads of this process) during the same interval; \
         other CPU is what the rest of the machine used meanwhile (well above 0.1 s: the run was disturbed).",
        match args.tls {
            Tls::Full => "TLS for the whole connection",
            Tls::Login => "TLS for the login only",
        }
    );
    Ok(())
}
