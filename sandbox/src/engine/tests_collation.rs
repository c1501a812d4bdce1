//! Collations: database defaults, column collations, tempdb's, comparisons
//! under each, and the precedence rules' conflicts (468).

use super::*;
use crate::types::Value;

use super::test_support::{ok, one, rows, run, session_in};

fn text(v: &str) -> Value {
    Value::String(v.into())
}

fn setup() -> (Engine, Session) {
    session_in("CREATE DATABASE cs COLLATE Latin1_General_CS_AS", "cs")
}

#[test]
fn databases_and_columns_report_their_collations() {
    let (_e, mut s) = setup();
    assert_eq!(
        one(&mut s, "SELECT DATABASEPROPERTYEX('cs', 'Collation')"),
        text("Latin1_General_CS_AS")
    );
    assert_eq!(
        one(&mut s, "SELECT DATABASEPROPERTYEX('master', 'Collation')"),
        text("SQL_Latin1_General_CP1_CI_AS")
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT collation_name FROM sys.databases WHERE name = 'cs'"
        ),
        text("Latin1_General_CS_AS")
    );
    assert_eq!(
        one(&mut s, "SELECT SERVERPROPERTY('Collation')"),
        text("SQL_Latin1_General_CP1_CI_AS")
    );
    ok(
        &mut s,
        "CREATE TABLE t (id int, a varchar(10), b nvarchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS, n int)",
    );
    let r = rows(
        &mut s,
        "SELECT COLUMN_NAME, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
    );
    assert_eq!(r[1], vec![text("a"), text("Latin1_General_CS_AS")]);
    assert_eq!(r[2], vec![text("b"), text("SQL_Latin1_General_CP1_CI_AS")]);
    assert_eq!(r[3], vec![text("n"), Value::Null]);
    assert_eq!(
        one(&mut s, "SELECT collation_name FROM sys.columns WHERE object_id = OBJECT_ID('t') AND name = 'a'"),
        text("Latin1_General_CS_AS")
    );
    // Result metadata (COLMETADATA, sp_describe_first_result_set) carries them.
    let c = ok(&mut s, "SELECT a, b, a + 'x' AS c FROM t");
    let meta = &c.results[0].0;
    assert_eq!(meta[0].collation, collation::parse("Latin1_General_CS_AS"));
    assert_eq!(meta[1].collation, Some(crate::types::Collation::SERVER));
    assert_eq!(meta[2].collation, collation::parse("Latin1_General_CS_AS"));
    let d = rows(
        &mut s,
        "EXEC sp_describe_first_result_set N'SELECT a FROM t'",
    );
    assert_eq!(d[0][9], text("Latin1_General_CS_AS"));
    assert_eq!(
        run(
            &mut s,
            "CREATE TABLE bad (x varchar(5) COLLATE Klingon_CI_AS)"
        )
        .errors[0]
            .number,
        448
    );
}

#[test]
fn comparisons_sorting_and_grouping_follow_the_column_collation() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int, a varchar(10), b varchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS);
         INSERT t VALUES (1, 'abc', 'abc'), (2, 'ABC', 'ABC'), (3, 'b', 'b')",
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t WHERE a = 'abc'"),
        Value::Int(1)
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t WHERE b = 'abc'"),
        Value::Int(2)
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t WHERE a LIKE 'A%'"),
        Value::Int(1)
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t WHERE b LIKE 'A%'"),
        Value::Int(2)
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t WHERE a IN ('ABC', 'x')"),
        Value::Int(1)
    );
    assert_eq!(
        one(&mut s, "SELECT count(DISTINCT a) FROM t"),
        Value::Int(3)
    );
    assert_eq!(
        one(&mut s, "SELECT count(DISTINCT b) FROM t"),
        Value::Int(2)
    );
    assert_eq!(rows(&mut s, "SELECT a FROM t GROUP BY a").len(), 3);
    assert_eq!(rows(&mut s, "SELECT b FROM t GROUP BY b").len(), 2);
    // Literals take the database's collation: here case-sensitive.
    assert_eq!(
        one(&mut s, "SELECT CASE WHEN 'a' = 'A' THEN 1 ELSE 0 END"),
        Value::Int(0)
    );
    // Dictionary order of a _CS collation: lower case first, then the next letter.
    let r = rows(&mut s, "SELECT a FROM t ORDER BY a");
    assert_eq!(
        r,
        vec![vec![text("abc")], vec![text("ABC")], vec![text("b")]]
    );
    // An explicit COLLATE wins over the column's.
    assert_eq!(
        one(
            &mut s,
            "SELECT count(*) FROM t WHERE a = 'abc' COLLATE Latin1_General_CI_AS"
        ),
        Value::Int(2)
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT count(*) FROM t WHERE a COLLATE Latin1_General_CI_AI = 'ÀBC'"
        ),
        Value::Int(2)
    );
}

#[test]
fn two_column_collations_conflict_with_468() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (a varchar(10), b varchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS);
         INSERT t VALUES ('x', 'X')",
    );
    let e = &run(&mut s, "SELECT * FROM t WHERE a = b").errors[0];
    assert_eq!(e.number, 468);
    assert_eq!(
        e.message,
        "Cannot resolve the collation conflict between \"SQL_Latin1_General_CP1_CI_AS\" and \"Latin1_General_CS_AS\" in the equal to operation."
    );
    let e = &run(&mut s, "SELECT * FROM t WHERE a < b").errors[0];
    assert!(e.message.ends_with("in the less than operation."), "{e:?}");
    assert_eq!(
        run(&mut s, "SELECT a FROM t UNION SELECT b FROM t").errors[0].number,
        468
    );
    assert_eq!(
        run(&mut s, "SELECT CASE WHEN 1 = 1 THEN a ELSE b END FROM t").errors[0].number,
        451
    );
    // An explicit collation resolves it.
    assert_eq!(
        one(
            &mut s,
            "SELECT count(*) FROM t WHERE a = b COLLATE SQL_Latin1_General_CP1_CI_AS"
        ),
        Value::Int(1)
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT count(*) FROM t WHERE a COLLATE Latin1_General_CS_AS = b"
        ),
        Value::Int(0)
    );
    let e = &run(
        &mut s,
        "SELECT * FROM t WHERE a COLLATE Latin1_General_CS_AS = b COLLATE Latin1_General_CI_AS",
    )
    .errors[0];
    assert_eq!(e.number, 468);
    assert_eq!(
        run(&mut s, "SELECT 1 COLLATE Latin1_General_CI_AS").errors[0].number,
        447
    );
}

#[test]
fn temp_tables_take_the_server_collation_table_variables_the_database() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (a varchar(10)); INSERT t VALUES ('k')",
    );
    ok(
        &mut s,
        "CREATE TABLE #x (s varchar(10)); INSERT #x VALUES ('K')",
    );
    // tempdb's collation is the server's: joining to the user database conflicts.
    let e = &run(&mut s, "SELECT * FROM t JOIN #x ON t.a = #x.s").errors[0];
    assert_eq!(
        e.message,
        "Cannot resolve the collation conflict between \"SQL_Latin1_General_CP1_CI_AS\" and \"Latin1_General_CS_AS\" in the equal to operation."
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT count(*) FROM t JOIN #x ON t.a = #x.s COLLATE DATABASE_DEFAULT"
        ),
        Value::Int(0)
    );
    // The usual cure: COLLATE DATABASE_DEFAULT in the temp table's definition.
    ok(
        &mut s,
        "CREATE TABLE #y (s varchar(10) COLLATE DATABASE_DEFAULT); INSERT #y VALUES ('k')",
    );
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t JOIN #y ON t.a = #y.s"),
        Value::Int(1)
    );
    // SELECT INTO keeps the source column's collation.
    ok(&mut s, "SELECT a INTO #z FROM t");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM t JOIN #z ON t.a = #z.a"),
        Value::Int(1)
    );
    let c = ok(&mut s, "DECLARE @v TABLE (s varchar(10)); INSERT @v VALUES ('k'); SELECT count(*) FROM t JOIN @v v ON t.a = v.s");
    assert_eq!(c.results.last().unwrap().1[0][0], Value::Int(1));
}

#[test]
fn alter_database_collate_changes_new_columns_only() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE old (a varchar(5))");
    ok(&mut s, "ALTER DATABASE cs COLLATE French_CI_AS");
    ok(&mut s, "CREATE TABLE new (a varchar(5))");
    assert_eq!(
        one(
            &mut s,
            "SELECT collation_name FROM sys.columns WHERE object_id = OBJECT_ID('old')"
        ),
        text("Latin1_General_CS_AS")
    );
    assert_eq!(
        one(
            &mut s,
            "SELECT collation_name FROM sys.columns WHERE object_id = OBJECT_ID('new')"
        ),
        text("French_CI_AS")
    );
    assert_eq!(
        run(&mut s, "ALTER DATABASE cs COLLATE Nope_CI_AS").errors[0].number,
        448
    );
}
