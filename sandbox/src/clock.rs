//! The doubles' clock: the machine's time plus an offset a test can move
//! forward, so that what a real service does as days pass (Delta's log
//! cleanup after `delta.logRetentionDuration`, VACUUM after
//! `delta.deletedFileRetentionDuration`, Change Tracking's cleanup after
//! `CHANGE_RETENTION`) happens in a test that runs for seconds.
//!
//! Test-only: a real service's clock is not movable. Each double has its
//! own (`DatabricksHandle::clock`, `SqlServerHandle::clock`); clones share
//! one offset, so a test may hand one clock to both doubles. Moving it
//! backwards is refused: services see time go forward only, and commit
//! timestamps must keep increasing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// A clock whose clones share one offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    /// Now, as the doubles see it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Now in UTC without a zone, as the engines store it.
    pub fn now_utc(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Now in the machine's local zone (SQL Server's GETDATE()).
    pub fn now_local(&self) -> DateTime<chrono::Local> {
        self.now().with_timezone(&chrono::Local)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                Some(o.saturating_add(ms))
            })
            .ok();
    }

    /// How far ahead of the machine's time the clock is.
    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset_and_time_only_goes_forward() {
        let a = Clock::new();
        let b = a.clone();
        let before = b.now();
        a.advance(Duration::from_secs(31 * 86_400));
        let after = b.now();
        assert!(after - before >= chrono::Duration::days(31));
        assert_eq!(b.offset(), Duration::from_secs(31 * 86_400));
        assert!(Clock::new().now() < after);
    }
}
