//! Result chunks in the three formats of the Statement Execution API:
//! JSON_ARRAY (every value a string or null), CSV, and ARROW_STREAM (an Arrow
//! IPC stream per chunk with typed columns: DECIMAL as Decimal128, DATE as
//! Date32, TIMESTAMP as microseconds UTC, ARRAY as List, MAP as Map).
//! https://docs.databricks.com/api/workspace/statementexecution

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListBuilder, MapBuilder,
    MapFieldNames, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};

use crate::databricks::sql::types::{self, Cell, DbxType};
use crate::databricks::sql::Column;

/// Field names of a MAP column's entries, as Spark writes them.
fn map_field_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

/// Rows of a record batch in an IPC stream.
const BATCH_ROWS: usize = 65_536;

/// The value strings of one row, as JSON_ARRAY carries them.
pub fn render_row(columns: &[Column], row: &[Cell]) -> Vec<Option<String>> {
    columns
        .iter()
        .zip(row)
        .map(|(c, v)| types::render(v, &c.ty))
        .collect()
}

/// Approximate bytes of a row in JSON_ARRAY form, for chunking,
/// byte_limit and the INLINE limit, from the stored values rather than by
/// rendering each one (the API reference's `byte_limit`: "Byte counts are
/// based on internal data representations and might not match the final
/// size in the requested format").
/// https://docs.databricks.com/api/workspace/statementexecution/executestatement
pub fn row_bytes(row: &[Cell]) -> u64 {
    2 + row
        .iter()
        .map(|c| match c {
            Cell::Null => 5,
            Cell::Int(i) => u64::from(i.unsigned_abs().checked_ilog10().unwrap_or(0)) + 4,
            Cell::Real(_) => 23,
            Cell::Text(t) => t.len() as u64 + 3,
            Cell::Blob(b) => (b.len() as u64).div_ceil(3) * 4 + 3,
        })
        .sum::<u64>()
}

pub fn json_rows(columns: &[Column], rows: &[Vec<Cell>]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::Value::Array(
                    render_row(columns, r)
                        .into_iter()
                        .map(|v| match v {
                            Some(s) => serde_json::Value::String(s),
                            None => serde_json::Value::Null,
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV rows (no header line); NULL is an empty field.
pub fn csv_rows(columns: &[Column], rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut out = String::new();
    for r in rows {
        let fields: Vec<String> = render_row(columns, r)
            .into_iter()
            .map(|v| v.map(|s| csv_field(&s)).unwrap_or_default())
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn arrow_type(ty: &DbxType) -> DataType {
    match ty {
        DbxType::Boolean => DataType::Boolean,
        DbxType::Byte => DataType::Int8,
        DbxType::Short => DataType::Int16,
        DbxType::Int => DataType::Int32,
        DbxType::Long => DataType::Int64,
        DbxType::Float => DataType::Float32,
        DbxType::Double => DataType::Float64,
        DbxType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        DbxType::Binary => DataType::Binary,
        DbxType::Date => DataType::Date32,
        DbxType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("Etc/UTC".into())),
        DbxType::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
        DbxType::Array(_) => DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        DbxType::Map(..) => {
            let names = map_field_names();
            DataType::Map(
                Arc::new(Field::new(
                    names.entry,
                    DataType::Struct(
                        vec![
                            Field::new(names.key, DataType::Utf8, false),
                            Field::new(names.value, DataType::Utf8, true),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            )
        }
        DbxType::String | DbxType::Void => DataType::Utf8,
    }
}

pub fn arrow_schema(columns: &[Column]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| {
                let f = Field::new(&c.name, arrow_type(&c.ty), true);
                f.with_metadata(
                    [("Spark:DataType:SqlName".to_string(), c.ty.to_string())]
                        .into_iter()
                        .collect::<std::collections::HashMap<String, String>>(),
                )
            })
            .collect::<Vec<_>>(),
    )
}

fn as_i64(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(i) => Some(*i),
        Cell::Real(f) => Some(*f as i64),
        Cell::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn as_f64(c: &Cell) -> Option<f64> {
    match c {
        Cell::Int(i) => Some(*i as f64),
        Cell::Real(f) => Some(*f),
        Cell::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn column_array(col: &Column, rows: &[Vec<Cell>], i: usize) -> Result<ArrayRef, ArrowError> {
    macro_rules! build {
        ($b:expr, $conv:expr) => {{
            let mut b = $b;
            for r in rows {
                let v: Option<_> = $conv(&r[i]);
                b.append_option(v);
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match &col.ty {
        DbxType::Boolean => build!(BooleanBuilder::new(), |c: &Cell| as_i64(c).map(|v| v != 0)),
        DbxType::Byte => build!(Int8Builder::new(), |c: &Cell| as_i64(c).map(|v| v as i8)),
        DbxType::Short => build!(Int16Builder::new(), |c: &Cell| as_i64(c).map(|v| v as i16)),
        DbxType::Int => build!(Int32Builder::new(), |c: &Cell| as_i64(c).map(|v| v as i32)),
        DbxType::Long => build!(Int64Builder::new(), as_i64),
        DbxType::Float => build!(Float32Builder::new(), |c: &Cell| as_f64(c)
            .map(|v| v as f32)),
        DbxType::Double => build!(Float64Builder::new(), as_f64),
        DbxType::Decimal { precision, scale } => {
            let mut b =
                Decimal128Builder::new().with_precision_and_scale(*precision, *scale as i8)?;
            for r in rows {
                b.append_option(types::decimal_unscaled(&r[i], *scale));
            }
            Arc::new(b.finish())
        }
        DbxType::Binary => {
            let mut b = BinaryBuilder::new();
            for r in rows {
                match &r[i] {
                    Cell::Null => b.append_null(),
                    Cell::Blob(x) => b.append_value(x),
                    Cell::Text(t) => b.append_value(t.as_bytes()),
                    other => b.append_value(
                        types::render(other, &DbxType::String)
                            .unwrap_or_default()
                            .as_bytes(),
                    ),
                }
            }
            Arc::new(b.finish())
        }
        DbxType::Date => build!(Date32Builder::new(), types::date_days),
        DbxType::Timestamp => build!(
            TimestampMicrosecondBuilder::new().with_timezone("Etc/UTC"),
            types::timestamp_micros
        ),
        DbxType::TimestampNtz => {
            build!(TimestampMicrosecondBuilder::new(), types::timestamp_micros)
        }
        DbxType::Array(_) => {
            let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
                "element",
                DataType::Utf8,
                true,
            )));
            for r in rows {
                match types::array_items(&r[i]) {
                    None => b.append_null(),
                    Some(items) => {
                        for it in items {
                            b.values().append_option(it);
                        }
                        b.append(true);
                    }
                }
            }
            Arc::new(b.finish())
        }
        DbxType::Map(..) => {
            let mut b = MapBuilder::new(
                Some(map_field_names()),
                StringBuilder::new(),
                StringBuilder::new(),
            );
            for r in rows {
                match types::map_entries(&r[i]) {
                    None => b.append(false)?,
                    Some(entries) => {
                        for (k, v) in entries {
                            b.keys().append_value(k);
                            b.values().append_option(v);
                        }
                        b.append(true)?;
                    }
                }
            }
            Arc::new(b.finish())
        }
        DbxType::String | DbxType::Void => {
            let mut b = StringBuilder::new();
            for r in rows {
                match &r[i] {
                    // A string is its own rendering: no copy.
                    Cell::Text(t) => b.append_value(t),
                    other => b.append_option(types::render(other, &col.ty)),
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// One chunk as an Arrow IPC stream (schema, record batches, end marker).
pub fn arrow_stream(columns: &[Column], rows: &[Vec<Cell>]) -> Result<Vec<u8>, ArrowError> {
    let schema = Arc::new(arrow_schema(columns));
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema)?;
        for part in rows.chunks(BATCH_ROWS) {
            let arrays: Vec<ArrayRef> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| column_array(c, part, i))
                .collect::<Result<_, _>>()?;
            let batch = if arrays.is_empty() {
                RecordBatch::try_new_with_options(
                    schema.clone(),
                    arrays,
                    &arrow_array::RecordBatchOptions::new().with_row_count(Some(part.len())),
                )?
            } else {
                RecordBatch::try_new(schema.clone(), arrays)?
            };
            w.write(&batch)?;
        }
        w.finish()?;
    }
    Ok(out)
}
