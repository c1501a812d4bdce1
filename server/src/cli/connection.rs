//! `test-connection`: reaches SQL Server and Databricks and reports each.

use std::time::Duration;

use sql_databricks_bridge::config::{DatabricksSettings, SqlServerOverrides, SqlServerSettings};
use sql_databricks_bridge::{databricks, sqlserver};

/// Flags shared by the commands that talk to the two systems.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectionArgs {
    /// SQL Server host, `host` or `host,port` (env SQLSERVER_HOST).
    #[arg(long)]
    pub sqlserver_host: Option<String>,
    /// SQL Server port (env SQLSERVER_PORT; default 1433).
    #[arg(long)]
    pub sqlserver_port: Option<u16>,
    /// Database to log in to (env SQLSERVER_DATABASE).
    #[arg(long)]
    pub sqlserver_database: Option<String>,
    /// SQL login, or the Entra ID application's or user-assigned
    /// identity's client id (env SQLSERVER_USERNAME).
    #[arg(long)]
    pub sqlserver_username: Option<String>,
    /// How to sign in, by its ADO.NET name: SqlPassword (default),
    /// ActiveDirectoryServicePrincipal, ActiveDirectoryManagedIdentity,
    /// ActiveDirectoryWorkloadIdentity, ActiveDirectoryDefault or
    /// ActiveDirectoryAccessToken (env SQLSERVER_AUTHENTICATION). Entra ID
    /// methods read AZURE_TENANT_ID, AZURE_AUTHORITY_HOST and the other
    /// AZURE_* variables as Azure Identity does.
    #[arg(long)]
    pub sqlserver_authentication: Option<String>,
    /// TLS: true (default), false (login only) (env SQLSERVER_ENCRYPT).
    #[arg(long)]
    pub sqlserver_encrypt: Option<String>,
    /// Accept the server's certificate without validating it
    /// (env SQLSERVER_TRUST_SERVER_CERTIFICATE).
    #[arg(long)]
    pub sqlserver_trust_server_certificate: Option<bool>,
    /// Databricks workspace URL (env DATABRICKS_HOST).
    #[arg(long)]
    pub databricks_host: Option<String>,
    /// Seconds to wait for each system.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
}

impl ConnectionArgs {
    pub fn sqlserver(
        &self,
    ) -> Result<SqlServerSettings, sql_databricks_bridge::config::SettingsError> {
        let flags = SqlServerOverrides {
            host: self.sqlserver_host.clone(),
            port: self.sqlserver_port,
            database: self.sqlserver_database.clone(),
            username: self.sqlserver_username.clone(),
            password: None,
            encrypt: self.sqlserver_encrypt.clone(),
            trust_server_certificate: self.sqlserver_trust_server_certificate,
            ca_file: None,
            authentication: self.sqlserver_authentication.clone(),
        };
        let s = SqlServerSettings::resolve(&flags, &|k| std::env::var(k).ok())?;
        if s.trust_server_certificate {
            eprintln!("note: trusting SQL Server's certificate without validating it (SQLSERVER_TRUST_SERVER_CERTIFICATE)");
        }
        Ok(s)
    }

    pub fn databricks(
        &self,
    ) -> Result<DatabricksSettings, sql_databricks_bridge::config::SettingsError> {
        let cfg = std::env::var_os("DATABRICKS_CONFIG_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".databrickscfg"))
            })
            .and_then(|p| std::fs::read_to_string(p).ok());
        DatabricksSettings::resolve(
            self.databricks_host.as_deref(),
            None,
            &|k| std::env::var(k).ok(),
            cfg.as_deref(),
        )
    }
}

/// Returns whether both systems answered.
pub async fn test_connection(args: &ConnectionArgs) -> bool {
    let timeout = Duration::from_secs(args.timeout);
    let sql_ok = match args.sqlserver() {
        Err(e) => {
            println!("SQL Server  FAILED  {e}");
            false
        }
        Ok(s) => match sqlserver::probe(&s, timeout).await {
            Ok(info) => {
                println!(
                    "SQL Server  OK      {}:{} database '{}' as '{}' ({}, application '{}') — {}",
                    s.host,
                    s.port,
                    info.database,
                    info.login,
                    s.authentication,
                    info.application,
                    info.version
                );
                true
            }
            Err(e) => {
                println!("SQL Server  FAILED  {e}");
                false
            }
        },
    };
    let dbx_ok = match args.databricks() {
        Err(e) => {
            println!("Databricks  FAILED  {e}");
            false
        }
        Ok(d) => match databricks::Workspace::new(&d, timeout) {
            Err(e) => {
                println!("Databricks  FAILED  {e}");
                false
            }
            Ok(ws) => match tokio::try_join!(ws.current_principal(), ws.list_warehouses()) {
                Ok((principal, w)) => {
                    let names: Vec<String> = w
                        .iter()
                        .map(|w| format!("{} ({})", w.name, w.state))
                        .collect();
                    println!(
                        "Databricks  OK      {} as '{}' ({}) — {} SQL warehouse(s){}{}",
                        ws.host(),
                        principal,
                        ws.auth_method(),
                        w.len(),
                        if names.is_empty() { "" } else { ": " },
                        names.join(", ")
                    );
                    true
                }
                Err(e) => {
                    println!("Databricks  FAILED  {e}");
                    false
                }
            },
        },
    };
    sql_ok && dbx_ok
}
