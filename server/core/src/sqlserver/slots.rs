//! A cap on the connections that work on one SQL Server at once, however
//! many processes share it (a Spark job's executors, several jobs): `cap`
//! slots, each a SQL Server application lock owned by the session that
//! holds it (`sp_getapplock ... @LockOwner = 'Session'`,
//! https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/sp-getapplock-transact-sql).
//! A connection works only while it holds a slot; one that finds every
//! slot taken is closed, not kept idle, and tried again after a pause, so
//! the server sees at most `cap` working connections of the group plus,
//! for a moment, one per waiting task. A session that dies (an executor
//! lost) frees its slot with it: SQL Server releases a session's locks
//! when it ends. Locks live in the connection's current database, so every
//! member of a group connects to the same one.

use std::time::Duration;

use super::Connection;

/// A random number (a v4 UUID's bits; no other random source is needed).
fn random() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// The slots of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    group: String,
    cap: u32,
    /// How long a task may wait for a slot before it fails.
    pub wait: Duration,
}

/// Why a slot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("SQL Server refused the slot's application lock: sp_getapplock returned {0}")]
    Refused(i32),
    #[error(transparent)]
    Sql(#[from] tiberius::error::Error),
}

impl Slots {
    /// `group`: 1–64 characters of `A-Z a-z 0-9 . _ -`; `cap` at least 1.
    pub fn new(group: &str, cap: u32, wait: Duration) -> Result<Slots, String> {
        let ok = (1..=64).contains(&group.len())
            && group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(format!(
                "connection_group '{group}' must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
            ));
        }
        if cap == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(Slots {
            group: group.to_string(),
            cap,
            wait,
        })
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The application lock of slot `i` (binary compared, so exactly this).
    fn resource(&self, i: u32) -> String {
        format!("sqlserver_bridge/{}/{i}", self.group)
    }

    /// Takes a free slot on `conn` (tried from a random one, so waiting
    /// tasks spread), without waiting; `None` when every slot is taken.
    pub async fn try_take(&self, conn: &mut Connection) -> Result<Option<u32>, SlotError> {
        let first = (random() % u64::from(self.cap)) as u32;
        for k in 0..self.cap {
            let i = (first + k) % self.cap;
            let resource = self.resource(i);
            let code = conn
                .query(
                    "DECLARE @r int; EXEC @r = sp_getapplock @Resource = @P1, @LockMode = 'Exclusive', \
                     @LockOwner = 'Session', @LockTimeout = 0; SELECT @r",
                    &[&resource.as_str()],
                )
                .await?
                .into_row()
                .await?
                .and_then(|r| r.get::<i32, _>(0))
                .unwrap_or(-999);
            match code {
                0 | 1 => return Ok(Some(i)),
                -1 => continue,
                other => return Err(SlotError::Refused(other)),
            }
        }
        Ok(None)
    }

    /// Gives slot `i` back (the connection stays open).
    pub async fn give_back(&self, conn: &mut Connection, i: u32) -> Result<(), SlotError> {
        let resource = self.resource(i);
        conn.query(
            "EXEC sp_releaseapplock @Resource = @P1, @LockOwner = 'Session'",
            &[&resource.as_str()],
        )
        .await?
        .into_results()
        .await?;
        Ok(())
    }

    /// The pause before the `attempt`-th try (from 0): 100 ms doubling to
    /// 5 s, jittered down to half, so waiting tasks do not log in together.
    pub fn pause(attempt: u32) -> Duration {
        let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
        let jitter = random() % (base / 2 + 1);
        Duration::from_millis(base - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_caps_are_checked() {
        let s = Slots::new("etl-nightly", 4, Duration::from_secs(1)).unwrap();
        assert_eq!(s.resource(3), "sqlserver_bridge/etl-nightly/3");
        assert!(Slots::new("", 4, Duration::ZERO).is_err());
        assert!(Slots::new("a b", 4, Duration::ZERO).is_err());
        assert!(Slots::new("a", 0, Duration::ZERO).is_err());
        for attempt in 0..20 {
            let p = Slots::pause(attempt);
            assert!(
                p >= Duration::from_millis(50) && p <= Duration::from_secs(5),
                "{p:?}"
            );
        }
    }
}
