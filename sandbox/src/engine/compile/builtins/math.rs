//! Mathematical built-ins: ABS, CEILING/FLOOR/ROUND/SIGN, POWER, SQRT and
//! the trigonometric functions, DEGREES/RADIANS, PI, RAND; each result type
//! as its page gives it (an integer stays an integer, a decimal keeps its
//! scale).

use sqlparser::ast::Expr;

use super::super::operators::{arithmetic, comparison};
use super::super::rules::{self, ArithOp};
use super::super::{convert_sql, Compiler, Scope, Typed};
use super::*;
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::SqlType;

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::clock::Clock;

use crate::engine::textfns::number;

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let t = match n {
        "ABS" => {
            need(n, args, 1, 1)?;
            let v = numeric_value(c, &args[0], scope)?;
            let zero = Typed::new("0", v.ty).not_null();
            let neg = arithmetic(ArithOp::Sub, &zero, &v)?;
            let is_neg = comparison(c, "<", &v, &zero)?;
            typed(
                format!("CASE WHEN {is_neg} THEN {} ELSE {} END", neg.sql, v.sql),
                if v.ty == SqlType::Bit {
                    SqlType::Int
                } else {
                    v.ty
                },
            )
        }
        "CEILING" | "FLOOR" | "ROUND" | "SIGN" => {
            let (min, max) = if n == "ROUND" { (2, 3) } else { (1, 1) };
            need(n, args, min, max)?;
            let v = numeric_value(c, &args[0], scope)?;
            let ty = match (n, v.ty) {
                ("ROUND" | "CEILING" | "FLOOR" | "SIGN", SqlType::TinyInt | SqlType::SmallInt) => {
                    SqlType::Int
                }
                (
                    "CEILING" | "FLOOR",
                    SqlType::Decimal {
                        precision, numeric, ..
                    },
                ) => SqlType::Decimal {
                    precision,
                    scale: 0,
                    numeric,
                },
                ("ROUND" | "CEILING" | "FLOOR" | "SIGN", SqlType::Real) => SqlType::Float,
                (_, SqlType::Bit) => SqlType::Int,
                (_, SqlType::SmallMoney) => SqlType::Money,
                (_, t) => t,
            };
            let (len, mode) = match n {
                "ROUND" => (
                    int_arg(&c.value(&args[1], scope)?),
                    match args.get(2) {
                        Some(f) => format!(
                            "CASE WHEN coalesce({}, 0) = 0 THEN 0 ELSE 1 END",
                            int_arg(&c.value(f, scope)?)
                        ),
                        None => "0".into(),
                    },
                ),
                "FLOOR" => ("0".into(), "2".into()),
                "CEILING" => ("0".into(), "3".into()),
                _ => ("0".into(), "4".into()),
            };
            typed(round_sql(&v.sql, &len, &mode, &ty), ty)
        }
        "POWER" => {
            need(n, args, 2, 2)?;
            let x = c.value(&args[0], scope)?;
            let y = c.value(&args[1], scope)?;
            // POWER's return types: the type of float_expression, decimal(38, s)
            // for decimals, float for strings and bit.
            let ty = match x.ty {
                SqlType::Decimal { scale, numeric, .. } => SqlType::Decimal {
                    precision: 38,
                    scale,
                    numeric,
                },
                SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
                SqlType::BigInt => SqlType::BigInt,
                SqlType::Money | SqlType::SmallMoney => SqlType::Money,
                _ => SqlType::Float,
            };
            let f = format!(
                "__math('power', {}, {})",
                convert_sql(&x, &SqlType::Float),
                convert_sql(&y, &SqlType::Float)
            );
            let sql = if rules::is_integer(&ty) {
                format!(
                    "__conv(__math('trunc', {f}, NULL), {})",
                    quote_str(&ty.type_name())
                )
            } else if ty == SqlType::Float {
                f
            } else {
                format!("__conv({f}, {})", quote_str(&ty.type_name()))
            };
            typed(sql, ty)
        }
        "SQRT" | "EXP" | "LOG10" | "SIN" | "COS" | "TAN" | "ASIN" | "ACOS" | "ATAN" | "COT"
        | "SQUARE" | "LOG" | "ATN2" => {
            let two = matches!(n, "ATN2") || (n == "LOG" && args.len() == 2);
            need(n, args, 1, if n == "LOG" || n == "ATN2" { 2 } else { 1 })?;
            let x = c.value(&args[0], scope)?;
            let y = if two {
                convert_sql(&c.value(&args[1], scope)?, &SqlType::Float)
            } else {
                "NULL".into()
            };
            typed(
                format!(
                    "__math({}, {}, {y})",
                    quote_str(&n.to_ascii_lowercase()),
                    convert_sql(&x, &SqlType::Float)
                ),
                SqlType::Float,
            )
        }
        "DEGREES" | "RADIANS" => {
            need(n, args, 1, 1)?;
            let x = c.value(&args[0], scope)?;
            let f = format!(
                "__math({}, {}, NULL)",
                quote_str(&n.to_ascii_lowercase()),
                convert_sql(&x, &SqlType::Float)
            );
            let ty = if rules::is_numeric(&x.ty) {
                x.ty
            } else {
                SqlType::Float
            };
            typed(convert_sql(&Typed::new(f, SqlType::Float), &ty), ty)
        }
        "PI" => typed("3.141592653589793".into(), SqlType::Float).map(Typed::not_null),
        "RAND" => typed(
            "(abs(random()) / 9223372036854775808.0)".into(),
            SqlType::Float,
        ),
        _ => return Ok(None),
    };
    t.map(Some)
}

/// The SQLite functions this family's rules emit, on each new connection.
pub(super) fn register(conn: &Connection, _clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__math", 3, det, |ctx| {
        let name: String = ctx.get(0)?;
        let x = number(ctx.get_raw(1));
        let y = number(ctx.get_raw(2));
        let Some(x) = x else { return Ok(None) };
        let invalid = || {
            SqlError::new(3623, 1, 16, "An invalid floating point operation occurred.")
                .to_fn_error()
        };
        let r = match name.as_str() {
            "power" => x.powf(y.unwrap_or(1.0)),
            "trunc" => x.trunc(),
            "sqrt" if x < 0.0 => return Err(invalid()),
            "sqrt" => x.sqrt(),
            "exp" => x.exp(),
            "log" if x <= 0.0 => return Err(invalid()),
            "log" => match y {
                Some(b) => x.ln() / b.ln(),
                None => x.ln(),
            },
            "log10" if x <= 0.0 => return Err(invalid()),
            "log10" => x.log10(),
            "sin" => x.sin(),
            "cos" => x.cos(),
            "tan" => x.tan(),
            "cot" => 1.0 / x.tan(),
            "asin" if x.abs() > 1.0 => return Err(invalid()),
            "asin" => x.asin(),
            "acos" if x.abs() > 1.0 => return Err(invalid()),
            "acos" => x.acos(),
            "atan" => x.atan(),
            "atn2" => x.atan2(y.unwrap_or(1.0)),
            "square" => x * x,
            "degrees" => x.to_degrees(),
            "radians" => x.to_radians(),
            _ => return Err(invalid()),
        };
        if !r.is_finite() {
            return Err(SqlError::overflow("float").to_fn_error());
        }
        Ok(Some(r))
    })?;
    // __round(x, length, mode, kind, bits_or_p, s): kind 'i' integers
    // (bits), 'd' decimal(p,s), 'm' money, 'f' float, 'r' real.
    conn.create_scalar_function("__round", 6, det, |ctx| crate::engine::numeric::round(ctx))?;
    Ok(())
}
