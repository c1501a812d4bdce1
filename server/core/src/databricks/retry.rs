//! Retries for transient HTTP failures: 429, 500, 502, 503, 504 and
//! connection errors, honouring `Retry-After`; exponential backoff with full
//! jitter otherwise. Only for calls that are safe to repeat.

use std::future::Future;
use std::time::Duration;

use super::error::DatabricksError;
pub use crate::retry::RetryPolicy;

fn transient(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends with `send` until a non-transient answer or the attempts run out;
/// the last answer (or error) is returned.
pub async fn send_with_retry<F, Fut>(
    policy: &RetryPolicy,
    url: &str,
    mut send: F,
) -> Result<reqwest::Response, DatabricksError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::Response, DatabricksError>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = send().await;
        let wait = match &result {
            Ok(resp) if transient(resp.status().as_u16()) => retry_after(resp)
                .unwrap_or_else(|| policy.backoff(attempt))
                .min(policy.cap),
            Ok(_) => return result,
            Err(DatabricksError::Http { .. }) => policy.backoff(attempt),
            Err(_) => return result,
        };
        if attempt >= attempts {
            return result;
        }
        tracing::info!(
            url = super::error::redact_url(url),
            attempt,
            wait_ms = wait.as_millis() as u64,
            "transient failure; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}
