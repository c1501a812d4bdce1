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
