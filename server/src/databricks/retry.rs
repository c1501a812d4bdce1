//! Retries for transient HTTP failures: 429, 500, 502, 503, 504 and
//! connection errors, honouring `Retry-After`; exponential backoff with full
//! jitter otherwise. Only for calls that are safe to repeat.

use std::future::Future;
use std::time::Duration;

use super::auth::DatabricksError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay up to min(cap, base * 2^attempt).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(self.cap);
        let r = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
        ceiling.mul_f64(r)
    }
}

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
            url,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "transient failure; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_cap() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(4),
        };
        for a in 0..40 {
            assert!(p.backoff(a) <= Duration::from_secs(4));
        }
        assert!(p.backoff(1) <= Duration::from_secs(2));
    }
}
