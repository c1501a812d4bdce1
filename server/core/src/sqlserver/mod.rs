//! SQL Server through tiberius over TCP, with the TLS the settings ask for.

pub mod home;
pub(crate) mod names;
pub mod pool;
pub mod slots;
mod token;
pub(crate) mod types;

use std::time::Duration;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::config::{Authentication, Encrypt, SqlServerSettings};

pub type Connection = Client<Compat<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum SqlServerError {
    #[error("cannot reach SQL Server at {host}:{port}: {message}")]
    Unreachable {
        host: String,
        port: u16,
        message: String,
    },
    #[error("SQL Server at {host}:{port} did not answer within {secs} s")]
    Timeout { host: String, port: u16, secs: u64 },
    #[error("SQL Server refused the login for user '{user}': {message}")]
    Login { user: String, message: String },
    #[error("SQL Server error {number}: {message}")]
    Server { number: u32, message: String },
    #[error("SQL Server's TLS certificate is not trusted ({message}); set SQLSERVER_CA_FILE to its CA, or SQLSERVER_TRUST_SERVER_CERTIFICATE=true on a trusted network")]
    Untrusted { message: String },
    #[error("SQL Server connection failed: {0}")]
    Other(String),
    #[error("the Microsoft Entra ID access token (SQLSERVER_ACCESS_TOKEN) cannot sign in to SQL Server: {0}")]
    AccessToken(String),
    #[error("no Microsoft Entra ID token for SQL Server ({method}): {message}")]
    EntraToken { method: String, message: String },
    #[error("Kerberos sign-in to SQL Server failed: {0} (is there a ticket — kinit, KRB5CCNAME — or a client keytab in KRB5_CLIENT_KTNAME, and does the realm know the service MSSQLSvc/<host>:<port>?)")]
    Kerberos(String),
    #[error("encrypt=strict (TDS 8.0) is not supported by this build; use true or false")]
    StrictUnsupported,
}

/// SQL Server error numbers worth retrying: deadlock victim, lock timeout,
/// and Azure SQL's throttling and failover codes.
const TRANSIENT_NUMBERS: [u32; 12] = [
    1205, 1222, 4060, 4221, 10928, 10929, 40143, 40197, 40501, 40613, 49918, 49919,
];

/// Whether a driver error is worth another attempt.
pub fn is_transient(e: &tiberius::error::Error) -> bool {
    match e {
        tiberius::error::Error::Io { .. } => true,
        tiberius::error::Error::Server(t) => TRANSIENT_NUMBERS.contains(&t.code()),
        _ => false,
    }
}

impl SqlServerError {
    /// Whether connecting again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SqlServerError::Unreachable { .. } | SqlServerError::Timeout { .. } => true,
            SqlServerError::Server { number, .. } => TRANSIENT_NUMBERS.contains(number),
            _ => false,
        }
    }
}

/// The tiberius configuration for these settings; `entra_token` is the
/// token got for an `Authentication::Entra` sign-in.
pub fn tiberius_config(
    s: &SqlServerSettings,
    entra_token: Option<&str>,
) -> Result<Config, SqlServerError> {
    let mut c = Config::new();
    c.host(&s.host);
    c.port(s.port);
    if !s.database.is_empty() {
        c.database(&s.database);
    }
    c.authentication(match &s.authentication {
        Authentication::SqlPassword => AuthMethod::sql_server(&s.username, &s.password),
        Authentication::AccessToken(token) => {
            if let Some(why) = token::unusable(token, chrono::Utc::now().timestamp()) {
                return Err(SqlServerError::AccessToken(why));
            }
            AuthMethod::aad_token(token)
        }
        Authentication::Entra(sign_in) => {
            let token = entra_token.ok_or_else(|| SqlServerError::EntraToken {
                method: sign_in.to_string(),
                message: "no token was got before connecting".into(),
            })?;
            if let Some(why) = token::unusable(token, chrono::Utc::now().timestamp()) {
                return Err(SqlServerError::EntraToken {
                    method: sign_in.to_string(),
                    message: format!("Entra ID gave a token SQL Server cannot take: {why}"),
                });
            }
            AuthMethod::aad_token(token)
        }
        #[cfg(feature = "kerberos")]
        Authentication::Kerberos => AuthMethod::Integrated,
        #[cfg(not(feature = "kerberos"))]
        Authentication::Kerberos => {
            return Err(SqlServerError::Kerberos(
                "this build of the bridge has no Kerberos".into(),
            ))
        }
    });
    c.application_name(&s.application_name);
    c.packet_size(s.packet_size);
    c.encryption(match s.encrypt {
        Encrypt::On => EncryptionLevel::Required,
        Encrypt::Off => EncryptionLevel::Off,
        Encrypt::Strict => return Err(SqlServerError::StrictUnsupported),
    });
    if s.trust_server_certificate {
        c.trust_cert();
    } else if let Some(ca) = &s.ca_file {
        c.trust_cert_ca(ca.display().to_string());
    }
    Ok(c)
}

pub fn classify(e: tiberius::error::Error, s: &SqlServerSettings) -> SqlServerError {
    match e {
        tiberius::error::Error::Server(t) if t.code() == 18456 => SqlServerError::Login {
            user: match &s.authentication {
                Authentication::SqlPassword => s.username.clone(),
                Authentication::AccessToken(_) => "<the access token's principal>".into(),
                Authentication::Entra(sign_in) => format!("<{sign_in}>"),
                Authentication::Kerberos => "<the Kerberos principal>".into(),
            },
            message: t.message().to_string(),
        },
        #[cfg(feature = "kerberos")]
        tiberius::error::Error::Gssapi(message) => SqlServerError::Kerberos(message),
        tiberius::error::Error::Server(t) if t.code() == 18452 => SqlServerError::Login {
            user: "<the Kerberos principal>".into(),
            message: t.message().to_string(),
        },
        tiberius::error::Error::Server(t) => SqlServerError::Server {
            number: t.code(),
            message: t.message().to_string(),
        },
        tiberius::error::Error::Io { message, .. } => SqlServerError::Unreachable {
            host: s.host.clone(),
            port: s.port,
            message,
        },
        tiberius::error::Error::Tls(message) => SqlServerError::Untrusted {
            message: message
                .split(". To connect anyway")
                .next()
                .unwrap_or(&message)
                .to_string(),
        },
        other => SqlServerError::Other(other.to_string()),
    }
}

/// Opens one connection, failing after `timeout`.
pub async fn connect(
    s: &SqlServerSettings,
    timeout: Duration,
) -> Result<Connection, SqlServerError> {
    crate::crypto::install_provider();
    // A token per connection: the credential's cache hands out the one it
    // holds until it is near expiry, then gets another.
    let token = match &s.authentication {
        Authentication::Entra(sign_in) => Some(
            crate::entra::token(sign_in, crate::entra::AZURE_SQL_SCOPE, timeout)
                .await
                .map_err(|e| SqlServerError::EntraToken {
                    method: sign_in.to_string(),
                    message: e.0,
                })?,
        ),
        _ => None,
    };
    let config = tiberius_config(s, token.as_deref())?;
    let attempt = async {
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| SqlServerError::Unreachable {
                host: s.host.clone(),
                port: s.port,
                message: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        Client::connect(config, tcp.compat_write())
            .await
            .map_err(|e| classify(e, s))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| SqlServerError::Timeout {
            host: s.host.clone(),
            port: s.port,
            secs: timeout.as_secs(),
        })?
}

/// What `test-connection` reports about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub version: String,
    pub database: String,
    pub login: String,
    /// What the server knows the program as (`APP_NAME()`).
    pub application: String,
}

/// Connects and asks the server who it is.
pub async fn probe(s: &SqlServerSettings, timeout: Duration) -> Result<ServerInfo, SqlServerError> {
    let mut c = connect(s, timeout).await?;
    let row = c
        .simple_query(
            "SELECT @@VERSION AS v, DB_NAME() AS db, SUSER_SNAME() AS login, APP_NAME() AS app",
        )
        .await
        .map_err(|e| classify(e, s))?
        .into_row()
        .await
        .map_err(|e| classify(e, s))?
        .ok_or_else(|| {
            SqlServerError::Other("the server returned no row for SELECT @@VERSION".into())
        })?;
    let get = |name: &str| row.get::<&str, _>(name).unwrap_or_default().to_string();
    Ok(ServerInfo {
        version: get("v")
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        database: get("db"),
        login: get("login"),
        application: get("app"),
    })
}
