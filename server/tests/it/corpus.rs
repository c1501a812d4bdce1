//! The T-SQL corpus (tests/corpus/tsql_types.yaml): queries users write —
//! constants, operators under data type precedence, decimal precision and
//! scale, CASE/COALESCE/ISNULL, UNION, CAST/CONVERT with styles,
//! aggregates, window, string, date and math functions, CTEs, temp tables,
//! procedures and views — each with the SQL Server result type and values
//! Microsoft's documentation gives. Every query is extracted by the bridge
//! binary to Parquet against the SQL Server sandbox, and every column's
//! Parquet type and every value is checked.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    sql: String,
    #[serde(default)]
    setup: Vec<String>,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    rows: Option<serde_norway::Value>,
    #[serde(default)]
    error: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    type_unsure_length: bool,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
}

/// (base name, precision or length, scale) of a T-SQL type name.
fn parse_type(t: &str) -> (String, Option<u32>, Option<u32>) {
    let t = t.trim().to_ascii_lowercase();
    let (base, args) = match t.split_once('(') {
        Some((b, a)) => (b.trim().to_string(), a.trim_end_matches(')').to_string()),
        None => (t.clone(), String::new()),
    };
    let nums: Vec<Option<u32>> = args.split(',').map(|x| x.trim().parse().ok()).collect();
    let base = if base == "numeric" {
        "decimal".into()
    } else {
        base
    };
    (
        base,
        nums.first().copied().flatten(),
        nums.get(1).copied().flatten(),
    )
}

/// The Parquet type the README's mapping gives a SQL Server type; when the
/// types came from the result metadata a decimal is DECIMAL(38, s).
fn expected_parquet(ty: &str, from_metadata: bool) -> DataType {
    let (base, p, s) = parse_type(ty);
    match base.as_str() {
        "bit" => DataType::Boolean,
        "tinyint" | "smallint" => DataType::Int16,
        "int" => DataType::Int32,
        "bigint" => DataType::Int64,
        "real" => DataType::Float32,
        "float" => DataType::Float64,
        "decimal" => {
            let p = if from_metadata {
                38
            } else {
                p.unwrap_or(18) as u8
            };
            DataType::Decimal128(p, s.unwrap_or(0) as i8)
        }
        "money" => DataType::Decimal128(19, 4),
        "smallmoney" => DataType::Decimal128(10, 4),
        "date" => DataType::Date32,
        "datetime" | "datetime2" | "smalldatetime" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        "datetimeoffset" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "binary" | "varbinary" => DataType::Binary,
        _ => DataType::Utf8,
    }
}

fn read_output(dir: &Path) -> Vec<RecordBatch> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    parts.sort();
    let mut out = Vec::new();
    for p in parts {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

/// One Parquet value as the corpus writes it.
fn cell(a: &ArrayRef, i: usize) -> serde_norway::Value {
    use serde_norway::Value as Y;
    if a.is_null(i) {
        return Y::Null;
    }
    match a.data_type() {
        DataType::Boolean => Y::Bool(a.as_boolean().value(i)),
        DataType::Int16 => Y::from(i64::from(a.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Y::from(i64::from(a.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Y::from(a.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => Y::from(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Y::from(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => {
            let m = a.as_primitive::<Decimal128Type>().value(i);
            Y::String(decimal_text(m, *s as u32))
        }
        DataType::Utf8 => Y::String(a.as_string::<i32>().value(i).to_string()),
        DataType::Binary => {
            let b = a.as_binary::<i32>().value(i);
            Y::String(format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
            ))
        }
        DataType::Date32 => {
            let d = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                + chrono::Duration::days(i64::from(a.as_primitive::<Date32Type>().value(i)));
            Y::String(d.format("%Y-%m-%d").to_string())
        }
        DataType::Timestamp(_, tz) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(i);
            let dt = DateTime::from_timestamp_micros(us).unwrap().naive_utc();
            let text = dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            Y::String(if tz.is_some() {
                format!("{text} +00:00")
            } else {
                text
            })
        }
        other => panic!("unexpected Parquet type {other}"),
    }
}

fn decimal_text(m: i128, s: u32) -> String {
    let neg = m < 0;
    let digits = m.unsigned_abs().to_string();
    let s = s as usize;
    let (int, frac) = if digits.len() > s {
        let (i, f) = digits.split_at(digits.len() - s);
        (i.to_string(), f.to_string())
    } else {
        ("0".to_string(), format!("{digits:0>s$}"))
    };
    let sign = if neg { "-" } else { "" };
    if s == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Microsecond timestamp text of an expected date/time value (datetime2(7)'s
/// 100 ns digit is truncated in Parquet, datetimeoffset normalised to UTC).
fn expected_timestamp(text: &str, with_offset: bool) -> String {
    if with_offset {
        let dt = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f %:z")
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        return format!("{} +00:00", dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"));
    }
    let dt = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    // Truncate, not round, below the microsecond.
    let us = dt.and_utc().timestamp_micros();
    DateTime::from_timestamp_micros(us)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn same_value(got: &serde_norway::Value, want: &serde_norway::Value, ty: &str) -> bool {
    use serde_norway::Value as Y;
    let (base, _, _) = parse_type(ty);
    match (got, want) {
        (Y::Null, Y::Null) => true,
        (Y::Number(g), Y::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            if base == "real" {
                (g - w).abs() <= (w.abs() * 1e-6).max(1e-6)
            } else {
                g == w
            }
        }
        (Y::String(g), Y::String(w)) => match base.as_str() {
            "datetime" | "datetime2" | "smalldatetime" => *g == expected_timestamp(w, false),
            "datetimeoffset" => *g == expected_timestamp(w, true),
            "time" => {
                let parse = |s: &str| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok();
                parse(g).is_some() && parse(g) == parse(w)
            }
            "date" => g == w,
            _ => g == w,
        },
        (Y::Bool(g), Y::Bool(w)) => g == w,
        _ => false,
    }
}

#[test]
fn the_corpus_extracts_with_sql_servers_types_and_values() {
    let corpus: Vec<Entry> = serde_norway::from_str(
        &std::fs::read_to_string(repo().join("tests/corpus/tsql_types.yaml")).unwrap(),
    )
    .unwrap();
    assert!(
        corpus.len() >= 60,
        "the corpus has {} entries",
        corpus.len()
    );
    let server = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::LoginOnly,
        ..SqlServerConfig::default()
    })
    .unwrap();
    server
        .engine()
        .run_script(&std::fs::read_to_string(repo().join("tests/corpus/tsql_types.sql")).unwrap())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("bridge-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("queries")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/common_params.yaml"), "corpus: yes\n").unwrap();
    std::fs::write(dir.join("config/Colombia.yaml"), "country_code: CO\n").unwrap();
    for e in &corpus {
        if !e.setup.is_empty() {
            let script = format!("USE corpus\nGO\n{}\nGO\n", e.setup.join("\nGO\n"));
            server.engine().run_script(&script).unwrap();
        }
        std::fs::write(dir.join(format!("queries/{}.sql", e.name)), &e.sql).unwrap();
    }
    // The deck's way: a procedure called with a parameter from the country's config.
    std::fs::write(
        dir.join("queries/zz_procedure_with_placeholder.sql"),
        "EXEC dbo.ventas_por_pais @pais = '{country_code}'\n",
    )
    .unwrap();
    let f = common::Fixture {
        server,
        dir: dir.clone(),
    };
    let out = common::extract_with_env(
        &f,
        "out",
        &["--parallel", "4"],
        "Bridge!Passw0rd",
        &[("SQLSERVER_DATABASE", "corpus".to_string())],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &corpus {
        let mut bad = Vec::new();
        let qdir = dir.join("out/Colombia").join(&e.name);
        if let Some(code) = e.error {
            if qdir.exists() {
                bad.push(format!("expected error {code}, got an output"));
            }
            let line = log
                .lines()
                .find(|l| l.contains(&format!("[{}] failed:", e.name)))
                .unwrap_or("");
            if !line.contains(&code.to_string()) {
                bad.push(format!("expected error {code}: {line}"));
            }
            if !bad.is_empty() {
                failures.insert(e.name.clone(), bad);
            }
            continue;
        }
        if !qdir.join("_manifest.json").exists() {
            let line = log
                .lines()
                .find(|l| l.contains(&format!("[{}]", e.name)))
                .unwrap_or("(no message)");
            failures.insert(e.name.clone(), vec![format!("no output: {line}")]);
            continue;
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(qdir.join("_manifest.json")).unwrap()).unwrap();
        let from_metadata = manifest["types"]["from"] == "result_metadata";
        let batches = read_output(&qdir);
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| panic!("{}: no batch", e.name));
        if schema.fields().len() != e.columns.len() {
            bad.push(format!(
                "{} columns, expected {}",
                schema.fields().len(),
                e.columns.len()
            ));
        }
        for (i, c) in e.columns.iter().enumerate() {
            let Some(field) = schema.fields().get(i) else {
                break;
            };
            if !field.name().eq_ignore_ascii_case(&c.name) {
                bad.push(format!(
                    "column {i} is named {}, expected {}",
                    field.name(),
                    c.name
                ));
            }
            let want = expected_parquet(&c.ty, from_metadata);
            if *field.data_type() != want {
                bad.push(format!(
                    "column {}: Parquet {} for {}, expected {want}",
                    c.name,
                    field.data_type(),
                    c.ty
                ));
            }
            // The SQL Server type the bridge recorded (from sp_describe_first_result_set).
            if !from_metadata {
                let got = manifest["schema"][i]["sql_type"].as_str().unwrap_or("");
                let (gb, gp, gs) = parse_type(got);
                let (wb, wp, ws) = parse_type(&c.ty);
                let same = gb == wb && (c.type_unsure_length || (gp == wp && gs == ws));
                if !same {
                    bad.push(format!(
                        "column {}: SQL type {got}, expected {}",
                        c.name, c.ty
                    ));
                }
            }
        }
        match &e.rows {
            Some(serde_norway::Value::String(s)) if s == "any" => {}
            Some(serde_norway::Value::Sequence(rows)) => {
                let got: Vec<Vec<serde_norway::Value>> = batches
                    .iter()
                    .flat_map(|b| {
                        (0..b.num_rows())
                            .map(|r| b.columns().iter().map(|a| cell(a, r)).collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if got.len() != rows.len() {
                    bad.push(format!("{} rows, expected {}", got.len(), rows.len()));
                }
                for (r, (g, w)) in got.iter().zip(rows).enumerate() {
                    let w = w.as_sequence().cloned().unwrap_or_default();
                    for (k, c) in e.columns.iter().enumerate() {
                        let (Some(gv), Some(wv)) = (g.get(k), w.get(k)) else {
                            continue;
                        };
                        if !same_value(gv, wv, &c.ty) {
                            bad.push(format!("row {r} {}: {gv:?}, expected {wv:?}", c.name));
                        }
                    }
                }
            }
            other => bad.push(format!("no rows in the corpus entry: {other:?}")),
        }
        if !bad.is_empty() {
            failures.insert(e.name.clone(), bad);
        }
    }
    let by_param = read_output(&dir.join("out/Colombia/zz_procedure_with_placeholder"));
    let literal = read_output(&dir.join("out/Colombia/procedure_with_parameter"));
    assert_eq!(
        by_param.iter().map(RecordBatch::num_rows).sum::<usize>(),
        literal.iter().map(RecordBatch::num_rows).sum::<usize>(),
        "EXEC with '{{country_code}}' returns what EXEC with 'CO' does"
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus entries differ from SQL Server:\n{}\n--- bridge output ---\n{log}",
        failures.len(),
        corpus.len(),
        failures
            .iter()
            .map(|(k, v)| format!("{k}:\n  {}", v.join("\n  ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
