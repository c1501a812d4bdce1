//! SNAPSHOT isolation as SQL Server documents it: allowed per database,
//! one consistent view from the first read, write conflicts as 3960
//! (https://learn.microsoft.com/en-us/sql/relational-databases/sql-server-transaction-locking-and-row-versioning-guide).

use super::test_support::*;
use super::*;
use crate::types::Value;

fn i(v: i64) -> Value {
    Value::Int(v)
}

fn setup() -> (Engine, Session) {
    let (e, mut s) = session_in("CREATE DATABASE Iso", "Iso");
    ok(&mut s, "CREATE TABLE dbo.t (id int PRIMARY KEY, v int)");
    ok(&mut s, "INSERT dbo.t VALUES (1, 10), (2, 20)");
    (e, s)
}

fn count(s: &mut Session) -> Value {
    one(s, "SELECT COUNT(*) FROM dbo.t")
}

#[test]
fn snapshot_needs_the_database_to_allow_it() {
    let (_e, mut s) = setup();
    assert_eq!(
        rows(
            &mut s,
            "SELECT name, snapshot_isolation_state, snapshot_isolation_state_desc FROM sys.databases \
             WHERE name IN ('master', 'msdb', 'Iso') ORDER BY name"
        ),
        vec![
            vec![Value::String("Iso".into()), i(0), Value::String("OFF".into())],
            vec![Value::String("master".into()), i(1), Value::String("ON".into())],
            vec![Value::String("msdb".into()), i(1), Value::String("ON".into())],
        ]
    );
    // SET and BEGIN TRAN are fine; the first read of a user table is not.
    ok(
        &mut s,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN; SELECT 1",
    );
    let e = err(&mut s, "SELECT v FROM dbo.t WHERE id = 1");
    assert_eq!(e.number, 3952);
    assert!(
        e.message.contains("accessing database 'Iso'"),
        "{}",
        e.message
    );
    // The catalog stays readable.
    ok(&mut s, "SELECT name FROM sys.tables");
    ok(&mut s, "ROLLBACK");
    // Autocommit statements under SNAPSHOT are snapshot transactions too.
    assert_eq!(err(&mut s, "SELECT COUNT(*) FROM dbo.t").number, 3952);
    ok(&mut s, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    assert_eq!(count(&mut s), i(2));

    assert_eq!(
        err(
            &mut s,
            "BEGIN TRAN; ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON"
        )
        .number,
        226
    );
    ok(&mut s, "ROLLBACK");
    ok(&mut s, "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON");
    assert_eq!(
        one(
            &mut s,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()"
        ),
        i(1)
    );
    ok(&mut s, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT");
    assert_eq!(count(&mut s), i(2));
    assert_eq!(
        err(
            &mut s,
            "ALTER DATABASE master SET ALLOW_SNAPSHOT_ISOLATION OFF"
        )
        .number,
        5058
    );
}

#[test]
fn a_snapshot_transaction_reads_as_of_its_first_read() {
    let (e, mut s) = setup();
    ok(&mut s, "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON");
    ok(&mut s, "CREATE TABLE dbo.u (id int PRIMARY KEY)");
    let mut other = e.session("Iso").unwrap();
    ok(&mut other, "SET LOCK_TIMEOUT 2000");

    ok(
        &mut s,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN",
    );
    // Nothing is read yet: what commits now is still seen.
    ok(&mut other, "INSERT dbo.t VALUES (3, 30)");
    assert_eq!(count(&mut s), i(3));
    // From the first read on, other sessions' commits are not — in any
    // table — and a reader does not hold writers up.
    ok(
        &mut other,
        "INSERT dbo.t VALUES (4, 40); INSERT dbo.u VALUES (1)",
    );
    ok(&mut other, "UPDATE dbo.t SET v = 0 WHERE id = 1");
    assert_eq!(count(&mut s), i(3));
    assert_eq!(one(&mut s, "SELECT COUNT(*) FROM dbo.u"), i(0));
    assert_eq!(one(&mut s, "SELECT v FROM dbo.t WHERE id = 1"), i(10));
    // READ COMMITTED sees them at once.
    assert_eq!(count(&mut other), i(4));
    ok(&mut s, "COMMIT");
    assert_eq!(count(&mut s), i(4));
    assert_eq!(one(&mut s, "SELECT v FROM dbo.t WHERE id = 1"), i(0));
}

#[test]
fn a_snapshot_write_after_another_commit_is_an_update_conflict() {
    let (e, mut s) = setup();
    ok(&mut s, "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON");
    let mut other = e.session("Iso").unwrap();

    // Alone, a snapshot transaction writes and commits.
    ok(
        &mut s,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN; UPDATE dbo.t SET v = 11 WHERE id = 1; COMMIT",
    );
    assert_eq!(one(&mut other, "SELECT v FROM dbo.t WHERE id = 1"), i(11));

    ok(&mut s, "BEGIN TRAN; SELECT v FROM dbo.t WHERE id = 1");
    ok(&mut other, "UPDATE dbo.t SET v = 12 WHERE id = 1");
    let c = run(
        &mut s,
        "UPDATE dbo.t SET v = v + 100 WHERE id = 1; SELECT 'not reached'",
    );
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert_eq!(c.errors[0].number, 3960);
    assert!(
        c.errors[0].message.contains("table 'dbo.t'")
            && c.errors[0].message.contains("database 'Iso'"),
        "{}",
        c.errors[0].message
    );
    // The transaction is rolled back and the batch ends.
    assert!(c.results.is_empty());
    assert!(c
        .envs
        .iter()
        .any(|e| matches!(e, EnvChange::RollbackTran(_))));
    assert_eq!(one(&mut s, "SELECT @@TRANCOUNT"), i(0));
    assert_eq!(one(&mut s, "SELECT v FROM dbo.t WHERE id = 1"), i(12));
}

#[test]
fn snapshot_only_from_the_start_of_a_transaction() {
    let (_e, mut s) = setup();
    ok(&mut s, "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON");
    ok(
        &mut s,
        "BEGIN TRAN; SET TRANSACTION ISOLATION LEVEL SNAPSHOT",
    );
    assert_eq!(err(&mut s, "SELECT COUNT(*) FROM dbo.t").number, 3951);
    ok(&mut s, "ROLLBACK");
    assert_eq!(count(&mut s), i(2));
    // A reset connection is back at READ COMMITTED.
    s.reset();
    ok(
        &mut s,
        "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION OFF",
    );
    assert_eq!(count(&mut s), i(2));
}

/// Microsoft's pattern for reading changes: validate the last version
/// and read CHANGETABLE in one SNAPSHOT transaction, so a cleanup that
/// runs in between cannot take changes from the read
/// (https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/work-with-change-tracking-sql-server).
#[test]
fn change_tracking_cleanup_does_not_reach_into_a_snapshot() {
    let (e, mut s) = setup();
    ok(
        &mut s,
        "ALTER DATABASE Iso SET ALLOW_SNAPSHOT_ISOLATION ON; \
         ALTER DATABASE Iso SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS); \
         ALTER TABLE dbo.t ENABLE CHANGE_TRACKING",
    );
    ok(&mut s, "UPDATE dbo.t SET v = 1 WHERE id = 1");
    ok(&mut s, "UPDATE dbo.t SET v = 2 WHERE id = 2");
    let mut cleaner = e.session("Iso").unwrap();

    ok(
        &mut s,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN",
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.t'))"
        ),
        i(0)
    );
    ok(
        &mut cleaner,
        "EXEC sp_sandbox_change_tracking_cleanup @table_name = N'dbo.t', @version = 2",
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT id, SYS_CHANGE_VERSION FROM CHANGETABLE(CHANGES dbo.t, 0) AS c ORDER BY id"
        ),
        vec![vec![i(1), i(1)], vec![i(2), i(2)]]
    );
    ok(&mut s, "COMMIT");
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.t'))"
        ),
        i(2)
    );
}
