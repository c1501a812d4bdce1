//! Column values on the wire: TYPE_INFO (MS-TDS 2.2.5.4/2.2.5.5) and the
//! matching value encodings, shared by COLMETADATA/ROW/RETURNVALUE (encode)
//! and RPC parameters/bulk-load rows (decode) so both sides agree on layout.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike,
};
use encoding_rs::Encoding;
use uuid::Uuid;

use super::wire::Source;
use super::{Result, TdsError};
use crate::types::{Decimal, Len, SqlType, Value};

/// SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, CI/AS/KI/WI flags, sort id 52
/// (code page 1252). Every char column we describe carries it.
pub const DEFAULT_COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

pub(crate) mod ty {
    pub const NULL: u8 = 0x1F;
    pub const INT1: u8 = 0x30;
    pub const BIT: u8 = 0x32;
    pub const INT2: u8 = 0x34;
    pub const INT4: u8 = 0x38;
    pub const DATETIM4: u8 = 0x3A;
    pub const FLT4: u8 = 0x3B;
    pub const MONEY: u8 = 0x3C;
    pub const DATETIME: u8 = 0x3D;
    pub const FLT8: u8 = 0x3E;
    pub const MONEY4: u8 = 0x7A;
    pub const INT8: u8 = 0x7F;
    pub const GUID: u8 = 0x24;
    pub const INTN: u8 = 0x26;
    pub const DECIMAL: u8 = 0x37;
    pub const NUMERIC: u8 = 0x3F;
    pub const BITN: u8 = 0x68;
    pub const DECIMALN: u8 = 0x6A;
    pub const NUMERICN: u8 = 0x6C;
    pub const FLTN: u8 = 0x6D;
    pub const MONEYN: u8 = 0x6E;
    pub const DATETIMN: u8 = 0x6F;
    pub const DATEN: u8 = 0x28;
    pub const TIMEN: u8 = 0x29;
    pub const DATETIME2N: u8 = 0x2A;
    pub const DATETIMEOFFSETN: u8 = 0x2B;
    pub const BIGVARBINARY: u8 = 0xA5;
    pub const BIGVARCHAR: u8 = 0xA7;
    pub const BIGBINARY: u8 = 0xAD;
    pub const BIGCHAR: u8 = 0xAF;
    pub const NVARCHAR: u8 = 0xE7;
    pub const NCHAR: u8 = 0xEF;
    pub const TEXT: u8 = 0x23;
    pub const IMAGE: u8 = 0x22;
    pub const NTEXT: u8 = 0x63;
    pub const XML: u8 = 0xF1;
}

/// How a value of a type is length-prefixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// NULLTYPE: no value bytes at all, always NULL.
    Null,
    /// Fixed-length type: exactly this many bytes, never NULL.
    Fixed(u8),
    /// BYTELEN prefix, 0 = NULL.
    ByteLen,
    /// USHORTLEN prefix, 0xFFFF = NULL.
    UShortLen,
    /// Partially length-prefixed (the (max) types and XML).
    Plp,
    /// LONGLEN (TEXT/NTEXT/IMAGE); in rows preceded by a text pointer.
    LongLen,
}

/// A TYPE_INFO as a client sent it, with the [`SqlType`] it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireType {
    pub ty: u8,
    pub framing: Framing,
    /// Declared maximum length in bytes (or the fixed length).
    pub max_len: u32,
    pub precision: u8,
    pub scale: u8,
    pub collation: Option<[u8; 5]>,
    pub sql_type: SqlType,
}

impl WireType {
    fn simple(ty: u8, framing: Framing, max_len: u32, sql_type: SqlType) -> Self {
        WireType {
            ty,
            framing,
            max_len,
            precision: 0,
            scale: 0,
            collation: None,
            sql_type,
        }
    }

    /// True for TEXT/NTEXT/IMAGE, whose bulk COLMETADATA entry carries a
    /// table name.
    pub fn is_long_text(&self) -> bool {
        self.framing == Framing::LongLen
    }
}

fn bad(msg: impl Into<String>) -> TdsError {
    TdsError::Protocol(msg.into())
}

fn read_collation<S: Source>(s: &mut S) -> Result<[u8; 5]> {
    let mut c = [0u8; 5];
    s.read_into(&mut c)?;
    Ok(c)
}

fn check_scale(scale: u8) -> Result<u8> {
    if scale > 7 {
        return Err(bad(format!("time scale {scale} out of range")));
    }
    Ok(scale)
}

/// Reads a TYPE_INFO. Accepts the nullable "N" types, the legacy
/// fixed-length types (FreeTDS and the ODBC driver send those), the
/// TEXT/NTEXT/IMAGE types (mapped to the (max) types), XML (as
/// nvarchar(max)) and NULLTYPE (tiberius sends it for an untyped NULL
/// parameter; mapped to `int`).
pub(crate) fn read_type_info<S: Source>(s: &mut S) -> Result<WireType> {
    use Framing::*;
    let t = s.u8()?;
    let w = match t {
        ty::NULL => WireType::simple(t, Null, 0, SqlType::Int),
        ty::INT1 => WireType::simple(t, Fixed(1), 1, SqlType::TinyInt),
        ty::BIT => WireType::simple(t, Fixed(1), 1, SqlType::Bit),
        ty::INT2 => WireType::simple(t, Fixed(2), 2, SqlType::SmallInt),
        ty::INT4 => WireType::simple(t, Fixed(4), 4, SqlType::Int),
        ty::INT8 => WireType::simple(t, Fixed(8), 8, SqlType::BigInt),
        ty::DATETIM4 => WireType::simple(t, Fixed(4), 4, SqlType::SmallDateTime),
        ty::FLT4 => WireType::simple(t, Fixed(4), 4, SqlType::Real),
        ty::MONEY => WireType::simple(t, Fixed(8), 8, SqlType::Money),
        ty::DATETIME => WireType::simple(t, Fixed(8), 8, SqlType::DateTime),
        ty::FLT8 => WireType::simple(t, Fixed(8), 8, SqlType::Float),
        ty::MONEY4 => WireType::simple(t, Fixed(4), 4, SqlType::SmallMoney),
        ty::INTN | ty::BITN | ty::FLTN | ty::MONEYN | ty::DATETIMN | ty::GUID => {
            let len = s.u8()?;
            let st = match (t, len) {
                (ty::INTN, 1) => SqlType::TinyInt,
                (ty::INTN, 2) => SqlType::SmallInt,
                (ty::INTN, 4) => SqlType::Int,
                (ty::INTN, 8) => SqlType::BigInt,
                (ty::BITN, 1) => SqlType::Bit,
                (ty::FLTN, 4) => SqlType::Real,
                (ty::FLTN, 8) => SqlType::Float,
                (ty::MONEYN, 4) => SqlType::SmallMoney,
                (ty::MONEYN, 8) => SqlType::Money,
                (ty::DATETIMN, 4) => SqlType::SmallDateTime,
                (ty::DATETIMN, 8) => SqlType::DateTime,
                (ty::GUID, 16) => SqlType::UniqueIdentifier,
                _ => return Err(bad(format!("type {t:#04x} with length {len}"))),
            };
            WireType::simple(t, ByteLen, u32::from(len), st)
        }
        ty::DECIMALN | ty::NUMERICN | ty::DECIMAL | ty::NUMERIC => {
            let declared_len = s.u8()?;
            let precision = s.u8()?;
            let scale = s.u8()?;
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(bad(format!(
                    "decimal type with length {declared_len}, precision {precision}, scale {scale}"
                )));
            }
            // The length is only a maximum; every value carries its own. Microsoft's
            // bulk copy (mssql-python 1.16) sends the type byte in its place, so
            // the precision decides the maximum here.
            let len = decimal_len(precision);
            WireType {
                ty: t,
                framing: ByteLen,
                max_len: u32::from(len),
                precision,
                scale,
                collation: None,
                sql_type: SqlType::Decimal {
                    precision,
                    scale,
                    numeric: t == ty::NUMERICN || t == ty::NUMERIC,
                },
            }
        }
        ty::DATEN => WireType::simple(t, ByteLen, 3, SqlType::Date),
        ty::TIMEN | ty::DATETIME2N | ty::DATETIMEOFFSETN => {
            let scale = check_scale(s.u8()?)?;
            let tl = u32::from(time_len(scale));
            let (st, len) = match t {
                ty::TIMEN => (SqlType::Time(scale), tl),
                ty::DATETIME2N => (SqlType::DateTime2(scale), tl + 3),
                _ => (SqlType::DateTimeOffset(scale), tl + 5),
            };
            let mut w = WireType::simple(t, ByteLen, len, st);
            w.scale = scale;
            w
        }
        ty::BIGVARCHAR | ty::BIGCHAR | ty::NVARCHAR | ty::NCHAR => {
            let len = s.u16le()?;
            let collation = Some(read_collation(s)?);
            let unicode = t == ty::NVARCHAR || t == ty::NCHAR;
            let var = t == ty::BIGVARCHAR || t == ty::NVARCHAR;
            let (framing, st) = if len == 0xFFFF {
                if !var {
                    return Err(bad(format!("type {t:#04x} cannot be (max)")));
                }
                (
                    Plp,
                    if unicode {
                        SqlType::NVarChar(Len::Max)
                    } else {
                        SqlType::VarChar(Len::Max)
                    },
                )
            } else {
                let st = match (unicode, var) {
                    (false, true) => SqlType::VarChar(Len::N(len)),
                    (false, false) => SqlType::Char(len),
                    (true, true) => SqlType::NVarChar(Len::N(len / 2)),
                    (true, false) => SqlType::NChar(len / 2),
                };
                (UShortLen, st)
            };
            WireType {
                ty: t,
                framing,
                max_len: u32::from(len),
                precision: 0,
                scale: 0,
                collation,
                sql_type: st,
            }
        }
        ty::BIGVARBINARY | ty::BIGBINARY => {
            let len = s.u16le()?;
            let (framing, st) = match (len, t) {
                (0xFFFF, ty::BIGVARBINARY) => (Plp, SqlType::VarBinary(Len::Max)),
                (0xFFFF, _) => return Err(bad("binary cannot be (max)")),
                (n, ty::BIGVARBINARY) => (UShortLen, SqlType::VarBinary(Len::N(n))),
                (n, _) => (UShortLen, SqlType::Binary(n)),
            };
            WireType::simple(t, framing, u32::from(len), st)
        }
        ty::TEXT | ty::NTEXT => {
            let len = s.u32le()?;
            let mut w = WireType::simple(
                t,
                LongLen,
                len,
                if t == ty::TEXT {
                    SqlType::VarChar(Len::Max)
                } else {
                    SqlType::NVarChar(Len::Max)
                },
            );
            w.collation = Some(read_collation(s)?);
            w
        }
        ty::IMAGE => {
            let len = s.u32le()?;
            WireType::simple(t, LongLen, len, SqlType::VarBinary(Len::Max))
        }
        ty::XML => {
            if s.u8()? != 0 {
                s.b_varchar()?; // database
                s.b_varchar()?; // owning schema
                s.us_varchar()?; // schema collection
            }
            WireType::simple(t, Plp, u32::MAX, SqlType::Xml)
        }
        other => return Err(bad(format!("unsupported TDS data type {other:#04x}"))),
    };
    Ok(w)
}

/// Reads a PLP body; `None` for PLP NULL.
fn read_plp<S: Source>(s: &mut S) -> Result<Option<Vec<u8>>> {
    const PLP_NULL: u64 = u64::MAX;
    const PLP_UNKNOWN: u64 = u64::MAX - 1;
    let total = s.u64le()?;
    if total == PLP_NULL {
        return Ok(None);
    }
    if total != PLP_UNKNOWN && total > super::wire::MAX_VALUE_BYTES as u64 {
        return Err(bad(format!("PLP value of {total} bytes is too large")));
    }
    let mut out = Vec::new();
    loop {
        let n = s.u32le()? as usize;
        if n == 0 {
            break;
        }
        if out.len() + n > super::wire::MAX_VALUE_BYTES {
            return Err(bad("PLP value is too large"));
        }
        let chunk = s.read_vec(n)?;
        out.extend_from_slice(&chunk);
    }
    if total != PLP_UNKNOWN && total != out.len() as u64 {
        return Err(bad(format!(
            "PLP value announced {total} bytes but carried {}",
            out.len()
        )));
    }
    Ok(Some(out))
}

/// Reads one value of type `w`. `in_row` selects the row form of
/// TEXT/NTEXT/IMAGE (text pointer + timestamp before the length) over the
/// RPC-parameter form (just a LONGLEN).
pub(crate) fn read_value<S: Source>(s: &mut S, w: &WireType, in_row: bool) -> Result<Value> {
    let bytes = match w.framing {
        Framing::Null => None,
        Framing::Fixed(n) => Some(s.read_vec(usize::from(n))?),
        Framing::ByteLen => match s.u8()? {
            0 => None,
            n => Some(s.read_vec(usize::from(n))?),
        },
        Framing::UShortLen => match s.u16le()? {
            0xFFFF => None,
            n => Some(s.read_vec(usize::from(n))?),
        },
        Framing::Plp => read_plp(s)?,
        Framing::LongLen => {
            if in_row {
                match s.u8()? {
                    0 => None,
                    p => {
                        s.skip(usize::from(p) + 8)?; // text pointer + timestamp
                        Some(read_long(s)?.unwrap_or_default())
                    }
                }
            } else {
                read_long(s)?
            }
        }
    };
    match bytes {
        None => Ok(Value::Null),
        Some(b) => decode_bytes(w, &b),
    }
}

fn read_long<S: Source>(s: &mut S) -> Result<Option<Vec<u8>>> {
    match s.u32le()? {
        0xFFFF_FFFF => Ok(None),
        n => Ok(Some(s.read_vec(n as usize)?)),
    }
}

fn le_uint(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn base_1900() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

fn len_err(w: &WireType, n: usize) -> TdsError {
    bad(format!("{} value with {n} bytes", w.sql_type.type_name()))
}

/// Decodes the value bytes (length prefix already stripped).
fn decode_bytes(w: &WireType, b: &[u8]) -> Result<Value> {
    let n = b.len();
    Ok(match w.sql_type {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => match n {
            1 => Value::Int(i64::from(b[0])),
            2 => Value::Int(i64::from(i16::from_le_bytes([b[0], b[1]]))),
            4 => Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            8 => Value::Int(le_uint(b) as i64),
            _ => return Err(len_err(w, n)),
        },
        SqlType::Bit => match n {
            1 => Value::Bit(b[0] != 0),
            _ => return Err(len_err(w, n)),
        },
        SqlType::Real | SqlType::Float => match n {
            4 => Value::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            8 => Value::Float(f64::from_bits(le_uint(b))),
            _ => return Err(len_err(w, n)),
        },
        SqlType::Money | SqlType::SmallMoney => match n {
            8 => {
                let hi = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let lo = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let v = (i64::from(hi) << 32) | i64::from(lo);
                Value::Decimal(Decimal::new(i128::from(v), 4))
            }
            4 => Value::Decimal(Decimal::new(
                i128::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                4,
            )),
            _ => return Err(len_err(w, n)),
        },
        SqlType::DateTime | SqlType::SmallDateTime => match n {
            8 => {
                let days = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let ticks = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                if ticks >= 300 * 86_400 {
                    return Err(bad(format!("datetime time part {ticks} out of range")));
                }
                let date = base_1900()
                    .checked_add_signed(Duration::days(i64::from(days)))
                    .ok_or_else(|| bad("datetime day out of range"))?;
                let ns = (u64::from(ticks) * 1_000_000_000 + 150) / 300;
                Value::DateTime(date.and_time(time_from_ns(ns)?))
            }
            4 => {
                let days = u16::from_le_bytes([b[0], b[1]]);
                let mins = u16::from_le_bytes([b[2], b[3]]);
                if mins >= 1440 {
                    return Err(bad("smalldatetime minutes out of range"));
                }
                let date = base_1900()
                    .checked_add_signed(Duration::days(i64::from(days)))
                    .ok_or_else(|| bad("smalldatetime day out of range"))?;
                Value::DateTime(date.and_time(time_from_ns(u64::from(mins) * 60_000_000_000)?))
            }
            _ => return Err(len_err(w, n)),
        },
        SqlType::Decimal { scale, .. } => {
            if !matches!(n, 5 | 9 | 13 | 17) {
                return Err(len_err(w, n));
            }
            let mut mag: u128 = 0;
            for &x in b[1..].iter().rev() {
                mag = (mag << 8) | u128::from(x);
            }
            let m = i128::try_from(mag).map_err(|_| bad("decimal magnitude out of range"))?;
            Value::Decimal(Decimal::new(if b[0] == 0 { -m } else { m }, scale))
        }
        SqlType::UniqueIdentifier => {
            let arr: [u8; 16] = b.try_into().map_err(|_| len_err(w, n))?;
            Value::Guid(guid_from_wire(arr))
        }
        SqlType::Date => {
            if n != 3 {
                return Err(len_err(w, n));
            }
            Value::Date(date_from_wire(b)?)
        }
        SqlType::Time(scale) => {
            if n != usize::from(time_len(scale)) {
                return Err(len_err(w, n));
            }
            Value::Time(time_from_units(le_uint(b), scale)?)
        }
        SqlType::DateTime2(scale) => {
            let tl = usize::from(time_len(scale));
            if n != tl + 3 {
                return Err(len_err(w, n));
            }
            let t = time_from_units(le_uint(&b[..tl]), scale)?;
            Value::DateTime(date_from_wire(&b[tl..])?.and_time(t))
        }
        SqlType::DateTimeOffset(scale) => {
            let tl = usize::from(time_len(scale));
            if n != tl + 5 {
                return Err(len_err(w, n));
            }
            let t = time_from_units(le_uint(&b[..tl]), scale)?;
            let utc = date_from_wire(&b[tl..tl + 3])?.and_time(t);
            let off = i16::from_le_bytes([b[tl + 3], b[tl + 4]]);
            if !(-840..=840).contains(&off) {
                return Err(bad(format!("datetimeoffset offset {off} out of range")));
            }
            let tz = FixedOffset::east_opt(i32::from(off) * 60)
                .ok_or_else(|| bad("bad datetimeoffset offset"))?;
            Value::DateTimeOffset(DateTime::<FixedOffset>::from_naive_utc_and_offset(utc, tz))
        }
        SqlType::Char(_) | SqlType::VarChar(_) => {
            let enc = collation_encoding(w.collation.as_ref());
            let (s, _) = enc.decode_without_bom_handling(b);
            Value::String(s.into_owned())
        }
        SqlType::NChar(_) | SqlType::NVarChar(_) | SqlType::Xml => {
            if n & 1 != 0 {
                return Err(bad("odd byte count in a UTF-16 value"));
            }
            Value::String(super::utf16le_to_string(b))
        }
        SqlType::Binary(_) | SqlType::VarBinary(_) => Value::Binary(b.to_vec()),
    })
}

/// Bytes of the time part for a fractional-second scale.
pub(crate) fn time_len(scale: u8) -> u8 {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

fn time_from_ns(ns: u64) -> Result<NaiveTime> {
    let secs = u32::try_from(ns / 1_000_000_000).map_err(|_| bad("time out of range"))?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, (ns % 1_000_000_000) as u32)
        .ok_or_else(|| bad("time out of range"))
}

fn time_from_units(units: u64, scale: u8) -> Result<NaiveTime> {
    let ns = units
        .checked_mul(10u64.pow(9 - u32::from(scale)))
        .filter(|&ns| ns < 86_400 * 1_000_000_000)
        .ok_or_else(|| bad("time out of range"))?;
    time_from_ns(ns)
}

fn date_from_wire(b: &[u8]) -> Result<NaiveDate> {
    let days = le_uint(b) as i32;
    NaiveDate::from_num_days_from_ce_opt(days + 1).ok_or_else(|| bad("date out of range"))
}

/// SQL Server stores the first three GUID fields little-endian.
fn guid_from_wire(b: [u8; 16]) -> Uuid {
    let mut o = b;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    Uuid::from_bytes(o)
}

fn guid_to_wire(u: &Uuid) -> [u8; 16] {
    let mut o = *u.as_bytes();
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    o
}

/// The code page for a collation: UTF-8 collations (fUTF8), SQL collations
/// by sort id, Windows collations by LCID; 1252 when unknown or absent
/// (tiberius sends an all-zero "raw" collation with its parameters).
pub fn collation_encoding(c: Option<&[u8; 5]>) -> &'static Encoding {
    let Some(c) = c else {
        return encoding_rs::WINDOWS_1252;
    };
    let info = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    if info & (1 << 26) != 0 {
        return encoding_rs::UTF_8;
    }
    let sort = c[4];
    let enc = if sort != 0 {
        match sort {
            80..=96 | 183..=186 => Some(encoding_rs::WINDOWS_1250),
            104..=108 => Some(encoding_rs::WINDOWS_1251),
            112..=124 => Some(encoding_rs::WINDOWS_1253),
            128..=130 => Some(encoding_rs::WINDOWS_1254),
            136..=138 => Some(encoding_rs::WINDOWS_1255),
            144..=146 => Some(encoding_rs::WINDOWS_1256),
            152..=160 => Some(encoding_rs::WINDOWS_1257),
            _ => None,
        }
    } else {
        let lcid = info & 0xFFFF;
        match lcid & 0x3FF {
            0x01 | 0x20 | 0x29 | 0x8C | 0x92 => Some(encoding_rs::WINDOWS_1256),
            0x02 | 0x19 | 0x22 | 0x23 | 0x2F | 0x3F | 0x40 | 0x44 | 0x50 | 0x6D => {
                Some(encoding_rs::WINDOWS_1251)
            }
            0x05 | 0x0E | 0x15 | 0x18 | 0x1B | 0x1C | 0x24 => Some(encoding_rs::WINDOWS_1250),
            0x1A => {
                // Croatian/Serbian Latin are 1250, Cyrillic variants 1251.
                if matches!(lcid, 0x0C1A | 0x1C1A | 0x201A) {
                    Some(encoding_rs::WINDOWS_1251)
                } else {
                    Some(encoding_rs::WINDOWS_1250)
                }
            }
            0x08 => Some(encoding_rs::WINDOWS_1253),
            0x0D => Some(encoding_rs::WINDOWS_1255),
            0x1F | 0x2C | 0x43 => Some(encoding_rs::WINDOWS_1254),
            0x25..=0x27 => Some(encoding_rs::WINDOWS_1257),
            0x2A => Some(encoding_rs::WINDOWS_1258),
            0x1E => Some(encoding_rs::WINDOWS_874),
            0x11 => Some(encoding_rs::SHIFT_JIS),
            0x12 => Some(encoding_rs::EUC_KR),
            0x04 => {
                if matches!(lcid, 0x0804 | 0x1004) {
                    Some(encoding_rs::GBK)
                } else {
                    Some(encoding_rs::BIG5)
                }
            }
            _ => None,
        }
    };
    enc.unwrap_or(encoding_rs::WINDOWS_1252)
}

// ---------------------------------------------------------------------------
// Encoding (server -> client)
// ---------------------------------------------------------------------------

/// Wire length of a decimal value by precision (sign byte + magnitude).
pub(crate) fn decimal_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

/// Framing of the type info [`write_type_info`] emits for `st`.
pub(crate) fn framing_of(st: &SqlType) -> Framing {
    match st {
        SqlType::Char(_) | SqlType::NChar(_) | SqlType::Binary(_) => Framing::UShortLen,
        SqlType::VarChar(l) | SqlType::NVarChar(l) | SqlType::VarBinary(l) => match l {
            Len::Max => Framing::Plp,
            Len::N(_) => Framing::UShortLen,
        },
        SqlType::Xml => Framing::Plp,
        _ => Framing::ByteLen,
    }
}

fn checked_len(st: &SqlType, bytes: u32) -> Result<u16> {
    if bytes == 0 || bytes >= 0xFFFF {
        return Err(bad(format!(
            "cannot describe {} on the wire",
            st.type_name()
        )));
    }
    Ok(bytes as u16)
}

/// Writes the TYPE_INFO SQL Server uses in result metadata for `st`: the
/// nullable "N" types, big char/binary types and PLP for (max).
pub(crate) fn write_type_info(out: &mut Vec<u8>, st: &SqlType) -> Result<()> {
    write_type_info_in(out, st, None)
}

/// [`write_type_info`] for a string column of collation `c` (the server's
/// when `None`): its COLLATION bytes tell the client how to read it.
pub(crate) fn write_type_info_in(
    out: &mut Vec<u8>,
    st: &SqlType,
    c: Option<&crate::types::Collation>,
) -> Result<()> {
    let bytes = c.map(|c| c.to_tds()).unwrap_or(DEFAULT_COLLATION);
    let coll = |out: &mut Vec<u8>| out.extend_from_slice(&bytes);
    let ushort = |out: &mut Vec<u8>, t: u8, n: u16| {
        out.push(t);
        out.extend_from_slice(&n.to_le_bytes());
    };
    match *st {
        SqlType::Bit => out.extend_from_slice(&[ty::BITN, 1]),
        SqlType::TinyInt => out.extend_from_slice(&[ty::INTN, 1]),
        SqlType::SmallInt => out.extend_from_slice(&[ty::INTN, 2]),
        SqlType::Int => out.extend_from_slice(&[ty::INTN, 4]),
        SqlType::BigInt => out.extend_from_slice(&[ty::INTN, 8]),
        SqlType::Decimal {
            precision,
            scale,
            numeric,
        } => {
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(bad(format!("bad type {}", st.type_name())));
            }
            out.extend_from_slice(&[
                if numeric { ty::NUMERICN } else { ty::DECIMALN },
                decimal_len(precision),
                precision,
                scale,
            ]);
        }
        SqlType::Money => out.extend_from_slice(&[ty::MONEYN, 8]),
        SqlType::SmallMoney => out.extend_from_slice(&[ty::MONEYN, 4]),
        SqlType::Float => out.extend_from_slice(&[ty::FLTN, 8]),
        SqlType::Real => out.extend_from_slice(&[ty::FLTN, 4]),
        SqlType::Char(n) => {
            ushort(out, ty::BIGCHAR, checked_len(st, u32::from(n))?);
            coll(out);
        }
        SqlType::VarChar(l) => {
            let n = match l {
                Len::Max => 0xFFFF,
                Len::N(n) => checked_len(st, u32::from(n))?,
            };
            ushort(out, ty::BIGVARCHAR, n);
            coll(out);
        }
        SqlType::NChar(n) => {
            ushort(out, ty::NCHAR, checked_len(st, 2 * u32::from(n))?);
            coll(out);
        }
        SqlType::NVarChar(l) => {
            let n = match l {
                Len::Max => 0xFFFF,
                Len::N(n) => checked_len(st, 2 * u32::from(n))?,
            };
            ushort(out, ty::NVARCHAR, n);
            coll(out);
        }
        SqlType::Binary(n) => ushort(out, ty::BIGBINARY, checked_len(st, u32::from(n))?),
        SqlType::VarBinary(l) => {
            let n = match l {
                Len::Max => 0xFFFF,
                Len::N(n) => checked_len(st, u32::from(n))?,
            };
            ushort(out, ty::BIGVARBINARY, n);
        }
        SqlType::Date => out.push(ty::DATEN),
        SqlType::Time(s) => out.extend_from_slice(&[ty::TIMEN, check_scale(s)?]),
        SqlType::DateTime => out.extend_from_slice(&[ty::DATETIMN, 8]),
        SqlType::SmallDateTime => out.extend_from_slice(&[ty::DATETIMN, 4]),
        SqlType::DateTime2(s) => out.extend_from_slice(&[ty::DATETIME2N, check_scale(s)?]),
        SqlType::DateTimeOffset(s) => {
            out.extend_from_slice(&[ty::DATETIMEOFFSETN, check_scale(s)?])
        }
        SqlType::UniqueIdentifier => out.extend_from_slice(&[ty::GUID, 16]),
        // XML_INFO with SCHEMA_PRESENT = 0: untyped xml (MS-TDS 2.2.5.5.3).
        SqlType::Xml => out.extend_from_slice(&[ty::XML, 0]),
    }
    Ok(())
}

/// Writes a NULL in the framing of `st`'s type info.
pub(crate) fn write_null(out: &mut Vec<u8>, st: &SqlType) {
    match framing_of(st) {
        Framing::UShortLen => out.extend_from_slice(&0xFFFFu16.to_le_bytes()),
        Framing::Plp => out.extend_from_slice(&u64::MAX.to_le_bytes()),
        _ => out.push(0),
    }
}

/// Largest chunk we put in one PLP chunk.
const PLP_CHUNK: usize = 1 << 20;

fn write_plp(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for c in data.chunks(PLP_CHUNK) {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Encodes `s` in code page 1252 the way SQL Server stores it in a
/// Latin1 varchar: characters outside the code page become '?'.
pub(crate) fn encode_1252(s: &str) -> Vec<u8> {
    encode_in(encoding_rs::WINDOWS_1252, s)
}

/// Encodes `s` in `encoding`, characters it lacks as '?'.
pub(crate) fn encode_in(encoding: &'static Encoding, s: &str) -> Vec<u8> {
    if s.is_ascii() || encoding == encoding_rs::UTF_8 {
        return s.as_bytes().to_vec();
    }
    let mut enc = encoding.new_encoder();
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    loop {
        let mut buf = [0u8; 1024];
        let (res, read, written) = enc.encode_from_utf8_without_replacement(rest, &mut buf, true);
        out.extend_from_slice(&buf[..written]);
        rest = &rest[read..];
        match res {
            encoding_rs::EncoderResult::InputEmpty => break,
            encoding_rs::EncoderResult::OutputFull => {}
            encoding_rs::EncoderResult::Unmappable(_) => out.push(b'?'),
        }
    }
    out
}

fn mismatch(col: &str, st: &SqlType, v: &Value) -> TdsError {
    let kind = match v {
        Value::Null => "NULL",
        Value::Bit(_) => "bit",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::Decimal(_) => "decimal",
        Value::String(_) => "string",
        Value::Binary(_) => "binary",
        Value::Date(_) => "date",
        Value::Time(_) => "time",
        Value::DateTime(_) => "datetime",
        Value::DateTimeOffset(_) => "datetimeoffset",
        Value::Guid(_) => "uniqueidentifier",
    };
    bad(format!(
        "column {col:?}: a {kind} value cannot be sent as {}",
        st.type_name()
    ))
}

fn overflow(col: &str, st: &SqlType) -> TdsError {
    bad(format!(
        "column {col:?}: value out of range for {}",
        st.type_name()
    ))
}

fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Decimal(d) => Some(*d),
        Value::Int(i) => Some(Decimal::new(i128::from(*i), 0)),
        _ => None,
    }
}

/// Nanoseconds since midnight (leap-second nanos clamped).
fn ns_of_day(t: &NaiveTime) -> u64 {
    u64::from(t.num_seconds_from_midnight()) * 1_000_000_000
        + u64::from(t.nanosecond().min(999_999_999))
}

/// Time of day in units of 10^-scale s, rounded half up; the bool says the
/// rounding carried into the next day.
fn time_units(t: &NaiveTime, scale: u8) -> (u64, bool) {
    let div = 10u64.pow(9 - u32::from(scale));
    let units = (ns_of_day(t) + div / 2) / div;
    let day = 86_400 * 10u64.pow(u32::from(scale));
    if units >= day {
        (units - day, true)
    } else {
        (units, false)
    }
}

fn put_uint(out: &mut Vec<u8>, v: u64, n: usize) {
    out.extend_from_slice(&v.to_le_bytes()[..n]);
}

/// Days since 0001-01-01 for DATE/DATETIME2/DATETIMEOFFSET.
fn date_days(d: &NaiveDate) -> u64 {
    (d.num_days_from_ce() - 1) as u64
}

fn write_date_time2(
    out: &mut Vec<u8>,
    dt: &NaiveDateTime,
    scale: u8,
    col: &str,
    st: &SqlType,
) -> Result<()> {
    let (units, carry) = time_units(&dt.time(), scale);
    let mut date = dt.date();
    if carry {
        date = date.succ_opt().ok_or_else(|| overflow(col, st))?;
    }
    put_uint(out, units, usize::from(time_len(scale)));
    put_uint(out, date_days(&date), 3);
    Ok(())
}

/// Writes one value (with its length prefix) for a column of type `st`, as
/// described by [`write_type_info`]. `col` names the column in errors.
pub(crate) fn write_value(out: &mut Vec<u8>, st: &SqlType, v: &Value, col: &str) -> Result<()> {
    write_value_in(out, st, v, col, None)
}

/// [`write_value`] for a column of collation `c`: char and varchar values
/// go in that collation's code page (characters it lacks become '?', as
/// SQL Server stores them), or UTF-8 for a `_UTF8` collation.
pub(crate) fn write_value_in(
    out: &mut Vec<u8>,
    st: &SqlType,
    v: &Value,
    col: &str,
    c: Option<&crate::types::Collation>,
) -> Result<()> {
    if v.is_null() {
        write_null(out, st);
        return Ok(());
    }
    let err = || mismatch(col, st, v);
    match *st {
        SqlType::Bit => {
            let b = match v {
                Value::Bit(b) => *b,
                Value::Int(i) => *i != 0,
                _ => return Err(err()),
            };
            out.extend_from_slice(&[1, u8::from(b)]);
        }
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            let Value::Int(i) = *v else {
                return Err(err());
            };
            match *st {
                SqlType::TinyInt => {
                    let x = u8::try_from(i).map_err(|_| overflow(col, st))?;
                    out.extend_from_slice(&[1, x]);
                }
                SqlType::SmallInt => {
                    let x = i16::try_from(i).map_err(|_| overflow(col, st))?;
                    out.push(2);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                SqlType::Int => {
                    let x = i32::try_from(i).map_err(|_| overflow(col, st))?;
                    out.push(4);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                _ => {
                    out.push(8);
                    out.extend_from_slice(&i.to_le_bytes());
                }
            }
        }
        SqlType::Decimal {
            precision, scale, ..
        } => {
            let d = as_decimal(v).ok_or_else(err)?;
            let d = d.round_to(scale).ok_or_else(|| overflow(col, st))?;
            if d.mantissa != 0 && d.digits() > u32::from(precision) {
                return Err(overflow(col, st));
            }
            let len = decimal_len(precision);
            out.push(len);
            out.push(u8::from(d.mantissa >= 0));
            let mag = d.mantissa.unsigned_abs().to_le_bytes();
            out.extend_from_slice(&mag[..usize::from(len) - 1]);
        }
        SqlType::Money | SqlType::SmallMoney => {
            let d = as_decimal(v).ok_or_else(err)?;
            let m = d.round_to(4).ok_or_else(|| overflow(col, st))?.mantissa;
            if *st == SqlType::Money {
                let m = i64::try_from(m).map_err(|_| overflow(col, st))?;
                out.push(8);
                out.extend_from_slice(&((m >> 32) as i32).to_le_bytes());
                out.extend_from_slice(&(m as u32).to_le_bytes());
            } else {
                let m = i32::try_from(m).map_err(|_| overflow(col, st))?;
                out.push(4);
                out.extend_from_slice(&m.to_le_bytes());
            }
        }
        SqlType::Float | SqlType::Real => {
            let f = match v {
                Value::Float(f) => *f,
                Value::Int(i) => *i as f64,
                Value::Decimal(d) => d.to_f64(),
                _ => return Err(err()),
            };
            if *st == SqlType::Float {
                out.push(8);
                out.extend_from_slice(&f.to_le_bytes());
            } else {
                out.push(4);
                out.extend_from_slice(&(f as f32).to_le_bytes());
            }
        }
        SqlType::Char(_) | SqlType::VarChar(_) => {
            let Value::String(s) = v else {
                return Err(err());
            };
            let mut b = match c {
                Some(c) => encode_in(collation_encoding(Some(&c.to_tds())), s),
                None => encode_1252(s),
            };
            write_sized(out, st, &mut b, b' ', 1, col)?;
        }
        SqlType::NChar(_) | SqlType::NVarChar(_) | SqlType::Xml => {
            let Value::String(s) = v else {
                return Err(err());
            };
            let mut b = Vec::with_capacity(s.len() * 2);
            super::put_utf16le(&mut b, s);
            write_sized(out, st, &mut b, b' ', 2, col)?;
        }
        SqlType::Binary(_) | SqlType::VarBinary(_) => {
            let Value::Binary(b) = v else {
                return Err(err());
            };
            let mut b = b.clone();
            write_sized(out, st, &mut b, 0, 1, col)?;
        }
        SqlType::Date => {
            let d = match v {
                Value::Date(d) => *d,
                Value::DateTime(dt) => dt.date(),
                _ => return Err(err()),
            };
            out.push(3);
            put_uint(out, date_days(&d), 3);
        }
        SqlType::Time(scale) => {
            let Value::Time(t) = v else {
                return Err(err());
            };
            // Rounding 23:59:59.9999999 up wraps to midnight, as SQL Server does.
            let (units, _) = time_units(t, scale);
            let tl = time_len(scale);
            out.push(tl);
            put_uint(out, units, usize::from(tl));
        }
        SqlType::DateTime2(scale) => {
            let dt = match v {
                Value::DateTime(dt) => *dt,
                Value::Date(d) => d.and_time(NaiveTime::MIN),
                _ => return Err(err()),
            };
            out.push(time_len(scale) + 3);
            write_date_time2(out, &dt, scale, col, st)?;
        }
        SqlType::DateTimeOffset(scale) => {
            let (utc, off) = match v {
                Value::DateTimeOffset(d) => (d.naive_utc(), d.offset().local_minus_utc() / 60),
                Value::DateTime(dt) => (*dt, 0),
                _ => return Err(err()),
            };
            out.push(time_len(scale) + 5);
            write_date_time2(out, &utc, scale, col, st)?;
            out.extend_from_slice(&(off as i16).to_le_bytes());
        }
        SqlType::DateTime => {
            let dt = match v {
                Value::DateTime(dt) => *dt,
                Value::Date(d) => d.and_time(NaiveTime::MIN),
                _ => return Err(err()),
            };
            let (days, ticks) = datetime_parts(&dt).ok_or_else(|| overflow(col, st))?;
            out.push(8);
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&ticks.to_le_bytes());
        }
        SqlType::SmallDateTime => {
            let dt = match v {
                Value::DateTime(dt) => *dt,
                Value::Date(d) => d.and_time(NaiveTime::MIN),
                _ => return Err(err()),
            };
            let (days, mins) = smalldatetime_parts(&dt).ok_or_else(|| overflow(col, st))?;
            out.push(4);
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&mins.to_le_bytes());
        }
        SqlType::UniqueIdentifier => {
            let Value::Guid(g) = v else {
                return Err(err());
            };
            out.push(16);
            out.extend_from_slice(&guid_to_wire(g));
        }
    }
    Ok(())
}

/// Writes a char/binary value: fixed types are padded to their length (SQL
/// Server pads char with spaces and binary with zeros), (max) goes as PLP.
fn write_sized(
    out: &mut Vec<u8>,
    st: &SqlType,
    b: &mut Vec<u8>,
    pad: u8,
    unit: usize,
    col: &str,
) -> Result<()> {
    let (limit, fixed) = match *st {
        SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => (Some(usize::from(n)), true),
        SqlType::VarChar(Len::N(n))
        | SqlType::NVarChar(Len::N(n))
        | SqlType::VarBinary(Len::N(n)) => (Some(usize::from(n)), false),
        _ => (None, false),
    };
    match limit {
        None => write_plp(out, b),
        Some(n) => {
            let max = n * unit;
            if b.len() > max {
                return Err(bad(format!(
                    "column {col:?}: value of {} bytes does not fit {}",
                    b.len(),
                    st.type_name()
                )));
            }
            if fixed {
                while b.len() < max {
                    b.push(pad);
                    if unit == 2 {
                        b.push(0);
                    }
                }
            }
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// DATETIME as (days since 1900-01-01, 1/300 s ticks), rounded to the
/// nearest tick like SQL Server (…998 → .997, …999 → next day).
/// `None` outside 1753-01-01..=9999-12-31.
pub(crate) fn datetime_parts(dt: &NaiveDateTime) -> Option<(i32, u32)> {
    let ns = ns_of_day(&dt.time());
    let mut ticks = (ns * 3 + 5_000_000) / 10_000_000;
    let mut date = dt.date();
    if ticks >= 300 * 86_400 {
        ticks -= 300 * 86_400;
        date = date.succ_opt()?;
    }
    if date.year() < 1753 {
        return None;
    }
    let days = (date - base_1900()).num_days();
    Some((i32::try_from(days).ok()?, ticks as u32))
}

/// SMALLDATETIME as (days since 1900-01-01, minutes); 29.999 s and more
/// round up, as SQL Server documents. `None` outside 1900-01-01..=2079-06-06.
pub(crate) fn smalldatetime_parts(dt: &NaiveDateTime) -> Option<(u16, u16)> {
    let ns = ns_of_day(&dt.time());
    let mut mins = ns / 60_000_000_000;
    if ns % 60_000_000_000 >= 29_999_000_000 {
        mins += 1;
    }
    let mut date = dt.date();
    if mins >= 1440 {
        mins -= 1440;
        date = date.succ_opt()?;
    }
    let days = (date - base_1900()).num_days();
    Some((u16::try_from(days).ok()?, mins as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::wire::SliceSource;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    /// Encodes with the result-metadata type and decodes it back.
    fn roundtrip(st: SqlType, v: Value) -> Value {
        let mut ti = Vec::new();
        write_type_info(&mut ti, &st).unwrap();
        let w = read_type_info(&mut SliceSource::new(&ti)).unwrap();
        assert_eq!(w.sql_type, st);
        let mut b = Vec::new();
        write_value(&mut b, &st, &v, "c").unwrap();
        let mut src = SliceSource::new(&b);
        let got = read_value(&mut src, &w, true).unwrap();
        assert_eq!(src.remaining(), 0);
        got
    }

    #[test]
    fn datetime_known_bytes() {
        let (d, t) = datetime_parts(&dt("1900-01-01 00:00:00.003")).unwrap();
        assert_eq!((d, t), (0, 1));
        let (d, t) = datetime_parts(&dt("1900-01-02 00:00:01")).unwrap();
        assert_eq!((d, t), (1, 300));
        // .995 -> .997 (tick 299), .999 -> next day.
        assert_eq!(
            datetime_parts(&dt("2000-01-01 23:59:59.995")).unwrap().1,
            25_919_999
        );
        let (d1, _) = datetime_parts(&dt("2000-01-01 00:00:00")).unwrap();
        assert_eq!(
            datetime_parts(&dt("2000-01-01 23:59:59.999")).unwrap(),
            (d1 + 1, 0)
        );
        assert_eq!(
            datetime_parts(&dt("1753-01-01 00:00:00")).unwrap().0,
            -53690
        );
        assert!(datetime_parts(&dt("1752-12-31 00:00:00")).is_none());
        let mut b = Vec::new();
        write_value(
            &mut b,
            &SqlType::DateTime,
            &Value::DateTime(dt("1900-01-01 00:00:00.003")),
            "c",
        )
        .unwrap();
        assert_eq!(b, [8, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn smalldatetime_rounding() {
        assert_eq!(
            smalldatetime_parts(&dt("1900-01-01 00:00:29.998")).unwrap(),
            (0, 0)
        );
        assert_eq!(
            smalldatetime_parts(&dt("1900-01-01 00:00:29.999")).unwrap(),
            (0, 1)
        );
        assert_eq!(
            smalldatetime_parts(&dt("1900-01-01 23:59:30")).unwrap(),
            (1, 0)
        );
        assert!(smalldatetime_parts(&dt("2079-06-07 00:00:00")).is_none());
    }

    #[test]
    fn known_encodings() {
        let mut b = Vec::new();
        // date 0001-01-01 is day 0; 1900-01-01 is day 693595 = 0x0A955B.
        write_value(
            &mut b,
            &SqlType::Date,
            &Value::Date(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()),
            "c",
        )
        .unwrap();
        assert_eq!(b, [3, 0x5B, 0x95, 0x0A]);
        // decimal(5,2) 123.45 -> len 5, positive, 12345 LE.
        b.clear();
        let st = SqlType::Decimal {
            precision: 5,
            scale: 2,
            numeric: false,
        };
        write_value(&mut b, &st, &Value::Decimal("123.45".parse().unwrap()), "c").unwrap();
        assert_eq!(b, [5, 1, 0x39, 0x30, 0, 0]);
        // money 1.0001 -> 10001 as hi=0, lo=10001.
        b.clear();
        write_value(
            &mut b,
            &SqlType::Money,
            &Value::Decimal("-1".parse().unwrap()),
            "c",
        )
        .unwrap();
        assert_eq!(b, [8, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xD8, 0xFF, 0xFF]);
        // GUID mixed endian.
        b.clear();
        let g = Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        write_value(&mut b, &SqlType::UniqueIdentifier, &Value::Guid(g), "c").unwrap();
        assert_eq!(
            b,
            [
                16, 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                0xdd, 0xee, 0xff
            ]
        );
        // time(7) 00:00:01 -> 10^7 units in 5 bytes.
        b.clear();
        write_value(
            &mut b,
            &SqlType::Time(7),
            &Value::Time(NaiveTime::from_hms_opt(0, 0, 1).unwrap()),
            "c",
        )
        .unwrap();
        assert_eq!(b, [5, 0x80, 0x96, 0x98, 0, 0]);
        // char(3) pads; varchar uses 1252.
        b.clear();
        write_value(&mut b, &SqlType::Char(3), &Value::String("é".into()), "c").unwrap();
        assert_eq!(b, [3, 0, 0xE9, b' ', b' ']);
        b.clear();
        write_value(
            &mut b,
            &SqlType::VarChar(Len::N(10)),
            &Value::String("€✓".into()),
            "c",
        )
        .unwrap();
        assert_eq!(b, [2, 0, 0x80, b'?']);
    }

    #[test]
    fn mismatches_and_overflow_are_errors() {
        let mut b = Vec::new();
        assert!(write_value(&mut b, &SqlType::Int, &Value::String("1".into()), "x").is_err());
        assert!(write_value(&mut b, &SqlType::TinyInt, &Value::Int(256), "x").is_err());
        assert!(write_value(&mut b, &SqlType::Int, &Value::Int(1 << 40), "x").is_err());
        let st = SqlType::Decimal {
            precision: 3,
            scale: 1,
            numeric: true,
        };
        assert!(write_value(&mut b, &st, &Value::Decimal("100.0".parse().unwrap()), "x").is_err());
        assert!(write_value(
            &mut b,
            &SqlType::VarChar(Len::N(2)),
            &Value::String("abc".into()),
            "x"
        )
        .is_err());
        let e = write_value(&mut b, &SqlType::Bit, &Value::Float(1.0), "colname").unwrap_err();
        assert!(e.to_string().contains("colname"));
    }

    #[test]
    fn roundtrips() {
        use SqlType::*;
        let dec = |s: &str| Value::Decimal(s.parse().unwrap());
        let cases: Vec<(SqlType, Value)> = vec![
            (Bit, Value::Bit(true)),
            (TinyInt, Value::Int(255)),
            (SmallInt, Value::Int(-32768)),
            (Int, Value::Int(i64::from(i32::MIN))),
            (BigInt, Value::Int(i64::MIN)),
            (
                Decimal {
                    precision: 38,
                    scale: 10,
                    numeric: false,
                },
                dec("-1234567890123456789012345678.9012345678"),
            ),
            (
                Decimal {
                    precision: 19,
                    scale: 0,
                    numeric: true,
                },
                dec("9999999999999999999"),
            ),
            (Money, dec("-922337203685477.5808")),
            (SmallMoney, dec("214748.3647")),
            (Float, Value::Float(1.5e300)),
            (Real, Value::Float(0.25)),
            (Char(4), Value::String("ab  ".into())),
            (VarChar(Len::N(10)), Value::String("café".into())),
            (VarChar(Len::Max), Value::String("x".repeat(3_000_000))),
            (VarChar(Len::Max), Value::String(String::new())),
            (NChar(2), Value::String("ü ".into())),
            (NVarChar(Len::N(4000)), Value::String("日本語😀".into())),
            (NVarChar(Len::Max), Value::String("ω".repeat(70_000))),
            (Binary(3), Value::Binary(vec![1, 2, 3])),
            (VarBinary(Len::N(8000)), Value::Binary(vec![0; 8000])),
            (VarBinary(Len::Max), Value::Binary(vec![7; 10])),
            (
                Date,
                Value::Date(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()),
            ),
            (
                Time(0),
                Value::Time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()),
            ),
            (
                Time(7),
                Value::Time(NaiveTime::from_hms_nano_opt(1, 2, 3, 123_456_700).unwrap()),
            ),
            (DateTime, Value::DateTime(dt("2024-02-29 12:34:56.000"))),
            (SmallDateTime, Value::DateTime(dt("2079-06-06 23:59:00"))),
            (DateTime2(3), Value::DateTime(dt("0001-01-01 00:00:00.123"))),
            (
                DateTime2(7),
                Value::DateTime(dt("9999-12-31 23:59:59.9999999")),
            ),
            (
                DateTimeOffset(7),
                Value::DateTimeOffset(
                    chrono::DateTime::parse_from_rfc3339("2024-01-01T01:30:00.1234567+05:30")
                        .unwrap(),
                ),
            ),
            (
                UniqueIdentifier,
                Value::Guid(Uuid::from_u128(0x1234_5678_9abc)),
            ),
        ];
        for (st, v) in cases {
            assert_eq!(roundtrip(st, v.clone()), v, "{}", st.type_name());
            assert_eq!(
                roundtrip(st, Value::Null),
                Value::Null,
                "{}",
                st.type_name()
            );
        }
    }

    #[test]
    fn datetimeoffset_is_utc_on_the_wire() {
        let v = Value::DateTimeOffset(
            chrono::DateTime::parse_from_rfc3339("2024-01-01T01:30:00+05:30").unwrap(),
        );
        let mut b = Vec::new();
        write_value(&mut b, &SqlType::DateTimeOffset(0), &v, "c").unwrap();
        // UTC 2023-12-31 20:00:00 = 72000 s; offset +330 minutes.
        assert_eq!(&b[1..4], &72000u32.to_le_bytes()[..3]);
        assert_eq!(&b[7..9], &330i16.to_le_bytes());
    }

    #[test]
    fn rounding_to_scale() {
        let v = Value::DateTime(dt("2000-01-01 23:59:59.96"));
        assert_eq!(
            roundtrip(SqlType::DateTime2(1), v),
            Value::DateTime(dt("2000-01-02 00:00:00"))
        );
        let v = Value::Decimal("1.005".parse().unwrap());
        let st = SqlType::Decimal {
            precision: 5,
            scale: 2,
            numeric: false,
        };
        assert_eq!(roundtrip(st, v), Value::Decimal("1.01".parse().unwrap()));
    }

    #[test]
    fn legacy_and_text_types_decode() {
        // INT4 fixed, FLT8 fixed, MONEY4 fixed, DATETIME fixed.
        let mut s = SliceSource::new(&[ty::INT4]);
        let w = read_type_info(&mut s).unwrap();
        assert_eq!(w.sql_type, SqlType::Int);
        let v = read_value(&mut SliceSource::new(&(-5i32).to_le_bytes()), &w, true).unwrap();
        assert_eq!(v, Value::Int(-5));
        // TEXT in an RPC param: LONGLEN + data; in a row: textptr + ts first.
        let mut ti = vec![ty::TEXT];
        ti.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        ti.extend_from_slice(&DEFAULT_COLLATION);
        let w = read_type_info(&mut SliceSource::new(&ti)).unwrap();
        assert_eq!(w.sql_type, SqlType::VarChar(Len::Max));
        let mut p = 3u32.to_le_bytes().to_vec();
        p.extend_from_slice(b"a\xE9c");
        assert_eq!(
            read_value(&mut SliceSource::new(&p), &w, false).unwrap(),
            Value::String("aéc".into())
        );
        let mut r = vec![16u8];
        r.extend_from_slice(&[0; 24]);
        r.extend_from_slice(&p);
        assert_eq!(
            read_value(&mut SliceSource::new(&r), &w, true).unwrap(),
            Value::String("aéc".into())
        );
        assert_eq!(
            read_value(&mut SliceSource::new(&[0]), &w, true).unwrap(),
            Value::Null
        );
        // UTF-8 collation.
        let mut ti = vec![ty::BIGVARCHAR, 10, 0];
        ti.extend_from_slice(&[0x09, 0x04, 0xD0, 0x24, 0]);
        let w = read_type_info(&mut SliceSource::new(&ti)).unwrap();
        let mut p = vec![2u8, 0];
        p.extend_from_slice("é".as_bytes());
        assert_eq!(
            read_value(&mut SliceSource::new(&p), &w, false).unwrap(),
            Value::String("é".into())
        );
    }

    #[test]
    fn plp_chunks_and_unknown_length() {
        let w = read_type_info(&mut SliceSource::new(&[
            ty::NVARCHAR,
            0xFF,
            0xFF,
            0,
            0,
            0,
            0,
            0,
        ]))
        .unwrap();
        let mut p = (u64::MAX - 1).to_le_bytes().to_vec();
        for part in ["ab", "c"] {
            let mut u = Vec::new();
            crate::tds::put_utf16le(&mut u, part);
            p.extend_from_slice(&(u.len() as u32).to_le_bytes());
            p.extend_from_slice(&u);
        }
        p.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            read_value(&mut SliceSource::new(&p), &w, false).unwrap(),
            Value::String("abc".into())
        );
        // Known length that does not match is malformed.
        let mut p = 10u64.to_le_bytes().to_vec();
        p.extend_from_slice(&2u32.to_le_bytes());
        p.extend_from_slice(&[b'a', 0, 0, 0, 0, 0]);
        assert!(read_value(&mut SliceSource::new(&p), &w, false).is_err());
    }

    #[test]
    fn random_type_info_and_values_never_panic() {
        let mut rng = crate::tds::testutil::XorShift(42);
        for _ in 0..20_000 {
            let b = rng.bytes(40);
            let mut s = SliceSource::new(&b);
            if let Ok(w) = read_type_info(&mut s) {
                let _ = read_value(&mut s, &w, rng.next() & 1 == 0);
            }
        }
    }
}
