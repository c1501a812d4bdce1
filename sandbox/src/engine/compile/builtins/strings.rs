//! String built-ins: LEN, DATALENGTH, UPPER/LOWER/TRIM..., SUBSTRING,
//! LEFT/RIGHT, REPLACE, REPLICATE, SPACE, STUFF, CHARINDEX, PATINDEX,
//! CONCAT(_WS), FORMAT, STR, UNICODE/ASCII, CHAR/NCHAR, QUOTENAME,
//! STRING_ESCAPE; lengths derived from their arguments' as each page says.

use sqlparser::ast::Expr;

use super::super::{convert_sql, Compiler, Scope, Typed};
use super::*;
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use crate::clock::Clock;
use crate::engine::functions::{text as utf8_text, type_arg};
use crate::engine::textfns::{
    ci_find, format_date, format_number, number, patindex, str_fn, substring_range, text,
};

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let t = match n {
        "LEN" => {
            need(n, args, 1, 1)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let ty = if v.ty.is_max() {
                SqlType::BigInt
            } else {
                SqlType::Int
            };
            typed(format!("__len({})", v.sql), ty)
        }
        "DATALENGTH" => {
            need(n, args, 1, 1)?;
            let v = c.value(&args[0], scope)?;
            let ty = if v.ty.is_max() {
                SqlType::BigInt
            } else {
                SqlType::Int
            };
            typed(
                format!("__datalength({}, {})", v.sql, quote_str(&v.ty.type_name())),
                ty,
            )
        }
        "UPPER" | "LOWER" | "LTRIM" | "RTRIM" | "TRIM" | "REVERSE" => {
            need(n, args, 1, 2)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let chars = match args.get(1) {
                Some(a) => to_text(&c.value(a, scope)?).sql,
                None => "NULL".into(),
            };
            let f = n.to_ascii_lowercase();
            let ty = match v.ty {
                SqlType::Char(l) => SqlType::VarChar(Len::N(l)),
                SqlType::NChar(l) => SqlType::NVarChar(Len::N(l)),
                t => t,
            };
            typed(format!("__str_{f}({}, {chars})", v.sql), ty)
        }
        "SUBSTRING" => {
            need(n, args, 3, 3)?;
            let v = c.value(&args[0], scope)?;
            let v = if v.ty.is_binary() { v } else { to_text(&v) };
            let s = c.value(&args[1], scope)?;
            let l = c.value(&args[2], scope)?;
            let len = const_int(&args[2]).map(|x| x.max(0) as u32);
            let base = super::super::rules::len_units(&v.ty);
            let out = match (len, base) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (None, b) => b,
                (Some(a), None) => Some(a),
            };
            typed(
                format!("__substring({}, {}, {})", v.sql, int_arg(&s), int_arg(&l)),
                string_like(&v.ty, out),
            )
        }
        "LEFT" | "RIGHT" => {
            need(n, args, 2, 2)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let k = c.value(&args[1], scope)?;
            let len = const_int(&args[1]).map(|x| x.max(0) as u32);
            let out = match (len, super::super::rules::len_units(&v.ty)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (None, b) => b,
                (Some(a), None) => Some(a),
            };
            typed(
                format!("__{}({}, {})", n.to_ascii_lowercase(), v.sql, int_arg(&k)),
                string_like(&v.ty, out),
            )
        }
        "REPLACE" => {
            need(n, args, 3, 3)?;
            let v = values(c, args, scope)?;
            let v: Vec<Typed> = v.iter().map(to_text).collect();
            let unicode = v.iter().any(|t| t.ty.is_unicode());
            let max = v[0].ty.is_max();
            let ty = match (unicode, max) {
                (true, true) => SqlType::NVarChar(Len::Max),
                (false, true) => SqlType::VarChar(Len::Max),
                (true, false) => SqlType::NVarChar(Len::N(4000)),
                (false, false) => SqlType::VarChar(Len::N(8000)),
            };
            typed(
                format!("__str_replace({}, {}, {})", v[0].sql, v[1].sql, v[2].sql),
                ty,
            )
        }
        "REPLICATE" => {
            need(n, args, 2, 2)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let k = c.value(&args[1], scope)?;
            let ty = string_like(&v.ty, if v.ty.is_max() { None } else { Some(8000) });
            typed(format!("__replicate({}, {})", v.sql, int_arg(&k)), ty)
        }
        "SPACE" => {
            need(n, args, 1, 1)?;
            let k = c.value(&args[0], scope)?;
            typed(
                format!("__replicate(' ', {})", int_arg(&k)),
                SqlType::VarChar(Len::N(8000)),
            )
        }
        "STUFF" => {
            need(n, args, 4, 4)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let s = c.value(&args[1], scope)?;
            let l = c.value(&args[2], scope)?;
            let r = to_text(&c.value(&args[3], scope)?);
            let len = match (
                super::super::rules::len_units(&v.ty),
                super::super::rules::len_units(&r.ty),
            ) {
                (Some(a), Some(b)) => {
                    let cut = const_int(&args[2]).unwrap_or(0).max(0) as u32;
                    Some(a.saturating_sub(cut) + b)
                }
                _ => None,
            };
            let like = if r.ty.is_unicode() { r.ty } else { v.ty };
            typed(
                format!(
                    "__stuff({}, {}, {}, {})",
                    v.sql,
                    int_arg(&s),
                    int_arg(&l),
                    r.sql
                ),
                string_like(&like, len),
            )
        }
        "CHARINDEX" => {
            need(n, args, 2, 3)?;
            let a = to_text(&c.value(&args[0], scope)?);
            let b = to_text(&c.value(&args[1], scope)?);
            let start = match args.get(2) {
                Some(s) => int_arg(&c.value(s, scope)?),
                None => "1".into(),
            };
            let ty = if b.ty.is_max() {
                SqlType::BigInt
            } else {
                SqlType::Int
            };
            typed(format!("__charindex({}, {}, {start})", a.sql, b.sql), ty)
        }
        "PATINDEX" => {
            need(n, args, 2, 2)?;
            let a = to_text(&c.value(&args[0], scope)?);
            let b = to_text(&c.value(&args[1], scope)?);
            let ty = if b.ty.is_max() {
                SqlType::BigInt
            } else {
                SqlType::Int
            };
            typed(format!("__patindex({}, {})", a.sql, b.sql), ty)
        }
        "CONCAT" | "CONCAT_WS" => {
            let min = if n == "CONCAT" { 2 } else { 3 };
            if args.len() < min {
                return Err(SqlError::new(
                    189,
                    1,
                    15,
                    format!(
                        "The {} function requires {min} to 254 arguments.",
                        n.to_ascii_lowercase()
                    ),
                )
                .batch());
            }
            let v = values(c, args, scope)?;
            let unicode = v.iter().any(|t| t.ty.is_unicode());
            let lens: Vec<Option<u32>> = v.iter().map(text_len).collect();
            let total = if n == "CONCAT" {
                lens.iter().try_fold(0u32, |a, l| l.map(|x| a + x))
            } else {
                let sep = lens[0];
                lens[1..]
                    .iter()
                    .try_fold(0u32, |a, l| l.map(|x| a + x))
                    .and_then(|s| sep.map(|p| s + p * (lens.len() as u32 - 2)))
            };
            let kind = if unicode {
                SqlType::NVarChar(Len::N(1))
            } else {
                SqlType::VarChar(Len::N(1))
            };
            let ty = string_like(&kind, total);
            let parts: Vec<String> = v.iter().map(|t| to_text(t).sql).collect();
            let f = if n == "CONCAT" {
                "__concat"
            } else {
                "__concat_ws"
            };
            typed(format!("{f}({})", parts.join(", ")), ty).map(Typed::not_null)
        }
        "FORMAT" => {
            need(n, args, 2, 3)?;
            let v = c.value(&args[0], scope)?;
            let f = to_text(&c.value(&args[1], scope)?);
            let culture = match args.get(2) {
                Some(a) => to_text(&c.value(a, scope)?).sql,
                None => "NULL".into(),
            };
            typed(
                format!(
                    "__format({}, {}, {culture}, {})",
                    v.sql,
                    f.sql,
                    quote_str(&v.ty.type_name())
                ),
                SqlType::NVarChar(Len::N(4000)),
            )
        }
        "STR" => {
            need(n, args, 1, 3)?;
            let v = c.value(&args[0], scope)?;
            let len = match args.get(1) {
                Some(a) => int_arg(&c.value(a, scope)?),
                None => "10".into(),
            };
            let dec = match args.get(2) {
                Some(a) => int_arg(&c.value(a, scope)?),
                None => "0".into(),
            };
            let out = args.get(1).and_then(const_int).unwrap_or(10).clamp(1, 8000) as u32;
            typed(
                format!(
                    "__strfn({}, {len}, {dec})",
                    convert_sql(&v, &SqlType::Float)
                ),
                SqlType::VarChar(Len::N(out as u16)),
            )
        }
        "UNICODE" | "ASCII" => {
            need(n, args, 1, 1)?;
            let v = to_text(&c.value(&args[0], scope)?);
            typed(
                format!("__{}({})", n.to_ascii_lowercase(), v.sql),
                SqlType::Int,
            )
        }
        "CHAR" | "NCHAR" => {
            need(n, args, 1, 1)?;
            let v = c.value(&args[0], scope)?;
            let ty = if n == "CHAR" {
                SqlType::Char(1)
            } else {
                SqlType::NChar(1)
            };
            typed(
                format!("__chr({}, {})", int_arg(&v), i32::from(n == "CHAR")),
                ty,
            )
        }
        "QUOTENAME" => {
            need(n, args, 1, 2)?;
            let v = to_text(&c.value(&args[0], scope)?);
            let q = match args.get(1) {
                Some(a) => to_text(&c.value(a, scope)?).sql,
                None => "'['".into(),
            };
            typed(
                format!("__quotename({}, {q})", v.sql),
                SqlType::NVarChar(Len::N(258)),
            )
        }
        "STRING_ESCAPE" => {
            need(n, args, 2, 2)?;
            let v = to_text(&c.value(&args[0], scope)?);
            typed(
                format!("__json_escape({})", v.sql),
                SqlType::NVarChar(Len::Max),
            )
        }
        _ => return Ok(None),
    };
    t.map(Some)
}

/// The SQLite functions this family's rules emit, on each new connection.
pub(super) fn register(conn: &Connection, _clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // LEN ignores trailing blanks; DATALENGTH counts bytes as SQL Server stores them.
    conn.create_scalar_function("__len", 1, det, |ctx| {
        Ok(utf8_text(ctx.get_raw(0)).map(|s| s.trim_end_matches(' ').chars().count() as i64))
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
        Ok(
            utf8_text(ctx.get_raw(0))
                .map(|s| s.chars().take(n.max(0) as usize).collect::<String>()),
        )
    })?;
    conn.create_scalar_function("__right", 2, det, |ctx| {
        let n: i64 = ctx.get(1)?;
        Ok(utf8_text(ctx.get_raw(0)).map(|s| {
            let c: Vec<char> = s.chars().collect();
            let k = (n.max(0) as usize).min(c.len());
            c[c.len() - k..].iter().collect::<String>()
        }))
    })?;
    conn.create_scalar_function("__patindex", 2, det, |ctx| {
        let (Some(p), Some(v)) = (text(ctx.get_raw(0)), text(ctx.get_raw(1))) else {
            return Ok(None);
        };
        Ok(Some(patindex(&p, &v)))
    })?;
    conn.create_scalar_function("__substring", 3, det, |ctx| {
        let (start, length): (Option<i64>, Option<i64>) = (ctx.get(1)?, ctx.get(2)?);
        let (Some(start), Some(length)) = (start, length) else {
            return Ok(Sv::Null);
        };
        if length < 0 {
            return Err(SqlError::new(
                537,
                3,
                16,
                "Invalid length parameter passed to the LEFT or SUBSTRING function.",
            )
            .to_fn_error());
        }
        Ok(match ctx.get_raw(0) {
            ValueRef::Null => Sv::Null,
            ValueRef::Blob(b) => {
                let (s, e) = substring_range(b.len(), start, length);
                Sv::Blob(b[s..e].to_vec())
            }
            v => {
                let chars: Vec<char> = text(v).unwrap_or_default().chars().collect();
                let (s, e) = substring_range(chars.len(), start, length);
                Sv::Text(chars[s..e].iter().collect())
            }
        })
    })?;
    for (name, f) in [
        ("__str_upper", 0u8),
        ("__str_lower", 1),
        ("__str_ltrim", 2),
        ("__str_rtrim", 3),
        ("__str_trim", 4),
        ("__str_reverse", 5),
    ] {
        conn.create_scalar_function(name, 2, det, move |ctx| {
            let Some(s) = text(ctx.get_raw(0)) else {
                return Ok(None);
            };
            let set: Vec<char> = text(ctx.get_raw(1))
                .map(|c| c.chars().collect())
                .unwrap_or_else(|| vec![' ']);
            let strip = |c: char| set.contains(&c);
            Ok(Some(match f {
                0 => s.to_uppercase(),
                1 => s.to_lowercase(),
                2 => s.trim_start_matches(strip).to_string(),
                3 => s.trim_end_matches(strip).to_string(),
                4 => s.trim_matches(strip).to_string(),
                _ => s.chars().rev().collect(),
            }))
        })?;
    }
    conn.create_scalar_function("__str_replace", 3, det, |ctx| {
        let (Some(s), Some(find), Some(rep)) = (
            text(ctx.get_raw(0)),
            text(ctx.get_raw(1)),
            text(ctx.get_raw(2)),
        ) else {
            return Ok(None);
        };
        let hay: Vec<char> = s.chars().collect();
        let needle: Vec<char> = find.chars().collect();
        if needle.is_empty() {
            return Ok(Some(s));
        }
        let mut out = String::new();
        let mut i = 0;
        while i < hay.len() {
            match ci_find(&hay, &needle, i) {
                Some(p) => {
                    out.extend(&hay[i..p]);
                    out.push_str(&rep);
                    i = p + needle.len();
                }
                None => {
                    out.extend(&hay[i..]);
                    break;
                }
            }
        }
        Ok(Some(out))
    })?;
    conn.create_scalar_function("__charindex", 3, det, |ctx| {
        let (Some(find), Some(s)) = (text(ctx.get_raw(0)), text(ctx.get_raw(1))) else {
            return Ok(None);
        };
        let start: i64 = ctx.get::<Option<i64>>(2)?.unwrap_or(1).max(1);
        let hay: Vec<char> = s.chars().collect();
        let needle: Vec<char> = find.chars().collect();
        Ok(Some(
            ci_find(&hay, &needle, (start - 1) as usize)
                .map(|p| p as i64 + 1)
                .unwrap_or(0),
        ))
    })?;
    conn.create_scalar_function("__replicate", 2, det, |ctx| {
        let (Some(s), Some(n)) = (text(ctx.get_raw(0)), ctx.get::<Option<i64>>(1)?) else {
            return Ok(None);
        };
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(s.repeat(
            n.min(100_000_000 / s.len().max(1) as i64) as usize
        )))
    })?;
    conn.create_scalar_function("__stuff", 4, det, |ctx| {
        let Some(s) = text(ctx.get_raw(0)) else {
            return Ok(None);
        };
        let (Some(start), Some(len)) = (ctx.get::<Option<i64>>(1)?, ctx.get::<Option<i64>>(2)?)
        else {
            return Ok(None);
        };
        let rep = text(ctx.get_raw(3)).unwrap_or_default();
        let chars: Vec<char> = s.chars().collect();
        if start < 1 || start as usize > chars.len() || len < 0 {
            return Ok(None);
        }
        let a = (start - 1) as usize;
        let b = (a + len as usize).min(chars.len());
        let mut out: String = chars[..a].iter().collect();
        out.push_str(&rep);
        out.extend(&chars[b..]);
        Ok(Some(out))
    })?;
    conn.create_scalar_function("__concat", -1, det, |ctx| {
        let mut out = String::new();
        for i in 0..ctx.len() {
            if let Some(s) = text(ctx.get_raw(i)) {
                out.push_str(&s);
            }
        }
        Ok(out)
    })?;
    conn.create_scalar_function("__concat_ws", -1, det, |ctx| {
        let sep = text(ctx.get_raw(0)).unwrap_or_default();
        let parts: Vec<String> = (1..ctx.len())
            .filter_map(|i| text(ctx.get_raw(i)))
            .collect();
        Ok(parts.join(&sep))
    })?;
    conn.create_scalar_function("__format", 4, det, |ctx| {
        let Some(fmt) = text(ctx.get_raw(1)) else {
            return Ok(None);
        };
        let culture = text(ctx.get_raw(2));
        let ty = text(ctx.get_raw(3)).unwrap_or_default();
        let ty = crate::engine::typename::parse_sql_type(&ty);
        let v = ctx.get_raw(0);
        if let ValueRef::Null = v {
            return Ok(None);
        }
        if let Some(t) = ty.filter(crate::engine::compile::rules::is_temporal) {
            let value =
                crate::engine::convert::convert(v, &t, crate::engine::convert::Overlong::Truncate)
                    .map_err(|e| e.to_fn_error())?;
            let dt = match value {
                crate::types::Value::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
                crate::types::Value::DateTime(dt) => dt,
                crate::types::Value::DateTimeOffset(dt) => dt.naive_local(),
                crate::types::Value::Time(t) => chrono::NaiveDate::from_ymd_opt(1900, 1, 1)
                    .unwrap_or_default()
                    .and_time(t),
                _ => return Ok(None),
            };
            return Ok(Some(format_date(dt, &fmt)));
        }
        let exact = match v {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f)
                if ty.is_some_and(|t| crate::engine::compile::rules::is_exact(&t)) =>
            {
                Some(format!("{f}"))
            }
            _ => None,
        };
        let x = match v {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(t) => String::from_utf8_lossy(t)
                .trim()
                .parse()
                .unwrap_or(f64::NAN),
            _ => return Ok(None),
        };
        Ok(format_number(x, exact.as_deref(), &fmt, culture.as_deref()))
    })?;
    conn.create_scalar_function("__strfn", 3, det, |ctx| {
        let (Some(f), Some(len), Some(dec)) = (
            number(ctx.get_raw(0)),
            ctx.get::<Option<i64>>(1)?,
            ctx.get::<Option<i64>>(2)?,
        ) else {
            return Ok(None);
        };
        Ok(str_fn(f, len, dec))
    })?;
    conn.create_scalar_function("__unicode", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0))
            .and_then(|s| s.chars().next())
            .map(|c| c as i64))
    })?;
    conn.create_scalar_function("__ascii", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0))
            .and_then(|s| s.chars().next())
            .map(|c| {
                let mut buf = [0u8; 4];
                let (b, _, _) = encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut buf));
                i64::from(b.first().copied().unwrap_or(b'?'))
            }))
    })?;
    conn.create_scalar_function("__chr", 2, det, |ctx| {
        let Some(n) = ctx.get::<Option<i64>>(0)? else {
            return Ok(None);
        };
        let single_byte: bool = ctx.get(1)?;
        if single_byte {
            if !(0..=255).contains(&n) {
                return Ok(None);
            }
            let byte = [n as u8];
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&byte);
            return Ok(Some(s.into_owned()));
        }
        Ok(u32::try_from(n)
            .ok()
            .and_then(char::from_u32)
            .map(|c| c.to_string()))
    })?;
    conn.create_scalar_function("__quotename", 2, det, |ctx| {
        let Some(s) = text(ctx.get_raw(0)) else {
            return Ok(None);
        };
        if s.chars().count() > 128 {
            return Ok(None);
        }
        let q = text(ctx.get_raw(1)).unwrap_or_else(|| "[".into());
        Ok(match q.as_str() {
            "[" | "]" => Some(format!("[{}]", s.replace(']', "]]"))),
            "\"" => Some(format!("\"{}\"", s.replace('"', "\"\""))),
            "'" => Some(format!("'{}'", s.replace('\'', "''"))),
            "(" | ")" => Some(format!("({s})")),
            "<" | ">" => Some(format!("<{s}>")),
            "{" | "}" => Some(format!("{{{s}}}")),
            "`" => Some(format!("`{s}`")),
            _ => None,
        })
    })?;
    conn.create_scalar_function("__json_escape", 1, det, |ctx| {
        Ok(text(ctx.get_raw(0)).map(|s| {
            let j = serde_json::to_string(&s).unwrap_or_default();
            j[1..j.len() - 1].to_string()
        }))
    })?;
    Ok(())
}
