//! SQLite functions and the collation that give translated T-SQL its
//! semantics: CAST/CONVERT, implicit conversion on write, `+` on strings,
//! date functions, and SQL Server's case-insensitive, blank-padded compare.

use std::cmp::Ordering;

use chrono::{Datelike, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use super::convert::{convert, fmt_datetime, fmt_dto, to_storage, Overlong};
use super::error::SqlError;
use super::typename::parse_sql_type;
use crate::types::{Len, SqlType, Value};

fn type_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<SqlType> {
    let text: String = ctx.get(i)?;
    parse_sql_type(&text).ok_or_else(|| {
        SqlError::new(
            243,
            2,
            16,
            format!("Type {text} is not a defined system type."),
        )
        .to_fn_error()
    })
}

/// SQL Server's default collation compares case-insensitively and ignores
/// trailing blanks.
pub fn tsql_collate(a: &str, b: &str) -> Ordering {
    let a = a.trim_end_matches(' ');
    let b = b.trim_end_matches(' ');
    let mut ia = a.chars().flat_map(char::to_lowercase);
    let mut ib = b.chars().flat_map(char::to_lowercase);
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

fn now_local() -> NaiveDateTime {
    Local::now().naive_local()
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(super::convert::format_float(f)),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Null => None,
    }
}

fn as_datetime(v: ValueRef<'_>) -> rusqlite::Result<Option<NaiveDateTime>> {
    match convert(v, &SqlType::DateTime2(7), Overlong::Truncate).map_err(|e| e.to_fn_error())? {
        Value::DateTime(dt) => Ok(Some(dt)),
        _ => Ok(None),
    }
}

fn date_part(part: &str) -> String {
    match part.to_ascii_lowercase().as_str() {
        "yy" | "yyyy" | "year" => "year",
        "qq" | "q" | "quarter" => "quarter",
        "mm" | "m" | "month" => "month",
        "dy" | "y" | "dayofyear" => "dayofyear",
        "dd" | "d" | "day" => "day",
        "wk" | "ww" | "week" => "week",
        "dw" | "w" | "weekday" => "weekday",
        "hh" | "hour" => "hour",
        "mi" | "n" | "minute" => "minute",
        "ss" | "s" | "second" => "second",
        "ms" | "millisecond" => "millisecond",
        "mcs" | "microsecond" => "microsecond",
        "ns" | "nanosecond" => "nanosecond",
        other => return other.to_string(),
    }
    .to_string()
}

fn bad_part(part: &str) -> rusqlite::Error {
    SqlError::new(
        155,
        1,
        15,
        format!("'{part}' is not a recognized datepart option."),
    )
    .to_fn_error()
}

fn add_months(dt: NaiveDateTime, months: i64) -> Option<NaiveDateTime> {
    let total = i64::from(dt.year()) * 12 + i64::from(dt.month0()) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = (total.rem_euclid(12) + 1) as u32;
    let mut day = dt.day();
    loop {
        if let Some(d) = NaiveDate::from_ymd_opt(year, month, day) {
            return Some(d.and_time(dt.time()));
        }
        day = day.checked_sub(1)?;
    }
}

/// Registers everything the translator emits on one connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let nondet = FunctionFlags::SQLITE_UTF8;
    conn.create_collation("TSQL", tsql_collate)?;

    // CAST / CONVERT: converts, truncating strings silently.
    conn.create_scalar_function("__conv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = convert(ctx.get_raw(0), &ty, Overlong::Truncate).map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    // TRY_CAST / TRY_CONVERT: NULL instead of an error.
    conn.create_scalar_function("__tryconv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        Ok(convert(ctx.get_raw(0), &ty, Overlong::Truncate)
            .map(|v| to_storage(&v))
            .unwrap_or(Sv::Null))
    })?;
    // Implicit conversion into a column on INSERT/UPDATE: overlong is error 2628.
    conn.create_scalar_function("__store", 4, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let table: String = ctx.get(2)?;
        let column: String = ctx.get(3)?;
        let v = convert(
            ctx.get_raw(0),
            &ty,
            Overlong::Error {
                table: &table,
                column: &column,
            },
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    // Pieces of a declared type for INFORMATION_SCHEMA and sys views.
    conn.create_scalar_function("__type_part", 2, det, |ctx| {
        let ty: String = ctx.get(0)?;
        let part: String = ctx.get(1)?;
        let Some(t) = parse_sql_type(&ty) else {
            return Ok(Sv::Null);
        };
        let chars = |l: &Len| match l {
            Len::N(n) => Sv::Integer(i64::from(*n)),
            Len::Max => Sv::Integer(-1),
        };
        Ok(match part.as_str() {
            "name" => Sv::Text(t.base_name().to_string()),
            "chars" => match &t {
                SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => {
                    Sv::Integer(i64::from(*n))
                }
                SqlType::VarChar(l) | SqlType::NVarChar(l) | SqlType::VarBinary(l) => chars(l),
                _ => Sv::Null,
            },
            "bytes" => Sv::Integer(t.sys_facts().1),
            "sys_precision" => Sv::Integer(t.sys_facts().2),
            "sys_scale" => Sv::Integer(t.sys_facts().3),
            "precision" => match &t {
                SqlType::Decimal { precision, .. } => Sv::Integer(i64::from(*precision)),
                SqlType::TinyInt => Sv::Integer(3),
                SqlType::SmallInt => Sv::Integer(5),
                SqlType::Int => Sv::Integer(10),
                SqlType::BigInt | SqlType::Money => Sv::Integer(19),
                SqlType::SmallMoney => Sv::Integer(10),
                SqlType::Float => Sv::Integer(53),
                SqlType::Real => Sv::Integer(24),
                _ => Sv::Null,
            },
            "scale" => match &t {
                SqlType::Decimal { scale, .. } => Sv::Integer(i64::from(*scale)),
                SqlType::Money | SqlType::SmallMoney => Sv::Integer(4),
                SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
                    Sv::Integer(0)
                }
                _ => Sv::Null,
            },
            "dtprecision" => match &t {
                SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => {
                    Sv::Integer(i64::from(*s))
                }
                SqlType::DateTime => Sv::Integer(3),
                SqlType::SmallDateTime | SqlType::Date => Sv::Integer(0),
                _ => Sv::Null,
            },
            _ => Sv::Null,
        })
    })?;

    conn.create_scalar_function("__getdate", 0, nondet, |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&now_local()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    conn.create_scalar_function("__getutcdate", 0, nondet, |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&Utc::now().naive_utc()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    conn.create_scalar_function("__sysdatetime", 0, nondet, |_| {
        Ok(fmt_datetime(&now_local()))
    })?;
    conn.create_scalar_function("__sysutcdatetime", 0, nondet, |_| {
        Ok(fmt_datetime(&Utc::now().naive_utc()))
    })?;
    conn.create_scalar_function("__sysdatetimeoffset", 0, nondet, |_| {
        Ok(fmt_dto(&Local::now().fixed_offset()))
    })?;
    conn.create_scalar_function("__quotename", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0)).map(|s| format!("[{}]", s.replace(']', "]]"))))
    })?;
    conn.create_scalar_function("__utf8", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("__newid", 0, nondet, |_| {
        Ok(uuid::Uuid::new_v4().to_string().to_ascii_uppercase())
    })?;

    // `+`: string concatenation when both sides are strings, arithmetic otherwise.
    conn.create_scalar_function("__add", 2, det, |ctx| {
        let (a, b) = (ctx.get_raw(0), ctx.get_raw(1));
        Ok(match (a, b) {
            (ValueRef::Null, _) | (_, ValueRef::Null) => Sv::Null,
            (ValueRef::Text(x), ValueRef::Text(y)) => {
                let mut s = String::from_utf8_lossy(x).into_owned();
                s.push_str(&String::from_utf8_lossy(y));
                Sv::Text(s)
            }
            (ValueRef::Integer(x), ValueRef::Integer(y)) => match x.checked_add(y) {
                Some(v) => Sv::Integer(v),
                None => return Err(SqlError::overflow("bigint").to_fn_error()),
            },
            (x, y) => {
                let num = |v: ValueRef<'_>| -> rusqlite::Result<f64> {
                    match v {
                        ValueRef::Integer(i) => Ok(i as f64),
                        ValueRef::Real(f) => Ok(f),
                        ValueRef::Text(t) => {
                            let s = String::from_utf8_lossy(t);
                            s.trim().parse::<f64>().map_err(|_| {
                                SqlError::conversion("varchar", &s, "int").to_fn_error()
                            })
                        }
                        _ => Err(SqlError::new(
                            402,
                            1,
                            16,
                            "The data types varbinary and int are incompatible in the add operator.",
                        )
                        .to_fn_error()),
                    }
                };
                if let (ValueRef::Integer(i), ValueRef::Text(t)) | (ValueRef::Text(t), ValueRef::Integer(i)) = (x, y) {
                    let s = String::from_utf8_lossy(t);
                    if let Ok(j) = s.trim().parse::<i64>() {
                        return Ok(Sv::Integer(i.saturating_add(j)));
                    }
                }
                Sv::Real(num(x)? + num(y)?)
            }
        })
    })?;
    conn.create_scalar_function("__div", 2, det, |ctx| {
        let (a, b) = (ctx.get_raw(0), ctx.get_raw(1));
        Ok(match (a, b) {
            (ValueRef::Null, _) | (_, ValueRef::Null) => Sv::Null,
            (_, ValueRef::Integer(0)) => return Err(SqlError::divide_by_zero().to_fn_error()),
            (_, ValueRef::Real(0.0)) => return Err(SqlError::divide_by_zero().to_fn_error()),
            (ValueRef::Integer(x), ValueRef::Integer(y)) => Sv::Integer(x.wrapping_div(y)),
            (x, y) => {
                let f = |v: ValueRef<'_>| match v {
                    ValueRef::Integer(i) => i as f64,
                    ValueRef::Real(f) => f,
                    ValueRef::Text(t) => String::from_utf8_lossy(t).trim().parse().unwrap_or(0.0),
                    _ => 0.0,
                };
                if f(y) == 0.0 {
                    return Err(SqlError::divide_by_zero().to_fn_error());
                }
                Sv::Real(f(x) / f(y))
            }
        })
    })?;
    // LEN ignores trailing blanks; DATALENGTH counts bytes as SQL Server stores them.
    conn.create_scalar_function("__len", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0)).map(|s| s.trim_end_matches(' ').chars().count() as i64))
    })?;
    conn.create_scalar_function("__datalength", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Null => None,
            ValueRef::Blob(b) => Some(b.len() as i64),
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).encode_utf16().count() as i64 * 2),
            ValueRef::Integer(_) | ValueRef::Real(_) => Some(8),
        })
    })?;
    conn.create_scalar_function("__left", 2, det, |ctx| {
        let n: i64 = ctx.get(1)?;
        Ok(text(ctx.get_raw(0)).map(|s| s.chars().take(n.max(0) as usize).collect::<String>()))
    })?;
    conn.create_scalar_function("__right", 2, det, |ctx| {
        let n: i64 = ctx.get(1)?;
        Ok(text(ctx.get_raw(0)).map(|s| {
            let c: Vec<char> = s.chars().collect();
            let k = (n.max(0) as usize).min(c.len());
            c[c.len() - k..].iter().collect::<String>()
        }))
    })?;
    conn.create_scalar_function("__datepart", 2, det, |ctx| {
        let part: String = ctx.get(0)?;
        let Some(dt) = as_datetime(ctx.get_raw(1))? else {
            return Ok(None);
        };
        let p = date_part(&part);
        Ok(Some(match p.as_str() {
            "year" => i64::from(dt.year()),
            "quarter" => i64::from(dt.month0() / 3 + 1),
            "month" => i64::from(dt.month()),
            "dayofyear" => i64::from(dt.ordinal()),
            "day" => i64::from(dt.day()),
            "week" => i64::from(
                (dt.ordinal()
                    + dt.with_ordinal(1)
                        .map(|d| d.weekday().num_days_from_sunday())
                        .unwrap_or(0)
                    - 1)
                    / 7
                    + 1,
            ),
            "weekday" => i64::from(dt.weekday().num_days_from_sunday() + 1),
            "hour" => i64::from(dt.hour()),
            "minute" => i64::from(dt.minute()),
            "second" => i64::from(dt.second()),
            "millisecond" => i64::from(dt.nanosecond() / 1_000_000),
            "microsecond" => i64::from(dt.nanosecond() / 1_000),
            "nanosecond" => i64::from(dt.nanosecond() / 100 * 100),
            _ => return Err(bad_part(&part)),
        }))
    })?;
    conn.create_scalar_function("__dateadd", 3, det, |ctx| {
        let part: String = ctx.get(0)?;
        let n: i64 = match ctx.get_raw(1) {
            ValueRef::Null => return Ok(Sv::Null),
            ValueRef::Integer(i) => i,
            ValueRef::Real(f) => f.trunc() as i64,
            v => text(v).and_then(|s| s.trim().parse().ok()).unwrap_or(0),
        };
        let raw = ctx.get_raw(2);
        let Some(dt) = as_datetime(raw)? else {
            return Ok(Sv::Null);
        };
        let p = date_part(&part);
        let out = match p.as_str() {
            "year" => add_months(dt, n * 12),
            "quarter" => add_months(dt, n * 3),
            "month" => add_months(dt, n),
            "dayofyear" | "day" | "weekday" => dt.checked_add_signed(Duration::days(n)),
            "week" => dt.checked_add_signed(Duration::weeks(n)),
            "hour" => dt.checked_add_signed(Duration::hours(n)),
            "minute" => dt.checked_add_signed(Duration::minutes(n)),
            "second" => dt.checked_add_signed(Duration::seconds(n)),
            "millisecond" => dt.checked_add_signed(Duration::milliseconds(n)),
            "microsecond" => dt.checked_add_signed(Duration::microseconds(n)),
            "nanosecond" => dt.checked_add_signed(Duration::nanoseconds(n)),
            _ => return Err(bad_part(&part)),
        }
        .ok_or_else(|| {
            SqlError::new(
                517,
                1,
                16,
                "Adding a value to a 'datetime' column caused an overflow.",
            )
            .to_fn_error()
        })?;
        // A date stays a date; everything else keeps the full timestamp form.
        if let ValueRef::Text(t) = raw {
            if t.len() == 10 {
                return Ok(Sv::Text(super::convert::fmt_date(&out.date())));
            }
        }
        Ok(Sv::Text(fmt_datetime(&out)))
    })?;
    conn.create_scalar_function("__datediff", 3, det, |ctx| {
        let part: String = ctx.get(0)?;
        let (Some(a), Some(b)) = (as_datetime(ctx.get_raw(1))?, as_datetime(ctx.get_raw(2))?)
        else {
            return Ok(None);
        };
        let p = date_part(&part);
        let months = |x: NaiveDateTime| i64::from(x.year()) * 12 + i64::from(x.month0());
        let day0 = |x: NaiveDateTime| x.date().and_time(NaiveTime::MIN);
        Ok(Some(match p.as_str() {
            "year" => i64::from(b.year() - a.year()),
            "quarter" => (months(b) / 3) - (months(a) / 3),
            "month" => months(b) - months(a),
            "dayofyear" | "day" | "weekday" => (day0(b) - day0(a)).num_days(),
            "week" => ((day0(b) - day0(a)).num_days()) / 7,
            "hour" => (b - a).num_hours(),
            "minute" => (b - a).num_minutes(),
            "second" => (b - a).num_seconds(),
            "millisecond" => (b - a).num_milliseconds(),
            "microsecond" => (b - a).num_microseconds().unwrap_or(i64::MAX),
            "nanosecond" => (b - a).num_nanoseconds().unwrap_or(i64::MAX),
            _ => return Err(bad_part(&part)),
        }))
    })?;
    Ok(())
}
