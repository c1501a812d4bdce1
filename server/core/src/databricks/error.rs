//! What goes wrong talking to Databricks, said once for every call: the
//! error type, the documented error body, and URLs fit for messages.

use serde::Deserialize;

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
    #[error("no Microsoft Entra ID token for Azure Databricks ({method}): {message}")]
    EntraToken { method: String, message: String },
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
    let url = &redact_url(url);
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

pub(crate) fn http_error(e: reqwest::Error) -> DatabricksError {
    let url = e.url().map(|u| redact_url(u.as_str())).unwrap_or_default();
    DatabricksError::Http {
        url,
        message: e.without_url().to_string(),
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
