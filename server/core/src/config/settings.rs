//! Connection settings for SQL Server and Databricks.
//!
//! Precedence, highest first: command-line flags, environment variables,
//! a `.env` file (loaded into the environment by the binary), then
//! `SQLSERVER_CONNECTION_STRING` (ADO.NET) for SQL Server and
//! `~/.databrickscfg` (profile `DATABRICKS_CONFIG_PROFILE` or DEFAULT) for
//! Databricks, as Databricks' unified authentication does.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::ado::{AdoString, Authentication, Requested};
use super::entra::{self, Given};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("SQL Server host is not set: set SQLSERVER_HOST (or SQLSERVER_CONNECTION_STRING, or pass --sqlserver-host)")]
    MissingHost,
    #[error("Databricks host is not set: set DATABRICKS_HOST (or a profile in ~/.databrickscfg)")]
    MissingDatabricksHost,
    #[error("Databricks credentials are not set: set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (or a profile in ~/.databrickscfg)")]
    MissingDatabricksAuth,
    #[error("cannot read {path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
}

/// How the SQL Server connection is encrypted (ADO.NET `Encrypt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encrypt {
    /// TLS for the whole connection (the default, as in current drivers).
    On,
    /// TLS for the login only, when the server offers it.
    Off,
    /// TDS 8.0 strict encryption.
    Strict,
}

/// Where and how to reach SQL Server. `password` never appears in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct SqlServerSettings {
    pub host: String,
    pub port: u16,
    /// Empty means the login's default database.
    pub database: String,
    pub username: String,
    pub password: String,
    pub encrypt: Encrypt,
    pub trust_server_certificate: bool,
    pub ca_file: Option<PathBuf>,
    /// TDS packet size the login asks for (512..=32767; the server may
    /// answer with another).
    pub packet_size: u32,
    /// What the login calls the program (`APP_NAME()`, sessions, audits).
    pub application_name: String,
    /// How the bridge signs in.
    pub authentication: Authentication,
}

/// The program's name in SQL Server's sessions unless set.
pub const DEFAULT_APPLICATION_NAME: &str = "sql-databricks-bridge";

/// The packet size asked for unless set: the largest Microsoft documents
/// for an encrypted connection ("The maximum network packet size for
/// encrypted connections is 16,383 bytes",
/// https://learn.microsoft.com/sql/database-engine/configure-windows/configure-the-network-packet-size-server-configuration-option).
/// Fewer, larger packets cost less to frame, encrypt and decode on a large
/// result or bulk load than the 4,096-byte server default.
pub const DEFAULT_PACKET_SIZE: u32 = 16_383;

impl fmt::Debug for SqlServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlServerSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("encrypt", &self.encrypt)
            .field("trust_server_certificate", &self.trust_server_certificate)
            .field("ca_file", &self.ca_file)
            .field("packet_size", &self.packet_size)
            .field("application_name", &self.application_name)
            .field("authentication", &self.authentication)
            .finish()
    }
}

/// Values given on the command line; `None` leaves the lower sources in charge.
#[derive(Clone, Debug, Default)]
pub struct SqlServerOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub encrypt: Option<String>,
    pub trust_server_certificate: Option<bool>,
    pub ca_file: Option<PathBuf>,
    /// `--sqlserver-authentication`: an `Authentication` method by its
    /// ADO.NET name.
    pub authentication: Option<String>,
}

fn parse_bool(source_name: &str, v: &str) -> Result<bool, SettingsError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        other => Err(SettingsError::Invalid {
            source_name: source_name.into(),
            message: format!("'{other}' is not true or false"),
        }),
    }
}

fn parse_encrypt(source_name: &str, v: &str) -> Result<Encrypt, SettingsError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "mandatory" | "1" | "on" => Ok(Encrypt::On),
        "false" | "no" | "optional" | "0" | "off" => Ok(Encrypt::Off),
        "strict" => Ok(Encrypt::Strict),
        other => Err(SettingsError::Invalid {
            source_name: source_name.into(),
            message: format!("encrypt '{other}' is not one of true, false, strict"),
        }),
    }
}

/// Splits `host`, `host,port`, `tcp:host,port` or `host\instance` the way SQL
/// Server tools write a server.
fn split_server(source_name: &str, s: &str) -> Result<(String, Option<u16>), SettingsError> {
    let s = s.trim();
    let s = s.strip_prefix("tcp:").unwrap_or(s);
    let (host, port) = match s.split_once(',') {
        Some((h, p)) => {
            let port: u16 = p.trim().parse().map_err(|_| SettingsError::Invalid {
                source_name: source_name.into(),
                message: format!("'{p}' is not a port number"),
            })?;
            (h.trim(), Some(port))
        }
        None => (s, None),
    };
    if host.contains('\\') {
        return Err(SettingsError::Invalid {
            source_name: source_name.into(),
            message: format!(
                "named instances ('{host}') need the SQL Browser; give host,port instead"
            ),
        });
    }
    Ok((host.to_string(), port))
}

/// Where the authentication method was named, for errors.
fn method_source(flags: &SqlServerOverrides, var: Option<&str>) -> &'static str {
    if flags.authentication.is_some() {
        "--sqlserver-authentication"
    } else if var.is_some_and(|v| !v.trim().is_empty()) {
        "SQLSERVER_AUTHENTICATION"
    } else {
        "SQLSERVER_CONNECTION_STRING"
    }
}

impl SqlServerSettings {
    /// Resolves the settings from flags, then `env` (the process environment
    /// after `.env` was loaded), then the ADO.NET connection string.
    pub fn resolve(
        flags: &SqlServerOverrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SqlServerSettings, SettingsError> {
        const CS: &str = "SQLSERVER_CONNECTION_STRING";
        let ado = match env(CS) {
            Some(s) if !s.trim().is_empty() => AdoString::parse(&s)?,
            _ => AdoString::default(),
        };
        let token = env("SQLSERVER_ACCESS_TOKEN");
        let method_var = env("SQLSERVER_AUTHENTICATION");
        let method = match (&flags.authentication, &method_var) {
            (Some(m), _) => Some(("--sqlserver-authentication", m.as_str())),
            (None, Some(m)) => Some(("SQLSERVER_AUTHENTICATION", m.as_str())),
            _ => None,
        };
        let integrated = match env("SQLSERVER_INTEGRATED_SECURITY").filter(|v| !v.trim().is_empty())
        {
            Some(v) => Some(parse_bool("SQLSERVER_INTEGRATED_SECURITY", &v)?),
            None => None,
        };
        let requested = ado.requested(token.as_deref(), method, integrated)?;
        let from_ado = |keyword: &str| ado.get(keyword).map(str::to_string);

        let mut host = None;
        let mut port = None;
        if let Some(server) = from_ado("data source") {
            let (h, p) = split_server(CS, &server)?;
            host = Some(h);
            port = p;
        }
        if let Some(h) = env("SQLSERVER_HOST").filter(|s| !s.trim().is_empty()) {
            let (h, p) = split_server("SQLSERVER_HOST", &h)?;
            host = Some(h);
            port = p.or(port);
        }
        if let Some(p) = env("SQLSERVER_PORT").filter(|s| !s.trim().is_empty()) {
            port = Some(p.trim().parse().map_err(|_| SettingsError::Invalid {
                source_name: "SQLSERVER_PORT".into(),
                message: format!("'{p}' is not a port number"),
            })?);
        }
        if let Some(h) = &flags.host {
            let (h, p) = split_server("--sqlserver-host", h)?;
            host = Some(h);
            port = p.or(port);
        }
        port = flags.port.or(port);
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or(SettingsError::MissingHost)?;

        let pick = |flag: &Option<String>, var: &str, keyword: &str| -> Option<String> {
            flag.clone()
                .or_else(|| env(var).filter(|s| !s.is_empty()))
                .or_else(|| from_ado(keyword))
        };
        let database =
            pick(&flags.database, "SQLSERVER_DATABASE", "initial catalog").unwrap_or_default();
        let username = pick(&flags.username, "SQLSERVER_USERNAME", "user id").unwrap_or_default();
        let password = pick(&flags.password, "SQLSERVER_PASSWORD", "password").unwrap_or_default();
        let authentication = match requested {
            Requested::SqlPassword => Authentication::SqlPassword,
            Requested::Kerberos => {
                // Where Windows authentication was asked for, for errors.
                let source = if integrated.is_some() {
                    "SQLSERVER_INTEGRATED_SECURITY"
                } else {
                    CS
                };
                if !username.is_empty() || !password.is_empty() {
                    return Err(SettingsError::Invalid {
                        source_name: source.into(),
                        message: "Windows authentication (Integrated Security) signs in as the Kerberos principal of the credential cache or keytab (KRB5CCNAME, KRB5_CLIENT_KTNAME); remove the user name and password".into(),
                    });
                }
                if !cfg!(feature = "kerberos") {
                    return Err(SettingsError::Invalid {
                        source_name: source.into(),
                        message: "this build of the bridge has no Kerberos (built without the kerberos feature)".into(),
                    });
                }
                Authentication::Kerberos
            }
            Requested::AccessToken(token) => {
                if !username.is_empty() || !password.is_empty() {
                    return Err(SettingsError::Invalid {
                        source_name: "SQLSERVER_ACCESS_TOKEN".into(),
                        message: "an access token signs in on its own; unset SQLSERVER_USERNAME and SQLSERVER_PASSWORD (or the flags)".into(),
                    });
                }
                Authentication::AccessToken(token)
            }
            Requested::Entra(method) => Authentication::Entra(entra::resolve(
                method,
                &Given {
                    source: method_source(flags, method_var.as_deref()),
                    user_id: &username,
                    password: &password,
                    env,
                },
            )?),
        };
        let (app_source, application_name) = env("SQLSERVER_APPLICATION_NAME")
            .filter(|s| !s.trim().is_empty())
            .map(|v| ("SQLSERVER_APPLICATION_NAME", v))
            .or_else(|| {
                from_ado("application name")
                    .filter(|s| !s.trim().is_empty())
                    .map(|v| (CS, v))
            })
            .unwrap_or((CS, DEFAULT_APPLICATION_NAME.to_string()));
        if application_name.chars().count() > 128 {
            return Err(SettingsError::Invalid {
                source_name: app_source.into(),
                message: "an application name can be 128 characters or less".into(),
            });
        }
        let encrypt = match (
            &flags.encrypt,
            env("SQLSERVER_ENCRYPT"),
            from_ado("encrypt"),
        ) {
            (Some(v), _, _) => parse_encrypt("--sqlserver-encrypt", v)?,
            (None, Some(v), _) if !v.is_empty() => parse_encrypt("SQLSERVER_ENCRYPT", &v)?,
            (None, _, Some(v)) => parse_encrypt(CS, &v)?,
            _ => Encrypt::On,
        };
        let trust_server_certificate = match (
            flags.trust_server_certificate,
            env("SQLSERVER_TRUST_SERVER_CERTIFICATE"),
            from_ado("trust server certificate"),
        ) {
            (Some(b), _, _) => b,
            (None, Some(v), _) if !v.is_empty() => {
                parse_bool("SQLSERVER_TRUST_SERVER_CERTIFICATE", &v)?
            }
            (None, _, Some(v)) => parse_bool(CS, &v)?,
            _ => false,
        };
        let ca_file = flags.ca_file.clone().or_else(|| {
            env("SQLSERVER_CA_FILE")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        // The variable wins over the connection string; an error names
        // whichever gave the value.
        let packet_size = match env("SQLSERVER_PACKET_SIZE")
            .filter(|s| !s.is_empty())
            .map(|v| ("SQLSERVER_PACKET_SIZE", v))
            .or_else(|| from_ado("packet size").map(|v| (CS, v)))
        {
            None => DEFAULT_PACKET_SIZE,
            Some((source_name, v)) => match v.trim().parse::<u32>() {
                Ok(n) if (512..=32767).contains(&n) => n,
                _ => {
                    return Err(SettingsError::Invalid {
                        source_name: source_name.into(),
                        message: format!("packet size '{v}' is not a number from 512 to 32767"),
                    })
                }
            },
        };
        let port = port.unwrap_or(1433);
        if let Some(spn) = from_ado("server spn").filter(|s| !s.trim().is_empty()) {
            let own = format!("MSSQLSvc/{host}:{port}");
            if !spn.trim().eq_ignore_ascii_case(&own) {
                return Err(SettingsError::Invalid {
                    source_name: CS.into(),
                    message: format!(
                        "ServerSPN '{spn}' is not supported: the bridge asks Kerberos for {own}, the service of the host and port it connects to; connect with the host name the SPN names"
                    ),
                });
            }
        }
        Ok(SqlServerSettings {
            host,
            port,
            database,
            username,
            password,
            encrypt,
            trust_server_certificate,
            ca_file,
            packet_size,
            application_name,
            authentication,
        })
    }
}

/// How the bridge authenticates to Databricks.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabricksAuth {
    /// Personal access token.
    Token(String),
    /// OAuth machine-to-machine: a service principal's id and secret.
    OAuthM2M {
        client_id: String,
        client_secret: String,
    },
    /// Microsoft Entra ID tokens for Azure Databricks, got by the bridge
    /// (the SDKs' `azure-client-secret`, `azure-msi`, `azure-cli`).
    Entra(Box<super::entra::EntraSignIn>),
}

/// Whether a bearer token is a Microsoft Entra ID access token for Azure
/// Databricks (its `aud` is the AzureDatabricks application), which a
/// workspace takes in place of a personal access token
/// (https://learn.microsoft.com/en-us/azure/databricks/dev-tools/auth/oauth-m2m#microsoft-entra-id).
/// Only read to name the method; the workspace judges the token.
fn is_entra_token(token: &str) -> bool {
    use base64::Engine;
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|c| c["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d")
}

impl fmt::Display for DatabricksAuth {
    /// How `test-connection` and readiness name the method (never the secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabricksAuth::Token(t) if is_entra_token(t) => f.write_str("Entra ID access token"),
            DatabricksAuth::Token(_) => f.write_str("personal access token"),
            DatabricksAuth::OAuthM2M { client_id, .. } => {
                write!(f, "OAuth M2M, client id {client_id}")
            }
            DatabricksAuth::Entra(e) => e.fmt(f),
        }
    }
}

impl fmt::Debug for DatabricksAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabricksAuth::Token(_) => f.write_str("Token(<redacted>)"),
            DatabricksAuth::OAuthM2M { client_id, .. } => f
                .debug_struct("OAuthM2M")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            DatabricksAuth::Entra(e) => write!(f, "Entra({e:?})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabricksSettings {
    /// The workspace URL, e.g. `https://adb-123.azuredatabricks.net`, without a trailing slash.
    pub host: String,
    pub auth: DatabricksAuth,
}

/// The Databricks SDKs' Azure methods.
#[derive(Clone, Copy)]
enum AzureKind {
    ClientSecret,
    Msi,
    Cli,
}

fn invalid_auth(message: &str) -> SettingsError {
    SettingsError::Invalid {
        source_name: "Databricks authentication".into(),
        message: message.into(),
    }
}

/// The Databricks unified auth's Azure methods, with its variables and
/// profile keys (`ARM_CLIENT_ID`/`azure_client_id`,
/// `ARM_CLIENT_SECRET`/`azure_client_secret`, `ARM_TENANT_ID`/
/// `azure_tenant_id`, `ARM_USE_MSI`/`azure_use_msi`)
/// (https://learn.microsoft.com/en-us/azure/databricks/dev-tools/auth/azure-sp),
/// as Entra ID credentials; the authority host is `AZURE_AUTHORITY_HOST`
/// as for SQL Server.
fn azure_auth(
    kind: AzureKind,
    get: &dyn Fn(&str, &str) -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DatabricksAuth, SettingsError> {
    use super::entra::{EntraCredential, EntraSignIn};
    let client_id = get("ARM_CLIENT_ID", "azure_client_id");
    let tenant = get("ARM_TENANT_ID", "azure_tenant_id");
    let credential = match kind {
        AzureKind::ClientSecret => match (client_id, get("ARM_CLIENT_SECRET", "azure_client_secret"), tenant) {
            (Some(client_id), Some(secret), Some(tenant_id)) => EntraCredential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            },
            _ => {
                return Err(invalid_auth(
                    "azure-client-secret needs ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID (or azure_client_id, azure_client_secret, azure_tenant_id in the profile)",
                ))
            }
        },
        AzureKind::Msi => EntraCredential::ManagedIdentity { client_id },
        AzureKind::Cli => EntraCredential::AzureCli { tenant_id: tenant },
    };
    let authority_host = env("AZURE_AUTHORITY_HOST").filter(|h| !h.trim().is_empty());
    if let Some(h) = &authority_host {
        if !h.starts_with("https://") {
            return Err(SettingsError::Invalid {
                source_name: "AZURE_AUTHORITY_HOST".into(),
                message: format!("'{h}' is not an https:// URL"),
            });
        }
    }
    Ok(DatabricksAuth::Entra(Box::new(EntraSignIn {
        credential,
        authority_host,
    })))
}

/// Reads one profile of a `~/.databrickscfg` (INI) file.
pub fn databrickscfg_profile(text: &str, profile: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if current.eq_ignore_ascii_case(profile) {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

impl DatabricksSettings {
    /// Resolves host and credentials: flags, then environment, then the
    /// `~/.databrickscfg` profile (`DATABRICKS_CONFIG_PROFILE`, default DEFAULT).
    pub fn resolve(
        host_flag: Option<&str>,
        token_flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        cfg_text: Option<&str>,
    ) -> Result<DatabricksSettings, SettingsError> {
        let profile_name = env("DATABRICKS_CONFIG_PROFILE").unwrap_or_else(|| "DEFAULT".into());
        let profile = cfg_text
            .map(|t| databrickscfg_profile(t, &profile_name))
            .unwrap_or_default();
        let get = |var: &str, key: &str| {
            env(var)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| profile.get(key).cloned())
        };
        let host = host_flag
            .map(str::to_string)
            .or_else(|| get("DATABRICKS_HOST", "host"))
            .ok_or(SettingsError::MissingDatabricksHost)?;
        let host = host.trim().trim_end_matches('/').to_string();
        let host = if host.starts_with("http://") || host.starts_with("https://") {
            host
        } else {
            format!("https://{host}")
        };
        let token = token_flag
            .map(str::to_string)
            .or_else(|| get("DATABRICKS_TOKEN", "token"));
        let client_id = get("DATABRICKS_CLIENT_ID", "client_id");
        let client_secret = get("DATABRICKS_CLIENT_SECRET", "client_secret");
        let azure = |kind: AzureKind| azure_auth(kind, &get, env);
        let auth = match get("DATABRICKS_AUTH_TYPE", "auth_type").as_deref() {
            Some("pat") => DatabricksAuth::Token(token.ok_or_else(|| {
                invalid_auth("auth_type pat needs DATABRICKS_TOKEN (or token in the profile)")
            })?),
            Some("oauth-m2m") => match (client_id, client_secret) {
                (Some(client_id), Some(client_secret)) => DatabricksAuth::OAuthM2M {
                    client_id,
                    client_secret,
                },
                _ => {
                    return Err(invalid_auth(
                        "auth_type oauth-m2m needs DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET",
                    ))
                }
            },
            Some("azure-client-secret") => azure(AzureKind::ClientSecret)?,
            Some("azure-msi") => azure(AzureKind::Msi)?,
            Some("azure-cli") => azure(AzureKind::Cli)?,
            Some(other) => {
                return Err(invalid_auth(&format!(
                    "auth_type '{other}' is not one the bridge has (pat, oauth-m2m, azure-client-secret, azure-msi, azure-cli)"
                )))
            }
            // The SDKs' default order: a token, OAuth M2M, then Azure.
            None => match (token, client_id, client_secret) {
                (Some(t), _, _) => DatabricksAuth::Token(t),
                (None, Some(client_id), Some(client_secret)) => DatabricksAuth::OAuthM2M {
                    client_id,
                    client_secret,
                },
                _ if get("ARM_CLIENT_SECRET", "azure_client_secret").is_some() => {
                    azure(AzureKind::ClientSecret)?
                }
                _ if get("ARM_USE_MSI", "azure_use_msi")
                    .is_some_and(|v| parse_bool("ARM_USE_MSI", &v).unwrap_or(false)) =>
                {
                    azure(AzureKind::Msi)?
                }
                _ => return Err(SettingsError::MissingDatabricksAuth),
            },
        };
        Ok(DatabricksSettings { host, auth })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn environment_as_in_the_deck() {
        let env = env_of(&[
            ("SQLSERVER_HOST", "sql.example.com,14330"),
            ("SQLSERVER_DATABASE", "KWP_Colombia"),
            ("SQLSERVER_USERNAME", "bridge"),
            ("SQLSERVER_PASSWORD", "s3cr;et"),
        ]);
        let s = SqlServerSettings::resolve(&SqlServerOverrides::default(), &env).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("sql.example.com", 14330));
        assert_eq!(s.database, "KWP_Colombia");
        assert_eq!(s.encrypt, Encrypt::On);
        assert!(!format!("{s:?}").contains("s3cr"));
    }

    #[test]
    fn connection_string_then_env_then_flags() {
        let env = env_of(&[
            (
                "SQLSERVER_CONNECTION_STRING",
                "Server=tcp:db.local,1500;Initial Catalog=Sales;User ID=sa;Password={p;w}}d};Encrypt=false;TrustServerCertificate=True",
            ),
            ("SQLSERVER_DATABASE", "Other"),
        ]);
        let s = SqlServerSettings::resolve(&SqlServerOverrides::default(), &env).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("db.local", 1500));
        assert_eq!(s.database, "Other");
        assert_eq!(s.password, "p;w}d");
        assert_eq!(s.encrypt, Encrypt::Off);
        assert!(s.trust_server_certificate);
        let flags = SqlServerOverrides {
            port: Some(1600),
            encrypt: Some("strict".into()),
            ..Default::default()
        };
        let s = SqlServerSettings::resolve(&flags, &env).unwrap();
        assert_eq!((s.port, s.encrypt), (1600, Encrypt::Strict));
    }

    #[test]
    fn packet_size_from_env_or_connection_string_and_checked() {
        let resolve = |pairs: &[(&str, &str)]| {
            let mut all = vec![("SQLSERVER_HOST", "db")];
            all.extend_from_slice(pairs);
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &env_of(&all))
        };
        assert_eq!(resolve(&[]).unwrap().packet_size, DEFAULT_PACKET_SIZE);
        let cs = ("SQLSERVER_CONNECTION_STRING", "Packet Size=8000");
        assert_eq!(resolve(&[cs]).unwrap().packet_size, 8000);
        let var = ("SQLSERVER_PACKET_SIZE", "32767");
        assert_eq!(resolve(&[cs, var]).unwrap().packet_size, 32767);
        let e = resolve(&[("SQLSERVER_PACKET_SIZE", "65536")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SQLSERVER_PACKET_SIZE") && e.contains("65536"),
            "{e}"
        );
        let e = resolve(&[("SQLSERVER_CONNECTION_STRING", "Packet Size=100")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SQLSERVER_CONNECTION_STRING"), "{e}");
    }

    #[test]
    fn application_name_from_env_or_connection_string() {
        let resolve = |pairs: &[(&str, &str)]| {
            let mut all = vec![("SQLSERVER_HOST", "db")];
            all.extend_from_slice(pairs);
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &env_of(&all))
        };
        assert_eq!(
            resolve(&[]).unwrap().application_name,
            DEFAULT_APPLICATION_NAME
        );
        let cs = ("SQLSERVER_CONNECTION_STRING", "App=ETL");
        assert_eq!(resolve(&[cs]).unwrap().application_name, "ETL");
        let var = ("SQLSERVER_APPLICATION_NAME", "ETL nightly");
        assert_eq!(resolve(&[cs, var]).unwrap().application_name, "ETL nightly");
        let long = "x".repeat(129);
        let e = resolve(&[("SQLSERVER_APPLICATION_NAME", long.as_str())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SQLSERVER_APPLICATION_NAME") && e.contains("128 characters"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let e =
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("SQLSERVER_HOST"));
        let e = SqlServerSettings::resolve(
            &SqlServerOverrides::default(),
            &env_of(&[("SQLSERVER_HOST", "h"), ("SQLSERVER_PORT", "x1")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("SQLSERVER_PORT"), "{e}");
    }

    #[test]
    fn databricks_env_and_profiles() {
        let env = env_of(&[
            ("DATABRICKS_HOST", "adb-1.azuredatabricks.net/"),
            ("DATABRICKS_TOKEN", "dapi1"),
        ]);
        let d = DatabricksSettings::resolve(None, None, &env, None).unwrap();
        assert_eq!(d.host, "https://adb-1.azuredatabricks.net");
        assert_eq!(d.auth, DatabricksAuth::Token("dapi1".into()));
        let cfg = "[DEFAULT]\nhost = https://a\ntoken = t\n\n[sp]\nhost = https://b\nclient_id = id\nclient_secret = S3CRETVALUE\n";
        let env = env_of(&[("DATABRICKS_CONFIG_PROFILE", "sp")]);
        let d = DatabricksSettings::resolve(None, None, &env, Some(cfg)).unwrap();
        assert_eq!(d.host, "https://b");
        assert!(matches!(d.auth, DatabricksAuth::OAuthM2M { .. }));
        assert!(!format!("{d:?}").contains("S3CRETVALUE"));
        assert!(DatabricksSettings::resolve(None, None, &env_of(&[]), None).is_err());
    }
}
