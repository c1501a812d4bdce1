//! SQL Server's typing rules for expressions, as Microsoft documents them:
//! data type precedence, the precision and scale of decimal results, the
//! result types of CASE-like expressions and set operations, and the return
//! types of aggregates. Pure functions over [`SqlType`]; the compiler applies
//! them, the value functions in `numeric.rs` compute to match.

use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

/// Rank in SQL Server's data type precedence list, 1 the highest:
/// https://learn.microsoft.com/en-us/sql/t-sql/data-types/data-type-precedence-transact-sql
/// (text, ntext and image are held as the `(max)` types here and rank with them).
pub fn precedence(t: &SqlType) -> u8 {
    match t {
        SqlType::Xml => 3,
        SqlType::DateTimeOffset(_) => 4,
        SqlType::DateTime2(_) => 5,
        SqlType::DateTime => 6,
        SqlType::SmallDateTime => 7,
        SqlType::Date => 8,
        SqlType::Time(_) => 9,
        SqlType::Float => 10,
        SqlType::Real => 11,
        SqlType::Decimal { .. } => 12,
        SqlType::Money => 13,
        SqlType::SmallMoney => 14,
        SqlType::BigInt => 15,
        SqlType::Int => 16,
        SqlType::SmallInt => 17,
        SqlType::TinyInt => 18,
        SqlType::Bit => 19,
        SqlType::UniqueIdentifier => 24,
        SqlType::NVarChar(_) => 25,
        SqlType::NChar(_) => 26,
        SqlType::VarBinary(_) => 27,
        SqlType::VarChar(_) => 28,
        SqlType::Char(_) => 29,
        SqlType::Binary(_) => 30,
    }
}

/// The operand type of higher precedence (the first on a tie).
pub fn higher(a: SqlType, b: SqlType) -> SqlType {
    if precedence(&b) < precedence(&a) {
        b
    } else {
        a
    }
}

pub fn is_integer(t: &SqlType) -> bool {
    matches!(
        t,
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt
    )
}

pub fn is_exact(t: &SqlType) -> bool {
    is_integer(t)
        || matches!(
            t,
            SqlType::Bit | SqlType::Decimal { .. } | SqlType::Money | SqlType::SmallMoney
        )
}

pub fn is_numeric(t: &SqlType) -> bool {
    is_exact(t) || matches!(t, SqlType::Float | SqlType::Real)
}

pub fn is_temporal(t: &SqlType) -> bool {
    matches!(
        t,
        SqlType::Date
            | SqlType::Time(_)
            | SqlType::DateTime
            | SqlType::SmallDateTime
            | SqlType::DateTime2(_)
            | SqlType::DateTimeOffset(_)
    )
}

/// The fixed precision and scale of an exact type (the "precision and scale
/// defined for the data type" the decimal rules use for non-decimal operands).
pub fn exact_ps(t: &SqlType) -> Option<(u8, u8)> {
    Some(match t {
        SqlType::Bit => (1, 0),
        SqlType::TinyInt => (3, 0),
        SqlType::SmallInt => (5, 0),
        SqlType::Int => (10, 0),
        SqlType::BigInt => (19, 0),
        SqlType::Decimal {
            precision, scale, ..
        } => (*precision, *scale),
        SqlType::Money => (19, 4),
        SqlType::SmallMoney => (10, 4),
        _ => return None,
    })
}

/// What the decimal rules need to know about one operand: its type, and for
/// an integer constant the digits it has. "When a query is not
/// autoparameterized, the constant value is first converted to numeric,
/// whose precision is just large enough to hold the value of the constant"
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/int-bigint-smallint-and-tinyint-transact-sql).
#[derive(Clone, Copy, Debug)]
pub struct Operand {
    pub ty: SqlType,
    pub int_const_digits: Option<u8>,
}

impl Operand {
    pub fn of(ty: SqlType) -> Self {
        Operand {
            ty,
            int_const_digits: None,
        }
    }

    fn decimal_ps(&self) -> Option<(u8, u8)> {
        match self.int_const_digits {
            Some(d) if is_integer(&self.ty) => Some((d.max(1), 0)),
            _ => exact_ps(&self.ty),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    /// The operator's name in SQL Server's messages (8117, 402).
    pub fn name(&self) -> &'static str {
        match self {
            ArithOp::Add => "add",
            ArithOp::Sub => "subtract",
            ArithOp::Mul => "multiply",
            ArithOp::Div => "divide",
            ArithOp::Mod => "modulo",
        }
    }

    pub fn symbol(&self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

/// Caps a decimal result at precision 38 as the table's footnote says: the
/// scale shrinks so the integral part keeps its digits; for * and / it
/// never goes below min(scale, 6)
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/precision-scale-and-length-transact-sql).
fn cap(op: Option<ArithOp>, p: u32, s: u32, integral: u32) -> (u8, u8) {
    if p <= 38 {
        return (p as u8, s as u8);
    }
    let s = match op {
        Some(ArithOp::Mul | ArithOp::Div) => {
            let whole = p - s;
            (s.min(38u32.saturating_sub(whole))).max(s.min(6))
        }
        // Addition, subtraction, modulo and set operations: room for the
        // integral part first.
        _ => s.min(38u32.saturating_sub(integral)),
    };
    (38, s as u8)
}

/// The decimal(p, s) of `e1 op e2` per the table of the precision page.
pub fn decimal_result(op: ArithOp, a: (u8, u8), b: (u8, u8)) -> (u8, u8) {
    let (p1, s1) = (u32::from(a.0), u32::from(a.1));
    let (p2, s2) = (u32::from(b.0), u32::from(b.1));
    let integral = (p1 - s1).max(p2 - s2);
    let (p, s) = match op {
        ArithOp::Add | ArithOp::Sub => (s1.max(s2) + integral + 1, s1.max(s2)),
        ArithOp::Mul => (p1 + p2 + 1, s1 + s2),
        ArithOp::Div => {
            let s = 6u32.max(s1 + p2 + 1);
            (p1 - s1 + s2 + s, s)
        }
        ArithOp::Mod => ((p1 - s1).min(p2 - s2) + s1.max(s2), s1.max(s2)),
    };
    cap(Some(op), p.max(1), s, integral)
}

/// decimal(p, s) of a UNION/EXCEPT/INTERSECT (and CASE) of two decimals.
pub fn decimal_union(a: (u8, u8), b: (u8, u8)) -> (u8, u8) {
    let (p1, s1) = (u32::from(a.0), u32::from(a.1));
    let (p2, s2) = (u32::from(b.0), u32::from(b.1));
    let integral = (p1 - s1).max(p2 - s2);
    cap(None, s1.max(s2) + integral, s1.max(s2), integral)
}

fn invalid_operand(t: &SqlType, op: ArithOp) -> SqlError {
    SqlError::new(
        8117,
        1,
        16,
        format!(
            "Operand data type {} is invalid for {} operator.",
            t.base_name(),
            op.name()
        ),
    )
    .batch()
}

fn incompatible(a: &SqlType, b: &SqlType, op: ArithOp) -> SqlError {
    SqlError::new(
        402,
        1,
        16,
        format!(
            "The data types {} and {} are incompatible in the {} operator.",
            a.base_name(),
            b.base_name(),
            op.name()
        ),
    )
    .batch()
}

pub fn clash(a: &SqlType, b: &SqlType) -> SqlError {
    SqlError::new(
        206,
        2,
        16,
        format!(
            "Operand type clash: {} is incompatible with {}",
            a.base_name(),
            b.base_name()
        ),
    )
    .batch()
}

/// How an arithmetic expression is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// Numbers, in the result type.
    Number(SqlType),
    /// String or binary concatenation (`+`), in the result type.
    Concat(SqlType),
    /// datetime/smalldatetime plus or minus a number of days.
    DateDays(SqlType),
}

/// The result of `a op b`: data type precedence picks the type, the
/// precision page its precision and scale, the length rules of
/// concatenation its length.
pub fn arithmetic(op: ArithOp, a: Operand, b: Operand) -> Result<Arith, SqlError> {
    let (ta, tb) = (a.ty, b.ty);
    let stringish = |t: &SqlType| t.is_string();
    if stringish(&ta) && stringish(&tb) {
        if op != ArithOp::Add {
            return Err(invalid_operand(&higher(ta, tb), op));
        }
        return Ok(Arith::Concat(concat_type(ta, tb)));
    }
    if ta.is_binary() && tb.is_binary() {
        if op != ArithOp::Add {
            return Err(invalid_operand(&higher(ta, tb), op));
        }
        return Ok(Arith::Concat(concat_type(ta, tb)));
    }
    for t in [&ta, &tb] {
        if matches!(t, SqlType::UniqueIdentifier | SqlType::Xml) {
            return Err(invalid_operand(t, op));
        }
    }
    let top = higher(ta, tb);
    if is_temporal(&top) {
        let other = if precedence(&ta) == precedence(&top) {
            &tb
        } else {
            &ta
        };
        let days_ok = matches!(top, SqlType::DateTime | SqlType::SmallDateTime)
            && matches!(op, ArithOp::Add | ArithOp::Sub)
            && (is_numeric(other) || other.is_string() || *other == top);
        if days_ok {
            return Ok(Arith::DateDays(top));
        }
        if is_temporal(&ta) && is_temporal(&tb) {
            return Err(invalid_operand(&top, op));
        }
        return Err(clash(&ta, &tb));
    }
    if ta.is_binary() || tb.is_binary() {
        return Err(incompatible(&ta, &tb, op));
    }
    if matches!(ta, SqlType::Bit) && matches!(tb, SqlType::Bit) {
        return Err(invalid_operand(&SqlType::Bit, op));
    }
    // A string operand converts to the number's type.
    let (a, b) = match (stringish(&ta), stringish(&tb)) {
        (true, false) => (Operand::of(tb), b),
        (false, true) => (a, Operand::of(ta)),
        _ => (a, b),
    };
    let top = higher(a.ty, b.ty);
    Ok(Arith::Number(match top {
        SqlType::Decimal { .. } => {
            let (p, s) = decimal_result(
                op,
                a.decimal_ps().unwrap_or((38, 0)),
                b.decimal_ps().unwrap_or((38, 0)),
            );
            SqlType::Decimal {
                precision: p,
                scale: s,
                numeric: matches!(a.ty, SqlType::Decimal { numeric: true, .. })
                    || matches!(b.ty, SqlType::Decimal { numeric: true, .. })
                    || a.int_const_digits.is_some()
                    || b.int_const_digits.is_some(),
            }
        }
        // Modulo of money is not defined for float; everything else keeps
        // the type of higher precedence.
        SqlType::Float | SqlType::Real if op == ArithOp::Mod => {
            return Err(invalid_operand(&top, op));
        }
        SqlType::Bit => SqlType::Int,
        other => other,
    }))
}

pub(crate) fn len_units(t: &SqlType) -> Option<u32> {
    match t {
        SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => Some(u32::from(*n)),
        SqlType::VarChar(Len::N(n))
        | SqlType::NVarChar(Len::N(n))
        | SqlType::VarBinary(Len::N(n)) => Some(u32::from(*n)),
        _ => None,
    }
}

/// `a + b` on strings or binaries: the sum of the lengths up to 8,000 bytes
/// (4,000 byte-pairs), `(max)` if either is.
fn concat_type(a: SqlType, b: SqlType) -> SqlType {
    let top = higher(a, b);
    let unicode = a.is_unicode() || b.is_unicode();
    let total = match (len_units(&a), len_units(&b)) {
        (Some(x), Some(y)) => Some(x + y),
        _ => None,
    };
    let limit = if unicode { 4000 } else { 8000 };
    let len = |fixed: bool| -> SqlType {
        match total {
            Some(n) if n <= limit => {
                let n = n as u16;
                match (top.is_binary(), unicode, fixed) {
                    (true, _, true) => SqlType::Binary(n),
                    (true, _, false) => SqlType::VarBinary(Len::N(n)),
                    (false, true, true) => SqlType::NChar(n),
                    (false, true, false) => SqlType::NVarChar(Len::N(n)),
                    (false, false, true) => SqlType::Char(n),
                    (false, false, false) => SqlType::VarChar(Len::N(n)),
                }
            }
            Some(_) => match (top.is_binary(), unicode) {
                (true, _) => SqlType::VarBinary(Len::N(8000)),
                (false, true) => SqlType::NVarChar(Len::N(4000)),
                (false, false) => SqlType::VarChar(Len::N(8000)),
            },
            None => match (top.is_binary(), unicode) {
                (true, _) => SqlType::VarBinary(Len::Max),
                (false, true) => SqlType::NVarChar(Len::Max),
                (false, false) => SqlType::VarChar(Len::Max),
            },
        }
    };
    let fixed = matches!(
        (a, b),
        (SqlType::Char(_), SqlType::Char(_))
            | (SqlType::NChar(_), SqlType::NChar(_))
            | (SqlType::NChar(_), SqlType::Char(_))
            | (SqlType::Char(_), SqlType::NChar(_))
            | (SqlType::Binary(_), SqlType::Binary(_))
    );
    len(fixed)
}

/// The common type of several expressions that yield one value: CASE
/// ("the highest precedence type from the set of types in result_expressions",
/// https://learn.microsoft.com/en-us/sql/t-sql/language-elements/case-transact-sql),
/// COALESCE, IIF, UNION columns (lengths: "the longer of the two",
/// decimals: the UNION row of the precision page). `None` entries are NULL
/// literals, which take the type of the others (int when all are NULL).
pub fn unify(types: &[Option<SqlType>]) -> Result<SqlType, SqlError> {
    let known: Vec<SqlType> = types.iter().flatten().copied().collect();
    let Some(&first) = known.first() else {
        return Ok(SqlType::Int);
    };
    let top = known.iter().copied().fold(first, higher);
    for t in &known {
        compatible(t, &top)?;
    }
    Ok(match top {
        SqlType::Decimal { numeric, .. } => {
            let mut ps: Option<(u8, u8)> = None;
            for t in &known {
                if let Some(x) = exact_ps(t) {
                    ps = Some(match ps {
                        None => x,
                        Some(y) => decimal_union(y, x),
                    });
                }
            }
            let (precision, scale) = ps.unwrap_or((18, 0));
            SqlType::Decimal {
                precision,
                scale,
                numeric,
            }
        }
        SqlType::Char(_)
        | SqlType::VarChar(_)
        | SqlType::NChar(_)
        | SqlType::NVarChar(_)
        | SqlType::Binary(_)
        | SqlType::VarBinary(_) => {
            let same_family =
                |t: &SqlType| t.is_string() == top.is_string() && t.is_binary() == top.is_binary();
            let max = known
                .iter()
                .filter(|t| same_family(t))
                .any(|t| len_units(t).is_none());
            let len = known
                .iter()
                .filter(|t| same_family(t))
                .filter_map(len_units)
                .max()
                .unwrap_or(1);
            let limit = if top.is_unicode() { 4000 } else { 8000 };
            let l = if max || len > limit {
                Len::Max
            } else {
                Len::N(len as u16)
            };
            match (top, l) {
                (SqlType::Char(_), Len::N(n)) => SqlType::Char(n),
                (SqlType::NChar(_), Len::N(n)) => SqlType::NChar(n),
                (SqlType::Binary(_), Len::N(n)) => SqlType::Binary(n),
                (SqlType::Char(_) | SqlType::VarChar(_), l) => SqlType::VarChar(l),
                (SqlType::NChar(_) | SqlType::NVarChar(_), l) => SqlType::NVarChar(l),
                (_, l) => SqlType::VarBinary(l),
            }
        }
        SqlType::Time(_) | SqlType::DateTime2(_) | SqlType::DateTimeOffset(_) => {
            let digits = known
                .iter()
                .map(|t| match t {
                    SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => *s,
                    SqlType::DateTime => 3,
                    _ => 0,
                })
                .max()
                .unwrap_or(7);
            match top {
                SqlType::Time(_) => SqlType::Time(digits),
                SqlType::DateTime2(_) => SqlType::DateTime2(digits),
                _ => SqlType::DateTimeOffset(digits),
            }
        }
        other => other,
    })
}

/// Whether a value of type `from` converts implicitly to `to`
/// (the implicit conversion chart of CAST and CONVERT). The pairs that do
/// not are the ones a query meets: numbers with dates other than datetime,
/// uniqueidentifier with numbers and dates, binary with dates.
pub fn compatible(from: &SqlType, to: &SqlType) -> Result<(), SqlError> {
    let bad = match (from, to) {
        (a, b) if a == b => false,
        (SqlType::UniqueIdentifier, t) | (t, SqlType::UniqueIdentifier) => {
            !(t.is_string() || t.is_binary() || *t == SqlType::UniqueIdentifier)
        }
        (a, b) if is_numeric(a) && is_temporal(b) => {
            !matches!(b, SqlType::DateTime | SqlType::SmallDateTime)
        }
        (a, b) if is_temporal(a) && is_numeric(b) => {
            !matches!(a, SqlType::DateTime | SqlType::SmallDateTime)
        }
        (SqlType::Date, SqlType::Time(_)) | (SqlType::Time(_), SqlType::Date) => true,
        (a, b) if (a.is_binary() && is_temporal(b)) || (is_temporal(a) && b.is_binary()) => true,
        (SqlType::Xml, t) | (t, SqlType::Xml) => !(t.is_string() || t.is_binary()),
        _ => false,
    };
    if bad {
        Err(clash(from, to))
    } else {
        Ok(())
    }
}

/// SUM's return type, from its page's table
/// (https://learn.microsoft.com/en-us/sql/t-sql/functions/sum-transact-sql).
pub fn sum_type(t: &SqlType) -> Result<SqlType, SqlError> {
    Ok(match t {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
        SqlType::BigInt => SqlType::BigInt,
        SqlType::Decimal { scale, numeric, .. } => SqlType::Decimal {
            precision: 38,
            scale: *scale,
            numeric: *numeric,
        },
        SqlType::Money | SqlType::SmallMoney => SqlType::Money,
        SqlType::Float | SqlType::Real => SqlType::Float,
        other => return Err(aggregate_operand(other, "sum")),
    })
}

/// AVG's return type: "decimal category (p, s): decimal(38, max(s,6))"
/// (https://learn.microsoft.com/en-us/sql/t-sql/functions/avg-transact-sql).
pub fn avg_type(t: &SqlType) -> Result<SqlType, SqlError> {
    Ok(match t {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
        SqlType::BigInt => SqlType::BigInt,
        SqlType::Decimal { scale, numeric, .. } => SqlType::Decimal {
            precision: 38,
            scale: (*scale).max(6),
            numeric: *numeric,
        },
        SqlType::Money | SqlType::SmallMoney => SqlType::Money,
        SqlType::Float | SqlType::Real => SqlType::Float,
        other => return Err(aggregate_operand(other, "avg")),
    })
}

pub fn aggregate_operand(t: &SqlType, f: &str) -> SqlError {
    SqlError::new(
        8117,
        1,
        16,
        format!(
            "Operand data type {} is invalid for {f} operator.",
            t.base_name()
        ),
    )
    .batch()
}

/// The type SQL Server gives a numeric literal as written: integers that fit
/// an int are int, larger ones numeric(n, 0) ("Integer constants greater than
/// 2,147,483,647 are converted to the decimal data type, not the bigint data
/// type", int page); a decimal point makes numeric(p, s) with the digits
/// written; an exponent makes float
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/constants-transact-sql).
pub fn literal_type(text: &str) -> Option<SqlType> {
    let t = text.trim_start_matches(['-', '+']);
    if t.contains(['e', 'E']) {
        return Some(SqlType::Float);
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_digits = int.trim_start_matches('0').len();
    if !t.contains('.') {
        if let Ok(v) = int.parse::<i64>() {
            if v <= i64::from(i32::MAX) {
                return Some(SqlType::Int);
            }
        }
        let p = int_digits.max(1);
        return (p <= 38).then_some(SqlType::Decimal {
            precision: p as u8,
            scale: 0,
            numeric: true,
        });
    }
    let scale = frac.len();
    let p = (int_digits + scale).max(1).max(scale);
    (p <= 38).then_some(SqlType::Decimal {
        precision: p as u8,
        scale: scale as u8,
        numeric: true,
    })
}

/// Digits of an integer literal, for the constant rule of [`Operand`].
pub fn int_literal_digits(text: &str) -> Option<u8> {
    let t = text.trim_start_matches(['-', '+']);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(t.trim_start_matches('0').len().max(1) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(p: u8, s: u8) -> SqlType {
        SqlType::Decimal {
            precision: p,
            scale: s,
            numeric: false,
        }
    }

    #[test]
    fn the_precision_pages_examples() {
        // decimal(30,20) * decimal(30,20): p 61, s 40 → decimal(38,17).
        assert_eq!(decimal_result(ArithOp::Mul, (30, 20), (30, 20)), (38, 17));
        // decimal(30,10) * decimal(30,10): p 61, s 20, integral 41 → decimal(38,6).
        assert_eq!(decimal_result(ArithOp::Mul, (30, 10), (30, 10)), (38, 6));
        // Scale below 6 with a large integral part stays.
        assert_eq!(decimal_result(ArithOp::Mul, (38, 2), (38, 2)), (38, 4));
        assert_eq!(decimal_result(ArithOp::Div, (10, 0), (1, 0)), (16, 6));
        // integral part 28 < 38 - 10: the scale stays.
        assert_eq!(decimal_result(ArithOp::Add, (38, 10), (10, 0)), (38, 10));
        assert_eq!(decimal_result(ArithOp::Add, (38, 10), (38, 30)), (38, 10));
        assert_eq!(decimal_result(ArithOp::Mod, (18, 2), (10, 6)), (10, 6));
    }

    #[test]
    fn int_constants_over_int_are_numeric() {
        assert_eq!(literal_type("2147483647"), Some(SqlType::Int));
        assert_eq!(
            literal_type("2147483649"),
            Some(SqlType::Decimal {
                precision: 10,
                scale: 0,
                numeric: true
            })
        );
        // SELECT 2147483649 / 2 → 1073741824.500000: numeric(10,0) / numeric(1,0).
        let a = Operand::of(literal_type("2147483649").unwrap());
        let b = Operand {
            ty: SqlType::Int,
            int_const_digits: Some(1),
        };
        assert_eq!(
            arithmetic(ArithOp::Div, a, b).unwrap(),
            Arith::Number(SqlType::Decimal {
                precision: 16,
                scale: 6,
                numeric: true
            })
        );
        assert_eq!(
            literal_type("2.5"),
            Some(SqlType::Decimal {
                precision: 2,
                scale: 1,
                numeric: true
            })
        );
        assert_eq!(
            literal_type("0.5"),
            Some(SqlType::Decimal {
                precision: 1,
                scale: 1,
                numeric: true
            })
        );
        assert_eq!(literal_type("1e3"), Some(SqlType::Float));
    }

    #[test]
    fn precedence_picks_the_result() {
        let n = |t| Operand::of(t);
        assert_eq!(
            arithmetic(ArithOp::Mul, n(SqlType::SmallInt), n(SqlType::Int)).unwrap(),
            Arith::Number(SqlType::Int)
        );
        assert_eq!(
            arithmetic(ArithOp::Add, n(SqlType::TinyInt), n(SqlType::TinyInt)).unwrap(),
            Arith::Number(SqlType::TinyInt)
        );
        assert_eq!(
            arithmetic(ArithOp::Mul, n(SqlType::Money), n(SqlType::Int)).unwrap(),
            Arith::Number(SqlType::Money)
        );
        assert_eq!(
            arithmetic(ArithOp::Mul, n(dec(18, 2)), n(dec(10, 6))).unwrap(),
            Arith::Number(dec(29, 8))
        );
        assert_eq!(
            arithmetic(
                ArithOp::Add,
                n(SqlType::VarChar(Len::N(3))),
                n(SqlType::NVarChar(Len::N(2)))
            )
            .unwrap(),
            Arith::Concat(SqlType::NVarChar(Len::N(5)))
        );
        assert_eq!(
            arithmetic(ArithOp::Add, n(SqlType::DateTime), n(SqlType::Int)).unwrap(),
            Arith::DateDays(SqlType::DateTime)
        );
        assert_eq!(
            arithmetic(ArithOp::Add, n(SqlType::Date), n(SqlType::Int))
                .unwrap_err()
                .number,
            206
        );
    }

    #[test]
    fn case_and_union_types() {
        assert_eq!(
            unify(&[
                Some(SqlType::VarChar(Len::N(2))),
                Some(SqlType::VarChar(Len::N(5)))
            ])
            .unwrap(),
            SqlType::VarChar(Len::N(5))
        );
        assert_eq!(
            unify(&[Some(SqlType::Int), Some(dec(5, 2))]).unwrap(),
            dec(12, 2)
        );
        assert_eq!(unify(&[None, None]).unwrap(), SqlType::Int);
        assert_eq!(
            unify(&[None, Some(SqlType::VarChar(Len::N(1)))]).unwrap(),
            SqlType::VarChar(Len::N(1))
        );
        assert_eq!(
            unify(&[Some(SqlType::Int), Some(SqlType::UniqueIdentifier)])
                .unwrap_err()
                .number,
            206
        );
    }
}
