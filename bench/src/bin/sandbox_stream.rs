//! How fast the SQL Server sandbox streams a generated 10-column table to
//! tiberius, and how much memory the sandbox process needs meanwhile: the
//! sandbox must never be what limits the extraction benchmark.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::TryStreamExt;
use tiberius::{EncryptionLevel, QueryItem};

#[derive(Parser)]
struct Args {
    /// Rows in the generated table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// The sandbox binary (build it with --release).
    #[arg(long, default_value = "target/release/bridge-sandbox")]
    sandbox: String,
    /// Streams of the whole table to time.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// TDS packet size the client asks for (512..=32767).
    #[arg(long, default_value_t = 32767)]
    packet_size: u32,
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

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut child = Command::new(&args.sandbox)
        .args([
            "sqlserver",
            "--port",
            "0",
            "--encryption",
            "off",
            "--generate",
            &format!("bench.ventas:{}", args.rows),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", args.sandbox))?;
    let stdout = child.stdout.take().context("sandbox stdout")?;
    let pid = child.id();
    let sandbox = Sandbox(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("READY sqlserver ") else {
        bail!("sandbox did not start: {line}");
    };
    let port: u16 = addr.rsplit(':').next().unwrap_or("0").parse()?;
    println!(
        "generated {} rows in {:.1} s (sandbox RSS after load: {} MiB)",
        args.rows,
        started.elapsed().as_secs_f64(),
        rss_kb(pid).unwrap_or(0) / 1024
    );
    let base_hwm = peak_rss_kb(pid).unwrap_or(0);

    let mut config = bridge_testkit::sqlserver::config(port, EncryptionLevel::NotSupported);
    config.database("bench");
    config.packet_size(args.packet_size);
    let mut best = f64::MAX;
    let mut server_rows_per_cpu_sec = 0f64;
    let mut rss_during = Vec::new();
    for run in 0..args.runs {
        let mut client = bridge_testkit::sqlserver::connect_with(config.clone()).await?;
        let cpu0 = cpu_secs(pid).unwrap_or(0.0);
        let t = Instant::now();
        let mut stream = client.simple_query("SELECT * FROM dbo.ventas").await?;
        let mut n = 0u64;
        while let Some(item) = stream.try_next().await? {
            if let QueryItem::Row(_) = item {
                n += 1;
                if n.is_multiple_of(250_000) {
                    rss_during.push(rss_kb(pid).unwrap_or(0));
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        if n != args.rows {
            bail!("run {run}: got {n} rows, expected {}", args.rows);
        }
        best = best.min(secs);
        let server_cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
        server_rows_per_cpu_sec = server_rows_per_cpu_sec.max(n as f64 / server_cpu.max(0.01));
        println!(
            "run {run}: {n} rows in {secs:.2} s = {:.0} rows/s (sandbox CPU {server_cpu:.2} s = {:.0} rows per sandbox CPU-second)",
            n as f64 / secs,
            n as f64 / server_cpu.max(0.01)
        );
    }
    let peak = peak_rss_kb(pid).unwrap_or(0);
    println!(
        "sandbox capacity: {server_rows_per_cpu_sec:.0} rows per CPU-second (the rest of the wall time is tiberius decoding)"
    );
    println!(
        "best: {:.0} rows/s; sandbox RSS while streaming: {} .. {} MiB; peak RSS {} MiB (after load {} MiB)",
        args.rows as f64 / best,
        rss_during.iter().min().copied().unwrap_or(0) / 1024,
        rss_during.iter().max().copied().unwrap_or(0) / 1024,
        peak / 1024,
        base_hwm / 1024
    );
    drop(sandbox);
    Ok(())
}
