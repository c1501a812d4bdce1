//! Constraints, triggers and bulk-load hints: T-SQL in, SQL Server's rows
//! and errors out.

use super::*;
use crate::types::Value;

use super::test_support::{err, ok, run};

fn int(s: &mut Session, sql: &str) -> i64 {
    match ok(s, sql)
        .results
        .last()
        .and_then(|r| r.1.first())
        .and_then(|r| r.first())
    {
        Some(Value::Int(i)) => *i,
        Some(Value::Bit(b)) => i64::from(*b),
        other => panic!("{sql}: {other:?}"),
    }
}

fn setup() -> (Engine, Session) {
    let e = Engine::open(None).unwrap();
    let mut s = e.session("master").unwrap();
    ok(&mut s, "CREATE DATABASE shop");
    ok(&mut s, "USE shop");
    (e, s)
}

#[test]
fn foreign_keys_refuse_orphans_with_547() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE dbo.pais (id int PRIMARY KEY, nombre varchar(20));
         CREATE TABLE dbo.ciudad (id int PRIMARY KEY, pais_id int REFERENCES dbo.pais(id), nombre varchar(20));
         CREATE TABLE dbo.venta (id int PRIMARY KEY, pais_id int, ciudad_id int,
             CONSTRAINT fk_venta_pais FOREIGN KEY (pais_id) REFERENCES pais (id));
         INSERT pais VALUES (1, 'CO'), (2, 'MX');
         INSERT ciudad VALUES (10, 1, 'Bogota'), (11, NULL, 'Nowhere')",
    );
    let e = err(&mut s, "INSERT venta VALUES (1, 3, NULL)");
    assert_eq!(e.number, 547);
    assert_eq!(
        e.message,
        "The INSERT statement conflicted with the FOREIGN KEY constraint \"fk_venta_pais\". The conflict occurred in database \"shop\", table \"dbo.pais\", column 'id'."
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM venta"), 0);
    ok(&mut s, "INSERT venta VALUES (1, 2, NULL)");
    let e = err(&mut s, "UPDATE venta SET pais_id = 9");
    assert!(
        e.message.starts_with(
            "The UPDATE statement conflicted with the FOREIGN KEY constraint \"fk_venta_pais\""
        ),
        "{e:?}"
    );
    // Deleting a referenced key: the REFERENCE side, naming the referencing table.
    let e = err(&mut s, "DELETE pais WHERE id = 1");
    assert_eq!(e.number, 547);
    assert!(
        e.message.starts_with(
            "The DELETE statement conflicted with the REFERENCE constraint \"FK__ciudad__pais_id__"
        ),
        "{e:?}"
    );
    assert!(
        e.message
            .ends_with("table \"dbo.ciudad\", column 'pais_id'."),
        "{e:?}"
    );
    ok(
        &mut s,
        "DELETE ciudad WHERE pais_id = 1; DELETE pais WHERE id = 1",
    );
    // An unrelated update of a referenced table is fine.
    ok(&mut s, "UPDATE pais SET nombre = 'Mexico' WHERE id = 2");
    // Dropping or truncating a referenced table is refused.
    assert_eq!(err(&mut s, "DROP TABLE pais").number, 3726);
    assert_eq!(err(&mut s, "TRUNCATE TABLE pais").number, 4712);
    let c = ok(
        &mut s,
        "SELECT f.name, OBJECT_NAME(f.referenced_object_id), f.delete_referential_action_desc, f.is_not_trusted, fc.parent_column_id
         FROM sys.foreign_keys f JOIN sys.foreign_key_columns fc ON fc.constraint_object_id = f.object_id
         WHERE f.name = 'fk_venta_pais'",
    );
    let row = &c.results[0].1[0];
    assert_eq!(row[0], Value::String("fk_venta_pais".into()));
    assert_eq!(row[2], Value::String("NO_ACTION".into()));
    assert_eq!(row[3], Value::Bit(false));
    assert_eq!(row[4], Value::Int(2));
}

#[test]
fn self_references_are_checked_per_statement() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE tree (id int PRIMARY KEY, parent int, CONSTRAINT fk_tree FOREIGN KEY (parent) REFERENCES tree(id))",
    );
    let e = err(&mut s, "INSERT tree VALUES (1, 2)");
    assert!(
        e.message
            .contains("FOREIGN KEY SAME TABLE constraint \"fk_tree\""),
        "{e:?}"
    );
    ok(&mut s, "INSERT tree VALUES (1, NULL), (2, 1), (3, 2)");
    let e = err(&mut s, "DELETE tree WHERE id = 1");
    assert!(
        e.message
            .contains("SAME TABLE REFERENCE constraint \"fk_tree\""),
        "{e:?}"
    );
    ok(&mut s, "DELETE tree");
    assert_eq!(int(&mut s, "SELECT count(*) FROM tree"), 0);
}

#[test]
fn referential_actions_cascade_and_set_null() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE c1 (id int PRIMARY KEY, pid int REFERENCES p(id) ON DELETE CASCADE ON UPDATE CASCADE);
         CREATE TABLE c2 (id int PRIMARY KEY, pid int, FOREIGN KEY (pid) REFERENCES p(id) ON DELETE SET NULL);
         CREATE TABLE c3 (id int PRIMARY KEY, pid int NOT NULL DEFAULT 2, FOREIGN KEY (pid) REFERENCES p(id) ON DELETE SET DEFAULT);
         INSERT p VALUES (1), (2), (3);
         INSERT c1 VALUES (1, 1), (2, 1), (3, 3);
         INSERT c2 VALUES (1, 1), (2, 2);
         INSERT c3 VALUES (1, 1)",
    );
    ok(&mut s, "DELETE p WHERE id = 1");
    assert_eq!(int(&mut s, "SELECT count(*) FROM c1"), 1);
    assert_eq!(int(&mut s, "SELECT count(*) FROM c2 WHERE pid IS NULL"), 1);
    assert_eq!(int(&mut s, "SELECT pid FROM c3 WHERE id = 1"), 2);
    ok(&mut s, "UPDATE p SET id = 30 WHERE id = 3");
    assert_eq!(int(&mut s, "SELECT pid FROM c1 WHERE id = 3"), 30);
    let c = ok(&mut s, "SELECT delete_referential_action, update_referential_action_desc FROM sys.foreign_keys WHERE parent_object_id = OBJECT_ID('c1')");
    assert_eq!(
        c.results[0].1[0],
        vec![Value::Int(1), Value::String("CASCADE".into())]
    );
}

#[test]
fn check_constraints_raise_547_naming_the_column() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE precio (id int PRIMARY KEY, valor decimal(10,2) CONSTRAINT ck_valor CHECK (valor > 0),
             desde date, hasta date, CHECK (hasta >= desde))",
    );
    let e = err(&mut s, "INSERT precio VALUES (1, -5, NULL, NULL)");
    assert_eq!(
        e.message,
        "The INSERT statement conflicted with the CHECK constraint \"ck_valor\". The conflict occurred in database \"shop\", table \"dbo.precio\", column 'valor'."
    );
    // NULL is not FALSE: the row passes.
    ok(&mut s, "INSERT precio VALUES (1, NULL, NULL, NULL)");
    let e = err(
        &mut s,
        "INSERT precio VALUES (2, 3, '2024-01-02', '2024-01-01')",
    );
    assert!(
        e.message.starts_with(
            "The INSERT statement conflicted with the CHECK constraint \"CK__precio__"
        ),
        "{e:?}"
    );
    assert!(e.message.ends_with("table \"dbo.precio\"."), "{e:?}");
    let e = err(&mut s, "UPDATE precio SET valor = 0");
    assert!(e
        .message
        .starts_with("The UPDATE statement conflicted with the CHECK constraint \"ck_valor\""));
    // A column-level CHECK may only mention its column.
    assert_eq!(
        err(&mut s, "CREATE TABLE bad (a int, b int CHECK (a > b))").number,
        8141
    );
    let c = ok(
        &mut s,
        "SELECT name, definition, parent_column_id, is_not_trusted, is_disabled FROM sys.check_constraints ORDER BY parent_column_id DESC",
    );
    assert_eq!(c.results[0].1[0][0], Value::String("ck_valor".into()));
    assert_eq!(c.results[0].1[0][1], Value::String("(valor > 0)".into()));
    assert_eq!(c.results[0].1[0][2], Value::Int(2));
}

#[test]
fn alter_table_adds_checks_and_disables_constraints() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, q int); INSERT t VALUES (1, -1)",
    );
    let e = err(&mut s, "ALTER TABLE t ADD CONSTRAINT ck_q CHECK (q >= 0)");
    assert!(
        e.message
            .starts_with("The ALTER TABLE statement conflicted with the CHECK constraint \"ck_q\""),
        "{e:?}"
    );
    ok(
        &mut s,
        "ALTER TABLE t WITH NOCHECK ADD CONSTRAINT ck_q CHECK (q >= 0)",
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT is_not_trusted FROM sys.check_constraints WHERE name = 'ck_q'"
        ),
        1
    );
    assert_eq!(err(&mut s, "INSERT t VALUES (2, -2)").number, 547);
    ok(
        &mut s,
        "ALTER TABLE t NOCHECK CONSTRAINT ck_q; INSERT t VALUES (2, -2)",
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT is_disabled FROM sys.check_constraints WHERE name = 'ck_q'"
        ),
        1
    );
    ok(&mut s, "ALTER TABLE t CHECK CONSTRAINT ALL");
    assert_eq!(
        int(
            &mut s,
            "SELECT is_disabled FROM sys.check_constraints WHERE name = 'ck_q'"
        ),
        0
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT is_not_trusted FROM sys.check_constraints WHERE name = 'ck_q'"
        ),
        1
    );
    assert_eq!(
        err(&mut s, "ALTER TABLE t WITH CHECK CHECK CONSTRAINT ck_q").number,
        547
    );
    ok(
        &mut s,
        "DELETE t WHERE q < 0; ALTER TABLE t WITH CHECK CHECK CONSTRAINT ck_q",
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT is_not_trusted FROM sys.check_constraints WHERE name = 'ck_q'"
        ),
        0
    );
    ok(
        &mut s,
        "ALTER TABLE t ADD CONSTRAINT df_q DEFAULT 7 FOR q; INSERT t (id) VALUES (5)",
    );
    assert_eq!(int(&mut s, "SELECT q FROM t WHERE id = 5"), 7);
    ok(&mut s, "ALTER TABLE t DROP CONSTRAINT ck_q, df_q");
    assert_eq!(int(&mut s, "SELECT count(*) FROM sys.check_constraints"), 0);
    assert_eq!(
        err(&mut s, "ALTER TABLE t DROP CONSTRAINT nope").number,
        3728
    );
    ok(&mut s, "ALTER TABLE t DROP CONSTRAINT IF EXISTS nope");
    assert_eq!(
        err(&mut s, "ALTER TABLE t NOCHECK CONSTRAINT nope").number,
        4917
    );
}

#[test]
fn foreign_key_definitions_are_checked() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE p (id int PRIMARY KEY, code char(2) UNIQUE, other int)",
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE c (a int REFERENCES nope(id))").number,
        1767
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE c (a int REFERENCES p(other))").number,
        1776
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE c (a bigint REFERENCES p(id))").number,
        1778
    );
    ok(
        &mut s,
        "CREATE TABLE c (a int REFERENCES p, b char(2) REFERENCES p(code))",
    );
    let c = ok(&mut s, "CREATE TABLE #tmp (a int REFERENCES p(id))");
    assert_eq!(c.infos[0].number, 1756);
    ok(&mut s, "INSERT #tmp VALUES (99)");
}

#[test]
fn triggers_fire_once_per_statement_with_inserted_and_deleted() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         CREATE TABLE audit (op varchar(10), n int, total int)",
    );
    ok(
        &mut s,
        "CREATE TRIGGER dbo.t_audit ON t AFTER INSERT, UPDATE, DELETE AS
         BEGIN
           SET NOCOUNT ON;
           DECLARE @i int = (SELECT count(*) FROM inserted), @d int = (SELECT count(*) FROM deleted);
           INSERT audit SELECT CASE WHEN @i > 0 AND @d > 0 THEN 'update' WHEN @i > 0 THEN 'insert' ELSE 'delete' END,
                               @@ROWCOUNT, (SELECT sum(v) FROM inserted)
         END",
    );
    ok(&mut s, "INSERT t VALUES (1, 10), (2, 20)");
    ok(&mut s, "UPDATE t SET v = v + 1");
    ok(&mut s, "DELETE t WHERE id = 1");
    // A statement that touches no row still fires.
    ok(&mut s, "DELETE t WHERE id = 99");
    let c = ok(&mut s, "SELECT op, n, total FROM audit");
    let rows = &c.results[0].1;
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0],
        vec![
            Value::String("insert".into()),
            Value::Int(2),
            Value::Int(30)
        ]
    );
    assert_eq!(
        rows[1],
        vec![
            Value::String("update".into()),
            Value::Int(2),
            Value::Int(32)
        ]
    );
    assert_eq!(rows[2][0], Value::String("delete".into()));
    assert_eq!(rows[3][1], Value::Int(0));
    let c = ok(
        &mut s,
        "SELECT name, type, is_disabled, OBJECT_NAME(parent_id) FROM sys.triggers",
    );
    assert_eq!(c.results[0].1[0][0], Value::String("t_audit".into()));
    ok(
        &mut s,
        "DISABLE TRIGGER t_audit ON t; INSERT t VALUES (3, 1)",
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM audit"), 4);
    ok(
        &mut s,
        "ALTER TABLE t ENABLE TRIGGER ALL; DROP TRIGGER t_audit",
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM sys.triggers"), 0);
    assert_eq!(err(&mut s, "DROP TRIGGER t_audit").number, 3701);
    ok(&mut s, "DROP TRIGGER IF EXISTS t_audit");
}

#[test]
fn a_trigger_body_runs_in_the_trigger_database() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE TABLE audit (db sysname, n int)",
    );
    ok(
        &mut s,
        "CREATE TRIGGER t_ins ON t AFTER INSERT AS
         INSERT audit SELECT DB_NAME(), count(*) FROM inserted",
    );
    ok(&mut s, "USE master");
    // From another database, with a three-part name: the trigger's unqualified
    // `audit` is shop's; the session's database is master again afterwards.
    ok(&mut s, "INSERT shop.dbo.t VALUES (1), (2)");
    assert_eq!(int(&mut s, "SELECT DB_ID() - DB_ID('master')"), 0);
    let c = ok(&mut s, "SELECT db, n FROM shop.dbo.audit");
    assert_eq!(
        c.results[0].1,
        vec![vec![Value::String("shop".into()), Value::Int(2)]]
    );
}

#[test]
fn a_trigger_rollback_or_error_undoes_the_statement() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, v int); CREATE TABLE log (m varchar(20))",
    );
    ok(
        &mut s,
        "CREATE TRIGGER t_guard ON t FOR INSERT AS
         IF EXISTS (SELECT 1 FROM inserted WHERE v < 0)
         BEGIN
           RAISERROR('negative value', 16, 1);
           ROLLBACK TRANSACTION;
         END",
    );
    let c = run(
        &mut s,
        "INSERT t VALUES (1, -1); INSERT log VALUES ('after')",
    );
    let numbers: Vec<i32> = c.errors.iter().map(|e| e.number).collect();
    assert_eq!(numbers, vec![50000, 3609]);
    // The batch stopped; the row is gone.
    assert_eq!(int(&mut s, "SELECT count(*) FROM t"), 0);
    assert_eq!(int(&mut s, "SELECT count(*) FROM log"), 0);
    assert_eq!(int(&mut s, "SELECT @@TRANCOUNT"), 0);
    // In an explicit transaction the whole transaction goes.
    let c = run(
        &mut s,
        "BEGIN TRAN; INSERT log VALUES ('x'); INSERT t VALUES (2, -2)",
    );
    assert_eq!(c.errors.last().map(|e| e.number), Some(3609));
    assert_eq!(int(&mut s, "SELECT count(*) FROM log"), 0);
    assert_eq!(int(&mut s, "SELECT @@TRANCOUNT"), 0);
    ok(&mut s, "INSERT t VALUES (3, 3)");
    // A runtime error in a trigger ends the batch and the transaction.
    ok(
        &mut s,
        "CREATE OR ALTER TRIGGER t_guard ON t AFTER INSERT AS SELECT 1 / 0",
    );
    let c = run(
        &mut s,
        "INSERT t VALUES (4, 4); INSERT log VALUES ('after')",
    );
    assert_eq!(c.errors[0].number, 8134);
    assert_eq!(int(&mut s, "SELECT count(*) FROM t"), 1);
    assert_eq!(int(&mut s, "SELECT count(*) FROM log"), 0);
    // A TRY around the statement catches the trigger's error.
    let c = ok(
        &mut s,
        "BEGIN TRY INSERT t VALUES (5, 5) END TRY BEGIN CATCH SELECT ERROR_NUMBER() END CATCH",
    );
    assert_eq!(c.results.last().unwrap().1[0][0], Value::Int(8134));
    assert_eq!(int(&mut s, "SELECT count(*) FROM t"), 1);
}

#[test]
fn triggers_see_merge_actions_and_constraints_come_first() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, v int CHECK (v < 100));
         CREATE TABLE log (kind char(1), n int);
         INSERT t VALUES (1, 1)",
    );
    ok(
        &mut s,
        "CREATE TRIGGER t_ins ON t AFTER INSERT AS INSERT log SELECT 'I', count(*) FROM inserted",
    );
    ok(
        &mut s,
        "CREATE TRIGGER t_upd ON t AFTER UPDATE AS INSERT log SELECT 'U', count(*) FROM deleted",
    );
    ok(
        &mut s,
        "MERGE t USING (VALUES (1, 5), (2, 6)) AS s(id, v) ON t.id = s.id
         WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v);",
    );
    let c = ok(&mut s, "SELECT kind, n FROM log ORDER BY kind");
    assert_eq!(
        c.results[0].1,
        vec![
            vec![Value::String("I".into()), Value::Int(1)],
            vec![Value::String("U".into()), Value::Int(1)]
        ]
    );
    // A constraint violation: no trigger runs.
    assert_eq!(err(&mut s, "INSERT t VALUES (9, 500)").number, 547);
    assert_eq!(int(&mut s, "SELECT count(*) FROM log"), 2);
}

/// Feeds rows to `bulk_insert` as the TDS layer would.
fn bulk(s: &mut Session, sql: &str, rows: Vec<Vec<Value>>) -> Result<u64, SqlError> {
    let target = s.bulk_target(sql)?.expect("INSERT BULK");
    let mut it = rows.into_iter();
    s.bulk_insert(&target, &mut || Ok(it.next()))
}

#[test]
fn bulk_loads_skip_constraints_and_triggers_unless_told() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE t (id int PRIMARY KEY, pid int CONSTRAINT fk_t FOREIGN KEY REFERENCES p(id),
             v int CONSTRAINT ck_v CHECK (v > 0), note varchar(10) CONSTRAINT df_note DEFAULT 'none');
         CREATE TABLE log (n int);
         INSERT p VALUES (1)",
    );
    ok(
        &mut s,
        "CREATE TRIGGER t_log ON t AFTER INSERT AS INSERT log SELECT count(*) FROM inserted",
    );
    let i = |n: i64| Value::Int(n);
    // No hints: an orphan and a failing CHECK go in, the trigger does not
    // fire, NULL for a column with a DEFAULT takes the default, and the
    // skipped constraints are no longer trusted.
    let n = bulk(
        &mut s,
        "INSERT BULK t ([id] int, [pid] int, [v] int, [note] varchar(10))",
        vec![
            vec![i(1), i(7), i(-1), Value::Null],
            vec![i(2), i(1), i(2), Value::String("x".into())],
        ],
    )
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(int(&mut s, "SELECT count(*) FROM log"), 0);
    let c = ok(&mut s, "SELECT note FROM t ORDER BY id");
    assert_eq!(c.results[0].1[0][0], Value::String("none".into()));
    assert_eq!(
        int(
            &mut s,
            "SELECT is_not_trusted FROM sys.check_constraints WHERE name = 'ck_v'"
        ),
        1
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT is_not_trusted FROM sys.foreign_keys WHERE name = 'fk_t'"
        ),
        1
    );
    // KEEP_NULLS keeps the NULL.
    bulk(
        &mut s,
        "INSERT BULK t ([id] int, [pid] int, [v] int, [note] varchar(10)) WITH (KEEP_NULLS)",
        vec![vec![i(3), i(1), i(1), Value::Null]],
    )
    .unwrap();
    assert_eq!(
        int(
            &mut s,
            "SELECT count(*) FROM t WHERE id = 3 AND note IS NULL"
        ),
        1
    );
    // CHECK_CONSTRAINTS: a violation fails the whole load with 547.
    let e = bulk(
        &mut s,
        "INSERT BULK t ([id] int, [pid] int, [v] int) WITH (CHECK_CONSTRAINTS)",
        vec![vec![i(4), i(1), i(1)], vec![i(5), i(1), i(-5)]],
    )
    .unwrap_err();
    assert_eq!(e.number, 547);
    assert!(e.message.contains("CHECK constraint \"ck_v\""), "{e:?}");
    let e = bulk(
        &mut s,
        "INSERT BULK t ([id] int, [pid] int, [v] int) WITH (CHECK_CONSTRAINTS)",
        vec![vec![i(4), i(8), i(1)]],
    )
    .unwrap_err();
    assert!(
        e.message.contains("FOREIGN KEY constraint \"fk_t\""),
        "{e:?}"
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM t"), 3);
    // FIRE_TRIGGERS: once for the load, with every row in `inserted`.
    bulk(
        &mut s,
        "INSERT BULK t ([id] int, [pid] int, [v] int) WITH (CHECK_CONSTRAINTS, FIRE_TRIGGERS, KEEP_NULLS, TABLOCK, ORDER([id] ASC))",
        vec![vec![i(6), i(1), i(1)], vec![i(7), i(1), i(1)]],
    )
    .unwrap();
    let c = ok(&mut s, "SELECT n FROM log");
    assert_eq!(c.results[0].1, vec![vec![i(2)]]);
    // An unknown hint is a syntax error.
    assert_eq!(
        s.bulk_target("INSERT BULK t ([id] int) WITH (NOPE)")
            .unwrap_err()
            .number,
        102
    );
}

#[test]
fn alter_table_add_column() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, a varchar(5)); INSERT t VALUES (1, 'x'), (2, 'y')",
    );
    // NULL: existing rows take NULL, even with a DEFAULT; new rows the DEFAULT.
    ok(
        &mut s,
        "ALTER TABLE t ADD b int NULL, c nvarchar(10) DEFAULT N'nuevo'",
    );
    ok(&mut s, "INSERT t (id, a) VALUES (3, 'z')");
    assert_eq!(
        int(
            &mut s,
            "SELECT count(*) FROM t WHERE b IS NULL AND c IS NULL"
        ),
        2
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM t WHERE c = N'nuevo'"), 1);
    // NOT NULL with a DEFAULT: every existing row takes it; the column refuses NULL.
    ok(
        &mut s,
        "ALTER TABLE t ADD d decimal(9,2) NOT NULL CONSTRAINT df_d DEFAULT 1.5",
    );
    assert_eq!(int(&mut s, "SELECT count(*) FROM t WHERE d = 1.50"), 3);
    assert_eq!(
        err(&mut s, "UPDATE t SET d = NULL WHERE id = 1").number,
        515
    );
    assert_eq!(
        int(
            &mut s,
            "SELECT count(*) FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 't' AND COLUMN_NAME IN ('b', 'c', 'd')"
        ),
        3
    );
    // NOT NULL without one on a table with rows: 4901; a name twice: 2705.
    let e = err(&mut s, "ALTER TABLE t ADD e int NOT NULL");
    assert_eq!(e.number, 4901, "{}", e.message);
    assert!(e
        .message
        .contains("Column 'e' cannot be added to non-empty table 't'"));
    let e = err(&mut s, "ALTER TABLE t ADD b int");
    assert_eq!(e.number, 2705, "{}", e.message);
    // Later writes see the new columns.
    ok(&mut s, "UPDATE t SET b = id * 10 WHERE id = 2");
    assert_eq!(int(&mut s, "SELECT b FROM t WHERE id = 2"), 20);
}
