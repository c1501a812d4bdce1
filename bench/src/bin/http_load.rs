//! The REST API under load (issue 5): requests/s and latency of
//! `GET /health/live` and `GET /jobs/{id}` on the bridge, beside a bare axum
//! handler measured in the same run with the same load generator.
//!
//! Starts both sandboxes and `sql-databricks-bridge serve` as child
//! processes, runs one extraction job through `POST /extract` so there is a
//! finished job to read, starts a bare axum server in this process (on its
//! own multi-thread runtime, as the bridge's), then drives each target with
//! N keep-alive HTTP/1.1 connections issuing requests back to back.
//! A benchmark, not a test: run by `bench/run.sh`, from the repository root.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The demo token of `config/permissions.yaml` (user proyecto-colombia).
const TOKEN: &str = "demo-colombia-token";

#[derive(Parser)]
struct Args {
    /// Concurrent keep-alive connections per target.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per target.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of load before measuring, per target.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// The bridge binary (build it with --release).
    #[arg(long, default_value = "target/release/sql-databricks-bridge")]
    bridge: PathBuf,
    /// Extra environment for the bridge, KEY=VALUE (repeatable), e.g.
    /// `BRIDGE_LOG=info` to include request logging or
    /// `TOKIO_WORKER_THREADS=1`.
    #[arg(long = "bridge-env", value_name = "KEY=VALUE")]
    bridge_env: Vec<String>,
    /// The sandbox binary (build it with --release).
    #[arg(long, default_value = "target/release/bridge-sandbox")]
    sandbox: PathBuf,
}

/// Child processes, killed when this goes out of scope (also on error).
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Children {
    /// Starts `cmd` and waits (up to 120 s) for a stdout line starting with
    /// `prefix`; returns the rest of that line and the child's pid. The rest
    /// of stdout is drained by a thread so the child never blocks on it.
    fn start(
        &mut self,
        name: &str,
        cmd: &mut Command,
        prefix: &str,
    ) -> anyhow::Result<(String, u32)> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let pid = child.id();
        self.0.push((name.to_string(), child));
        let (tx, rx) = mpsc::channel();
        let prefix_owned = prefix.to_string();
        std::thread::spawn(move || {
            let mut found = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !found {
                    if let Some(rest) = line.strip_prefix(&prefix_owned) {
                        found = true;
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(rest) => Ok((rest, pid)),
            Err(_) => bail!("{name} did not print '{prefix}...' (see its stderr above)"),
        }
    }
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// user + system CPU seconds from a /proc `stat` file.
fn stat_cpu_secs(path: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn process_cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0.0)
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
fn threads_cpu_secs(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.starts_with(prefix))
                .unwrap_or(false)
        })
        .filter_map(|t| stat_cpu_secs(&t.path().join("stat")))
        .sum()
}

/// Names the bare server's runtime threads, so their CPU can be told apart.
const BARE_THREADS: &str = "bare-axum";

/// One thing to load.
struct Target {
    name: String,
    addr: SocketAddr,
    path: String,
    token: Option<&'static str>,
    /// Where the server's CPU time comes from.
    cpu: CpuSource,
}

#[derive(Clone, Copy)]
enum CpuSource {
    Process(u32),
    BareThreads,
}

impl CpuSource {
    fn secs(self) -> f64 {
        match self {
            CpuSource::Process(pid) => process_cpu_secs(pid),
            CpuSource::BareThreads => threads_cpu_secs(BARE_THREADS),
        }
    }
}

fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if let Some(t) = token {
        b = b.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(text) => {
            b = b.header(CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(text))
        }
        None => Full::new(Bytes::new()),
    };
    Ok(b.body(body)?)
}

/// One keep-alive HTTP/1.1 connection.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// One request on a fresh connection: status and body.
async fn once(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut send = connect(addr).await?;
    let resp = send
        .send_request(request(addr, method, path, token, body)?)
        .await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// What one connection saw while measuring.
#[derive(Default)]
struct ConnStats {
    /// Microseconds per successful (2xx) request.
    latencies: Vec<u32>,
    /// Non-2xx responses by status, and transport errors (status 0).
    errors: BTreeMap<u16, u64>,
}

/// Requests back to back on one connection until `end`; those started
/// before `measure_from` are warm-up and not recorded.
async fn hammer(
    target: Arc<Target>,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<ConnStats> {
    let mut stats = ConnStats {
        latencies: Vec::with_capacity(1 << 16),
        ..ConnStats::default()
    };
    let mut send = connect(target.addr).await?;
    while Instant::now() < end {
        if send.ready().await.is_err() {
            // The server closed the connection: count it, open another.
            if Instant::now() >= measure_from {
                *stats.errors.entry(0).or_default() += 1;
            }
            send = connect(target.addr).await?;
            continue;
        }
        let req = request(target.addr, Method::GET, &target.path, target.token, None)?;
        let t0 = Instant::now();
        let outcome = match send.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                match resp.into_body().collect().await {
                    Ok(_) => Some(status),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let micros = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        if t0 < measure_from {
            continue;
        }
        match outcome {
            Some(s) if s.is_success() => stats.latencies.push(micros),
            Some(s) => *stats.errors.entry(s.as_u16()).or_default() += 1,
            None => *stats.errors.entry(0).or_default() += 1,
        }
    }
    Ok(stats)
}

/// One target's figures.
struct Measured {
    name: String,
    requests: u64,
    secs: f64,
    p50: u32,
    p99: u32,
    max: u32,
    errors: BTreeMap<u16, u64>,
    server_cpu: f64,
    generator_cpu: f64,
    /// Lines the bridge appended to its audit file while measuring.
    audit_lines: u64,
    audit_bytes: u64,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn measure(target: Arc<Target>, args: &Args, audit_log: &Path) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_seconds);
    let end = measure_from + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(hammer(target.clone(), measure_from, end)))
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let server0 = target.cpu.secs();
    let audit0 = std::fs::metadata(audit_log).map_or(0, |m| m.len());
    let self0 = process_cpu_secs(std::process::id()) - threads_cpu_secs(BARE_THREADS);
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
    for t in tasks {
        let s = t.await??;
        latencies.extend_from_slice(&s.latencies);
        for (k, v) in s.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    // Requests started in the window; the last ones end a little after it.
    let secs = measure_from.elapsed().as_secs_f64();
    let server_cpu = target.cpu.secs() - server0;
    let audit_lines = lines_after(audit_log, audit0);
    let audit_bytes = std::fs::metadata(audit_log)
        .map_or(0, |m| m.len())
        .saturating_sub(audit0);
    let generator_cpu =
        process_cpu_secs(std::process::id()) - threads_cpu_secs(BARE_THREADS) - self0;
    latencies.sort_unstable();
    Ok(Measured {
        name: target.name.clone(),
        requests: latencies.len() as u64 + errors.values().sum::<u64>(),
        secs,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0),
        errors,
        server_cpu,
        generator_cpu,
        audit_lines,
        audit_bytes,
    })
}

fn ms(micros: u32) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

/// Lines in a file after its first `offset` bytes.
fn lines_after(path: &Path, offset: u64) -> u64 {
    std::fs::read(path)
        .map(|b| {
            let from = (offset as usize).min(b.len());
            b[from..].iter().filter(|&&c| c == b'\n').count() as u64
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.seconds == 0 {
        bail!("--connections and --seconds must be at least 1");
    }
    let tmp = std::env::temp_dir().join(format!("bridge-http-load-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = run(&args, &tmp);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&tmp);
    } else {
        eprintln!("(files of the run kept in {})", tmp.display());
    }
    result
}

fn run(args: &Args, tmp: &Path) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut children = Children::default();

    let (sql_addr, _) = children.start(
        "SQL Server sandbox",
        Command::new(&args.sandbox).args([
            "sqlserver",
            "--port",
            "0",
            "--seed",
            "sandbox/seed/demo.sql",
        ]),
        "READY sqlserver ",
    )?;
    let (dbx, _) = children.start(
        "Databricks sandbox",
        Command::new(&args.sandbox).args([
            "databricks",
            "--port",
            "0",
            "--token",
            "dapi-demo",
            "--seed",
            "sandbox/seed/databricks_demo.sql",
        ]),
        "READY databricks ",
    )?;
    let dbx_url = dbx
        .split_whitespace()
        .next()
        .context("Databricks sandbox URL")?
        .to_string();
    let sql_host = sql_addr.replace(':', ",");
    let audit_log = tmp.join("audit.jsonl");
    let jobs_db = tmp.join("jobs.sqlite");
    let mut bridge_cmd = Command::new(&args.bridge);
    bridge_cmd
        .arg("serve")
        .args(["--port", "0"])
        .arg("--jobs-db")
        .arg(&jobs_db)
        .arg("--audit-log")
        .arg(&audit_log)
        .env("SQLSERVER_HOST", &sql_host)
        .env("SQLSERVER_USERNAME", "sa")
        .env("SQLSERVER_PASSWORD", "Bridge!Passw0rd")
        .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
        .env("DATABRICKS_HOST", &dbx_url)
        .env("DATABRICKS_TOKEN", "dapi-demo")
        .env("BRIDGE_LOG", "warn");
    for kv in &args.bridge_env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--bridge-env {kv}: expected KEY=VALUE"))?;
        bridge_cmd.env(k, v);
    }
    let (listening, bridge_pid) = children.start(
        "sql-databricks-bridge serve",
        &mut bridge_cmd,
        "listening on http://",
    )?;
    let bridge: SocketAddr = listening
        .parse()
        .with_context(|| format!("bridge address {listening}"))?;

    // The bare handler: its own runtime, built as the bridge builds its own.
    let bare_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(BARE_THREADS)
        .build()?;
    let listener = bare_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let bare = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    bare_rt.spawn(async move { axum::serve(listener, app).await });

    // The load generator's runtime: the same kind again.
    let gen_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load-gen")
        .build()?;
    let measured = gen_rt.block_on(async {
        let job_id = finished_job(bridge).await?;
        let targets = [
            Target {
                name: "bare axum GET /".into(),
                addr: bare,
                path: "/".into(),
                token: None,
                cpu: CpuSource::BareThreads,
            },
            Target {
                name: "bridge GET /health/live".into(),
                addr: bridge,
                path: "/health/live".into(),
                token: None,
                cpu: CpuSource::Process(bridge_pid),
            },
            Target {
                name: "bridge GET /jobs/{id}".into(),
                addr: bridge,
                path: format!("/jobs/{job_id}"),
                token: Some(TOKEN),
                cpu: CpuSource::Process(bridge_pid),
            },
        ];
        println!(
            "{} keep-alive HTTP/1.1 connections per target, {} s warm-up then {} s measured; \
             load generator and servers share this machine's {cores} cores (loopback)",
            args.connections, args.warmup_seconds, args.seconds
        );
        let mut out = Vec::new();
        for t in targets {
            let (status, body) = once(t.addr, Method::GET, &t.path, t.token, None).await?;
            if !status.is_success() {
                bail!(
                    "{} answered {status}: {}",
                    t.name,
                    String::from_utf8_lossy(&body)
                );
            }
            println!("  {}: {status}, {} byte body", t.name, body.len());
            out.push(measure(Arc::new(t), args, &audit_log).await?);
        }
        // The trail must hold one auth_success line per GET /jobs/{id} the
        // bridge answered: let its writer catch up, then compare with the
        // bridge's own request counter.
        let settle = Instant::now();
        let mut last = u64::MAX;
        loop {
            let n = std::fs::metadata(&audit_log).map_or(0, |m| m.len());
            if n == last || settle.elapsed() > Duration::from_secs(60) {
                break;
            }
            last = n;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (_, metrics) = once(bridge, Method::GET, "/metrics", Some(TOKEN), None).await?;
        let answered: u64 = String::from_utf8_lossy(&metrics)
            .lines()
            .filter(|l| l.starts_with("bridge_http_requests_total{method=\"GET\",route=\"/jobs/{job_id}\",status=\"200\"}"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
        let wanted = format!("\"resource\":\"/jobs/{job_id}\"");
        // The trail rotates at 100 MiB: audit.jsonl, audit.jsonl.1, ...
        let audited: usize = (0..=5)
            .map(|n| {
                let mut p = audit_log.clone().into_os_string();
                if n > 0 {
                    p.push(format!(".{n}"));
                }
                std::fs::read_to_string(&p)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("\"auth_success\"") && l.contains(&wanted))
                    .count()
            })
            .sum();
        println!(
            "audit trail after the writer caught up ({:.1} s): {audited} auth_success lines for \
             {answered} GET /jobs/{{id}} answered — {}",
            settle.elapsed().as_secs_f64(),
            if audited as u64 >= answered { "complete" } else { "INCOMPLETE" }
        );
        anyhow::Ok(out)
    })?;
    let bridge_peak = peak_rss_kb(bridge_pid).unwrap_or(0);
    drop(children);

    let bare_rps = measured[0].rps();
    println!();
    println!(
        "| target | requests/s | p50 | p99 | max | errors | vs bare | server CPU per request | generator CPU |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &measured {
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {:.2}× | {:.1} µs | {:.0}% of {cores} cores |",
            m.name,
            m.rps(),
            ms(m.p50),
            ms(m.p99),
            ms(m.max),
            m.errors_total(),
            m.rps() / bare_rps,
            m.server_cpu * 1e6 / m.requests.max(1) as f64,
            100.0 * m.generator_cpu / (m.secs * cores as f64),
        );
    }
    println!();
    for m in &measured {
        if !m.errors.is_empty() {
            let list: Vec<String> = m
                .errors
                .iter()
                .map(|(s, n)| {
                    if *s == 0 {
                        format!("{n} transport errors")
                    } else {
                        format!("{n} × {s}")
                    }
                })
                .collect();
            println!("{}: errors: {}", m.name, list.join(", "));
        }
        if m.audit_lines > 0 {
            println!(
                "{}: {} audit lines, {:.1} MiB, in the current audit file by the end of the window \
                 ({:.2} per request; the writer thread catches up after it, and the file rotates at \
                 100 MiB: the completeness line above counts every file)",
                m.name,
                m.audit_lines,
                m.audit_bytes as f64 / (1024.0 * 1024.0),
                m.audit_lines as f64 / (m.requests as f64).max(1.0)
            );
        }
    }
    println!(
        "bridge peak RSS (VmHWM) after the run: {:.1} MiB",
        bridge_peak as f64 / 1024.0
    );
    Ok(())
}

/// Runs one extraction job (Colombia, both queries, into a Volume of the
/// Databricks sandbox) and waits until it has succeeded; returns its id.
async fn finished_job(bridge: SocketAddr) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "queries_path": "./queries",
        "config_path": "./config",
        "country": "Colombia",
        "destination": "/Volumes/main/demo/landing",
        "overwrite": true,
    })
    .to_string();
    let (status, resp) = once(bridge, Method::POST, "/extract", Some(TOKEN), Some(body)).await?;
    if status != StatusCode::ACCEPTED {
        bail!(
            "POST /extract answered {status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&resp)?;
    let id = v["job_id"]
        .as_str()
        .context("POST /extract: no job_id")?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, resp) = once(
            bridge,
            Method::GET,
            &format!("/jobs/{id}"),
            Some(TOKEN),
            None,
        )
        .await?;
        if !status.is_success() {
            bail!(
                "GET /jobs/{id} answered {status}: {}",
                String::from_utf8_lossy(&resp)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&resp)?;
        match v["state"].as_str() {
            Some("succeeded") => {
                println!(
                    "job {id} succeeded: {} rows, {} files",
                    v["rows"], v["files"]
                );
                return Ok(id);
            }
            Some("queued" | "running") => {
                if Instant::now() >= deadline {
                    bail!("job {id} still not finished after 120 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => bail!(
                "job {id} ended {}: {}",
                other.unwrap_or("?"),
                String::from_utf8_lossy(&resp)
            ),
        }
    }
}
