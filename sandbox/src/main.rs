//! `bridge-sandbox`: runs the test doubles from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use bridge_sandbox::databricks;
use bridge_sandbox::engine::Engine;
use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
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
    /// A real MIT Kerberos KDC (krb5kdc) in the private realm BRIDGE.TEST on
    /// 127.0.0.1, its database and configuration in DIR.
    ///
    /// Prints `READY kdc 127.0.0.1:<port> krb5_conf=<path> kdc_conf=<path>`
    /// and runs until interrupted. Clients use it with
    /// `KRB5_CONFIG=<krb5_conf>`; more principals are added with
    /// `kadmin.local` given `KRB5_CONFIG` and `KRB5_KDC_PROFILE=<kdc_conf>`.
    Kdc {
        /// Where the realm's files go (emptied first).
        #[arg(long)]
        dir: PathBuf,
        /// A principal to add with a random key, and the keytab to write
        /// its key to: `NAME=KEYTAB`; repeatable.
        #[arg(long)]
        principal: Vec<String>,
    },
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
        /// Fault: cut the next bulk load(s) after this many rows, as a
        /// network failure would (`ROWS` or `ROWS:TIMES`, default once).
        #[arg(long)]
        drop_bulk_after_rows: Option<String>,
        /// Fault: run the next SQL batch matching this regex — a COMMIT
        /// commits — then close the connection instead of answering
        /// (`PATTERN` or `PATTERN:TIMES`); repeatable.
        #[arg(long)]
        lose_answer: Vec<String>,
        /// Also start a Microsoft Entra ID double with this application
        /// (`CLIENT_ID:OBJECT_ID:SECRET`; repeatable) and take its tenant's
        /// access tokens; the READY line then ends with
        /// `entra=<authority host> tenant=<tenant id>`. The authority host
        /// is HTTPS, its certificate issued by a CA made at start.
        #[arg(long)]
        entra_app: Vec<String>,
        /// Write the certificate of the CA behind the Entra ID double's
        /// HTTPS here (PEM), for its clients to trust.
        #[arg(long, requires = "entra_app")]
        entra_ca_file: Option<PathBuf>,
        /// Take Windows (Kerberos) sign-in: the keytab holding the server's
        /// `MSSQLSvc/host:port` key (read at each sign-in); principals sign
        /// in as `CREATE LOGIN [DOMAIN\user] FROM WINDOWS` logins. Needs
        /// the `kerberos` feature.
        #[arg(long)]
        kerberos_keytab: Option<PathBuf>,
    },
    /// A Databricks workspace (Files API, Statement Execution API, Unity
    /// Catalog, SQL warehouses, PAT and OAuth M2M) on 127.0.0.1.
    ///
    /// Prints `READY databricks http://127.0.0.1:<port> warehouse=<id>` when
    /// it accepts requests and runs until interrupted.
    Databricks {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 18080)]
        port: u16,
        /// Personal access token accepted as a bearer token, `TOKEN` or
        /// `TOKEN=PRINCIPAL` (the user it belongs to; default
        /// sandbox-admin@bridge.local); repeatable.
        #[arg(long, default_value = "dapi-sandbox")]
        token: Vec<String>,
        /// Workspace admin (bypasses grant checks); repeatable. Without any,
        /// the first token's principal and the OAuth client are admins.
        #[arg(long)]
        admin: Vec<String>,
        /// OAuth M2M client id (with --client-secret).
        #[arg(long, requires = "client_secret")]
        client_id: Option<String>,
        /// OAuth M2M client secret.
        #[arg(long, requires = "client_id")]
        client_secret: Option<String>,
        /// Lifetime of issued OAuth tokens, in seconds.
        #[arg(long, default_value_t = 3600)]
        oauth_token_ttl_secs: u64,
        /// Spark SQL script (`;`-separated) run at start; repeatable.
        #[arg(long)]
        seed: Vec<PathBuf>,
        /// Keep the database and volume files here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Time each statement spends PENDING/RUNNING before it executes.
        #[arg(long, default_value_t = 0)]
        execution_delay_ms: u64,
        /// Largest single-request upload, in bytes (5 GiB by default).
        #[arg(long)]
        max_upload_bytes: Option<u64>,
        /// Target size of a result chunk in bytes (INLINE and EXTERNAL_LINKS).
        #[arg(long)]
        chunk_bytes: Option<u64>,
        /// Fault: answer the next N requests with 429 and `Retry-After`
        /// (`N` or `N:SECONDS`, default 1 second).
        #[arg(long)]
        fault_429: Option<String>,
        /// Fault: answer the next N requests with 503.
        #[arg(long)]
        fault_503: Option<u32>,
        /// Fault: answer the next N requests with 500.
        #[arg(long)]
        fault_500: Option<u32>,
        /// Fault: delay every response by this many milliseconds.
        #[arg(long)]
        delay_ms: Option<u64>,
        /// Fault: statements matching REGEX end FAILED (`REGEX` or `REGEX:TIMES`,
        /// default once).
        #[arg(long)]
        fail_statements: Vec<String>,
        /// Fault: issue every result link already expired.
        #[arg(long)]
        expire_links: bool,
        /// Fault: cut every download (files and result links) after this many bytes.
        #[arg(long)]
        cut_downloads_after: Option<u64>,
        /// Fault: a slow link; file uploads and downloads (Files API,
        /// pre-signed URLs, result links) move at this many bytes per second.
        #[arg(long)]
        bandwidth_bytes_per_sec: Option<u64>,
        /// Result links require this header (`NAME=VALUE`, or `NAME` for a
        /// fresh value per link), handed out in `http_headers`; a GET
        /// without it is refused with 403. Repeatable.
        #[arg(long)]
        link_header: Vec<String>,
    },
}

/// `VALUE` or `VALUE:TIMES` (once when no count is given).
fn pattern_times(s: &str) -> (&str, u32) {
    match s.rsplit_once(':') {
        Some((p, t)) if t.parse::<u32>().is_ok() => (p, t.parse().unwrap_or(1)),
        _ => (s, 1),
    }
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
            drop_bulk_after_rows,
            lose_answer,
            entra_app,
            entra_ca_file,
            kerberos_keytab,
        } => {
            let apps = entra_app
                .iter()
                .map(|a| match a.splitn(3, ':').collect::<Vec<_>>()[..] {
                    [client_id, object_id, secret] if !secret.is_empty() => Ok(EntraApp {
                        client_id: client_id.into(),
                        object_id: object_id.into(),
                        display_name: client_id.into(),
                        secret: secret.into(),
                        ..EntraApp::default()
                    }),
                    _ => Err(anyhow::anyhow!(
                        "--entra-app '{}…' is not CLIENT_ID:OBJECT_ID:SECRET",
                        a.split(':').next().unwrap_or_default()
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
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
                let (pattern, times) = pattern_times(d);
                engine
                    .inject_deadlock(pattern, times)
                    .with_context(|| format!("--deadlock pattern '{pattern}'"))?;
            }
            let entra = if apps.is_empty() {
                None
            } else {
                Some(entra::start(EntraConfig {
                    apps,
                    clock: engine.clock().clone(),
                    ..EntraConfig::default()
                })?)
            };
            if let (Some(e), Some(path)) = (&entra, &entra_ca_file) {
                std::fs::write(path, e.ca_pem())
                    .with_context(|| format!("writing --entra-ca-file {}", path.display()))?;
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
                entra: entra.as_ref().map(|e| e.trust()),
                kerberos_keytab,
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
            if let Some(spec) = &drop_bulk_after_rows {
                let (rows, n) = pattern_times(spec);
                let rows: u64 = rows
                    .parse()
                    .with_context(|| format!("--drop-bulk-after-rows '{spec}': ROWS[:TIMES]"))?;
                server.faults().drop_next_bulk_loads_after_rows(rows, n);
            }
            for l in &lose_answer {
                let (pattern, n) = pattern_times(l);
                server
                    .faults()
                    .lose_answers(pattern, n)
                    .with_context(|| format!("--lose-answer pattern '{pattern}'"))?;
            }
            match &entra {
                Some(e) => println!(
                    "READY sqlserver {} entra={} tenant={}",
                    server.addr(),
                    e.url(),
                    e.tenant_id()
                ),
                None => println!("READY sqlserver {}", server.addr()),
            }
            use std::io::Write;
            std::io::stdout().flush()?;
            wait_for_signal();
            server.shutdown();
            Ok(())
        }
        Command::Kdc { dir, principal } => {
            let kdc = bridge_sandbox::kdc::Kdc::start(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
            for p in &principal {
                let (name, keytab) = p
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--principal '{p}' is not NAME=KEYTAB"))?;
                kdc.add_principal(name, std::path::Path::new(keytab))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            println!(
                "READY kdc 127.0.0.1:{} krb5_conf={} kdc_conf={}",
                kdc.port,
                kdc.krb5_conf().display(),
                dir.join("kdc.conf").display()
            );
            use std::io::Write;
            std::io::stdout().flush()?;
            wait_for_signal();
            drop(kdc);
            Ok(())
        }
        Command::Databricks {
            port,
            token,
            admin,
            client_id,
            client_secret,
            oauth_token_ttl_secs,
            seed,
            data_dir,
            execution_delay_ms,
            max_upload_bytes,
            chunk_bytes,
            fault_429,
            fault_503,
            fault_500,
            delay_ms,
            fail_statements,
            expire_links,
            cut_downloads_after,
            bandwidth_bytes_per_sec,
            link_header,
        } => {
            use std::time::Duration;
            let mut tokens = Vec::new();
            let mut principals = std::collections::HashMap::new();
            for t in token {
                match t.split_once('=') {
                    Some((tok, principal)) if !tok.is_empty() && !principal.is_empty() => {
                        principals.insert(tok.to_string(), principal.to_string());
                        tokens.push(tok.to_string());
                    }
                    Some(_) => anyhow::bail!("--token takes TOKEN or TOKEN=PRINCIPAL, got '{t}'"),
                    None => tokens.push(t),
                }
            }
            let mut config = databricks::DatabricksConfig {
                port,
                tokens,
                principals,
                admins: admin,
                oauth_token_ttl: Duration::from_secs(oauth_token_ttl_secs),
                execution_delay: Duration::from_millis(execution_delay_ms),
                data_dir,
                ..Default::default()
            };
            if let (Some(id), Some(secret)) = (client_id, client_secret) {
                config.oauth_clients.insert(id, secret);
            }
            if let Some(n) = max_upload_bytes {
                config.max_upload_bytes = n;
            }
            if let Some(n) = chunk_bytes {
                config.inline_chunk_bytes = n;
                config.external_chunk_bytes = n;
            }
            for spec in &link_header {
                let h = databricks::LinkHeader::parse(spec).with_context(|| {
                    format!("--link-header takes NAME or NAME=VALUE, got '{spec}'")
                })?;
                config.link_headers.push(h);
            }
            let server = databricks::start(config).context("starting the Databricks double")?;
            for path in &seed {
                let script = std::fs::read_to_string(path)
                    .with_context(|| format!("reading seed file {}", path.display()))?;
                server
                    .engine()
                    .run_script(&script)
                    .with_context(|| format!("running seed file {}", path.display()))?;
            }
            let faults = server.faults();
            if let Some(spec) = &fault_429 {
                let (n, secs) = match spec.split_once(':') {
                    Some((n, s)) => (n, s),
                    None => (spec.as_str(), "1"),
                };
                let n: u32 = n.parse().context("--fault-429 N[:SECONDS]")?;
                let secs: u64 = secs.parse().context("--fault-429 N[:SECONDS]")?;
                faults.throttle(n, secs, None);
            }
            if let Some(n) = fault_503 {
                faults.unavailable(n, None);
            }
            if let Some(n) = fault_500 {
                faults.internal_error(n, None);
            }
            if let Some(ms) = delay_ms {
                faults.delay_responses(Duration::from_millis(ms));
            }
            for f in &fail_statements {
                let (pattern, times) = pattern_times(f);
                faults
                    .fail_statements(pattern, times)
                    .with_context(|| format!("--fail-statements pattern '{pattern}'"))?;
            }
            faults.expire_external_links(expire_links);
            if let Some(n) = cut_downloads_after {
                faults.cut_downloads_after(n);
            }
            if let Some(n) = bandwidth_bytes_per_sec {
                faults.limit_bandwidth(n);
            }
            println!(
                "READY databricks {} warehouse={}",
                server.url(),
                server.warehouse_id()
            );
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
