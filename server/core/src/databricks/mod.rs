//! Databricks over REST: authentication (PAT or OAuth M2M) and the calls
//! the bridge makes.

pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod files;
pub mod names;

pub(crate) mod retry;
pub mod statements;
pub(crate) mod types;
pub(crate) mod unity;

use std::time::Duration;

use serde::Deserialize;

use crate::config::DatabricksSettings;
pub use auth::Authenticator;
use error::http_error;
pub use error::{redact_url, DatabricksError};
pub use retry::RetryPolicy;

/// A Databricks workspace client: one HTTP client, one credential.
#[derive(Clone)]
pub struct Workspace {
    http: reqwest::Client,
    /// For uploads: no read timeout (the answer comes after the body); the
    /// body's own progress is watched instead.
    upload_http: reqwest::Client,
    /// How long a transfer may go without progress.
    idle: Duration,
    auth: Authenticator,
    host: String,
    retry: RetryPolicy,
}

/// One SQL warehouse, as `GET /api/2.0/sql/warehouses` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Warehouse {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: String,
}

impl Workspace {
    pub fn new(
        settings: &DatabricksSettings,
        timeout: Duration,
    ) -> Result<Workspace, DatabricksError> {
        crate::crypto::install_provider();
        // Connect and idle-read limits, not a total one: a large part on a
        // slow link keeps going as long as bytes keep moving.
        let client = |read_timeout: bool| {
            let b = reqwest::Client::builder()
                .connect_timeout(timeout)
                .user_agent(concat!("sql-databricks-bridge/", env!("CARGO_PKG_VERSION")));
            if read_timeout {
                b.read_timeout(timeout)
            } else {
                b
            }
            .build()
            .map_err(|e| DatabricksError::Http {
                url: settings.host.clone(),
                message: e.to_string(),
            })
        };
        let http = client(true)?;
        let upload_http = client(false)?;
        Ok(Workspace {
            auth: Authenticator::new(settings, http.clone()),
            http,
            upload_http,
            idle: timeout,
            host: settings.host.clone(),
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy (attempts, base and cap of the backoff).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How this client signs in (for reports; never the secret).
    pub fn auth_method(&self) -> &crate::config::DatabricksAuth {
        self.auth.method()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://host/<fixed>/<tail>`, each segment percent-encoded, so a
    /// name with `/`, `?` or `#` stays one segment.
    pub(crate) fn api_url(
        &self,
        fixed: &[&str],
        tail: &[&str],
    ) -> Result<reqwest::Url, DatabricksError> {
        let mut url = reqwest::Url::parse(&self.host).map_err(|e| DatabricksError::Http {
            url: self.host.clone(),
            message: e.to_string(),
        })?;
        {
            let mut segs = url.path_segments_mut().map_err(|_| DatabricksError::Http {
                url: self.host.clone(),
                message: "the host URL cannot take a path".into(),
            })?;
            segs.pop_if_empty().extend(fixed).extend(tail);
        }
        Ok(url)
    }

    /// `GET /api/2.0/sql/warehouses`
    /// (docs.databricks.com/api/workspace/warehouses/list).
    pub async fn list_warehouses(&self) -> Result<Vec<Warehouse>, DatabricksError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            warehouses: Vec<Warehouse>,
        }
        let url = format!("{}/api/2.0/sql/warehouses", self.host);
        let token = self.auth.token().await?;
        let resp = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(http_error)?;
        let listing: Listing = error::json_or_error(resp, &url).await?;
        Ok(listing.warehouses)
    }
}
