//! Microsoft Entra ID tokens for the bridge's own identity, for SQL Server
//! (`https://database.windows.net/.default`) and Azure Databricks (the
//! AzureDatabricks application's scope), got by Microsoft's Azure Identity
//! library for Rust (`azure_identity`) — the OAuth is its, not ours.
//!
//! One credential per configuration for the whole process, as SqlClient
//! keeps one token cache per process: the library caches each scope's token
//! and gets a new one when it is within five minutes of expiring, so every
//! new connection of a pool, and every connection a long job opens hours
//! later, signs in with a token that is still good. A connection already
//! signed in is not affected by its token expiring afterwards.

mod certificate;
mod chain;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientOptions;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::{EntraCredential, EntraSignIn};

/// Azure SQL's scope.
pub const AZURE_SQL_SCOPE: &str = "https://database.windows.net/.default";

/// Azure Databricks' scope: its first-party application's id.
/// https://learn.microsoft.com/en-us/azure/databricks/dev-tools/auth/oauth-m2m#microsoft-entra-id
pub const AZURE_DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";

/// The public cloud's authority host.
const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Why no token could be had; never holds a secret (the library's errors
/// carry Entra ID's answer, which names the application, not its secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EntraError(pub String);

type Credentials = Mutex<HashMap<EntraSignIn, Arc<dyn TokenCredential>>>;

fn credentials() -> &'static Credentials {
    static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
    CREDENTIALS.get_or_init(Default::default)
}

/// Tokens from the program embedding the bridge: asked once per new
/// connection; the source caches and renews them itself (an Azure Identity
/// credential does). Its answer is the token, or why there is none.
pub trait TokenSource: Send + Sync {
    fn token(&self, scope: &str) -> Result<String, String>;
}

type Provided = Mutex<HashMap<String, Arc<dyn TokenSource>>>;

fn provided() -> &'static Provided {
    static PROVIDED: OnceLock<Provided> = OnceLock::new();
    PROVIDED.get_or_init(Default::default)
}

/// Registers a program's token source; the sign-in that uses it.
pub fn provide(source: Arc<dyn TokenSource>) -> Result<EntraSignIn, EntraError> {
    let name = uuid::Uuid::new_v4().to_string();
    provided()
        .lock()
        .map_err(|_| EntraError("the token sources are unusable after a panic".into()))?
        .insert(name.clone(), source);
    Ok(EntraSignIn {
        credential: EntraCredential::Provided { name },
        authority_host: None,
    })
}

/// A token for `scope` (still good for at least five minutes), got within
/// `timeout`.
pub async fn token(
    sign_in: &EntraSignIn,
    scope: &str,
    timeout: Duration,
) -> Result<String, EntraError> {
    if let EntraCredential::Provided { name } = &sign_in.credential {
        let source = provided()
            .lock()
            .map_err(|_| EntraError("the token sources are unusable after a panic".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| EntraError(format!("no token source is registered as {name}")))?;
        let scope = scope.to_string();
        // The source may block (a Python call): off the runtime's threads.
        let asked = tokio::task::spawn_blocking(move || source.token(&scope));
        return match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(Ok(token))) => Ok(token),
            Ok(Ok(Err(why))) => Err(EntraError(one_line(&why))),
            Ok(Err(e)) => Err(EntraError(format!("the token source failed: {e}"))),
            Err(_) => Err(EntraError(format!(
                "the token source did not answer within {} s",
                timeout.as_secs()
            ))),
        };
    }
    let credential = credential(sign_in)?;
    match tokio::time::timeout(timeout, credential.get_token(&[scope], None)).await {
        Ok(Ok(t)) => Ok(t.token.secret().to_string()),
        Ok(Err(e)) => Err(EntraError(one_line(&e.to_string()))),
        Err(_) => Err(EntraError(format!(
            "Microsoft Entra ID did not answer within {} s",
            timeout.as_secs()
        ))),
    }
}

/// The library's messages end with a troubleshooting link on a line of
/// its own; a log line keeps it on one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn credential(sign_in: &EntraSignIn) -> Result<Arc<dyn TokenCredential>, EntraError> {
    let mut map = credentials()
        .lock()
        .map_err(|_| EntraError("the token cache is unusable after a panic".into()))?;
    if let Some(c) = map.get(sign_in) {
        return Ok(c.clone());
    }
    let c = build(sign_in)?;
    map.insert(sign_in.clone(), c.clone());
    Ok(c)
}

/// The library's options: the configured authority host as a custom
/// cloud, so the setting is the bridge's (`AZURE_AUTHORITY_HOST` as its
/// settings read it) whatever the process environment holds.
fn client_options(sign_in: &EntraSignIn) -> ClientOptions {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = sign_in
        .authority_host
        .clone()
        .unwrap_or_else(|| PUBLIC_AUTHORITY.to_string());
    ClientOptions {
        cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
        ..ClientOptions::default()
    }
}

/// The token endpoint of `tenant`, which a certificate assertion names as
/// its audience.
fn token_endpoint(sign_in: &EntraSignIn, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        sign_in
            .authority_host
            .as_deref()
            .unwrap_or(PUBLIC_AUTHORITY)
            .trim_end_matches('/')
    )
}

fn build(sign_in: &EntraSignIn) -> Result<Arc<dyn TokenCredential>, EntraError> {
    let fail = |e: azure_core::Error| EntraError(one_line(&e.to_string()));
    let options = client_options(sign_in);
    Ok(match &sign_in.credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            Secret::new(secret.clone()),
            Some(ClientSecretCredentialOptions {
                client_options: options,
            }),
        )
        .map_err(fail)?,
        EntraCredential::ClientCertificate {
            tenant_id,
            client_id,
            path,
        } => {
            let assertion = certificate::CertificateAssertion::load(
                path,
                client_id,
                &token_endpoint(sign_in, tenant_id),
            )?;
            ClientAssertionCredential::new(
                tenant_id.clone(),
                client_id.clone(),
                assertion,
                Some(ClientAssertionCredentialOptions {
                    client_options: options,
                }),
            )
            .map_err(fail)?
        }
        EntraCredential::ManagedIdentity { client_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options: options,
            }))
            .map_err(fail)?
        }
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
            credential_options: ClientAssertionCredentialOptions {
                client_options: options,
            },
            client_id: Some(client_id.clone()),
            tenant_id: Some(tenant_id.clone()),
            token_file_path: Some(token_file.clone()),
        }))
        .map_err(fail)?,
        EntraCredential::Provided { name } => {
            return Err(EntraError(format!(
                "the token source {name} is asked directly, not through a credential"
            )))
        }
        EntraCredential::AzureCli { tenant_id } => {
            AzureCliCredential::new(Some(AzureCliCredentialOptions {
                tenant_id: tenant_id.clone(),
                ..AzureCliCredentialOptions::default()
            }))
            .map_err(fail)?
        }
        EntraCredential::Default { client_id } => Arc::new(chain::DefaultChain::from_environment(
            sign_in,
            client_id.clone(),
        )?),
    })
}
