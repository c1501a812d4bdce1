//! T-SQL conversions between values and types, and the text encoding the
//! engine stores each type in.
//!
//! Storage encodings keep SQLite's own comparisons and ordering right for the
//! common cases: date/time types are fixed-width ISO text (so `fecha >=
//! '2024-01-01'` compares as SQL Server would), exact numerics with at most 15
//! significant digits are REAL (every such decimal round-trips exactly through
//! an f64 at its scale), wider ones are canonical text (lossless).

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike,
};
use rusqlite::types::{Value as Sv, ValueRef};
use uuid::Uuid;

use super::error::SqlError;
use crate::types::{Decimal, Len, SqlType, Value};

/// Largest decimal digit count stored as REAL; see the module docs.
const REAL_DIGITS: u32 = 15;

/// What happens to a string longer than its target type: CAST truncates
/// silently, INSERT/UPDATE raise 2628.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlong<'a> {
    Truncate,
    Error { table: &'a str, column: &'a str },
}

/// Encodes a value of type `ty` for storage in SQLite.
pub fn to_storage(v: &Value) -> Sv {
    match v {
        Value::Null => Sv::Null,
        Value::Bit(b) => Sv::Integer(i64::from(*b)),
        Value::Int(i) => Sv::Integer(*i),
        Value::Float(f) => Sv::Real(*f),
        Value::Decimal(d) => {
            if d.digits() <= REAL_DIGITS {
                Sv::Real(d.to_f64())
            } else {
                Sv::Text(d.to_string())
            }
        }
        Value::String(s) => Sv::Text(s.clone()),
        Value::Binary(b) => Sv::Blob(b.clone()),
        Value::Date(d) => Sv::Text(fmt_date(d)),
        Value::Time(t) => Sv::Text(fmt_time(t)),
        Value::DateTime(dt) => Sv::Text(fmt_datetime(dt)),
        Value::DateTimeOffset(dt) => Sv::Text(fmt_dto(dt)),
        Value::Guid(g) => Sv::Text(g.to_string().to_ascii_uppercase()),
    }
}

/// Appends `v` as exactly `width` digits, zero-padded (`v < 10^width`).
fn push_padded(out: &mut String, mut v: u32, width: usize) {
    let mut digits = [b'0'; 10];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend(digits[..width].iter().map(|&b| char::from(b)));
}

fn push_date(out: &mut String, d: &NaiveDate) {
    match u32::try_from(d.year()) {
        Ok(y) if y <= 9999 => push_padded(out, y, 4),
        _ => out.push_str(&format!("{:04}", d.year())),
    }
    out.push('-');
    push_padded(out, d.month(), 2);
    out.push('-');
    push_padded(out, d.day(), 2);
}

fn push_time(out: &mut String, t: &NaiveTime) {
    push_padded(out, t.hour(), 2);
    out.push(':');
    push_padded(out, t.minute(), 2);
    out.push(':');
    push_padded(out, t.second(), 2);
    out.push('.');
    match t.nanosecond() / 100 {
        // 100 ns ticks; a leap second's are 10^7 or more.
        ticks if ticks < 10_000_000 => push_padded(out, ticks, 7),
        ticks => out.push_str(&ticks.to_string()),
    }
}

// Written digit by digit: every datetime stored or read is formatted, and
// `format!` was a fifth of the sandbox's time on bulk loads.
pub fn fmt_date(d: &NaiveDate) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, d);
    s
}

pub fn fmt_time(t: &NaiveTime) -> String {
    let mut s = String::with_capacity(16);
    push_time(&mut s, t);
    s
}

pub fn fmt_datetime(dt: &NaiveDateTime) -> String {
    let mut s = String::with_capacity(27);
    push_date(&mut s, &dt.date());
    s.push(' ');
    push_time(&mut s, &dt.time());
    s
}

pub fn fmt_dto(dt: &DateTime<FixedOffset>) -> String {
    let off = dt.offset().local_minus_utc() / 60;
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{} {}{:02}:{:02}",
        fmt_datetime(&dt.naive_local()),
        sign,
        off / 60,
        off % 60
    )
}

fn sqlite_type_name(v: &ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Integer(_) => "int",
        ValueRef::Real(_) => "float",
        ValueRef::Text(_) => "varchar",
        ValueRef::Blob(_) => "varbinary",
        ValueRef::Null => "null",
    }
}

fn text_of<'a>(v: &'a ValueRef<'_>) -> Option<&'a str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

/// Reads a stored value of a column declared `ty`. Fast paths for the
/// canonical storage encodings; anything else goes through [`convert`].
pub fn from_storage(v: ValueRef<'_>, ty: &SqlType) -> Result<Value, SqlError> {
    match (ty, &v) {
        (_, ValueRef::Null) => Ok(Value::Null),
        (
            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt,
            ValueRef::Integer(i),
        ) => Ok(Value::Int(*i)),
        (SqlType::Float | SqlType::Real, ValueRef::Real(f)) => Ok(Value::Float(*f)),
        (
            SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_),
            ValueRef::Text(t),
        ) => Ok(Value::String(String::from_utf8_lossy(t).into_owned())),
        (SqlType::Binary(_) | SqlType::VarBinary(_), ValueRef::Blob(b)) => {
            Ok(Value::Binary(b.to_vec()))
        }
        (SqlType::DateTime2(_) | SqlType::DateTime | SqlType::SmallDateTime, ValueRef::Text(t)) => {
            match fast_datetime(t) {
                Some(dt) => Ok(Value::DateTime(dt)),
                None => convert(v, ty, Overlong::Truncate),
            }
        }
        (SqlType::Date, ValueRef::Text(t)) => match fast_date(t) {
            Some(d) => Ok(Value::Date(d)),
            None => convert(v, ty, Overlong::Truncate),
        },
        (SqlType::DateTimeOffset(_), ValueRef::Text(t)) => match fast_dto(t) {
            Some(d) => Ok(Value::DateTimeOffset(d)),
            None => convert(v, ty, Overlong::Truncate),
        },
        (SqlType::Decimal { scale, .. }, ValueRef::Real(f)) => match fast_decimal(*f, *scale) {
            Some(d) => Ok(Value::Decimal(d)),
            None => convert(v, ty, Overlong::Truncate),
        },
        (SqlType::Money | SqlType::SmallMoney, ValueRef::Real(f)) => match fast_decimal(*f, 4) {
            Some(d) => Ok(Value::Decimal(d)),
            None => convert(v, ty, Overlong::Truncate),
        },
        (SqlType::Bit, ValueRef::Integer(i)) => Ok(Value::Bit(*i != 0)),
        _ => convert(v, ty, Overlong::Truncate),
    }
}

/// A REAL-stored decimal at its scale without going through text: exact
/// while the scaled value stays below 2^53, which every value with at most
/// 15 significant digits (the only ones stored as REAL) does.
fn fast_decimal(f: f64, scale: u8) -> Option<Decimal> {
    let scaled = f * 10f64.powi(i32::from(scale));
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        return None;
    }
    Some(Decimal::new(scaled.round() as i128, scale))
}

/// Parses exactly `YYYY-MM-DD HH:MM:SS.fffffff +HH:MM`.
fn fast_dto(t: &[u8]) -> Option<DateTime<FixedOffset>> {
    if t.len() != 34 || t[27] != b' ' || t[31] != b':' {
        return None;
    }
    let local = fast_datetime(&t[..27])?;
    let minutes = (digits2(&t[29..31])? * 60 + digits2(&t[32..34])?) as i32;
    let secs = match t[28] {
        b'+' => minutes * 60,
        b'-' => -minutes * 60,
        _ => return None,
    };
    local
        .and_local_timezone(FixedOffset::east_opt(secs)?)
        .single()
}

fn digits2(b: &[u8]) -> Option<u32> {
    let (a, c) = (b.first()?, b.get(1)?);
    if a.is_ascii_digit() && c.is_ascii_digit() {
        Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
    } else {
        None
    }
}

fn fast_date(t: &[u8]) -> Option<NaiveDate> {
    if t.len() < 10 || t[4] != b'-' || t[7] != b'-' {
        return None;
    }
    let y = digits2(&t[0..2])? * 100 + digits2(&t[2..4])?;
    NaiveDate::from_ymd_opt(y as i32, digits2(&t[5..7])?, digits2(&t[8..10])?)
}

/// Parses exactly `YYYY-MM-DD HH:MM:SS.fffffff`.
fn fast_datetime(t: &[u8]) -> Option<NaiveDateTime> {
    if t.len() != 27 || t[10] != b' ' || t[19] != b'.' {
        return None;
    }
    let d = fast_date(&t[..10])?;
    let mut frac = 0u32;
    for b in &t[20..27] {
        if !b.is_ascii_digit() {
            return None;
        }
        frac = frac * 10 + u32::from(b - b'0');
    }
    let tm = NaiveTime::from_hms_nano_opt(
        digits2(&t[11..13])?,
        digits2(&t[14..16])?,
        digits2(&t[17..19])?,
        frac * 100,
    )?;
    Some(d.and_time(tm))
}

/// Binary as an integer type: its rightmost bytes, as many as the type
/// holds, most significant first; a shorter value is padded with zeros on
/// the left (https://learn.microsoft.com/en-us/sql/t-sql/data-types/binary-and-varbinary-transact-sql:
/// 0xE241 as int is 57921). Never out of range: it has the type's width.
fn binary_to_int(b: &[u8], ty: &SqlType) -> i64 {
    let width = match ty {
        SqlType::TinyInt => 1,
        SqlType::SmallInt => 2,
        SqlType::Int => 4,
        _ => 8,
    };
    let mut bytes = [0u8; 8];
    let take = b.len().min(width);
    bytes[8 - take..].copy_from_slice(&b[b.len() - take..]);
    let n = u64::from_be_bytes(bytes);
    match width {
        1 => n as i64,
        2 => i64::from(n as u16 as i16),
        4 => i64::from(n as u32 as i32),
        _ => n as i64,
    }
}

fn int_range(ty: &SqlType) -> (i64, i64) {
    match ty {
        SqlType::TinyInt => (0, 255),
        SqlType::SmallInt => (-32768, 32767),
        SqlType::Int => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Converts a SQLite value to `ty` the way T-SQL's implicit conversion and
/// CAST do, raising SQL Server's errors for values that do not convert.
pub fn convert(v: ValueRef<'_>, ty: &SqlType, overlong: Overlong<'_>) -> Result<Value, SqlError> {
    if let ValueRef::Null = v {
        return Ok(Value::Null);
    }
    let bad = || {
        let shown = match &v {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Real(f) => f.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Blob(_) => "0x..".into(),
            ValueRef::Null => String::new(),
        };
        SqlError::conversion(sqlite_type_name(&v), &shown, ty.base_name())
    };
    match ty {
        SqlType::Bit => match v {
            ValueRef::Integer(i) => Ok(Value::Bit(i != 0)),
            ValueRef::Real(f) => Ok(Value::Bit(f != 0.0)),
            ValueRef::Text(_) => {
                let s = text_of(&v).ok_or_else(bad)?.trim();
                if s.eq_ignore_ascii_case("true") {
                    Ok(Value::Bit(true))
                } else if s.eq_ignore_ascii_case("false") {
                    Ok(Value::Bit(false))
                } else {
                    s.parse::<i64>()
                        .map(|i| Value::Bit(i != 0))
                        .map_err(|_| bad())
                }
            }
            ValueRef::Blob(_) | ValueRef::Null => Err(bad()),
        },
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            let i = match v {
                ValueRef::Integer(i) => i,
                ValueRef::Real(f) => {
                    let t = f.trunc();
                    if !(-9.2e18..9.2e18).contains(&t) {
                        return Err(SqlError::overflow(ty.base_name()));
                    }
                    t as i64
                }
                ValueRef::Text(_) => {
                    let s = text_of(&v).ok_or_else(bad)?.trim();
                    s.parse::<i64>().map_err(|_| bad())?
                }
                ValueRef::Blob(b) => return Ok(Value::Int(binary_to_int(b, ty))),
                ValueRef::Null => return Err(bad()),
            };
            let (lo, hi) = int_range(ty);
            if i < lo || i > hi {
                return Err(SqlError::overflow(ty.base_name()));
            }
            Ok(Value::Int(i))
        }
        SqlType::Decimal {
            precision, scale, ..
        } => to_decimal(v, *precision, *scale).map(Value::Decimal),
        SqlType::Money => {
            let d = to_decimal(v, 19, 4)?;
            check_money(&d, "money", 9_223_372_036_854_775_807)?;
            Ok(Value::Decimal(d))
        }
        SqlType::SmallMoney => {
            let d = to_decimal(v, 10, 4)?;
            check_money(&d, "smallmoney", 2_147_483_647)?;
            Ok(Value::Decimal(d))
        }
        SqlType::Float | SqlType::Real => {
            let f = match v {
                ValueRef::Integer(i) => i as f64,
                ValueRef::Real(f) => f,
                ValueRef::Text(_) => {
                    let s = text_of(&v).ok_or_else(bad)?.trim();
                    s.parse::<f64>().map_err(|_| {
                        SqlError::new(8114, 5, 16, "Error converting data type varchar to float.")
                    })?
                }
                ValueRef::Blob(_) | ValueRef::Null => return Err(bad()),
            };
            if matches!(ty, SqlType::Real) {
                Ok(Value::Float(f64::from(f as f32)))
            } else {
                Ok(Value::Float(f))
            }
        }
        SqlType::Xml => match v {
            // Untyped xml keeps the document's text; binary input is read as UTF-8.
            ValueRef::Text(t) => Ok(Value::String(String::from_utf8_lossy(t).into_owned())),
            ValueRef::Blob(b) => Ok(Value::String(String::from_utf8_lossy(b).into_owned())),
            _ => Err(bad()),
        },
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_) => {
            let s = match v {
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => format_float(f),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(b) => b.iter().map(|&c| c as char).collect(),
                ValueRef::Null => unreachable_null(),
            };
            fit_string(s, ty, overlong).map(Value::String)
        }
        SqlType::Binary(_) | SqlType::VarBinary(_) => {
            let b = match v {
                ValueRef::Blob(b) => b.to_vec(),
                ValueRef::Text(t) => t.to_vec(),
                ValueRef::Integer(i) => {
                    // Without its type (CAST gives it: styles::convert_from),
                    // an integer is an int when it fits, else a bigint.
                    let bytes = i.to_be_bytes();
                    let width = if i32::try_from(i).is_ok() { 4 } else { 8 };
                    return int_bytes_to_binary(&bytes[8 - width..], ty).map(Value::Binary);
                }
                ValueRef::Real(_) | ValueRef::Null => return Err(bad()),
            };
            fit_binary(b, ty, overlong).map(Value::Binary)
        }
        SqlType::Date => match temporal(&v)? {
            Temporal::Date(d) => Ok(Value::Date(d)),
            Temporal::DateTime(dt) => Ok(Value::Date(dt.date())),
            Temporal::Offset(dt) => Ok(Value::Date(dt.naive_local().date())),
            Temporal::Time(_) => Err(SqlError::new(
                206,
                2,
                16,
                "Operand type clash: time is incompatible with date",
            )),
        },
        SqlType::Time(s) => {
            let t = match temporal(&v)? {
                Temporal::Time(t) => t,
                Temporal::DateTime(dt) => dt.time(),
                Temporal::Offset(dt) => dt.naive_local().time(),
                Temporal::Date(_) => {
                    return Err(SqlError::new(
                        206,
                        2,
                        16,
                        "Operand type clash: date is incompatible with time",
                    ))
                }
            };
            Ok(Value::Time(round_time(t, *s)))
        }
        SqlType::DateTime | SqlType::SmallDateTime | SqlType::DateTime2(_) => {
            let dt = match temporal(&v)? {
                Temporal::DateTime(dt) => dt,
                Temporal::Date(d) => d.and_time(NaiveTime::MIN),
                Temporal::Time(t) => NaiveDate::from_ymd_opt(1900, 1, 1)
                    .unwrap_or(NaiveDate::MIN)
                    .and_time(t),
                Temporal::Offset(dt) => dt.naive_local(),
            };
            round_datetime(dt, ty).map(Value::DateTime)
        }
        SqlType::DateTimeOffset(s) => {
            let dt = match temporal(&v)? {
                Temporal::Offset(dt) => dt,
                Temporal::DateTime(dt) => utc_offset(dt),
                Temporal::Date(d) => utc_offset(d.and_time(NaiveTime::MIN)),
                Temporal::Time(t) => utc_offset(
                    NaiveDate::from_ymd_opt(1900, 1, 1)
                        .unwrap_or(NaiveDate::MIN)
                        .and_time(t),
                ),
            };
            let local = round_datetime(dt.naive_local(), &SqlType::DateTime2(*s))?;
            local
                .and_local_timezone(*dt.offset())
                .single()
                .map(Value::DateTimeOffset)
                .ok_or_else(SqlError::datetime_conversion)
        }
        SqlType::UniqueIdentifier => match v {
            ValueRef::Text(_) => {
                let s = text_of(&v).unwrap_or("").trim();
                let s = s.trim_start_matches('{').trim_end_matches('}');
                Uuid::parse_str(s).map(Value::Guid).map_err(|_| {
                    SqlError::new(
                        8169,
                        2,
                        16,
                        "Conversion failed when converting from a character string to uniqueidentifier.",
                    )
                })
            }
            ValueRef::Blob(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ok(Value::Guid(Uuid::from_bytes_le(a)))
            }
            _ => Err(SqlError::new(
                529,
                2,
                16,
                format!(
                    "Explicit conversion from data type {} to uniqueidentifier is not allowed.",
                    sqlite_type_name(&v)
                ),
            )),
        },
    }
}

fn unreachable_null() -> String {
    String::new()
}

fn check_money(d: &Decimal, name: &str, max_units: i128) -> Result<(), SqlError> {
    let m = d.rescale(4).map(|x| x.mantissa).unwrap_or(i128::MAX);
    if m > max_units || m < -max_units - 1 {
        return Err(SqlError::new(
            8115,
            4,
            16,
            format!("Arithmetic overflow error converting expression to data type {name}."),
        ));
    }
    Ok(())
}

/// SQL Server prints floats with up to 17 significant digits in CONVERT style
/// 3; the shortest round-trip form is what clients compare against.
pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn to_decimal(v: ValueRef<'_>, precision: u8, scale: u8) -> Result<Decimal, SqlError> {
    let overflow = || {
        SqlError::new(
            8115,
            2,
            16,
            format!(
                "Arithmetic overflow error converting {} to data type numeric.",
                match v {
                    ValueRef::Integer(_) => "int",
                    ValueRef::Real(_) => "float",
                    ValueRef::Text(_) => "varchar",
                    _ => "expression",
                }
            ),
        )
    };
    let d = match v {
        ValueRef::Integer(i) => Decimal::new(i128::from(i), 0),
        ValueRef::Real(f) => {
            if !f.is_finite() {
                return Err(overflow());
            }
            match Decimal::from_f64_exact_round(f, scale) {
                Some(d) => d,
                None => format!("{:.*}", usize::from(scale), f)
                    .parse::<Decimal>()
                    .map_err(|_| overflow())?,
            }
        }
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).unwrap_or("").trim();
            match s.parse::<Decimal>() {
                Ok(d) => d,
                Err(()) => {
                    // Exponent forms and the like: T-SQL refuses them for numeric.
                    return Err(SqlError::new(
                        8114,
                        5,
                        16,
                        "Error converting data type varchar to numeric.",
                    ));
                }
            }
        }
        ValueRef::Blob(_) | ValueRef::Null => {
            return Err(SqlError::new(
                8114,
                5,
                16,
                "Error converting data type varbinary to numeric.",
            ))
        }
    };
    let d = d.round_to(scale).ok_or_else(overflow)?;
    if d.digits() > u32::from(precision) && d.mantissa != 0 {
        return Err(overflow());
    }
    Ok(d)
}

fn fit_string(mut s: String, ty: &SqlType, overlong: Overlong<'_>) -> Result<String, SqlError> {
    let (max, pad) = match ty {
        SqlType::Char(n) | SqlType::NChar(n) => (Some(usize::from(*n)), true),
        SqlType::VarChar(Len::N(n)) | SqlType::NVarChar(Len::N(n)) => {
            (Some(usize::from(*n)), false)
        }
        _ => (None, false),
    };
    let Some(max) = max else { return Ok(s) };
    // SQL Server counts nvarchar lengths in UTF-16 code units and varchar in bytes
    // of the code page; characters outside it count once.
    let len = if ty.is_unicode() {
        s.encode_utf16().count()
    } else {
        s.chars().count()
    };
    if len > max {
        // Trailing blanks are dropped silently, as SQL Server does.
        let trimmed = s.trim_end_matches(' ');
        let tlen = if ty.is_unicode() {
            trimmed.encode_utf16().count()
        } else {
            trimmed.chars().count()
        };
        if tlen <= max {
            s.truncate(trimmed.len());
        } else {
            match overlong {
                Overlong::Truncate => {
                    s = truncate_units(&s, max, ty.is_unicode());
                }
                Overlong::Error { table, column } => {
                    let shown = truncate_units(&s, max, ty.is_unicode());
                    return Err(SqlError::truncated(table, column, &shown));
                }
            }
        }
    }
    if pad {
        let len = if ty.is_unicode() {
            s.encode_utf16().count()
        } else {
            s.chars().count()
        };
        for _ in len..max {
            s.push(' ');
        }
    }
    Ok(s)
}

fn truncate_units(s: &str, max: usize, utf16: bool) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let w = if utf16 { c.len_utf16() } else { 1 };
        if n + w > max {
            break;
        }
        n += w;
        out.push(c);
    }
    out
}

/// An integer's bytes as binary(n) or varbinary(n): "when other data types
/// are converted to binary or varbinary, the data is padded or truncated on
/// the left. Padding is achieved by using hexadecimal zeros"
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/binary-and-varbinary-transact-sql).
pub(crate) fn int_bytes_to_binary(bytes: &[u8], ty: &SqlType) -> Result<Vec<u8>, SqlError> {
    let (room, pad) = match ty {
        SqlType::Binary(n) => (usize::from(*n), true),
        SqlType::VarBinary(Len::N(n)) => (usize::from(*n), false),
        _ => (bytes.len(), false),
    };
    let kept = &bytes[bytes.len().saturating_sub(room)..];
    let mut out = vec![0u8; if pad { room - kept.len() } else { 0 }];
    out.extend_from_slice(kept);
    Ok(out)
}

fn fit_binary(mut b: Vec<u8>, ty: &SqlType, overlong: Overlong<'_>) -> Result<Vec<u8>, SqlError> {
    let (max, pad) = match ty {
        SqlType::Binary(n) => (Some(usize::from(*n)), true),
        SqlType::VarBinary(Len::N(n)) => (Some(usize::from(*n)), false),
        _ => (None, false),
    };
    let Some(max) = max else { return Ok(b) };
    if b.len() > max {
        match overlong {
            Overlong::Truncate => b.truncate(max),
            Overlong::Error { table, column } => {
                return Err(SqlError::truncated(table, column, "0x..."));
            }
        }
    }
    if pad {
        b.resize(max, 0);
    }
    Ok(b)
}

enum Temporal {
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(NaiveDateTime),
    Offset(DateTime<FixedOffset>),
}

fn utc_offset(dt: NaiveDateTime) -> DateTime<FixedOffset> {
    DateTime::from_naive_utc_and_offset(
        dt,
        FixedOffset::east_opt(0).expect("zero is a valid offset"),
    )
}

fn temporal(v: &ValueRef<'_>) -> Result<Temporal, SqlError> {
    match v {
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).map_err(|_| SqlError::datetime_conversion())?;
            parse_temporal(s.trim()).ok_or_else(SqlError::datetime_conversion)
        }
        ValueRef::Integer(i) => {
            // T-SQL: an int converts to datetime as days after 1900-01-01.
            let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
            base.checked_add_signed(Duration::days(*i))
                .map(|d| Temporal::DateTime(d.and_time(NaiveTime::MIN)))
                .ok_or_else(|| SqlError::overflow("datetime"))
        }
        ValueRef::Real(f) => {
            let base = NaiveDate::from_ymd_opt(1900, 1, 1)
                .unwrap_or(NaiveDate::MIN)
                .and_time(NaiveTime::MIN);
            let ns = (f * 86_400e9).round();
            if !ns.is_finite() || ns.abs() > 3e20 {
                return Err(SqlError::overflow("datetime"));
            }
            let secs = (ns / 1e9).floor();
            let nanos = ns - secs * 1e9;
            base.checked_add_signed(
                Duration::seconds(secs as i64) + Duration::nanoseconds(nanos as i64),
            )
            .map(Temporal::DateTime)
            .ok_or_else(|| SqlError::overflow("datetime"))
        }
        _ => Err(SqlError::new(
            529,
            2,
            16,
            "Explicit conversion from data type varbinary to datetime is not allowed.",
        )),
    }
}

/// Parses the literal forms SQL Server accepts for the ISO-ish formats users
/// write: `YYYY-MM-DD`, `YYYYMMDD`, `YYYY-MM-DD[T| ]HH:MM[:SS[.fffffff]]`,
/// `HH:MM[:SS[.f]]`, each with an optional `Z` or `±HH:MM` offset.
fn parse_temporal(s: &str) -> Option<Temporal> {
    if s.bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'T' && b != b'Z')
    {
        return parse_named(s);
    }
    let (body, offset) = split_offset(s);
    let body = body.trim();
    let (date_part, time_part) = match body.find(['T', ' ']) {
        Some(i) => (Some(&body[..i]), Some(body[i + 1..].trim())),
        None if body.contains(':') => (None, Some(body)),
        None => (Some(body), None),
    };
    let date = match date_part {
        Some(d) => Some(parse_date(d)?),
        None => None,
    };
    let time = match time_part {
        Some(t) => Some(parse_time(t)?),
        None => None,
    };
    let result = match (date, time, offset) {
        (Some(d), None, None) => Temporal::Date(d),
        (None, Some(t), None) => Temporal::Time(t),
        (Some(d), Some(t), None) => Temporal::DateTime(d.and_time(t)),
        (d, t, Some(off)) => {
            let local = d
                .unwrap_or(NaiveDate::from_ymd_opt(1900, 1, 1)?)
                .and_time(t.unwrap_or(NaiveTime::MIN));
            Temporal::Offset(local.and_local_timezone(off).single()?)
        }
        (None, None, None) => return None,
    };
    Some(result)
}

/// Dates with month names, as SQL Server reads them under us_english
/// (`January 10, 1900 12:00 AM`, `Jan 31 2024  1:45PM`, `10 Jan 2024`).
fn parse_named(s: &str) -> Option<Temporal> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = s.to_ascii_lowercase().replace(',', " ");
    let mut month = None;
    let mut numbers: Vec<&str> = Vec::new();
    let mut time = None;
    let mut pm = None;
    for tok in lower.split_whitespace() {
        let (tok, ampm) = match tok.strip_suffix("am").or_else(|| tok.strip_suffix("pm")) {
            Some(t) if tok.contains(':') || t.is_empty() => (t, Some(tok.ends_with("pm"))),
            _ => (tok, None),
        };
        if ampm.is_some() {
            pm = ampm;
        }
        if tok.is_empty() {
            continue;
        }
        if tok.contains(':') {
            time = Some(tok.to_string());
        } else if tok.bytes().all(|b| b.is_ascii_digit()) {
            numbers.push(tok);
        } else if let Some(m) = MONTHS.iter().position(|m| tok.starts_with(m)) {
            month = Some(m as u32 + 1);
        } else {
            return None;
        }
    }
    let month = month?;
    let (day, year) = match numbers.as_slice() {
        [a, b] if b.len() == 4 || a.len() <= 2 => (a.parse().ok()?, b.parse::<i32>().ok()?),
        [a, b] => (b.parse().ok()?, a.parse::<i32>().ok()?),
        [y] if y.len() == 4 => (1, y.parse().ok()?),
        _ => return None,
    };
    let year = if year < 100 {
        if year < 50 {
            2000 + year
        } else {
            1900 + year
        }
    } else {
        year
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let Some(t) = time else {
        return Some(Temporal::Date(date));
    };
    let mut t = parse_time(&t)?;
    if let Some(pm) = pm {
        let h = t.hour() % 12 + if pm { 12 } else { 0 };
        t = t.with_hour(h)?;
    }
    Some(Temporal::DateTime(date.and_time(t)))
}

fn split_offset(s: &str) -> (&str, Option<FixedOffset>) {
    if let Some(body) = s.strip_suffix('Z') {
        return (body, FixedOffset::east_opt(0));
    }
    // An offset is `+HH:MM` or `-HH:MM` at the end, after the time part.
    if s.len() >= 6 {
        let tail = &s[s.len() - 6..];
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' && s.len() > 10 {
            if let (Some(h), Some(m)) = (digits2(&b[1..3]), digits2(&b[4..6])) {
                if h <= 14 && m < 60 {
                    let secs = (h * 3600 + m * 60) as i32;
                    let secs = if b[0] == b'-' { -secs } else { secs };
                    return (&s[..s.len() - 6], FixedOffset::east_opt(secs));
                }
            }
        }
    }
    (s, None)
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        let y: i32 = s[0..4].parse().ok()?;
        return NaiveDate::from_ymd_opt(y, s[4..6].parse().ok()?, s[6..8].parse().ok()?);
    }
    let mut parts = s.split(['-', '/', '.']);
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=9999).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h: u32 = parts.next()?.trim().parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let sec: u32 = match parts.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let nanos = match frac {
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut n: u32 = f.parse().ok()?;
            for _ in f.len()..9 {
                n *= 10;
            }
            n
        }
        None => 0,
    };
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
}

/// Rounds a time of day to `scale` fractional digits (wrapping at midnight).
fn round_time(t: NaiveTime, scale: u8) -> NaiveTime {
    round_time_carry(t, scale).0
}

/// As [`round_time`], and whether rounding up crossed midnight (the day
/// carries only then: rounding down late in the evening stays on its day).
fn round_time_carry(t: NaiveTime, scale: u8) -> (NaiveTime, bool) {
    const DAY: u64 = 86_400 * 1_000_000_000;
    let unit = 10u64.pow(9 - u32::from(scale.min(7)));
    let ns = u64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + u64::from(t.nanosecond());
    let r = (ns + unit / 2) / unit * unit;
    let carried = r >= DAY;
    let r = r % DAY;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(
        (r / 1_000_000_000) as u32,
        (r % 1_000_000_000) as u32,
    )
    .unwrap_or(t);
    (time, carried)
}

fn round_datetime(dt: NaiveDateTime, ty: &SqlType) -> Result<NaiveDateTime, SqlError> {
    let out_of_range = |name: &str| {
        SqlError::new(
            242,
            3,
            16,
            format!(
                "The conversion of a varchar data type to a {name} data type resulted in an out-of-range value."
            ),
        )
    };
    match ty {
        SqlType::DateTime => {
            // 1/300 s ticks, rounded to .000/.003/.007 as SQL Server stores them.
            let midnight = dt.date().and_time(NaiveTime::MIN);
            let ns = (dt - midnight).num_nanoseconds().unwrap_or(0);
            let ticks = (ns as f64 * 300.0 / 1e9).round() as i64;
            let ms = (ticks * 10 + 1) / 3;
            let out = midnight + Duration::milliseconds(ms);
            let min =
                NaiveDate::from_ymd_opt(1753, 1, 1).ok_or_else(|| out_of_range("datetime"))?;
            if out.date() < min || out.year() > 9999 {
                return Err(out_of_range("datetime"));
            }
            Ok(out)
        }
        SqlType::SmallDateTime => {
            let midnight = dt.date().and_time(NaiveTime::MIN);
            let secs = (dt - midnight).num_milliseconds();
            let minutes = (secs + 29_999) / 60_000;
            let out = midnight + Duration::minutes(minutes);
            let min =
                NaiveDate::from_ymd_opt(1900, 1, 1).ok_or_else(|| out_of_range("smalldatetime"))?;
            let max = NaiveDate::from_ymd_opt(2079, 6, 6)
                .ok_or_else(|| out_of_range("smalldatetime"))?
                .and_hms_opt(23, 59, 0)
                .ok_or_else(|| out_of_range("smalldatetime"))?;
            if out.date() < min || out > max {
                return Err(out_of_range("smalldatetime"));
            }
            Ok(out)
        }
        SqlType::DateTime2(s) => {
            let (t, carried) = round_time_carry(dt.time(), *s);
            let date = if carried {
                dt.date()
                    .succ_opt()
                    .ok_or_else(|| out_of_range("datetime2"))?
            } else {
                dt.date()
            };
            Ok(date.and_time(t))
        }
        _ => Ok(dt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str, ty: SqlType) -> Result<Value, SqlError> {
        convert(ValueRef::Text(s.as_bytes()), &ty, Overlong::Truncate)
    }

    #[test]
    fn datetime_text_is_what_format_gives() {
        let days = [1, 2, 59, 60, 365, 366, 100_000, 730_000, 3_652_058];
        let secs = [0u32, 1, 59, 3_599, 43_200, 86_399];
        for d in days {
            let date = NaiveDate::from_num_days_from_ce_opt(d).unwrap();
            assert_eq!(
                fmt_date(&date),
                format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
            );
            for (i, s) in secs.iter().enumerate() {
                // Ticks of every width, and a leap second (nanos >= 10^9).
                let nanos = if s % 60 == 59 {
                    1_500_000_000
                } else {
                    [0, 100, 123_456_700, 999_999_900][i % 4]
                };
                let time = NaiveTime::from_num_seconds_from_midnight_opt(*s, nanos).unwrap();
                let want = format!(
                    "{:02}:{:02}:{:02}.{:07}",
                    time.hour(),
                    time.minute(),
                    time.second(),
                    time.nanosecond() / 100
                );
                assert_eq!(fmt_time(&time), want);
                assert_eq!(
                    fmt_datetime(&date.and_time(time)),
                    format!("{} {want}", fmt_date(&date))
                );
            }
        }
    }

    #[test]
    fn decimals_round_trip_through_storage() {
        for (s, p, sc) in [
            ("1234567890123.45", 15u8, 2u8),
            ("-0.0001", 10, 4),
            ("1234567890123456789012345678.9012345678", 38, 10),
        ] {
            let ty = SqlType::Decimal {
                precision: p,
                scale: sc,
                numeric: false,
            };
            let v = conv(s, ty).unwrap();
            let stored = to_storage(&v);
            let back = from_storage(ValueRef::from(&stored), &ty).unwrap();
            assert_eq!(back, v, "{s}");
            assert_eq!(back, Value::Decimal(s.parse().unwrap()));
        }
    }

    #[test]
    fn datetime_rounds_like_sql_server() {
        let v = conv("2024-01-01 10:00:00.002", SqlType::DateTime).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-01-01 10:00:00.0030000".into())
        );
        let v = conv("2024-01-01 23:59:59.9999999", SqlType::DateTime2(3)).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-01-02 00:00:00.0000000".into())
        );
        // Rounding down late in the evening stays on its day.
        let v = conv("2027-03-31 23:00:00.0003284", SqlType::DateTime2(3)).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2027-03-31 23:00:00.0000000".into())
        );
        let v = conv("2024-01-31 23:59:59.9994", SqlType::DateTime2(3)).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-01-31 23:59:59.9990000".into())
        );
        let v = conv("2024-01-01 10:00:29.998", SqlType::SmallDateTime).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-01-01 10:00:00.0000000".into())
        );
        assert_eq!(
            conv("1752-12-31", SqlType::DateTime).unwrap_err().number,
            242
        );
        assert_eq!(conv("not a date", SqlType::Date).unwrap_err().number, 241);
    }

    #[test]
    fn month_names_parse() {
        let v = conv("January 10, 1900 12:00 AM", SqlType::DateTime).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("1900-01-10 00:00:00.0000000".into())
        );
        let v = conv("Jan 31 2024  1:45PM", SqlType::DateTime).unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-01-31 13:45:00.0000000".into())
        );
        let v = conv("10 Feb 2024", SqlType::Date).unwrap();
        assert_eq!(to_storage(&v), Sv::Text("2024-02-10".into()));
    }

    #[test]
    fn offsets_are_kept() {
        let v = conv(
            "2024-05-01 10:30:00.1234567 +05:30",
            SqlType::DateTimeOffset(7),
        )
        .unwrap();
        assert_eq!(
            to_storage(&v),
            Sv::Text("2024-05-01 10:30:00.1234567 +05:30".into())
        );
        let v = conv("0001-01-01", SqlType::Date).unwrap();
        assert_eq!(to_storage(&v), Sv::Text("0001-01-01".into()));
    }

    #[test]
    fn strings_truncate_or_fail() {
        let ty = SqlType::VarChar(Len::N(5));
        assert_eq!(conv("abcdefg", ty).unwrap(), Value::String("abcde".into()));
        let err = convert(
            ValueRef::Text(b"abcdefg"),
            &ty,
            Overlong::Error {
                table: "db.dbo.t",
                column: "c",
            },
        )
        .unwrap_err();
        assert_eq!(err.number, 2628);
        assert_eq!(
            conv("ab", SqlType::Char(4)).unwrap(),
            Value::String("ab  ".into())
        );
    }

    #[test]
    fn ints_check_ranges() {
        assert_eq!(
            convert(
                ValueRef::Integer(256),
                &SqlType::TinyInt,
                Overlong::Truncate
            )
            .unwrap_err()
            .number,
            8115
        );
        assert_eq!(conv("abc", SqlType::Int).unwrap_err().number, 245);
        assert_eq!(conv(" 42 ", SqlType::Int).unwrap(), Value::Int(42));
    }

    #[test]
    fn money_extremes() {
        let v = conv("-922337203685477.5808", SqlType::Money).unwrap();
        assert_eq!(v, Value::Decimal("-922337203685477.5808".parse().unwrap()));
        assert_eq!(
            conv("922337203685477.5808", SqlType::Money)
                .unwrap_err()
                .number,
            8115
        );
    }
}
