//! Expressions: literals, columns, variables, operators, predicates, CASE
//! and its shorthands, CAST/CONVERT, subqueries. Each case derives the
//! SQL Server type first, then emits SQLite text that computes that type's
//! value (`numeric.rs` for arithmetic, `__conv` for conversions, the TSQL
//! collation for string comparisons).

use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType, Expr, UnaryOperator, Value as AstValue,
};

use super::operators::{
    arithmetic, collated, compare_type, comparison, exact_compare, int_bits, unify, unify_labels,
};
use super::rules::{self, ArithOp};
use super::{convert_sql, sql_string, Compiler, Label, Scope, Typed};
use crate::engine::catalog::quote_str;
use crate::engine::collation::{self};
use crate::engine::error::SqlError;
use crate::engine::typename::parse_sql_type;
use crate::types::{Len, SqlType};

pub fn compile(c: &Compiler<'_, '_>, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
    match e {
        Expr::Nested(inner) => {
            let mut t = compile(c, inner, scope)?;
            t.sql = format!("({})", t.sql);
            Ok(t)
        }
        Expr::Value(v) => literal(&v.value, false),
        Expr::Identifier(id) => identifier(c, &id.value, id.quote_style.is_some(), scope),
        Expr::CompoundIdentifier(parts) => {
            let names: Vec<String> = parts.iter().map(|p| p.value.clone()).collect();
            column(names, scope)
        }
        Expr::UnaryOp { op, expr } => unary(c, *op, expr, scope),
        Expr::BinaryOp { left, op, right } => binary(c, left, op, right, scope),
        Expr::IsNull(inner) => {
            let t = c.value(inner, scope)?;
            Ok(Typed::predicate(format!("({} IS NULL)", t.sql)))
        }
        Expr::IsNotNull(inner) => {
            let t = c.value(inner, scope)?;
            Ok(Typed::predicate(format!("({} IS NOT NULL)", t.sql)))
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => in_list(c, expr, list, *negated, scope),
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => {
            let a = c.value(expr, scope)?;
            let sub = c.query(subquery, scope)?;
            if sub.columns.len() != 1 {
                return Err(one_column_error());
            }
            let bt = sub.columns[0].sql_type;
            let t = compare_type(&a, &Typed::new("", bt))?;
            let coll =
                collation::for_operation(a.coll, sub.labels[0], c.default_collation(), "equal to")?;
            let lhs = collated(&convert_sql(&a, &t), &t, &coll);
            let inner = Typed::new(super::scope::col_sql("__in", &sub.sql_names[0]), bt);
            Ok(Typed::predicate(format!(
                "({lhs} {}IN (SELECT {} FROM ({}) AS \"__in\"))",
                if *negated { "NOT " } else { "" },
                convert_sql(&inner, &t),
                sub.sql
            )))
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let a = c.value(expr, scope)?;
            let lo = c.value(low, scope)?;
            let hi = c.value(high, scope)?;
            let ge = comparison(c, ">=", &a, &lo)?;
            let le = comparison(c, "<=", &a, &hi)?;
            Ok(Typed::predicate(format!(
                "({}({} AND {}))",
                if *negated { "NOT " } else { "" },
                ge,
                le
            )))
        }
        Expr::Like {
            negated,
            expr,
            pattern,
            escape_char,
            any,
        } => {
            if *any {
                return Err(SqlError::syntax_near("ANY"));
            }
            let a = as_string(c.value(expr, scope)?);
            let p = as_string(c.value(pattern, scope)?);
            let esc = match escape_char {
                Some(v) => c.value(v, scope)?.sql,
                None => "NULL".into(),
            };
            // LIKE is collation sensitive (collation precedence page).
            let coll = collation::for_operation(a.coll, p.coll, c.default_collation(), "like")?;
            Ok(Typed::predicate(format!(
                "({}__like({}, {}, {esc}, '{}'))",
                if *negated { "NOT " } else { "" },
                a.sql,
                p.sql,
                collation::sqlite_name(&coll)
            )))
        }
        Expr::Exists { subquery, negated } => {
            let sub = c.query(subquery, scope)?;
            Ok(Typed::predicate(format!(
                "({}EXISTS ({}))",
                if *negated { "NOT " } else { "" },
                sub.sql
            )))
        }
        Expr::Subquery(q) => {
            let sub = c.query(q, scope)?;
            if sub.columns.len() != 1 {
                return Err(one_column_error());
            }
            let mut t = Typed::new(format!("({})", sub.sql), sub.columns[0].sql_type);
            t.nullable = true;
            Ok(t)
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => case(
            c,
            operand.as_deref(),
            conditions,
            else_result.as_deref(),
            scope,
        ),
        Expr::Cast {
            kind,
            expr,
            data_type,
            format,
            ..
        } => {
            if format.is_some() {
                return Err(SqlError::syntax_near("FORMAT"));
            }
            let v = c.value(expr, scope)?;
            let ty = cast_type_of(data_type)?;
            cast(
                v,
                ty,
                None,
                matches!(kind, CastKind::TryCast | CastKind::SafeCast),
            )
        }
        Expr::Convert {
            is_try,
            expr,
            data_type: Some(dt),
            styles,
            ..
        } => {
            let v = c.value(expr, scope)?;
            let ty = cast_type_of(dt)?;
            let style = match styles.first() {
                Some(s) => Some(c.value(s, scope)?.sql),
                None => None,
            };
            cast(v, ty, style, *is_try)
        }
        Expr::Collate { expr, collation } => {
            let mut t = compile(c, expr, scope)?;
            let name = crate::engine::parse::ident_values(collation).join(".");
            if !t.ty.is_string() {
                return Err(SqlError::new(
                    447,
                    0,
                    16,
                    format!(
                        "Expression type {} is invalid for COLLATE clause.",
                        t.ty.base_name()
                    ),
                )
                .batch());
            }
            let coll = if name.eq_ignore_ascii_case("DATABASE_DEFAULT")
                || name.eq_ignore_ascii_case("CATALOG_DEFAULT")
            {
                c.default_collation()
            } else {
                collation::parse(&name).ok_or_else(|| collation::invalid(&name).batch())?
            };
            t.coll = Label::Explicit(coll);
            Ok(t)
        }
        Expr::Function(f) => super::func::function(c, f, scope),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![(**expr).clone()];
            args.extend(substring_from.iter().map(|e| (**e).clone()));
            args.extend(substring_for.iter().map(|e| (**e).clone()));
            super::func::call(c, "SUBSTRING", &args, scope)
        }
        Expr::Floor { expr, .. } => {
            super::func::call(c, "FLOOR", std::slice::from_ref(expr.as_ref()), scope)
        }
        Expr::Ceil { expr, .. } => {
            super::func::call(c, "CEILING", std::slice::from_ref(expr.as_ref()), scope)
        }
        Expr::Trim {
            expr,
            trim_where,
            trim_what,
            ..
        } => {
            let name = match trim_where {
                Some(ast::TrimWhereField::Leading) => "LTRIM",
                Some(ast::TrimWhereField::Trailing) => "RTRIM",
                _ => "TRIM",
            };
            let mut args = vec![(**expr).clone()];
            if let Some(w) = trim_what {
                args.push((**w).clone());
            }
            super::func::call(c, name, &args, scope)
        }
        Expr::IsTrue(_) | Expr::IsFalse(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) => {
            Err(SqlError::syntax_near("IS"))
        }
        other => Err(SqlError::syntax_near(
            other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("expression"),
        )),
    }
}

fn one_column_error() -> SqlError {
    SqlError::new(
        116,
        1,
        16,
        "Only one expression can be specified in the select list when the subquery is not introduced with EXISTS.",
    )
    .batch()
}

/// The type SQL Server gives a literal.
pub fn literal(v: &AstValue, negative: bool) -> Result<Typed, SqlError> {
    let sign = if negative { "-" } else { "" };
    let t = match v {
        AstValue::Number(n, _) => {
            let ty = rules::literal_type(n).ok_or_else(|| SqlError::syntax_near(n))?;
            let text = format!("{sign}{n}");
            let digits = n.bytes().filter(u8::is_ascii_digit).count();
            let sql = match ty {
                // Stored as the engine stores decimals: a REAL (exact at up to
                // 15 significant digits), exact text beyond.
                SqlType::Decimal { .. } if digits > 15 => quote_str(&text),
                SqlType::Decimal { scale: 0, .. } => text,
                SqlType::Decimal { .. } => format!("CAST({text} AS REAL)"),
                SqlType::Float => format!("CAST({text} AS REAL)"),
                _ => text,
            };
            let mut t = Typed::new(sql, ty).not_null();
            if matches!(ty, SqlType::Int) {
                t.int_const = rules::int_literal_digits(n);
            }
            t
        }
        AstValue::SingleQuotedString(s) => {
            let n = s.chars().count();
            let ty = if n > 8000 {
                SqlType::VarChar(Len::Max)
            } else {
                SqlType::VarChar(Len::N(n.max(1) as u16))
            };
            Typed::new(sql_string(s), ty).not_null()
        }
        AstValue::NationalStringLiteral(s) => {
            let n = s.encode_utf16().count();
            let ty = if n > 4000 {
                SqlType::NVarChar(Len::Max)
            } else {
                SqlType::NVarChar(Len::N(n.max(1) as u16))
            };
            Typed::new(sql_string(s), ty).not_null()
        }
        AstValue::HexStringLiteral(h) => {
            let h = if h.len() % 2 == 1 {
                format!("0{h}")
            } else {
                h.clone()
            };
            let n = h.len() / 2;
            let ty = if n > 8000 {
                SqlType::VarBinary(Len::Max)
            } else {
                SqlType::VarBinary(Len::N(n.max(1) as u16))
            };
            Typed::new(format!("X'{h}'"), ty).not_null()
        }
        AstValue::Null => {
            let mut t = Typed::new("NULL", SqlType::Int);
            t.null_literal = true;
            t
        }
        AstValue::Boolean(b) => Typed::new(if *b { "1" } else { "0" }, SqlType::Bit).not_null(),
        // `$12.50`: a money constant.
        AstValue::Placeholder(p) if p.starts_with('$') => {
            let body = p.trim_start_matches('$');
            let (neg, digits) = match body.strip_prefix('-') {
                Some(d) => (!negative, d),
                None => (negative, body),
            };
            let d =
                crate::engine::numeric::parse_exact(if digits.is_empty() { "0" } else { digits })
                    .ok_or_else(|| SqlError::syntax_near(p))?;
            let text = format!("{}{}", if neg { "-" } else { "" }, digits);
            let _ = d;
            Typed::new(
                format!("__conv({}, 'money')", quote_str(&text)),
                SqlType::Money,
            )
            .not_null()
        }
        other => return Err(SqlError::syntax_near(&other.to_string())),
    };
    Ok(t)
}

/// A T-SQL variable, parameter or `@@` function, or a column.
fn identifier(
    c: &Compiler<'_, '_>,
    name: &str,
    quoted: bool,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    if !quoted && name.starts_with("@@") {
        return global(c, name);
    }
    if !quoted && name.starts_with('@') {
        return variable(c, name);
    }
    match column(vec![name.to_string()], scope) {
        Ok(t) => Ok(t),
        Err(e) if !quoted => {
            // Niladic functions written without parentheses.
            match name.to_ascii_uppercase().as_str() {
                "CURRENT_TIMESTAMP" | "CURRENT_USER" | "SESSION_USER" | "SYSTEM_USER" | "USER"
                | "CURRENT_DATE" => super::func::call(c, name, &[], scope),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn column(parts: Vec<String>, scope: &Scope) -> Result<Typed, SqlError> {
    let r = scope.resolve(&parts)?;
    let mut t = Typed::new(r.sql, r.col.ty);
    t.nullable = r.col.nullable;
    // A column reference is labelled with its column's collation (implicit).
    if let (true, Some(c)) = (r.col.ty.is_string(), r.col.collation) {
        t.coll = Label::Implicit(c);
    }
    if r.col.base {
        t.base = Some(r.col.clone());
    }
    Ok(t)
}

pub fn variable(c: &Compiler<'_, '_>, name: &str) -> Result<Typed, SqlError> {
    let ty = c
        .ctx
        .params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| *t)
        .or_else(|| c.ctx.var_types.get(&name.to_ascii_lowercase()).copied())
        .ok_or_else(|| {
            SqlError::new(
                137,
                2,
                15,
                format!("Must declare the scalar variable \"{name}\"."),
            )
            .batch()
        })?;
    let sql = if c.vars_as_calls {
        format!("__var({})", quote_str(name))
    } else {
        name.to_string()
    };
    Ok(Typed::new(sql, ty))
}

/// `@@` functions, typed as their documentation pages give them.
fn global(c: &Compiler<'_, '_>, name: &str) -> Result<Typed, SqlError> {
    let int = |v: i64| Ok(Typed::new(v.to_string(), SqlType::Int).not_null());
    let nv =
        |s: &str, n: u16| Ok(Typed::new(sql_string(s), SqlType::NVarChar(Len::N(n))).not_null());
    match name.to_ascii_uppercase().as_str() {
        "@@ROWCOUNT" => int(c.ctx.rowcount),
        "@@TRANCOUNT" => int(c.ctx.trancount),
        "@@ERROR" => int(0),
        "@@FETCH_STATUS" => int(-1),
        "@@NESTLEVEL" => int(0),
        "@@PROCID" => int(0),
        "@@TEXTSIZE" => int(2_147_483_647),
        "@@LOCK_TIMEOUT" => int(-1),
        "@@OPTIONS" => int(5496),
        "@@MICROSOFTVERSION" => int(0x1000_03E8),
        "@@SPID" => Ok(Typed::new(c.ctx.spid.to_string(), SqlType::SmallInt).not_null()),
        "@@MAX_PRECISION" | "@@DATEFIRST" => Ok(Typed::new(
            if name.eq_ignore_ascii_case("@@DATEFIRST") {
                "7"
            } else {
                "38"
            },
            SqlType::TinyInt,
        )
        .not_null()),
        // The current database's last-used rowversion
        // (https://learn.microsoft.com/en-us/sql/t-sql/functions/dbts-transact-sql).
        "@@DBTS" => Ok(Typed::new(
            format!(
                "__sb_rowversion(coalesce((SELECT value FROM __sb_dbts WHERE db = {}), {}))",
                quote_str(c.ctx.db),
                crate::engine::catalog::FIRST_DBTS
            ),
            SqlType::VarBinary(Len::N(8)),
        )
        .not_null()),
        "@@VERSION" => nv(crate::engine::context::VERSION, 300),
        "@@SERVERNAME" => nv("bridge-sandbox", 128),
        "@@SERVICENAME" => nv("MSSQLSERVER", 128),
        "@@LANGUAGE" => nv("us_english", 128),
        "@@IDENTITY" => Ok(Typed::new(
            "last_insert_rowid()",
            SqlType::Decimal {
                precision: 38,
                scale: 0,
                numeric: true,
            },
        )),
        other => Err(SqlError::new(
            137,
            2,
            15,
            format!("Must declare the scalar variable \"{other}\"."),
        )
        .batch()),
    }
}

fn unary(
    c: &Compiler<'_, '_>,
    op: UnaryOperator,
    inner: &Expr,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    match op {
        UnaryOperator::Not => {
            let t = c.expr(inner, scope)?;
            if !t.predicate {
                return Err(SqlError::syntax_near("NOT"));
            }
            Ok(Typed::predicate(format!("(NOT {})", t.sql)))
        }
        UnaryOperator::Plus => c.value(inner, scope),
        UnaryOperator::Minus => {
            if let Expr::Value(v) = inner {
                if matches!(v.value, AstValue::Number(..) | AstValue::Placeholder(_)) {
                    return literal(&v.value, true);
                }
            }
            let t = c.value(inner, scope)?;
            let zero = Typed::new("0", t.ty).not_null();
            let mut r = arithmetic(ArithOp::Sub, &zero, &t)?;
            r.nullable = t.nullable;
            Ok(r)
        }
        UnaryOperator::BitwiseNot => {
            let t = c.value(inner, scope)?;
            if !rules::is_integer(&t.ty) && t.ty != SqlType::Bit {
                return Err(SqlError::new(
                    8117,
                    1,
                    16,
                    format!(
                        "Operand data type {} is invalid for '~' operator.",
                        t.ty.base_name()
                    ),
                )
                .batch());
            }
            let sql = if t.ty == SqlType::Bit {
                format!("(1 - {})", t.sql)
            } else if t.ty == SqlType::TinyInt {
                format!("(255 - {})", t.sql)
            } else {
                format!("(~{})", t.sql)
            };
            Ok(Typed { sql, ..t })
        }
        other => Err(SqlError::syntax_near(&other.to_string())),
    }
}

fn binary(
    c: &Compiler<'_, '_>,
    left: &Expr,
    op: &BinaryOperator,
    right: &Expr,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let arith = match op {
        BinaryOperator::Plus => Some(ArithOp::Add),
        BinaryOperator::Minus => Some(ArithOp::Sub),
        BinaryOperator::Multiply => Some(ArithOp::Mul),
        BinaryOperator::Divide => Some(ArithOp::Div),
        BinaryOperator::Modulo => Some(ArithOp::Mod),
        _ => None,
    };
    // `$-23`: a money constant with a sign.
    if let (Expr::Value(v), Some(ArithOp::Add | ArithOp::Sub), Expr::Value(n)) =
        (left, arith, right)
    {
        if let (AstValue::Placeholder(p), AstValue::Number(..)) = (&v.value, &n.value) {
            if p == "$" {
                let mut t = literal(
                    &AstValue::Placeholder(format!("${}", n.value)),
                    arith == Some(ArithOp::Sub),
                )?;
                t.nullable = false;
                return Ok(t);
            }
        }
    }
    if let Some(a) = arith {
        let l = c.value(left, scope)?;
        let r = c.value(right, scope)?;
        return arithmetic(a, &l, &r);
    }
    match op {
        BinaryOperator::And | BinaryOperator::Or => {
            let l = c.expr(left, scope)?;
            let r = c.expr(right, scope)?;
            if !l.predicate || !r.predicate {
                return Err(SqlError::syntax_near(if *op == BinaryOperator::And {
                    "AND"
                } else {
                    "OR"
                }));
            }
            Ok(Typed::predicate(format!(
                "({} {} {})",
                l.sql,
                if *op == BinaryOperator::And {
                    "AND"
                } else {
                    "OR"
                },
                r.sql
            )))
        }
        BinaryOperator::Eq
        | BinaryOperator::NotEq
        | BinaryOperator::Lt
        | BinaryOperator::LtEq
        | BinaryOperator::Gt
        | BinaryOperator::GtEq => {
            let sym = match op {
                BinaryOperator::Eq => "=",
                BinaryOperator::NotEq => "<>",
                BinaryOperator::Lt => "<",
                BinaryOperator::LtEq => "<=",
                BinaryOperator::Gt => ">",
                _ => ">=",
            };
            let l = c.value(left, scope)?;
            let r = c.value(right, scope)?;
            Ok(Typed::predicate(comparison(c, sym, &l, &r)?))
        }
        BinaryOperator::BitwiseAnd | BinaryOperator::BitwiseOr | BinaryOperator::BitwiseXor => {
            let l = c.value(left, scope)?;
            let r = c.value(right, scope)?;
            let sym = match op {
                BinaryOperator::BitwiseAnd => "&",
                BinaryOperator::BitwiseOr => "|",
                _ => "^",
            };
            for t in [&l, &r] {
                if !rules::is_integer(&t.ty) && t.ty != SqlType::Bit && !t.ty.is_binary() {
                    return Err(SqlError::new(
                        402,
                        1,
                        16,
                        format!(
                            "The data types {} and {} are incompatible in the '{sym}' operator.",
                            l.ty.base_name(),
                            r.ty.base_name()
                        ),
                    )
                    .batch());
                }
            }
            let ty = rules::higher(l.ty, r.ty);
            let bits = int_bits(&ty);
            Ok(Typed::new(
                format!("__iop('{sym}', {}, {}, {bits})", l.sql, r.sql),
                ty,
            ))
        }
        BinaryOperator::StringConcat => {
            let l = c.value(left, scope)?;
            let r = c.value(right, scope)?;
            arithmetic(ArithOp::Add, &l, &r)
        }
        other => Err(SqlError::syntax_near(&other.to_string())),
    }
}

fn in_list(
    c: &Compiler<'_, '_>,
    e: &Expr,
    list: &[Expr],
    negated: bool,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let a = c.value(e, scope)?;
    let items: Vec<Typed> = list
        .iter()
        .map(|x| c.value(x, scope))
        .collect::<Result<_, _>>()?;
    let mut t = a.ty;
    for i in &items {
        if !i.null_literal {
            t = compare_type(&Typed::new("", t), i)?;
        }
    }
    let not = if negated { "NOT " } else { "" };
    if exact_compare(&t) || matches!(t, SqlType::DateTimeOffset(_)) {
        let parts: Vec<String> = items
            .iter()
            .map(|i| {
                comparison(
                    c,
                    "=",
                    &Typed {
                        ty: a.ty,
                        ..a.clone()
                    },
                    i,
                )
            })
            .collect::<Result<_, _>>()?;
        return Ok(Typed::predicate(format!("({not}({}))", parts.join(" OR "))));
    }
    let mut label = a.coll;
    for i in items.iter().filter(|i| i.ty.is_string()) {
        label = collation::combine(label, i.coll)
            .map_err(|(x, y)| collation::conflict(&x, &y, "equal to"))?;
    }
    let coll = collation::of(label, c.default_collation())
        .map_err(|(x, y)| collation::conflict(&x, &y, "equal to"))?;
    let lhs = collated(&convert_sql(&a, &t), &t, &coll);
    let vals: Vec<String> = items.iter().map(|i| convert_sql(i, &t)).collect();
    Ok(Typed::predicate(format!(
        "({lhs} {not}IN ({}))",
        vals.join(", ")
    )))
}

fn case(
    c: &Compiler<'_, '_>,
    operand: Option<&Expr>,
    conditions: &[ast::CaseWhen],
    else_result: Option<&Expr>,
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let op = match operand {
        Some(o) => Some(c.value(o, scope)?),
        None => None,
    };
    let mut whens = Vec::new();
    let mut results = Vec::new();
    for w in conditions {
        let cond = match &op {
            Some(o) => {
                let v = c.value(&w.condition, scope)?;
                comparison(c, "=", o, &v)?
            }
            None => c.condition(&w.condition, scope)?,
        };
        whens.push(cond);
        results.push(c.value(&w.result, scope)?);
    }
    let els = match else_result {
        Some(e) => Some(c.value(e, scope)?),
        None => None,
    };
    let all: Vec<&Typed> = results.iter().chain(els.iter()).collect();
    let ty = unify(&all)?;
    let mut sql = String::from("CASE");
    for (w, r) in whens.iter().zip(&results) {
        sql.push_str(&format!(" WHEN {w} THEN {}", convert_sql(r, &ty)));
    }
    if let Some(e) = &els {
        sql.push_str(&format!(" ELSE {}", convert_sql(e, &ty)));
    }
    sql.push_str(" END");
    let mut t = Typed::new(sql, ty);
    if ty.is_string() {
        t.coll = unify_labels(&all, "CASE")?;
    }
    Ok(t)
}

/// A value used where a string is expected (LIKE operands).
fn as_string(t: Typed) -> Typed {
    if t.ty.is_string() || t.null_literal {
        return t;
    }
    let to = SqlType::NVarChar(Len::Max);
    Typed {
        sql: convert_sql(&t, &to),
        ty: to,
        ..t
    }
}

pub fn data_type_of(dt: &DataType) -> Result<SqlType, SqlError> {
    let text = dt.to_string();
    parse_sql_type(&text).ok_or_else(|| {
        SqlError::new(
            243,
            2,
            16,
            format!("Type {text} is not a defined system type."),
        )
        .batch()
    })
}

/// The target type of CAST/CONVERT: a character or binary type written
/// without a length is 30 long there ("When n isn't specified with the
/// CAST and CONVERT functions, the default length is 30", char and varchar page).
pub fn cast_type_of(dt: &DataType) -> Result<SqlType, SqlError> {
    let text = dt.to_string();
    let t = data_type_of(dt)?;
    if text.contains('(') {
        return Ok(t);
    }
    Ok(match t {
        SqlType::Char(_) => SqlType::Char(30),
        SqlType::VarChar(Len::N(_)) => SqlType::VarChar(Len::N(30)),
        SqlType::NChar(_) => SqlType::NChar(30),
        SqlType::NVarChar(Len::N(_)) if !text.eq_ignore_ascii_case("sysname") => {
            SqlType::NVarChar(Len::N(30))
        }
        SqlType::Binary(_) => SqlType::Binary(30),
        SqlType::VarBinary(Len::N(_)) => SqlType::VarBinary(Len::N(30)),
        other => other,
    })
}

/// CAST / CONVERT / TRY_CAST / TRY_CONVERT to `ty`, with an optional style.
/// Explicit conversions SQL Server does not allow fail here (529).
pub fn cast(v: Typed, ty: SqlType, style: Option<String>, is_try: bool) -> Result<Typed, SqlError> {
    if !v.null_literal {
        explicit_allowed(&v.ty, &ty)?;
    }
    let f = if is_try { "__tryconv" } else { "__conv" };
    let sql = match style {
        None if !is_try && !needs_cast(&v, &ty) => v.sql.clone(),
        style => format!(
            "{f}({}, {}, {}, {})",
            v.sql,
            quote_str(&ty.type_name()),
            style.as_deref().unwrap_or("NULL"),
            quote_str(&v.ty.type_name())
        ),
    };
    // A string cast to a string keeps its collation label; anything else
    // becomes coercible-default (collation precedence page, "Functions").
    let coll = if ty.is_string() && v.ty.is_string() {
        v.coll
    } else {
        Label::Default
    };
    Ok(Typed {
        sql,
        ty,
        nullable: v.nullable || is_try,
        null_literal: false,
        int_const: None,
        predicate: false,
        base: None,
        coll,
    })
}

fn needs_cast(v: &Typed, ty: &SqlType) -> bool {
    v.null_literal || super::needs_conversion(&v.ty, ty) || v.ty != *ty
}

/// The conversions CAST and CONVERT refuse ("Explicit conversion from data
/// type X to Y is not allowed", the conversion chart of the CAST page).
fn explicit_allowed(from: &SqlType, to: &SqlType) -> Result<(), SqlError> {
    let bad = match (from, to) {
        (a, SqlType::UniqueIdentifier) => {
            !(a.is_string() || a.is_binary() || *a == SqlType::UniqueIdentifier)
        }
        (SqlType::UniqueIdentifier, b) => !(b.is_string() || b.is_binary()),
        (SqlType::Date, SqlType::Time(_)) | (SqlType::Time(_), SqlType::Date) => true,
        (a, b) if rules::is_numeric(a) && rules::is_temporal(b) => {
            !matches!(b, SqlType::DateTime | SqlType::SmallDateTime)
        }
        (a, b) if rules::is_temporal(a) && rules::is_numeric(b) => {
            !matches!(a, SqlType::DateTime | SqlType::SmallDateTime)
        }
        (SqlType::Xml, b) => !(b.is_string() || b.is_binary() || *b == SqlType::Xml),
        (a, SqlType::Xml) => !(a.is_string() || a.is_binary() || *a == SqlType::Xml),
        _ => false,
    };
    if bad {
        return Err(SqlError::new(
            529,
            2,
            16,
            format!(
                "Explicit conversion from data type {} to {} is not allowed.",
                from.base_name(),
                to.base_name()
            ),
        )
        .batch());
    }
    Ok(())
}
