//! Built-in functions: each one's return type as its learn.microsoft.com
//! page gives it (https://learn.microsoft.com/en-us/sql/t-sql/functions/<name>-transact-sql),
//! and the SQLite text that computes it. Aggregates and window functions
//! are here too. A function the sandbox does not have is error 195, as
//! SQL Server answers for a name it does not know.

use sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value as AstValue,
};

use super::operators::{arithmetic, comparison, int_bits, unify};
use super::rules::{self, ArithOp};
use super::{convert_sql, sql_string, Compiler, Label, Scope, Typed};
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

fn unknown(name: &str) -> SqlError {
    SqlError::new(
        195,
        10,
        15,
        format!("'{name}' is not a recognized built-in function name."),
    )
    .batch()
}

fn arg_count(name: &str, min: usize) -> SqlError {
    SqlError::new(
        174,
        1,
        15,
        format!("The {name} function requires {min} argument(s)."),
    )
    .batch()
}

/// A constant integer argument (a length, a style), when written as one.
fn const_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => const_int(expr).map(|v| -v),
        Expr::Nested(e) => const_int(e),
        _ => None,
    }
}

/// A datepart argument (`day`, `dd`, `'day'`).
fn part_name(e: &Expr) -> Result<String, SqlError> {
    let raw = match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::Value(v) => match &v.value {
            AstValue::SingleQuotedString(s) => s.clone(),
            _ => return Err(SqlError::syntax_near(&e.to_string())),
        },
        _ => return Err(SqlError::syntax_near(&e.to_string())),
    };
    Ok(raw.to_ascii_lowercase())
}

fn str_len(t: &SqlType) -> Option<u32> {
    match t {
        SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => Some(u32::from(*n)),
        SqlType::VarChar(Len::N(n))
        | SqlType::NVarChar(Len::N(n))
        | SqlType::VarBinary(Len::N(n)) => Some(u32::from(*n)),
        _ => None,
    }
}

/// The length a value has once converted to a string implicitly (CONCAT's
/// arguments): the string's own length, or the longest text of the type.
fn text_len(t: &Typed) -> Option<u32> {
    if t.null_literal {
        return Some(0);
    }
    Some(match t.ty {
        SqlType::Bit => 1,
        SqlType::TinyInt => 3,
        SqlType::SmallInt => 6,
        SqlType::Int => 12,
        SqlType::BigInt => 24,
        SqlType::Decimal { precision, .. } => u32::from(precision) + 2,
        SqlType::Money | SqlType::SmallMoney => 30,
        SqlType::Float | SqlType::Real => 30,
        SqlType::Date => 10,
        SqlType::Time(_) => 16,
        SqlType::DateTime | SqlType::SmallDateTime => 30,
        SqlType::DateTime2(_) => 27,
        SqlType::DateTimeOffset(_) => 34,
        SqlType::UniqueIdentifier => 36,
        SqlType::Xml => return None,
        ref s => return str_len(s),
    })
}

/// A string type of the same kind as `like` with length `n` (or max).
fn string_like(like: &SqlType, n: Option<u32>) -> SqlType {
    let unicode = like.is_unicode();
    let limit = if unicode { 4000 } else { 8000 };
    let len = match n {
        Some(n) if n <= limit => Len::N(n.max(1) as u16),
        _ => Len::Max,
    };
    if like.is_binary() {
        SqlType::VarBinary(len)
    } else if unicode {
        SqlType::NVarChar(len)
    } else {
        SqlType::VarChar(len)
    }
}

/// The value of `t` as text, for functions that take strings: CAST's
/// conversion, with the type's default style.
pub fn to_text(t: &Typed) -> Typed {
    if t.ty.is_string() || t.null_literal {
        return t.clone();
    }
    let to = if t.ty.is_unicode() {
        SqlType::NVarChar(Len::Max)
    } else {
        string_like(&SqlType::VarChar(Len::N(1)), text_len(t))
    };
    Typed {
        sql: styled(t, &to, None),
        ty: to,
        ..t.clone()
    }
}

/// `__conv` with the source type, so dates, money and floats format with
/// their default (or the given) CONVERT style.
pub fn styled(t: &Typed, to: &SqlType, style: Option<&str>) -> String {
    format!(
        "__conv({}, {}, {}, {})",
        t.sql,
        quote_str(&to.type_name()),
        style.unwrap_or("NULL"),
        quote_str(&t.ty.type_name())
    )
}

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

fn values(c: &Compiler<'_, '_>, args: &[Expr], scope: &Scope) -> Result<Vec<Typed>, SqlError> {
    args.iter().map(|a| c.value(a, scope)).collect()
}

fn need(name: &str, args: &[Expr], min: usize, max: usize) -> Result<(), SqlError> {
    if args.len() < min || args.len() > max {
        return Err(SqlError::new(
            174,
            1,
            15,
            format!(
                "The {} function requires {} argument(s).",
                name.to_ascii_lowercase(),
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                }
            ),
        )
        .batch());
    }
    Ok(())
}

fn int_arg(t: &Typed) -> String {
    if rules::is_integer(&t.ty) || t.ty == SqlType::Bit {
        t.sql.clone()
    } else {
        convert_sql(t, &SqlType::BigInt)
    }
}

/// Fixed-type result helper.
fn typed(sql: String, ty: SqlType) -> Result<Typed, SqlError> {
    Ok(Typed::new(sql, ty))
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
    let mut t = call_inner(c, name, args, scope)?;
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

fn call_inner(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let upper = name.to_ascii_uppercase();
    let n = upper.as_str();
    let nv128 = SqlType::NVarChar(Len::N(128));
    match n {
        // --- system and session ---------------------------------------------------
        "GETDATE" | "CURRENT_TIMESTAMP" => {
            typed("__getdate()".into(), SqlType::DateTime).map(Typed::not_null)
        }
        "GETUTCDATE" => typed("__getutcdate()".into(), SqlType::DateTime).map(Typed::not_null),
        "SYSDATETIME" => {
            typed("__sysdatetime()".into(), SqlType::DateTime2(7)).map(Typed::not_null)
        }
        "SYSUTCDATETIME" => {
            typed("__sysutcdatetime()".into(), SqlType::DateTime2(7)).map(Typed::not_null)
        }
        "SYSDATETIMEOFFSET" => {
            typed("__sysdatetimeoffset()".into(), SqlType::DateTimeOffset(7)).map(Typed::not_null)
        }
        "CURRENT_DATE" => {
            typed("substr(__sysdatetime(), 1, 10)".into(), SqlType::Date).map(Typed::not_null)
        }
        "NEWID" => typed("__newid()".into(), SqlType::UniqueIdentifier).map(Typed::not_null),
        "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" | "SYSTEM_USER" if args.is_empty() => {
            typed(sql_string(c.ctx.login), nv128).map(Typed::not_null)
        }
        "USER_NAME" | "CURRENT_USER" | "SESSION_USER" | "USER" => {
            typed("'dbo'".into(), nv128).map(Typed::not_null)
        }
        "HOST_NAME" => typed("'bridge-sandbox'".into(), nv128),
        // SUSER_ID(login): the login's principal id, NULL when there is none.
        "SUSER_ID" => {
            need(n, args, 0, 1)?;
            let sql = match args.first() {
                Some(a) => {
                    let v = to_text(&c.value(a, scope)?);
                    format!(
                        "(SELECT CASE WHEN {v} = {me} COLLATE NOCASE THEN 1 ELSE (SELECT principal_id FROM __sb_logins WHERE name = {v}) END)",
                        v = v.sql,
                        me = sql_string(c.ctx.login)
                    )
                }
                None => "1".into(),
            };
            typed(sql, SqlType::Int)
        }
        // The error a CATCH block handles; NULL outside one.
        "ERROR_NUMBER" | "ERROR_SEVERITY" | "ERROR_STATE" | "ERROR_LINE" => {
            let v = c.ctx.caught.as_ref().map(|e| match n {
                "ERROR_NUMBER" => i64::from(e.number),
                "ERROR_SEVERITY" => i64::from(e.class),
                "ERROR_STATE" => i64::from(e.state),
                _ => 1,
            });
            typed(
                v.map(|v| v.to_string()).unwrap_or_else(|| "NULL".into()),
                SqlType::Int,
            )
        }
        "ERROR_MESSAGE" => typed(
            c.ctx
                .caught
                .as_ref()
                .map(|e| sql_string(&e.message))
                .unwrap_or_else(|| "NULL".into()),
            SqlType::NVarChar(Len::N(4000)),
        ),
        "ERROR_PROCEDURE" => typed("NULL".into(), nv128),
        "APP_NAME" => typed(sql_string(c.ctx.app_name), nv128),
        "DB_NAME" if args.is_empty() => typed(sql_string(c.ctx.db), nv128),
        // DB_NAME(database_id), DB_ID(name): learn.microsoft.com/sql/t-sql/functions/db-name-transact-sql
        "DB_NAME" => {
            need(n, args, 1, 1)?;
            let id = c.value(&args[0], scope)?;
            typed(
                format!(
                    "(SELECT name FROM __sb_databases WHERE database_id = {})",
                    int_arg(&id)
                ),
                nv128,
            )
        }
        "DB_ID" if args.len() == 1 => {
            let name = to_text(&c.value(&args[0], scope)?).sql;
            typed(
                format!("(SELECT database_id FROM __sb_databases WHERE name = {name})"),
                SqlType::SmallInt,
            )
        }
        "DB_ID" if args.is_empty() => typed(
            format!(
                "(SELECT database_id FROM __sb_databases WHERE name = {})",
                quote_str(c.ctx.db)
            ),
            SqlType::SmallInt,
        ),
        "SCOPE_IDENTITY" | "@@IDENTITY" => typed(
            "last_insert_rowid()".into(),
            SqlType::Decimal {
                precision: 38,
                scale: 0,
                numeric: true,
            },
        ),
        "OBJECT_ID" => {
            need(n, args, 1, 2)?;
            let text = match &args[0] {
                Expr::Value(v) => match &v.value {
                    AstValue::SingleQuotedString(s) | AstValue::NationalStringLiteral(s) => {
                        s.clone()
                    }
                    _ => return Err(unknown(n)),
                },
                _ => {
                    let t = c.value(&args[0], scope)?;
                    return typed(format!("__object_id({})", t.sql), SqlType::Int);
                }
            };
            typed(object_id_sql(c, &text), SqlType::Int)
        }
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-current-version-transact-sql
        "CHANGE_TRACKING_CURRENT_VERSION" => {
            need(n, args, 0, 0)?;
            typed(
                format!(
                    "({})",
                    crate::engine::change_tracking::current_version_sql(c.ctx.db)
                ),
                SqlType::BigInt,
            )
        }
        // NULL when the database does not track or the table is not tracked.
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-min-valid-version-transact-sql
        "CHANGE_TRACKING_MIN_VALID_VERSION" => {
            need(n, args, 1, 1)?;
            let id = c.value(&args[0], scope)?;
            typed(
                format!(
                    "(SELECT min_valid_version FROM __sb_ct_tables WHERE object_id = {} AND db = {})",
                    int_arg(&id),
                    quote_str(c.ctx.db)
                ),
                SqlType::BigInt,
            )
        }
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-is-column-in-mask-transact-sql
        "CHANGE_TRACKING_IS_COLUMN_IN_MASK" => {
            need(n, args, 2, 2)?;
            let id = c.value(&args[0], scope)?;
            let mask = c.value(&args[1], scope)?;
            typed(
                format!("__ct_in_mask({}, {})", int_arg(&id), mask.sql),
                SqlType::Bit,
            )
        }
        // COLUMNPROPERTY(object_id, column, property): the column facts clients ask for.
        // learn.microsoft.com/sql/t-sql/functions/columnproperty-transact-sql
        "COLUMNPROPERTY" => {
            need(n, args, 3, 3)?;
            let id = c.value(&args[0], scope)?;
            let col = to_text(&c.value(&args[1], scope)?).sql;
            let prop = to_text(&c.value(&args[2], scope)?).sql;
            typed(
                format!(
                    "(SELECT CASE upper({prop}) WHEN 'COLUMNID' THEN ordinal WHEN 'ALLOWSNULL' THEN nullable \
                       WHEN 'ISIDENTITY' THEN is_identity WHEN 'ISCOMPUTED' THEN computed_sql IS NOT NULL \
                       WHEN 'PRECISION' THEN __type_part(type, 'sys_precision') WHEN 'SCALE' THEN __type_part(type, 'sys_scale') END \
                     FROM __sb_columns WHERE object_id = {} AND name = {col})",
                    int_arg(&id)
                ),
                SqlType::Int,
            )
        }
        // DATABASEPROPERTYEX(database, property): sql_variant in SQL Server,
        // nvarchar(128) here; the properties a client asks about (NULL for others).
        // learn.microsoft.com/sql/t-sql/functions/databasepropertyex-transact-sql
        "DATABASEPROPERTYEX" => {
            need(n, args, 2, 2)?;
            let db = to_text(&c.value(&args[0], scope)?).sql;
            let prop = to_text(&c.value(&args[1], scope)?).sql;
            typed(
                format!(
                    "(SELECT CASE upper({prop}) \
                       WHEN 'COLLATION' THEN coalesce(collation, 'SQL_Latin1_General_CP1_CI_AS') \
                       WHEN 'STATUS' THEN 'ONLINE' WHEN 'UPDATEABILITY' THEN 'READ_WRITE' \
                       WHEN 'USERACCESS' THEN 'MULTI_USER' WHEN 'RECOVERY' THEN 'SIMPLE' \
                       WHEN 'ISAUTOCLOSE' THEN '0' WHEN 'ISAUTOSHRINK' THEN '0' END \
                     FROM __sb_databases WHERE name = {db})"
                ),
                nv128,
            )
        }
        // SERVERPROPERTY(property): sql_variant in SQL Server, nvarchar(128) here.
        // learn.microsoft.com/sql/t-sql/functions/serverproperty-transact-sql
        "SERVERPROPERTY" => {
            need(n, args, 1, 1)?;
            let prop = to_text(&c.value(&args[0], scope)?).sql;
            typed(
                format!(
                    "(CASE upper({prop}) \
                       WHEN 'COLLATION' THEN 'SQL_Latin1_General_CP1_CI_AS' WHEN 'SQLCHARSETNAME' THEN 'iso_1' \
                       WHEN 'SQLSORTORDERNAME' THEN 'nocase_iso' WHEN 'SQLSORTORDER' THEN '52' \
                       WHEN 'LCID' THEN '1033' WHEN 'PRODUCTVERSION' THEN '16.0.1000.6' \
                       WHEN 'PRODUCTLEVEL' THEN 'RTM' WHEN 'EDITION' THEN 'Developer Edition (64-bit)' \
                       WHEN 'ENGINEEDITION' THEN '3' WHEN 'SERVERNAME' THEN 'bridge-sandbox' \
                       WHEN 'MACHINENAME' THEN 'bridge-sandbox' END)"
                ),
                nv128,
            )
        }
        // OBJECT_NAME(object_id [, database_id]): in the current database by default.
        // learn.microsoft.com/sql/t-sql/functions/object-name-transact-sql
        "OBJECT_NAME" => {
            need(n, args, 1, 2)?;
            let id = c.value(&args[0], scope)?;
            let db = match args.get(1) {
                Some(a) => format!(
                    "(SELECT name FROM __sb_databases WHERE database_id = {})",
                    int_arg(&c.value(a, scope)?)
                ),
                None => quote_str(c.ctx.db),
            };
            typed(
                format!(
                    "(SELECT name FROM ({ALL_OBJECTS}) WHERE object_id = {} AND db = {db})",
                    int_arg(&id)
                ),
                nv128,
            )
        }
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
            let label = super::operators::unify_labels(&refs, "CASE")?;
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
        // --- strings --------------------------------------------------------------
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
        // --- dates ------------------------------------------------------------
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
        // --- math -------------------------------------------------------------
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
        _ => Err(unknown(name)),
    }
}

/// ROUND/FLOOR/CEILING/SIGN through `__round`, per argument category.
fn round_sql(x: &str, len: &str, mode: &str, ty: &SqlType) -> String {
    let (kind, a, s) = match ty {
        SqlType::Float => ("f", 0, 0),
        SqlType::Real => ("r", 0, 0),
        SqlType::Decimal {
            precision, scale, ..
        } => ("d", u32::from(*precision), u32::from(*scale)),
        SqlType::Money | SqlType::SmallMoney => ("m", 19, 4),
        t => ("i", u32::from(int_bits(t)), 0),
    };
    format!("__round({x}, {len}, {mode}, '{kind}', {a}, {s})")
}

/// A date/time argument: strings are read as datetime2(7) (what DATEPART
/// and friends accept), date and time types as they are.
fn date_value(c: &Compiler<'_, '_>, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
    let t = c.value(e, scope)?;
    if rules::is_temporal(&t.ty) || t.null_literal {
        return Ok(t);
    }
    if t.ty.is_string() {
        return Ok(Typed {
            sql: convert_sql(&t, &SqlType::DateTimeOffset(7))
                .replace("'datetimeoffset(7)'", "'datetime2(7)'"),
            ty: SqlType::DateTime2(7),
            ..t
        });
    }
    if matches!(
        t.ty,
        SqlType::Int
            | SqlType::SmallInt
            | SqlType::TinyInt
            | SqlType::BigInt
            | SqlType::Decimal { .. }
            | SqlType::Float
            | SqlType::Real
    ) {
        return Ok(Typed {
            sql: convert_sql(&t, &SqlType::DateTime),
            ty: SqlType::DateTime,
            ..t
        });
    }
    Err(rules::clash(&t.ty, &SqlType::Date))
}

/// A numeric argument: strings convert to float, as the math functions'
/// pages say they do.
fn numeric_value(c: &Compiler<'_, '_>, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
    let t = c.value(e, scope)?;
    if rules::is_numeric(&t.ty) {
        return Ok(t);
    }
    if t.null_literal {
        return Ok(Typed {
            ty: SqlType::Int,
            ..t
        });
    }
    if t.ty.is_string() {
        let sql = convert_sql(&t, &SqlType::Float);
        return Ok(Typed {
            sql,
            ty: SqlType::Float,
            ..t
        });
    }
    Err(SqlError::new(
        8116,
        1,
        16,
        format!(
            "Argument data type {} is invalid for argument 1 of the function.",
            t.ty.base_name()
        ),
    )
    .batch())
}

fn object_id_sql(c: &Compiler<'_, '_>, text: &str) -> String {
    let name = match crate::engine::parse::parse_object_name(text) {
        Ok(n) => n,
        Err(_) => return "NULL".into(),
    };
    match c.ctx.table(&name) {
        Ok(meta) if !meta.temp => format!(
            "(SELECT object_id FROM __sb_tables WHERE db = {} AND schema = {} AND name = {})",
            quote_str(&meta.db),
            quote_str(&meta.schema),
            quote_str(&meta.name)
        ),
        Ok(_) => "-1".into(),
        Err(_) => match c.ctx.resolve(&name) {
            Ok(crate::engine::context::Resolved::Table { db, schema, name }) => format!(
                "(SELECT object_id FROM ({ALL_OBJECTS}) WHERE db = {} AND schema = {} AND name = {})",
                quote_str(&db),
                quote_str(&schema),
                quote_str(&name)
            ),
            _ => "NULL".into(),
        },
    }
}

/// Every object with an id, for OBJECT_ID and OBJECT_NAME (sys.objects).
const ALL_OBJECTS: &str = "SELECT db, schema, name, object_id FROM __sb_tables \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_views \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_procedures \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_constraints \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_triggers";
