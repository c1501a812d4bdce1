//! Idempotency keys, kept in the job store beside the jobs they protect.
//!
//! A client that did not hear the answer to a POST cannot tell whether the
//! server acted on it; with an `Idempotency-Key` (draft-ietf-httpapi-
//! idempotency-key-header) it may send the request again, and the server
//! answers with what it answered the first time instead of acting twice.
//! A key belongs to one user: the same key from another user is another
//! key. Each is kept with a fingerprint of its request (to refuse the same
//! key with a different request) and, once the request has been answered,
//! that answer; it expires after the store's time to live.

use rusqlite::{params, OptionalExtension};

use super::store::{JobStore, StoreError};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- NULL while the first request is being processed
    status INTEGER,
    body TEXT,
    location TEXT,
    created_at TEXT NOT NULL,
    -- Unix seconds
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys(expires_at);
";

/// Reservations of a process that stopped cannot be finished by anyone:
/// dropped when the store opens, so a retry runs again.
pub(super) const FORGET_UNFINISHED: &str = "DELETE FROM idempotency_keys WHERE status IS NULL";

/// The answer a request got, as kept for its retries.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    /// The `Location` header, when the answer had one.
    pub location: Option<String>,
}

/// What a request with a key finds in the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Reservation {
    /// The key is new (or expired): it is now reserved for this request,
    /// which must then [`JobStore::complete_key`] or [`JobStore::release_key`].
    Fresh,
    /// The key was used for this same request, which was answered so.
    Replay(StoredAnswer),
    /// The key was used for a different request.
    Mismatch,
    /// The key's first request is still being processed.
    InProgress,
}

/// A stored key: its fingerprint, and the answer once there is one
/// (status, body, location).
type StoredKey = (String, Option<u16>, Option<String>, Option<String>);

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl JobStore {
    /// Looks `key` up for `owner`, reserving it when it is new. Expired
    /// keys are removed first, so a key is reusable after its time to live.
    pub fn reserve_key(
        &self,
        owner: &str,
        key: &str,
        fingerprint: &str,
        ttl_secs: u64,
    ) -> Result<Reservation, StoreError> {
        let now = unix_now();
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?1", [now])?;
        let found: Option<StoredKey> = tx
            .query_row(
                "SELECT fingerprint, status, body, location FROM idempotency_keys
                 WHERE owner = ?1 AND key = ?2",
                params![owner, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let answer = match found {
            None => {
                tx.execute(
                    "INSERT INTO idempotency_keys (owner, key, fingerprint, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        owner,
                        key,
                        fingerprint,
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        now.saturating_add(ttl_secs.min(i64::MAX as u64) as i64)
                    ],
                )?;
                Reservation::Fresh
            }
            Some((stored, _, _, _)) if stored != fingerprint => Reservation::Mismatch,
            Some((_, None, _, _)) => Reservation::InProgress,
            Some((_, Some(status), body, location)) => Reservation::Replay(StoredAnswer {
                status,
                body: body
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("idempotency answer: {e}")))?
                    .unwrap_or(serde_json::Value::Null),
                location,
            }),
        };
        tx.commit()?;
        Ok(answer)
    }

    /// Records the answer to the request that reserved `key`; its retries
    /// get this answer until the key expires (`ttl_secs` from now).
    pub fn complete_key(
        &self,
        owner: &str,
        key: &str,
        answer: &StoredAnswer,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE idempotency_keys SET status = ?3, body = ?4, location = ?5, expires_at = ?6
             WHERE owner = ?1 AND key = ?2",
            params![
                owner,
                key,
                answer.status,
                answer.body.to_string(),
                answer.location,
                unix_now().saturating_add(ttl_secs.min(i64::MAX as u64) as i64)
            ],
        )?;
        Ok(())
    }

    /// Forgets a reservation whose request created nothing (it was refused
    /// or failed), so a retry is processed afresh.
    pub fn release_key(&self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2 AND status IS NULL",
            params![owner, key],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (JobStore, std::path::PathBuf) {
        let p =
            std::env::temp_dir().join(format!("bridge-idem-{tag}-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&p);
        (JobStore::open(&p).unwrap().0, p)
    }

    fn answer(id: &str) -> StoredAnswer {
        StoredAnswer {
            status: 202,
            body: serde_json::json!({ "job_id": id }),
            location: Some(format!("/jobs/{id}")),
        }
    }

    #[test]
    fn a_key_is_reserved_answered_replayed_and_scoped_per_user() {
        let (s, _) = store("cycle");
        assert_eq!(
            s.reserve_key("a", "k1", "f1", 60).unwrap(),
            Reservation::Fresh
        );
        assert_eq!(
            s.reserve_key("a", "k1", "f1", 60).unwrap(),
            Reservation::InProgress
        );
        assert_eq!(
            s.reserve_key("a", "k1", "f2", 60).unwrap(),
            Reservation::Mismatch
        );
        // Another user's key of the same name is its own.
        assert_eq!(
            s.reserve_key("b", "k1", "f2", 60).unwrap(),
            Reservation::Fresh
        );
        s.complete_key("a", "k1", &answer("j1"), 60).unwrap();
        assert_eq!(
            s.reserve_key("a", "k1", "f1", 60).unwrap(),
            Reservation::Replay(answer("j1"))
        );
        assert_eq!(
            s.reserve_key("a", "k1", "f9", 60).unwrap(),
            Reservation::Mismatch
        );
        // A released key (its request created nothing) is new again; an
        // answered one is not released.
        s.release_key("b", "k1").unwrap();
        assert_eq!(
            s.reserve_key("b", "k1", "f3", 60).unwrap(),
            Reservation::Fresh
        );
        s.release_key("a", "k1").unwrap();
        assert!(matches!(
            s.reserve_key("a", "k1", "f1", 60).unwrap(),
            Reservation::Replay(_)
        ));
    }

    #[test]
    fn keys_expire_and_unfinished_ones_do_not_survive_a_restart() {
        let (s, p) = store("expiry");
        assert_eq!(s.reserve_key("a", "k", "f", 0).unwrap(), Reservation::Fresh);
        // Expired at once: the same key is new, even with another request.
        assert_eq!(
            s.reserve_key("a", "k", "g", 60).unwrap(),
            Reservation::Fresh
        );
        assert_eq!(
            s.reserve_key("a", "done", "f", 60).unwrap(),
            Reservation::Fresh
        );
        s.complete_key("a", "done", &answer("j"), 60).unwrap();
        drop(s);
        let (s, _) = JobStore::open(&p).unwrap();
        assert_eq!(
            s.reserve_key("a", "k", "g", 60).unwrap(),
            Reservation::Fresh
        );
        assert_eq!(
            s.reserve_key("a", "done", "f", 60).unwrap(),
            Reservation::Replay(answer("j"))
        );
    }
}
