//! Databricks credentials: a personal access token as is, or an OAuth M2M
//! access token fetched with the service principal's id and secret and
//! reused until shortly before it expires.
//!
//! Token endpoint: `POST {host}/oidc/v1/token`, `grant_type=client_credentials`,
//! `scope=all-apis`, client id and secret as HTTP Basic credentials
//! (docs.databricks.com/en/dev-tools/auth/oauth-m2m.html). Or a Microsoft
//! Entra ID token for the AzureDatabricks application (`crate::entra`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{http_error, json_or_error, DatabricksError};
use crate::config::{DatabricksAuth, DatabricksSettings};

/// How long getting an Entra ID token may take.
const ENTRA_TIMEOUT: Duration = Duration::from_secs(30);

struct Cached {
    token: String,
    valid_until: Instant,
}

/// Hands out a bearer token for each request.
#[derive(Clone)]
pub struct Authenticator {
    host: String,
    auth: DatabricksAuth,
    http: reqwest::Client,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl Authenticator {
    /// The method this client signs in with.
    pub fn method(&self) -> &DatabricksAuth {
        &self.auth
    }

    pub fn new(settings: &DatabricksSettings, http: reqwest::Client) -> Self {
        Authenticator {
            host: settings.host.clone(),
            auth: settings.auth.clone(),
            http,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// A token valid for at least the next minute.
    pub async fn token(&self) -> Result<String, DatabricksError> {
        let (client_id, client_secret) = match &self.auth {
            DatabricksAuth::Token(t) => return Ok(t.clone()),
            // Entra ID's tokens are cached (and renewed five minutes
            // early) by the credential.
            DatabricksAuth::Entra(sign_in) => {
                return crate::entra::token(
                    sign_in,
                    crate::entra::AZURE_DATABRICKS_SCOPE,
                    ENTRA_TIMEOUT,
                )
                .await
                .map_err(|e| DatabricksError::EntraToken {
                    method: sign_in.to_string(),
                    message: e.0,
                })
            }
            DatabricksAuth::OAuthM2M {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if c.valid_until > Instant::now() {
                return Ok(c.token.clone());
            }
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let url = format!("{}/oidc/v1/token", self.host);
        let resp = self
            .http
            .post(&url)
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await
            .map_err(http_error)?;
        let t: TokenResponse = json_or_error(resp, &url).await?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600));
        // Renew a minute early (or halfway for very short tokens).
        let margin = Duration::from_secs(60).min(lifetime / 2);
        *cache = Some(Cached {
            token: t.access_token.clone(),
            valid_until: Instant::now() + lifetime - margin,
        });
        Ok(t.access_token)
    }
}
