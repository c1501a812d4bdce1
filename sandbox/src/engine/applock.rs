//! Application locks: `sp_getapplock` / `sp_releaseapplock`
//! (https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/sp-getapplock-transact-sql,
//! https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/sp-releaseapplock-transact-sql),
//! shared by every session of the server.
//!
//! A lock is named by the current database, the `@DbPrincipal` (default
//! `public`) and `@Resource`, compared binary (case-sensitive whatever the
//! collation; truncated to 255 characters). Its owner is the session's
//! current transaction (`Transaction`, the default: only inside one,
//! released when it commits or rolls back) or the session (`Session`:
//! released by `sp_releaseapplock` or when the session ends). Requests by
//! the same owner count: a lock is released when released as many times as
//! it was taken, and held in the stronger of the modes asked. Modes are
//! compatible as SQL Server's lock compatibility table says
//! (https://learn.microsoft.com/sql/relational-databases/sql-server-transaction-locking-and-row-versioning-guide#lock_compatibility).
//! Return codes: 0 granted at once, 1 granted after waiting, -1 timed out,
//! -999 a bad parameter or call.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    IntentShared,
    Shared,
    Update,
    IntentExclusive,
    Exclusive,
}

impl Mode {
    /// `@LockMode`, as the documentation spells it (case-insensitive).
    pub fn parse(text: &str) -> Option<Mode> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "intentshared" => Mode::IntentShared,
            "shared" => Mode::Shared,
            "update" => Mode::Update,
            "intentexclusive" => Mode::IntentExclusive,
            "exclusive" => Mode::Exclusive,
            _ => return None,
        })
    }

    /// Whether `self` may be granted while another owner holds `held`.
    fn compatible(self, held: Mode) -> bool {
        use Mode::*;
        match (self, held) {
            (Exclusive, _) | (_, Exclusive) => false,
            (IntentShared, _) | (_, IntentShared) => true,
            (Shared, Shared) | (Shared, Update) | (Update, Shared) => true,
            (IntentExclusive, IntentExclusive) => true,
            _ => false,
        }
    }

    /// The mode an owner holds after asking for `self` and `other`: the
    /// stronger one (Exclusive where neither covers the other).
    fn union(self, other: Mode) -> Mode {
        use Mode::*;
        match (self, other) {
            (a, b) if a == b => a,
            (IntentShared, b) | (b, IntentShared) => b,
            (Shared, Update) | (Update, Shared) => Update,
            _ => Exclusive,
        }
    }
}

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    Session(u16),
    /// A session's transaction (its descriptor).
    Transaction(u16, u64),
}

impl Owner {
    fn spid(self) -> u16 {
        match self {
            Owner::Session(s) | Owner::Transaction(s, _) => s,
        }
    }
}

#[derive(Debug)]
struct Grant {
    owner: Owner,
    mode: Mode,
    count: u32,
}

/// (database, principal, resource).
type Key = (String, String, String);

/// The server's application locks.
#[derive(Default)]
pub struct AppLocks {
    held: Mutex<HashMap<Key, Vec<Grant>>>,
    released: Condvar,
}

fn key(db: &str, principal: &str, resource: &str) -> Key {
    let resource: String = resource.chars().take(255).collect();
    (
        db.to_ascii_lowercase(),
        principal.trim().to_ascii_lowercase(),
        resource,
    )
}

impl AppLocks {
    /// `sp_getapplock`: waits up to `timeout` (`None`: until granted); the
    /// return code.
    pub fn acquire(
        &self,
        db: &str,
        principal: &str,
        resource: &str,
        owner: Owner,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> i32 {
        let k = key(db, principal, resource);
        let deadline = timeout.map(|t| Instant::now() + t);
        let Ok(mut held) = self.held.lock() else {
            return -999;
        };
        let mut waited = false;
        loop {
            let grants = held.entry(k.clone()).or_default();
            // A session's own locks never block it (its transaction's and its own).
            let free = grants
                .iter()
                .filter(|g| g.owner.spid() != owner.spid())
                .all(|g| mode.compatible(g.mode));
            if free {
                match grants.iter_mut().find(|g| g.owner == owner) {
                    Some(g) => {
                        g.count += 1;
                        g.mode = g.mode.union(mode);
                    }
                    None => grants.push(Grant {
                        owner,
                        mode,
                        count: 1,
                    }),
                }
                return i32::from(waited);
            }
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return -1,
                },
            };
            waited = true;
            held = match self.released.wait_timeout(held, wait) {
                Ok((h, _)) => h,
                Err(_) => return -999,
            };
        }
    }

    /// `sp_releaseapplock`: whether `owner` held the lock (one count of it
    /// released).
    pub fn release(&self, db: &str, principal: &str, resource: &str, owner: Owner) -> bool {
        let k = key(db, principal, resource);
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let Some(grants) = held.get_mut(&k) else {
            return false;
        };
        let Some(i) = grants.iter().position(|g| g.owner == owner) else {
            return false;
        };
        grants[i].count -= 1;
        if grants[i].count == 0 {
            grants.remove(i);
            if grants.is_empty() {
                held.remove(&k);
            }
            self.released.notify_all();
        }
        true
    }

    /// Releases every lock of the session (it ended: `transactions_only`
    /// false) or of its transactions (one committed or rolled back).
    pub fn release_all(&self, spid: u16, transactions_only: bool) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        let before: usize = held.values().map(Vec::len).sum();
        for grants in held.values_mut() {
            grants.retain(|g| match g.owner {
                Owner::Session(s) => transactions_only || s != spid,
                Owner::Transaction(s, _) => s != spid,
            });
        }
        held.retain(|_, g| !g.is_empty());
        if held.values().map(Vec::len).sum::<usize>() != before {
            self.released.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_compatibility_table() {
        use Mode::*;
        let all = [IntentShared, Shared, Update, IntentExclusive, Exclusive];
        // Rows: requested; columns: held (IS S U IX X).
        let table = [
            [true, true, true, true, false],
            [true, true, true, false, false],
            [true, true, false, false, false],
            [true, false, false, true, false],
            [false, false, false, false, false],
        ];
        for (i, r) in all.iter().enumerate() {
            for (j, h) in all.iter().enumerate() {
                assert_eq!(r.compatible(*h), table[i][j], "{r:?} vs {h:?}");
            }
        }
    }

    #[test]
    fn owners_count_and_sessions_release_theirs() {
        let l = AppLocks::default();
        let (a, b) = (Owner::Session(51), Owner::Session(52));
        assert_eq!(
            l.acquire("d", "public", "R", a, Mode::Exclusive, Some(Duration::ZERO)),
            0
        );
        assert_eq!(
            l.acquire("d", "public", "R", a, Mode::Exclusive, Some(Duration::ZERO)),
            0
        );
        assert_eq!(
            l.acquire("d", "public", "R", b, Mode::Shared, Some(Duration::ZERO)),
            -1
        );
        // Binary compared; another database is another lock.
        assert_eq!(
            l.acquire("d", "public", "r", b, Mode::Exclusive, Some(Duration::ZERO)),
            0
        );
        assert_eq!(
            l.acquire("e", "public", "R", b, Mode::Exclusive, Some(Duration::ZERO)),
            0
        );
        assert!(l.release("d", "public", "R", a));
        assert_eq!(
            l.acquire("d", "public", "R", b, Mode::Shared, Some(Duration::ZERO)),
            -1
        );
        assert!(l.release("d", "public", "R", a));
        assert!(!l.release("d", "public", "R", a));
        assert_eq!(
            l.acquire("d", "public", "R", b, Mode::Shared, Some(Duration::ZERO)),
            0
        );
        l.release_all(52, false);
        assert_eq!(
            l.acquire("d", "public", "R", a, Mode::Exclusive, Some(Duration::ZERO)),
            0
        );
    }

    #[test]
    fn a_waiter_is_granted_when_the_holder_ends() {
        let l = std::sync::Arc::new(AppLocks::default());
        let t = Owner::Transaction(60, 1);
        assert_eq!(l.acquire("d", "public", "R", t, Mode::Update, None), 0);
        let waiter = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.acquire(
                    "d",
                    "public",
                    "R",
                    Owner::Session(61),
                    Mode::Update,
                    Some(Duration::from_secs(10)),
                )
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        l.release_all(60, true);
        assert_eq!(waiter.join().unwrap(), 1);
    }
}
