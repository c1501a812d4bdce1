//! `BridgeOperator` as a Rust program uses it: to Parquet and to Arrow
//! batches, retrying a deadlock.

mod common;

use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_schema::DataType;
use common::fixture;
use sql_databricks_bridge::config::{Encrypt, SqlServerSettings};
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
