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

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let _nv128 = SqlType::NVarChar(Len::N(128));
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
            let base = str_len(&v.ty);
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
            let out = match (len, str_len(&v.ty)) {
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
            let len = match (str_len(&v.ty), str_len(&r.ty)) {
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
