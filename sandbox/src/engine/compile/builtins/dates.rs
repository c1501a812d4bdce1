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
