//! Databricks over REST: authentication (PAT or OAuth M2M) and the calls
//! the bridge makes.

pub mod auth;
pub mod files;

pub mod retry;
pub mod statements;
pub mod unity;

use std::time::Duration;

use serde::Deserialize;

use crate::config::DatabricksSettings;
pub use auth::{Authenticator, DatabricksError};
use files::http_error;
pub use retry::RetryPolicy;

/// A URL fit for logs and messages: without its query and fragment, where
/// presigned result links keep their credential (`X-Amz-Signature`,
/// `sig`, ...).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            let mut s = u.to_string();
            if had_query {
                s.push_str("?<redacted>");
            }
            s
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

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
        let listing: Listing = auth::json_or_error(resp, &url).await?;
        Ok(listing.warehouses)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn presigned_links_lose_their_credential() {
        let link = "https://bucket.s3.amazonaws.com/results/part-0?X-Amz-Signature=abc123&X-Amz-Credential=AKIA";
        let r = redact_url(link);
        assert_eq!(
            r,
            "https://bucket.s3.amazonaws.com/results/part-0?<redacted>"
        );
        assert!(!r.contains("abc123") && !r.contains("AKIA"));
        assert_eq!(
            redact_url("https://host/api/2.0/sql/statements/1"),
            "https://host/api/2.0/sql/statements/1"
        );
        assert_eq!(redact_url("not a url?sig=1"), "not a url");
    }
}
