//! Reading Parquet files uploaded to a Volume, so users can check an
//! extraction with `SELECT * FROM parquet.\`/Volumes/...\`` or
//! `read_files('/Volumes/...')`. The files are loaded into a temporary SQLite
//! table for the statement; a directory reads every file under it,
//! recursively, but those whose names start with `_` or `.`, as Spark's file
//! index does ("read_files discovers all files under the provided directory
//! recursively", https://docs.databricks.com/en/sql/language-manual/functions/read_files.html),
//! so a file that is not Parquet there fails the read. COPY INTO
//! (`copy_into.rs`) reads file by file with [`file_schema`] and [`append_file`].

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
    LargeStringArray, ListArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt16Array, UInt32Array, UInt8Array,
};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rusqlite::Connection;

use super::catalog::{self, quote_ident};
use super::error::SqlError;
use super::types::{self, Cell, DbxType};
use super::widening;
use crate::databricks::paths::VolumePath;

/// The Databricks type a Parquet/Arrow column reads as.
fn dbx_type(dt: &DataType) -> Option<DbxType> {
    Some(match dt {
        DataType::Boolean => DbxType::Boolean,
        DataType::Int8 => DbxType::Byte,
        DataType::Int16 | DataType::UInt8 => DbxType::Short,
        DataType::Int32 | DataType::UInt16 => DbxType::Int,
        DataType::Int64 | DataType::UInt32 => DbxType::Long,
        DataType::Float32 => DbxType::Float,
        DataType::Float64 => DbxType::Double,
        DataType::Utf8 | DataType::LargeUtf8 => DbxType::String,
        DataType::Binary | DataType::LargeBinary => DbxType::Binary,
        DataType::Date32 => DbxType::Date,
        DataType::Decimal128(p, s) if *s >= 0 => DbxType::Decimal {
            precision: *p,
            scale: *s as u8,
        },
        DataType::Timestamp(_, Some(_)) => DbxType::Timestamp,
        DataType::Timestamp(_, None) => DbxType::TimestampNtz,
        DataType::List(f) => DbxType::Array(Box::new(dbx_type(f.data_type())?)),
        _ => return None,
    })
}

fn ts_text(micros: i64) -> Cell {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(dt) => Cell::Text(types::timestamp_text(&dt.naive_utc())),
        None => Cell::Null,
    }
}

/// One value of an Arrow array as a SQLite cell in the storage encoding.
fn cell(a: &ArrayRef, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Null;
    }
    macro_rules! get {
        ($t:ty) => {
            a.as_any().downcast_ref::<$t>().map(|x| x.value(i))
        };
    }
    let c = match a.data_type() {
        DataType::Boolean => get!(BooleanArray).map(|v| Cell::Int(v as i64)),
        DataType::Int8 => get!(Int8Array).map(|v| Cell::Int(v as i64)),
        DataType::Int16 => get!(Int16Array).map(|v| Cell::Int(v as i64)),
        DataType::Int32 => get!(Int32Array).map(|v| Cell::Int(v as i64)),
        DataType::Int64 => get!(Int64Array).map(Cell::Int),
        DataType::UInt8 => get!(UInt8Array).map(|v| Cell::Int(v as i64)),
        DataType::UInt16 => get!(UInt16Array).map(|v| Cell::Int(v as i64)),
        DataType::UInt32 => get!(UInt32Array).map(|v| Cell::Int(v as i64)),
        DataType::Float32 => get!(Float32Array).map(|v| Cell::Real(v as f64)),
        DataType::Float64 => get!(Float64Array).map(Cell::Real),
        DataType::Utf8 => get!(StringArray).map(|v| Cell::Text(v.to_string())),
        DataType::LargeUtf8 => get!(LargeStringArray).map(|v| Cell::Text(v.to_string())),
        DataType::Binary => get!(BinaryArray).map(|v| Cell::Blob(v.to_vec())),
        DataType::LargeBinary => get!(LargeBinaryArray).map(|v| Cell::Blob(v.to_vec())),
        DataType::Date32 => get!(Date32Array).and_then(|d| {
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::TimeDelta::days(d as i64)))
                .map(|d| Cell::Text(d.format("%Y-%m-%d").to_string()))
        }),
        DataType::Decimal128(_, s) => get!(Decimal128Array).map(|v| {
            let s = (*s).max(0) as usize;
            let neg = v < 0;
            let digits = v.unsigned_abs().to_string();
            let digits = format!("{digits:0>width$}", width = s + 1);
            let (ip, fp) = digits.split_at(digits.len() - s);
            let text = if s == 0 {
                ip.to_string()
            } else {
                format!("{ip}.{fp}")
            };
            Cell::Text(if neg { format!("-{text}") } else { text })
        }),
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => get!(TimestampSecondArray).map(|v| v * 1_000_000),
                TimeUnit::Millisecond => get!(TimestampMillisecondArray).map(|v| v * 1_000),
                TimeUnit::Microsecond => get!(TimestampMicrosecondArray),
                TimeUnit::Nanosecond => get!(TimestampNanosecondArray).map(|v| v / 1_000),
            };
            micros.map(ts_text)
        }
        DataType::List(_) => a.as_any().downcast_ref::<ListArray>().map(|l| {
            let inner = l.value(i);
            let items: Vec<serde_json::Value> = (0..inner.len())
                .map(|j| match cell(&inner, j) {
                    Cell::Null => serde_json::Value::Null,
                    Cell::Int(v) => serde_json::Value::from(v),
                    Cell::Real(v) => serde_json::Value::from(v),
                    Cell::Text(t) => serde_json::Value::String(t),
                    Cell::Blob(b) => {
                        serde_json::Value::String(String::from_utf8_lossy(&b).into_owned())
                    }
                })
                .collect();
            Cell::Text(serde_json::Value::Array(items).to_string())
        }),
        _ => None,
    };
    c.unwrap_or(Cell::Null)
}

fn to_sql(c: Cell) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match c {
        Cell::Null => V::Null,
        Cell::Int(i) => V::Integer(i),
        Cell::Real(f) => V::Real(f),
        Cell::Text(t) => V::Text(t),
        Cell::Blob(b) => V::Blob(b),
    }
}

/// Loads the Parquet file(s) at a volume path into `temp.<table>`; returns
/// the columns with their Databricks types.
pub fn load_parquet(
    conn: &Connection,
    volumes_root: &Path,
    path: &str,
    table: &str,
) -> Result<Vec<(String, DbxType)>, SqlError> {
    let vp = VolumePath::parse(path)
        .map_err(|e| SqlError::invalid("INVALID_PATH", &format!("{e}."), "42K03"))?;
    if catalog::get_volume(conn, &vp.volume)?.is_none() {
        return Err(SqlError::path_not_found(path));
    }
    let disk = vp.to_disk(volumes_root);
    let mut files = Vec::new();
    if disk.is_dir() {
        files = data_files(&disk).map_err(SqlError::internal)?;
    } else if disk.is_file() {
        files.push(disk);
    } else {
        return Err(SqlError::path_not_found(path));
    }
    if files.is_empty() {
        return Err(SqlError::invalid(
            "UNABLE_TO_INFER_SCHEMA",
            &format!(
                "Unable to infer schema for Parquet at {path}. It must be specified manually."
            ),
            "42KD9",
        ));
    }
    let mut columns: Option<Vec<(String, DbxType)>> = None;
    let qt = format!("temp.{}", quote_ident(table));
    for f in &files {
        let shown = match f.strip_prefix(vp.to_disk(volumes_root)) {
            Ok(rel) if !rel.as_os_str().is_empty() => {
                format!("{}/{}", path.trim_end_matches('/'), rel.to_string_lossy())
            }
            _ => path.to_string(),
        };
        let file = File::open(f).map_err(|e| footer_error(&shown, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| footer_error(&shown, e))?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let cols: Vec<(String, DbxType)> = schema
            .fields()
            .iter()
            .map(|fld| {
                dbx_type(fld.data_type())
                    .map(|t| (fld.name().clone(), t))
                    .ok_or_else(|| {
                        SqlError::unsupported(&format!(
                            "Parquet column {} of type {}",
                            fld.name(),
                            fld.data_type()
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        match &columns {
            None => {
                let defs: Vec<String> = cols
                    .iter()
                    .map(|(n, t)| format!("{} {}", quote_ident(n), t.sqlite_decl()))
                    .collect();
                conn.execute_batch(&format!(
                    "DROP TABLE IF EXISTS {qt}; CREATE TABLE {qt} ({})",
                    defs.join(", ")
                ))
                .map_err(SqlError::internal)?;
                columns = Some(cols.clone());
            }
            Some(first) if *first != cols => {
                return Err(SqlError::invalid(
                    "CANNOT_MERGE_SCHEMAS",
                    &format!("Failed merging schemas of the files under {path}."),
                    "42KD9",
                ))
            }
            Some(_) => {}
        }
        let marks: Vec<&str> = cols.iter().map(|_| "?").collect();
        let mut ins = conn
            .prepare(&format!("INSERT INTO {qt} VALUES ({})", marks.join(", ")))
            .map_err(SqlError::internal)?;
        for batch in reader {
            let batch = batch.map_err(|e| {
                SqlError::invalid(
                    "FAILED_READ_FILE",
                    &format!("Error while reading file {path}: {e}."),
                    "KD001",
                )
            })?;
            for row in 0..batch.num_rows() {
                let vals: Vec<rusqlite::types::Value> = batch
                    .columns()
                    .iter()
                    .zip(&cols)
                    .map(|(a, (_, t))| {
                        let c = cell(a, row);
                        let c = types::store(c.clone(), t).unwrap_or(c);
                        to_sql(c)
                    })
                    .collect();
                ins.execute(rusqlite::params_from_iter(vals))
                    .map_err(SqlError::internal)?;
            }
        }
    }
    Ok(columns.unwrap_or_default())
}

/// Every file under a directory a Spark file source reads: recursively, all
/// but those whose names start with `_` or `.` (hidden, and the Files API's
/// in-flight uploads), in path order. Unlike `read_files`' `.parquet`
/// filter, a COPY INTO reads whatever else is there too, as Spark's file
/// index does.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

fn footer_error(shown: &str, e: impl std::fmt::Display) -> SqlError {
    // FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER
    // (https://docs.databricks.com/error-messages/failed-read-file-error-class.html).
    SqlError::invalid(
        "FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER",
        &format!("Error while reading file {shown}. Could not read footer. Please ensure that the file is in either ORC or Parquet format. If not, please convert it to a valid format. If the file is in the valid format, please check if it is corrupt. If it is, you can choose to either ignore it or fix the corruption. ({e})"),
        "KD001",
    )
}

/// The columns (name, type) of one Parquet file, from its footer; a file
/// that is not Parquet fails with `FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER`.
pub fn file_schema(disk: &Path, shown: &str) -> Result<Vec<(String, DbxType)>, SqlError> {
    let file = File::open(disk).map_err(|e| footer_error(shown, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| footer_error(shown, e))?;
    builder
        .schema()
        .fields()
        .iter()
        .map(|fld| {
            dbx_type(fld.data_type())
                .map(|t| (fld.name().clone(), t))
                .ok_or_else(|| {
                    SqlError::unsupported(&format!(
                        "Parquet column {} of type {}",
                        fld.name(),
                        fld.data_type()
                    ))
                })
        })
        .collect()
}

/// The Parquet physical type a column of this type is written as, for
/// the type mismatch error.
fn parquet_physical(t: &DbxType) -> &'static str {
    match t {
        DbxType::Boolean => "BOOLEAN",
        DbxType::Byte | DbxType::Short | DbxType::Int | DbxType::Date => "INT32",
        DbxType::Long | DbxType::Timestamp | DbxType::TimestampNtz => "INT64",
        DbxType::Float => "FLOAT",
        DbxType::Double => "DOUBLE",
        DbxType::Decimal { .. } => "FIXED_LEN_BYTE_ARRAY",
        DbxType::String | DbxType::Binary => "BYTE_ARRAY",
        DbxType::Array(_) | DbxType::Map(..) => "GROUP",
        DbxType::Void => "UNKNOWN",
    }
}

/// Appends the rows of one Parquet file to `temp.<table>`, whose columns
/// are `columns`: each is matched by name (case-insensitive) to a file
/// column, absent ones are NULL and file columns not in `columns` are not
/// read, as Spark reads a file with a given read schema. A file column
/// whose type the Parquet reader cannot convert to the read type fails with
/// `FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH`
/// (https://docs.databricks.com/error-messages/failed-read-file-error-class.html).
/// Returns the number of rows.
pub fn append_file(
    conn: &Connection,
    disk: &Path,
    shown: &str,
    table: &str,
    columns: &[(String, DbxType)],
) -> Result<u64, SqlError> {
    let file_cols = file_schema(disk, shown)?;
    let mut sources: Vec<Option<usize>> = Vec::with_capacity(columns.len());
    for (name, ty) in columns {
        let found = file_cols
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name));
        if let Some(i) = found {
            let actual = &file_cols[i].1;
            if !widening::parquet_readable(actual, ty) {
                return Err(SqlError::invalid(
                    "FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH",
                    &format!(
                        "Error while reading file {shown}. Data type mismatches when reading Parquet column `{}`. Expected Spark type {}, actual Parquet type {}.",
                        name,
                        ty.to_string().to_lowercase(),
                        parquet_physical(actual)
                    ),
                    "KD001",
                ));
            }
        }
        sources.push(found);
    }
    let file = File::open(disk).map_err(|e| footer_error(shown, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| footer_error(shown, e))?;
    let marks: Vec<&str> = columns.iter().map(|_| "?").collect();
    let names: Vec<String> = columns.iter().map(|(n, _)| quote_ident(n)).collect();
    let mut ins = conn
        .prepare(&format!(
            "INSERT INTO temp.{} ({}) VALUES ({})",
            quote_ident(table),
            names.join(", "),
            marks.join(", ")
        ))
        .map_err(SqlError::internal)?;
    let mut n = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| {
            SqlError::invalid(
                "FAILED_READ_FILE.NO_HINT",
                &format!("Error while reading file {shown}. ({e})"),
                "KD001",
            )
        })?;
        for row in 0..batch.num_rows() {
            let vals: Vec<rusqlite::types::Value> = sources
                .iter()
                .zip(columns)
                .map(|(src, (_, t))| match src {
                    None => rusqlite::types::Value::Null,
                    Some(i) => {
                        let c = cell(batch.column(*i), row);
                        let c = types::store(c.clone(), t).unwrap_or(c);
                        to_sql(c)
                    }
                })
                .collect();
            ins.execute(rusqlite::params_from_iter(vals))
                .map_err(SqlError::internal)?;
            n += 1;
        }
    }
    Ok(n)
}
