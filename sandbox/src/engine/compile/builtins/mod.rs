//! Built-in scalar functions, one file per family, each rule giving the
//! function's return type as its learn.microsoft.com page gives it
//! (https://learn.microsoft.com/en-us/sql/t-sql/functions/<name>-transact-sql)
//! and the SQLite text that computes it: `session.rs` (server, session,
//! catalog), `logical.rs` (choosing among values), `strings.rs`, `dates.rs`,
//! `math.rs`. Here: the dispatch, and what the families share (argument
//! checks, SQL Server's errors 174 and 195, typed arguments).

mod dates;
mod logical;
mod math;
mod session;
mod strings;

use sqlparser::ast::{self, Expr, Value as AstValue};

use super::operators::int_bits;
use super::rules;
use super::{convert_sql, Compiler, Scope, Typed};
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

/// Registers every family's SQLite functions on a new connection.
pub fn register(conn: &rusqlite::Connection, clock: &crate::clock::Clock) -> rusqlite::Result<()> {
    session::register(conn, clock)?;
    logical::register(conn, clock)?;
    strings::register(conn, clock)?;
    dates::register(conn, clock)?;
    math::register(conn, clock)
}

/// A scalar built-in, by the first family that has it; 195 when none does,
/// as SQL Server answers for a name it does not know.
pub(super) fn scalar(
    c: &Compiler<'_, '_>,
    name: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Typed, SqlError> {
    let upper = name.to_ascii_uppercase();
    let n = upper.as_str();
    for family in [
        session::compile,
        logical::compile,
        strings::compile,
        dates::compile,
        math::compile,
    ] {
        if let Some(t) = family(c, n, args, scope)? {
            return Ok(t);
        }
    }
    Err(unknown(name))
}

pub(super) fn unknown(name: &str) -> SqlError {
    SqlError::new(
        195,
        10,
        15,
        format!("'{name}' is not a recognized built-in function name."),
    )
    .batch()
}

pub(super) fn arg_count(name: &str, min: usize) -> SqlError {
    SqlError::new(
        174,
        1,
        15,
        format!("The {name} function requires {min} argument(s)."),
    )
    .batch()
}

/// A constant integer argument (a length, a style), when written as one.
pub(super) fn const_int(e: &Expr) -> Option<i64> {
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
pub(super) fn part_name(e: &Expr) -> Result<String, SqlError> {
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

/// The length a value has once converted to a string implicitly (CONCAT's
/// arguments): the string's own length, or the longest text of the type.
pub(super) fn text_len(t: &Typed) -> Option<u32> {
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
        ref s => return rules::len_units(s),
    })
}

/// A string type of the same kind as `like` with length `n` (or max).
pub(super) fn string_like(like: &SqlType, n: Option<u32>) -> SqlType {
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

pub(super) fn values(
    c: &Compiler<'_, '_>,
    args: &[Expr],
    scope: &Scope,
) -> Result<Vec<Typed>, SqlError> {
    args.iter().map(|a| c.value(a, scope)).collect()
}

pub(super) fn need(name: &str, args: &[Expr], min: usize, max: usize) -> Result<(), SqlError> {
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

pub(super) fn int_arg(t: &Typed) -> String {
    if rules::is_integer(&t.ty) || t.ty == SqlType::Bit {
        t.sql.clone()
    } else {
        convert_sql(t, &SqlType::BigInt)
    }
}

/// Fixed-type result helper.
pub(super) fn typed(sql: String, ty: SqlType) -> Result<Typed, SqlError> {
    Ok(Typed::new(sql, ty))
}

/// ROUND/FLOOR/CEILING/SIGN through `__round`, per argument category.
pub(super) fn round_sql(x: &str, len: &str, mode: &str, ty: &SqlType) -> String {
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
pub(super) fn date_value(c: &Compiler<'_, '_>, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
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
pub(super) fn numeric_value(
    c: &Compiler<'_, '_>,
    e: &Expr,
    scope: &Scope,
) -> Result<Typed, SqlError> {
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

pub(super) fn object_id_sql(c: &Compiler<'_, '_>, text: &str) -> String {
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
pub(super) const ALL_OBJECTS: &str = "SELECT db, schema, name, object_id FROM __sb_tables \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_views \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_procedures \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_constraints \
    UNION ALL SELECT db, schema, name, object_id FROM __sb_triggers";
