//! Reverse sync end to end: events written in the Databricks double the way
//! users write them, applied by the real binary into the SQL Server sandbox,
//! read back with tiberius and compared value by value.

use crate::common;

use std::process::Output;

use bridge_sandbox::databricks::sql::types::render as render_cell;
use common::server::{World, DBX_SYNC};
use futures_util::TryStreamExt;
use tiberius::Client;
use tokio::net::TcpStream;

/// Spark types on the source side, SQL Server types on the target side:
/// every type the extraction maps, in reverse.
const SOURCE: &str = "
CREATE TABLE main.demo.tipos (
  id INT NOT NULL, c_bit BOOLEAN, c_tiny SMALLINT, c_small SMALLINT, c_int INT, c_big BIGINT,
  c_dec38 DECIMAL(38,10), c_num DECIMAL(18,4), c_money DECIMAL(19,4), c_smallmoney DECIMAL(10,4),
  c_float DOUBLE, c_real FLOAT, c_varchar STRING, c_nvarchar STRING, c_nvmax STRING,
  c_varbinary BINARY, c_date DATE, c_time STRING, c_datetime TIMESTAMP_NTZ, c_sdt TIMESTAMP_NTZ,
  c_dt2 TIMESTAMP_NTZ, c_dto TIMESTAMP, c_guid STRING);
INSERT INTO main.demo.tipos VALUES
 (1, true, 255, -32768, -2147483648, -9223372036854775808,
  1234567890123456789012345678.9012345678, 12345678901234.5678, -922337203685477.5808, -214748.3648,
  1.5e308, -3.25, 'hola', 'ñandú 🚀 日本', 'línea larga', X'DEADBEEF', DATE '0001-01-01',
  '23:59:59.9999999', TIMESTAMP_NTZ '1753-01-01 00:00:00', TIMESTAMP_NTZ '1900-01-01 00:00:00',
  TIMESTAMP_NTZ '1969-12-31 23:59:59.123456', TIMESTAMP '2024-05-01 05:00:00.123456',
  '6F9619FF-8B86-D011-B42D-00C04FC964FF'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, 0, 32767, 2147483647, 9223372036854775807, -0.0000000001, -99999999999999.9999,
  922337203685477.5807, 214748.3647, -2.5, 1.5, '', '', '', X'', DATE '9999-12-31',
  '00:00:00', TIMESTAMP_NTZ '9999-12-31 23:59:59.5', TIMESTAMP_NTZ '2079-06-06 23:59:00',
  TIMESTAMP_NTZ '9999-12-31 23:59:59.999999', TIMESTAMP '0001-01-01 08:00:00',
  '00000000-0000-0000-0000-000000000000');
";

const TARGET: &str = "
CREATE DATABASE Sync
GO
USE Sync
GO
CREATE TABLE dbo.tipos (
    id int NOT NULL PRIMARY KEY,
    c_bit bit, c_tiny tinyint, c_small smallint, c_int int, c_big bigint,
    c_dec38 decimal(38,10), c_num numeric(18,4), c_money money, c_smallmoney smallmoney,
    c_float float, c_real real, c_varchar varchar(20), c_nvarchar nvarchar(30),
    c_nvmax nvarchar(max), c_varbinary varbinary(10), c_date date,
    c_time time(7), c_datetime datetime, c_sdt smalldatetime,
    c_dt2 datetime2(7), c_dto datetimeoffset(7), c_guid uniqueidentifier)
GO
CREATE TABLE dbo.solo_lectura (id int NOT NULL PRIMARY KEY)
GO
";

/// The same columns again, for the operations that stage rows in a temp table.
fn tipos2(w: &World) {
    tipos_copy(w, "tipos2");
}

/// `Sync.dbo.<name>` with the columns of `Sync.dbo.tipos`.
fn tipos_copy(w: &World, name: &str) {
    let ddl = TARGET
        .split("GO")
        .find(|b| b.contains("CREATE TABLE dbo.tipos"))
        .unwrap()
        .replace("dbo.tipos", &format!("dbo.{name}"));
    w.sql
        .engine()
        .run_script(&format!("USE Sync\nGO\n{ddl}\nGO\n"))
        .unwrap();
}

fn world(tag: &str) -> World {
    seeded(World::new(tag))
}

/// The sync's tables on both sides of `w`.
fn seeded(w: World) -> World {
    w.sql.engine().run_script(TARGET).unwrap();
    dbx(
        &w,
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sandbox/seed/databricks_demo.sql"
        ))
        .unwrap(),
    );
    dbx(&w, SOURCE);
    dbx(&w, "DELETE FROM bridge.events.bridge_events");
    w.grant_sync_sources();
    w
}

/// A world with `Sync.dbo.log (id, n)` to write into and
/// `main.demo.lote` holding the rows (1, 1) .. (`rows`, `rows`).
fn log_world(tag: &str, rows: u32) -> World {
    let w = world(tag);
    w.sql
        .engine()
        .run_script("USE Sync\nGO\nCREATE TABLE dbo.log (id int, n int)\nGO\n")
        .unwrap();
    let values: Vec<String> = (1..=rows).map(|i| format!("({i}, {i})")).collect();
    dbx(
        &w,
        &format!(
            "CREATE TABLE main.demo.lote (id INT, n INT); INSERT INTO main.demo.lote VALUES {};",
            values.join(", ")
        ),
    );
    w
}

fn dbx(w: &World, sql: &str) {
    w.dbx.engine().run_script(sql).unwrap();
}

/// The deck's INSERT INTO bridge_events, with the test's values: for
/// proyecto-sync as its Databricks principal over the Statement Execution
/// API; for anyone else as the bridge's principal (as `POST /sync/events`
/// writes them), so the checks after the writer's are what is tested.
fn event(w: &World, op: &str, source: &str, target: &str, keys: &[&str], user: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let keys: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    let sql = format!(
        "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
         primary_keys, requested_by, status, attempts, created_at) \
         VALUES ('{id}', '{op}', '{source}', '{target}', array({}), '{user}', 'pending', 0, current_timestamp())",
        keys.join(", ")
    );
    if user == "proyecto-sync" {
        let (state, err) = w.dbx_as(DBX_SYNC, &sql);
        assert_eq!(state, "SUCCEEDED", "{err:?}");
    } else {
        dbx(w, &sql);
    }
    id
}

/// The event's row: status, rows_expected, rows_affected, discrepancy, error_message.
fn status(
    w: &World,
    id: &str,
) -> (
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
) {
    let r = w
        .dbx
        .engine()
        .execute(
            &format!(
                "SELECT status, rows_expected, rows_affected, discrepancy, error_message \
                 FROM bridge.events.bridge_events WHERE event_id = '{id}'"
            ),
            &Default::default(),
            &[],
        )
        .unwrap();
    let row = &r.rows[0];
    let text = |i: usize| render_cell(&row[i], &r.columns[i].ty);
    let num = |i: usize| text(i).and_then(|v| v.parse().ok());
    (text(0).unwrap_or_default(), num(1), num(2), num(3), text(4))
}

fn run_once(w: &World) -> Output {
    w.run(&["sync", "run-once", "--timeout", "10"])
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

async fn sql(w: &World) -> Client<tokio_util::compat::Compat<TcpStream>> {
    bridge_testkit::sqlserver::connect(w.sql.port(), tiberius::EncryptionLevel::Off).await
}

/// Every row of a query, each value rendered as text by type (NULL as "NULL").
async fn rows(w: &World, query: &str) -> Vec<Vec<String>> {
    let mut c = sql(w).await;
    let mut s = c.simple_query(query).await.unwrap();
    let mut out = Vec::new();
    while let Some(item) = s.try_next().await.unwrap() {
        if let tiberius::QueryItem::Row(r) = item {
            out.push(r.into_iter().map(render).collect());
        }
    }
    out
}

fn render(d: tiberius::ColumnData<'static>) -> String {
    use tiberius::ColumnData as C;
    use tiberius::FromSql;
    let s = match &d {
        C::Bit(v) => v.map(|v| v.to_string()),
        C::U8(v) => v.map(|v| v.to_string()),
        C::I16(v) => v.map(|v| v.to_string()),
        C::I32(v) => v.map(|v| v.to_string()),
        C::I64(v) => v.map(|v| v.to_string()),
        C::F32(v) => v.map(|v| v.to_string()),
        C::F64(v) => v.map(|v| v.to_string()),
        C::Numeric(v) => v.map(|v| v.to_string()),
        C::String(v) => v.as_ref().map(|v| v.to_string()),
        C::Binary(v) => v
            .as_ref()
            .map(|v| v.iter().map(|b| format!("{b:02X}")).collect()),
        C::Guid(v) => v.map(|v| v.to_string().to_uppercase()),
        C::Date(_) => chrono::NaiveDate::from_sql(&d)
            .unwrap()
            .map(|v| v.to_string()),
        C::Time(_) => chrono::NaiveTime::from_sql(&d)
            .unwrap()
            .map(|v| v.format("%H:%M:%S%.9f").to_string()),
        C::DateTime(_) | C::SmallDateTime(_) | C::DateTime2(_) => {
            chrono::NaiveDateTime::from_sql(&d)
                .unwrap()
                .map(|v| v.format("%Y-%m-%d %H:%M:%S%.9f").to_string())
        }
        C::DateTimeOffset(_) => chrono::DateTime::<chrono::FixedOffset>::from_sql(&d)
            .unwrap()
            .map(|v| v.format("%Y-%m-%d %H:%M:%S%.9f %:z").to_string()),
        other => Some(format!("{other:?}")),
    };
    s.unwrap_or_else(|| "NULL".into())
}

/// The target's rows; money read as decimal (tiberius reads money as f64).
const TIPOS: &str = "SELECT id, c_bit, c_tiny, c_small, c_int, c_big, c_dec38, c_num, \
    CAST(c_money AS decimal(19,4)), CAST(c_smallmoney AS decimal(10,4)), c_float, c_real, c_varchar, \
    c_nvarchar, c_nvmax, c_varbinary, c_date, c_time, c_datetime, c_sdt, c_dt2, c_dto, c_guid \
    FROM Sync.dbo.tipos ORDER BY id";

fn expected_tipos() -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&[
            "1",
            "true",
            "255",
            "-32768",
            "-2147483648",
            "-9223372036854775808",
            "1234567890123456789012345678.9012345678",
            "12345678901234.5678",
            "-922337203685477.5808",
            "-214748.3648",
            &1.5e308f64.to_string(),
            "-3.25",
            "hola",
            "ñandú 🚀 日本",
            "línea larga",
            "DEADBEEF",
            "0001-01-01",
            "23:59:59.999999900",
            "1753-01-01 00:00:00.000000000",
            "1900-01-01 00:00:00.000000000",
            "1969-12-31 23:59:59.123456000",
            "2024-05-01 05:00:00.123456000 +00:00",
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        ]),
        {
            let mut r = vec!["2".to_string()];
            r.extend(std::iter::repeat_n("NULL".to_string(), 22));
            r
        },
        s(&[
            "3",
            "false",
            "0",
            "32767",
            "2147483647",
            "9223372036854775807",
            "-0.0000000001",
            "-99999999999999.9999",
            "922337203685477.5807",
            "214748.3647",
            "-2.5",
            "1.5",
            "",
            "",
            "",
            "",
            "9999-12-31",
            "00:00:00.000000000",
            "9999-12-31 23:59:59.500000000",
            "2079-06-06 23:59:00.000000000",
            "9999-12-31 23:59:59.999999000",
            "0001-01-01 08:00:00.000000000 +00:00",
            "00000000-0000-0000-0000-000000000000",
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_event_copies_every_type_exactly() {
    let w = world("sync-insert");
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let out = ok(&run_once(&w));
    assert!(out.contains("claimed 1, completed 1, failed 0"), "{out}");
    let (st, expected, affected, discrepancy, err) = status(&w, &id);
    assert_eq!(
        (st.as_str(), expected, affected, discrepancy, err),
        ("completed", Some(3), Some(3), None, None)
    );
    let got = rows(&w, TIPOS).await;
    let want = expected_tipos();
    for (g, e) in got.iter().zip(&want) {
        for (i, (a, b)) in g.iter().zip(e).enumerate() {
            assert_eq!(a, b, "row {} column {i}", g[0]);
        }
    }
    assert_eq!(got.len(), 3);
    // The ledger holds the event, written in the same transaction.
    let ledger = rows(
        &w,
        &format!("SELECT rows_affected FROM Sync.dbo.bridge_sync_ledger WHERE event_id = '{id}'"),
    )
    .await;
    assert_eq!(ledger, vec![vec!["3".to_string()]]);
}

async fn count(w: &World, table: &str) -> usize {
    rows(w, &format!("SELECT COUNT(*) FROM {table}")).await[0][0]
        .parse()
        .unwrap()
}

fn failed_with(w: &World, id: &str, needle: &str) {
    let (st, _, affected, _, err) = status(w, id);
    let err = err.unwrap_or_default();
    assert_eq!(st, "failed", "{id}: {err}");
    assert_eq!(affected, None);
    assert!(err.contains(needle), "'{needle}' not in: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_and_update_through_the_temp_table_keep_every_type_exact() {
    let w = world("sync-types");
    tipos2(&w);
    let up = event(
        &w,
        "UPSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos2",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &up),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    let query = TIPOS.replace("Sync.dbo.tipos", "Sync.dbo.tipos2");
    assert_eq!(rows(&w, &query).await, expected_tipos());
    // Every column updated from the same rows: nothing may change.
    let upd = event(
        &w,
        "UPDATE",
        "main.demo.tipos",
        "Sync.dbo.tipos2",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &upd),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    assert_eq!(rows(&w, &query).await, expected_tipos());

    // The same UPSERT, inserting then updating every row, written with
    // UPDATE + INSERT (the default) and with MERGE: the same rows.
    let mut by_method = Vec::new();
    for (method, table) in [("update-insert", "tipos3"), ("merge", "tipos4")] {
        tipos_copy(&w, table);
        grant_write(&w, &format!("Sync.dbo.{table}"));
        for _ in 0..2 {
            let id = event(
                &w,
                "UPSERT",
                "main.demo.tipos",
                &format!("Sync.dbo.{table}"),
                &["id"],
                "proyecto-sync",
            );
            ok(&w.run(&[
                "sync",
                "run-once",
                "--timeout",
                "10",
                "--upsert-with",
                method,
            ]));
            assert_eq!(
                status(&w, &id),
                ("completed".into(), Some(3), Some(3), None, None),
                "{method}"
            );
        }
        let rows = rows(
            &w,
            &TIPOS.replace("Sync.dbo.tipos", &format!("Sync.dbo.{table}")),
        )
        .await;
        assert_eq!(rows, expected_tipos(), "{method}");
        by_method.push(rows);
    }
    assert_eq!(by_method[0], by_method[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_upsert_and_delete_match_by_key_and_report_discrepancies() {
    let w = world("sync-ops");
    let first = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(status(&w, &first).0, "completed");
    dbx(
        &w,
        "CREATE TABLE main.demo.cambios (id INT, c_int INT, c_nvarchar STRING);
         INSERT INTO main.demo.cambios VALUES (1, 10, 'uno ✓'), (3, 30, NULL), (99, 990, 'nuevo');
         CREATE TABLE main.demo.borrar (id INT);
         INSERT INTO main.demo.borrar VALUES (2), (99), (1000);",
    );
    // UPDATE: id 99 is not in the target, which is a discrepancy, not an error.
    let upd = event(
        &w,
        "UPDATE",
        "main.demo.cambios",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &upd),
        ("completed".into(), Some(3), Some(2), Some(1), None)
    );
    let got = rows(
        &w,
        "SELECT id, c_int, c_nvarchar, c_big FROM Sync.dbo.tipos ORDER BY id",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec!["1", "10", "uno ✓", "-9223372036854775808"],
            vec!["2", "NULL", "NULL", "NULL"],
            vec!["3", "30", "NULL", "9223372036854775807"],
        ]
    );
    // UPSERT: two updated, one inserted.
    let up = event(
        &w,
        "UPSERT",
        "main.demo.cambios",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &up),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    let got = rows(
        &w,
        "SELECT id, c_int, c_nvarchar FROM Sync.dbo.tipos WHERE id = 99",
    )
    .await;
    assert_eq!(got, vec![vec!["99", "990", "nuevo"]]);
    // DELETE by key, within max_delete_rows (2): id 1000 matches nothing.
    let del = event(
        &w,
        "DELETE",
        "main.demo.borrar",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &del),
        ("completed".into(), Some(3), Some(2), Some(1), None)
    );
    let ids = rows(&w, "SELECT id FROM Sync.dbo.tipos ORDER BY id").await;
    assert_eq!(ids, vec![vec!["1"], vec!["3"]]);

    // DELETE above the cap: refused, nothing deleted, the reason on the event.
    dbx(&w, "INSERT INTO main.demo.borrar VALUES (1), (3)");
    dbx(&w, "INSERT INTO main.demo.cambios VALUES (2, 20, 'dos')");
    let refill = event(
        &w,
        "UPSERT",
        "main.demo.cambios",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(status(&w, &refill).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 4);
    let big = event(
        &w,
        "DELETE",
        "main.demo.borrar",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let o = run_once(&w);
    assert!(!o.status.success());
    failed_with(&w, &big, "above max_delete_rows 2");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 4);
    let audit = w.audit_lines();
    assert!(audit
        .iter()
        .any(|l| l["event_type"] == "sync_event_refused"
            && l["detail"].as_str().unwrap().contains(&big)));
    assert!(audit
        .iter()
        .any(|l| l["event_type"] == "sync_event_applied" && l["user_name"] == "proyecto-sync"));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_that_cannot_apply_fail_with_the_reason_and_write_nothing() {
    let w = world("sync-refused");
    dbx(
        &w,
        "CREATE TABLE main.demo.malos (id INT, c_int STRING);
         INSERT INTO main.demo.malos VALUES (1, 'x');
         CREATE TABLE main.demo.dobles (id INT, c_int INT);
         INSERT INTO main.demo.dobles VALUES (1, 10), (2, 20), (1, 11);",
    );
    let cases = [
        // Two source rows for one key: which would win is undefined.
        (
            event(
                &w,
                "UPDATE",
                "main.demo.dobles",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "the source has rows with the same primary key (id); UPDATE needs one row per key",
        ),
        (
            event(
                &w,
                "UPSERT",
                "main.demo.dobles",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "the source has rows with the same primary key (id); UPSERT needs one row per key",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.tipos",
                "Sync.dbo.tipos",
                &["id"],
                "intruso",
            ),
            "not a user in permissions.yaml",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.tipos",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-mexico",
            ),
            "no write permission",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.tipos",
                "Sync.dbo.solo_lectura",
                &["id"],
                "proyecto-sync",
            ),
            "no write permission",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.nope",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "lacks SELECT on table main.demo.nope (which does not exist)",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.tipos",
                "Sync.dbo.fantasma",
                &["id"],
                "proyecto-sync",
            ),
            "does not exist",
        ),
        (
            event(
                &w,
                "UPDATE",
                "main.demo.tipos",
                "Sync.dbo.tipos",
                &["nokey"],
                "proyecto-sync",
            ),
            "primary key column nokey",
        ),
        (
            event(
                &w,
                "UPDATE",
                "main.demo.tipos",
                "Sync.dbo.tipos",
                &[],
                "proyecto-sync",
            ),
            "needs primary_keys",
        ),
        (
            event(
                &w,
                "INSERT",
                "main.demo.malos",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "type mismatch: column c_int: Databricks STRING cannot be written to SQL Server int",
        ),
        (
            event(
                &w,
                "TRUNCATE",
                "main.demo.tipos",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "unknown operation",
        ),
        (
            event(
                &w,
                "INSERT",
                "demo.tipos",
                "Sync.dbo.tipos",
                &["id"],
                "proyecto-sync",
            ),
            "catalog.schema.table",
        ),
    ];
    let o = run_once(&w);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("failed {}", cases.len())), "{out}");
    for (id, why) in &cases {
        failed_with(&w, id, why);
    }
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 0);
    // Failed events stay failed: the next poll leaves them alone.
    let again = ok(&run_once(&w));
    assert!(again.contains("events seen 0"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_commit_is_completed_from_the_ledger_not_applied_again() {
    let w = world("sync-crash");
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let o = w
        .command(&["sync", "run-once", "--timeout", "10"])
        .env("BRIDGE_FAULT_EXIT_AFTER_COMMIT", "1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(86),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Committed with its ledger row; the status was never written.
    assert_eq!(status(&w, &id).0, "processing");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    // Within the lease nobody takes it; after it, the next run does.
    let out = ok(&run_once(&w));
    assert!(out.contains("claimed 0"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = ok(&w.run(&["sync", "run-once", "--timeout", "10", "--lease", "1"]));
    assert!(out.contains("claimed 1, completed 1"), "{out}");
    assert_eq!(
        status(&w, &id),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    assert!(w
        .audit_lines()
        .iter()
        .any(|l| l["event_type"] == "sync_event_applied"
            && l["detail"]
                .as_str()
                .unwrap()
                .contains("already in the ledger")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_cut_mid_bulk_load_rolls_back_and_is_retried_once() {
    let w = world("sync-cut");
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    w.sql.faults().drop_next_bulk_loads_after_rows(2, 1);
    // Databricks throttles and fails the statements API on the way, too.
    w.dbx
        .faults()
        .throttle(2, 1, Some("/api/2.0/sql/statements"));
    let o = w.run(&[
        "sync",
        "run-once",
        "--timeout",
        "10",
        "--retry-base-ms",
        "50",
    ]);
    let out = ok(&o);
    assert!(out.contains("completed 1"), "{out}");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("applying the event failed; retrying"), "{log}");
    assert_eq!(
        status(&w, &id),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    let ledger = rows(&w, "SELECT event_id FROM Sync.dbo.bridge_sync_ledger").await;
    assert_eq!(ledger.len(), 1);

    dbx(
        &w,
        "CREATE TABLE main.demo.mas (id INT); INSERT INTO main.demo.mas VALUES (7), (8);",
    );
    let id = event(
        &w,
        "INSERT",
        "main.demo.mas",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    w.dbx
        .faults()
        .unavailable(2, Some("/api/2.0/sql/statements"));
    let out = ok(&w.run(&[
        "sync",
        "run-once",
        "--timeout",
        "10",
        "--retry-base-ms",
        "50",
    ]));
    assert!(out.contains("completed 1"), "{out}");
    assert_eq!(status(&w, &id).2, Some(2));
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_bridges_polling_one_table_apply_every_event_exactly_once() {
    let w = world("sync-two");
    w.sql
        .engine()
        .run_script("USE Sync\nGO\nCREATE TABLE dbo.log (id int, n int)\nGO\n")
        .unwrap();
    dbx(
        &w,
        "CREATE TABLE main.demo.lote (id INT, n INT);
         INSERT INTO main.demo.lote VALUES (1, 1), (2, 2), (3, 3);",
    );
    let ids: Vec<String> = (0..8)
        .map(|_| {
            event(
                &w,
                "INSERT",
                "main.demo.lote",
                "Sync.dbo.log",
                &[],
                "proyecto-sync",
            )
        })
        .collect();
    let spawn = |name: &str| {
        w.command(&["sync", "run-once", "--timeout", "10", "--instance-id", name])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("norte"), spawn("sur"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let completed = |o: &Output| {
        let out = ok(o);
        out.split("completed ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap()
    };
    assert_eq!(completed(&a) + completed(&b), ids.len());
    for id in &ids {
        assert_eq!(status(&w, id).0, "completed");
    }
    assert_eq!(count(&w, "Sync.dbo.log").await, 3 * ids.len());
    let ledger = rows(&w, "SELECT event_id FROM Sync.dbo.bridge_sync_ledger").await;
    assert_eq!(ledger.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_init_creates_the_table_and_apply_runs_without_events() {
    let w = world("sync-cli");
    let o = w.run(&["sync", "run-once", "--events-table", "bridge.otros.eventos"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("events table bridge.otros.eventos does not exist; create it with `sql-databricks-bridge sync init`"), "{err}");
    let out = ok(&w.run(&["sync", "init", "--events-table", "bridge.otros.eventos"]));
    assert!(out.contains("bridge.otros.eventos created"), "{out}");
    let out = ok(&w.run(&["sync", "init", "--events-table", "bridge.otros.eventos"]));
    assert!(out.contains("already exists"), "{out}");
    dbx(&w, "INSERT INTO bridge.otros.eventos (event_id, operation, source_table, target_table, primary_keys, requested_by, status, created_at) \
             VALUES (uuid(), 'INSERT', 'main.demo.tipos', 'Sync.dbo.tipos', array('id'), 'proyecto-sync', 'pending', current_timestamp())");
    let out = ok(&w.run(&["sync", "run-once", "--events-table", "bridge.otros.eventos"]));
    assert!(out.contains("completed 1"), "{out}");

    // Direct apply (the deck's Databricks-jobs mode): no events table.
    dbx(&w, "CREATE TABLE main.demo.cambios (id INT, c_int INT); INSERT INTO main.demo.cambios VALUES (1, 5), (4, 4);");
    let out = ok(&w.run(&[
        "sync",
        "apply",
        "--source-table",
        "main.demo.cambios",
        "--target-table",
        "Sync.dbo.tipos",
        "--operation",
        "UPDATE",
        "--primary-key",
        "id",
    ]));
    assert!(
        out.contains("2 rows read, 1 rows affected (discrepancy 1)"),
        "{out}"
    );
    let o = w.run(&[
        "sync",
        "apply",
        "--source-table",
        "main.demo.tipos",
        "--target-table",
        "Sync.dbo.tipos",
        "--operation",
        "DELETE",
        "--primary-key",
        "id",
        "--max-delete-rows",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("above max_delete_rows 1"));
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_submits_events_that_the_servers_poller_applies() {
    use serde_json::json;
    const SYNC: &str = "demo-sync-token";
    let w = world("sync-api");
    dbx(&w, "CREATE TABLE main.demo.malos (id INT, c_int STRING); INSERT INTO main.demo.malos VALUES (1, 'x');");
    let b = w.serve(&["--sync-interval", "1"]);
    // The deck's submit_sync_event, over HTTP.
    let body = json!({"operation": "INSERT", "source_table": "main.demo.tipos",
                      "target_table": "Sync.dbo.tipos", "primary_keys": ["id"]});
    let r = b
        .call("POST", "/sync/events", Some(SYNC), Some(body.clone()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["event_id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/sync/events/{id}").as_str());
    assert_eq!(r.json["status"], "pending");
    assert_eq!(r.json["requested_by"], "proyecto-sync");
    assert_eq!(r.json["primary_keys"], json!(["id"]));

    let t0 = std::time::Instant::now();
    let done = loop {
        let r = b.get(&format!("/sync/events/{id}"), SYNC).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if matches!(r.json["status"].as_str(), Some("completed" | "failed")) {
            break r.json;
        }
        assert!(t0.elapsed().as_secs() < 30, "{}\n{}", r.text, w.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rows_affected"], 3);
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);

    // One that cannot apply: it fails with the reason, listed by status.
    let bad = json!({"operation": "INSERT", "source_table": "main.demo.malos",
                     "target_table": "Sync.dbo.tipos", "primary_keys": ["id"]});
    let r = b.call("POST", "/sync/events", Some(SYNC), Some(bad)).await;
    let bad_id = r.json["event_id"].as_str().unwrap().to_string();
    let t0 = std::time::Instant::now();
    loop {
        let r = b.get("/sync/events?status=failed&limit=10", SYNC).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(e) = r.json["events"].as_array().unwrap().first() {
            assert_eq!(e["event_id"], bad_id.as_str());
            assert!(e["error_message"]
                .as_str()
                .unwrap()
                .contains("type mismatch"));
            break;
        }
        assert!(t0.elapsed().as_secs() < 30, "{}", w.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r = b.get("/sync/events?status=completed", SYNC).await;
    assert_eq!(r.json["events"][0]["event_id"], id.as_str());

    // Rights and privacy.
    let mut ro = body.clone();
    ro["target_table"] = json!("Sync.dbo.solo_lectura");
    let r = b.call("POST", "/sync/events", Some(SYNC), Some(ro)).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.text
    );
    let r = b
        .call(
            "POST",
            "/sync/events",
            Some("demo-colombia-token"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .get(&format!("/sync/events/{id}"), "demo-colombia-token")
        .await;
    assert_eq!(r.status, 404);
    let r = b.get("/sync/events", "demo-colombia-token").await;
    assert!(r.json["events"].as_array().unwrap().is_empty());
    assert_eq!(b.call("GET", "/sync/events", None, None).await.status, 401);

    // Bad requests name the field.
    let with = |k: &str, v: serde_json::Value| {
        let mut x = body.clone();
        x[k] = v;
        x
    };
    for (req, field) in [
        (with("operation", json!("TRUNCATE")), "operation"),
        (
            with("operation", json!("UPDATE"))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("primary_keys".into(), json!([]));
                    serde_json::Value::Object(o)
                })
                .unwrap(),
            "primary_keys",
        ),
        (with("source_table", json!("demo.t")), "source_table"),
        (with("target_table", json!("t")), "target_table"),
        (with("filter", json!("1=1")), "filter"),
        (with("columns", json!(["a]; drop"])), "columns"),
    ] {
        let r = b
            .call("POST", "/sync/events", Some(SYNC), Some(req.clone()))
            .await;
        assert_eq!(r.status, 422, "{req}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "{req}: {}", r.text);
    }
    let r = b.get("/sync/events?limit=0", SYNC).await;
    assert_eq!(r.status, 422);
    let m = b.call("GET", "/metrics", None, None).await.text;
    assert!(
        m.contains("bridge_sync_events_total{outcome=\"completed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("bridge_sync_events_total{outcome=\"failed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("bridge_rows_synced_total{operation=\"INSERT\"} 3"),
        "{m}"
    );
    let audit = w.audit_lines();
    assert!(audit
        .iter()
        .any(|l| l["event_type"] == "sync_event_submitted" && l["user_name"] == "proyecto-sync"));
    assert!(audit.iter().any(|l| l["event_type"] == "permission_denied"
        && l["resource"] == "sync.dbo.solo_lectura"
        && l["missing_right"] == "write on SQL Server table sync.dbo.solo_lectura"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_operator_syncs_without_a_server() {
    use sql_databricks_bridge::config::{
        DatabricksAuth, DatabricksSettings, SqlServerOverrides, SqlServerSettings,
    };
    use sql_databricks_bridge::operator::BridgeOperator;
    let w = world("sync-operator");
    let env: std::collections::HashMap<&str, String> = w.env().into_iter().collect();
    let settings =
        SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| env.get(k).cloned())
            .unwrap();
    let dbx_settings =
        DatabricksSettings::resolve(None, None, &|k| env.get(k).cloned(), None).unwrap();
    assert!(matches!(dbx_settings.auth, DatabricksAuth::Token(_)));
    let op = BridgeOperator::new(settings)
        .unwrap()
        .with_databricks(&dbx_settings)
        .unwrap()
        .with_max_delete_rows(1);
    // The deck's call.
    let r = op
        .sync_to_sql_server("main.demo.tipos", "Sync.dbo.tipos", "INSERT", &["id"])
        .await
        .unwrap();
    assert_eq!(
        (r.rows_expected, r.rows_affected, r.from_ledger),
        (3, 3, false)
    );
    assert_eq!(rows(&w, TIPOS).await, expected_tipos());
    let e = op
        .sync_to_sql_server("main.demo.tipos", "Sync.dbo.tipos", "DELETE", &["id"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("above max_delete_rows 1"), "{e}");
    let e = BridgeOperator::new(
        SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| env.get(k).cloned())
            .unwrap(),
    )
    .unwrap()
    .sync_to_sql_server("main.demo.tipos", "Sync.dbo.tipos", "INSERT", &["id"])
    .await
    .unwrap_err();
    assert!(e.to_string().contains("sync needs Databricks"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundles_sql_task_requests_a_sync_the_poller_applies() {
    // examples/databricks/sql/request_sync.sql, run as the bundle's SQL task
    // would: through the Statement Execution API with named parameters.
    let w = World::new("sync-bundle").with_databricks_demo();
    let sql = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/databricks/sql/request_sync.sql"
    ))
    .unwrap();
    let body = serde_json::json!({
        "warehouse_id": w.dbx.warehouse_id(),
        "statement": sql,
        "wait_timeout": "30s",
        "parameters": [
            {"name": "source_table", "value": "main.demo.calibrated_panel"},
            {"name": "target_table", "value": "KWP_Colombia.dbo.CalibratedPanel"},
            {"name": "requested_by", "value": "proyecto-colombia"},
        ],
    });
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/2.0/sql/statements", w.dbx.url()))
        .bearer_auth("dapi-test")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"]["state"], "SUCCEEDED", "{r}");
    let out = ok(&run_once(&w));
    assert!(out.contains("claimed 1, completed 1"), "{out}");
    assert_eq!(count(&w, "KWP_Colombia.dbo.CalibratedPanel").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decks_insert_as_written_is_picked_up_and_needs_a_requesting_user() {
    let w = world("sync-deck");
    // The deck's statement names five columns: no status, no requested_by.
    dbx(
        &w,
        "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, primary_keys) \
         VALUES (uuid(), 'INSERT', 'main.demo.tipos', 'Sync.dbo.tipos', array('id'))",
    );
    let o = run_once(&w);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("claimed 1, completed 0, failed 1"), "{out}");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 0);
    let r = w
        .dbx
        .engine()
        .execute(
            "SELECT error_message FROM bridge.events.bridge_events",
            &Default::default(),
            &[],
        )
        .unwrap();
    let err = render_cell(&r.rows[0][0], &r.columns[0].ty).unwrap_or_default();
    assert!(
        err.contains("unauthorized: the event has no requested_by"),
        "{err}"
    );
    // With the user named, the same statement applies.
    dbx(
        &w,
        "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, primary_keys, requested_by) \
         VALUES (uuid(), 'INSERT', 'main.demo.tipos', 'Sync.dbo.tipos', array('id'), 'proyecto-sync')",
    );
    let out = ok(&run_once(&w));
    assert!(out.contains("claimed 1, completed 1"), "{out}");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_releases_the_event_and_a_later_poll_applies_it() {
    let w = world("sync-release");
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    // Every attempt's bulk load is cut: the retries run out.
    w.sql.faults().drop_next_bulk_loads_after_rows(1, 3);
    let out = ok(&w.run(&[
        "sync",
        "run-once",
        "--timeout",
        "10",
        "--attempts",
        "3",
        "--retry-base-ms",
        "10",
    ]));
    assert!(out.contains("released to retry 1"), "{out}");
    let (st, _, _, _, err) = status(&w, &id);
    assert_eq!(st, "pending");
    assert!(err.unwrap_or_default().contains("SQL Server"));
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 0);
    // The next poll (nothing cut now) applies it; attempts were counted.
    ok(&run_once(&w));
    assert_eq!(status(&w, &id).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    let attempts = w
        .dbx
        .engine()
        .execute(
            &format!("SELECT attempts FROM bridge.events.bridge_events WHERE event_id = '{id}'"),
            &Default::default(),
            &[],
        )
        .unwrap();
    assert_eq!(
        render_cell(&attempts.rows[0][0], &attempts.columns[0].ty).as_deref(),
        Some("2")
    );

    // With one attempt allowed, the same failure fails the event.
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos2",
        &["id"],
        "proyecto-sync",
    );
    tipos2(&w);
    w.sql.faults().drop_next_bulk_loads_after_rows(1, 3);
    let o = w.run(&[
        "sync",
        "run-once",
        "--timeout",
        "10",
        "--attempts",
        "3",
        "--retry-base-ms",
        "10",
        "--max-attempts",
        "1",
    ]);
    assert!(!o.status.success());
    assert_eq!(status(&w, &id).0, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_apply_keeps_its_claim_by_renewing_the_lease() {
    let w = world("sync-lease");
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    // Every packet is slow: the apply takes several leases of one second.
    w.sql
        .faults()
        .delay_packets(std::time::Duration::from_millis(150));
    let first = w
        .command(&["sync", "run-once", "--timeout", "30", "--lease", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Another bridge looks while the first applies, after a lease has passed.
    let mut others = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(1200));
        others.push(w.run(&["sync", "run-once", "--timeout", "30", "--lease", "1"]));
    }
    let first = first.wait_with_output().unwrap();
    w.sql.faults().delay_packets(std::time::Duration::ZERO);
    let out = ok(&first);
    assert!(out.contains("claimed 1, completed 1"), "{out}");
    for o in &others {
        let out = ok(o);
        assert!(out.contains("claimed 0"), "{out}");
    }
    assert_eq!(
        status(&w, &id),
        ("completed".into(), Some(3), Some(3), None, None)
    );
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
}

/// Adds `write` on `Sync.dbo.<table>` for proyecto-sync in the world's
/// permissions.yaml.
fn grant_write(w: &World, table: &str) {
    let path = w.dir.join("config/permissions.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "      - table: \"Sync.dbo.log\"",
        &format!(
            "      - table: \"{table}\"\n        access: \"write\"\n      - table: \"Sync.dbo.log\""
        ),
    );
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_event_keeps_nulls_checks_foreign_keys_and_fires_triggers() {
    let w = world("sync-bulk-options");
    w.sql
        .engine()
        .run_script(
            "USE Sync\nGO\n\
             CREATE TABLE dbo.padre (id int NOT NULL PRIMARY KEY)\nGO\n\
             INSERT INTO dbo.padre VALUES (1)\nGO\n\
             CREATE TABLE dbo.hijo (id int NOT NULL PRIMARY KEY, \
               padre int NULL REFERENCES dbo.padre (id), \
               nota nvarchar(10) NULL DEFAULT N'por defecto', \
               CHECK (id > 0))\nGO\n\
             CREATE TABLE dbo.hijo_log (id int)\nGO\n\
             CREATE TRIGGER trg_hijo ON dbo.hijo AFTER INSERT AS \
               INSERT INTO dbo.hijo_log (id) SELECT id FROM inserted\nGO\n",
        )
        .unwrap();
    grant_write(&w, "Sync.dbo.hijo");
    dbx(
        &w,
        "CREATE TABLE main.demo.hijos (id INT, padre INT, nota STRING);
         INSERT INTO main.demo.hijos VALUES (1, 1, NULL), (2, NULL, 'dos');
         CREATE TABLE main.demo.huerfanos (id INT, padre INT, nota STRING);
         INSERT INTO main.demo.huerfanos VALUES (3, 99, 'tres');
         CREATE TABLE main.demo.negativos (id INT, padre INT, nota STRING);
         INSERT INTO main.demo.negativos VALUES (-4, 1, 'cuatro');",
    );
    let good = event(
        &w,
        "INSERT",
        "main.demo.hijos",
        "Sync.dbo.hijo",
        &[],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(status(&w, &good).0, "completed");
    // The NULL stayed NULL (KEEP_NULLS); the trigger ran (FIRE_TRIGGERS).
    assert_eq!(
        rows(&w, "SELECT id, padre, nota FROM Sync.dbo.hijo ORDER BY id").await,
        [["1", "1", "NULL"], ["2", "NULL", "dos"]]
    );
    assert_eq!(
        rows(&w, "SELECT id FROM Sync.dbo.hijo_log ORDER BY id").await,
        [["1"], ["2"]]
    );
    // An orphan foreign key and a failed CHECK fail their events (CHECK_CONSTRAINTS).
    let orphan = event(
        &w,
        "INSERT",
        "main.demo.huerfanos",
        "Sync.dbo.hijo",
        &[],
        "proyecto-sync",
    );
    let negative = event(
        &w,
        "INSERT",
        "main.demo.negativos",
        "Sync.dbo.hijo",
        &[],
        "proyecto-sync",
    );
    let _ = run_once(&w);
    failed_with(&w, &orphan, "547");
    failed_with(&w, &negative, "547");
    assert_eq!(count(&w, "Sync.dbo.hijo").await, 2);
    assert_eq!(count(&w, "Sync.dbo.hijo_log").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upsert_on_a_string_key_works_in_a_database_with_another_collation() {
    let w = world("sync-collation");
    w.sql
        .engine()
        .run_script(
            "CREATE DATABASE Distinta COLLATE Latin1_General_CS_AS\nGO\nUSE Distinta\nGO\n\
             CREATE TABLE dbo.claves (codigo varchar(10) NOT NULL PRIMARY KEY, valor int NULL)\nGO\n\
             INSERT INTO dbo.claves VALUES ('a', 1), ('A', 2)\nGO\n",
        )
        .unwrap();
    grant_write(&w, "Distinta.dbo.claves");
    dbx(
        &w,
        "CREATE TABLE main.demo.claves (codigo STRING, valor INT);
         INSERT INTO main.demo.claves VALUES ('a', 10), ('b', 20);",
    );
    for method in ["update-insert", "merge"] {
        let id = event(
            &w,
            "UPSERT",
            "main.demo.claves",
            "Distinta.dbo.claves",
            &["codigo"],
            "proyecto-sync",
        );
        ok(&w.run(&[
            "sync",
            "run-once",
            "--timeout",
            "10",
            "--upsert-with",
            method,
        ]));
        let (st, _, affected, _, err) = status(&w, &id);
        assert_eq!(st, "completed", "{method}: {err:?}");
        assert_eq!(affected, Some(2), "{method}");
    }
    // Case-sensitive keys: 'A' is another row, left alone.
    assert_eq!(
        rows(
            &w,
            "SELECT codigo, valor FROM Distinta.dbo.claves ORDER BY valor"
        )
        .await,
        [["A", "2"], ["a", "10"], ["b", "20"]]
    );
}

/// `--table-lock` puts TABLOCK on the bulk load into the target, and only
/// then; the load into the session's own staging table always carries it. A
/// deadlock injected on INSERT BULK statements that carry TABLOCK is met
/// (and retried) by exactly those loads; the rows are the same.
#[tokio::test(flavor = "multi_thread")]
async fn table_lock_puts_tablock_on_the_bulk_loads() {
    let w = world("sync-tablock");
    dbx(
        &w,
        "CREATE TABLE main.demo.lote (id INT, c_int INT); INSERT INTO main.demo.lote VALUES (201, 1), (202, 2);\
         CREATE TABLE main.demo.lote2 (id INT, c_int INT); INSERT INTO main.demo.lote2 VALUES (202, 20), (203, 3);",
    );
    w.sql
        .engine()
        .inject_deadlock(r"(?is)INSERT\s+BULK.*TABLOCK", 1)
        .unwrap();
    let apply = |source: &str, op: &str, extra: &[&str]| {
        let mut args = vec![
            "sync",
            "apply",
            "--source-table",
            source,
            "--target-table",
            "Sync.dbo.tipos",
            "--operation",
            op,
            "--primary-key",
            "id",
            "--retry-base-ms",
            "10",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    let plain = apply("main.demo.lote", "INSERT", &[]);
    ok(&plain);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("retrying"));
    // UPSERT through the staging table: its load carries the hint without
    // the option.
    let staged = apply("main.demo.lote2", "UPSERT", &[]);
    let out = ok(&staged);
    assert!(out.contains("2 rows read, 2 rows affected"), "{out}");
    let log = String::from_utf8_lossy(&staged.stderr);
    assert!(log.contains("applying the event failed; retrying"), "{log}");
    dbx(&w, "CREATE TABLE main.demo.lote3 (id INT, c_int INT); INSERT INTO main.demo.lote3 VALUES (204, 4);");
    w.sql
        .engine()
        .inject_deadlock(r"(?is)INSERT\s+BULK.*TABLOCK", 1)
        .unwrap();
    let locked = apply("main.demo.lote3", "INSERT", &["--table-lock"]);
    ok(&locked);
    assert!(String::from_utf8_lossy(&locked.stderr).contains("applying the event failed; retrying"));
    let got = rows(
        &w,
        "SELECT id, c_int FROM Sync.dbo.tipos WHERE id > 200 ORDER BY id",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec!["201".to_string(), "1".to_string()],
            vec!["202".to_string(), "20".to_string()],
            vec!["203".to_string(), "3".to_string()],
            vec!["204".to_string(), "4".to_string()],
        ]
    );
}

/// The events table ages as Databricks ages it: its log is cleaned up
/// after 30 days and VACUUM removes change data older than 7. Sync goes on
/// over 45 days; an event left waiting 6 days (the bridge down) is still
/// applied; one waiting 8 days can no longer be proven to be its writer's
/// and is refused with that reason, while a fresh one in the same poll is
/// applied. Every applied event is applied exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn sync_keeps_working_as_the_events_tables_history_expires() {
    let w = log_world("sync-aging", 3);
    let day = std::time::Duration::from_secs(86_400);
    let lote = |w: &World| {
        event(
            w,
            "INSERT",
            "main.demo.lote",
            "Sync.dbo.log",
            &[],
            "proyecto-sync",
        )
    };
    let mut applied = 0;
    for _ in 0..15 {
        let id = lote(&w);
        ok(&run_once(&w));
        assert_eq!(status(&w, &id).0, "completed", "{:?}", status(&w, &id));
        applied += 1;
        w.dbx.clock().advance(day * 3);
        dbx(&w, "VACUUM bridge.events.bridge_events");
    }
    let history = w
        .dbx
        .engine()
        .execute(
            "DESCRIBE HISTORY bridge.events.bridge_events",
            &Default::default(),
            &[],
        )
        .unwrap();
    let oldest = render_cell(&history.rows.last().unwrap()[0], &history.columns[0].ty);
    assert_ne!(oldest.as_deref(), Some("0"), "the log was cleaned up");

    // The bridge down for 6 days: the event waiting is applied after.
    let waited = lote(&w);
    w.dbx.clock().advance(day * 6);
    dbx(&w, "VACUUM bridge.events.bridge_events");
    ok(&run_once(&w));
    assert_eq!(
        status(&w, &waited).0,
        "completed",
        "{:?}",
        status(&w, &waited)
    );
    applied += 1;

    // Down for 8: its change data is gone, so who wrote it is unknown.
    let stale = lote(&w);
    w.dbx.clock().advance(day * 8);
    dbx(&w, "VACUUM bridge.events.bridge_events");
    let fresh = lote(&w);
    let out = String::from_utf8_lossy(&run_once(&w).stdout).to_string();
    assert!(out.contains("completed 1, failed 1"), "{out}");
    let (state, .., error) = status(&w, &stale);
    assert_eq!(state, "failed");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("can no longer be proven") && error.contains("7 days"),
        "{error}"
    );
    assert_eq!(
        status(&w, &fresh).0,
        "completed",
        "{:?}",
        status(&w, &fresh)
    );
    applied += 1;

    assert_eq!(count(&w, "Sync.dbo.log").await, 3 * applied);
    let ledger = rows(&w, "SELECT event_id FROM Sync.dbo.bridge_sync_ledger").await;
    assert_eq!(ledger.len(), applied);
}

/// Two applications of one event racing — as when a bridge takes an event
/// over while its holder is still applying it — apply it once: the one that
/// collides with the other's rows (2627 on the target's key) finds the event
/// in the ledger and reports it applied, not failed. An id already applied
/// for a different request is refused, not skipped as applied.
#[tokio::test(flavor = "multi_thread")]
async fn racing_applications_apply_once_and_a_reused_id_is_refused() {
    use sql_databricks_bridge::config::{
        DatabricksSettings, SqlServerOverrides, SqlServerSettings,
    };
    use sql_databricks_bridge::operator::BridgeOperator;
    let w = world("sync-race");
    tipos2(&w);
    let env: std::collections::HashMap<&str, String> = w.env().into_iter().collect();
    let op = || {
        BridgeOperator::new(
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| env.get(k).cloned())
                .unwrap(),
        )
        .unwrap()
        .with_databricks(
            &DatabricksSettings::resolve(None, None, &|k| env.get(k).cloned(), None).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (op(), op());
    // Both read the source before either commits.
    w.dbx
        .set_execution_delay(std::time::Duration::from_millis(400));
    let (ra, rb) = tokio::join!(
        a.sync_to_sql_server_once(
            "job-7",
            "main.demo.tipos",
            "Sync.dbo.tipos",
            "INSERT",
            &["id"]
        ),
        b.sync_to_sql_server_once(
            "job-7",
            "main.demo.tipos",
            "Sync.dbo.tipos",
            "INSERT",
            &["id"]
        ),
    );
    w.dbx.set_execution_delay(std::time::Duration::ZERO);
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        [ra.from_ledger, rb.from_ledger]
            .iter()
            .filter(|l| !**l)
            .count(),
        1,
        "{ra:?} {rb:?}"
    );
    assert_eq!((ra.rows_affected, rb.rows_affected), (3, 3));
    assert_eq!(rows(&w, TIPOS).await, expected_tipos());

    // The same id again for the same request: the ledger's answer.
    let again = a
        .sync_to_sql_server_once(
            "job-7",
            "main.demo.tipos",
            "Sync.dbo.tipos",
            "INSERT",
            &["id"],
        )
        .await
        .unwrap();
    assert!(again.from_ledger);
    // For another request: refused, and nothing written.
    let e = a
        .sync_to_sql_server_once(
            "job-7",
            "main.demo.tipos",
            "Sync.dbo.tipos2",
            "INSERT",
            &["id"],
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("was already applied")
            && e.to_string().contains("different request"),
        "{e}"
    );
    assert_eq!(count(&w, "Sync.dbo.tipos2").await, 0);
}

/// An event_id on two rows of the events table (two writers, or one
/// twice) cannot be told apart: both rows are refused with the reason, not
/// left pending forever; the poll goes on with the others.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_id_on_two_rows_is_refused_not_parked() {
    let w = log_world("sync-dup", 1);
    let id = event(
        &w,
        "INSERT",
        "main.demo.lote",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    dbx(
        &w,
        &format!(
            "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
             primary_keys, requested_by, status, attempts, created_at) \
             VALUES ('{id}', 'DELETE', 'main.demo.lote', 'Sync.dbo.log', array('id'), 'proyecto-sync', 'pending', 0, current_timestamp())"
        ),
    );
    let other = event(
        &w,
        "INSERT",
        "main.demo.lote",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    let out = String::from_utf8_lossy(&run_once(&w).stdout).to_string();
    assert!(out.contains("completed 1, failed 1"), "{out}");
    let r = w
        .dbx
        .engine()
        .execute(
            &format!(
                "SELECT status, error_message FROM bridge.events.bridge_events WHERE event_id = '{id}'"
            ),
            &Default::default(),
            &[],
        )
        .unwrap();
    assert_eq!(r.rows.len(), 2);
    for row in &r.rows {
        assert_eq!(render_cell(&row[0], &r.columns[0].ty).unwrap(), "failed");
        let why = render_cell(&row[1], &r.columns[1].ty).unwrap();
        assert!(why.contains("is on 2 rows"), "{why}");
    }
    assert_eq!(status(&w, &other).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.log").await, 1);
}

/// Events the bridge cannot read do not break a user's list, and a
/// target spelled `"Sync".dbo.t` (as SQL Server and the parser accept it)
/// is routed to the bridge that holds the database.
#[tokio::test(flavor = "multi_thread")]
async fn quoted_database_names_route_and_unknown_statuses_do_not_break_lists() {
    const SYNC: &str = "demo-sync-token";
    let w = world("sync-quoted");
    let b = w.serve(&["--sync-interval", "1"]);
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "\"Sync\".dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    dbx(
        &w,
        "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, requested_by, status) \
         VALUES ('hand-made', 'INSERT', 'main.demo.tipos', 'Sync.dbo.tipos', 'proyecto-sync', 'paused')",
    );
    let t0 = std::time::Instant::now();
    while status(&w, &id).0 != "completed" {
        assert!(
            t0.elapsed().as_secs() < 30,
            "{:?}\n{}",
            status(&w, &id),
            w.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    let r = b.get("/sync/events", SYNC).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
}

/// POST /sync/events with an Idempotency-Key whose event was written but
/// whose answer was lost (the insert's, or the read after it, on every
/// try the client made): the key is released with the 502, and the retry
/// finds the event instead of writing a second one.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_submit_whose_first_answer_was_lost_writes_one_event() {
    use serde_json::json;
    const SYNC: &str = "demo-sync-token";
    let w = world("sync-idem");
    let b = w.serve(&["--no-sync", "--retry-base-ms", "10", "--retry-cap-ms", "20"]);
    let body = json!({"operation": "INSERT", "source_table": "main.demo.tipos",
                      "target_table": "Sync.dbo.tipos", "primary_keys": ["id"]});
    let submit = |key: &str| {
        b.send(
            b.http
                .post(format!("{}/sync/events", b.url))
                .bearer_auth(SYNC)
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    for (key, lose) in [
        ("k-insert", "^MERGE INTO .*bridge_events"),
        ("k-read", "^SELECT .* FROM .*bridge_events.* WHERE event_id"),
    ] {
        // Lost every time the client asks again, until it gives up.
        w.dbx
            .faults()
            .lose_statement_answers(lose, 100, 503)
            .unwrap();
        let first = submit(key).await;
        assert_eq!(first.status, 502, "{key}: {}", first.text);
        w.dbx.faults().clear();
        let retry = submit(key).await;
        assert_eq!(retry.status, 202, "{key}: {}", retry.text);
        let again = submit(key).await;
        assert_eq!(again.json["event_id"], retry.json["event_id"]);
    }
    let n = w
        .dbx
        .engine()
        .execute(
            "SELECT count(*) FROM bridge.events.bridge_events",
            &Default::default(),
            &[],
        )
        .unwrap();
    assert_eq!(render_cell(&n.rows[0][0], &n.columns[0].ty).unwrap(), "2");
}

/// A ledger made by an earlier bridge, without the events' fingerprints,
/// gains the column and keeps working: its events are found as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_from_before_fingerprints_is_upgraded_in_place() {
    let w = world("sync-ledger-upgrade");
    w.sql
        .engine()
        .run_script(
            "USE Sync\nGO\n\
             CREATE TABLE dbo.bridge_sync_ledger (event_id nvarchar(100) NOT NULL PRIMARY KEY, \
             operation nvarchar(10) NOT NULL, source_table nvarchar(400) NOT NULL, target_table nvarchar(400) NOT NULL, \
             rows_expected bigint NOT NULL, rows_affected bigint NOT NULL, applied_by nvarchar(200) NOT NULL, \
             applied_at datetime2(3) NOT NULL)\nGO\n\
             INSERT INTO dbo.bridge_sync_ledger VALUES ('old-1', 'INSERT', 'main.demo.tipos', 'Sync.dbo.tipos', 3, 3, 'proyecto-sync', SYSUTCDATETIME())\nGO\n",
        )
        .unwrap();
    let id = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(status(&w, &id).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 3);
    let r = rows(
        &w,
        "SELECT event_id, CASE WHEN request_sha256 IS NULL THEN 'none' ELSE 'kept' END FROM Sync.dbo.bridge_sync_ledger ORDER BY event_id",
    )
    .await;
    assert_eq!(r.len(), 2);
    assert!(r.iter().any(|x| x[0] == "old-1" && x[1] == "none"), "{r:?}");
    assert!(r.iter().any(|x| x[0] == id && x[1] == "kept"), "{r:?}");
}

/// Row filters and column masks in Unity Catalog hide rows and values from
/// users; the bridge reads as its own principal, so an event for a user
/// from a source with either is refused with the reason — nothing hidden
/// from that user reaches SQL Server — and applies once they are gone.
#[tokio::test(flavor = "multi_thread")]
async fn sources_with_row_filters_or_column_masks_are_refused_for_users() {
    let w = world("sync-governed");
    w.sql
        .engine()
        .run_script("USE Sync\nGO\nCREATE TABLE dbo.log (id int, n int)\nGO\n")
        .unwrap();
    dbx(
        &w,
        "CREATE TABLE main.demo.secreto (id INT, n INT);
         INSERT INTO main.demo.secreto VALUES (1, 1), (2, 2), (3, 3);
         CREATE FUNCTION main.demo.solo_uno(id INT) RETURNS BOOLEAN RETURN id = 1;
         CREATE FUNCTION main.demo.oculto(n INT) RETURNS INT RETURN 0;
         ALTER TABLE main.demo.secreto SET ROW FILTER main.demo.solo_uno ON (id);",
    );
    let filtered = event(
        &w,
        "INSERT",
        "main.demo.secreto",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    run_once(&w);
    let (state, .., error) = status(&w, &filtered);
    assert_eq!(state, "failed");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("row filter main.demo.solo_uno on (id)") && error.contains("proyecto-sync"),
        "{error}"
    );
    dbx(
        &w,
        "ALTER TABLE main.demo.secreto DROP ROW FILTER;
         ALTER TABLE main.demo.secreto ALTER COLUMN n SET MASK main.demo.oculto;",
    );
    let masked = event(
        &w,
        "INSERT",
        "main.demo.secreto",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    run_once(&w);
    let (state, .., error) = status(&w, &masked);
    assert_eq!(state, "failed");
    assert!(error
        .unwrap_or_default()
        .contains("column mask main.demo.oculto on n"));
    assert_eq!(count(&w, "Sync.dbo.log").await, 0);
    dbx(&w, "ALTER TABLE main.demo.secreto ALTER COLUMN n DROP MASK");
    let clear = event(
        &w,
        "INSERT",
        "main.demo.secreto",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    ok(&run_once(&w));
    assert_eq!(status(&w, &clear).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.log").await, 3);
}

/// A filter's string literals mean what the user wrote: `'O\'Brien'` is
/// one value (Spark reads a backslash-escaped quote), not the two literals
/// `'O''Brien'` a re-printed filter would be.
#[tokio::test(flavor = "multi_thread")]
async fn a_filter_with_an_escaped_quote_keeps_its_meaning() {
    let w = world("sync-filter");
    w.sql
        .engine()
        .run_script("USE Sync\nGO\nCREATE TABLE dbo.log (id int, n nvarchar(20))\nGO\n")
        .unwrap();
    dbx(
        &w,
        r"CREATE TABLE main.demo.clientes (id INT, n STRING);
         INSERT INTO main.demo.clientes VALUES (1, 'O\'Brien'), (2, 'OBrien'), (3, 'Smith');",
    );
    let out = ok(&w.run(&[
        "sync",
        "apply",
        "--source-table",
        "main.demo.clientes",
        "--target-table",
        "Sync.dbo.log",
        "--operation",
        "INSERT",
        "--filter",
        r"n = 'O\'Brien'",
    ]));
    assert!(out.contains("1 rows read, 1 rows affected"), "{out}");
    assert_eq!(
        rows(&w, "SELECT id, n FROM Sync.dbo.log").await,
        [["1", "O'Brien"]]
    );
}

/// A user's events are those written by or for that user — proven from
/// the events table's history — not every row whose requested_by names
/// them: anyone who may insert into the table could fill that in.
#[tokio::test(flavor = "multi_thread")]
async fn a_users_event_list_is_told_by_who_wrote_each_event() {
    use common::server::DBX_MALLORY;
    const SYNC: &str = "demo-sync-token";
    let w = world("sync-list-proven");
    dbx(
        &w,
        "GRANT USE CATALOG ON CATALOG bridge TO `mallory@example.com`; \
         GRANT USE SCHEMA ON SCHEMA bridge.events TO `mallory@example.com`; \
         GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `mallory@example.com`",
    );
    let b = w.serve(&["--no-sync"]);
    let own = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let forged = uuid::Uuid::new_v4().to_string();
    let (state, err) = w.dbx_as(
        DBX_MALLORY,
        &format!(
            "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
             primary_keys, requested_by, status, created_at) VALUES ('{forged}', 'DELETE', 'main.demo.tipos', \
             'Sync.dbo.tipos', array('id'), 'proyecto-sync', 'pending', current_timestamp())"
        ),
    );
    assert_eq!(state, "SUCCEEDED", "{err:?}");
    let r = b.get("/sync/events", SYNC).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own.as_str()]);
    assert_eq!(
        b.get(&format!("/sync/events/{own}"), SYNC).await.status,
        200
    );
    assert_eq!(
        b.get(&format!("/sync/events/{forged}"), SYNC).await.status,
        404
    );
}

/// SQL Server commits an event's transaction and the answer is lost (the
/// connection resets): the bridge cannot tell whether it committed, tries
/// again, finds the event in the ledger and completes it — applied once.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_answer_is_lost_is_applied_once() {
    let w = log_world("sync-lost-commit", 3);
    let id = event(
        &w,
        "INSERT",
        "main.demo.lote",
        "Sync.dbo.log",
        &[],
        "proyecto-sync",
    );
    w.sql.faults().lose_answers("^COMMIT", 1).unwrap();
    let out = ok(&w.run(&[
        "sync",
        "run-once",
        "--timeout",
        "10",
        "--retry-base-ms",
        "10",
        "--retry-cap-ms",
        "20",
    ]));
    assert!(out.contains("completed 1"), "{out}");
    assert_eq!(status(&w, &id).0, "completed");
    assert_eq!(count(&w, "Sync.dbo.log").await, 3);
    let ledger = rows(&w, "SELECT event_id FROM Sync.dbo.bridge_sync_ledger").await;
    assert_eq!(ledger.len(), 1);
}

/// `sync watch` signed in to SQL Server as an Entra ID service principal
/// whose tokens live three seconds: an event applied, then — with the
/// first token long expired — a bulk load cut mid-way, so the retry opens
/// a new connection: it signs in with a new token and the event is applied
/// once. The watcher never stops on an expired token.
#[tokio::test(flavor = "multi_thread")]
async fn sync_watch_keeps_applying_as_its_entra_tokens_expire() {
    use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
    use std::io::Read;
    let app = EntraApp {
        client_id: "6d3f2a1b-0000-4000-8000-00000000f001".into(),
        object_id: "0b7c3e5d-0000-4000-8000-00000000f001".into(),
        display_name: "bridge-sync".into(),
        secret: "Sync~s3cret-value".into(),
        ..EntraApp::default()
    };
    let e = entra::start(EntraConfig {
        apps: vec![app.clone()],
        token_lifetime: std::time::Duration::from_secs(3),
        ..EntraConfig::default()
    })
    .unwrap();
    let w = seeded(World::with_entra("sync-entra", &e));
    w.sql
        .engine()
        .run_script(&format!(
            "CREATE LOGIN [bridge-sync] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}'",
            app.object_id
        ))
        .unwrap();
    let ca = w.dir.join("entra-ca.pem");
    std::fs::write(&ca, e.ca_pem()).unwrap();
    dbx(
        &w,
        "CREATE TABLE main.demo.mas (id INT); INSERT INTO main.demo.mas VALUES (7), (8);",
    );
    let log_path = w.dir.join("watch.log");
    let mut watch = w
        .command(&[
            "sync",
            "watch",
            "--sync-interval",
            "1",
            "--timeout",
            "10",
            "--retry-base-ms",
            "50",
        ])
        .env_remove("SQLSERVER_USERNAME")
        .env(
            "SQLSERVER_AUTHENTICATION",
            "ActiveDirectoryServicePrincipal",
        )
        .env("SQLSERVER_USERNAME", &app.client_id)
        .env("SQLSERVER_PASSWORD", &app.secret)
        .env("AZURE_TENANT_ID", e.tenant_id())
        .env("AZURE_AUTHORITY_HOST", e.url())
        .env("SSL_CERT_FILE", &ca)
        .env("BRIDGE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let applied = |id: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if status(&w, id).0 == "completed" {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        false
    };
    let first = event(
        &w,
        "INSERT",
        "main.demo.tipos",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let first_done = applied(&first);
    // Past the first token's life, the next load is cut once.
    std::thread::sleep(std::time::Duration::from_secs(4));
    w.sql.faults().drop_next_bulk_loads_after_rows(1, 1);
    let second = event(
        &w,
        "INSERT",
        "main.demo.mas",
        "Sync.dbo.tipos",
        &["id"],
        "proyecto-sync",
    );
    let second_done = applied(&second);
    let _ = watch.kill();
    let _ = watch.wait();
    let mut log = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        first_done && second_done,
        "{:?} {:?}\n{log}",
        status(&w, &first),
        status(&w, &second)
    );
    assert!(log.contains("retrying"), "the load was not cut: {log}");
    assert!(!log.contains(&app.secret), "the secret was logged");
    assert_eq!(count(&w, "Sync.dbo.tipos").await, 5);
    assert_eq!(
        rows(&w, "SELECT event_id FROM Sync.dbo.bridge_sync_ledger")
            .await
            .len(),
        2
    );
}
