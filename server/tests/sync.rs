//! Reverse sync end to end: events written in the Databricks double the way
//! users write them, applied by the real binary into the SQL Server sandbox,
//! read back with tiberius and compared value by value.

mod common;

use std::process::Output;

use bridge_sandbox::databricks::sql::types::render as render_cell;
use common::server::World;
use futures_util::TryStreamExt;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

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

fn world(tag: &str) -> World {
    let w = World::new(tag);
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
    w
}

fn dbx(w: &World, sql: &str) {
    w.dbx.engine().run_script(sql).unwrap();
}

/// The deck's INSERT INTO bridge_events, with the test's values.
fn event(w: &World, op: &str, source: &str, target: &str, keys: &[&str], user: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let keys: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    dbx(
        w,
        &format!(
            "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
             primary_keys, requested_by, status, attempts, created_at) \
             VALUES ('{id}', '{op}', '{source}', '{target}', array({}), '{user}', 'pending', 0, current_timestamp())",
            keys.join(", ")
        ),
    );
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
    let mut c = Config::new();
    c.host("127.0.0.1");
    c.port(w.sql.port());
    c.authentication(AuthMethod::sql_server("sa", "Bridge!Passw0rd"));
    c.encryption(EncryptionLevel::Off);
    c.trust_cert();
    let tcp = TcpStream::connect(c.get_addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    Client::connect(c, tcp.compat_write()).await.unwrap()
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
