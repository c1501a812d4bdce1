//! Databricks credentials: a personal access token as is, or an OAuth M2M
//! access token fetched with the service principal's id and secret and
//! reused until shortly before it expires.
//!
//! Token endpoint: `POST {host}/oidc/v1/token`, `grant_type=client_credentials`,
//! `scope=all-apis`, client id and secret as HTTP Basic credentials
//! (docs.databricks.com/en/dev-tools/auth/oauth-m2m.html).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::files::http_error;
use crate::config::{DatabricksAuth, DatabricksSettings};

#[derive(Debug, thiserror::Error)]
pub enum DatabricksError {
    #[error("cannot reach Databricks at {url}: {message}")]
    Http { url: String, message: String },
    #[error("Databricks refused the credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("Databricks answered {status} for {url}: {error_code}: {message}")]
    Api {
        url: String,
        status: u16,
        error_code: String,
        message: String,
    },
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
}

impl DatabricksError {
    /// Whether trying again later may succeed: the network, throttling,
    /// and the gateway statuses.
    pub fn is_transient(&self) -> bool {
        match self {
            DatabricksError::Http { .. } => true,
            DatabricksError::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// The documented error body: `{"error_code": ..., "message": ...}`; some
/// endpoints send the code as a number.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error_code: serde_json::Value,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_description: String,
}

/// Decodes a success body, or turns an error status into a typed error.
pub(crate) async fn json_or_error<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: &str,
) -> Result<T, DatabricksError> {
    let status = resp.status();
    let url = &super::redact_url(url);
    let bytes = resp.bytes().await.map_err(|e| DatabricksError::Http {
        url: url.to_string(),
        message: e.without_url().to_string(),
    })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| DatabricksError::Decode {
            url: url.to_string(),
            message: e.to_string(),
        });
    }
    let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = if body.message.is_empty() {
        if body.error_description.is_empty() {
            String::from_utf8_lossy(&bytes).chars().take(300).collect()
        } else {
            body.error_description
        }
    } else {
        body.message
    };
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(DatabricksError::Unauthorized {
            status: status.as_u16(),
            message,
        });
    }
    Err(DatabricksError::Api {
        url: url.to_string(),
        status: status.as_u16(),
        error_code: match body.error_code {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        },
        message,
    })
}

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
