//! The sandbox scenario driven by tiberius, the client the bridge uses:
//! connect (plain, login-only TLS, full TLS), every type through parameters,
//! bulk load, rollback, SQL Server's error numbers, cancel and faults.

// Decimal mantissas are written with `_` where the decimal point goes.
#![allow(clippy::inconsistent_digit_grouping)]

use std::str::FromStr;
use std::time::Duration;

use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig, SqlServerHandle};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use tiberius::numeric::Numeric;
use tiberius::{AuthMethod, ColumnType, Config, EncryptionLevel, IntoRow, Query};
use uuid::Uuid;

use bridge_testkit::sqlserver::{exec, Sql as Conn};

fn server(encryption: ServerEncryption) -> SqlServerHandle {
    sqlserver::start(SqlServerConfig {
        encryption,
        ..SqlServerConfig::default()
    })
    .expect("sandbox starts")
}

fn config(h: &SqlServerHandle, level: EncryptionLevel, password: &str) -> Config {
    let mut c = bridge_testkit::sqlserver::config(h.port(), level);
    c.authentication(AuthMethod::sql_server("sa", password));
    c
}

async fn connect_with(h: &SqlServerHandle, level: EncryptionLevel) -> tiberius::Result<Conn> {
    bridge_testkit::sqlserver::connect_with(config(h, level, bridge_testkit::sqlserver::PASSWORD))
        .await
}

async fn connect(h: &SqlServerHandle) -> Conn {
    connect_with(h, EncryptionLevel::NotSupported)
        .await
        .expect("connects")
}

fn error_number(e: &tiberius::error::Error) -> u32 {
    match e {
        tiberius::error::Error::Server(t) => t.code(),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The error number a statement fails with (tiberius reports it either when
/// the query starts or while reading results).
async fn fails(c: &mut Conn, sql: &str) -> u32 {
    let err = match c.simple_query(sql).await {
        Ok(s) => s.into_results().await.err(),
        Err(e) => Some(e),
    }
    .unwrap_or_else(|| panic!("{sql} should fail"));
    error_number(&err)
}

/// The first column of the first row, as an int.
async fn scalar(c: &mut Conn, sql: &str) -> Option<i32> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_row()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|r| r.get::<i32, _>(0))
}

const ALL_TYPES: &str = "CREATE TABLE dbo.all_types (
    id int NOT NULL PRIMARY KEY,
    c_bit bit, c_tinyint tinyint, c_smallint smallint, c_int int, c_bigint bigint,
    c_dec38 decimal(38,10), c_dec52 decimal(5,2), c_num numeric(18,4), c_money money, c_smallmoney smallmoney,
    c_float float, c_real real, c_char char(10), c_varchar varchar(50), c_varchar_max varchar(max),
    c_nchar nchar(10), c_nvarchar nvarchar(50), c_nvarchar_max nvarchar(max),
    c_binary binary(8), c_varbinary varbinary(50), c_varbinary_max varbinary(max),
    c_date date, c_time7 time(7), c_time0 time(0), c_datetime datetime, c_smalldatetime smalldatetime,
    c_dt2_7 datetime2(7), c_dt2_3 datetime2(3), c_dto datetimeoffset(7), c_guid uniqueidentifier)";

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("test datetime")
}

#[tokio::test]
async fn every_type_round_trips_through_parameters() {
    let h = server(ServerEncryption::LoginOnly);
    let mut c = connect(&h).await;
    exec(&mut c, "CREATE DATABASE fidelity").await;
    exec(&mut c, "USE fidelity").await;
    exec(&mut c, ALL_TYPES).await;

    let dto = DateTime::<FixedOffset>::from_str("1969-07-20T20:17:40.1234567+05:30").unwrap();
    let guid = Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
    let long_text = "ñandú 🚀 日本 ".repeat(1000);
    let blob: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut q = Query::new(
        "INSERT INTO dbo.all_types VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, @P13, @P14, @P15, @P16, @P17, @P18, @P19, @P20, @P21, @P22, @P23, @P24, @P25, @P26, @P27, @P28, @P29, @P30, @P31)",
    );
    q.bind(1i32);
    q.bind(true);
    q.bind(255u8);
    q.bind(i16::MIN);
    q.bind(i32::MAX);
    q.bind(i64::MIN);
    q.bind(Numeric::new_with_scale(
        -1234567890123456789012345678_9012345678i128,
        10,
    ));
    q.bind(Numeric::new_with_scale(-99999, 2));
    q.bind(Numeric::new_with_scale(12345678901234_5678, 4));
    q.bind(Numeric::new_with_scale(-922337203685477_5808, 4));
    q.bind(Numeric::new_with_scale(214748_3647, 4));
    q.bind(f64::MAX);
    q.bind(-1.5f32);
    q.bind("abc");
    q.bind("varchar text");
    q.bind("x".repeat(9000));
    q.bind("ñ");
    q.bind("ñandú 🚀 日本");
    q.bind(long_text.clone());
    q.bind(&[1u8, 2, 3][..]);
    q.bind(&[0u8, 255][..]);
    q.bind(&blob[..]);
    q.bind(NaiveDate::from_ymd_opt(1, 1, 1).unwrap());
    q.bind(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_900).unwrap());
    q.bind(NaiveTime::from_hms_opt(12, 30, 0).unwrap());
    q.bind(dt("1899-12-31 23:59:59.997"));
    q.bind(dt("2024-02-29 10:15:00"));
    q.bind(dt("0001-01-01 00:00:00.0000001"));
    q.bind(dt("9999-12-31 23:59:59.999"));
    q.bind(dto);
    q.bind(guid);
    let r = q.execute(&mut c).await.expect("insert");
    assert_eq!(r.total(), 1);
    exec(&mut c, "INSERT INTO dbo.all_types (id) VALUES (2)").await;

    let mut q = Query::new("SELECT * FROM dbo.all_types WHERE id = @P1");
    q.bind(1i32);
    let mut stream = q.query(&mut c).await.expect("select");
    let cols = stream.columns().await.unwrap().unwrap().to_vec();
    let rows = stream.into_first_result().await.unwrap();
    let expect_types = [
        ColumnType::Int4,
        ColumnType::Bitn,
        ColumnType::Int1,
        ColumnType::Int2,
        ColumnType::Int4,
        ColumnType::Int8,
        ColumnType::Decimaln,
        ColumnType::Decimaln,
        ColumnType::Numericn,
        ColumnType::Money,
        ColumnType::Money,
        ColumnType::Float8,
        ColumnType::Float4,
        ColumnType::BigChar,
        ColumnType::BigVarChar,
        ColumnType::BigVarChar,
        ColumnType::NChar,
        ColumnType::NVarchar,
        ColumnType::NVarchar,
        ColumnType::BigBinary,
        ColumnType::BigVarBin,
        ColumnType::BigVarBin,
        ColumnType::Daten,
        ColumnType::Timen,
        ColumnType::Timen,
        ColumnType::Datetimen,
        ColumnType::Datetimen,
        ColumnType::Datetime2,
        ColumnType::Datetime2,
        ColumnType::DatetimeOffsetn,
        ColumnType::Guid,
    ];
    for (i, (col, ty)) in cols.iter().zip(expect_types).enumerate() {
        if i == 0 {
            continue; // NOT NULL int: Int4 or Intn depending on nullability; checked below
        }
        assert_eq!(col.column_type(), ty, "column {}", col.name());
    }
    let row = &rows[0];
    assert_eq!(row.get::<bool, _>("c_bit"), Some(true));
    assert_eq!(row.get::<u8, _>("c_tinyint"), Some(255));
    assert_eq!(row.get::<i16, _>("c_smallint"), Some(i16::MIN));
    assert_eq!(row.get::<i32, _>("c_int"), Some(i32::MAX));
    assert_eq!(row.get::<i64, _>("c_bigint"), Some(i64::MIN));
    let n: Numeric = row.get("c_dec38").unwrap();
    assert_eq!(
        (n.value(), n.scale()),
        (-1234567890123456789012345678_9012345678i128, 10)
    );
    let n: Numeric = row.get("c_dec52").unwrap();
    assert_eq!((n.value(), n.scale()), (-99999, 2));
    let n: Numeric = row.get("c_num").unwrap();
    assert_eq!((n.value(), n.scale()), (12345678901234_5678, 4));
    // tiberius reads money as f64: the nearest double to -922337203685477.5808.
    assert_eq!(
        row.get::<f64, _>("c_money"),
        Some(i64::MIN as f64 / 10_000.0)
    );
    assert_eq!(row.get::<f64, _>("c_float"), Some(f64::MAX));
    assert_eq!(row.get::<f32, _>("c_real"), Some(-1.5));
    assert_eq!(row.get::<&str, _>("c_char"), Some("abc       "));
    assert_eq!(
        row.get::<&str, _>("c_varchar_max").map(str::len),
        Some(9000)
    );
    assert_eq!(row.get::<&str, _>("c_nchar"), Some("ñ         "));
    assert_eq!(row.get::<&str, _>("c_nvarchar"), Some("ñandú 🚀 日本"));
    assert_eq!(
        row.get::<&str, _>("c_nvarchar_max"),
        Some(long_text.as_str())
    );
    assert_eq!(
        row.get::<&[u8], _>("c_binary"),
        Some(&[1u8, 2, 3, 0, 0, 0, 0, 0][..])
    );
    assert_eq!(row.get::<&[u8], _>("c_varbinary_max"), Some(&blob[..]));
    assert_eq!(
        row.get::<NaiveDate, _>("c_date"),
        NaiveDate::from_ymd_opt(1, 1, 1)
    );
    assert_eq!(
        row.get::<NaiveTime, _>("c_time7"),
        NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_900)
    );
    // datetime travels as 1/300 s ticks: .997 is tick 299, which tiberius decodes exactly.
    assert_eq!(
        row.get::<NaiveDateTime, _>("c_datetime"),
        Some(dt("1899-12-31 23:59:59") + chrono::Duration::nanoseconds(996_666_666))
    );
    assert_eq!(
        row.get::<NaiveDateTime, _>("c_smalldatetime"),
        Some(dt("2024-02-29 10:15:00"))
    );
    assert_eq!(
        row.get::<NaiveDateTime, _>("c_dt2_7"),
        Some(dt("0001-01-01 00:00:00.0000001"))
    );
    assert_eq!(
        row.get::<NaiveDateTime, _>("c_dt2_3"),
        Some(dt("9999-12-31 23:59:59.999"))
    );
    assert_eq!(row.get::<DateTime<FixedOffset>, _>("c_dto"), Some(dto));
    assert_eq!(row.get::<Uuid, _>("c_guid"), Some(guid));

    // The all-NULL row.
    let rows = c
        .simple_query("SELECT * FROM dbo.all_types WHERE id = 2")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert!(rows[0].get::<Numeric, _>("c_dec38").is_none());
    assert!(rows[0].get::<&str, _>("c_nvarchar_max").is_none());
    assert!(rows[0].get::<DateTime<FixedOffset>, _>("c_dto").is_none());
}

#[tokio::test]
async fn tls_modes_connect() {
    for (server_mode, client_level) in [
        (
            ServerEncryption::NotSupported,
            EncryptionLevel::NotSupported,
        ),
        (ServerEncryption::LoginOnly, EncryptionLevel::Off),
        (ServerEncryption::LoginOnly, EncryptionLevel::Required),
        (ServerEncryption::Required, EncryptionLevel::Required),
        (ServerEncryption::Required, EncryptionLevel::Off),
    ] {
        let h = server(server_mode);
        let mut c = connect_with(&h, client_level)
            .await
            .unwrap_or_else(|e| panic!("{server_mode:?}/{client_level:?}: {e}"));
        let row = c
            .simple_query("SELECT DB_NAME() AS db, @@VERSION AS v")
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<&str, _>("db"), Some("master"));
    }
    // A client that needs TLS cannot use a server without it.
    let h = server(ServerEncryption::NotSupported);
    assert!(connect_with(&h, EncryptionLevel::Required).await.is_err());
}

#[tokio::test]
async fn wrong_password_is_18456() {
    let h = server(ServerEncryption::NotSupported);
    let c = config(&h, EncryptionLevel::NotSupported, "wrong");
    let Err(err) = bridge_testkit::sqlserver::connect_with(c).await else {
        panic!("login with a wrong password must fail");
    };
    assert_eq!(error_number(&err), 18456);
    // A fault makes the next good login fail too, then logins work again.
    h.faults().fail_next_logins(1);
    assert!(connect_with(&h, EncryptionLevel::NotSupported)
        .await
        .is_err());
    connect(&h).await;
}

#[tokio::test]
async fn errors_have_sql_server_numbers() {
    let h = server(ServerEncryption::NotSupported);
    let mut c = connect(&h).await;
    exec(
        &mut c,
        "CREATE TABLE t (id int PRIMARY KEY, name varchar(5) NOT NULL)",
    )
    .await;
    exec(&mut c, "INSERT INTO t VALUES (1, 'a')").await;
    for (sql, number) in [
        ("SELECT * FROM nope", 208),
        ("SELECT nope FROM t", 207),
        ("SELEC 1", 102),
        ("INSERT INTO t VALUES (1, 'b')", 2627),
        ("INSERT INTO t (id) VALUES (5)", 515),
        ("INSERT INTO t VALUES (6, 'abcdefgh')", 2628),
        ("EXEC nope", 2812),
    ] {
        assert_eq!(fails(&mut c, sql).await, number, "{sql}");
    }
    // The connection is still good.
    exec(&mut c, "SELECT 1").await;
}

#[tokio::test]
async fn rollback_undoes_and_other_sessions_see_only_commits() {
    let h = server(ServerEncryption::NotSupported);
    let mut a = connect(&h).await;
    let mut b = connect(&h).await;
    exec(&mut a, "CREATE TABLE t (id int PRIMARY KEY)").await;
    exec(&mut a, "BEGIN TRAN").await;
    exec(&mut a, "INSERT INTO t VALUES (1)").await;
    let n = scalar(&mut b, "SELECT count(*) FROM t").await;
    assert_eq!(n, Some(0));
    exec(&mut b, "SET LOCK_TIMEOUT 200").await;
    assert_eq!(fails(&mut b, "INSERT INTO t VALUES (2)").await, 1222);
    exec(&mut a, "ROLLBACK").await;
    let n = scalar(&mut a, "SELECT count(*) FROM t").await;
    assert_eq!(n, Some(0));
}

#[tokio::test]
async fn bulk_load_inserts_all_rows() {
    let h = server(ServerEncryption::NotSupported);
    let mut c = connect(&h).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.bulk (id int NOT NULL PRIMARY KEY, name nvarchar(40), amount decimal(18,2), at datetime2(3))",
    )
    .await;
    let mut req = c
        .bulk_insert("dbo.bulk")
        .await
        .expect("INSERT BULK accepted");
    for i in 0..5000i32 {
        let row = (
            i,
            format!("fila {i} ñ"),
            Numeric::new_with_scale(i128::from(i) * 100 + 25, 2),
            dt("2024-01-01 00:00:00") + chrono::Duration::milliseconds(i64::from(i)),
        )
            .into_row();
        req.send(row).await.expect("row sent");
    }
    let res = req.finalize().await.expect("bulk load done");
    assert_eq!(res.total(), 5000);
    assert_eq!(
        scalar(&mut c, "SELECT count(*) FROM dbo.bulk").await,
        Some(5000)
    );
    let row = c
        .simple_query("SELECT sum(amount), max(name) FROM dbo.bulk")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    // sum of (i * 100 + 25) hundredths for i in 0..5000
    assert_eq!(
        row.get::<Numeric, _>(0).map(|n| (n.value(), n.scale())),
        Some((1_249_875_000, 2))
    );
    assert_eq!(row.get::<&str, _>(1), Some("fila 999 ñ"));
}

#[tokio::test]
async fn transaction_requests_and_deadlock_fault() {
    let h = server(ServerEncryption::NotSupported);
    let mut c = connect(&h).await;
    exec(&mut c, "CREATE TABLE t (id int)").await;
    h.engine().inject_deadlock("(?i)insert into t", 1).unwrap();
    assert_eq!(fails(&mut c, "INSERT INTO t VALUES (1)").await, 1205);
    exec(&mut c, "INSERT INTO t VALUES (1)").await;
}

#[tokio::test]
async fn dropped_connection_mid_result_is_an_error_for_that_client_only() {
    let h = server(ServerEncryption::NotSupported);
    let mut c = connect(&h).await;
    exec(&mut c, "CREATE TABLE t (id int)").await;
    exec(&mut c, "INSERT INTO t VALUES (1), (2), (3), (4), (5)").await;
    h.faults().drop_connection_after_rows(2);
    let r = async {
        c.simple_query("SELECT id FROM t")
            .await?
            .into_first_result()
            .await
    }
    .await;
    assert!(r.is_err(), "the result must not look complete");
    h.faults().drop_connection_after_rows(0);
    let mut d = connect(&h).await;
    let rows = d
        .simple_query("SELECT id FROM t")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
}

#[tokio::test]
async fn cancel_mid_result_keeps_the_connection_usable() {
    let h = server(ServerEncryption::NotSupported);
    bridge_sandbox::generate::generate(h.engine(), &"big:200000".parse().unwrap(), |_| {}).unwrap();
    let mut c = connect(&h).await;
    exec(&mut c, "USE bench").await;
    {
        let mut stream = c.simple_query("SELECT * FROM dbo.big").await.unwrap();
        use futures_util::TryStreamExt;
        let mut n = 0;
        while let Some(_item) = stream.try_next().await.unwrap() {
            n += 1;
            if n > 10 {
                break;
            }
        }
        // Dropping the stream mid-result makes tiberius send an ATTENTION.
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        scalar(&mut c, "SELECT count(*) FROM dbo.big").await,
        Some(200_000)
    );
}

#[tokio::test]
async fn any_negotiated_packet_size_carries_large_values() {
    let h = server(ServerEncryption::LoginOnly);
    let text = "ñandú 🚀 ".repeat(20_000);
    let blob: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    for (size, level) in [
        (512u32, EncryptionLevel::NotSupported),
        (513, EncryptionLevel::Required),
        (8000, EncryptionLevel::Off),
        (32767, EncryptionLevel::Required),
    ] {
        let mut c = config(&h, level, bridge_testkit::sqlserver::PASSWORD);
        c.packet_size(size);
        let mut conn = bridge_testkit::sqlserver::connect_with(c).await.unwrap();
        let table = format!("big_{size}");
        exec(
            &mut conn,
            &format!("CREATE TABLE {table} (t nvarchar(max), b varbinary(max))"),
        )
        .await;
        let mut q = Query::new(format!("INSERT INTO {table} VALUES (@P1, @P2)"));
        q.bind(text.clone());
        q.bind(&blob[..]);
        q.execute(&mut conn).await.unwrap();
        let row = conn
            .simple_query(format!("SELECT t, b FROM {table}"))
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.get::<&str, _>(0),
            Some(text.as_str()),
            "packet size {size}"
        );
        assert_eq!(
            row.get::<&[u8], _>(1),
            Some(&blob[..]),
            "packet size {size}"
        );
    }
}
