//! Built-ins that choose among values: ISNULL, COALESCE, NULLIF, IIF,
//! CHOOSE, GREATEST/LEAST, ISNUMERIC; each result typed by data type
//! precedence as its page gives it.

use sqlparser::ast::Expr;

use super::super::operators::{comparison, unify};
use super::super::rules::{self};
use super::super::{convert_sql, Compiler, Scope, Typed};
use super::*;
use crate::engine::error::SqlError;
use crate::types::SqlType;

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::clock::Clock;
use crate::engine::textfns::text;

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let t = match n {
        "ISNULL" => {
            need(n, args, 2, 2)?;
            let v = values(c, args, scope)?;
            let ty = if v[0].null_literal {
                if v[1].null_literal {
                    SqlType::Int
                } else {
                    v[1].ty
                }
            } else {
                v[0].ty
            };
            rules::compatible(&v[1].ty, &ty)?;
            let mut t = Typed::new(
                format!(
                    "coalesce({}, {})",
                    convert_sql(&v[0], &ty),
                    convert_sql(&v[1], &ty)
                ),
                ty,
            );
            t.nullable = v[0].nullable && v[1].nullable;
            Ok(t)
        }
        "COALESCE" => {
            if args.len() < 2 {
                return Err(SqlError::new(
                    189,
                    1,
                    15,
                    "The coalesce function requires 2 to 2 arguments.",
                )
                .batch());
            }
            let v = values(c, args, scope)?;
            let refs: Vec<&Typed> = v.iter().collect();
            let ty = unify(&refs)?;
            let parts: Vec<String> = v.iter().map(|t| convert_sql(t, &ty)).collect();
            let mut t = Typed::new(format!("coalesce({})", parts.join(", ")), ty);
            t.nullable = v.iter().all(|x| x.nullable);
            Ok(t)
        }
        "NULLIF" => {
            need(n, args, 2, 2)?;
            let v = values(c, args, scope)?;
            let cmp = comparison(c, "=", &v[0], &v[1])?;
            typed(
                format!("CASE WHEN {cmp} THEN NULL ELSE {} END", v[0].sql),
                v[0].ty,
            )
        }
        "IIF" => {
            need(n, args, 3, 3)?;
            let cond = c.condition(&args[0], scope)?;
            let a = c.value(&args[1], scope)?;
            let b = c.value(&args[2], scope)?;
            let ty = unify(&[&a, &b])?;
            typed(
                format!(
                    "CASE WHEN {cond} THEN {} ELSE {} END",
                    convert_sql(&a, &ty),
                    convert_sql(&b, &ty)
                ),
                ty,
            )
        }
        "CHOOSE" => {
            if args.len() < 2 {
                return Err(arg_count(n, 2));
            }
            let idx = c.value(&args[0], scope)?;
            let v = values(c, &args[1..], scope)?;
            let refs: Vec<&Typed> = v.iter().collect();
            let ty = unify(&refs)?;
            let mut sql = format!("CASE {}", int_arg(&idx));
            for (i, t) in v.iter().enumerate() {
                sql.push_str(&format!(" WHEN {} THEN {}", i + 1, convert_sql(t, &ty)));
            }
            sql.push_str(" END");
            typed(sql, ty)
        }
        "GREATEST" | "LEAST" => {
            if args.is_empty() {
                return Err(arg_count(n, 1));
            }
            let v = values(c, args, scope)?;
            let refs: Vec<&Typed> = v.iter().collect();
            let ty = unify(&refs)?;
            // NULLs are ignored; SQLite's max()/min() would return NULL.
            let label = super::super::operators::unify_labels(&refs, "CASE")?;
            let mut acc = convert_sql(&v[0], &ty);
            for t in &v[1..] {
                let x = convert_sql(t, &ty);
                let mut a = Typed::new(acc.clone(), ty);
                let mut b = Typed::new(x.clone(), ty);
                a.coll = label;
                b.coll = label;
                let cmp = comparison(c, if n == "GREATEST" { ">=" } else { "<=" }, &a, &b)?;
                acc = format!("CASE WHEN {acc} IS NULL THEN {x} WHEN {x} IS NULL OR {cmp} THEN {acc} ELSE {x} END");
            }
            typed(acc, ty)
        }
        "ISNUMERIC" => {
            need(n, args, 1, 1)?;
            let v = c.value(&args[0], scope)?;
            let sql = if rules::is_numeric(&v.ty) {
                format!("CASE WHEN {} IS NULL THEN 0 ELSE 1 END", v.sql)
            } else {
                format!("__isnumeric({})", v.sql)
            };
            typed(sql, SqlType::Int).map(Typed::not_null)
        }
        _ => return Ok(None),
    };
    t.map(Some)
}

/// The SQLite functions this family's rules emit, on each new connection.
pub(super) fn register(conn: &Connection, _clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__isnumeric", 1, det, |ctx| {
        let Some(s) = text(ctx.get_raw(0)) else {
            return Ok(0i64);
        };
        let t = s.trim();
        let t = t.trim_start_matches(['$', '+', '-']).replace(',', "");
        Ok(i64::from(
            !t.is_empty() && t != "." && t.parse::<f64>().is_ok(),
        ))
    })?;
    Ok(())
}
