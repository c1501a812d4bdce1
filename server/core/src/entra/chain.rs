//! `Authentication=ActiveDirectoryDefault`: the credentials SqlClient's
//! default chain tries that a service can have, in its order — the
//! environment's application credential (`AZURE_CLIENT_ID` with
//! `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`), workload
//! identity (`AZURE_FEDERATED_TOKEN_FILE`), the host's managed identity,
//! then the Azure CLI's signed-in account
//! (https://learn.microsoft.com/en-us/sql/connect/ado-net/sql/azure-active-directory-authentication#using-default-authentication).
//! The Rust library has no such chain for production (its
//! `DeveloperToolsCredential` holds only the CLIs), so the bridge lists
//! the library's credentials itself. The first that gives a token is kept
//! for the rest of the process; when none does, every one's reason is said.
//! It reads the process environment, as Azure Identity does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use super::{build, EntraError};
use crate::config::{EntraCredential, EntraSignIn};

pub struct DefaultChain {
    links: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    /// The link that gave a token, tried alone from then on.
    chosen: Mutex<Option<usize>>,
}

impl std::fmt::Debug for DefaultChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.links.iter().map(|(n, _)| *n).collect();
        f.debug_struct("DefaultChain")
            .field("links", &names)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl DefaultChain {
    pub fn from_environment(
        sign_in: &EntraSignIn,
        client_id: Option<String>,
    ) -> Result<DefaultChain, EntraError> {
        let with = |credential: EntraCredential| EntraSignIn {
            credential,
            authority_host: sign_in.authority_host.clone(),
        };
        let mut links: Vec<(&'static str, Arc<dyn TokenCredential>)> = vec![];
        let tenant = var("AZURE_TENANT_ID");
        let app = var("AZURE_CLIENT_ID");
        if let (Some(tenant_id), Some(app_id)) = (&tenant, &app) {
            if let Some(secret) = var("AZURE_CLIENT_SECRET") {
                links.push((
                    "environment (AZURE_CLIENT_SECRET)",
                    build(&with(EntraCredential::ClientSecret {
                        tenant_id: tenant_id.clone(),
                        client_id: app_id.clone(),
                        secret,
                    }))?,
                ));
            } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
                links.push((
                    "environment (AZURE_CLIENT_CERTIFICATE_PATH)",
                    build(&with(EntraCredential::ClientCertificate {
                        tenant_id: tenant_id.clone(),
                        client_id: app_id.clone(),
                        path: PathBuf::from(path),
                    }))?,
                ));
            }
        }
        if let (Some(tenant_id), Some(file)) = (&tenant, var("AZURE_FEDERATED_TOKEN_FILE")) {
            if let Some(id) = client_id.clone().or(app.clone()) {
                links.push((
                    "workload identity",
                    build(&with(EntraCredential::WorkloadIdentity {
                        tenant_id: tenant_id.clone(),
                        client_id: id,
                        token_file: PathBuf::from(file),
                    }))?,
                ));
            }
        }
        links.push((
            "managed identity",
            build(&with(EntraCredential::ManagedIdentity {
                client_id: client_id.clone(),
            }))?,
        ));
        links.push((
            "Azure CLI",
            build(&with(EntraCredential::AzureCli { tenant_id: tenant }))?,
        ));
        Ok(DefaultChain {
            links,
            chosen: Mutex::new(None),
        })
    }
}

#[async_trait::async_trait]
impl TokenCredential for DefaultChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.lock().ok().and_then(|c| *c);
        if let Some(i) = chosen {
            return self.links[i].1.get_token(scopes, options).await;
        }
        let mut reasons = vec![];
        for (i, (name, link)) in self.links.iter().enumerate() {
            match link.get_token(scopes, options.clone()).await {
                Ok(t) => {
                    tracing::info!(credential = name, "Entra ID default chain: signed in");
                    if let Ok(mut c) = self.chosen.lock() {
                        *c = Some(i);
                    }
                    return Ok(t);
                }
                Err(e) => reasons.push(format!("{name}: {}", super::one_line(&e.to_string()))),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no credential of the default chain gave a token — {}",
                reasons.join("; ")
            ),
        ))
    }
}
