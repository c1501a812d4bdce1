//! Change tracking: settings, versions per committed transaction,
//! CHANGETABLE's net operations and types, cleanup and the minimum valid
//! version.

use super::*;
use crate::types::{SqlType, Value};

use super::test_support::{err, ok, one, rows};

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn t(s: &str) -> Value {
    Value::String(s.into())
}

/// (id, operation, version) of CHANGETABLE(CHANGES t, since).
fn changes(s: &mut Session, since: &str) -> Vec<(Value, Value, Value)> {
    rows(
        s,
        &format!(
            "SELECT c.id, c.SYS_CHANGE_OPERATION, c.SYS_CHANGE_VERSION
             FROM CHANGETABLE(CHANGES dbo.t, {since}) AS c ORDER BY c.id"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect()
}

fn setup() -> (Engine, Session) {
    let e = Engine::open(None).unwrap();
    let mut s = e.session("master").unwrap();
    ok(&mut s, "CREATE DATABASE shop; CREATE DATABASE other");
    ok(&mut s, "USE shop");
    ok(
        &mut s,
        "ALTER DATABASE shop SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
    );
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, a varchar(10), b int);
         ALTER TABLE t ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON)",
    );
    (e, s)
}

#[test]
fn settings_and_their_errors() {
    let (_e, mut s) = setup();
    let r = rows(
        &mut s,
        "SELECT DB_NAME(database_id), is_auto_cleanup_on, retention_period, retention_period_units_desc FROM sys.change_tracking_databases",
    );
    assert_eq!(r[0][1..], [Value::Bit(true), i(2), t("DAYS")]);
    let r = rows(
        &mut s,
        "SELECT OBJECT_NAME(object_id), is_track_columns_updated_on, begin_version, min_valid_version FROM sys.change_tracking_tables",
    );
    assert_eq!(r, vec![vec![t("t"), Value::Bit(true), i(0), i(0)]]);
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(0)
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('t'))"
        ),
        i(0)
    );
    ok(&mut s, "CREATE TABLE nopk (a int)");
    assert_eq!(
        err(&mut s, "ALTER TABLE nopk ENABLE CHANGE_TRACKING").number,
        4997
    );
    assert_eq!(
        err(&mut s, "ALTER TABLE t ENABLE CHANGE_TRACKING").number,
        4996
    );
    assert_eq!(
        err(&mut s, "ALTER DATABASE shop SET CHANGE_TRACKING = ON").number,
        5088
    );
    assert_eq!(
        err(&mut s, "ALTER DATABASE shop SET CHANGE_TRACKING = OFF").number,
        22115
    );
    assert_eq!(
        err(&mut s, "ALTER DATABASE master SET CHANGE_TRACKING = ON").number,
        5090
    );
    assert_eq!(
        err(
            &mut s,
            "ALTER DATABASE shop SET CHANGE_TRACKING (CHANGE_RETENTION = 3 WEEKS)"
        )
        .number,
        155
    );
    ok(
        &mut s,
        "ALTER DATABASE shop SET CHANGE_TRACKING (CHANGE_RETENTION = 90 MINUTES)",
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT retention_period FROM sys.change_tracking_databases"
        ),
        i(90)
    );
    let e = err(
        &mut s,
        "USE other; CREATE TABLE x (id int PRIMARY KEY); ALTER TABLE x ENABLE CHANGE_TRACKING",
    );
    assert_eq!(e.number, 1718);
    assert_eq!(e.message, "Change tracking must be enabled on database 'other' before it can be enabled on table 'x'.");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        Value::Null
    );
    ok(&mut s, "USE shop; ALTER TABLE t DISABLE CHANGE_TRACKING");
    assert_eq!(
        err(&mut s, "ALTER TABLE t DISABLE CHANGE_TRACKING").number,
        4998
    );
    ok(&mut s, "ALTER DATABASE shop SET CHANGE_TRACKING = OFF");
    assert_eq!(
        err(&mut s, "ALTER DATABASE shop SET CHANGE_TRACKING = OFF").number,
        5089
    );
}

#[test]
fn one_version_per_committed_transaction_and_net_operations() {
    let (_e, mut s) = setup();
    ok(&mut s, "INSERT t VALUES (1, 'a', 1), (2, 'b', 2)");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(1)
    );
    ok(&mut s, "UPDATE t SET a = 'x' WHERE id = 1");
    ok(
        &mut s,
        "BEGIN TRAN; INSERT t VALUES (3, 'c', 3); UPDATE t SET b = 30 WHERE id = 3; DELETE t WHERE id = 2; COMMIT",
    );
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(3)
    );
    // A rolled-back transaction leaves no version and no change.
    ok(&mut s, "BEGIN TRAN; INSERT t VALUES (9, 'z', 9); ROLLBACK");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(3)
    );
    // Relative to the baseline: inserted after it is 'I', even when updated later.
    assert_eq!(
        changes(&mut s, "0"),
        vec![
            (i(1), t("I"), i(2)),
            (i(2), t("D"), i(3)),
            (i(3), t("I"), i(3))
        ]
    );
    assert_eq!(
        changes(&mut s, "1"),
        vec![
            (i(1), t("U"), i(2)),
            (i(2), t("D"), i(3)),
            (i(3), t("I"), i(3))
        ]
    );
    assert!(changes(&mut s, "3").is_empty());
    assert_eq!(changes(&mut s, "NULL").len(), 3);
    ok(
        &mut s,
        "DECLARE @v bigint = 2; SELECT * FROM CHANGETABLE(CHANGES t, @v) AS c",
    );
    // SYS_CHANGE_COLUMNS lists what the updates assigned.
    let r = rows(
        &mut s,
        "SELECT c.SYS_CHANGE_CREATION_VERSION,
                CHANGE_TRACKING_IS_COLUMN_IN_MASK(COLUMNPROPERTY(OBJECT_ID('t'), 'a', 'ColumnId'), c.SYS_CHANGE_COLUMNS),
                CHANGE_TRACKING_IS_COLUMN_IN_MASK(COLUMNPROPERTY(OBJECT_ID('t'), 'b', 'ColumnId'), c.SYS_CHANGE_COLUMNS)
         FROM CHANGETABLE(CHANGES t, 1) AS c WHERE c.id = 1",
    );
    assert_eq!(r, vec![vec![i(1), Value::Bit(true), Value::Bit(false)]]);
    // Joined to the table: deleted keys come back with NULLs.
    let r = rows(
        &mut s,
        "SELECT c.id, c.SYS_CHANGE_OPERATION, t.a FROM CHANGETABLE(CHANGES t, 0) AS c
         LEFT JOIN t ON t.id = c.id ORDER BY c.id",
    );
    assert_eq!(r[1], vec![i(2), t("D"), Value::Null]);
    assert_eq!(r[0][2], t("x"));
    // A primary key update is a delete and an insert; delete then insert is
    // an update of every column.
    ok(&mut s, "UPDATE t SET id = 10 WHERE id = 3");
    assert_eq!(
        changes(&mut s, "3"),
        vec![(i(3), t("D"), i(4)), (i(10), t("I"), i(4))]
    );
    ok(&mut s, "DELETE t WHERE id = 1");
    ok(&mut s, "INSERT t VALUES (1, 'again', 1)");
    let r = rows(
        &mut s,
        "SELECT SYS_CHANGE_OPERATION, SYS_CHANGE_COLUMNS FROM CHANGETABLE(CHANGES t, 4) AS c WHERE id = 1",
    );
    assert_eq!(r, vec![vec![t("U"), Value::Null]]);
    assert_eq!(
        rows(
            &mut s,
            "SELECT SYS_CHANGE_VERSION, id FROM CHANGETABLE(VERSION t, (id), (10)) AS v"
        ),
        vec![vec![i(4), i(10)]]
    );
    assert!(rows(
        &mut s,
        "SELECT * FROM CHANGETABLE(VERSION t, (id), (77)) AS v"
    )
    .is_empty());
}

#[test]
fn changetable_types_and_errors() {
    let (_e, mut s) = setup();
    let d = rows(
        &mut s,
        "EXEC sp_describe_first_result_set N'SELECT * FROM CHANGETABLE(CHANGES dbo.t, 0) AS c'",
    );
    let described: Vec<(Value, Value)> = d.iter().map(|r| (r[2].clone(), r[5].clone())).collect();
    assert_eq!(
        described,
        vec![
            (t("SYS_CHANGE_VERSION"), t("bigint")),
            (t("SYS_CHANGE_CREATION_VERSION"), t("bigint")),
            (t("SYS_CHANGE_OPERATION"), t("nchar(1)")),
            (t("SYS_CHANGE_COLUMNS"), t("varbinary(4100)")),
            (t("SYS_CHANGE_CONTEXT"), t("varbinary(128)")),
            (t("id"), t("int")),
        ]
    );
    let c = ok(
        &mut s,
        "SELECT * FROM CHANGETABLE(CHANGES t, 0) AS c (v, cv, op, cols, ctx, k)",
    );
    assert_eq!(c.results[0].0[2].name, "op");
    assert_eq!(c.results[0].0[2].sql_type, SqlType::NChar(1));
    assert_eq!(
        err(&mut s, "SELECT * FROM CHANGETABLE(CHANGES t, 0)").number,
        22104
    );
    ok(&mut s, "CREATE TABLE u (id int PRIMARY KEY)");
    let e = err(&mut s, "SELECT * FROM CHANGETABLE(CHANGES u, 0) AS c");
    assert_eq!(e.number, 22105);
    assert_eq!(e.message, "Change tracking is not enabled on table 'u'.");
}

#[test]
fn cleanup_and_truncate_move_the_minimum_valid_version() {
    let (_e, mut s) = setup();
    ok(&mut s, "INSERT t VALUES (1, 'a', 1)");
    ok(&mut s, "INSERT t VALUES (2, 'b', 2)");
    ok(&mut s, "UPDATE t SET b = 5 WHERE id = 1");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(3)
    );
    // Nothing is old enough for a 2-day retention.
    ok(&mut s, "EXEC sys.sp_flush_CT_internal_table_on_demand 't'");
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('t'))"
        ),
        i(0)
    );
    ok(
        &mut s,
        "EXEC sp_sandbox_change_tracking_cleanup @table_name = N'dbo.t', @version = 2",
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('t'))"
        ),
        i(2)
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT cleanup_version, min_valid_version FROM sys.change_tracking_tables"
        ),
        vec![vec![i(2), i(2)]]
    );
    // Records up to version 2 are gone; a client at 2 or later is complete.
    assert_eq!(changes(&mut s, "2"), vec![(i(1), t("U"), i(3))]);
    assert_eq!(changes(&mut s, "0"), vec![(i(1), t("U"), i(3))]);
    // TRUNCATE TABLE: as if tracking had just been enabled.
    ok(&mut s, "TRUNCATE TABLE t");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(4)
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('t'))"
        ),
        i(4)
    );
    assert!(changes(&mut s, "0").is_empty());
    assert_eq!(
        err(&mut s, "EXEC sp_sandbox_change_tracking_cleanup 'nope'").number,
        208
    );
}

#[test]
fn bulk_loads_merges_and_triggers_are_tracked() {
    let (_e, mut s) = setup();
    let target = s
        .bulk_target("INSERT BULK t ([id] int, [a] varchar(10), [b] int)")
        .unwrap()
        .unwrap();
    let mut rows_in = vec![vec![i(1), t("a"), i(1)], vec![i(2), t("b"), i(2)]].into_iter();
    s.bulk_insert(&target, &mut || Ok(rows_in.next())).unwrap();
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(1)
    );
    ok(
        &mut s,
        "MERGE t USING (VALUES (1, 'm'), (5, 'n')) AS src(id, a) ON t.id = src.id
         WHEN MATCHED THEN UPDATE SET a = src.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (src.id, src.a);",
    );
    assert_eq!(
        changes(&mut s, "1"),
        vec![(i(1), t("U"), i(2)), (i(5), t("I"), i(2))]
    );
    // A trigger's writes are part of its statement's transaction and version.
    ok(&mut s, "CREATE TABLE log (n int)");
    ok(
        &mut s,
        "CREATE TRIGGER t_touch ON t AFTER DELETE AS UPDATE t SET b = 0 WHERE id = 5",
    );
    ok(&mut s, "DELETE t WHERE id = 2");
    assert_eq!(
        one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()"),
        i(3)
    );
    assert_eq!(
        changes(&mut s, "2"),
        vec![(i(2), t("D"), i(3)), (i(5), t("U"), i(3))]
    );
}

#[test]
fn change_tracking_context_tags_the_changes() {
    let (_e, mut s) = setup();
    let v0 = one(&mut s, "SELECT CHANGE_TRACKING_CURRENT_VERSION()");
    let Value::Int(v0) = v0 else { panic!("{v0:?}") };
    ok(
        &mut s,
        "DECLARE @originator_id varbinary(128) = CAST('MyApplicationID' AS varbinary(128));
         WITH CHANGE_TRACKING_CONTEXT (@originator_id)
         INSERT t VALUES (1, 'a', 1), (2, 'b', 2);
         INSERT t VALUES (3, 'c', 3)",
    );
    ok(
        &mut s,
        "WITH CHANGE_TRACKING_CONTEXT (0x0102) UPDATE t SET b = 9 WHERE id = 2",
    );
    let got = rows(
        &mut s,
        &format!(
            "SELECT id, SYS_CHANGE_CONTEXT FROM CHANGETABLE(CHANGES t, {v0}) AS c ORDER BY id"
        ),
    );
    assert_eq!(
        got,
        vec![
            vec![i(1), Value::Binary(b"MyApplicationID".to_vec())],
            vec![i(2), Value::Binary(vec![1, 2])],
            vec![i(3), Value::Null],
        ]
    );
    // Only INSERT, UPDATE, DELETE or MERGE may follow: "Incorrect syntax
    // near the keyword 'SELECT'."
    assert_eq!(
        err(&mut s, "WITH CHANGE_TRACKING_CONTEXT (0x01) SELECT 1").number,
        156
    );
}

#[test]
fn automatic_cleanup_moves_the_minimum_valid_version_as_the_clock_passes_the_retention() {
    let (e, mut s) = setup();
    let day = std::time::Duration::from_secs(86_400);
    ok(&mut s, "INSERT t VALUES (1, 'a', 1)");
    e.clock().advance(day);
    ok(&mut s, "INSERT t VALUES (2, 'b', 2)");
    let min = |s: &mut Session| {
        one(
            s,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('t'))",
        )
    };
    assert_eq!(min(&mut s), i(0));
    // A day and a half later version 1 is past the 2-day retention; the
    // next batch after the 30-minute tick runs the cleanup.
    e.clock().advance(day + day / 2);
    assert_eq!(min(&mut s), i(1));
    assert_eq!(changes(&mut s, "1"), vec![(i(2), t("I"), i(2))]);
    // With AUTO_CLEANUP off nothing more goes.
    ok(
        &mut s,
        "ALTER DATABASE shop SET CHANGE_TRACKING (AUTO_CLEANUP = OFF)",
    );
    e.clock().advance(day * 5);
    assert_eq!(min(&mut s), i(1));
    // Back on: the next tick catches up.
    ok(
        &mut s,
        "ALTER DATABASE shop SET CHANGE_TRACKING (AUTO_CLEANUP = ON)",
    );
    e.clock().advance(day);
    assert_eq!(min(&mut s), i(2));
}
