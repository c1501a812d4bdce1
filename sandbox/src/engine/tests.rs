//! Engine tests: T-SQL in, SQL Server's results and errors out.

use super::*;
use crate::types::{Decimal, Len, SqlType, Value};

use super::test_support::{err, ok, one, rows, run, session_in};

fn setup() -> (Engine, Session) {
    session_in("CREATE DATABASE KWP_Colombia", "KWP_Colombia")
}

#[test]
fn create_insert_select_keeps_declared_types() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE dbo.J_Ventas_CO (id bigint NOT NULL PRIMARY KEY, fecha datetime2(3), monto decimal(38,10), nombre nvarchar(50), pais char(2))",
    );
    let c = ok(
        &mut s,
        "INSERT INTO dbo.J_Ventas_CO (id, fecha, monto, nombre, pais) VALUES (1, '2024-01-02 10:00:00.123', 1234567890123456789012345678.9012345678, N'ñandú', 'CO'), (2, '2023-05-01', -1.5, NULL, 'MX')",
    );
    assert_eq!(c.dones, vec![(Some(2), false)]);
    let c = ok(
        &mut s,
        "SELECT id, fecha, monto, nombre, pais FROM KWP_Colombia.dbo.J_Ventas_CO WHERE pais = 'co' AND fecha >= '2024-01-01'",
    );
    let (cols, rows) = &c.results[0];
    assert_eq!(cols[1].sql_type, SqlType::DateTime2(3));
    assert_eq!(
        cols[2].sql_type,
        SqlType::Decimal {
            precision: 38,
            scale: 10,
            numeric: false
        }
    );
    assert_eq!(cols[3].sql_type, SqlType::NVarChar(Len::N(50)));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][2],
        Value::Decimal(
            "1234567890123456789012345678.9012345678"
                .parse::<Decimal>()
                .unwrap()
        )
    );
    assert_eq!(rows[0][3], Value::String("ñandú".into()));
    assert_eq!(rows[0][4], Value::String("CO".into()));
}

/// Error 2627 names the duplicate key whatever the rows' source: a VALUES
/// list repeating a key, an INSERT ... SELECT meeting a row already there or
/// repeating one among its own rows (a composite key's values in the key's
/// order). Message text from
/// https://learn.microsoft.com/en-us/sql/relational-databases/errors-events/mssqlserver-2627-database-engine-error
#[test]
fn a_duplicate_key_is_named_whatever_the_insert_s_source() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE c (a int NOT NULL, b nvarchar(5) NOT NULL, v int NULL, CONSTRAINT pk_c PRIMARY KEY (a, b))",
    );
    ok(&mut s, "CREATE TABLE src (a int, b nvarchar(5), v int)");
    ok(&mut s, "INSERT INTO c VALUES (1, N'x', 0)");
    for (sql, key) in [
        ("INSERT INTO c VALUES (2, N'y', 1), (2, N'y', 2)", "(2, y)"),
        ("INSERT INTO c VALUES (3, N'z', 1), (1, N'x', 2)", "(1, x)"),
    ] {
        let e = &run(&mut s, sql).errors[0];
        assert_eq!(e.number, 2627, "{sql}: {}", e.message);
        assert!(
            e.message.ends_with(&format!(
                "Cannot insert duplicate key in object 'dbo.c'. The duplicate key value is {key}."
            )),
            "{sql}: {}",
            e.message
        );
    }
    ok(
        &mut s,
        "INSERT INTO src VALUES (5, N'q', 1), (5, N'q', 2), (6, N'r', 3)",
    );
    let e = &run(&mut s, "INSERT INTO c (a, b, v) SELECT a, b, v FROM src").errors[0];
    assert_eq!(e.number, 2627, "{}", e.message);
    assert!(
        e.message.ends_with("The duplicate key value is (5, q)."),
        "{}",
        e.message
    );
    ok(&mut s, "DELETE FROM src");
    ok(&mut s, "INSERT INTO src VALUES (7, N's', 1), (1, N'x', 2)");
    let e = &run(&mut s, "INSERT INTO c (v, b, a) SELECT v, b, a FROM src").errors[0];
    assert!(
        e.message.ends_with("The duplicate key value is (1, x)."),
        "{}",
        e.message
    );
    // Nothing of a failed statement stays.
    assert_eq!(one(&mut s, "SELECT COUNT(*) FROM c"), Value::Int(1));
}

#[test]
fn errors_carry_sql_server_numbers() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, name varchar(5) NOT NULL)",
    );
    assert_eq!(run(&mut s, "SELECT * FROM nope").errors[0].number, 208);
    assert_eq!(run(&mut s, "SELECT nope FROM t").errors[0].number, 207);
    let e = &run(&mut s, "SELEC 1").errors[0];
    assert_eq!(
        (e.number, e.message.as_str()),
        (102, "Incorrect syntax near 'SELEC'.")
    );
    ok(&mut s, "INSERT INTO t VALUES (1, 'a')");
    let e = &run(&mut s, "INSERT INTO t VALUES (1, 'b')").errors[0];
    assert_eq!(e.number, 2627);
    assert!(
        e.message.contains("The duplicate key value is (1)."),
        "{}",
        e.message
    );
    let e = &run(&mut s, "INSERT INTO t (id) VALUES (2)").errors[0];
    assert_eq!(e.number, 515, "{}", e.message);
    assert!(e.message.contains("column 'name'"), "{}", e.message);
    let e = &run(&mut s, "INSERT INTO t VALUES (3, 'abcdefgh')").errors[0];
    assert_eq!(e.number, 2628);
    // The table and column come from __store's arguments, read only for the message.
    assert!(
        e.message.contains(".dbo.t', column 'name'"),
        "{}",
        e.message
    );
    // A second statement through the same function, other types: each
    // call site parses its own declared type.
    ok(&mut s, "CREATE TABLE t2 (a tinyint, b varchar(2), c date)");
    let e = &run(&mut s, "INSERT INTO t2 VALUES (1, 'abc', '2020-01-01')").errors[0];
    assert_eq!(
        (e.number, e.message.contains("column 'b'")),
        (2628, true),
        "{}",
        e.message
    );
    ok(&mut s, "INSERT INTO t2 VALUES (255, 'ab', '2020-01-31')");
    ok(&mut s, "UPDATE t2 SET a = a - 1, b = 'c', c = '2021-02-28'");
    assert_eq!(
        one(
            &mut s,
            "SELECT COUNT(*) FROM t2 WHERE a = 254 AND b = 'c' AND c = '2021-02-28'"
        ),
        Value::Int(1)
    );
    assert_eq!(
        run(&mut s, "INSERT INTO t VALUES ('x', 'a')").errors[0].number,
        245
    );
}

#[test]
fn transactions_roll_back_and_isolate() {
    let (e, mut s) = setup();
    let mut other = e.session("KWP_Colombia").unwrap();
    ok(&mut other, "SELECT 1");
    ok(&mut s, "CREATE TABLE t (id int PRIMARY KEY)");
    let c = ok(
        &mut s,
        "BEGIN TRAN; INSERT INTO t VALUES (1); SELECT @@TRANCOUNT",
    );
    assert!(matches!(c.envs[0], EnvChange::BeginTran(_)));
    assert_eq!(c.results[0].1[0][0], Value::Int(1));
    let c = ok(&mut other, "SELECT count(*) FROM t");
    assert_eq!(c.results[0].1[0][0], Value::Int(0));
    ok(&mut other, "SET LOCK_TIMEOUT 100");
    assert_eq!(
        run(&mut other, "INSERT INTO t VALUES (2)").errors[0].number,
        1222
    );
    ok(&mut s, "ROLLBACK");
    let c = ok(&mut s, "SELECT count(*) FROM t");
    assert_eq!(c.results[0].1[0][0], Value::Int(0));
    assert_eq!(run(&mut s, "COMMIT").errors[0].number, 3902);
}

#[test]
fn dml_forms_the_bridge_uses() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE dbo.target (id int NOT NULL PRIMARY KEY, v nvarchar(20), n int IDENTITY(1,1))");
    ok(&mut s, "CREATE TABLE #src (id int, v nvarchar(20))");
    ok(
        &mut s,
        "INSERT INTO #src VALUES (1, N'a'), (2, N'b'), (3, N'c')",
    );
    let c = ok(
        &mut s,
        "INSERT INTO dbo.target (id, v) SELECT id, v FROM #src WHERE id < 3",
    );
    assert_eq!(c.dones[0], (Some(2), false));
    ok(&mut s, "UPDATE #src SET v = N'z' WHERE id = 1");
    let c = ok(
        &mut s,
        "UPDATE t SET t.v = s.v FROM dbo.target t JOIN #src s ON t.id = s.id",
    );
    assert_eq!(c.dones[0], (Some(2), false));
    let c = ok(
        &mut s,
        "MERGE INTO dbo.target AS t USING #src AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v);",
    );
    assert_eq!(c.dones[0], (Some(3), false));
    let c = ok(&mut s, "SELECT id, v, n FROM dbo.target ORDER BY id");
    let rows = &c.results[0].1;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][1], Value::String("z".into()));
    assert_eq!(rows[2][2], Value::Int(3));
    let c = ok(&mut s, "DELETE TOP (1) FROM dbo.target WHERE id > 1");
    assert_eq!(c.dones[0], (Some(1), false));
    let c = ok(
        &mut s,
        "DELETE t FROM dbo.target t JOIN #src s ON t.id = s.id",
    );
    assert_eq!(c.dones[0], (Some(2), false));
    let c = ok(&mut s, "SELECT @@ROWCOUNT");
    assert_eq!(c.results[0].1[0][0], Value::Int(2));
}

#[test]
fn merge_refuses_to_act_twice_on_one_target_row() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, v int)",
    );
    ok(&mut s, "INSERT INTO dbo.t VALUES (1, 10), (2, 20)");
    ok(&mut s, "CREATE TABLE #s (id int, v int)");
    ok(
        &mut s,
        "INSERT INTO #s VALUES (1, 11), (1, 12), (3, 30), (3, 31)",
    );
    for action in ["UPDATE SET v = s.v", "DELETE"] {
        let c = run(
            &mut s,
            &format!("MERGE dbo.t AS t USING #s AS s ON t.id = s.id WHEN MATCHED THEN {action};"),
        );
        assert_eq!(c.errors.len(), 1, "{action}: {c:?}");
        assert_eq!((c.errors[0].number, c.errors[0].class), (8672, 16));
        assert!(c.errors[0].message.starts_with(
            "The MERGE statement attempted to UPDATE or DELETE the same row more than once."
        ));
    }
    // Nothing changed; source rows that share a key but match no target
    // row are no error.
    let c = ok(&mut s, "SELECT id, v FROM dbo.t ORDER BY id");
    assert_eq!(
        c.results[0].1,
        vec![
            vec![Value::Int(1), Value::Int(10)],
            vec![Value::Int(2), Value::Int(20)]
        ]
    );
    ok(&mut s, "DELETE FROM #s WHERE id = 1 AND v = 12");
    let c = ok(
        &mut s,
        "MERGE dbo.t AS t USING #s AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v;",
    );
    assert_eq!(c.dones[0], (Some(1), false));
}

#[test]
fn select_features() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE t (id int, d datetime, m money, g uniqueidentifier)",
    );
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, '2024-01-01', 1.5, NEWID()), (2, '2024-02-01', 2.25, NULL), (3, '1899-12-31', -922337203685477.5808, NULL)",
    );
    let c = ok(&mut s, "SELECT TOP 2 id FROM t ORDER BY id DESC");
    assert_eq!(c.results[0].1.len(), 2);
    let c = ok(
        &mut s,
        "SELECT id FROM t ORDER BY id OFFSET 1 ROWS FETCH NEXT 1 ROWS ONLY",
    );
    assert_eq!(c.results[0].1, vec![vec![Value::Int(2)]]);
    let c = ok(&mut s, "SELECT CAST(m AS decimal(10,2)) AS m2, ISNULL(g, NEWID()) g2, CONVERT(varchar(10), d, 120) FROM t WHERE id = 2");
    assert_eq!(
        c.results[0].0[0].sql_type,
        SqlType::Decimal {
            precision: 10,
            scale: 2,
            numeric: false
        }
    );
    assert_eq!(
        c.results[0].1[0][0],
        Value::Decimal("2.25".parse().unwrap())
    );
    let c = ok(&mut s, "SELECT m FROM t WHERE id = 3");
    assert_eq!(
        c.results[0].1[0][0],
        Value::Decimal("-922337203685477.5808".parse().unwrap())
    );
    let c = ok(
        &mut s,
        "SELECT count(*), SUM(m), 'abc' + 'def', @@VERSION FROM t",
    );
    assert_eq!(c.results[0].0[0].sql_type, SqlType::Int);
    assert_eq!(c.results[0].0[1].sql_type, SqlType::Money);
    assert_eq!(c.results[0].1[0][2], Value::String("abcdef".into()));
    let c = ok(&mut s, "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES; SELECT name FROM sys.tables; SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 't' ORDER BY ORDINAL_POSITION");
    assert_eq!(c.results[0].1, vec![vec![Value::String("t".into())]]);
    assert_eq!(c.results[1].1, vec![vec![Value::String("t".into())]]);
    assert_eq!(
        c.results[2].1[2],
        vec![Value::String("m".into()), Value::String("money".into())]
    );
}

#[test]
fn seed_scripts_with_go() {
    let e = Engine::open(None).unwrap();
    e.run_script("CREATE DATABASE A\nGO\nUSE A\nGO\nCREATE SCHEMA s\nGO\nCREATE TABLE s.x (id int)\nGO\nINSERT INTO s.x VALUES (1)\nGO 2\n")
        .unwrap();
    let mut s = e.session("A").unwrap();
    let c = ok(&mut s, "SELECT count(*) FROM A.s.x");
    assert_eq!(c.results[0].1[0][0], Value::Int(2));
    assert!(e.run_script("SELECT * FROM nope").is_err());
}

#[test]
fn quotes_and_fmtonly() {
    let (_e, mut s) = setup();
    let c = ok(
        &mut s,
        "SELECT N'a''''b' AS n, 'a''''b' AS v, LEN(N'''''') AS l",
    );
    assert_eq!(c.results[0].1[0][0], Value::String("a''b".into()));
    assert_eq!(c.results[0].1[0][1], Value::String("a''b".into()));
    assert_eq!(c.results[0].1[0][2], Value::Int(2));
    ok(
        &mut s,
        "CREATE TABLE t (id int NOT NULL, name nvarchar(10))",
    );
    ok(&mut s, "INSERT INTO t VALUES (1, N'x')");
    let c = ok(
        &mut s,
        "SET FMTONLY ON; SELECT * FROM t; DELETE FROM t; SET FMTONLY OFF; SELECT count(*) FROM t",
    );
    assert_eq!(c.results.len(), 2);
    assert_eq!(c.results[0].0.len(), 2);
    assert!(c.results[0].1.is_empty());
    assert_eq!(c.results[1].1[0][0], Value::Int(1));
}

/// The metadata batch Microsoft's bulk copy (mssql-python) sends first.
#[test]
fn microsoft_bulk_copy_metadata_batch() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE dbo.t (id int NOT NULL, [name] nvarchar(20), amount decimal(10,2))",
    );
    let batch = r#"SELECT @@TRANCOUNT;

DECLARE @Column_Names NVARCHAR(MAX) = NULL;
DECLARE @object_id INT = OBJECT_ID(N'[dbo].[t]');
DECLARE @sql NVARCHAR(MAX);
SET @sql = N'SELECT @CN = COALESCE(@CN + N'', '', N'''') + QUOTENAME([name]) FROM sys.all_columns WHERE [object_id] = @ObjId';
IF EXISTS (SELECT TOP 1 * FROM sys.all_columns WHERE [object_id] = OBJECT_ID('sys.all_columns') AND [name] = 'graph_type')
    SET @sql = @sql + N' AND COALESCE([graph_type], 0) NOT IN (1, 3, 4, 6, 7)';
SET @sql = @sql + N' ORDER BY [column_id] ASC';
EXEC sp_executesql @sql, N'@CN NVARCHAR(MAX) OUTPUT, @ObjId INT', @CN = @Column_Names OUTPUT, @ObjId = @object_id;

SELECT @Column_Names = COALESCE(@Column_Names, '*');

SET FMTONLY ON;
EXEC(N'SELECT ' + @Column_Names + N' FROM [dbo].[t]');
SET FMTONLY OFF;

EXEC sp_tablecollations_100 N'[dbo].[t]';"#;
    let c = ok(&mut s, batch);
    assert_eq!(c.results.len(), 3, "{:?}", c.results);
    let names: Vec<&str> = c.results[1].0.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["id", "name", "amount"]);
    assert!(c.results[1].1.is_empty());
    assert_eq!(c.results[2].1.len(), 3);
}

/// OBJECT_ID of an expression (a variable, a parameter, a concatenation)
/// resolves its text when it runs, as a literal's does
/// (https://learn.microsoft.com/en-us/sql/t-sql/functions/object-id-transact-sql).
#[test]
fn object_id_of_an_expression_resolves_when_it_runs() {
    let (_e, mut s) = setup();
    ok(
        &mut s,
        "CREATE TABLE dbo.Ventas (id int NOT NULL PRIMARY KEY)",
    );
    let c = ok(
        &mut s,
        "DECLARE @n nvarchar(200) = N'[dbo].[ventas]'; \
         SELECT CASE WHEN OBJECT_ID(@n) = OBJECT_ID(N'dbo.Ventas') THEN 1 ELSE 0 END, \
                CASE WHEN OBJECT_ID(N'dbo.' + N'Ventas', 'U') IS NULL THEN 0 ELSE 1 END, \
                CASE WHEN OBJECT_ID(DB_NAME() + N'..ventas') IS NULL THEN 0 ELSE 1 END, \
                CASE WHEN OBJECT_ID(@n + N'x') IS NULL THEN 1 ELSE 0 END, \
                CASE WHEN OBJECT_ID(CAST(NULL AS nvarchar(10))) IS NULL THEN 1 ELSE 0 END",
    );
    let row = &c.results[0].1[0];
    assert!(row.iter().all(|v| *v == Value::Int(1)), "{row:?}");
    // And in a batch that drops what exists, the way a careful script does.
    ok(
        &mut s,
        "DECLARE @t nvarchar(200) = N'dbo.Ventas'; IF OBJECT_ID(@t, 'U') IS NOT NULL DROP TABLE dbo.Ventas",
    );
    let c = ok(
        &mut s,
        "SELECT CASE WHEN OBJECT_ID(N'dbo.Ventas') IS NULL THEN 1 ELSE 0 END",
    );
    assert_eq!(c.results[0].1[0][0], Value::Int(1));
}

#[test]
fn describe_first_result_set() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE t (id bigint NOT NULL PRIMARY KEY, amount decimal(18,2), at datetime2(3), who nvarchar(40))");
    ok(&mut s, "INSERT INTO t VALUES (1, 2.5, '2024-01-01', N'x')");
    let c = ok(&mut s, "EXEC sp_describe_first_result_set @tsql = N'SELECT id, amount, at, who, CAST(1 AS smallint) AS k FROM t WHERE id > 0'");
    let rows = &c.results[0].1;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1][2], Value::String("amount".into()));
    assert_eq!(rows[1][5], Value::String("decimal(18,2)".into()));
    assert_eq!(
        (rows[1][7].clone(), rows[1][8].clone()),
        (Value::Int(18), Value::Int(2))
    );
    assert_eq!(rows[0][3], Value::Bit(false));
    assert_eq!(rows[2][5], Value::String("datetime2(3)".into()));
    assert_eq!(rows[3][6], Value::Int(80));
    assert_eq!(rows[4][5], Value::String("smallint".into()));
    // sys.columns reports the same facts.
    let c = ok(
        &mut s,
        "SELECT max_length, precision, scale FROM sys.columns WHERE name = 'at'",
    );
    assert_eq!(
        c.results[0].1[0],
        vec![Value::Int(7), Value::Int(23), Value::Int(3)]
    );
    // Nothing ran: the table still has one row.
    let c = ok(&mut s, "SELECT count(*) FROM t");
    assert_eq!(c.results[0].1[0][0], Value::Int(1));
    assert_eq!(
        run(
            &mut s,
            "EXEC sp_describe_first_result_set N'SELECT * FROM nope'"
        )
        .errors[0]
            .number,
        11501
    );
}

#[test]
fn order_by_in_derived_tables_needs_top() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE t (id int)");
    assert_eq!(
        run(&mut s, "SELECT * FROM (SELECT id FROM t ORDER BY id) AS q").errors[0].number,
        1033
    );
    ok(
        &mut s,
        "SELECT * FROM (SELECT TOP 5 id FROM t ORDER BY id) AS q ORDER BY id",
    );
    ok(
        &mut s,
        "WITH c AS (SELECT id FROM t) SELECT * FROM c ORDER BY id",
    );
}

#[test]
fn an_unknown_column_is_named_as_sql_server_names_it() {
    let e = Engine::open(None).unwrap();
    e.run_script("CREATE DATABASE D\nGO\nUSE D\nGO\nCREATE TABLE dbo.t (a int)\nGO\n")
        .unwrap();
    for q in ["SELECT nope FROM D.dbo.t", "SELECT nope FROM dbo.t AS x"] {
        let err = e.run_script(&format!("USE D\nGO\n{q}\nGO\n")).unwrap_err();
        assert!(
            err.to_string().ends_with(": Invalid column name 'nope'."),
            "{q}: {err}"
        );
    }
}

/// An integer column compared with a wider-than-int literal (T-SQL types it
/// numeric(p,0)) compares exactly: the integer becomes decimal(19,0), not
/// the literal's narrower type, so nothing overflows.
#[test]
fn integers_compare_exactly_with_numeric_literals() {
    let (_e, mut s) = setup();
    ok(&mut s, "CREATE TABLE dbo.n (b bigint, i int)");
    ok(
        &mut s,
        "INSERT INTO dbo.n VALUES (2000000000000000, 7), (-9223372036854775808, 2147483647)",
    );
    let c = ok(
        &mut s,
        "SELECT COUNT(*) FROM dbo.n WHERE b < 500250000000003;\
         SELECT COUNT(*) FROM dbo.n WHERE b >= 500250000000003.5;\
         SELECT COUNT(*) FROM dbo.n WHERE i < 2147483648;\
         SELECT CASE WHEN CAST(2000000000000000 AS bigint) > 500250000000003 THEN 1 ELSE 0 END",
    );
    let first = |k: usize| c.results[k].1[0][0].clone();
    assert_eq!(first(0), Value::Int(1));
    assert_eq!(first(1), Value::Int(1));
    assert_eq!(first(2), Value::Int(2));
    assert_eq!(first(3), Value::Int(1));
}

/// A rowversion column as Microsoft's page describes it
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/rowversion-transact-sql):
/// binary(8) the engine sets from the database's counter on every insert
/// and every update of the row (even one that changes no value), unique in
/// the database, the last one used being @@DBTS; no explicit value (273,
/// DEFAULT allowed), no SET (272), one per table (2738); `timestamp` is its
/// synonym, and the type catalogs name it so.
#[test]
fn rowversion_columns_are_numbered_by_the_engine() {
    let (_e, mut s) = setup();
    let dbts = |s: &mut Session| match one(s, "SELECT @@DBTS") {
        Value::Binary(b) => i64::from_be_bytes(b.try_into().unwrap()),
        other => panic!("@@DBTS is {other:?}"),
    };
    let versions = |s: &mut Session| -> Vec<(i64, i64)> {
        rows(s, "SELECT id, CAST(rv AS bigint) FROM dbo.v ORDER BY id")
            .into_iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Int(i), Value::Int(v)) => (*i, *v),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    ok(
        &mut s,
        "CREATE TABLE dbo.v (id int NOT NULL PRIMARY KEY, name nvarchar(10) NULL, rv rowversion)",
    );
    ok(&mut s, "CREATE TABLE dbo.w (id int NOT NULL, ts timestamp)");
    let start = dbts(&mut s);
    ok(
        &mut s,
        "INSERT INTO dbo.v (id, name) VALUES (1, N'a'), (2, N'b'), (3, N'c')",
    );
    let v = versions(&mut s);
    let stamps: Vec<i64> = v.iter().map(|x| x.1).collect();
    assert!(stamps.iter().all(|&x| x > start), "{v:?} after {start}");
    let mut unique = stamps.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{v:?}");
    assert_eq!(dbts(&mut s), *unique.last().unwrap());
    // Another table of the database draws from the same counter.
    ok(&mut s, "INSERT INTO dbo.w (id) VALUES (9)");
    let w = match one(&mut s, "SELECT ts FROM dbo.w") {
        Value::Binary(b) => i64::from_be_bytes(b.try_into().unwrap()),
        other => panic!("{other:?}"),
    };
    assert_eq!(w, dbts(&mut s));
    assert!(w > *unique.last().unwrap());
    // An update that changes nothing still stamps its row, and only its row.
    ok(&mut s, "UPDATE dbo.v SET name = name WHERE id = 2");
    let after = versions(&mut s);
    assert_eq!(after[0], v[0]);
    assert_eq!(after[2], v[2]);
    assert_eq!(after[1].1, dbts(&mut s));
    assert!(after[1].1 > w);
    // What changed since a stamp: the incremental read rowversion is for.
    let changed = rows(
        &mut s,
        &format!("SELECT id FROM dbo.v WHERE rv > CAST({w} AS binary(8)) ORDER BY id"),
    );
    assert_eq!(changed, vec![vec![Value::Int(2)]]);
    // DEFAULT is the one value an INSERT may give it.
    ok(
        &mut s,
        "INSERT INTO dbo.v (id, name, rv) VALUES (4, N'd', DEFAULT)",
    );
    assert_eq!(versions(&mut s)[3].1, dbts(&mut s));
    for (sql, number) in [
        ("INSERT INTO dbo.v (id, rv) VALUES (5, 0x01)", 273),
        (
            "INSERT INTO dbo.v (id, rv) SELECT 6, rv FROM dbo.v WHERE id = 1",
            273,
        ),
        ("UPDATE dbo.v SET rv = 0x01 WHERE id = 1", 272),
        ("CREATE TABLE dbo.two (a rowversion, b timestamp)", 2738),
    ] {
        let e = err(&mut s, sql);
        assert_eq!(e.number, number, "{sql}: {}", e.message);
    }
    assert!(err(&mut s, "INSERT INTO dbo.v (id, rv) VALUES (5, 0x01)")
        .message
        .starts_with("Cannot insert an explicit value into a timestamp column."));
    // A rolled-back insert leaves no row; the next still gets a new stamp.
    let before = dbts(&mut s);
    ok(
        &mut s,
        "BEGIN TRAN; INSERT INTO dbo.v (id) VALUES (7); ROLLBACK",
    );
    ok(&mut s, "INSERT INTO dbo.v (id) VALUES (8)");
    assert!(versions(&mut s).last().unwrap().1 > before);
    // The catalogs name the type as SQL Server does.
    assert_eq!(
        rows(
            &mut s,
            "SELECT DATA_TYPE, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'v' AND COLUMN_NAME = 'rv'"
        ),
        vec![vec![Value::String("timestamp".into()), Value::String("NO".into())]]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT max_length, is_nullable FROM sys.columns \
             WHERE object_id = OBJECT_ID('dbo.w') AND name = 'ts'"
        ),
        vec![vec![Value::Int(8), Value::Bit(false)]]
    );
}
/// Integers and binary convert through their bytes, most significant
/// first, cut or zero-padded on the left — the examples of
/// https://learn.microsoft.com/en-us/sql/t-sql/data-types/binary-and-varbinary-transact-sql
/// (123456 is 0x0001E240 as binary(4), 0xE240 as binary(2), and that plus
/// one read back as int is 57921).
#[test]
fn integers_and_binary_convert_through_their_bytes() {
    let (_e, mut s) = setup();
    let bin = |b: &[u8]| vec![vec![Value::Binary(b.to_vec())]];
    assert_eq!(
        rows(&mut s, "SELECT CAST(123456 AS binary(4))"),
        bin(&[0, 1, 0xE2, 0x40])
    );
    assert_eq!(
        rows(&mut s, "SELECT CAST(123456 AS binary(2))"),
        bin(&[0xE2, 0x40])
    );
    assert_eq!(
        rows(&mut s, "SELECT CAST(CAST(2004 AS bigint) AS binary(8))"),
        bin(&[0, 0, 0, 0, 0, 0, 7, 0xD4])
    );
    assert_eq!(
        rows(&mut s, "SELECT CAST(CAST(-1 AS bigint) AS binary(8))"),
        bin(&[0xFF; 8])
    );
    assert_eq!(
        rows(&mut s, "SELECT CAST(-1 AS binary(8))"),
        bin(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    );
    assert_eq!(one(&mut s, "SELECT CAST(0xE241 AS int)"), Value::Int(57921));
    assert_eq!(
        one(&mut s, "SELECT CAST(0x0001E240 AS int)"),
        Value::Int(123456)
    );
    assert_eq!(
        one(&mut s, "SELECT CAST(0xFFFFFFFF AS int)"),
        Value::Int(-1)
    );
    assert_eq!(
        one(&mut s, "SELECT CAST(0x0100000001 AS tinyint)"),
        Value::Int(1)
    );
    assert_eq!(
        one(
            &mut s,
            "DECLARE @b binary(2) = 123456; SELECT CAST(@b AS int) + 1"
        ),
        Value::Int(57921)
    );
}
