//! SQLite functions and the collation that give translated T-SQL its
//! semantics beneath the built-ins: CAST/CONVERT, implicit conversion on
//! write, declared types' parts for the catalog views, recursion and MERGE
//! checks, date arithmetic and datetimeoffset comparison for operators, and
//! SQL Server's case-insensitive, blank-padded compare. Each built-in's own
//! SQLite function is registered beside its rule in `compile/builtins/`;
//! the argument readers they share are here.

use std::cmp::Ordering;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use super::convert::{convert, fmt_datetime, to_storage, Overlong};
use super::error::SqlError;
use super::styles;
use super::typename::parse_sql_type;
use crate::types::{Len, SqlType, Value};

/// The declared type in argument `i`. The compiler always passes it as a
/// literal, so it is parsed once per prepared statement: SQLite keeps the
/// parse beside a constant argument (`sqlite3_set_auxdata`,
/// https://www.sqlite.org/c3ref/get_auxdata.html) instead of every row
/// parsing `'decimal(18,4)'` again.
pub(crate) fn type_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<SqlType> {
    let ty = ctx.get_or_create_aux(i as std::os::raw::c_int, |v| {
        let text = String::from_utf8_lossy(v.as_bytes().unwrap_or_default());
        parse_sql_type(&text).ok_or_else(|| {
            SqlError::new(
                243,
                2,
                16,
                format!("Type {text} is not a defined system type."),
            )
            .fn_error_text()
        })
    })?;
    Ok(*ty)
}

/// A text argument borrowed from SQLite, for names that only an error
/// message uses.
pub(crate) fn str_arg<'a>(ctx: &'a Context<'_>, i: usize) -> &'a str {
    ctx.get_raw(i).as_str().unwrap_or_default()
}

/// SQL Server's default collation compares case-insensitively and ignores
/// trailing blanks.
pub fn tsql_collate(a: &str, b: &str) -> Ordering {
    let a = a.trim_end_matches(' ');
    let b = b.trim_end_matches(' ');
    let mut ia = a.chars().flat_map(char::to_lowercase);
    let mut ib = b.chars().flat_map(char::to_lowercase);
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

pub(crate) fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(super::convert::format_float(f)),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Null => None,
    }
}

pub(crate) fn as_datetime(v: ValueRef<'_>) -> rusqlite::Result<Option<NaiveDateTime>> {
    match convert(v, &SqlType::DateTime2(7), Overlong::Truncate).map_err(|e| e.to_fn_error())? {
        Value::DateTime(dt) => Ok(Some(dt)),
        _ => Ok(None),
    }
}

pub(crate) fn as_offset(
    v: ValueRef<'_>,
) -> rusqlite::Result<Option<chrono::DateTime<chrono::FixedOffset>>> {
    match convert(v, &SqlType::DateTimeOffset(7), Overlong::Truncate)
        .map_err(|e| e.to_fn_error())?
    {
        Value::DateTimeOffset(dt) => Ok(Some(dt)),
        _ => Ok(None),
    }
}

/// Registers everything the translator emits on one connection.
/// `__conv`'s arguments: value, target type, optional style, optional
/// source type (which decides how dates, money and floats become text).
fn styled_convert(ctx: &Context<'_>, ty: &SqlType) -> Result<Value, SqlError> {
    let style: Option<i64> = if ctx.len() > 2 {
        match ctx.get_raw(2) {
            ValueRef::Integer(i) => Some(i),
            _ => None,
        }
    } else {
        None
    };
    let from = if ctx.len() > 3 {
        match ctx.get_raw(3) {
            ValueRef::Text(t) => parse_sql_type(&String::from_utf8_lossy(t)),
            _ => None,
        }
    } else {
        None
    };
    styles::convert_from(ctx.get_raw(0), from.as_ref(), ty, style)
}

/// Registers the engine's functions; `clock` is the server's time
/// (GETDATE() and its kin, Change Tracking's commit times).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let nondet = FunctionFlags::SQLITE_UTF8;
    conn.create_collation("TSQL", tsql_collate)?;
    super::collation::register(conn)?;
    super::change_tracking::register(conn)?;

    // CAST / CONVERT: `__conv(x, type[, style, source type])`, truncating
    // strings silently; the source type picks its default text style.
    conn.create_scalar_function("__conv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = styled_convert(ctx, &ty).map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    // TRY_CAST / TRY_CONVERT: NULL instead of an error.
    conn.create_scalar_function("__tryconv", -1, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        Ok(styled_convert(ctx, &ty)
            .map(|v| to_storage(&v))
            .unwrap_or(Sv::Null))
    })?;
    // Implicit conversion into a column on INSERT/UPDATE: overlong is error 2628.
    conn.create_scalar_function("__store", 4, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = convert(
            ctx.get_raw(0),
            &ty,
            Overlong::Error {
                table: str_arg(ctx, 2),
                column: str_arg(ctx, 3),
            },
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    // OBJECT_ID(expression): the name parsed when the statement runs,
    // `__object_name_part(text, part, current database)` giving its
    // database (0), schema (1) or name (2) as a name without them
    // resolves (https://learn.microsoft.com/en-us/sql/t-sql/functions/object-id-transact-sql);
    // NULL when the text is not an object name.
    conn.create_scalar_function("__object_name_part", 3, det, |ctx| {
        let text: Option<String> = ctx.get(0)?;
        let part: i64 = ctx.get(1)?;
        let db: String = ctx.get(2)?;
        let Some(text) = text else {
            return Ok(None);
        };
        let Ok(name) = super::parse::parse_object_name(text.trim()) else {
            return Ok(None);
        };
        let parts = super::parse::ident_values(&name);
        let or_dbo = |s: &String| {
            if s.is_empty() {
                "dbo".to_string()
            } else {
                s.clone()
            }
        };
        let (d, sch, t) = match parts.as_slice() {
            [t] => (db, "dbo".to_string(), t.clone()),
            [s, t] => (db, or_dbo(s), t.clone()),
            [d, s, t] | [_, d, s, t] => (
                if d.is_empty() { db } else { d.clone() },
                or_dbo(s),
                t.clone(),
            ),
            _ => return Ok(None),
        };
        Ok(Some(match part {
            0 => d,
            1 => sch,
            _ => t,
        }))
    })?;
    // A database rowversion as rowversion values are sent: eight bytes,
    // most significant first (so they compare as the numbers do).
    conn.create_scalar_function("__sb_rowversion", 1, det, |ctx| {
        let n: Option<i64> = ctx.get(0)?;
        Ok(n.map(|n| Sv::Blob(n.to_be_bytes().to_vec()))
            .unwrap_or(Sv::Null))
    })?;
    // Pieces of a declared type for INFORMATION_SCHEMA and sys views.
    conn.create_scalar_function("__type_part", 2, det, |ctx| {
        let ty: String = ctx.get(0)?;
        let part: String = ctx.get(1)?;
        let Some(t) = parse_sql_type(&ty) else {
            return Ok(Sv::Null);
        };
        // A rowversion column reports its type as SQL Server names it.
        if part == "name" && ty.eq_ignore_ascii_case(super::catalog::ROWVERSION_TYPE) {
            return Ok(Sv::Text(ty.to_ascii_lowercase()));
        }
        let chars = |l: &Len| match l {
            Len::N(n) => Sv::Integer(i64::from(*n)),
            Len::Max => Sv::Integer(-1),
        };
        Ok(match part.as_str() {
            "name" => Sv::Text(t.base_name().to_string()),
            "chars" => match &t {
                SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => {
                    Sv::Integer(i64::from(*n))
                }
                SqlType::VarChar(l) | SqlType::NVarChar(l) | SqlType::VarBinary(l) => chars(l),
                _ => Sv::Null,
            },
            "bytes" => Sv::Integer(t.sys_facts().1),
            "sys_precision" => Sv::Integer(t.sys_facts().2),
            "sys_scale" => Sv::Integer(t.sys_facts().3),
            "precision" => match &t {
                SqlType::Decimal { precision, .. } => Sv::Integer(i64::from(*precision)),
                SqlType::TinyInt => Sv::Integer(3),
                SqlType::SmallInt => Sv::Integer(5),
                SqlType::Int => Sv::Integer(10),
                SqlType::BigInt | SqlType::Money => Sv::Integer(19),
                SqlType::SmallMoney => Sv::Integer(10),
                SqlType::Float => Sv::Integer(53),
                SqlType::Real => Sv::Integer(24),
                _ => Sv::Null,
            },
            "scale" => match &t {
                SqlType::Decimal { scale, .. } => Sv::Integer(i64::from(*scale)),
                SqlType::Money | SqlType::SmallMoney => Sv::Integer(4),
                SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
                    Sv::Integer(0)
                }
                _ => Sv::Null,
            },
            "dtprecision" => match &t {
                SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => {
                    Sv::Integer(i64::from(*s))
                }
                SqlType::DateTime => Sv::Integer(3),
                SqlType::SmallDateTime | SqlType::Date => Sv::Integer(0),
                _ => Sv::Null,
            },
            _ => Sv::Null,
        })
    })?;

    // A recursive CTE's row at recursion level `level` (the anchor's rows
    // are level 0), under the statement's limit `max` (0: none). Past it,
    // error 530 ends the statement
    // (https://learn.microsoft.com/en-us/sql/t-sql/queries/with-common-table-expression-transact-sql#guidelines-for-defining-and-using-recursive-common-table-expressions).
    conn.create_scalar_function("__recursion_level", 2, det, |ctx| {
        let level: i64 = ctx.get(0)?;
        let max: i64 = ctx.get(1)?;
        if max > 0 && level > max {
            return Err(SqlError::new(
                530,
                1,
                16,
                format!("The statement terminated. The maximum recursion {max} has been exhausted before statement completion."),
            )
            .to_fn_error());
        }
        Ok(Sv::Integer(level))
    })?;
    // Raised by a MERGE whose target row matches more than one source row
    // (see `plan_merge`); never folded into a constant, so it fires only on
    // a row that exists.
    conn.create_scalar_function("__merge_twice", 0, nondet, |_| {
        Err::<Sv, _>(SqlError::merge_twice().to_fn_error())
    })?;
    conn.create_scalar_function("__utf8", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
    })?;

    // datetime/smalldatetime plus or minus a number of days (fractions are
    // times of day), or minus another datetime (the difference since 1900-01-01).
    conn.create_scalar_function("__datedays", 4, det, |ctx| {
        let op: String = ctx.get(0)?;
        let (a, b) = (ctx.get_raw(1), ctx.get_raw(2));
        if matches!(a, ValueRef::Null) || matches!(b, ValueRef::Null) {
            return Ok(None);
        }
        let base = NaiveDate::from_ymd_opt(1900, 1, 1)
            .unwrap_or_default()
            .and_time(NaiveTime::MIN);
        let days_of = |v: ValueRef<'_>| -> rusqlite::Result<f64> {
            Ok(match v {
                ValueRef::Integer(i) => i as f64,
                ValueRef::Real(f) => f,
                ValueRef::Text(_) => {
                    let dt = as_datetime(v)?.unwrap_or(base);
                    (dt - base).num_milliseconds() as f64 / 86_400_000.0
                }
                _ => 0.0,
            })
        };
        let x = days_of(a)?;
        let y = days_of(b)?;
        let d = if op == "+" { x + y } else { x - y };
        let ms = (d * 86_400_000.0).round() as i64;
        let out = base
            .checked_add_signed(Duration::milliseconds(ms))
            .ok_or_else(|| SqlError::overflow("datetime").to_fn_error())?;
        Ok(Some(fmt_datetime(&out)))
    })?;
    // Compares two datetimeoffsets by their UTC instants.
    conn.create_scalar_function("__dtocmp", 2, det, |ctx| {
        let (Some(a), Some(b)) = (as_offset(ctx.get_raw(0))?, as_offset(ctx.get_raw(1))?) else {
            return Ok(None);
        };
        Ok(Some(match a.cmp(&b) {
            Ordering::Less => -1i64,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }))
    })?;
    super::numeric::register(conn)?;
    super::textfns::register(conn)?;
    Ok(())
}
