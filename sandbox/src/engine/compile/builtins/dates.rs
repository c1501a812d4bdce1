//! Date and time built-ins: YEAR/MONTH/DAY, DATEPART, DATENAME, DATEADD,
//! DATEDIFF(_BIG), EOMONTH, the FROMPARTS family, ISDATE, SWITCHOFFSET,
//! TODATETIMEOFFSET, DATETRUNC.

use sqlparser::ast::Expr;

use super::super::rules::{self};
use super::super::{convert_sql, Compiler, Scope, Typed};
use super::*;
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use crate::clock::Clock;
use crate::engine::convert::{convert, fmt_datetime, fmt_dto, Overlong};
use crate::engine::functions::{as_datetime, as_offset, text};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let t = match n {
        "YEAR" | "MONTH" | "DAY" => {
            need(n, args, 1, 1)?;
            let v = date_value(c, &args[0], scope)?;
            typed(
                format!("__datepart('{}', {})", n.to_ascii_lowercase(), v.sql),
                SqlType::Int,
            )
        }
        "DATEPART" => {
            need(n, args, 2, 2)?;
            let p = part_name(&args[0])?;
            let v = date_value(c, &args[1], scope)?;
            typed(
                format!("__datepart({}, {})", quote_str(&p), v.sql),
                SqlType::Int,
            )
        }
        "DATENAME" => {
            need(n, args, 2, 2)?;
            let p = part_name(&args[0])?;
            let v = date_value(c, &args[1], scope)?;
            typed(
                format!("__datename({}, {})", quote_str(&p), v.sql),
                SqlType::NVarChar(Len::N(30)),
            )
        }
        "DATEADD" => {
            need(n, args, 3, 3)?;
            let p = part_name(&args[0])?;
            let k = c.value(&args[1], scope)?;
            let d = c.value(&args[2], scope)?;
            // A string date argument is datetime (DATEADD page, "Return types").
            let ty = if d.ty.is_string() || d.null_literal {
                SqlType::DateTime
            } else if rules::is_temporal(&d.ty) {
                d.ty
            } else {
                return Err(rules::clash(&d.ty, &SqlType::DateTime2(7)));
            };
            let dv = convert_sql(&d, &ty);
            typed(
                format!(
                    "__conv(__dateadd({}, {}, {dv}), {})",
                    quote_str(&p),
                    int_arg(&k),
                    quote_str(&ty.type_name())
                ),
                ty,
            )
        }
        "DATEDIFF" | "DATEDIFF_BIG" => {
            need(n, args, 3, 3)?;
            let p = part_name(&args[0])?;
            let a = date_value(c, &args[1], scope)?;
            let b = date_value(c, &args[2], scope)?;
            let ty = if n == "DATEDIFF" {
                SqlType::Int
            } else {
                SqlType::BigInt
            };
            let sql = format!("__datediff({}, {}, {})", quote_str(&p), a.sql, b.sql);
            let sql = if n == "DATEDIFF" {
                format!("__iop('+', {sql}, 0, 32)")
            } else {
                sql
            };
            typed(sql, ty)
        }
        "EOMONTH" => {
            need(n, args, 1, 2)?;
            let d = date_value(c, &args[0], scope)?;
            let k = match args.get(1) {
                Some(a) => int_arg(&c.value(a, scope)?),
                None => "0".into(),
            };
            typed(format!("__eomonth({}, {k})", d.sql), SqlType::Date)
        }
        "DATEFROMPARTS"
        | "DATETIMEFROMPARTS"
        | "SMALLDATETIMEFROMPARTS"
        | "DATETIME2FROMPARTS"
        | "TIMEFROMPARTS"
        | "DATETIMEOFFSETFROMPARTS" => {
            let (count, ty) = match n {
                "DATEFROMPARTS" => (3, SqlType::Date),
                "DATETIMEFROMPARTS" => (7, SqlType::DateTime),
                "SMALLDATETIMEFROMPARTS" => (5, SqlType::SmallDateTime),
                "DATETIME2FROMPARTS" => (
                    8,
                    SqlType::DateTime2(
                        args.get(7).and_then(const_int).unwrap_or(7).clamp(0, 7) as u8
                    ),
                ),
                "TIMEFROMPARTS" => (
                    5,
                    SqlType::Time(args.get(4).and_then(const_int).unwrap_or(7).clamp(0, 7) as u8),
                ),
                _ => (
                    10,
                    SqlType::DateTimeOffset(
                        args.get(9).and_then(const_int).unwrap_or(7).clamp(0, 7) as u8,
                    ),
                ),
            };
            need(n, args, count, count)?;
            let v = values(c, args, scope)?;
            let parts: Vec<String> = v.iter().map(int_arg).collect();
            typed(
                format!(
                    "__fromparts({}, {})",
                    quote_str(&n.to_ascii_lowercase()),
                    parts.join(", ")
                ),
                ty,
            )
        }
        "ISDATE" => {
            need(n, args, 1, 1)?;
            let v = to_text(&c.value(&args[0], scope)?);
            typed(format!("__isdate({})", v.sql), SqlType::Int).map(Typed::not_null)
        }
        "SWITCHOFFSET" | "TODATETIMEOFFSET" => {
            need(n, args, 2, 2)?;
            let d = c.value(&args[0], scope)?;
            let tz = c.value(&args[1], scope)?;
            let digits = match d.ty {
                SqlType::DateTimeOffset(s) | SqlType::DateTime2(s) | SqlType::Time(s) => s,
                SqlType::DateTime => 3,
                _ => 7,
            };
            let ty = SqlType::DateTimeOffset(digits);
            typed(
                format!(
                    "__conv(__{}({}, {}), {})",
                    n.to_ascii_lowercase(),
                    d.sql,
                    to_text(&tz).sql,
                    quote_str(&ty.type_name())
                ),
                ty,
            )
        }
        "DATETRUNC" => {
            need(n, args, 2, 2)?;
            let p = part_name(&args[0])?;
            let d = date_value(c, &args[1], scope)?;
            let ty = d.ty;
            typed(
                format!(
                    "__conv(__datetrunc({}, {}), {})",
                    quote_str(&p),
                    d.sql,
                    quote_str(&ty.type_name())
                ),
                ty,
            )
        }
        _ => return Ok(None),
    };
    t.map(Some)
}

/// The SQLite functions this family's rules emit, on each new connection.
pub(super) fn register(conn: &Connection, _clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
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
                return Ok(Sv::Text(crate::engine::convert::fmt_date(&out.date())));
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
        Ok(Some(crate::engine::convert::fmt_date(&last)))
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
            "datefromparts" => crate::engine::convert::fmt_date(&date(n[0], u(1)?, u(2)?)?),
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
                crate::engine::convert::fmt_time(&t)
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
    Ok(())
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
