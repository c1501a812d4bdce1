//! `BridgeOperator` as a Rust program uses it: to Parquet and to Arrow
//! batches, retrying a deadlock.

use crate::common;

use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_schema::DataType;
use common::fixture;
use sql_databricks_bridge::config::{
    Authentication, Encrypt, SqlServerSettings, DEFAULT_APPLICATION_NAME,
};
use sql_databricks_bridge::operator::BridgeOperator;
use sql_databricks_bridge::retry::RetryPolicy;

fn operator(port: u16) -> BridgeOperator {
    BridgeOperator::new(SqlServerSettings {
        host: "127.0.0.1".into(),
        port,
        database: "Fid".into(),
        username: "sa".into(),
        password: "Bridge!Passw0rd".into(),
        encrypt: Encrypt::On,
        trust_server_certificate: true,
        ca_file: None,
        packet_size: 4096,
        application_name: DEFAULT_APPLICATION_NAME.into(),
        authentication: Authentication::SqlPassword,
    })
    .unwrap()
    .with_retry(RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    })
}

#[tokio::test]
async fn parquet_and_batches() {
    let f = fixture("operator");
    let op = operator(f.server.port());
    let dir = f.dir.join("ventas");
    let out = op
        .extract_to_parquet("SELECT id, c_money FROM dbo.t", &dir)
        .await
        .unwrap();
    assert_eq!(out.rows_written, 3);
    assert!(dir.join("_manifest.json").is_file() && dir.join("part-00000.parquet").is_file());

    // A deadlock on the first attempt is retried.
    f.server.engine().inject_deadlock("(?i)c_dec38", 1).unwrap();
    let (schema, batches) = op
        .extract_to_batches("SELECT c_dec38, c_money FROM dbo.t WHERE id <> 2")
        .await
        .unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(38, 10));
    assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(19, 4));
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2);
    let money = batches[0].column(1).as_primitive::<Decimal128Type>();
    assert_eq!(money.value(0), i64::MIN as i128);
    assert_eq!(money.value(1), i64::MAX as i128);

    // A top-level ORDER BY cannot be a derived table, so money comes through
    // the driver's f64: the extremes are refused with advice, not rounded.
    let err = op
        .extract_to_batches("SELECT c_money FROM dbo.t ORDER BY id")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c_money") && err.contains("decimal(19,4)"),
        "{err}"
    );
}

/// `extract_to_dataframe` (feature `polars`): the Parquet mapping's types,
/// the same values as the Arrow batches, and fixed-width buffers shared
/// with them rather than copied.
#[cfg(feature = "polars")]
#[tokio::test]
async fn polars_dataframe() {
    use arrow_array::types::Int64Type;
    use polars::prelude::{DataType as Pl, TimeUnit, TimeZone};

    let f = fixture("operator-polars");
    let op = operator(f.server.port());
    let sql = "SELECT id, c_small, c_big, c_dec38, c_money, c_date, c_dt2, c_dto, c_nvarchar, c_guid, c_varbinary FROM dbo.t";
    let df = op.extract_to_dataframe(sql).await.unwrap();
    assert_eq!(df.height(), 3);
    let dtype = |c: &str| df.column(c).unwrap().dtype().clone();
    assert_eq!(dtype("id"), Pl::Int32);
    assert_eq!(dtype("c_small"), Pl::Int16);
    assert_eq!(dtype("c_dec38"), Pl::Decimal(38, 10));
    assert_eq!(dtype("c_money"), Pl::Decimal(19, 4));
    assert_eq!(dtype("c_date"), Pl::Date);
    assert_eq!(dtype("c_dt2"), Pl::Datetime(TimeUnit::Microseconds, None));
    assert_eq!(
        dtype("c_dto"),
        Pl::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    assert_eq!(dtype("c_nvarchar"), Pl::String);
    assert_eq!(dtype("c_guid"), Pl::String);
    assert_eq!(dtype("c_varbinary"), Pl::Binary);
    // Row 2 is all NULLs.
    for c in df.columns().iter().skip(1) {
        assert_eq!(c.null_count(), 1, "{}", c.name());
    }
    let big = df.column("c_big").unwrap().i64().unwrap();
    assert_eq!(big.get(0), Some(i64::MIN));
    assert_eq!(big.get(2), Some(i64::MAX));
    let text = df.column("c_nvarchar").unwrap().str().unwrap();
    assert_eq!(text.get(0), Some("ñandú 🚀 日本"));
    let money = df.column("c_money").unwrap().decimal().unwrap();
    assert_eq!(money.physical().get(0), Some(i64::MIN as i128));
    assert_eq!(money.physical().get(2), Some(i64::MAX as i128));
    let dec = df.column("c_dec38").unwrap().decimal().unwrap();
    assert_eq!(
        dec.physical().get(0),
        Some(12345678901234567890123456789012345678)
    );

    // The same batches through `to_dataframe`: polars holds their buffers.
    let (schema, batches) = op.extract_to_batches(sql).await.unwrap();
    let frame = sql_databricks_bridge::extract::frame::to_dataframe(&schema, &batches).unwrap();
    let ours = batches[0]
        .column(2)
        .as_primitive::<Int64Type>()
        .values()
        .as_ptr();
    let theirs = frame.column("c_big").unwrap().i64().unwrap();
    let theirs = theirs.downcast_iter().next().unwrap().values().as_ptr();
    assert_eq!(ours, theirs, "the bigint buffer was copied");

    // An empty result keeps its columns and types.
    let empty = op
        .extract_to_dataframe("SELECT c_dec38, c_dto FROM dbo.t WHERE 1 = 0")
        .await
        .unwrap();
    assert_eq!(empty.height(), 0);
    assert_eq!(
        empty.column("c_dec38").unwrap().dtype(),
        &Pl::Decimal(38, 10)
    );
}

/// The library extracts signed in with a Microsoft Entra ID access token:
/// every pooled connection presents it, and SQL Server knows the reads as
/// the application's external login.
#[tokio::test]
async fn extraction_signed_in_with_an_entra_id_access_token() {
    use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
    use bridge_sandbox::sqlserver::{self, SqlServerConfig};
    let app = EntraApp {
        client_id: "6d3f2a1b-0000-4000-8000-00000000e71a".into(),
        object_id: "0b7c3e5d-0000-4000-8000-0000000000a1".into(),
        display_name: "etl-bridge".into(),
        secret: "unused".into(),
        ..EntraApp::default()
    };
    let e = entra::start(EntraConfig {
        apps: vec![app.clone()],
        ..EntraConfig::default()
    })
    .unwrap();
    let sql = sqlserver::start(SqlServerConfig {
        entra: Some(e.trust()),
        ..SqlServerConfig::default()
    })
    .unwrap();
    sql.engine()
        .run_script(&format!(
            "CREATE DATABASE Entra;
             CREATE LOGIN [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}';
             CREATE TABLE Entra.dbo.t (id int PRIMARY KEY, amount decimal(18,2));
             INSERT INTO Entra.dbo.t VALUES (1, 10.50), (2, 20.25), (3, 30.00);",
            app.client_id
        ))
        .unwrap();
    let op = BridgeOperator::new(SqlServerSettings {
        host: "127.0.0.1".into(),
        port: sql.port(),
        database: "Entra".into(),
        username: String::new(),
        password: String::new(),
        encrypt: Encrypt::On,
        trust_server_certificate: true,
        ca_file: None,
        packet_size: 4096,
        application_name: DEFAULT_APPLICATION_NAME.into(),
        authentication: Authentication::AccessToken(
            e.sign(&e.claims_for(&app, "https://database.windows.net/")),
        ),
    })
    .unwrap();
    let (_, batches) = op
        .extract_to_batches(
            "SELECT SUSER_SNAME() AS who, count(*) AS n, sum(amount) AS total FROM dbo.t",
        )
        .await
        .unwrap();
    let b = &batches[0];
    assert_eq!(b.column(0).as_string::<i32>().value(0), "etl-bridge");
    assert_eq!(
        b.column(1)
            .as_primitive::<arrow_array::types::Int32Type>()
            .value(0),
        3
    );
    assert_eq!(b.column(2).as_primitive::<Decimal128Type>().value(0), 6075);
}
