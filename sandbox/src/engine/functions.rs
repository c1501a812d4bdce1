//! SQLite functions and the collation that give translated T-SQL its
//! semantics: CAST/CONVERT, implicit conversion on write, `+` on strings,
//! date functions, and SQL Server's case-insensitive, blank-padded compare.

use std::cmp::Ordering;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use super::convert::{convert, fmt_datetime, fmt_dto, to_storage, Overlong};
use super::error::SqlError;
use super::styles;
use super::typename::parse_sql_type;
use crate::clock::Clock;
use crate::types::{Len, SqlType, Value};

/// The declared type in argument `i`. The compiler always passes it as a
/// literal, so it is parsed once per prepared statement: SQLite keeps the
/// parse beside a constant argument (`sqlite3_set_auxdata`,
/// https://www.sqlite.org/c3ref/get_auxdata.html) instead of every row
/// parsing `'decimal(18,4)'` again.
fn type_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<SqlType> {
    let ty = ctx.get_or_create_aux(i as std::os::raw::c_int, |v| {
        let text = String::from_utf8_lossy(v.as_bytes().unwrap_or_default());
        parse_sql_type(&text).ok_or_else(|| {
            SqlError::new(
                243,
                2,
                16,
                format!("Type {text} is not a defined system type."),
            )
            .fn_error_text()
        })
    })?;
    Ok(*ty)
}

/// A text argument borrowed from SQLite, for names that only an error
/// message uses.
fn str_arg<'a>(ctx: &'a Context<'_>, i: usize) -> &'a str {
    ctx.get_raw(i).as_str().unwrap_or_default()
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

/// The `+hh:mm` of a stored datetimeoffset text, if it has one.
fn offset_suffix(t: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(t).ok()?;
    if s.len() < 25 {
        return None;
    }
    let tail = &s[s.len() - 6..];
    let b = tail.as_bytes();
    ((b[0] == b'+' || b[0] == b'-') && b[3] == b':').then(|| tail.to_string())
}

/// Weeks since a Sunday, so DATEDIFF(week) counts the Sundays crossed.
fn week_index(x: NaiveDateTime) -> i64 {
    let sunday = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap_or_default();
    (x.date() - sunday).num_days().div_euclid(7)
}

fn parse_offset(tz: &str) -> Option<chrono::FixedOffset> {
    let t = tz.trim();
    if t.eq_ignore_ascii_case("Z") {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn as_offset(v: ValueRef<'_>) -> rusqlite::Result<Option<chrono::DateTime<chrono::FixedOffset>>> {
    match convert(v, &SqlType::DateTimeOffset(7), Overlong::Truncate)
        .map_err(|e| e.to_fn_error())?
    {
        Value::DateTimeOffset(dt) => Ok(Some(dt)),
        _ => Ok(None),
    }
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
/// `__conv`'s arguments: value, target type, optional style, optional
/// source type (which decides how dates, money and floats become text).
fn styled_convert(ctx: &Context<'_>, ty: &SqlType) -> Result<Value, SqlError> {
    let style: Option<i64> = if ctx.len() > 2 {
        match ctx.get_raw(2) {
            ValueRef::Integer(i) => Some(i),
            _ => None,
        }
    } else {
        None
    };
    let from = if ctx.len() > 3 {
        match ctx.get_raw(3) {
            ValueRef::Text(t) => parse_sql_type(&String::from_utf8_lossy(t)),
            _ => None,
        }
    } else {
        None
    };
    styles::convert_from(ctx.get_raw(0), from.as_ref(), ty, style)
}

/// Registers the engine's functions; `clock` is the server's time
/// (GETDATE() and its kin, Change Tracking's commit times).
pub fn register(conn: &Connection, clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let nondet = FunctionFlags::SQLITE_UTF8;
    conn.create_collation("TSQL", tsql_collate)?;
    super::collation::register(conn)?;
    super::change_tracking::register(conn)?;

    // CAST / CONVERT: `__conv(x, type[, style, source type])`, truncating
    // strings silently; the source type picks its default text style.
    conn.create_scalar_function("__conv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = styled_convert(ctx, &ty).map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    // TRY_CAST / TRY_CONVERT: NULL instead of an error.
    conn.create_scalar_function("__tryconv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        Ok(styled_convert(ctx, &ty)
            .map(|v| to_storage(&v))
            .unwrap_or(Sv::Null))
    })?;
    // Implicit conversion into a column on INSERT/UPDATE: overlong is error 2628.
    conn.create_scalar_function("__store", 4, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = convert(
            ctx.get_raw(0),
            &ty,
            Overlong::Error {
                table: str_arg(ctx, 2),
                column: str_arg(ctx, 3),
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

    // A recursive CTE's row at recursion level `level` (the anchor's rows
    // are level 0), under the statement's limit `max` (0: none). Past it,
    // error 530 ends the statement
    // (https://learn.microsoft.com/en-us/sql/t-sql/queries/with-common-table-expression-transact-sql#guidelines-for-defining-and-using-recursive-common-table-expressions).
    conn.create_scalar_function("__recursion_level", 2, det, |ctx| {
        let level: i64 = ctx.get(0)?;
        let max: i64 = ctx.get(1)?;
        if max > 0 && level > max {
            return Err(SqlError::new(
                530,
                1,
                16,
                format!("The statement terminated. The maximum recursion {max} has been exhausted before statement completion."),
            )
            .to_fn_error());
        }
        Ok(Sv::Integer(level))
    })?;
    // Raised by a MERGE whose target row matches more than one source row
    // (see `plan_merge`); never folded into a constant, so it fires only on
    // a row that exists.
    conn.create_scalar_function("__merge_twice", 0, nondet, |_| {
        Err::<Sv, _>(SqlError::merge_twice().to_fn_error())
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__getdate", 0, nondet, move |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&c.now_local().naive_local()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__getutcdate", 0, nondet, move |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&c.now_utc()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysdatetime", 0, nondet, move |_| {
        Ok(fmt_datetime(&c.now_local().naive_local()))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysutcdatetime", 0, nondet, move |_| {
        Ok(fmt_datetime(&c.now_utc()))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysdatetimeoffset", 0, nondet, move |_| {
        Ok(fmt_dto(&c.now_local().fixed_offset()))
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

    // LEN ignores trailing blanks; DATALENGTH counts bytes as SQL Server stores them.
    conn.create_scalar_function("__len", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0)).map(|s| s.trim_end_matches(' ').chars().count() as i64))
    })?;
    conn.create_scalar_function("__datalength", 2, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        Ok(match ctx.get_raw(0) {
            ValueRef::Null => None,
            ValueRef::Blob(b) => Some(b.len() as i64),
            ValueRef::Text(t) if ty.is_unicode() || ty == SqlType::Xml => {
                Some(String::from_utf8_lossy(t).encode_utf16().count() as i64 * 2)
            }
            // varchar: one byte per character of code page 1252.
            ValueRef::Text(t) if ty.is_string() => {
                Some(String::from_utf8_lossy(t).chars().count() as i64)
            }
            _ => Some(ty.sys_facts().1),
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
        // A date stays a date, a datetimeoffset keeps its offset; everything
        // else keeps the full timestamp form.
        if let ValueRef::Text(t) = raw {
            if t.len() == 10 {
                return Ok(Sv::Text(super::convert::fmt_date(&out.date())));
            }
            if let Some(off) = offset_suffix(t) {
                return Ok(Sv::Text(format!("{} {off}", fmt_datetime(&out))));
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
            // Week boundaries are Sundays (SET DATEFIRST 7).
            "week" => week_index(b) - week_index(a),
            "hour" => (b - a).num_hours(),
            "minute" => (b - a).num_minutes(),
            "second" => (b - a).num_seconds(),
            "millisecond" => (b - a).num_milliseconds(),
            "microsecond" => (b - a).num_microseconds().unwrap_or(i64::MAX),
            "nanosecond" => (b - a).num_nanoseconds().unwrap_or(i64::MAX),
            _ => return Err(bad_part(&part)),
        }))
    })?;
    conn.create_scalar_function("__datename", 2, det, |ctx| {
        let part: String = ctx.get(0)?;
        let Some(dt) = as_datetime(ctx.get_raw(1))? else {
            return Ok(None);
        };
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        const DAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        Ok(Some(match date_part(&part).as_str() {
            "month" => MONTHS[dt.month0() as usize].to_string(),
            "weekday" => DAYS[dt.weekday().num_days_from_sunday() as usize].to_string(),
            "year" => dt.year().to_string(),
            "quarter" => (dt.month0() / 3 + 1).to_string(),
            "dayofyear" => dt.ordinal().to_string(),
            "day" => dt.day().to_string(),
            "week" => {
                (week_index(dt) - week_index(dt.with_ordinal(1).unwrap_or(dt)) + 1).to_string()
            }
            "hour" => dt.hour().to_string(),
            "minute" => dt.minute().to_string(),
            "second" => dt.second().to_string(),
            "millisecond" => (dt.nanosecond() / 1_000_000).to_string(),
            "microsecond" => (dt.nanosecond() / 1_000).to_string(),
            "nanosecond" => (dt.nanosecond() / 100 * 100).to_string(),
            _ => return Err(bad_part(&part)),
        }))
    })?;
    conn.create_scalar_function("__eomonth", 2, det, |ctx| {
        let Some(dt) = as_datetime(ctx.get_raw(0))? else {
            return Ok(None);
        };
        let n: i64 = ctx.get::<Option<i64>>(1)?.unwrap_or(0);
        let first = dt
            .date()
            .with_day(1)
            .unwrap_or(dt.date())
            .and_time(NaiveTime::MIN);
        let next =
            add_months(first, n + 1).ok_or_else(|| SqlError::overflow("date").to_fn_error())?;
        let last = next
            .date()
            .pred_opt()
            .ok_or_else(|| SqlError::overflow("date").to_fn_error())?;
        Ok(Some(super::convert::fmt_date(&last)))
    })?;
    conn.create_scalar_function("__fromparts", -1, det, |ctx| {
        let kind: String = ctx.get(0)?;
        let mut n = Vec::new();
        for i in 1..ctx.len() {
            match ctx.get::<Option<i64>>(i)? {
                Some(v) => n.push(v),
                None => return Ok(None),
            }
        }
        let bad = || {
            SqlError::new(
                289,
                1,
                16,
                format!(
                    "Cannot construct data type {}, some of the arguments have values which are not valid.",
                    kind.trim_end_matches("fromparts")
                ),
            )
            .to_fn_error()
        };
        let u = |i: usize| -> rusqlite::Result<u32> { n.get(i).and_then(|v| u32::try_from(*v).ok()).ok_or_else(bad) };
        let date = |y: i64, m: u32, d: u32| NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad);
        // Fractions are in units of 10^-precision.
        let nanos = |frac: u32, prec: u32| -> rusqlite::Result<u32> {
            if prec > 7 || u64::from(frac) >= 10u64.pow(prec) {
                return Err(bad());
            }
            Ok(frac * 10u32.pow(9 - prec))
        };
        let text = match kind.as_str() {
            "datefromparts" => super::convert::fmt_date(&date(n[0], u(1)?, u(2)?)?),
            "datetimefromparts" => {
                let t = NaiveTime::from_hms_milli_opt(u(3)?, u(4)?, u(5)?, u(6)?).ok_or_else(bad)?;
                fmt_datetime(&date(n[0], u(1)?, u(2)?)?.and_time(t))
            }
            "smalldatetimefromparts" => {
                let t = NaiveTime::from_hms_opt(u(3)?, u(4)?, 0).ok_or_else(bad)?;
                fmt_datetime(&date(n[0], u(1)?, u(2)?)?.and_time(t))
            }
            "datetime2fromparts" => {
                let t = NaiveTime::from_hms_nano_opt(u(3)?, u(4)?, u(5)?, nanos(u(6)?, u(7)?)?).ok_or_else(bad)?;
                fmt_datetime(&date(n[0], u(1)?, u(2)?)?.and_time(t))
            }
            "timefromparts" => {
                let t = NaiveTime::from_hms_nano_opt(u(0)?, u(1)?, u(2)?, nanos(u(3)?, u(4)?)?).ok_or_else(bad)?;
                super::convert::fmt_time(&t)
            }
            _ => {
                let t = NaiveTime::from_hms_nano_opt(u(3)?, u(4)?, u(5)?, nanos(u(6)?, u(9)?)?).ok_or_else(bad)?;
                let (oh, om) = (n[7], n[8]);
                if oh.abs() > 14 || om.abs() > 59 {
                    return Err(bad());
                }
                let sign = if oh < 0 || om < 0 { '-' } else { '+' };
                format!("{} {sign}{:02}:{:02}", fmt_datetime(&date(n[0], u(1)?, u(2)?)?.and_time(t)), oh.abs(), om.abs())
            }
        };
        Ok(Some(text))
    })?;
    conn.create_scalar_function("__isdate", 1, det, |ctx| {
        let v = ctx.get_raw(0);
        if let ValueRef::Null = v {
            return Ok(0i64);
        }
        Ok(i64::from(
            convert(v, &SqlType::DateTime, Overlong::Truncate).is_ok(),
        ))
    })?;
    conn.create_scalar_function("__switchoffset", 2, det, |ctx| {
        let Some(dt) = as_offset(ctx.get_raw(0))? else {
            return Ok(None);
        };
        let tz: String = ctx.get(1)?;
        let off = parse_offset(&tz).ok_or_else(|| {
            SqlError::new(
                9812,
                1,
                16,
                "The timezone provided to builtin function switchoffset is invalid.",
            )
            .to_fn_error()
        })?;
        Ok(Some(fmt_dto(&dt.with_timezone(&off))))
    })?;
    conn.create_scalar_function("__todatetimeoffset", 2, det, |ctx| {
        let Some(dt) = as_datetime(ctx.get_raw(0))? else {
            return Ok(None);
        };
        let tz: String = ctx.get(1)?;
        let off = parse_offset(&tz).ok_or_else(|| {
            SqlError::new(
                9812,
                1,
                16,
                "The timezone provided to builtin function todatetimeoffset is invalid.",
            )
            .to_fn_error()
        })?;
        let local = dt
            .and_local_timezone(off)
            .single()
            .ok_or_else(|| SqlError::datetime_conversion().to_fn_error())?;
        Ok(Some(fmt_dto(&local)))
    })?;
    conn.create_scalar_function("__datetrunc", 2, det, |ctx| {
        let part: String = ctx.get(0)?;
        let raw = ctx.get_raw(1);
        let Some(dt) = as_datetime(raw)? else {
            return Ok(None);
        };
        let d = dt.date();
        let t = dt.time();
        let out = match date_part(&part).as_str() {
            "year" => d.with_ordinal(1).unwrap_or(d).and_time(NaiveTime::MIN),
            "quarter" => NaiveDate::from_ymd_opt(d.year(), d.month0() / 3 * 3 + 1, 1)
                .unwrap_or(d)
                .and_time(NaiveTime::MIN),
            "month" => d.with_day(1).unwrap_or(d).and_time(NaiveTime::MIN),
            "dayofyear" | "day" => d.and_time(NaiveTime::MIN),
            "week" => (d - Duration::days(i64::from(d.weekday().num_days_from_sunday())))
                .and_time(NaiveTime::MIN),
            "hour" => d.and_hms_opt(t.hour(), 0, 0).unwrap_or(dt),
            "minute" => d.and_hms_opt(t.hour(), t.minute(), 0).unwrap_or(dt),
            "second" => d
                .and_hms_opt(t.hour(), t.minute(), t.second())
                .unwrap_or(dt),
            "millisecond" => d
                .and_hms_nano_opt(
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.nanosecond() / 1_000_000 * 1_000_000,
                )
                .unwrap_or(dt),
            "microsecond" => d
                .and_hms_nano_opt(
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.nanosecond() / 1_000 * 1_000,
                )
                .unwrap_or(dt),
            _ => return Err(bad_part(&part)),
        };
        if let ValueRef::Text(t) = raw {
            if let Some(off) = offset_suffix(t) {
                return Ok(Some(format!("{} {off}", fmt_datetime(&out))));
            }
        }
        Ok(Some(fmt_datetime(&out)))
    })?;
    // datetime/smalldatetime plus or minus a number of days (fractions are
    // times of day), or minus another datetime (the difference since 1900-01-01).
    conn.create_scalar_function("__datedays", 4, det, |ctx| {
        let op: String = ctx.get(0)?;
        let (a, b) = (ctx.get_raw(1), ctx.get_raw(2));
        if matches!(a, ValueRef::Null) || matches!(b, ValueRef::Null) {
            return Ok(None);
        }
        let base = NaiveDate::from_ymd_opt(1900, 1, 1)
            .unwrap_or_default()
            .and_time(NaiveTime::MIN);
        let days_of = |v: ValueRef<'_>| -> rusqlite::Result<f64> {
            Ok(match v {
                ValueRef::Integer(i) => i as f64,
                ValueRef::Real(f) => f,
                ValueRef::Text(_) => {
                    let dt = as_datetime(v)?.unwrap_or(base);
                    (dt - base).num_milliseconds() as f64 / 86_400_000.0
                }
                _ => 0.0,
            })
        };
        let x = days_of(a)?;
        let y = days_of(b)?;
        let d = if op == "+" { x + y } else { x - y };
        let ms = (d * 86_400_000.0).round() as i64;
        let out = base
            .checked_add_signed(Duration::milliseconds(ms))
            .ok_or_else(|| SqlError::overflow("datetime").to_fn_error())?;
        Ok(Some(fmt_datetime(&out)))
    })?;
    // Compares two datetimeoffsets by their UTC instants.
    conn.create_scalar_function("__dtocmp", 2, det, |ctx| {
        let (Some(a), Some(b)) = (as_offset(ctx.get_raw(0))?, as_offset(ctx.get_raw(1))?) else {
            return Ok(None);
        };
        Ok(Some(match a.cmp(&b) {
            Ordering::Less => -1i64,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }))
    })?;
    super::numeric::register(conn)?;
    super::textfns::register(conn)?;
    Ok(())
}
