//! The command-line face: parses flags, loads `.env`, runs a command and
//! turns errors into a message and a non-zero exit code.

mod connection;
mod extract;
mod progress;
mod queries;
mod serve;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Moves data both ways between Microsoft SQL Server and Databricks.
///
/// Settings come from flags, the environment (SQLSERVER_*, DATABRICKS_*) and
/// a `.env` file in the working directory.
#[derive(Parser)]
#[command(name = "sql-databricks-bridge", version, about, long_about = None)]
struct Cli {
    /// A .env file to load (default: ./.env when present).
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Log lines as text or JSON (one object per line) on stderr; the
    /// level comes from BRIDGE_LOG (e.g. `info`, `debug`).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "BRIDGE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the .sql files available for extraction.
    ListQueries {
        /// Directory holding the .sql files (searched recursively).
        #[arg(long, default_value = "./queries")]
        queries_path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the parameters for a country (common_params.yaml merged under
    /// <Country>.yaml) and, with --query, the SQL they render.
    ShowParams {
        /// Directory holding common_params.yaml and <Country>.yaml.
        #[arg(long, default_value = "./config")]
        config_path: PathBuf,
        /// Country whose <Country>.yaml applies (case-insensitive).
        #[arg(long)]
        country: String,
        /// Render this query (repeatable).
        #[arg(long = "query")]
        queries: Vec<String>,
        /// Directory holding the .sql files (with --query).
        #[arg(long, default_value = "./queries")]
        queries_path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extract queries from SQL Server to Parquet: <destination>/<country>/<query>/.
    Extract(extract::ExtractArgs),
    /// Check that SQL Server and Databricks answer with the configured
    /// settings; each is reported, and the exit code is non-zero if either fails.
    TestConnection {
        #[command(flatten)]
        connection: connection::ConnectionArgs,
    },
    /// Serve the REST API (jobs, queries, health, metrics, /docs) until
    /// SIGTERM or Ctrl-C; running jobs get --shutdown-timeout to finish.
    Serve(Box<serve::ServeArgs>),
    /// Print the OpenAPI document the server serves at /openapi.json.
    Openapi,
    /// Reverse sync, Databricks → SQL Server: events table, direct apply,
    /// polling.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its requests and audit lines at info; the one-shot
    // commands only warnings (their output is the report).
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Sync(_) => {
            "info,tiberius=error,tiberius::tds::stream::token=off"
        }
        // tiberius warns on every connection that trusts the server
        // certificate; the bridge says it once itself (see connection.rs).
        _ => "warn,tiberius=error,tiberius::tds::stream::token=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    if let Err(e) = load_env_file(cli.env_file.as_deref()) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::ListQueries { queries_path, json } => queries::list_queries(&queries_path, json),
        Command::Openapi => {
            print!("{}", sql_databricks_bridge::api::openapi_json());
            Ok(())
        }
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve::run(*args))),
        Command::Sync(cmd) => match runtime().and_then(|rt| rt.block_on(sync::run(cmd))) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::ShowParams {
            config_path,
            country,
            queries,
            queries_path,
            json,
        } => queries::show_params(&config_path, &country, &queries, &queries_path, json),
        Command::Extract(args) => match runtime() {
            Ok(rt) => match rt.block_on(extract::run(args)) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Command::TestConnection { connection } => match runtime() {
            Ok(rt) => {
                if rt.block_on(connection::test_connection(&connection)) {
                    Ok(())
                } else {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Loads a `.env` file into the environment without overriding variables
/// already set: the environment wins, as users expect.
fn load_env_file(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    match path {
        Some(p) => {
            dotenvy::from_path(p)
                .map_err(|e| anyhow::anyhow!("cannot load env file {}: {e}", p.display()))?;
        }
        None => match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(anyhow::anyhow!("cannot load .env: {e}")),
        },
    }
    Ok(())
}
