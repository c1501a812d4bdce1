//! Engine tests for procedures, views, control of flow and typed results.

use super::*;
use crate::types::{SqlType, Value};

use super::test_support::{err, ok, one, rows, run, session_in, Collect};

fn setup() -> (Engine, Session) {
    session_in("CREATE DATABASE d", "d")
}

fn single(c: &Collect) -> (SqlType, Value) {
    let (cols, rows) = c.results.last().expect("a result");
    (cols[0].sql_type, rows[0][0].clone())
}

#[test]
fn procedures_take_parameters_and_return_status() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "create table ##tt (id int identity(1,1), other varchar(50),)",
    );
    ok(
        &mut s,
        "create or alter procedure pp\n  @Param1 varchar(50)\nas\n    insert into ##tt (other)\n    values (@Param1)\n\n    return scope_identity()",
    );
    let c = ok(
        &mut s,
        "declare @rc int; exec @rc = pp 'abc'; select @rc as Id",
    );
    assert_eq!(single(&c), (SqlType::Int, Value::Int(1)));
    let c = ok(&mut s, "EXEC pp @Param1 = 'x'");
    assert_eq!(c.statuses, vec![2]);
    ok(
        &mut s,
        "CREATE PROCEDURE dbo.ventas_por_pais @pais char(2), @n int = 3 OUTPUT AS BEGIN SET NOCOUNT ON; SELECT @pais AS pais, @n * 2 AS doble; SET @n = 10; END",
    );
    let c = ok(
        &mut s,
        "DECLARE @x int = 1; EXEC dbo.ventas_por_pais @pais = 'CO', @n = @x OUTPUT; SELECT @x",
    );
    assert_eq!(c.results[0].0[0].sql_type, SqlType::Char(2));
    assert_eq!(c.results[0].1[0][1], Value::Int(2));
    assert_eq!(single(&c).1, Value::Int(10));
    let c = run(&mut s, "EXEC dbo.ventas_por_pais");
    assert_eq!(c.errors[0].number, 201);
}

#[test]
fn views_while_try_catch_and_select_into() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE t (a int, b decimal(10,2))");
    ok(&mut s, "INSERT INTO t VALUES (1, 2.50), (2, 3.25)");
    ok(&mut s, "CREATE VIEW v AS SELECT a, b * a AS c FROM t");
    let c = ok(&mut s, "SELECT c FROM v WHERE a = 2");
    assert_eq!(
        single(&c).0,
        SqlType::Decimal {
            precision: 21,
            scale: 2,
            numeric: false
        }
    );
    let c = ok(
        &mut s,
        "DECLARE @i int = 0, @s int = 0\nWHILE @i < 5 BEGIN SET @i = @i + 1 IF @i = 4 BREAK SET @s = @s + @i END\nSELECT @s",
    );
    assert_eq!(single(&c).1, Value::Int(6));
    let c = ok(
        &mut s,
        "BEGIN TRY SELECT 1/0 END TRY BEGIN CATCH SELECT ERROR_NUMBER() AS n, ERROR_MESSAGE() AS m END CATCH",
    );
    assert_eq!(c.results.last().unwrap().1[0][0], Value::Int(8134));
    let c = ok(
        &mut s,
        "SET NOCOUNT ON; SELECT a, b INTO #x FROM t WHERE a > 1; SELECT b FROM #x",
    );
    assert_eq!(
        single(&c),
        (
            SqlType::Decimal {
                precision: 10,
                scale: 2,
                numeric: false
            },
            Value::Decimal("3.25".parse().unwrap())
        )
    );
    let c = ok(
        &mut s,
        "DECLARE @t TABLE (col int); INSERT INTO @t SELECT SUM(a) FROM t; SELECT col FROM @t",
    );
    assert_eq!(single(&c).1, Value::Int(3));
    let c = ok(&mut s, "PRINT 'hola ' + CAST(5 AS varchar(3))");
    assert_eq!(
        c.infos
            .iter()
            .map(|i| i.message.as_str())
            .collect::<Vec<_>>(),
        ["hola 5"]
    );
}

#[test]
fn computed_columns_delete_without_from_and_null_casts() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE ##c (id INT IDENTITY PRIMARY KEY, val INT NOT NULL, c AS (val + 1))",
    );
    ok(&mut s, "INSERT INTO ##c (val) VALUES (1), (2)");
    let c = ok(&mut s, "SELECT c FROM ##c WHERE val = 2");
    assert_eq!(single(&c), (SqlType::Int, Value::Int(3)));
    assert!(!c.results[0].0[0].updateable);
    assert_eq!(run(&mut s, "UPDATE ##c SET c = 1").errors[0].number, 271);
    ok(&mut s, "DELETE ##c WHERE val = 1");
    let c = ok(&mut s, "SELECT COUNT(*) FROM ##c");
    assert_eq!(single(&c).1, Value::Int(1));
    let c = ok(&mut s, "SELECT CAST(NULL AS XML)");
    assert_eq!(single(&c), (SqlType::Xml, Value::Null));
}

/// MIN and MAX together over an indexed column are answered by seeks (see
/// `compile_select`); the answer and its description are those of the
/// plain aggregate, with and without an index, a WHERE, rows or aliases.
#[test]
fn min_and_max_together_answer_as_one_aggregate() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id bigint PRIMARY KEY, d date NULL, n int NULL); \
         INSERT INTO t VALUES (5, '2024-01-02', 7), (9, NULL, 1), (2, '2023-05-06', NULL)",
    );
    let c = ok(
        &mut s,
        "SELECT MIN(q.id) AS lo, MAX(q.id) AS hi FROM (SELECT * FROM t) AS q",
    );
    let (cols, rows) = c.results.last().unwrap();
    assert_eq!(rows, &vec![vec![Value::Int(2), Value::Int(9)]]);
    assert_eq!(cols[0].name, "lo");
    assert_eq!(cols[1].sql_type, SqlType::BigInt);
    assert!(cols[0].nullable && cols[1].nullable);
    // Unindexed columns, a WHERE, an unnamed column.
    let c = ok(&mut s, "SELECT MIN(n), MAX(d) FROM t WHERE id > 2");
    let (cols, rows) = c.results.last().unwrap();
    assert_eq!(rows[0][0], Value::Int(1));
    assert_eq!(cols[0].name, "");
    assert_eq!(cols[1].sql_type, SqlType::Date);
    // No rows: one row of NULLs, as an aggregate without GROUP BY gives.
    let c = ok(&mut s, "SELECT MIN(id), MAX(id) FROM t WHERE id < 0");
    assert_eq!(
        c.results.last().unwrap().1,
        vec![vec![Value::Null, Value::Null]]
    );
    // Over a CTE, as partitioned reads ask.
    let c = ok(
        &mut s,
        "WITH q AS (SELECT * FROM t) SELECT MIN(q.id) AS lo, MAX(q.id) AS hi FROM q",
    );
    assert_eq!(
        c.results.last().unwrap().1,
        vec![vec![Value::Int(2), Value::Int(9)]]
    );
    // Inside a larger query, and beside other aggregates (not split).
    let c = ok(
        &mut s,
        "SELECT x.lo + x.hi FROM (SELECT MIN(id) AS lo, MAX(id) AS hi FROM t) AS x",
    );
    assert_eq!(c.results.last().unwrap().1, vec![vec![Value::Int(11)]]);
    let c = ok(&mut s, "SELECT MIN(id), MAX(id), COUNT(*) FROM t");
    assert_eq!(
        c.results.last().unwrap().1,
        vec![vec![Value::Int(2), Value::Int(9), Value::Int(3)]]
    );
}

#[test]
fn recursive_ctes_count_and_walk_a_hierarchy() {
    let (_e, mut s) = setup();
    // A derived column in the recursive member (named by the CTE's
    // position, not wrapped in a subquery SQLite would refuse).
    assert_eq!(
        one(
            &mut s,
            "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 50) \
             SELECT SUM(i) FROM d"
        ),
        Value::Int(1275)
    );
    // A column list, two columns, the CTE used twice.
    assert_eq!(
        one(
            &mut s,
            "WITH f(n, sq) AS (SELECT 1, 1 UNION ALL SELECT n + 1, (n + 1) * (n + 1) FROM f WHERE n < 10) \
             SELECT (SELECT MAX(sq) FROM f) + (SELECT COUNT(*) FROM f)"
        ),
        Value::Int(110)
    );
    // A hierarchy: each employee's depth below the root, joined back.
    ok(
        &mut s,
        "CREATE TABLE emp (id int PRIMARY KEY, boss int NULL, name nvarchar(20)); \
         INSERT INTO emp VALUES (1, NULL, N'ana'), (2, 1, N'bo'), (3, 1, N'cy'), (4, 3, N'di'), (5, 4, N'ed')",
    );
    let r = rows(
        &mut s,
        "WITH chain AS ( \
           SELECT id, name, 0 AS depth FROM emp WHERE boss IS NULL \
           UNION ALL \
           SELECT e.id, e.name, c.depth + 1 FROM emp AS e INNER JOIN chain AS c ON e.boss = c.id) \
         SELECT name, depth FROM chain ORDER BY depth, name",
    );
    let got: Vec<(Value, Value)> = r
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let want: Vec<(Value, Value)> = [("ana", 0), ("bo", 1), ("cy", 1), ("di", 2), ("ed", 3)]
        .into_iter()
        .map(|(n, d)| (Value::String(n.into()), Value::Int(d)))
        .collect();
    assert_eq!(got, want);
}

/// SQL Server stops a recursive CTE past 100 recursion levels, or past
/// the statement's `OPTION (MAXRECURSION n)` (0: no limit), with error
/// 530, undoing the statement; the anchor's rows are level 0, so the limit
/// n allows n + 1 levels of rows.
#[test]
fn recursion_is_limited_by_maxrecursion() {
    let (_e, mut s) = setup();
    let series = |last: u32| {
        format!(
            "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < {last}) SELECT COUNT(*) FROM d"
        )
    };
    // 101 rows: levels 0..=100, within the default.
    assert_eq!(one(&mut s, &series(101)), Value::Int(101));
    let e = err(&mut s, &series(102));
    assert_eq!((e.number, e.class, e.state), (530, 16, 1), "{e:?}");
    assert_eq!(
        e.message,
        "The statement terminated. The maximum recursion 100 has been exhausted before statement completion."
    );
    // The hint raises, lowers or lifts the limit.
    assert_eq!(
        one(
            &mut s,
            &format!("{} OPTION (MAXRECURSION 500)", series(501))
        ),
        Value::Int(501)
    );
    let e = err(
        &mut s,
        &format!("{} OPTION (MAXRECURSION 500)", series(502)),
    );
    assert!(e.message.contains("maximum recursion 500"), "{e:?}");
    let e = err(&mut s, &format!("{} OPTION (MAXRECURSION 3)", series(10)));
    assert!(e.message.contains("maximum recursion 3 "), "{e:?}");
    assert_eq!(
        one(
            &mut s,
            &format!("{} OPTION (RECOMPILE, MAXRECURSION 0)", series(2000))
        ),
        Value::Int(2000)
    );
    // A calendar, the common use: 366 days of 2020 are 365 recursions.
    let year = |max: u32| {
        format!(
            "WITH days AS (SELECT CAST('2020-01-01' AS date) AS d UNION ALL \
             SELECT DATEADD(day, 1, d) FROM days WHERE d < '2020-12-31') \
             SELECT COUNT(*) FROM days OPTION (MAXRECURSION {max})"
        )
    };
    assert_eq!(one(&mut s, &year(365)), Value::Int(366));
    assert_eq!(err(&mut s, &year(364)).number, 530);
    // A statement's hint is its own: the next statement has the default.
    let c = run(
        &mut s,
        &format!("{} OPTION (MAXRECURSION 0); {}", series(300), series(300)),
    );
    assert_eq!(c.results[0].1[0][0], Value::Int(300));
    assert_eq!(c.errors[0].number, 530);
    // Without a WHERE that ends it, recursion stops at the limit.
    let e = err(
        &mut s,
        "WITH loop(n) AS (SELECT 0 UNION ALL SELECT n FROM loop) SELECT COUNT(*) FROM loop",
    );
    assert_eq!(e.number, 530);
    // The limit counts levels, not rows: a binary heap of 100 nodes, the
    // deepest (64..100) at level 6.
    ok(
        &mut s,
        "CREATE TABLE node (id int PRIMARY KEY, parent int NULL); \
         INSERT INTO node (id, parent) SELECT a.v * 10 + b.v + 1, NULL FROM \
         (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS a(v), \
         (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS b(v); \
         UPDATE node SET parent = id / 2 WHERE id > 1",
    );
    let tree = |max: u32| {
        format!(
            "WITH t AS (SELECT id FROM node WHERE parent IS NULL UNION ALL \
             SELECT n.id FROM node AS n INNER JOIN t ON n.parent = t.id) \
             SELECT COUNT(*) FROM t OPTION (MAXRECURSION {max})"
        )
    };
    assert_eq!(one(&mut s, &tree(6)), Value::Int(100));
    assert_eq!(err(&mut s, &tree(5)).number, 530);
    // A view's recursive CTE takes the limit of the statement reading it.
    ok(
        &mut s,
        "CREATE VIEW v_series AS WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 150) SELECT i FROM d",
    );
    assert_eq!(err(&mut s, "SELECT COUNT(*) FROM v_series").number, 530);
    assert_eq!(
        one(
            &mut s,
            "SELECT COUNT(*) FROM v_series OPTION (MAXRECURSION 200)"
        ),
        Value::Int(150)
    );
    // The statement's work is undone: an INSERT that hits the limit leaves
    // the table as it was.
    ok(&mut s, "CREATE TABLE nums (i int)");
    let e = err(&mut s, "INSERT INTO nums (i) SELECT i FROM v_series");
    assert_eq!(e.number, 530);
    assert_eq!(one(&mut s, "SELECT COUNT(*) FROM nums"), Value::Int(0));
    ok(
        &mut s,
        "INSERT INTO nums (i) SELECT i FROM v_series OPTION (MAXRECURSION 149)",
    );
    assert_eq!(one(&mut s, "SELECT COUNT(*) FROM nums"), Value::Int(150));
    // The hint's own limits (query hints page: 0 to 32,767).
    let e = err(
        &mut s,
        &format!("{} OPTION (MAXRECURSION 32768)", series(5)),
    );
    assert_eq!((e.number, e.class), (310, 15), "{e:?}");
    assert_eq!(
        one(
            &mut s,
            &format!("{} OPTION (MAXRECURSION 32767)", series(5))
        ),
        Value::Int(5)
    );
    // A recursive reference inside a subquery, or twice in the member.
    let e = err(
        &mut s,
        "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM (SELECT i FROM d) AS x WHERE i < 3) SELECT * FROM d",
    );
    assert_eq!(e.number, 465, "{e:?}");
    let e = err(
        &mut s,
        "WITH d AS (SELECT 1 AS i UNION ALL SELECT a.i + 1 FROM d AS a, d AS b WHERE a.i < 3) SELECT * FROM d",
    );
    assert_eq!(e.number, 253, "{e:?}");
    // SELECT * from the CTE shows its columns only.
    let c = ok(
        &mut s,
        "WITH d(i, sq) AS (SELECT 1, 1 UNION ALL SELECT i + 1, (i + 1) * (i + 1) FROM d WHERE i < 3) SELECT * FROM d",
    );
    assert_eq!(c.results[0].0.len(), 2);
    assert_eq!(c.results[0].1.len(), 3);
}

#[test]
fn query_hints_are_accepted_and_change_no_result() {
    let (_e, mut s) = setup();
    assert_eq!(
        one(
            &mut s,
            "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 500) \
             SELECT COUNT(*) FROM d OPTION (MAXRECURSION 0)"
        ),
        Value::Int(500)
    );
    assert_eq!(one(&mut s, "SELECT 7 OPTION (RECOMPILE)"), Value::Int(7));
    ok(
        &mut s,
        "CREATE TABLE h (id int PRIMARY KEY, v int); INSERT INTO h VALUES (1, 1), (2, 2)",
    );
    ok(
        &mut s,
        "UPDATE h SET v = v * 10 OPTION (MAXDOP 1, KEEPFIXED PLAN)",
    );
    assert_eq!(
        one(
            &mut s,
            "DECLARE @p int = 1; \
             SELECT SUM(v) FROM h WHERE id >= @p \
             OPTION (OPTIMIZE FOR (@p UNKNOWN), USE HINT ('DISABLE_OPTIMIZER_ROWGOAL'), HASH JOIN); \
             "
        ),
        Value::Int(30)
    );
    // The statement after a hinted one is still its own statement.
    assert_eq!(
        one(&mut s, "SELECT 1 OPTION (FAST 10); SELECT 2"),
        Value::Int(2)
    );
    assert_eq!(
        run(&mut s, "SELECT 1 OPTION (RECOMPILE").errors[0].number,
        102
    );
}

/// A WITH clause may precede INSERT, UPDATE, DELETE and MERGE; its CTEs are
/// visible to the whole statement (subqueries included), recursive ones to
/// an INSERT's source.
#[test]
fn ctes_before_writes() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE stock (id int PRIMARY KEY, qty int, tag nvarchar(10) NULL); \
         INSERT INTO stock (id, qty) VALUES (1, 5), (2, 0), (3, 12), (4, 7)",
    );
    // INSERT from a recursive CTE, under the statement's MAXRECURSION.
    ok(&mut s, "CREATE TABLE nums (i int)");
    let c = ok(
        &mut s,
        "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 150) \
         INSERT INTO nums (i) SELECT i FROM d OPTION (MAXRECURSION 200)",
    );
    assert_eq!(c.dones.last(), Some(&(Some(150), false)));
    assert_eq!(one(&mut s, "SELECT SUM(i) FROM nums"), Value::Int(11325));
    assert_eq!(
        run(
            &mut s,
            "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 150) \
             INSERT INTO nums (i) SELECT i FROM d"
        )
        .errors[0]
            .number,
        530
    );
    // UPDATE joined to a CTE that reads an earlier one, with a column list.
    ok(
        &mut s,
        "WITH low(id) AS (SELECT id FROM stock WHERE qty < 6), \
              marked(id, t) AS (SELECT id, N'low' FROM low) \
         UPDATE s SET tag = m.t FROM stock AS s INNER JOIN marked AS m ON m.id = s.id",
    );
    let tagged = rows(
        &mut s,
        "SELECT id FROM stock WHERE tag = N'low' ORDER BY id",
    );
    assert_eq!(tagged, vec![vec![Value::Int(1)], vec![Value::Int(2)]]);
    // DELETE with the CTE in a subquery, and DELETE TOP after a WITH.
    let c = ok(
        &mut s,
        "WITH empty AS (SELECT id FROM stock WHERE qty = 0) \
         DELETE FROM stock WHERE id IN (SELECT id FROM empty)",
    );
    assert_eq!(c.dones.last(), Some(&(Some(1), false)));
    let c = ok(
        &mut s,
        "WITH big AS (SELECT id FROM stock WHERE qty > 6) \
         DELETE TOP (1) FROM stock WHERE id IN (SELECT id FROM big)",
    );
    assert_eq!(c.dones.last(), Some(&(Some(1), false)));
    assert_eq!(one(&mut s, "SELECT COUNT(*) FROM stock"), Value::Int(2));
    // MERGE from a CTE.
    ok(
        &mut s,
        "WITH src AS (SELECT 1 AS id, 50 AS qty UNION ALL SELECT 9, 90) \
         MERGE stock AS t USING src AS s ON t.id = s.id \
         WHEN MATCHED THEN UPDATE SET qty = s.qty \
         WHEN NOT MATCHED THEN INSERT (id, qty) VALUES (s.id, s.qty);",
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT id, qty FROM stock WHERE id IN (1, 9) ORDER BY id"
        ),
        vec![
            vec![Value::Int(1), Value::Int(50)],
            vec![Value::Int(9), Value::Int(90)]
        ]
    );
    // Not built: writing through a CTE, and a recursive CTE before an
    // UPDATE, DELETE or MERGE; each says so, and nothing is written.
    let before = rows(&mut s, "SELECT id, qty FROM stock ORDER BY id");
    for sql in [
        "WITH c AS (SELECT id, qty FROM stock) UPDATE c SET qty = 0",
        "WITH c AS (SELECT id, qty FROM stock) DELETE FROM c",
        "WITH c AS (SELECT id, qty FROM stock) INSERT INTO c (id, qty) VALUES (20, 2)",
        "WITH c AS (SELECT id, qty FROM stock) MERGE c AS t USING stock AS s ON t.id = s.id \
         WHEN MATCHED THEN UPDATE SET qty = 0;",
        "WITH d AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM d WHERE i < 3) \
         DELETE FROM stock WHERE id IN (SELECT i FROM d)",
    ] {
        assert_eq!(run(&mut s, sql).errors[0].number, 40517, "{sql}");
    }
    assert_eq!(
        rows(&mut s, "SELECT id, qty FROM stock ORDER BY id"),
        before
    );
}
