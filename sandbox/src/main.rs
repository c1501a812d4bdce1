//! `bridge-sandbox`: runs the test doubles from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use bridge_sandbox::engine::Engine;
use bridge_sandbox::generate::{self, GenerateSpec};
use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig};

/// Test doubles for SQL-Databricks Bridge.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Encryption {
    /// No certificate: PRELOGIN answers ENCRYPT_NOT_SUP.
    Off,
    /// Self-signed certificate; TLS for the login, or for everything when
    /// the client asks (SQL Server's default).
    Login,
    /// TLS for the whole connection, as with "force encryption".
    Required,
}

#[derive(Subcommand)]
enum Command {
    /// A SQL Server (TDS 7.4) on 127.0.0.1, backed by SQLite.
    ///
    /// Prints `READY sqlserver 127.0.0.1:<port>` when it accepts connections
    /// and runs until interrupted.
    Sqlserver {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 14330)]
        port: u16,
        /// Login name.
        #[arg(long, default_value = "sa")]
        user: String,
        /// Login password.
        #[arg(long, default_value = "Bridge!Passw0rd")]
        password: String,
        /// TLS offered to clients.
        #[arg(long, value_enum, default_value = "login")]
        encryption: Encryption,
        /// T-SQL script run at start (GO separates batches); repeatable.
        #[arg(long)]
        seed: Vec<PathBuf>,
        /// Generate a benchmark table `[database.]table:rows` (database
        /// defaults to `bench`); repeatable.
        #[arg(long)]
        generate: Vec<GenerateSpec>,
        /// Keep the database here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Fault: drop each connection after sending this many rows of a result.
        #[arg(long)]
        drop_after_rows: Option<u64>,
        /// Fault: delay every packet the server sends by this many milliseconds.
        #[arg(long)]
        delay_ms: Option<u64>,
        /// Fault: refuse the first N logins with error 18456.
        #[arg(long)]
        fail_logins: Option<u32>,
        /// Fault: answer deadlock 1205 to the next batch matching this regex
        /// (`PATTERN` or `PATTERN:TIMES`).
        #[arg(long)]
        deadlock: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge-sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sqlserver {
            port,
            user,
            password,
            encryption,
            seed,
            generate: specs,
            data_dir,
            drop_after_rows,
            delay_ms,
            fail_logins,
            deadlock,
        } => {
            let engine =
                Engine::open(data_dir.as_deref()).context("opening the sandbox database")?;
            for path in &seed {
                let script = std::fs::read_to_string(path)
                    .with_context(|| format!("reading seed file {}", path.display()))?;
                engine
                    .run_script(&script)
                    .with_context(|| format!("running seed file {}", path.display()))?;
            }
            for spec in &specs {
                eprintln!(
                    "generating {}.dbo.{} ({} rows)...",
                    spec.database, spec.table, spec.rows
                );
                generate::generate(&engine, spec, |_| {})
                    .with_context(|| format!("generating {}.dbo.{}", spec.database, spec.table))?;
            }
            for d in &deadlock {
                let (pattern, times) = match d.rsplit_once(':') {
                    Some((p, t)) if t.parse::<u32>().is_ok() => (p, t.parse().unwrap_or(1)),
                    _ => (d.as_str(), 1),
                };
                engine
                    .inject_deadlock(pattern, times)
                    .with_context(|| format!("--deadlock pattern '{pattern}'"))?;
            }
            let config = SqlServerConfig {
                port,
                user,
                password,
                encryption: match encryption {
                    Encryption::Off => ServerEncryption::NotSupported,
                    Encryption::Login => ServerEncryption::LoginOnly,
                    Encryption::Required => ServerEncryption::Required,
                },
                data_dir,
            };
            let server = sqlserver::start_with_engine(config, engine)?;
            if let Some(n) = drop_after_rows {
                server.faults().drop_connection_after_rows(n);
            }
            if let Some(ms) = delay_ms {
                server
                    .faults()
                    .delay_packets(std::time::Duration::from_millis(ms));
            }
            if let Some(n) = fail_logins {
                server.faults().fail_next_logins(n);
            }
            println!("READY sqlserver {}", server.addr());
            use std::io::Write;
            std::io::stdout().flush()?;
            wait_for_signal();
            server.shutdown();
            Ok(())
        }
    }
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() {
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = ctrlc_channel(tx);
    let _ = rx.recv();
}

#[cfg(unix)]
fn ctrlc_channel(tx: std::sync::mpsc::Sender<()>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(());
        }
    });
    Ok(())
}
