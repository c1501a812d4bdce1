//! Arithmetic computed the way SQL Server computes it, as SQLite functions
//! the compiler emits once it knows each operand's type:
//!
//! - `__iop(op, a, b, bits)`: tinyint/smallint/int/bigint arithmetic, with
//!   error 8115 on overflow of the result type and 8134 on division by
//!   zero; integer division truncates toward zero.
//! - `__dop(op, a, b, p, s, kind)`: exact decimal (and money) arithmetic on
//!   big integers, rounded half away from zero to the result scale (division
//!   truncates), overflow of decimal(p, s) raising 8115. `kind` 0 is
//!   decimal, 1 money, 2 smallmoney.
//! - `__fop(op, a, b, real)`: float and real.
//! - `__dcmp(a, b)`: exact comparison of decimals stored as text.
//! - `__round(x, len, mode, kind, bits_or_p, s)`: ROUND (mode 0, 1 to
//!   truncate), FLOOR (2), CEILING (3) and SIGN (4) per argument type.
//! - aggregates `__dsum(x)` (the exact sum as text; the compiler fits it to
//!   the result type with `__dop`) and `__stat(x, which)`
//!   (STDEV/STDEVP/VAR/VARP), usable as window functions.
//!
//! The rules themselves (which type a result has) are in `compile/rules.rs`.

use std::cmp::Ordering;

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};
use rusqlite::functions::{Aggregate, Context, FunctionFlags, WindowAggregate};
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

use super::convert::to_storage;
use super::error::SqlError;
use crate::types::{Decimal, Value};

/// An exact number: `m * 10^-s`.
#[derive(Clone, Debug)]
pub struct Exact {
    pub m: BigInt,
    pub s: u32,
}

fn pow10(n: u32) -> BigInt {
    BigInt::from(10u8).pow(n)
}

impl Exact {
    fn at_scale(&self, s: u32) -> BigInt {
        if s >= self.s {
            &self.m * pow10(s - self.s)
        } else {
            &self.m / pow10(self.s - s)
        }
    }

    /// Rounds (half away from zero) or truncates to scale `s`.
    fn to_scale(&self, s: u32, truncate: bool) -> BigInt {
        if s >= self.s {
            return self.at_scale(s);
        }
        let f = pow10(self.s - s);
        let q = &self.m / &f;
        if truncate {
            return q;
        }
        let r = &self.m % &f;
        if r.abs() * 2u8 >= f {
            if self.m.is_negative() {
                q - 1
            } else {
                q + 1
            }
        } else {
            q
        }
    }

    fn add(&self, o: &Exact) -> Exact {
        let s = self.s.max(o.s);
        Exact {
            m: self.at_scale(s) + o.at_scale(s),
            s,
        }
    }
}

/// Parses `[+-]digits[.digits]` into an exact number.
pub fn parse_exact(text: &str) -> Option<Exact> {
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let m: BigInt = if digits.is_empty() {
        BigInt::zero()
    } else {
        digits.parse().ok()?
    };
    Some(Exact {
        m: if neg { -m } else { m },
        s: frac.len() as u32,
    })
}

/// Reads a stored number exactly: integers, decimals stored as REAL (at
/// most 15 significant digits, so the shortest text of the double is the
/// decimal that was stored) or as canonical text.
pub fn exact(v: ValueRef<'_>, target: &str) -> Result<Option<Exact>, SqlError> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(Exact {
            m: BigInt::from(i),
            s: 0,
        })),
        ValueRef::Real(f) => {
            if !f.is_finite() {
                return Err(SqlError::overflow(target));
            }
            // Rust prints f64 without exponent, in the shortest round-trip form.
            Ok(parse_exact(&format!("{f}")))
        }
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            parse_exact(&s).map(Some).ok_or_else(|| {
                SqlError::new(
                    8114,
                    5,
                    16,
                    format!("Error converting data type varchar to {target}."),
                )
            })
        }
        ValueRef::Blob(_) => Err(SqlError::new(
            8114,
            5,
            16,
            format!("Error converting data type varbinary to {target}."),
        )),
    }
}

/// The result kind of exact arithmetic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Decimal,
    Money,
    SmallMoney,
}

impl Kind {
    fn of(code: i64) -> Kind {
        match code {
            1 => Kind::Money,
            2 => Kind::SmallMoney,
            _ => Kind::Decimal,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Decimal => "numeric",
            Kind::Money => "money",
            Kind::SmallMoney => "smallmoney",
        }
    }
}

/// Checks `m * 10^-s` against decimal(p, s) (or the money ranges) and
/// encodes it for storage.
fn finish(m: BigInt, p: u32, s: u32, kind: Kind) -> Result<Sv, SqlError> {
    let fits = match kind {
        Kind::Decimal => m.abs() < pow10(p),
        Kind::Money => m >= BigInt::from(i64::MIN) && m <= BigInt::from(i64::MAX),
        Kind::SmallMoney => m >= BigInt::from(i32::MIN) && m <= BigInt::from(i32::MAX),
    };
    let mantissa = m.to_i128().filter(|_| fits);
    match mantissa {
        Some(mantissa) => Ok(to_storage(&Value::Decimal(Decimal::new(mantissa, s as u8)))),
        None => Err(SqlError::overflow(kind.name())),
    }
}

fn op_of(ctx: &Context<'_>) -> rusqlite::Result<u8> {
    match ctx.get_raw(0) {
        ValueRef::Text(t) if t.len() == 1 => Ok(t[0]),
        _ => Err(rusqlite::Error::InvalidParameterType(
            0,
            rusqlite::types::Type::Text,
        )),
    }
}

fn int_name(bits: i64) -> &'static str {
    match bits {
        8 => "tinyint",
        16 => "smallint",
        32 => "int",
        _ => "bigint",
    }
}

fn int_range(bits: i64) -> (i64, i64) {
    match bits {
        8 => (0, 255),
        16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Integer arithmetic in the result type `bits`.
pub fn int_op(op: u8, a: i64, b: i64, bits: i64) -> Result<i64, SqlError> {
    let r = match op {
        b'+' => a.checked_add(b),
        b'-' => a.checked_sub(b),
        b'*' => a.checked_mul(b),
        b'/' => {
            if b == 0 {
                return Err(SqlError::divide_by_zero());
            }
            a.checked_div(b)
        }
        b'%' => {
            if b == 0 {
                return Err(SqlError::divide_by_zero());
            }
            a.checked_rem(b).or(Some(0))
        }
        b'&' => Some(a & b),
        b'|' => Some(a | b),
        b'^' => Some(a ^ b),
        _ => None,
    };
    let (lo, hi) = int_range(bits);
    match r {
        Some(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(SqlError::overflow(int_name(bits))),
    }
}

fn int_arg(v: ValueRef<'_>, bits: i64) -> Result<Option<i64>, SqlError> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(i)),
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
        ValueRef::Text(t) => String::from_utf8_lossy(t)
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| {
                SqlError::conversion("varchar", &String::from_utf8_lossy(t), int_name(bits))
            }),
        _ => Err(SqlError::overflow(int_name(bits))),
    }
}

/// Exact arithmetic to decimal(p, s) (or money).
pub fn decimal_op(
    op: u8,
    a: &Exact,
    b: &Exact,
    p: u32,
    s: u32,
    kind: Kind,
) -> Result<Sv, SqlError> {
    let m = match op {
        b'+' | b'-' => {
            let c = a.s.max(b.s);
            let (x, y) = (a.at_scale(c), b.at_scale(c));
            let sum = if op == b'+' { x + y } else { x - y };
            Exact { m: sum, s: c }.to_scale(s, false)
        }
        b'*' => Exact {
            m: &a.m * &b.m,
            s: a.s + b.s,
        }
        .to_scale(s, false),
        b'/' => {
            if b.m.is_zero() {
                return Err(SqlError::divide_by_zero());
            }
            // (ma / 10^sa) / (mb / 10^sb) at scale s, truncated.
            let num = &a.m * pow10(b.s + s);
            let den = &b.m * pow10(a.s);
            num / den
        }
        b'%' => {
            if b.m.is_zero() {
                return Err(SqlError::divide_by_zero());
            }
            let c = a.s.max(b.s);
            let r = a.at_scale(c) % b.at_scale(c);
            Exact { m: r, s: c }.to_scale(s, false)
        }
        _ => return Err(SqlError::syntax_near(&(op as char).to_string())),
    };
    finish(m, p, s, kind)
}

fn float_arg(v: ValueRef<'_>) -> Result<Option<f64>, SqlError> {
    Ok(match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).trim().parse().map_err(|_| {
            SqlError::new(8114, 5, 16, "Error converting data type varchar to float.")
        })?),
        ValueRef::Blob(_) => {
            return Err(SqlError::new(
                8114,
                5,
                16,
                "Error converting data type varbinary to float.",
            ))
        }
    })
}

/// float (`real` false) or real arithmetic.
pub fn float_op(op: u8, a: f64, b: f64, real: bool) -> Result<f64, SqlError> {
    let r = match op {
        b'+' => a + b,
        b'-' => a - b,
        b'*' => a * b,
        b'/' => {
            if b == 0.0 {
                return Err(SqlError::divide_by_zero());
            }
            a / b
        }
        _ => return Err(SqlError::syntax_near(&(op as char).to_string())),
    };
    let r = if real { f64::from(r as f32) } else { r };
    if !r.is_finite() {
        return Err(SqlError::overflow(if real { "real" } else { "float" }));
    }
    Ok(r)
}

/// How `__round` rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Round,
    Truncate,
    Floor,
    Ceiling,
    Sign,
}

impl Mode {
    fn of(code: i64) -> Mode {
        match code {
            1 => Mode::Truncate,
            2 => Mode::Floor,
            3 => Mode::Ceiling,
            4 => Mode::Sign,
            _ => Mode::Round,
        }
    }
}

/// ROUND(x, length[, function]) for each argument category
/// (https://learn.microsoft.com/en-us/sql/t-sql/functions/round-transact-sql):
/// the result keeps the argument's type, so rounding 748.58 to -3 in a
/// decimal(5,2) overflows. FLOOR, CEILING and SIGN share it at length 0.
fn round_exact(x: &Exact, len: i64, mode: Mode, scale: u32) -> BigInt {
    if mode == Mode::Sign {
        let one = pow10(scale);
        return match x.m.sign() {
            num_bigint::Sign::Minus => -one,
            num_bigint::Sign::NoSign => BigInt::zero(),
            num_bigint::Sign::Plus => one,
        };
    }
    // Round at 10^-len, then express at the type's scale.
    let at = len.clamp(-(38 + i64::from(x.s)), 38);
    // The value as a multiple of `f` (in units of 10^-x.s), per mode.
    let units = |f: BigInt| -> BigInt {
        let q = &x.m / &f;
        let r = &x.m % &f;
        let q = if r.is_zero() {
            q
        } else {
            let neg = x.m.is_negative();
            match mode {
                Mode::Truncate | Mode::Sign => q,
                Mode::Floor => {
                    if neg {
                        q - 1
                    } else {
                        q
                    }
                }
                Mode::Ceiling => {
                    if neg {
                        q
                    } else {
                        q + 1
                    }
                }
                Mode::Round => {
                    if r.abs() * 2u8 >= f {
                        if neg {
                            q - 1
                        } else {
                            q + 1
                        }
                    } else {
                        q
                    }
                }
            }
        };
        q * f
    };
    let rounded = if at >= 0 {
        let at = at as u32;
        if at >= x.s {
            x.m.clone()
        } else {
            units(pow10(x.s - at))
        }
    } else {
        units(pow10(x.s + (-at) as u32))
    };
    Exact { m: rounded, s: x.s }.to_scale(scale, true)
}

fn fn_err(e: SqlError) -> rusqlite::Error {
    e.to_fn_error()
}

/// Registers the functions of this module on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__iop", 4, det, |ctx| {
        let op = op_of(ctx)?;
        let bits: i64 = ctx.get(3)?;
        let (a, b) = match (
            int_arg(ctx.get_raw(1), bits).map_err(fn_err)?,
            int_arg(ctx.get_raw(2), bits).map_err(fn_err)?,
        ) {
            (Some(a), Some(b)) => (a, b),
            _ => return Ok(None),
        };
        int_op(op, a, b, bits).map(Some).map_err(fn_err)
    })?;
    conn.create_scalar_function("__dop", 6, det, |ctx| {
        let op = op_of(ctx)?;
        let p: i64 = ctx.get(3)?;
        let s: i64 = ctx.get(4)?;
        let kind = Kind::of(ctx.get(5)?);
        let name = kind.name();
        let (Some(a), Some(b)) = (
            exact(ctx.get_raw(1), name).map_err(fn_err)?,
            exact(ctx.get_raw(2), name).map_err(fn_err)?,
        ) else {
            return Ok(Sv::Null);
        };
        decimal_op(op, &a, &b, p as u32, s as u32, kind).map_err(fn_err)
    })?;
    conn.create_scalar_function("__fop", 4, det, |ctx| {
        let op = op_of(ctx)?;
        let real: bool = ctx.get(3)?;
        let (Some(a), Some(b)) = (
            float_arg(ctx.get_raw(1)).map_err(fn_err)?,
            float_arg(ctx.get_raw(2)).map_err(fn_err)?,
        ) else {
            return Ok(None);
        };
        float_op(op, a, b, real).map(Some).map_err(fn_err)
    })?;
    conn.create_scalar_function("__dcmp", 2, det, |ctx| {
        let (Some(a), Some(b)) = (
            exact(ctx.get_raw(0), "numeric").map_err(fn_err)?,
            exact(ctx.get_raw(1), "numeric").map_err(fn_err)?,
        ) else {
            return Ok(None);
        };
        let c = a.s.max(b.s);
        Ok(Some(match a.at_scale(c).cmp(&b.at_scale(c)) {
            Ordering::Less => -1i64,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }))
    })?;
    conn.create_window_function("__dsum", 1, det, ExactSum)?;
    conn.create_window_function("__stat", 2, det, Stat)?;
    Ok(())
}
/// Running exact sum of a decimal or money column.
#[derive(Default)]
pub struct SumState {
    sum: Option<Exact>,
    count: i64,
}

struct ExactSum;

impl ExactSum {
    fn result(a: &SumState) -> Sv {
        match &a.sum {
            Some(x) => {
                let e = Exact {
                    m: x.m.clone(),
                    s: x.s,
                };
                Sv::Text(exact_text(&e))
            }
            None => Sv::Null,
        }
    }
}

/// `m * 10^-s` as canonical decimal text.
pub fn exact_text(x: &Exact) -> String {
    let neg = x.m.is_negative();
    let digits = x.m.abs().to_string();
    let s = x.s as usize;
    let (int, frac) = if digits.len() > s {
        let (i, f) = digits.split_at(digits.len() - s);
        (i.to_string(), f.to_string())
    } else {
        ("0".to_string(), format!("{digits:0>s$}"))
    };
    let sign = if neg { "-" } else { "" };
    if s == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

impl Aggregate<SumState, Sv> for ExactSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<SumState> {
        Ok(SumState::default())
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut SumState) -> rusqlite::Result<()> {
        if let Some(v) = exact(ctx.get_raw(0), "numeric").map_err(fn_err)? {
            acc.sum = Some(match &acc.sum {
                Some(x) => x.add(&v),
                None => v,
            });
            acc.count += 1;
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<SumState>) -> rusqlite::Result<Sv> {
        Ok(acc.as_ref().map(ExactSum::result).unwrap_or(Sv::Null))
    }
}

impl WindowAggregate<SumState, Sv> for ExactSum {
    fn value(&self, acc: Option<&mut SumState>) -> rusqlite::Result<Sv> {
        Ok(acc.map(|a| ExactSum::result(a)).unwrap_or(Sv::Null))
    }

    fn inverse(&self, ctx: &mut Context<'_>, acc: &mut SumState) -> rusqlite::Result<()> {
        if let Some(v) = exact(ctx.get_raw(0), "numeric").map_err(fn_err)? {
            let neg = Exact { m: -v.m, s: v.s };
            acc.sum = Some(match &acc.sum {
                Some(x) => x.add(&neg),
                None => neg,
            });
            acc.count -= 1;
            if acc.count == 0 {
                acc.sum = None;
            }
        }
        Ok(())
    }
}

/// Welford-free running moments for STDEV/STDEVP/VAR/VARP (float results).
#[derive(Default)]
pub struct StatState {
    n: f64,
    sum: f64,
    sum_sq: f64,
    which: String,
}

struct Stat;

impl Stat {
    fn result(a: &StatState) -> Option<f64> {
        let population = a.which.ends_with('p');
        let denom = if population { a.n } else { a.n - 1.0 };
        if denom <= 0.0 {
            return None;
        }
        let mean = a.sum / a.n;
        let var = ((a.sum_sq - a.sum * mean) / denom).max(0.0);
        Some(if a.which.starts_with("stdev") {
            var.sqrt()
        } else {
            var
        })
    }
}

impl Aggregate<StatState, Option<f64>> for Stat {
    fn init(&self, ctx: &mut Context<'_>) -> rusqlite::Result<StatState> {
        Ok(StatState {
            which: ctx.get::<String>(1)?.to_ascii_lowercase(),
            ..StatState::default()
        })
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut StatState) -> rusqlite::Result<()> {
        if let Some(x) = float_arg(ctx.get_raw(0)).map_err(fn_err)? {
            acc.n += 1.0;
            acc.sum += x;
            acc.sum_sq += x * x;
        }
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<StatState>,
    ) -> rusqlite::Result<Option<f64>> {
        Ok(acc.as_ref().and_then(Stat::result))
    }
}

impl WindowAggregate<StatState, Option<f64>> for Stat {
    fn value(&self, acc: Option<&mut StatState>) -> rusqlite::Result<Option<f64>> {
        Ok(acc.and_then(|a| Stat::result(a)))
    }

    fn inverse(&self, ctx: &mut Context<'_>, acc: &mut StatState) -> rusqlite::Result<()> {
        if let Some(x) = float_arg(ctx.get_raw(0)).map_err(fn_err)? {
            acc.n -= 1.0;
            acc.sum -= x;
            acc.sum_sq -= x * x;
        }
        Ok(())
    }
}

/// ROUND, FLOOR, CEILING and SIGN at run time (`__round(x, length, mode,
/// kind, bits_or_p, s)`), exactly for integers, decimals and money.
pub(crate) fn round(ctx: &rusqlite::functions::Context<'_>) -> rusqlite::Result<Sv> {
    let len: Option<i64> = ctx.get(1)?;
    let Some(len) = len else { return Ok(Sv::Null) };
    let mode = Mode::of(ctx.get::<Option<i64>>(2)?.unwrap_or(0));
    let kind: String = ctx.get(3)?;
    let a: i64 = ctx.get(4)?;
    let s: i64 = ctx.get(5)?;
    let x = ctx.get_raw(0);
    if let ValueRef::Null = x {
        return Ok(Sv::Null);
    }
    match kind.as_str() {
        "f" | "r" => {
            let f = float_arg(x).map_err(fn_err)?.unwrap_or(0.0);
            let scale = 10f64.powi(len.clamp(-308, 308) as i32);
            let y = f * scale;
            let y = match mode {
                Mode::Truncate => y.trunc(),
                Mode::Floor => y.floor(),
                Mode::Ceiling => y.ceil(),
                Mode::Sign => {
                    return Ok(Sv::Real(if f > 0.0 {
                        1.0
                    } else if f < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }))
                }
                Mode::Round => y.round(),
            } / scale;
            let y = if kind == "r" { f64::from(y as f32) } else { y };
            Ok(Sv::Real(if y.is_finite() { y } else { f }))
        }
        "i" => {
            let Some(v) = exact(x, int_name(a)).map_err(fn_err)? else {
                return Ok(Sv::Null);
            };
            let m = round_exact(&v, len, mode, 0);
            let (lo, hi) = int_range(a);
            match m.to_i64() {
                Some(i) if i >= lo && i <= hi => Ok(Sv::Integer(i)),
                _ => Err(fn_err(SqlError::overflow(int_name(a)))),
            }
        }
        _ => {
            let k = if kind == "m" {
                Kind::Money
            } else {
                Kind::Decimal
            };
            let Some(v) = exact(x, k.name()).map_err(fn_err)? else {
                return Ok(Sv::Null);
            };
            let m = round_exact(&v, len, mode, s as u32);
            finish(m, a as u32, s as u32, k).map_err(fn_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Exact {
        parse_exact(s).unwrap()
    }

    fn text(v: Sv) -> String {
        match v {
            Sv::Real(f) => format!("{f}"),
            Sv::Text(t) => t,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn decimal_division_truncates_and_products_round() {
        // 10 / 3.0 → numeric(8,6): 3.333333
        let r = decimal_op(b'/', &e("10"), &e("3.0"), 8, 6, Kind::Decimal).unwrap();
        assert_eq!(text(r), "3.333333");
        // 2147483649 / 2 → 1073741824.500000
        let r = decimal_op(b'/', &e("2147483649"), &e("2"), 16, 6, Kind::Decimal).unwrap();
        // 16 digits: stored as exact text.
        assert_eq!(text(r), "1073741824.500000");
        // The precision page's first example: 0.00000090000000000.
        let r = decimal_op(
            b'*',
            &e("0.00000090000000000000"),
            &e("1.00000000000000000000"),
            38,
            17,
            Kind::Decimal,
        )
        .unwrap();
        assert_eq!(text(r), "0.0000009");
        // ... and its second: rounded to 0.000001.
        let r = decimal_op(
            b'*',
            &e("0.0000009000"),
            &e("1.0000000000"),
            38,
            6,
            Kind::Decimal,
        )
        .unwrap();
        assert_eq!(text(r), "0.000001");
        let big = "99999999999999999999999999999999999999";
        let err = decimal_op(b'+', &e(big), &e("1"), 38, 0, Kind::Decimal).unwrap_err();
        assert_eq!(err.number, 8115);
        assert_eq!(
            decimal_op(b'/', &e("1"), &e("0.00"), 10, 6, Kind::Decimal)
                .unwrap_err()
                .number,
            8134
        );
    }

    #[test]
    fn integers_check_their_type() {
        assert_eq!(int_op(b'/', -7, 2, 32).unwrap(), -3);
        assert_eq!(int_op(b'%', -7, 2, 32).unwrap(), -1);
        assert_eq!(int_op(b'+', 2147483647, 1, 32).unwrap_err().number, 8115);
        assert_eq!(int_op(b'+', 200, 100, 8).unwrap_err().number, 8115);
        assert_eq!(int_op(b'/', 1, 0, 32).unwrap_err().number, 8134);
        assert_eq!(int_op(b'/', i64::MIN, -1, 64).unwrap_err().number, 8115);
    }

    #[test]
    fn round_keeps_the_type() {
        let r = round_exact(&e("123.4567"), 2, Mode::Round, 4);
        assert_eq!(r, BigInt::from(1234600));
        let r = round_exact(&e("748.58"), -3, Mode::Round, 2);
        assert_eq!(r, BigInt::from(100000));
        assert!(finish(r, 5, 2, Kind::Decimal).is_err());
        let r = round_exact(&e("150.75"), 0, Mode::Truncate, 2);
        assert_eq!(r, BigInt::from(15000));
        let r = round_exact(&e("-2.5"), 0, Mode::Round, 1);
        assert_eq!(r, BigInt::from(-30));
        assert_eq!(
            round_exact(&e("-123.45"), 0, Mode::Floor, 0),
            BigInt::from(-124)
        );
        assert_eq!(
            round_exact(&e("123.45"), 0, Mode::Ceiling, 0),
            BigInt::from(124)
        );
        assert_eq!(
            round_exact(&e("748.58"), -2, Mode::Round, 2),
            BigInt::from(70000)
        );
        assert_eq!(
            round_exact(&e("155"), -1, Mode::Round, 0),
            BigInt::from(160)
        );
    }
}
