//! CAST and CONVERT between text and other types with SQL Server's styles
//! (https://learn.microsoft.com/en-us/sql/t-sql/functions/cast-and-convert-transact-sql):
//! the default style of each source type when it becomes text (datetime
//! `mon dd yyyy hh:miAM`, money with two decimals, float in at most six
//! digits), the numbered date and time styles both ways, and binary styles.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rusqlite::types::ValueRef;

use super::convert::{convert, Overlong};
use super::error::SqlError;
use crate::types::{Decimal, SqlType, Value};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn frac(ns: u32, digits: u8) -> String {
    if digits == 0 {
        return String::new();
    }
    let s = format!("{:09}", ns);
    format!(".{}", &s[..usize::from(digits.min(9))])
}

fn hour12(h: u32) -> (u32, &'static str) {
    let ampm = if h < 12 { "AM" } else { "PM" };
    let h = match h % 12 {
        0 => 12,
        x => x,
    };
    (h, ampm)
}

/// The fractional digits a type shows in its default text form.
fn digits_of(t: &SqlType) -> u8 {
    match t {
        SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => *s,
        SqlType::DateTime => 3,
        _ => 0,
    }
}

/// A date/time value as text in `style` (None: the type's default).
fn format_temporal(v: &Value, from: &SqlType, style: Option<i64>) -> Result<String, SqlError> {
    let (dt, offset): (NaiveDateTime, Option<i32>) = match v {
        Value::Date(d) => (d.and_hms_opt(0, 0, 0).unwrap_or_default(), None),
        Value::Time(t) => (
            NaiveDate::from_ymd_opt(1900, 1, 1)
                .unwrap_or_default()
                .and_time(*t),
            None,
        ),
        Value::DateTime(dt) => (*dt, None),
        Value::DateTimeOffset(dt) => (dt.naive_local(), Some(dt.offset().local_minus_utc() / 60)),
        _ => return Err(SqlError::datetime_conversion()),
    };
    let d = dt.date();
    let (y, m, day) = (d.year(), d.month(), d.day());
    let (hh, mi, ss) = (dt.hour(), dt.minute(), dt.second());
    let ns = dt.nanosecond();
    let ms = ns / 1_000_000;
    let digits = digits_of(from);
    let date_only = matches!(from, SqlType::Date);
    let time_only = matches!(from, SqlType::Time(_));
    let off = |o: Option<i32>| match o {
        Some(o) => {
            let sign = if o < 0 { '-' } else { '+' };
            format!(" {sign}{:02}:{:02}", o.abs() / 60, o.abs() % 60)
        }
        None => String::new(),
    };
    let mon = MONTHS[(m - 1) as usize];
    let yy = y % 100;
    let (h12, ampm) = hour12(hh);
    let style = match style {
        None | Some(0) | Some(100) => {
            if matches!(from, SqlType::DateTime | SqlType::SmallDateTime) {
                return Ok(format!("{mon} {day:>2} {y} {h12:>2}:{mi:02}{ampm}"));
            }
            // date, time, datetime2, datetimeoffset: ISO forms.
            let date = format!("{y:04}-{m:02}-{day:02}");
            let time = format!("{hh:02}:{mi:02}:{ss:02}{}", frac(ns, digits));
            return Ok(if date_only {
                date
            } else if time_only {
                time
            } else {
                format!("{date} {time}{}", off(offset))
            });
        }
        Some(s) => s,
    };
    let time24 = || format!("{hh:02}:{mi:02}:{ss:02}");
    let text = match style {
        1 => format!("{m:02}/{day:02}/{yy:02}"),
        101 => format!("{m:02}/{day:02}/{y:04}"),
        2 => format!("{yy:02}.{m:02}.{day:02}"),
        102 => format!("{y:04}.{m:02}.{day:02}"),
        3 => format!("{day:02}/{m:02}/{yy:02}"),
        103 => format!("{day:02}/{m:02}/{y:04}"),
        4 => format!("{day:02}.{m:02}.{yy:02}"),
        104 => format!("{day:02}.{m:02}.{y:04}"),
        5 => format!("{day:02}-{m:02}-{yy:02}"),
        105 => format!("{day:02}-{m:02}-{y:04}"),
        6 => format!("{day:02} {mon} {yy:02}"),
        106 => format!("{day:02} {mon} {y:04}"),
        7 => format!("{mon} {day:02}, {yy:02}"),
        107 => format!("{mon} {day:02}, {y:04}"),
        8 | 24 | 108 => time24(),
        9 | 109 => format!("{mon} {day:>2} {y} {h12:>2}:{mi:02}:{ss:02}:{ms:03}{ampm}"),
        10 => format!("{m:02}-{day:02}-{yy:02}"),
        110 => format!("{m:02}-{day:02}-{y:04}"),
        11 => format!("{yy:02}/{m:02}/{day:02}"),
        111 => format!("{y:04}/{m:02}/{day:02}"),
        12 => format!("{yy:02}{m:02}{day:02}"),
        112 => format!("{y:04}{m:02}{day:02}"),
        13 | 113 => format!("{day:02} {mon} {y:04} {}:{ms:03}", time24()),
        14 | 114 => format!("{}:{ms:03}", time24()),
        20 | 120 => format!("{y:04}-{m:02}-{day:02} {}", time24()),
        21 | 25 | 121 => {
            let d = if matches!(from, SqlType::DateTime | SqlType::SmallDateTime) {
                3
            } else {
                digits
            };
            format!("{y:04}-{m:02}-{day:02} {}{}", time24(), frac(ns, d))
        }
        22 => format!("{m:02}/{day:02}/{yy:02} {h12:>2}:{mi:02}:{ss:02} {ampm}"),
        23 => format!("{y:04}-{m:02}-{day:02}"),
        126 | 127 => {
            let f = if matches!(from, SqlType::DateTime | SqlType::SmallDateTime) {
                if ms == 0 {
                    String::new()
                } else {
                    format!(".{ms:03}")
                }
            } else {
                frac(ns, digits)
            };
            let z = if style == 127 && offset.is_some() {
                "Z"
            } else {
                ""
            };
            format!("{y:04}-{m:02}-{day:02}T{}{f}{z}", time24())
        }
        other => {
            return Err(SqlError::new(
                281,
                1,
                16,
                format!("{other} is not a valid style number when converting from {} to a character string.", from.base_name()),
            ))
        }
    };
    Ok(text)
}

/// A float as CONVERT style 0 prints it: `%g` with six significant digits
/// and a three-digit exponent (`1.23457e+006`); style 1: 8 digits, style 2:
/// 16, always in scientific notation; style 3: 17 digits, lossless.
pub fn format_float_style(f: f64, style: i64) -> String {
    if f == 0.0 {
        return if style == 0 {
            "0".into()
        } else {
            "0.0000000e+000".into()
        };
    }
    let sci = |digits: usize| -> String {
        let s = format!("{:.*e}", digits - 1, f);
        // Rust: 1.2345678e6 → mantissa and exponent; SQL Server pads the exponent to 3.
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = exp.parse().unwrap_or(0);
        format!("{mant}e{}{:03}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    match style {
        1 => sci(8),
        2 => sci(16),
        3 => {
            let s = format!("{:.16e}", f);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = exp.parse().unwrap_or(0);
            format!("{mant}E{}{:03}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        _ => {
            // %g: exponent form when exp < -4 or exp >= precision.
            let exp = f.abs().log10().floor() as i32;
            let rounded: f64 = format!("{:.5e}", f).parse().unwrap_or(f);
            let exp = if rounded.abs() >= 10f64.powi(exp + 1) {
                exp + 1
            } else {
                exp
            };
            if !(-4..6).contains(&exp) {
                let s = sci(6);
                // %g drops trailing zeros in the mantissa.
                let (mant, e) = s.split_once('e').unwrap_or((&s, ""));
                let mant = if mant.contains('.') {
                    mant.trim_end_matches('0').trim_end_matches('.')
                } else {
                    mant
                };
                format!("{mant}e{e}")
            } else {
                let decimals = (5 - exp).max(0) as usize;
                let s = format!("{:.*}", decimals, f);
                if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    s
                }
            }
        }
    }
}

fn money_text(d: &Decimal, style: i64) -> String {
    let places = if style == 2 { 4 } else { 2 };
    let r = d.round_to(places).unwrap_or(*d);
    let text = r.to_string();
    if style != 1 {
        return text;
    }
    let (sign, body) = match text.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", text.as_str()),
    };
    let (int, fr) = body.split_once('.').unwrap_or((body, ""));
    let grouped = super::textfns::group(int, ',');
    format!("{sign}{grouped}.{fr}")
}

/// A value of type `from` as text, in `style`.
pub fn to_text(
    v: ValueRef<'_>,
    from: &SqlType,
    style: Option<i64>,
) -> Result<Option<String>, SqlError> {
    if let ValueRef::Null = v {
        return Ok(None);
    }
    let value = convert(v, from, Overlong::Truncate)?;
    Ok(Some(match (&value, from) {
        (Value::Decimal(d), SqlType::Money | SqlType::SmallMoney) => {
            money_text(d, style.unwrap_or(0))
        }
        (Value::Decimal(d), SqlType::Decimal { scale, .. }) => {
            d.rescale(*scale).unwrap_or(*d).to_string()
        }
        (Value::Float(f), SqlType::Real) => {
            format_float_style(f64::from(*f as f32), style.unwrap_or(0))
        }
        (Value::Float(f), _) => format_float_style(*f, style.unwrap_or(0)),
        (Value::Bit(b), _) => (if *b { "1" } else { "0" }).to_string(),
        (Value::Int(i), _) => i.to_string(),
        (Value::Binary(b), _) => match style.unwrap_or(0) {
            1 => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
            ),
            2 => b.iter().map(|x| format!("{x:02X}")).collect(),
            _ => b.iter().map(|&c| c as char).collect(),
        },
        (Value::Guid(g), _) => g.to_string().to_ascii_uppercase(),
        (Value::String(s), _) => s.clone(),
        (Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::DateTimeOffset(_), _) => {
            format_temporal(&value, from, style)?
        }
        (Value::Null, _) => return Ok(None),
        (Value::Decimal(d), _) => d.to_string(),
    }))
}

/// CAST/CONVERT of a stored value of type `from` to `to`, in `style`: the
/// conversion chart's rules that depend on the source type — its default
/// text style, decimals stored as text being numbers, money rounding to an
/// integer where decimal truncates, `*` for an integer too long for char.
/// The bytes of an integer type (bit is not one).
fn int_width(t: &SqlType) -> Option<usize> {
    match t {
        SqlType::TinyInt => Some(1),
        SqlType::SmallInt => Some(2),
        SqlType::Int => Some(4),
        SqlType::BigInt => Some(8),
        _ => None,
    }
}

pub fn convert_from(
    v: ValueRef<'_>,
    from: Option<&SqlType>,
    to: &SqlType,
    style: Option<i64>,
) -> Result<Value, SqlError> {
    if let ValueRef::Null = v {
        return Ok(Value::Null);
    }
    if let Some(f) = from {
        if (to.is_string() || *to == SqlType::Xml) && !f.is_string() && *f != SqlType::Xml {
            let text = to_text(v, f, style)?.unwrap_or_default();
            let room = match to {
                SqlType::Char(n) | SqlType::NChar(n) => Some(usize::from(*n)),
                SqlType::VarChar(crate::types::Len::N(n))
                | SqlType::NVarChar(crate::types::Len::N(n)) => Some(usize::from(*n)),
                _ => None,
            };
            if room.is_some_and(|n| text.chars().count() > n) {
                // The chart: integers into char/varchar give '*', numbers
                // into anything else too short overflow; dates truncate.
                let integer = matches!(
                    f,
                    SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt
                );
                if integer && !to.is_unicode() {
                    return convert(ValueRef::Text(b"*"), to, Overlong::Truncate);
                }
                if crate::engine::compile::rules::is_numeric(f) {
                    return Err(SqlError::overflow(to.base_name()));
                }
            }
            return convert(ValueRef::Text(text.as_bytes()), to, Overlong::Truncate);
        }
        if let (ValueRef::Integer(i), Some(width)) = (v, int_width(f)) {
            if to.is_binary() {
                // The integer's own bytes (its type's width, most significant
                // first), padded or cut on the left.
                let bytes = i.to_be_bytes();
                return crate::engine::convert::int_bytes_to_binary(&bytes[8 - width..], to)
                    .map(Value::Binary);
            }
        }
        let money = matches!(f, SqlType::Money | SqlType::SmallMoney);
        let exact = money || matches!(f, SqlType::Decimal { .. });
        if exact && !to.is_string() {
            let d = match convert(v, f, Overlong::Truncate)? {
                Value::Decimal(d) => d,
                other => return Ok(other),
            };
            if matches!(
                to,
                SqlType::TinyInt
                    | SqlType::SmallInt
                    | SqlType::Int
                    | SqlType::BigInt
                    | SqlType::Bit
            ) {
                // decimal → int truncates; money → int rounds (the CAST page).
                let whole = if money {
                    d.round_to(0).map(|x| x.mantissa)
                } else {
                    d.mantissa.checked_div(10i128.pow(u32::from(d.scale)))
                };
                let i = whole
                    .and_then(|w| i64::try_from(w).ok())
                    .ok_or_else(|| SqlError::overflow(to.base_name()))?;
                if *to == SqlType::Bit {
                    return Ok(Value::Bit(i != 0));
                }
                return convert(ValueRef::Integer(i), to, Overlong::Truncate);
            }
            if matches!(to, SqlType::Float | SqlType::Real) {
                return convert(ValueRef::Real(d.to_f64()), to, Overlong::Truncate);
            }
            let text = d.to_string();
            return convert(ValueRef::Text(text.as_bytes()), to, Overlong::Truncate);
        }
    }
    if let (Some(st), ValueRef::Text(t)) = (style, &v) {
        let s = String::from_utf8_lossy(t);
        if crate::engine::compile::rules::is_temporal(to) {
            if let Some(iso) = parse_date_style(&s, st) {
                return convert(ValueRef::Text(iso.as_bytes()), to, Overlong::Truncate);
            }
        }
        if to.is_binary() && (st == 1 || st == 2) {
            let hex = if st == 1 {
                s.trim()
                    .trim_start_matches("0x")
                    .trim_start_matches("0X")
                    .to_string()
            } else {
                s.trim().to_string()
            };
            let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect();
            return match bytes {
                Some(b) if hex.len() % 2 == 0 => {
                    convert(ValueRef::Blob(&b), to, Overlong::Truncate)
                }
                _ => Err(SqlError::new(
                    8114,
                    5,
                    16,
                    "Error converting data type varchar to varbinary.",
                )),
            };
        }
    }
    convert(v, to, Overlong::Truncate)
}

/// Reads text in a numbered date style (103 `dd/mm/yyyy`, 101, 112, ...)
/// into the ISO form the engine's conversion reads.
pub fn parse_date_style(s: &str, style: i64) -> Option<String> {
    let s = s.trim();
    let (date, rest) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let parts: Vec<&str> = date.split(['/', '.', '-']).collect();
    let full_year = |y: &str| -> Option<i32> {
        let v: i32 = y.parse().ok()?;
        Some(if y.len() <= 2 {
            if v < 50 {
                2000 + v
            } else {
                1900 + v
            }
        } else {
            v
        })
    };
    let (y, m, d) = match (style % 100, parts.as_slice()) {
        (1 | 10, [m, d, y]) => (full_year(y)?, m.parse().ok()?, d.parse().ok()?),
        (3..=5, [d, m, y]) => (full_year(y)?, m.parse().ok()?, d.parse().ok()?),
        (2 | 11, [y, m, d]) => (full_year(y)?, m.parse().ok()?, d.parse().ok()?),
        (12, [x]) if x.len() == 8 || x.len() == 6 => {
            let (y, rest) = x.split_at(x.len() - 4);
            (
                full_year(y)?,
                rest[..2].parse().ok()?,
                rest[2..].parse().ok()?,
            )
        }
        (20 | 21 | 23 | 25 | 26 | 27, [y, m, d]) => {
            (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
        }
        _ => return None,
    };
    let date: NaiveDate = NaiveDate::from_ymd_opt(y, m, d)?;
    Some(format!("{}{}", date.format("%Y-%m-%d"), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn float_style_zero_is_printf_g() {
        assert_eq!(format_float_style(1234567.0, 0), "1.23457e+006");
        assert_eq!(format_float_style(2.5, 0), "2.5");
        assert_eq!(format_float_style(123456.0, 0), "123456");
        assert_eq!(format_float_style(0.0001, 0), "0.0001");
        assert_eq!(format_float_style(0.00001, 0), "1e-005");
        assert_eq!(format_float_style(1.5e10, 0), "1.5e+010");
    }

    #[test]
    fn datetime_default_and_numbered_styles() {
        let dt = NaiveDate::from_ymd_opt(2024, 1, 31)
            .unwrap()
            .and_hms_milli_opt(13, 5, 9, 997)
            .unwrap();
        let v = Value::DateTime(dt);
        assert_eq!(
            format_temporal(&v, &SqlType::DateTime, None).unwrap(),
            "Jan 31 2024  1:05PM"
        );
        assert_eq!(
            format_temporal(&v, &SqlType::DateTime, Some(121)).unwrap(),
            "2024-01-31 13:05:09.997"
        );
        assert_eq!(
            format_temporal(&v, &SqlType::DateTime, Some(103)).unwrap(),
            "31/01/2024"
        );
        assert_eq!(
            format_temporal(&v, &SqlType::DateTime, Some(126)).unwrap(),
            "2024-01-31T13:05:09.997"
        );
        assert_eq!(
            format_temporal(&v, &SqlType::DateTime2(3), None).unwrap(),
            "2024-01-31 13:05:09.997"
        );
        assert_eq!(
            parse_date_style("31/01/2024", 103).as_deref(),
            Some("2024-01-31")
        );
        assert_eq!(
            parse_date_style("20240131", 112).as_deref(),
            Some("2024-01-31")
        );
    }

    #[test]
    fn money_styles() {
        let d: Decimal = "1234567.5".parse().unwrap();
        assert_eq!(money_text(&d, 0), "1234567.50");
        assert_eq!(money_text(&d, 1), "1,234,567.50");
        assert_eq!(money_text(&d, 2), "1234567.5000");
    }
}
