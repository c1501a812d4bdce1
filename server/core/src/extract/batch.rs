//! Rows from the driver → Arrow columns, a bounded batch at a time.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Schema};
use chrono::{NaiveDateTime, NaiveTime, Timelike};
use tiberius::{ColumnData, FromSql};

use crate::types::to_parquet::Target;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("column '{column}': {message}")]
    Value { column: String, message: String },
    #[error("building the Arrow batch: {0}")]
    Arrow(#[from] ArrowError),
}

enum Builder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

/// Days from 0001-01-01, TDS's day zero for date, datetime2 and
/// datetimeoffset, to 1970-01-01, Arrow's.
const TDS_DAY_OF_EPOCH: i64 = 719_162;
/// 9999-12-31, the last day SQL Server stores.
const TDS_LAST_DAY: u32 = 3_652_058;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a date as sent: straight arithmetic on the
/// wire's day count (the calendar detour through chrono was a measurable
/// share of reading a date-heavy result).
fn epoch_days(column: &str, d: tiberius::time::Date) -> Result<i64, BatchError> {
    if d.days() > TDS_LAST_DAY {
        return Err(bad(column, format!("day {} is past 9999-12-31", d.days())));
    }
    Ok(i64::from(d.days()) - TDS_DAY_OF_EPOCH)
}

/// Microseconds since the epoch of a datetime2 as sent, truncating the
/// 100 ns digit of scale 7 as [`micros`] does.
fn epoch_micros(column: &str, dt: tiberius::time::DateTime2) -> Result<i64, BatchError> {
    let (inc, scale) = (dt.time().increments(), dt.time().scale());
    let of_day = match scale {
        0..=6 => inc.checked_mul(10u64.pow(6 - u32::from(scale))),
        7..=9 => Some(inc / 10u64.pow(u32::from(scale) - 6)),
        _ => None,
    }
    .and_then(|us| i64::try_from(us).ok())
    .filter(|us| *us < MICROS_PER_DAY)
    .ok_or_else(|| {
        bad(
            column,
            format!("time of day {inc} at scale {scale} is malformed"),
        )
    })?;
    Ok(epoch_days(column, dt.date())? * MICROS_PER_DAY + of_day)
}

/// Accumulates rows of one result into Arrow columns.
pub struct BatchBuilder {
    schema: Arc<Schema>,
    targets: Vec<Target>,
    names: Vec<String>,
    builders: Vec<Builder>,
    rows: usize,
}

fn bad(column: &str, message: impl Into<String>) -> BatchError {
    BatchError::Value {
        column: column.to_string(),
        message: message.into(),
    }
}

fn from_sql<'a, T: FromSql<'a>>(
    column: &str,
    v: &'a ColumnData<'static>,
) -> Result<Option<T>, BatchError> {
    T::from_sql(v).map_err(|e| bad(column, e.to_string()))
}

/// 10^n as i128.
fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

fn time_text(t: NaiveTime, scale: u8) -> String {
    let base = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if scale == 0 {
        return base;
    }
    let frac = format!("{:09}", t.nanosecond());
    format!("{base}.{}", &frac[..usize::from(scale.min(9))])
}

/// Microseconds since the epoch of a wall-clock time, truncating the
/// 100 ns digit of datetime2(7).
fn micros(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_micros()
}

impl BatchBuilder {
    pub fn new(schema: Arc<Schema>, targets: Vec<Target>, capacity: usize) -> Self {
        let names = schema.fields().iter().map(|f| f.name().clone()).collect();
        let builders = targets
            .iter()
            .map(|t| match t {
                Target::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(capacity)),
                Target::Int16 => Builder::Int16(Int16Builder::with_capacity(capacity)),
                Target::Int32 => Builder::Int32(Int32Builder::with_capacity(capacity)),
                Target::Int64 => Builder::Int64(Int64Builder::with_capacity(capacity)),
                Target::Float32 => Builder::Float32(Float32Builder::with_capacity(capacity)),
                Target::Float64 => Builder::Float64(Float64Builder::with_capacity(capacity)),
                Target::Decimal { scale, .. } => {
                    Builder::Decimal(Decimal128Builder::with_capacity(capacity), *scale)
                }
                Target::Money { .. } => {
                    Builder::Decimal(Decimal128Builder::with_capacity(capacity), 4)
                }
                Target::Utf8 | Target::Time { .. } | Target::Guid => {
                    Builder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
                }
                Target::Binary => {
                    Builder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16))
                }
                Target::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
                Target::Timestamp | Target::TimestampUtc => {
                    Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
                }
            })
            .collect();
        BatchBuilder {
            schema,
            targets,
            names,
            builders,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row; the cells must be in the schema's order.
    pub fn push_row(
        &mut self,
        cells: impl IntoIterator<Item = ColumnData<'static>>,
    ) -> Result<(), BatchError> {
        let mut n = 0;
        for (i, cell) in cells.into_iter().enumerate() {
            let (Some(b), Some(t), Some(name)) = (
                self.builders.get_mut(i),
                self.targets.get(i),
                self.names.get(i),
            ) else {
                return Err(bad(
                    "?",
                    format!("the row has more than {} columns", self.targets.len()),
                ));
            };
            append(b, t, name, &cell)?;
            n += 1;
        }
        if n != self.targets.len() {
            return Err(bad(
                "?",
                format!("the row has {n} columns, expected {}", self.targets.len()),
            ));
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows so far as a batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, BatchError> {
        let cols: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .zip(&self.targets)
            .map(|(b, t)| -> Result<ArrayRef, ArrowError> {
                Ok(match b {
                    Builder::Boolean(b) => Arc::new(b.finish()),
                    Builder::Int16(b) => Arc::new(b.finish()),
                    Builder::Int32(b) => Arc::new(b.finish()),
                    Builder::Int64(b) => Arc::new(b.finish()),
                    Builder::Float32(b) => Arc::new(b.finish()),
                    Builder::Float64(b) => Arc::new(b.finish()),
                    Builder::Decimal(b, _) => {
                        let (p, s) = match t {
                            Target::Decimal { precision, scale } => (*precision, *scale),
                            Target::Money { precision } => (*precision, 4),
                            _ => (38, 0),
                        };
                        Arc::new(b.finish().with_precision_and_scale(p, s as i8)?)
                    }
                    Builder::Utf8(b) => Arc::new(b.finish()),
                    Builder::Binary(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                    Builder::Timestamp(b) => {
                        let a = b.finish();
                        if matches!(t, Target::TimestampUtc) {
                            Arc::new(a.with_timezone("UTC"))
                        } else {
                            Arc::new(a)
                        }
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

fn append(
    b: &mut Builder,
    t: &Target,
    name: &str,
    v: &ColumnData<'static>,
) -> Result<(), BatchError> {
    match (b, v) {
        (Builder::Boolean(b), ColumnData::Bit(x)) => b.append_option(*x),
        (Builder::Int16(b), ColumnData::U8(x)) => b.append_option(x.map(i16::from)),
        (Builder::Int16(b), ColumnData::I16(x)) => b.append_option(*x),
        (Builder::Int32(b), ColumnData::I32(x)) => b.append_option(*x),
        (Builder::Int64(b), ColumnData::I64(x)) => b.append_option(*x),
        (Builder::Float32(b), ColumnData::F32(x)) => b.append_option(*x),
        (Builder::Float64(b), ColumnData::F64(x)) => b.append_option(*x),
        (Builder::Float64(b), ColumnData::F32(x)) => b.append_option(x.map(f64::from)),
        (Builder::Decimal(b, scale), ColumnData::Numeric(x)) => match x {
            None => b.append_null(),
            Some(n) => {
                let (value, from) = (n.value(), u32::from(n.scale()));
                let to = u32::from(*scale);
                let v = if to >= from {
                    value.checked_mul(pow10(to - from))
                } else {
                    // A value with more digits than the column's scale cannot
                    // come from SQL Server; refuse rather than round silently.
                    let f = pow10(from - to);
                    (value % f == 0).then(|| value / f)
                };
                b.append_value(
                    v.ok_or_else(|| bad(name, format!("value {n} does not fit scale {scale}")))?,
                );
            }
        },
        // An integer column widened to a decimal (see `result.rs`).
        (
            Builder::Decimal(b, scale),
            ColumnData::U8(_) | ColumnData::I16(_) | ColumnData::I32(_) | ColumnData::I64(_),
        ) => {
            let i: Option<i64> = match v {
                ColumnData::U8(x) => x.map(i64::from),
                ColumnData::I16(x) => x.map(i64::from),
                ColumnData::I32(x) => x.map(i64::from),
                ColumnData::I64(x) => *x,
                _ => None,
            };
            match i {
                None => b.append_null(),
                Some(i) => b.append_value(
                    i128::from(i)
                        .checked_mul(pow10(u32::from(*scale)))
                        .ok_or_else(|| {
                            bad(name, format!("value {i} does not fit scale {scale}"))
                        })?,
                ),
            }
        }
        // The driver decodes money as f64, exact to the 4th decimal while the
        // value stays under 2^53 ten-thousandths (about 9e11).
        (Builder::Decimal(b, _), ColumnData::F64(x)) => match x {
            None => b.append_null(),
            Some(f) => {
                let scaled = f * 10_000.0;
                if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
                    return Err(bad(
                        name,
                        format!("money value {f} is beyond the range the driver reads exactly (about ±9e11); cast it to decimal(19,4) in the query"),
                    ));
                }
                b.append_value(scaled.round() as i128);
            }
        },
        (Builder::Utf8(b), ColumnData::String(x)) => b.append_option(x.as_deref()),
        (Builder::Utf8(b), ColumnData::Guid(x)) => {
            b.append_option(x.map(|g| g.hyphenated().to_string().to_ascii_uppercase()))
        }
        (Builder::Utf8(b), ColumnData::Xml(x)) => {
            b.append_option(x.as_ref().map(|x| x.to_string()))
        }
        (Builder::Utf8(b), ColumnData::Time(_)) => {
            let scale = match t {
                Target::Time { scale } => *scale,
                _ => 7,
            };
            b.append_option(from_sql::<NaiveTime>(name, v)?.map(|t| time_text(t, scale)))
        }
        (Builder::Binary(b), ColumnData::Binary(x)) => b.append_option(x.as_deref()),
        (Builder::Date(b), ColumnData::Date(d)) => match d {
            None => b.append_null(),
            Some(d) => b.append_value(epoch_days(name, *d)? as i32),
        },
        // The date and time of a datetimeoffset are UTC on the wire (MS-TDS
        // 2.2.5.4.2), so the offset does not change the instant.
        (Builder::Timestamp(b), ColumnData::DateTimeOffset(d)) => match d {
            None => b.append_null(),
            Some(d) => b.append_value(epoch_micros(name, d.datetime2())?),
        },
        (Builder::Timestamp(b), ColumnData::DateTime(_)) => {
            // datetime is kept in 1/300 s; SQL Server shows it to the millisecond.
            b.append_option(from_sql::<NaiveDateTime>(name, v)?.map(|d| {
                let us = micros(d);
                (us + 500).div_euclid(1000) * 1000
            }))
        }
        (Builder::Timestamp(b), ColumnData::DateTime2(d)) => match d {
            None => b.append_null(),
            Some(d) => b.append_value(epoch_micros(name, *d)?),
        },
        (Builder::Timestamp(b), ColumnData::SmallDateTime(_)) => {
            b.append_option(from_sql::<NaiveDateTime>(name, v)?.map(micros))
        }
        (_, other) => {
            return Err(bad(
                name,
                format!(
                    "the server sent {} where {:?} was described",
                    data_kind(other),
                    t
                ),
            ))
        }
    }
    Ok(())
}

fn data_kind(v: &ColumnData<'_>) -> &'static str {
    match v {
        ColumnData::U8(_) => "tinyint",
        ColumnData::I16(_) => "smallint",
        ColumnData::I32(_) => "int",
        ColumnData::I64(_) => "bigint",
        ColumnData::F32(_) => "real",
        ColumnData::F64(_) => "float",
        ColumnData::Bit(_) => "bit",
        ColumnData::String(_) => "a string",
        ColumnData::Guid(_) => "uniqueidentifier",
        ColumnData::Binary(_) => "binary",
        ColumnData::Numeric(_) => "decimal",
        ColumnData::Xml(_) => "xml",
        ColumnData::DateTime(_) => "datetime",
        ColumnData::SmallDateTime(_) => "smalldatetime",
        ColumnData::Time(_) => "time",
        ColumnData::Date(_) => "date",
        ColumnData::DateTime2(_) => "datetime2",
        ColumnData::DateTimeOffset(_) => "datetimeoffset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset, NaiveDate};
    use tiberius::time::{Date, DateTime2, DateTimeOffset, Time};

    /// The arithmetic agrees with the driver's own chrono conversion, on
    /// the calendar's edges and at every scale.
    #[test]
    fn dates_and_times_match_the_drivers_calendar() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let days = [
            0u32,
            1,
            59,
            365,
            719_161,
            719_162,
            719_163,
            738_000,
            TDS_LAST_DAY,
        ];
        for d in days {
            let cell = ColumnData::Date(Some(Date::new(d)));
            let want = (NaiveDate::from_sql(&cell).unwrap().unwrap() - epoch).num_days();
            assert_eq!(epoch_days("c", Date::new(d)).unwrap(), want, "day {d}");
            for scale in 0..=7u8 {
                let top = 86_400 * 10u64.pow(u32::from(scale)) - 1;
                for inc in [0, 1, 7, top / 3, top] {
                    let dt2 = DateTime2::new(Date::new(d), Time::new(inc, scale));
                    let cell = ColumnData::DateTime2(Some(dt2));
                    let want = micros(NaiveDateTime::from_sql(&cell).unwrap().unwrap());
                    assert_eq!(epoch_micros("c", dt2).unwrap(), want, "{d} {inc} {scale}");
                    let cell = ColumnData::DateTimeOffset(Some(DateTimeOffset::new(dt2, -300)));
                    let want = DateTime::<FixedOffset>::from_sql(&cell).unwrap().unwrap();
                    assert_eq!(epoch_micros("c", dt2).unwrap(), want.timestamp_micros());
                }
            }
        }
    }

    #[test]
    fn malformed_dates_and_times_are_refused_naming_the_column() {
        let e = epoch_days("fecha", Date::new(TDS_LAST_DAY + 1)).unwrap_err();
        assert!(e.to_string().contains("fecha"), "{e}");
        let late = DateTime2::new(Date::new(1), Time::new(86_400 * 1000, 3));
        assert!(epoch_micros("ts", late)
            .unwrap_err()
            .to_string()
            .contains("ts"));
        let bad_scale = DateTime2::new(Date::new(1), Time::new(1, 12));
        assert!(epoch_micros("ts", bad_scale).is_err());
    }
}
