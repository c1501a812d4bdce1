//! SQL Server data types and values, shared by the TDS codec and the engine.
//!
//! The engine stores values in SQLite and hands them to the codec as [`Value`]s
//! tagged with the column's declared [`SqlType`], so what a client sees in
//! COLMETADATA is exactly what the table was created with.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

/// Declared length of a variable-length type: a count (characters for
/// `nchar`/`nvarchar`, bytes otherwise) or `(max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Len {
    N(u16),
    Max,
}

/// A SQL Server column type with its declared precision, scale or length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    /// `decimal(p,s)` and `numeric(p,s)`; `numeric` only changes the TDS type byte.
    Decimal {
        precision: u8,
        scale: u8,
        numeric: bool,
    },
    Money,
    SmallMoney,
    /// `float` / `float(53)`: 8 bytes.
    Float,
    /// `real` / `float(24)`: 4 bytes.
    Real,
    Char(u16),
    VarChar(Len),
    /// Length in characters (the wire length is twice that).
    NChar(u16),
    NVarChar(Len),
    Binary(u16),
    VarBinary(Len),
    Date,
    /// Fractional-second digits, 0..=7.
    Time(u8),
    DateTime,
    SmallDateTime,
    DateTime2(u8),
    DateTimeOffset(u8),
    UniqueIdentifier,
    /// `xml` (untyped): held as text, sent as UTF-16 PLP.
    Xml,
}

impl SqlType {
    /// The type as T-SQL spells it, e.g. `decimal(38,10)` or `nvarchar(max)`.
    pub fn type_name(&self) -> String {
        fn len(l: &Len) -> String {
            match l {
                Len::N(n) => n.to_string(),
                Len::Max => "max".to_string(),
            }
        }
        match self {
            SqlType::Bit => "bit".into(),
            SqlType::TinyInt => "tinyint".into(),
            SqlType::SmallInt => "smallint".into(),
            SqlType::Int => "int".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Decimal {
                precision,
                scale,
                numeric,
            } => format!(
                "{}({precision},{scale})",
                if *numeric { "numeric" } else { "decimal" }
            ),
            SqlType::Money => "money".into(),
            SqlType::SmallMoney => "smallmoney".into(),
            SqlType::Float => "float".into(),
            SqlType::Real => "real".into(),
            SqlType::Char(n) => format!("char({n})"),
            SqlType::VarChar(l) => format!("varchar({})", len(l)),
            SqlType::NChar(n) => format!("nchar({n})"),
            SqlType::NVarChar(l) => format!("nvarchar({})", len(l)),
            SqlType::Binary(n) => format!("binary({n})"),
            SqlType::VarBinary(l) => format!("varbinary({})", len(l)),
            SqlType::Date => "date".into(),
            SqlType::Time(s) => format!("time({s})"),
            SqlType::DateTime => "datetime".into(),
            SqlType::SmallDateTime => "smalldatetime".into(),
            SqlType::DateTime2(s) => format!("datetime2({s})"),
            SqlType::DateTimeOffset(s) => format!("datetimeoffset({s})"),
            SqlType::UniqueIdentifier => "uniqueidentifier".into(),
            SqlType::Xml => "xml".into(),
        }
    }

    /// The bare type name as INFORMATION_SCHEMA.COLUMNS.DATA_TYPE shows it.
    pub fn base_name(&self) -> &'static str {
        match self {
            SqlType::Bit => "bit",
            SqlType::TinyInt => "tinyint",
            SqlType::SmallInt => "smallint",
            SqlType::Int => "int",
            SqlType::BigInt => "bigint",
            SqlType::Decimal { numeric: false, .. } => "decimal",
            SqlType::Decimal { numeric: true, .. } => "numeric",
            SqlType::Money => "money",
            SqlType::SmallMoney => "smallmoney",
            SqlType::Float => "float",
            SqlType::Real => "real",
            SqlType::Char(_) => "char",
            SqlType::VarChar(_) => "varchar",
            SqlType::NChar(_) => "nchar",
            SqlType::NVarChar(_) => "nvarchar",
            SqlType::Binary(_) => "binary",
            SqlType::VarBinary(_) => "varbinary",
            SqlType::Date => "date",
            SqlType::Time(_) => "time",
            SqlType::DateTime => "datetime",
            SqlType::SmallDateTime => "smalldatetime",
            SqlType::DateTime2(_) => "datetime2",
            SqlType::DateTimeOffset(_) => "datetimeoffset",
            SqlType::UniqueIdentifier => "uniqueidentifier",
            SqlType::Xml => "xml",
        }
    }

    pub fn is_unicode(&self) -> bool {
        matches!(self, SqlType::NChar(_) | SqlType::NVarChar(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self,
            SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_)
        )
    }

    pub fn is_binary(&self) -> bool {
        matches!(self, SqlType::Binary(_) | SqlType::VarBinary(_))
    }

    /// SQL Server's (system_type_id, max_length, precision, scale) for the
    /// type, as sys.columns and sp_describe_first_result_set report them.
    pub fn sys_facts(&self) -> (i64, i64, i64, i64) {
        let len = |l: &Len, unit: i64| match l {
            Len::N(n) => i64::from(*n) * unit,
            Len::Max => -1,
        };
        match self {
            SqlType::Bit => (104, 1, 1, 0),
            SqlType::TinyInt => (48, 1, 3, 0),
            SqlType::SmallInt => (52, 2, 5, 0),
            SqlType::Int => (56, 4, 10, 0),
            SqlType::BigInt => (127, 8, 19, 0),
            SqlType::Decimal {
                precision,
                scale,
                numeric,
            } => (
                if *numeric { 108 } else { 106 },
                match precision {
                    1..=9 => 5,
                    10..=19 => 9,
                    20..=28 => 13,
                    _ => 17,
                },
                i64::from(*precision),
                i64::from(*scale),
            ),
            SqlType::Money => (60, 8, 19, 4),
            SqlType::SmallMoney => (122, 4, 10, 4),
            SqlType::Float => (62, 8, 53, 0),
            SqlType::Real => (59, 4, 24, 0),
            SqlType::Char(n) => (175, i64::from(*n), 0, 0),
            SqlType::VarChar(l) => (167, len(l, 1), 0, 0),
            SqlType::NChar(n) => (239, i64::from(*n) * 2, 0, 0),
            SqlType::NVarChar(l) => (231, len(l, 2), 0, 0),
            SqlType::Binary(n) => (173, i64::from(*n), 0, 0),
            SqlType::VarBinary(l) => (165, len(l, 1), 0, 0),
            SqlType::Date => (40, 3, 10, 0),
            SqlType::Time(s) => (
                41,
                if *s <= 2 {
                    3
                } else if *s <= 4 {
                    4
                } else {
                    5
                },
                8 + i64::from(*s) + i64::from(*s > 0),
                i64::from(*s),
            ),
            SqlType::DateTime => (61, 8, 23, 3),
            SqlType::SmallDateTime => (58, 4, 16, 0),
            SqlType::DateTime2(s) => (
                42,
                if *s <= 2 {
                    6
                } else if *s <= 4 {
                    7
                } else {
                    8
                },
                19 + i64::from(*s) + i64::from(*s > 0),
                i64::from(*s),
            ),
            SqlType::DateTimeOffset(s) => (
                43,
                if *s <= 2 {
                    8
                } else if *s <= 4 {
                    9
                } else {
                    10
                },
                26 + i64::from(*s) + i64::from(*s > 0),
                i64::from(*s),
            ),
            SqlType::UniqueIdentifier => (36, 16, 0, 0),
            SqlType::Xml => (241, -1, 0, 0),
        }
    }

    /// True for `(max)` types, which travel as PLP on the wire.
    pub fn is_max(&self) -> bool {
        matches!(
            self,
            SqlType::VarChar(Len::Max)
                | SqlType::NVarChar(Len::Max)
                | SqlType::VarBinary(Len::Max)
                | SqlType::Xml
        )
    }
}

/// An exact decimal: `mantissa * 10^-scale`. Holds every decimal(38,s) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u8,
}

impl Decimal {
    pub fn new(mantissa: i128, scale: u8) -> Self {
        Decimal { mantissa, scale }
    }

    /// Number of decimal digits in the mantissa (at least 1).
    pub fn digits(&self) -> u32 {
        let mut m = self.mantissa.unsigned_abs();
        let mut d = 1;
        while m >= 10 {
            m /= 10;
            d += 1;
        }
        d
    }

    /// The same value at another scale; `None` when digits would be lost
    /// or the mantissa overflows. Use [`Decimal::round_to`] to round instead.
    pub fn rescale(&self, scale: u8) -> Option<Decimal> {
        if scale >= self.scale {
            let f = 10i128.checked_pow(u32::from(scale - self.scale))?;
            Some(Decimal::new(self.mantissa.checked_mul(f)?, scale))
        } else {
            let f = 10i128.checked_pow(u32::from(self.scale - scale))?;
            if self.mantissa % f != 0 {
                return None;
            }
            Some(Decimal::new(self.mantissa / f, scale))
        }
    }

    /// Rounds half away from zero to `scale`, as SQL Server does on conversion.
    pub fn round_to(&self, scale: u8) -> Option<Decimal> {
        if scale >= self.scale {
            return self.rescale(scale);
        }
        let f = 10i128.checked_pow(u32::from(self.scale - scale))?;
        let q = self.mantissa / f;
        let r = self.mantissa % f;
        let q = if r.abs() * 2 >= f {
            q + self.mantissa.signum()
        } else {
            q
        };
        Some(Decimal::new(q, scale))
    }

    pub fn to_f64(&self) -> f64 {
        // Clinger's fast path: a mantissa below 2^53 and 10^scale up to
        // 10^22 are both exact f64s and IEEE division rounds correctly, so
        // the quotient is the correctly rounded value, as parsing the text is.
        if self.mantissa.unsigned_abs() <= 1 << 53 {
            if let Some(p) = POW10_F64.get(usize::from(self.scale)) {
                return self.mantissa as f64 / p;
            }
        }
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// `f` rounded to `scale` decimals without formatting it, when that is
    /// provably the same as rounding its exact binary value (what
    /// `format!("{:.scale$}", f)` does): `f * 10^scale` is one rounding away
    /// from the exact product, at most `|m| * 2^-53`, so when `m` is farther
    /// than twice that from a half-way point both round to the same integer.
    /// `None` for ties, huge values and scales past 22: the caller formats.
    pub fn from_f64_exact_round(f: f64, scale: u8) -> Option<Decimal> {
        let p = POW10_F64.get(usize::from(scale))?;
        let m = f * p;
        // NaN and infinities fail this too.
        if !m.is_finite() || m.abs() >= (1u64 << 52) as f64 {
            return None;
        }
        let r = m.round();
        // Exact: m and r are within 1 of each other and below 2^52.
        let off = (m - r).abs();
        let err = m.abs() * f64::EPSILON;
        if off + err >= 0.5 {
            return None;
        }
        Some(Decimal::new(r as i128, scale))
    }
}

/// 10^0 ..= 10^22: the powers of ten an f64 holds exactly.
const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let (int, frac) = if digits.len() > scale {
            let (i, fr) = digits.split_at(digits.len() - scale);
            (i.to_string(), fr.to_string())
        } else {
            ("0".to_string(), format!("{digits:0>scale$}"))
        };
        if neg {
            write!(f, "-")?;
        }
        if scale == 0 {
            write!(f, "{int}")
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

impl std::str::FromStr for Decimal {
    type Err = ();

    /// Parses `[+-]digits[.digits]` (no exponent), keeping every digit.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 38
        {
            return Err(());
        }
        let mut m: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10).ok_or(())?;
            m = m.checked_add(i128::from(b - b'0')).ok_or(())?;
        }
        Ok(Decimal::new(if neg { -m } else { m }, frac.len() as u8))
    }
}

/// One value as it travels between the engine and the wire.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bit(bool),
    /// tinyint, smallint, int and bigint.
    Int(i64),
    /// float and real.
    Float(f64),
    /// decimal, numeric, money and smallmoney.
    Decimal(Decimal),
    String(String),
    Binary(Vec<u8>),
    Date(NaiveDate),
    /// Time of day, nanosecond resolution (SQL Server keeps 100 ns).
    Time(NaiveTime),
    /// datetime, smalldatetime and datetime2.
    DateTime(NaiveDateTime),
    /// The local time with its offset, as SQL Server returns it.
    DateTimeOffset(DateTime<FixedOffset>),
    Guid(Uuid),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A collation as TDS carries it (MS-TDS 2.2.5.1.2, COLLATION): a Windows
/// LCID (20 bits), the comparison flags, the collation version and, for a
/// SQL collation, its sort id. Names are the engine's business
/// (`engine::collation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Collation {
    pub lcid: u32,
    /// fIgnoreCase 0x01, fIgnoreAccent 0x02, fIgnoreWidth 0x04,
    /// fIgnoreKana 0x08, fBinary 0x10, fBinary2 0x20, fUTF8 0x40.
    pub flags: u8,
    /// 0 for the unversioned (80) collations, 1 for _90, 2 for _100, 3 for _140, 4 for _160.
    pub version: u8,
    /// Non-zero for SQL collations (SQL_Latin1_General_CP1_CI_AS is 52).
    pub sort_id: u8,
    /// `_SC`: supplementary characters (not on the wire).
    pub supplementary: bool,
}

impl Collation {
    pub const IGNORE_CASE: u8 = 0x01;
    pub const IGNORE_ACCENT: u8 = 0x02;
    pub const IGNORE_WIDTH: u8 = 0x04;
    pub const IGNORE_KANA: u8 = 0x08;
    pub const BINARY: u8 = 0x10;
    pub const BINARY2: u8 = 0x20;
    pub const UTF8: u8 = 0x40;

    /// SQL_Latin1_General_CP1_CI_AS, a default SQL Server installation's
    /// server collation (and so tempdb's).
    pub const SERVER: Collation = Collation {
        lcid: 0x0409,
        flags: Self::IGNORE_CASE | Self::IGNORE_WIDTH | Self::IGNORE_KANA,
        version: 0,
        sort_id: 52,
        supplementary: false,
    };

    /// The five bytes of COLLATION.
    pub fn to_tds(&self) -> [u8; 5] {
        let info = (self.lcid & 0xF_FFFF)
            | (u32::from(self.flags) << 20)
            | (u32::from(self.version & 0x0F) << 28);
        let b = info.to_le_bytes();
        [b[0], b[1], b[2], b[3], self.sort_id]
    }

    pub fn from_tds(b: &[u8; 5]) -> Collation {
        let info = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        Collation {
            lcid: info & 0xF_FFFF,
            flags: ((info >> 20) & 0xFF) as u8,
            version: (info >> 28) as u8,
            sort_id: b[4],
            supplementary: false,
        }
    }

    pub fn case_sensitive(&self) -> bool {
        self.flags & Self::IGNORE_CASE == 0
    }

    pub fn accent_sensitive(&self) -> bool {
        self.flags & Self::IGNORE_ACCENT == 0
    }

    pub fn binary(&self) -> bool {
        self.flags & (Self::BINARY | Self::BINARY2) != 0
    }

    pub fn utf8(&self) -> bool {
        self.flags & Self::UTF8 != 0
    }
}

/// Metadata of one result or table column, as COLMETADATA describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnMeta {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// Set for columns that come straight from a base table.
    pub updateable: bool,
    /// A string column's collation (None: the server's, or not a string).
    pub collation: Option<Collation>,
}

impl ColumnMeta {
    pub fn new(name: impl Into<String>, sql_type: SqlType) -> Self {
        ColumnMeta {
            name: name.into(),
            sql_type,
            nullable: true,
            identity: false,
            updateable: false,
            collation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values (xorshift), without a test dependency.
    fn spread(n: usize) -> impl Iterator<Item = u64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    fn to_f64_fast_path_equals_parsing_the_text() {
        for (i, r) in spread(200_000).enumerate() {
            // Mantissas of every size up to 2^53 and past it, every scale.
            let bits = (i % 60) as u32;
            let m = (r >> (64 - bits.max(1))) as i128 * if i % 3 == 0 { -1 } else { 1 };
            let scale = (i % 25) as u8;
            let d = Decimal::new(m, scale);
            let slow: f64 = d.to_string().parse().unwrap();
            assert_eq!(d.to_f64().to_bits(), slow.to_bits(), "{d}");
        }
    }

    #[test]
    fn f64_rounding_fast_path_equals_formatting() {
        let mut fast = 0;
        let mut check = |f: f64, scale: u8| {
            let slow: Decimal = format!("{:.*}", usize::from(scale), f).parse().unwrap();
            if let Some(d) = Decimal::from_f64_exact_round(f, scale) {
                fast += 1;
                assert_eq!(
                    (d.mantissa, d.scale),
                    (slow.mantissa, slow.scale),
                    "{f} at {scale}"
                );
            }
        };
        for (i, r) in spread(200_000).enumerate() {
            let scale = (i % 12) as u8;
            // Decimal-looking values (what decimal columns store as REAL),
            // arbitrary doubles, and values at or next to a half-way point.
            let dec = (r % 10_000_000_000) as f64 / 10f64.powi((i % 9) as i32);
            let any = f64::from_bits(r >> 2);
            let half = ((r % 1_000_000) as f64 + 0.5) / 10f64.powi(i32::from(scale));
            for f in [
                dec,
                -dec,
                any,
                half,
                f64::from_bits(half.to_bits() + 1),
                f64::from_bits(half.to_bits() - 1),
            ] {
                if f.is_finite() && f.abs() < 1e30 {
                    check(f, scale);
                }
            }
        }
        for (f, scale) in [
            (0.5, 0),
            (1.5, 0),
            (2.5, 0),
            (-0.00001, 4),
            (0.125, 2),
            (1e15, 4),
        ] {
            check(f, scale);
        }
        assert!(
            fast > 100_000,
            "the fast path should take most values, took {fast}"
        );
    }

    #[test]
    fn server_collation_bytes() {
        assert_eq!(Collation::SERVER.to_tds(), [0x09, 0x04, 0xD0, 0x00, 0x34]);
        assert_eq!(
            Collation::from_tds(&[0x09, 0x04, 0xD0, 0x00, 0x34]),
            Collation::SERVER
        );
        assert!(!Collation::SERVER.case_sensitive());
    }

    #[test]
    fn decimal_text_roundtrip_keeps_every_digit() {
        for s in [
            "0",
            "-1.50",
            "0.0001",
            "-0.0001",
            "99999999999999999999999999999999999999",
            "1234567890123456789012345678.9012345678",
        ] {
            let d: Decimal = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert!("1e5".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
    }

    #[test]
    fn decimal_rounds_half_away_from_zero() {
        let d: Decimal = "-2.345".parse().unwrap();
        assert_eq!(d.round_to(2).unwrap().to_string(), "-2.35");
        let d: Decimal = "2.344".parse().unwrap();
        assert_eq!(d.round_to(2).unwrap().to_string(), "2.34");
        assert_eq!(d.rescale(2), None);
        assert_eq!(d.rescale(5).unwrap().to_string(), "2.34400");
    }
}
