//! Operators on typed values: arithmetic, comparison and what CASE-like
//! results unify to, each deriving SQL Server's result type (data type
//! precedence, collation precedence) before emitting SQLite text. Shared by
//! expressions (`expr.rs`) and built-ins (`func.rs`), below both.
//! https://learn.microsoft.com/en-us/sql/t-sql/data-types/data-type-precedence-transact-sql

use super::rules::{self, Arith, ArithOp};
use super::{convert_sql, Compiler, Label, Typed};
use crate::engine::catalog::quote_str;
use crate::engine::collation::{self, Collation};
use crate::engine::error::SqlError;
use crate::types::SqlType;

pub fn int_bits(t: &SqlType) -> u8 {
    match t {
        SqlType::Bit | SqlType::TinyInt => 8,
        SqlType::SmallInt => 16,
        SqlType::Int => 32,
        _ => 64,
    }
}

/// `a op b` for the five arithmetic operators and string `+`.
pub fn arithmetic(op: ArithOp, l: &Typed, r: &Typed) -> Result<Typed, SqlError> {
    // NULL literals take the other operand's type.
    let (l, r) = match (l.null_literal, r.null_literal) {
        (true, false) => (Typed::new("NULL", r.ty), r.clone()),
        (false, true) => (l.clone(), Typed::new("NULL", l.ty)),
        _ => (l.clone(), r.clone()),
    };
    let sym = op.symbol();
    let kind = rules::arithmetic(op, l.operand(), r.operand())?;
    let t = match kind {
        Arith::Number(ty) => {
            let (a, b) = (convert_operand(&l, &ty), convert_operand(&r, &ty));
            let sql = match ty {
                SqlType::Decimal {
                    precision, scale, ..
                } => format!("__dop('{sym}', {a}, {b}, {precision}, {scale}, 0)"),
                SqlType::Money => format!("__dop('{sym}', {a}, {b}, 19, 4, 1)"),
                SqlType::SmallMoney => format!("__dop('{sym}', {a}, {b}, 10, 4, 2)"),
                SqlType::Float => format!("__fop('{sym}', {a}, {b}, 0)"),
                SqlType::Real => format!("__fop('{sym}', {a}, {b}, 1)"),
                _ => format!("__iop('{sym}', {a}, {b}, {})", int_bits(&ty)),
            };
            Typed::new(sql, ty)
        }
        Arith::Concat(ty) => {
            let a = concat_operand(&l);
            let b = concat_operand(&r);
            if ty.is_binary() {
                Typed::new(format!("__bconcat({a}, {b})"), ty)
            } else {
                // Concatenation takes the operands' combined label; two
                // different explicit collations cannot combine (468).
                let mut t = Typed::new(format!("({a} || {b})"), ty);
                t.coll = collation::combine(l.coll, r.coll)
                    .map_err(|(x, y)| collation::conflict(&x, &y, "add"))?;
                t
            }
        }
        Arith::DateDays(ty) => {
            let to_dt = |t: &Typed| {
                if rules::is_temporal(&t.ty) || t.ty.is_string() {
                    convert_sql(t, &ty)
                } else {
                    t.sql.clone()
                }
            };
            Typed::new(
                format!(
                    "__datedays('{sym}', {}, {}, {})",
                    to_dt(&l),
                    to_dt(&r),
                    quote_str(&ty.type_name())
                ),
                ty,
            )
        }
    };
    Ok(Typed {
        nullable: true,
        ..t
    })
}

/// An operand of a numeric operation: strings convert to the result type;
/// numbers are read as stored.
pub(super) fn convert_operand(t: &Typed, result: &SqlType) -> String {
    if t.ty.is_string() {
        return format!("__conv({}, {})", t.sql, quote_str(&result.type_name()));
    }
    if matches!(result, SqlType::Float | SqlType::Real)
        && !matches!(t.ty, SqlType::Float | SqlType::Real)
    {
        return format!("__conv({}, 'float')", t.sql);
    }
    t.sql.clone()
}

pub(super) fn concat_operand(t: &Typed) -> String {
    t.sql.clone()
}

/// The type both sides of a comparison convert to.
pub(super) fn compare_type(a: &Typed, b: &Typed) -> Result<SqlType, SqlError> {
    if a.null_literal {
        return Ok(b.ty);
    }
    if b.null_literal {
        return Ok(a.ty);
    }
    let mut t = rules::higher(a.ty, b.ty);
    rules::compatible(&a.ty, &t)?;
    rules::compatible(&b.ty, &t)?;
    // An integer or a decimal compared with a decimal is compared exactly:
    // SQL Server converts an integer to a decimal of its own precision
    // (bigint: decimal(19,0)), never to the other side's narrower one, so
    // `bigint_column < 500250000000003` (a numeric(15,0) literal) does not
    // overflow (https://learn.microsoft.com/en-us/sql/t-sql/data-types/precision-scale-and-length-transact-sql).
    if let (SqlType::Decimal { numeric, .. }, Some((p1, s1)), Some((p2, s2))) =
        (t, as_decimal(&a.ty), as_decimal(&b.ty))
    {
        let scale = s1.max(s2);
        let digits = (p1 - s1).max(p2 - s2);
        t = SqlType::Decimal {
            precision: (digits + scale).min(38),
            scale,
            numeric,
        };
    }
    if matches!(a.ty, SqlType::Xml) || matches!(b.ty, SqlType::Xml) {
        return Err(SqlError::new(
            305,
            1,
            16,
            "The XML data type cannot be compared or sorted, except when using the IS NULL operator.",
        )
        .batch());
    }
    Ok(t)
}

/// An exact numeric type as decimal(p, s): integers with their own
/// precision, as SQL Server converts them.
pub(super) fn as_decimal(t: &SqlType) -> Option<(u8, u8)> {
    Some(match t {
        SqlType::Decimal {
            precision, scale, ..
        } => (*precision, *scale),
        SqlType::Bit => (1, 0),
        SqlType::TinyInt => (3, 0),
        SqlType::SmallInt => (5, 0),
        SqlType::Int => (10, 0),
        SqlType::BigInt => (19, 0),
        _ => return None,
    })
}

/// Whether values of `t` compare through `__dcmp` (exact decimals that may
/// be stored as text) rather than SQLite's numeric comparison.
pub(super) fn exact_compare(t: &SqlType) -> bool {
    match t {
        SqlType::Decimal { precision, .. } => *precision > 15,
        SqlType::Money => true,
        _ => false,
    }
}

pub(super) fn collated(sql: &str, t: &SqlType, coll: &Collation) -> String {
    if t.is_string() {
        collation::collate(sql, coll)
    } else {
        sql.to_string()
    }
}

/// `a sym b` as SQL Server compares: both sides in the type of higher
/// precedence, strings under the collation precedence picks (468 when it
/// cannot), decimals exactly.
pub fn comparison(
    c: &Compiler<'_, '_>,
    sym: &str,
    a: &Typed,
    b: &Typed,
) -> Result<String, SqlError> {
    let t = compare_type(a, b)?;
    let (x, y) = (convert_sql(a, &t), convert_sql(b, &t));
    Ok(if exact_compare(&t) {
        format!("(__dcmp({x}, {y}) {sym} 0)")
    } else if matches!(t, SqlType::DateTimeOffset(_)) {
        format!("(__dtocmp({x}, {y}) {sym} 0)")
    } else if t.is_string() {
        let coll = collation::for_operation(
            a.coll,
            b.coll,
            c.default_collation(),
            collation::operation_name(sym),
        )?;
        format!("({x} {sym} {})", collation::collate(&y, &coll))
    } else {
        format!("({x} {sym} {y})")
    })
}

/// The common type of CASE-like results (NULL literals take the others').
pub fn unify(items: &[&Typed]) -> Result<SqlType, SqlError> {
    let types: Vec<Option<SqlType>> = items
        .iter()
        .map(|t| (!t.null_literal).then_some(t.ty))
        .collect();
    rules::unify(&types)
}

/// The label of CASE-like results (and of a VALUES column): two explicit
/// collations that differ are error 468 naming `operation`.
pub fn unify_labels(items: &[&Typed], operation: &str) -> Result<Label, SqlError> {
    let mut label = Label::Default;
    for t in items.iter().filter(|t| t.ty.is_string() && !t.null_literal) {
        label = collation::combine(label, t.coll)
            .map_err(|(x, y)| collation::conflict(&x, &y, operation))?;
    }
    Ok(label)
}
