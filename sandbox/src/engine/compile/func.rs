//! Function calls: the arguments read from the AST, aggregates and window
//! functions (OVER, ORDER BY, frames), and a scalar call handed to its
//! family in `builtins/`, its string result labelled by collation
//! precedence.

use sqlparser::ast::{self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};

use super::builtins::{arg_count, to_text, unknown};
use super::operators::int_bits;
use super::rules;
use super::{convert_sql, Compiler, Label, Scope, Typed};
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

fn args_of(f: &ast::Function) -> Result<(Vec<Expr>, bool, bool, Vec<ast::OrderByExpr>), SqlError> {
    let mut exprs = Vec::new();
    let mut star = false;
    let mut distinct = false;
    let mut order = Vec::new();
    match &f.args {
        FunctionArguments::None => {}
        FunctionArguments::Subquery(_) => return Err(SqlError::syntax_near("SELECT")),
        FunctionArguments::List(l) => {
            distinct = matches!(
                l.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            for a in &l.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => exprs.push(e.clone()),
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                    other => return Err(SqlError::syntax_near(&other.to_string())),
                }
            }
            for c in &l.clauses {
                if let ast::FunctionArgumentClause::OrderBy(o) = c {
                    order.extend(o.iter().cloned());
                }
            }
        }
    }
    order.extend(f.within_group.iter().cloned());
    Ok((exprs, star, distinct, order))
}

/// A function call as written, with OVER, DISTINCT and WITHIN GROUP.
pub fn function(c: &Compiler<'_, '_>, f: &ast::Function, scope: &Scope) -> Result<Typed, SqlError> {
    let name = f
        .name
        .0
        .last()
        .map(|p| p.to_string())
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']' || c == '"')
        .to_ascii_uppercase();
    let (args, star, distinct, order) = args_of(f)?;
    let over = match &f.over {
        Some(ast::WindowType::WindowSpec(w)) => Some(window(c, w, scope)?),
        Some(ast::WindowType::NamedWindow(n)) => {
            return Err(SqlError::syntax_near(&n.value));
        }
        None => None,
    };
    if let Some(t) = aggregate(
        c,
        &name,
        &args,
        star,
        distinct,
        &order,
        over.as_deref(),
        scope,
    )? {
        return Ok(t);
    }
    if over.is_some() {
        return Err(SqlError::new(
            4108,
            1,
            15,
            "Windowed functions can only appear in the SELECT or ORDER BY clauses.",
        )
        .batch());
    }
    if distinct || star {
        return Err(SqlError::syntax_near(if star { "*" } else { "DISTINCT" }));
    }
    call(c, &name, &args, scope)
}

/// `OVER (PARTITION BY ... ORDER BY ... ROWS ...)` as SQLite text.
fn window(c: &Compiler<'_, '_>, w: &ast::WindowSpec, scope: &Scope) -> Result<String, SqlError> {
    let mut parts = Vec::new();
    if !w.partition_by.is_empty() {
        let ps: Vec<String> = w
            .partition_by
            .iter()
            .map(|e| c.value(e, scope).and_then(|t| sort_key(c, &t)))
            .collect::<Result<_, _>>()?;
        parts.push(format!("PARTITION BY {}", ps.join(", ")));
    }
    if !w.order_by.is_empty() {
        parts.push(format!("ORDER BY {}", order_items(c, &w.order_by, scope)?));
    }
    if let Some(frame) = &w.window_frame {
        parts.push(match &frame.end_bound {
            Some(end) => format!("{} BETWEEN {} AND {end}", frame.units, frame.start_bound),
            None => format!("{} {}", frame.units, frame.start_bound),
        });
    }
    Ok(format!("OVER ({})", parts.join(" ")))
}

/// A value as a sort or grouping key: strings under their collation.
pub fn sort_key(c: &Compiler<'_, '_>, t: &Typed) -> Result<String, SqlError> {
    if t.ty.is_string() {
        let coll = c.collation_of(t, "ORDER BY")?;
        Ok(crate::engine::collation::collate(&t.sql, &coll))
    } else {
        Ok(t.sql.clone())
    }
}

pub fn order_items(
    c: &Compiler<'_, '_>,
    items: &[ast::OrderByExpr],
    scope: &Scope,
) -> Result<String, SqlError> {
    let v: Vec<String> = items
        .iter()
        .map(|o| {
            let t = c.value(&o.expr, scope)?;
            let dir = match o.options.sort {
                Some(ast::OrderBySort::Desc) => " DESC",
                _ => "",
            };
            Ok(format!("{}{dir}", sort_key(c, &t)?))
        })
        .collect::<Result<_, SqlError>>()?;
    Ok(v.join(", "))
}

fn with_over(sql: String, over: Option<&str>) -> String {
    match over {
        Some(o) => format!("{sql} {o}"),
        None => sql,
    }
}

#[allow(clippy::too_many_arguments)]
fn aggregate(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    star: bool,
    distinct: bool,
    order: &[ast::OrderByExpr],
    over: Option<&str>,
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let d = if distinct { "DISTINCT " } else { "" };
    let one = || -> Result<Typed, SqlError> {
        match args {
            [a] => c.value(a, scope),
            _ => Err(arg_count(name, 1)),
        }
    };
    let t = match name {
        "COUNT" | "COUNT_BIG" => {
            let inner = if star {
                "*".to_string()
            } else {
                sort_key(c, &one()?)?
            };
            let ty = if name == "COUNT" {
                SqlType::Int
            } else {
                SqlType::BigInt
            };
            Typed::new(with_over(format!("count({d}{inner})"), over), ty).not_null()
        }
        "APPROX_COUNT_DISTINCT" => {
            let a = one()?;
            Typed::new(
                format!("count(DISTINCT {})", sort_key(c, &a)?),
                SqlType::BigInt,
            )
            .not_null()
        }
        "SUM" => {
            let a = one()?;
            let ty = rules::sum_type(&a.ty)?;
            let sql = match ty {
                SqlType::Int => format!(
                    "__iop('+', {}, 0, 32)",
                    with_over(format!("sum({d}{})", a.sql), over)
                ),
                SqlType::BigInt | SqlType::Float => with_over(format!("sum({d}{})", a.sql), over),
                SqlType::Decimal {
                    precision, scale, ..
                } => format!(
                    "__dop('+', {}, 0, {precision}, {scale}, 0)",
                    with_over(format!("__dsum({d}{})", a.sql), over)
                ),
                _ => format!(
                    "__dop('+', {}, 0, 19, 4, 1)",
                    with_over(format!("__dsum({d}{})", a.sql), over)
                ),
            };
            Typed::new(sql, ty)
        }
        "AVG" => {
            let a = one()?;
            let ty = rules::avg_type(&a.ty)?;
            let sum = |f: &str| with_over(format!("{f}({d}{})", a.sql), over);
            let count = with_over(format!("count({d}{})", a.sql), over);
            let sql = match ty {
                SqlType::Int | SqlType::BigInt => {
                    format!("__iop('/', {}, {count}, {})", sum("sum"), int_bits(&ty))
                }
                SqlType::Float => sum("avg"),
                SqlType::Decimal {
                    precision, scale, ..
                } => format!(
                    "__dop('/', {}, {count}, {precision}, {scale}, 0)",
                    sum("__dsum")
                ),
                _ => format!("__dop('/', {}, {count}, 19, 4, 1)", sum("__dsum")),
            };
            Typed::new(sql, ty)
        }
        "MIN" | "MAX" => {
            let a = one()?;
            if matches!(
                a.ty,
                SqlType::Bit | SqlType::UniqueIdentifier | SqlType::Xml
            ) && !matches!(a.ty, SqlType::UniqueIdentifier)
            {
                return Err(rules::aggregate_operand(&a.ty, &name.to_ascii_lowercase()));
            }
            let f = name.to_ascii_lowercase();
            Typed {
                sql: with_over(format!("{f}({d}{})", sort_key(c, &a)?), over),
                nullable: true,
                base: None,
                ..a
            }
        }
        "STDEV" | "STDEVP" | "VAR" | "VARP" => {
            let a = one()?;
            if !rules::is_numeric(&a.ty) {
                return Err(rules::aggregate_operand(&a.ty, &name.to_ascii_lowercase()));
            }
            Typed::new(
                with_over(
                    format!("__stat({}, '{}')", a.sql, name.to_ascii_lowercase()),
                    over,
                ),
                SqlType::Float,
            )
        }
        "STRING_AGG" => {
            let [x, sep] = args else {
                return Err(arg_count(name, 2));
            };
            let x = c.value(x, scope)?;
            let sep = c.value(sep, scope)?;
            // Return types: the STRING_AGG page's table.
            let ty = match x.ty {
                SqlType::NVarChar(Len::Max) => SqlType::NVarChar(Len::Max),
                SqlType::VarChar(Len::Max) => SqlType::VarChar(Len::Max),
                SqlType::VarChar(_) | SqlType::Char(_) => SqlType::VarChar(Len::N(8000)),
                _ => SqlType::NVarChar(Len::N(4000)),
            };
            let xs = to_text(&x).sql;
            let ord = if order.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {}", order_items(c, order, scope)?)
            };
            Typed::new(
                format!("group_concat({xs}, {}{ord})", to_text(&sep).sql),
                ty,
            )
        }
        "GROUPING" => Typed::new("0", SqlType::TinyInt).not_null(),
        _ => {
            if over.is_none() {
                return Ok(None);
            }
            window_only(c, name, args, over.unwrap_or_default(), scope)?
        }
    };
    Ok(Some(t))
}

fn window_only(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    over: &str,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    Ok(match name {
        "ROW_NUMBER" | "RANK" | "DENSE_RANK" => Typed::new(
            format!("{}() {over}", name.to_ascii_lowercase()),
            SqlType::BigInt,
        )
        .not_null(),
        "NTILE" => {
            let n = args.first().ok_or_else(|| arg_count(name, 1))?;
            let n = c.value(n, scope)?;
            Typed::new(format!("ntile({}) {over}", n.sql), SqlType::BigInt).not_null()
        }
        "PERCENT_RANK" | "CUME_DIST" => Typed::new(
            format!("{}() {over}", name.to_ascii_lowercase()),
            SqlType::Float,
        )
        .not_null(),
        "LAG" | "LEAD" => {
            let x = c.value(args.first().ok_or_else(|| arg_count(name, 1))?, scope)?;
            let n = match args.get(1) {
                Some(e) => c.value(e, scope)?.sql,
                None => "1".into(),
            };
            let dflt = match args.get(2) {
                Some(e) => convert_sql(&c.value(e, scope)?, &x.ty),
                None => "NULL".into(),
            };
            Typed::new(
                format!(
                    "{}({}, {n}, {dflt}) {over}",
                    name.to_ascii_lowercase(),
                    x.sql
                ),
                x.ty,
            )
        }
        "FIRST_VALUE" | "LAST_VALUE" => {
            let x = c.value(args.first().ok_or_else(|| arg_count(name, 1))?, scope)?;
            Typed::new(
                format!("{}({}) {over}", name.to_ascii_lowercase(), x.sql),
                x.ty,
            )
        }
        other => return Err(unknown(other)),
    })
}

/// A scalar function call; a string result is labelled by the collation
/// precedence page's "Functions and Collation": the functions that take a
/// string keep their string input's label, COALESCE, CONCAT, IIF and
/// CHOOSE combine their arguments', the others are coercible-default.
pub fn call(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let mut t = super::builtins::scalar(c, name, args, scope)?;
    if t.ty.is_string() {
        t.coll = result_label(c, name, args, scope)?;
    }
    Ok(t)
}

fn result_label(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Label, SqlError> {
    let upper = name.to_ascii_uppercase();
    let strings = |exprs: &[Expr]| -> Result<Vec<Typed>, SqlError> {
        Ok(exprs
            .iter()
            .map(|e| c.value(e, scope))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|t| t.ty.is_string())
            .collect())
    };
    let combined = |ts: Vec<Typed>| -> Result<Label, SqlError> {
        let refs: Vec<&Typed> = ts.iter().collect();
        super::operators::unify_labels(&refs, "CASE")
    };
    match upper.as_str() {
        "COALESCE" | "CONCAT" | "CONCAT_WS" | "GREATEST" | "LEAST" => combined(strings(args)?),
        "IIF" | "CHOOSE" => combined(strings(args.get(1..).unwrap_or(&[]))?),
        "ISNULL" | "NULLIF" | "UPPER" | "LOWER" | "LEFT" | "RIGHT" | "SUBSTRING" | "REPLACE"
        | "REVERSE" | "STUFF" | "LTRIM" | "RTRIM" | "TRIM" | "REPLICATE" | "TRANSLATE" => {
            Ok(strings(args.get(..1).unwrap_or(&[]))?
                .first()
                .map(|t| t.coll)
                .unwrap_or_default())
        }
        _ => Ok(Label::Default),
    }
}
