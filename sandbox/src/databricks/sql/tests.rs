use super::types::{Cell, DbxType};
use super::*;

fn engine() -> (SqlEngine, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dbx-sql-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = SqlEngine::open(&dir.join("db.sqlite"), &dir.join("volumes")).unwrap();
    (e, dir)
}

fn q(e: &SqlEngine, sql: &str) -> ResultSet {
    e.execute(sql, &SessionDefaults::default(), &[])
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

#[test]
fn ddl_dml_and_types() {
    let (e, dir) = engine();
    e.run_script(
        "CREATE CATALOG IF NOT EXISTS bridge; CREATE SCHEMA IF NOT EXISTS bridge.events;
         CREATE TABLE IF NOT EXISTS `bridge`.events.t (id BIGINT NOT NULL, name STRING, amount DECIMAL(18,4),
           ok BOOLEAN, d DATE, ts TIMESTAMP, tags ARRAY<STRING>, x DOUBLE) USING DELTA;
         INSERT INTO bridge.events.t VALUES (1, 'a', 12.5, true, '2024-01-05', '2024-01-05 10:30:00', array('x','y'), 1.5),
           (2, 'b''c', '3.14159', false, DATE '2024-02-01', current_timestamp(), array('z'), NULL);",
    )
    .unwrap();
    let rs = q(&e, "SELECT * FROM bridge.events.t ORDER BY id");
    let tys: Vec<String> = rs.columns.iter().map(|c| c.ty.to_string()).collect();
    assert_eq!(
        tys,
        [
            "BIGINT",
            "STRING",
            "DECIMAL(18,4)",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP",
            "ARRAY<STRING>",
            "DOUBLE"
        ]
    );
    assert_eq!(rs.rows.len(), 2);
    assert_eq!(
        types::render(&rs.rows[0][2], &rs.columns[2].ty).as_deref(),
        Some("12.5000")
    );
    assert_eq!(
        types::render(&rs.rows[1][2], &rs.columns[2].ty).as_deref(),
        Some("3.1416")
    );
    assert_eq!(
        types::render(&rs.rows[0][3], &DbxType::Boolean).as_deref(),
        Some("true")
    );
    assert_eq!(rs.rows[0][6], Cell::Text("[\"x\",\"y\"]".into()));
    let c = q(&e, "SELECT count(*) FROM bridge.events.t WHERE amount > 5");
    assert_eq!(c.columns[0].name, "count(1)");
    assert_eq!(c.columns[0].ty, DbxType::Long);
    assert_eq!(c.rows[0][0], Cell::Int(1));
    let u = q(
        &e,
        "UPDATE bridge.events.t SET name = upper(name) WHERE id = 2",
    );
    assert_eq!(u.columns[0].name, "num_affected_rows");
    assert_eq!(u.rows[0][0], Cell::Int(1));
    let bad = e.execute(
        "INSERT INTO bridge.events.t (id, d) VALUES (3, 'nope')",
        &SessionDefaults::default(),
        &[],
    );
    assert!(bad.unwrap_err().message.contains("CAST_INVALID_INPUT"));
    let missing = e.execute(
        "SELECT * FROM main.nope.t",
        &SessionDefaults::default(),
        &[],
    );
    assert!(missing
        .unwrap_err()
        .message
        .contains("TABLE_OR_VIEW_NOT_FOUND"));
    let p = e
        .execute(
            "SELECT name FROM bridge.events.t WHERE id = :id AND d >= :d",
            &SessionDefaults::default(),
            &[
                Param {
                    name: "id".into(),
                    ty: DbxType::Long,
                    value: Some("1".into()),
                },
                Param {
                    name: "d".into(),
                    ty: DbxType::Date,
                    value: Some("2024-01-01".into()),
                },
            ],
        )
        .unwrap();
    assert_eq!(p.rows, vec![vec![Cell::Text("a".into())]]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merge_and_delete() {
    let (e, dir) = engine();
    e.run_script(
        "CREATE SCHEMA main.demo; CREATE TABLE main.demo.tgt (id INT, v STRING);
         INSERT INTO main.demo.tgt VALUES (1, 'one'), (2, 'two'), (3, 'three');
         CREATE TABLE main.demo.src (id INT, v STRING, del BOOLEAN);
         INSERT INTO main.demo.src VALUES (1, 'uno', false), (2, 'dos', true), (4, 'cuatro', false);",
    )
    .unwrap();
    let m = q(
        &e,
        "MERGE INTO main.demo.tgt AS t USING main.demo.src AS s ON t.id = s.id
         WHEN MATCHED AND s.del THEN DELETE
         WHEN MATCHED THEN UPDATE SET v = s.v
         WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)",
    );
    let vals: Vec<&Cell> = m.rows[0].iter().collect();
    assert_eq!(
        vals,
        [&Cell::Int(3), &Cell::Int(1), &Cell::Int(1), &Cell::Int(1)]
    );
    let rs = q(&e, "SELECT id, v FROM main.demo.tgt ORDER BY id");
    assert_eq!(
        rs.rows,
        vec![
            vec![Cell::Int(1), Cell::Text("uno".into())],
            vec![Cell::Int(3), Cell::Text("three".into())],
            vec![Cell::Int(4), Cell::Text("cuatro".into())],
        ]
    );
    let d = q(&e, "DELETE FROM main.demo.tgt WHERE id > 3");
    assert_eq!(d.rows[0][0], Cell::Int(1));
    let r = q(&e, "SELECT id FROM range(5) ORDER BY id DESC LIMIT 2");
    assert_eq!(r.rows, vec![vec![Cell::Int(4)], vec![Cell::Int(3)]]);
    let u = q(
        &e,
        "SELECT uuid() AS u, current_timestamp() AS ts, array('a','b') AS arr",
    );
    assert_eq!(u.columns[1].ty, DbxType::Timestamp);
    assert_eq!(u.columns[2].ty.to_string(), "ARRAY<STRING>");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn spark_forms_the_bridge_and_users_write() {
    let (e, dir) = engine();
    e.run_script(
        "CREATE SCHEMA IF NOT EXISTS main.demo;
         USE main.demo;
         CREATE TABLE `sales` (`id` INT, country STRING, amount DECIMAL(10,2), d DATE);
         INSERT INTO sales VALUES (1, 'CO', 10.00, '2024-01-01'), (2, 'CO', 5.50, '2024-01-02'), (3, 'MX', 7.25, '2024-01-02');
         CREATE TABLE main.demo.by_country AS SELECT country, sum(amount) AS total, count(*) AS n FROM main.demo.sales GROUP BY country;
         CREATE TABLE main.demo.copy (id INT, country STRING);
         INSERT INTO main.demo.copy SELECT id, country FROM main.demo.sales WHERE amount > 6;",
    )
    .unwrap();
    let t = q(&e, "SELECT * FROM main.demo.by_country ORDER BY country");
    assert_eq!(t.columns[0].ty, DbxType::String);
    assert_eq!(t.columns[1].ty.to_string(), "DECIMAL(20,2)");
    assert_eq!(t.columns[2].ty, DbxType::Long);
    assert_eq!(
        types::render(&t.rows[0][1], &t.columns[1].ty).as_deref(),
        Some("15.50")
    );
    let c = q(
        &e,
        "WITH x AS (SELECT id FROM main.demo.copy) SELECT s.id, s.country FROM x JOIN main.demo.sales AS s ON s.id = x.id ORDER BY s.id",
    );
    assert_eq!(c.rows.len(), 2);
    let dflt = e
        .execute(
            "SELECT count(*) AS n FROM sales WHERE d = DATE '2024-01-02'",
            &SessionDefaults {
                catalog: "main".into(),
                schema: "demo".into(),
                ..SessionDefaults::default()
            },
            &[],
        )
        .unwrap();
    assert_eq!(dflt.rows[0][0], Cell::Int(2));
    let drop = q(&e, "DROP TABLE IF EXISTS main.demo.copy");
    assert!(drop.columns.is_empty());
    assert!(e
        .execute(
            "SELECT * FROM main.demo.copy",
            &SessionDefaults::default(),
            &[]
        )
        .is_err());
    let nn = e.execute(
        "CREATE TABLE main.demo.nn (id INT NOT NULL)",
        &SessionDefaults::default(),
        &[],
    );
    assert!(nn.is_ok());
    let err = e
        .execute(
            "INSERT INTO main.demo.nn VALUES (NULL)",
            &SessionDefaults::default(),
            &[],
        )
        .unwrap_err();
    assert!(err.message.contains("NOT_NULL"), "{}", err.message);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merge_with_star_actions() {
    let (e, dir) = engine();
    e.run_script(
        "CREATE SCHEMA main.demo;
         CREATE TABLE main.demo.tgt (id INT, v STRING, amount DECIMAL(10,2));
         INSERT INTO main.demo.tgt VALUES (1, 'one', 1.5), (2, 'two', 2.5);
         CREATE TABLE main.demo.src (amount DECIMAL(10,2), extra STRING, V STRING, id INT);
         INSERT INTO main.demo.src VALUES (10.25, 'x', 'uno', 1), (30, 'y', 'tres', 3);",
    )
    .unwrap();
    // Columns pair by name (any order, any case); extra source columns are
    // ignored.
    let m = q(
        &e,
        "MERGE INTO main.demo.tgt AS t USING main.demo.src AS s ON t.id = s.id
         WHEN MATCHED THEN UPDATE SET *
         WHEN NOT MATCHED THEN INSERT *",
    );
    assert_eq!(
        m.rows[0],
        vec![Cell::Int(2), Cell::Int(1), Cell::Int(0), Cell::Int(1)]
    );
    let rs = q(&e, "SELECT id, v, amount FROM main.demo.tgt ORDER BY id");
    let shown: Vec<Vec<Option<String>>> = rs
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&rs.columns)
                .map(|(c, col)| types::render(c, &col.ty))
                .collect()
        })
        .collect();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        shown,
        vec![
            vec![s("1"), s("uno"), s("10.25")],
            vec![s("2"), s("two"), s("2.50")],
            vec![s("3"), s("tres"), s("30.00")],
        ]
    );

    // A derived source works the same way.
    q(
        &e,
        "MERGE INTO main.demo.tgt t USING (SELECT 2 AS id, 'dos' AS v, 0 AS amount) s ON t.id = s.id
         WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    );
    let rs = q(&e, "SELECT v FROM main.demo.tgt WHERE id = 2");
    assert_eq!(rs.rows, vec![vec![Cell::Text("dos".into())]]);

    // A target column missing from the source is an analysis error.
    let err = e
        .execute(
            "MERGE INTO main.demo.tgt t USING (SELECT 9 AS id, 'x' AS v) s ON t.id = s.id
             WHEN NOT MATCHED THEN INSERT *",
            &SessionDefaults::default(),
            &[],
        )
        .expect_err("missing column");
    assert_eq!(err.class, "DELTA_MERGE_UNRESOLVED_EXPRESSION");
    assert_eq!(
        q(&e, "SELECT count(*) FROM main.demo.tgt").rows[0][0],
        Cell::Int(3)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn update_and_delete_take_where_subqueries_not_joins() {
    let (e, dir) = engine();
    e.run_script(
        "CREATE SCHEMA main.demo;
         CREATE TABLE main.demo.orders (oid INT, status STRING);
         INSERT INTO main.demo.orders VALUES (1, 'open'), (2, 'open'), (3, 'open');
         CREATE TABLE main.demo.returned (oid INT);
         INSERT INTO main.demo.returned VALUES (2), (3);",
    )
    .unwrap();
    // The documented forms: an alias and correlated / IN subqueries.
    let u = q(
        &e,
        "UPDATE main.demo.orders AS t1 SET status = 'returned'
         WHERE EXISTS (SELECT oid FROM main.demo.returned WHERE t1.oid = oid)",
    );
    assert_eq!(u.rows[0][0], Cell::Int(2));
    let d = q(
        &e,
        "DELETE FROM main.demo.orders o WHERE o.oid IN (SELECT oid FROM main.demo.returned WHERE oid > 2)",
    );
    assert_eq!(d.rows[0][0], Cell::Int(1));
    let rs = q(&e, "SELECT oid, status FROM main.demo.orders ORDER BY oid");
    assert_eq!(
        rs.rows,
        vec![
            vec![Cell::Int(1), Cell::Text("open".into())],
            vec![Cell::Int(2), Cell::Text("returned".into())],
        ]
    );
    // FROM / USING / JOIN are not Databricks SQL: a syntax error, as there.
    for sql in [
        "UPDATE main.demo.orders t SET status = 'x' FROM main.demo.returned r WHERE t.oid = r.oid",
        "DELETE FROM main.demo.orders t USING main.demo.returned r WHERE t.oid = r.oid",
    ] {
        match e.execute(sql, &SessionDefaults::default(), &[]) {
            Err(err) => assert_eq!(err.class, "PARSE_SYNTAX_ERROR", "{sql}"),
            Ok(_) => panic!("{sql} should fail"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn null_safe_equality() {
    let (e, dir) = engine();
    let rs = q(
        &e,
        "SELECT 1 <=> 1 AS a, NULL <=> NULL AS b, 1 <=> NULL AS c, 'x' <=> 'y' AS d",
    );
    assert_eq!(
        rs.rows,
        vec![vec![Cell::Int(1), Cell::Int(1), Cell::Int(0), Cell::Int(0)]]
    );
    assert_eq!(rs.columns[0].ty, DbxType::Boolean);
    let _ = std::fs::remove_dir_all(dir);
}
