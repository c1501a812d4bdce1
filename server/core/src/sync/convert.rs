//! Each Arrow value of a Databricks column turned into the tiberius value of
//! the SQL Server target's exact type for bulk load, as the column's
//! [`Conv`] (from `types::SPARK_TO_SQLSERVER`) says. Nothing is rounded or
//! truncated silently: a value that does not fit is an error naming why.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType,
};
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
use tiberius::ColumnData;

use crate::types::to_sqlserver::Conv;

/// Days from 0001-01-01 to 1970-01-01, and from 1900-01-01.
const DAYS_TO_1970: i64 = 719_162;
const DAYS_1900_TO_1970: i64 = 25_567;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn int_value(a: &dyn Array, row: usize) -> Option<i128> {
    Some(match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(row) as i128,
        DataType::Int16 => a.as_primitive::<Int16Type>().value(row) as i128,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(row) as i128,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(row) as i128,
        _ => return None,
    })
}

/// An exact decimal: unscaled value and scale.
fn exact_value(a: &dyn Array, row: usize) -> Option<(i128, u8)> {
    if let Some(v) = int_value(a, row) {
        return Some((v, 0));
    }
    match a.data_type() {
        DataType::Decimal128(_, s) => Some((
            a.as_primitive::<Decimal128Type>().value(row),
            (*s).max(0) as u8,
        )),
        _ => None,
    }
}

fn float_value(a: &dyn Array, row: usize) -> Option<f64> {
    match a.data_type() {
        DataType::Float32 => Some(a.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => Some(a.as_primitive::<Float64Type>().value(row)),
        _ => exact_value(a, row).map(|(v, s)| v as f64 / 10f64.powi(s as i32)),
    }
}

/// Microseconds since 1970-01-01 of a date or timestamp value.
fn micros_value(a: &dyn Array, row: usize) -> Option<i64> {
    match a.data_type() {
        DataType::Date32 => Some(a.as_primitive::<Date32Type>().value(row) as i64 * MICROS_PER_DAY),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Some(a.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        _ => None,
    }
}

/// The text at `row` of a string array of any offset width or layout
/// (Spark hands `large_string` when `spark.sql.execution.arrow.useLargeVarTypes`
/// is on, and string views from newer producers).
fn text_value(a: &dyn Array, row: usize) -> Option<&str> {
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(a.as_string_view().value(row)),
        _ => None,
    }
}

/// The bytes at `row` of a binary array of any offset width or layout.
fn bytes_value(a: &dyn Array, row: usize) -> Option<&[u8]> {
    match a.data_type() {
        DataType::Binary => Some(a.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value(row)),
        DataType::BinaryView => Some(a.as_binary_view().value(row)),
        _ => None,
    }
}

fn ten(p: u32) -> i128 {
    10i128.pow(p)
}

/// Rescales exactly, or says why not.
fn rescale(v: i128, from: u8, to: u8, precision: u8) -> Result<i128, String> {
    let out = if to >= from {
        v.checked_mul(ten((to - from) as u32))
            .ok_or("too many digits")?
    } else {
        let f = ten((from - to) as u32);
        if v % f != 0 {
            return Err(format!("has more than {to} decimal places"));
        }
        v / f
    };
    if out.unsigned_abs() >= ten(precision as u32) as u128 {
        return Err(format!("does not fit {precision} digits"));
    }
    Ok(out)
}

/// The value at `row` of `array`, as the target column's type.
pub fn value(conv: &Conv, array: &dyn Array, row: usize) -> Result<ColumnData<'static>, String> {
    let null = array.is_null(row);
    let unexpected = || format!("unexpected Arrow type {}", array.data_type());
    let range = |v: i128, lo: i128, hi: i128, t: &str| {
        if v < lo || v > hi {
            Err(format!("{v} is out of range for {t}"))
        } else {
            Ok(v)
        }
    };
    Ok(match conv {
        Conv::Bit => ColumnData::Bit(if null {
            None
        } else {
            Some(array.as_boolean_opt().ok_or_else(unexpected)?.value(row))
        }),
        Conv::TinyInt | Conv::SmallInt | Conv::Int | Conv::BigInt => {
            let v = if null {
                None
            } else {
                Some(int_value(array, row).ok_or_else(unexpected)?)
            };
            match conv {
                Conv::TinyInt => ColumnData::U8(
                    v.map(|v| range(v, 0, 255, "tinyint"))
                        .transpose()?
                        .map(|v| v as u8),
                ),
                Conv::SmallInt => ColumnData::I16(
                    v.map(|v| range(v, i16::MIN as i128, i16::MAX as i128, "smallint"))
                        .transpose()?
                        .map(|v| v as i16),
                ),
                Conv::Int => ColumnData::I32(
                    v.map(|v| range(v, i32::MIN as i128, i32::MAX as i128, "int"))
                        .transpose()?
                        .map(|v| v as i32),
                ),
                _ => ColumnData::I64(v.map(|v| v as i64)),
            }
        }
        Conv::Real => ColumnData::F32(if null {
            None
        } else {
            Some(float_value(array, row).ok_or_else(unexpected)? as f32)
        }),
        Conv::Float => ColumnData::F64(if null {
            None
        } else {
            Some(float_value(array, row).ok_or_else(unexpected)?)
        }),
        Conv::Numeric { precision, scale } => ColumnData::Numeric(if null {
            None
        } else {
            let (v, s) = exact_value(array, row).ok_or_else(unexpected)?;
            let v = rescale(v, s, *scale, *precision)
                .map_err(|why| format!("{} {why}", Numeric::new_with_scale(v, s)))?;
            Some(Numeric::new_with_scale(v, *scale))
        }),
        Conv::String { max_chars } => ColumnData::String(if null {
            None
        } else {
            let s = text_value(array, row).ok_or_else(unexpected)?;
            if let Some(max) = max_chars {
                let n = s.chars().count();
                if n > *max {
                    return Err(format!(
                        "a value of {n} characters is longer than the column's {max}"
                    ));
                }
            }
            Some(Cow::Owned(s.to_string()))
        }),
        Conv::Binary { max_bytes } => ColumnData::Binary(if null {
            None
        } else {
            let b = bytes_value(array, row).ok_or_else(unexpected)?;
            if let Some(max) = max_bytes {
                if b.len() > *max {
                    return Err(format!(
                        "a value of {} bytes is longer than the column's {max}",
                        b.len()
                    ));
                }
            }
            Some(Cow::Owned(b.to_vec()))
        }),
        Conv::Guid => ColumnData::Guid(if null {
            None
        } else {
            let s = text_value(array, row).ok_or_else(unexpected)?;
            Some(
                uuid::Uuid::parse_str(s.trim())
                    .map_err(|_| format!("'{s}' is not a uniqueidentifier"))?,
            )
        }),
        Conv::Time { digits } => ColumnData::Time(if null {
            None
        } else {
            let s = text_value(array, row).ok_or_else(unexpected)?;
            Some(
                parse_time(s, *digits)
                    .ok_or_else(|| format!("'{s}' is not a time of day (HH:MM:SS[.fffffff])"))?,
            )
        }),
        Conv::Date => ColumnData::Date(if null {
            None
        } else {
            let days = array
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(unexpected)?
                .value(row) as i64
                + DAYS_TO_1970;
            Some(Date::new(
                u32::try_from(days).map_err(|_| "date before 0001-01-01".to_string())?,
            ))
        }),
        Conv::DateTime2 { digits } | Conv::DateTimeOffset { digits } => {
            let v = if null {
                None
            } else {
                let us = micros_value(array, row).ok_or_else(unexpected)?;
                let days = us.div_euclid(MICROS_PER_DAY) + DAYS_TO_1970;
                let in_day = us.rem_euclid(MICROS_PER_DAY) as u64;
                let unit = 10u64.pow(6u32.saturating_sub(*digits as u32));
                if *digits < 6 && !in_day.is_multiple_of(unit) {
                    return Err(format!(
                        "a timestamp with more than {digits} fraction digits (the column's precision)"
                    ));
                }
                // Increments of 10^-digits s.
                let increments = if *digits >= 6 {
                    in_day * 10u64.pow(*digits as u32 - 6)
                } else {
                    in_day / unit
                };
                let date = Date::new(
                    u32::try_from(days).map_err(|_| "timestamp before 0001-01-01".to_string())?,
                );
                Some(DateTime2::new(date, Time::new(increments, *digits)))
            };
            match conv {
                Conv::DateTimeOffset { .. } => {
                    ColumnData::DateTimeOffset(v.map(|dt| DateTimeOffset::new(dt, 0)))
                }
                _ => ColumnData::DateTime2(v),
            }
        }
        Conv::DateTime => ColumnData::DateTime(if null {
            None
        } else {
            let us = micros_value(array, row).ok_or_else(unexpected)?;
            let days = us.div_euclid(MICROS_PER_DAY) + DAYS_1900_TO_1970;
            let in_day = us.rem_euclid(MICROS_PER_DAY);
            // 1/300 s ticks, rounded as SQL Server rounds datetime.
            let mut ticks = (in_day * 300 + 500_000) / 1_000_000;
            let mut days = days;
            if ticks >= 300 * 86_400 {
                ticks -= 300 * 86_400;
                days += 1;
            }
            if !(-53_690..=2_958_463).contains(&days) {
                return Err("a timestamp outside datetime's 1753..9999 range".to_string());
            }
            Some(DateTime::new(days as i32, ticks as u32))
        }),
        Conv::SmallDateTime => ColumnData::SmallDateTime(if null {
            None
        } else {
            let us = micros_value(array, row).ok_or_else(unexpected)?;
            let mut days = us.div_euclid(MICROS_PER_DAY) + DAYS_1900_TO_1970;
            let mut minutes = (us.rem_euclid(MICROS_PER_DAY) + 30_000_000) / 60_000_000;
            if minutes >= 1440 {
                minutes -= 1440;
                days += 1;
            }
            if !(0..=65_535).contains(&days) {
                return Err("a timestamp outside smalldatetime's 1900..2079 range".to_string());
            }
            Some(SmallDateTime::new(days as u16, minutes as u16))
        }),
    })
}

/// `HH:MM:SS[.f...]` at `digits` fraction digits (more digits must be zeros).
fn parse_time(s: &str, digits: u8) -> Option<Time> {
    let s = s.trim();
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let mut it = hms.split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let m: u64 = it.next()?.parse().ok()?;
    let sec: u64 = it.next()?.parse().ok()?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 59 || frac.len() > 9 {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let d = digits as usize;
    let (kept, dropped) = if frac.len() > d {
        frac.split_at(d)
    } else {
        (frac, "")
    };
    if dropped.chars().any(|c| c != '0') {
        return None;
    }
    let mut f: u64 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    f *= 10u64.pow((d - kept.len()) as u32);
    Some(Time::new(
        (h * 3600 + m * 60 + sec) * 10u64.pow(digits as u32) + f,
        digits,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray};

    #[test]
    fn values_convert_exactly_or_fail() {
        let d = Decimal128Array::from(vec![Some(12_345i128), None])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let v = value(
            &Conv::Numeric {
                precision: 19,
                scale: 4,
            },
            &d,
            0,
        )
        .unwrap();
        assert_eq!(
            v,
            ColumnData::Numeric(Some(Numeric::new_with_scale(1_234_500, 4)))
        );
        assert_eq!(
            value(
                &Conv::Numeric {
                    precision: 19,
                    scale: 4
                },
                &d,
                1
            )
            .unwrap(),
            ColumnData::Numeric(None)
        );
        let e = value(
            &Conv::Numeric {
                precision: 5,
                scale: 1,
            },
            &d,
            0,
        )
        .unwrap_err();
        assert!(e.contains("decimal places"), "{e}");
        let i = Int64Array::from(vec![300]);
        assert!(value(&Conv::TinyInt, &i, 0)
            .unwrap_err()
            .contains("out of range"));
        let s = StringArray::from(vec![
            "ñandú",
            "23:59:59.1234567",
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        ]);
        assert!(value(&Conv::String { max_chars: Some(4) }, &s, 0).is_err());
        assert!(value(&Conv::String { max_chars: Some(5) }, &s, 0).is_ok());
        assert_eq!(
            value(&Conv::Time { digits: 7 }, &s, 1).unwrap(),
            ColumnData::Time(Some(Time::new(863_991_234_567, 7)))
        );
        assert!(value(&Conv::Time { digits: 3 }, &s, 1).is_err());
        assert!(matches!(
            value(&Conv::Guid, &s, 2).unwrap(),
            ColumnData::Guid(Some(_))
        ));
        // 1753-01-01 00:00:00.003 in µs since 1970.
        let ts = TimestampMicrosecondArray::from(vec![-6_847_804_800_000_000 + 3_000]);
        assert_eq!(
            value(&Conv::DateTime, &ts, 0).unwrap(),
            ColumnData::DateTime(Some(DateTime::new(-53_690, 1)))
        );
        let dt2 = value(&Conv::DateTime2 { digits: 7 }, &ts, 0).unwrap();
        assert_eq!(
            dt2,
            ColumnData::DateTime2(Some(DateTime2::new(
                Date::new(639_905),
                Time::new(30_000, 7)
            )))
        );
    }

    #[test]
    fn text_and_bytes_of_every_arrow_layout() {
        use arrow_array::{BinaryViewArray, LargeBinaryArray, LargeStringArray, StringViewArray};
        let conv = Conv::String { max_chars: Some(4) };
        let want = ColumnData::String(Some(Cow::Owned("Ñandú".chars().take(4).collect())));
        for a in [
            &LargeStringArray::from(vec!["Ñand"]) as &dyn Array,
            &StringViewArray::from(vec!["Ñand"]),
            &StringArray::from(vec!["Ñand"]),
        ] {
            assert_eq!(value(&conv, a, 0).unwrap(), want);
        }
        let e = value(&conv, &LargeStringArray::from(vec!["Ñandú"]), 0).unwrap_err();
        assert!(e.contains("longer than the column's 4"), "{e}");
        let bin = Conv::Binary { max_bytes: None };
        let bytes: &[u8] = &[0, 255];
        for a in [
            &LargeBinaryArray::from(vec![bytes]) as &dyn Array,
            &BinaryViewArray::from(vec![bytes]),
        ] {
            assert_eq!(
                value(&bin, a, 0).unwrap(),
                ColumnData::Binary(Some(Cow::Owned(vec![0, 255])))
            );
        }
    }
}
