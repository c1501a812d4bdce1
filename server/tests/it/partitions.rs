//! Partitioned reads (`--partition-on`, `partition_on` in `<name>.yaml`):
//! the same rows as the unpartitioned read — counted and compared row by
//! row — for int, bigint, date and datetime2 columns with NULLs and an
//! empty range; a partition that fails once is retried alone; columns that
//! cannot be split are refused naming the column.

use crate::common;

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use common::{extract_to, fixture, Fixture};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const PASSWORD: &str = "Bridge!Passw0rd";

/// 2,000 ids with 501..=1000 missing (an empty range for 4 partitions), and
/// NULLs in every partition column but id.
fn seed(f: &Fixture) {
    let mut script = String::from(
        "USE Fid\nGO\nCREATE TABLE dbo.p (id int NOT NULL PRIMARY KEY, big bigint NULL, d date NULL, \
         ts datetime2(7) NULL, v nvarchar(20) NULL)\nGO\n",
    );
    let ids: Vec<i64> = (1..=2000).filter(|i| !(501..=1000).contains(i)).collect();
    for chunk in ids.chunks(500) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let null = |every: i64, v: String| if i % every == 0 { "NULL".into() } else { v };
                format!(
                    "({i}, {}, {}, {}, N'fila {i} ñ')",
                    null(7, format!("{}", i * 1_000_000_000_000 - 3)),
                    null(11, format!("DATEADD(day, {i}, '2020-01-01')")),
                    null(
                        13,
                        format!("DATEADD(second, {}, '2024-05-01T10:00:00.1234567')", i * 37)
                    ),
                )
            })
            .collect();
        script.push_str(&format!(
            "INSERT INTO dbo.p VALUES {}\nGO\n",
            rows.join(", ")
        ));
    }
    f.server.engine().run_script(&script).unwrap();
    std::fs::write(
        f.dir.join("queries/p.sql"),
        "SELECT id, big, d, ts, v FROM {database}.{schema}.p\n",
    )
    .unwrap();
}

/// Every row of a query's output as text, sorted, and the manifest.
fn rows(dir: &Path) -> (Vec<String>, serde_json::Value) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for part in manifest["parts"].as_array().unwrap() {
        let file = std::fs::File::open(dir.join(part["file"].as_str().unwrap())).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b: RecordBatch = b.unwrap();
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b.columns().iter().map(|c| cell(c.as_ref(), r)).collect();
                out.push(cells.join("|"));
            }
        }
    }
    out.sort();
    (out, manifest)
}

/// One value as text (the types of dbo.p's columns).
fn cell(c: &dyn Array, r: usize) -> String {
    if c.is_null(r) {
        return "NULL".into();
    }
    match c.data_type() {
        DataType::Int32 => c.as_primitive::<Int32Type>().value(r).to_string(),
        DataType::Int64 => c.as_primitive::<Int64Type>().value(r).to_string(),
        DataType::Date32 => c.as_primitive::<Date32Type>().value(r).to_string(),
        DataType::Timestamp(..) => c
            .as_primitive::<TimestampMicrosecondType>()
            .value(r)
            .to_string(),
        DataType::Utf8 => c.as_string::<i32>().value(r).to_string(),
        other => panic!("unexpected type {other}"),
    }
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    err
}

#[test]
fn partitions_return_exactly_the_unpartitioned_rows() {
    let f = fixture("partitions");
    seed(&f);
    ok(&extract_to(&f, "whole", &["--query", "p"], PASSWORD));
    let (whole, m) = rows(&f.dir.join("whole/Colombia/p"));
    assert_eq!(whole.len(), 1500);
    assert_eq!(m["rows"], 1500);
    for column in ["id", "big", "d", "ts"] {
        let dest = format!("by_{column}");
        let err = ok(&extract_to(
            &f,
            &dest,
            &[
                "--query",
                "p",
                "--partition-on",
                column,
                "--partitions",
                "4",
            ],
            PASSWORD,
        ));
        assert!(err.contains(&format!("partition(s) on {column}")), "{err}");
        let (got, m) = rows(&f.dir.join(&dest).join("Colombia/p"));
        assert_eq!(got, whole, "partitioned on {column}");
        assert_eq!(m["rows"], 1500, "{column}");
        let parts = m["parts"].as_array().unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p["file"].as_str().unwrap()).collect();
        // One part per partition that had rows; all 4 ran (the empty id
        // range writes an empty part), named by partition.
        assert!(names.iter().all(|n| n.starts_with("part-0")), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("part-003-")),
            "{names:?}"
        );
        let sum: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
        assert_eq!(sum, 1500);
    }
    // The id range 501..=1000 is empty: its partition wrote no rows.
    let (_, m) = rows(&f.dir.join("by_id/Colombia/p"));
    let p1: u64 = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["file"].as_str().unwrap().starts_with("part-001-"))
        .map(|p| p["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(p1, 0);
}

#[test]
fn a_failing_partition_is_retried_alone() {
    let f = fixture("partitions-retry");
    seed(&f);
    ok(&extract_to(&f, "whole", &["--query", "p"], PASSWORD));
    let (whole, _) = rows(&f.dir.join("whole/Colombia/p"));
    // A deadlock (transient) on the last partition's statement, once.
    f.server
        .engine()
        .inject_deadlock(r"\[id\] >= 1501", 1)
        .unwrap();
    let err = ok(&extract_to(
        &f,
        "retried",
        &[
            "--query",
            "p",
            "--partition-on",
            "id",
            "--partitions",
            "4",
            "--retry-base-ms",
            "10",
        ],
        PASSWORD,
    ));
    assert!(err.contains("partition 4 of 4: attempt 1 failed"), "{err}");
    for other in 1..=3 {
        assert!(
            !err.contains(&format!("partition {other} of 4: attempt")),
            "{err}"
        );
    }
    let (got, _) = rows(&f.dir.join("retried/Colombia/p"));
    assert_eq!(got, whole);
}

#[test]
fn partition_options_in_the_query_file_and_refusals() {
    let f = fixture("partitions-yaml");
    seed(&f);
    std::fs::write(
        f.dir.join("queries/p.yaml"),
        "partition_on: d\npartitions: 3\n",
    )
    .unwrap();
    let err = ok(&extract_to(&f, "yaml", &["--query", "p"], PASSWORD));
    assert!(err.contains("3 partition(s) on d"), "{err}");
    assert_eq!(rows(&f.dir.join("yaml/Colombia/p")).0.len(), 1500);

    // Text cannot be split; the message names the column and what can.
    let o = extract_to(
        &f,
        "text",
        &["--query", "p", "--partition-on", "v"],
        PASSWORD,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("partition column 'v' is text") && err.contains("datetime2"),
        "{err}"
    );
    assert!(!f.dir.join("text/Colombia/p").exists());

    let o = extract_to(
        &f,
        "zero",
        &["--query", "p", "--partition-on", "id", "--partitions", "0"],
        PASSWORD,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("between 1 and 64"));

    std::fs::write(f.dir.join("queries/p.yaml"), "partitions: 3\n").unwrap();
    let o = extract_to(&f, "bad", &["--query", "p"], PASSWORD);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("p.yaml") && err.contains("partitions"),
        "{err}"
    );

    // An empty result: one partition, no rows, a valid output.
    std::fs::remove_file(f.dir.join("queries/p.yaml")).unwrap();
    std::fs::write(
        f.dir.join("queries/none.sql"),
        "SELECT id, d FROM {database}.{schema}.p WHERE id < 0\n",
    )
    .unwrap();
    ok(&extract_to(
        &f,
        "empty",
        &["--query", "none", "--partition-on", "id"],
        PASSWORD,
    ));
    let (got, m) = rows(&f.dir.join("empty/Colombia/none"));
    assert!(got.is_empty());
    assert_eq!(m["rows"], 0);
}
