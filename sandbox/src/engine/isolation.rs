//! Transaction isolation levels: a session's (SET TRANSACTION ISOLATION
//! LEVEL, or a TDS transaction-manager BEGIN), and what SNAPSHOT asks of
//! the databases a statement reads
//! (https://learn.microsoft.com/en-us/sql/t-sql/statements/set-transaction-isolation-level-transact-sql).
//!
//! On SQLite (WAL): a SNAPSHOT transaction is a deferred transaction, whose
//! first read fixes the snapshot every later statement reads — SQL Server's
//! "the snapshot is taken when the first statement accesses data". Its
//! first write after another session committed fails with SQLite's
//! BUSY_SNAPSHOT, answered as error 3960. SQL Server compares rows (3960
//! only when another transaction changed a row this one writes); SQLite
//! compares the whole file, so here any commit since the snapshot makes
//! the write conflict. The other levels keep what the sandbox always did:
//! a transaction takes the write lock at BEGIN TRAN.

use super::error::SqlError;

/// A session's isolation level; READ COMMITTED until set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
    Snapshot,
}

impl Isolation {
    /// From a TM_BEGIN_XACT request's isolation byte (MS-TDS 2.2.6.9):
    /// `None` for 0 (leave the session's level as it is) and unknown values.
    pub fn from_tds(code: u8) -> Option<Isolation> {
        Some(match code {
            1 => Isolation::ReadUncommitted,
            2 => Isolation::ReadCommitted,
            3 => Isolation::RepeatableRead,
            4 => Isolation::Serializable,
            5 => Isolation::Snapshot,
            _ => return None,
        })
    }
}

/// What a statement's reads of user tables must check, from the session's
/// level and the level its open transaction started at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotCheck {
    /// Not under SNAPSHOT (or only describing a statement).
    #[default]
    None,
    /// Under SNAPSHOT: each database read must allow it (3952).
    Allowed,
    /// The level became SNAPSHOT inside a transaction that began under
    /// another one (3951).
    NotStartedInSnapshot,
}

/// Errors 3951, 3952 and 3960, as SQL Server words them
/// (https://learn.microsoft.com/en-us/sql/relational-databases/errors-events/database-engine-events-and-errors-3000-to-3999).
impl SqlError {
    pub fn snapshot_not_allowed(db: &str) -> SqlError {
        SqlError::new(
            3952,
            1,
            16,
            format!(
                "Snapshot isolation transaction failed accessing database '{db}' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation."
            ),
        )
    }

    pub fn snapshot_not_started(db: &str) -> SqlError {
        SqlError::new(
            3951,
            1,
            16,
            format!(
                "Transaction failed in database '{db}' because the statement was run under snapshot isolation but the transaction did not start in snapshot isolation. You cannot change the isolation level of the transaction to snapshot after the transaction has started unless the transaction was originally started under snapshot isolation level."
            ),
        )
    }

    /// The write conflict: the transaction is rolled back, the batch ends.
    pub fn snapshot_update_conflict(table: &str, db: &str) -> SqlError {
        SqlError::new(
            3960,
            2,
            16,
            format!(
                "Snapshot isolation transaction aborted due to update conflict. You cannot use snapshot isolation to access table '{table}' directly or indirectly in database '{db}' to update, delete, or insert the row that has been modified or deleted by another transaction. Retry the transaction or change the isolation level for the update/delete statement."
            ),
        )
        .batch()
    }
}
