//! The retry policy shared by every call to SQL Server and Databricks that is
//! safe to repeat: a few attempts, exponential backoff with full jitter.

use std::time::Duration;

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

/// Runs `op` until it succeeds, fails for good (`transient == false`) or the
/// attempts run out; `on_retry` hears about each failure that is retried.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    mut on_retry: impl FnMut(u32, &E, Duration),
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, (E, bool)>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err((e, true)) if attempt < policy.attempts.max(1) => {
                let wait = policy.backoff(attempt);
                on_retry(attempt, &e, wait);
                tokio::time::sleep(wait).await;
            }
            Err((e, _)) => return Err(e),
        }
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

    #[tokio::test]
    async fn retries_only_transient_failures() {
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &p,
            |_, _, _| {},
            || {
                calls += 1;
                async { Err(("busy", true)) }
            },
        )
        .await;
        assert_eq!((r, calls), (Err("busy"), 3));
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &p,
            |_, _, _| {},
            || {
                calls += 1;
                async { Err(("bad", false)) }
            },
        )
        .await;
        assert_eq!((r, calls), (Err("bad"), 1));
    }
}
