//! `extract` to a local directory against the SQL Server sandbox: every
//! value and logical type read back from the Parquet, and the failure modes a
//! user meets (existing output, bad input, wrong password, dropped connection).

use crate::common;

use std::path::Path;

use common::{extract, extract_to, fixture};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow_select_concat(&batches)
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "one batch for a small table");
    batches[0].clone()
}

fn us(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

#[test]
fn every_type_is_lossless() {
    let f = fixture("types");
    let o = extract(&f, &[], "Bridge!Passw0rd");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = f.dir.join("out/Colombia/tipos");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 3);
    let b = read(&out.join("part-00000.parquet"));
    let col = |n: &str| b.column_by_name(n).unwrap_or_else(|| panic!("column {n}"));
    let ty = |n: &str| col(n).data_type().clone();
    assert_eq!(ty("c_dec38"), DataType::Decimal128(38, 10));
    assert_eq!(ty("c_money"), DataType::Decimal128(19, 4));
    assert_eq!(ty("c_smallmoney"), DataType::Decimal128(10, 4));
    assert_eq!(
        ty("c_dt2"),
        DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(
        ty("c_dto"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(ty("c_date"), DataType::Date32);
    assert_eq!(ty("c_time"), DataType::Utf8);
    assert_eq!(ty("c_guid"), DataType::Utf8);
    assert_eq!(ty("c_tiny"), DataType::Int16);
    assert_eq!(ty("c_varbinary"), DataType::Binary);
    assert!(!b.schema().field_with_name("id").unwrap().is_nullable());

    let dec = |n: &str, i: usize| col(n).as_primitive::<Decimal128Type>().value(i);
    assert!(col("c_bit").as_boolean().value(0));
    assert_eq!(col("c_tiny").as_primitive::<Int16Type>().value(0), 255);
    assert_eq!(col("c_small").as_primitive::<Int16Type>().value(0), -32768);
    assert_eq!(col("c_int").as_primitive::<Int32Type>().value(0), i32::MIN);
    assert_eq!(col("c_big").as_primitive::<Int64Type>().value(0), i64::MIN);
    assert_eq!(col("c_big").as_primitive::<Int64Type>().value(2), i64::MAX);
    assert_eq!(dec("c_dec38", 0), 12345678901234567890123456789012345678);
    assert_eq!(dec("c_dec38", 2), -1);
    assert_eq!(dec("c_num", 0), 123456789012345678);
    assert_eq!(dec("c_money", 0), -9223372036854775808);
    assert_eq!(dec("c_money", 2), 9223372036854775807);
    assert_eq!(dec("c_smallmoney", 0), -2147483648);
    assert_eq!(
        col("c_float").as_primitive::<Float64Type>().value(0),
        1.5e308
    );
    assert_eq!(col("c_real").as_primitive::<Float32Type>().value(0), -3.25);
    let s = |n: &str, i: usize| col(n).as_string::<i32>().value(i).to_string();
    assert_eq!(s("c_char", 0), "ab  ");
    assert_eq!(s("c_nvarchar", 0), "ñandú 🚀 日本");
    assert_eq!(s("c_nvarchar", 2), "");
    assert_eq!(s("c_time", 0), "23:59:59.9999999");
    assert_eq!(s("c_time0", 0), "12:30:00");
    assert_eq!(s("c_guid", 0), "6F9619FF-8B86-D011-B42D-00C04FC964FF");
    assert_eq!(col("c_binary").as_binary::<i32>().value(0), [1, 2, 3, 4]);
    assert_eq!(
        col("c_varbinary").as_binary::<i32>().value(0),
        [0xDE, 0xAD, 0xBE, 0xEF]
    );
    assert_eq!(
        col("c_varbinary").as_binary::<i32>().value(2),
        [] as [u8; 0]
    );
    let days = |d: NaiveDate| (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32;
    assert_eq!(
        col("c_date").as_primitive::<Date32Type>().value(0),
        days(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
    );
    assert_eq!(
        col("c_date").as_primitive::<Date32Type>().value(2),
        days(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap())
    );
    let ts = |n: &str, i: usize| col(n).as_primitive::<TimestampMicrosecondType>().value(i);
    assert_eq!(ts("c_datetime", 0), us("1753-01-01 00:00:00.003"));
    assert_eq!(ts("c_datetime", 2), us("9999-12-31 23:59:59.997"));
    assert_eq!(ts("c_sdt", 0), us("1900-01-01 00:00:00"));
    assert_eq!(ts("c_dt2", 0), us("1969-12-31 23:59:59.123456"));
    assert_eq!(ts("c_dt2", 2), us("9999-12-31 23:59:59.999999"));
    assert_eq!(ts("c_dto", 0), us("2024-05-01 05:00:00.123456"));
    assert_eq!(ts("c_dto", 2), us("0001-01-01 08:00:00"));
    // The all-NULL row.
    for name in [
        "c_bit", "c_dec38", "c_money", "c_nvmax", "c_date", "c_dto", "c_guid", "c_binary",
    ] {
        assert!(col(name).is_null(1), "{name} row 2 should be NULL");
    }
}

#[test]
fn existing_output_needs_overwrite_and_failures_leave_nothing() {
    let f = fixture("modes");
    assert!(extract(&f, &[], "Bridge!Passw0rd").status.success());
    let again = extract(&f, &[], "Bridge!Passw0rd");
    assert!(!again.status.success());
    let text = String::from_utf8_lossy(&again.stdout).to_string()
        + &String::from_utf8_lossy(&again.stderr);
    assert!(
        text.contains("already exists") && text.contains("--overwrite"),
        "{text}"
    );
    assert!(extract(&f, &["--overwrite"], "Bridge!Passw0rd")
        .status
        .success());

    // Wrong password: reported, no output.
    let o = extract_to(&f, "out2", &[], "nope");
    assert!(!o.status.success());
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("refused the login"), "{text}");
    assert!(!f.dir.join("out2/Colombia/tipos").exists());

    // The connection drops mid-result once, then a deadlock: both retried.
    f.server.faults().drop_next_connections_after_rows(1, 1);
    f.server
        .engine()
        .inject_deadlock("(?i)select \\* from", 1)
        .unwrap();
    let o = extract_to(&f, "out4", &["--retry-base-ms", "10"], "Bridge!Passw0rd");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("retrying").count(), 2, "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(f.dir.join("out4/Colombia/tipos/_manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rows"], 3);

    // It keeps dropping: retried, then reported; nothing half-written remains.
    f.server.faults().drop_connection_after_rows(1);
    let o = extract_to(&f, "out3", &["--retry-base-ms", "10"], "Bridge!Passw0rd");
    f.server.faults().drop_connection_after_rows(0);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .matches("retrying")
            .count(),
        2
    );
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.join("out3/Colombia"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    // Nothing listens: retried, then reported.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let o = common::extract_with_env(
        &f,
        "out5",
        &["--retry-base-ms", "10"],
        "Bridge!Passw0rd",
        &[("SQLSERVER_HOST", format!("127.0.0.1,{dead_port}"))],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach SQL Server"), "{err}");
    assert!(!f.dir.join("out5/Colombia/tipos").exists());

    // Bad input: unknown country, missing parameter, unknown query.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"))
        .args(["extract", "--country", "Narnia", "--destination", "out6"])
        .current_dir(&f.dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown country 'Narnia'"));
    let o = extract(&f, &["--query", "nope"], "Bridge!Passw0rd");
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown query 'nope'"));
    std::fs::write(f.dir.join("queries/bad.sql"), "SELECT {missing}").unwrap();
    let o = extract(&f, &["--query", "bad"], "Bridge!Passw0rd");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.sql:1: parameter 'missing' is not set")
    );
}
