//! Databricks SQL types: parsing declared type text, the names the REST APIs
//! report, how values are stored in SQLite and how they are rendered.
//!
//! Storage encodings are chosen so SQLite's own comparisons order values the
//! way Spark does: DATE is `YYYY-MM-DD`, TIMESTAMP is fixed-width
//! `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), ARRAY is JSON text, MAP is a JSON
//! object's text, BOOLEAN is 0/1,
//! DECIMAL is REAL when it has at most 15 significant digits (exact at its
//! scale) and canonical text otherwise.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// A column type as Databricks SQL declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbxType {
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    Binary,
    Date,
    Timestamp,
    TimestampNtz,
    Array(Box<DbxType>),
    /// `MAP<K, V>` (DESCRIBE HISTORY's operationParameters and
    /// operationMetrics are `MAP<STRING, STRING>`).
    Map(Box<DbxType>, Box<DbxType>),
    /// The type of a bare NULL literal.
    Void,
}

/// A value read from SQLite, before it is rendered for a result format.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<rusqlite::types::ValueRef<'_>> for Cell {
    fn from(v: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
        }
    }
}

impl DbxType {
    /// Parses Spark SQL type text (`decimal(18, 4)`, `ARRAY<STRING>`, `bigint`).
    pub fn parse(text: &str) -> Option<DbxType> {
        let t: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if let Some(inner) = t.strip_prefix("ARRAY<").and_then(|r| r.strip_suffix('>')) {
            return DbxType::parse(inner).map(|e| DbxType::Array(Box::new(e)));
        }
        if let Some(inner) = t.strip_prefix("MAP<").and_then(|r| r.strip_suffix('>')) {
            let (k, v) = split_top_level(inner)?;
            return Some(DbxType::Map(
                Box::new(DbxType::parse(k)?),
                Box::new(DbxType::parse(v)?),
            ));
        }
        let (base, args) = match t.split_once('(') {
            Some((b, rest)) => (b.to_string(), rest.strip_suffix(')').map(str::to_string)),
            None => (t.clone(), None),
        };
        Some(match base.as_str() {
            "BOOLEAN" | "BOOL" => DbxType::Boolean,
            "TINYINT" | "BYTE" => DbxType::Byte,
            "SMALLINT" | "SHORT" => DbxType::Short,
            "INT" | "INTEGER" => DbxType::Int,
            "BIGINT" | "LONG" => DbxType::Long,
            "FLOAT" | "REAL" => DbxType::Float,
            "DOUBLE" => DbxType::Double,
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let (p, s) = match args {
                    None => (10, 0),
                    Some(a) => {
                        let mut it = a.split(',');
                        let p = it.next()?.parse::<u8>().ok()?;
                        let s = match it.next() {
                            Some(s) => s.parse::<u8>().ok()?,
                            None => 0,
                        };
                        (p, s)
                    }
                };
                if p == 0 || p > 38 || s > p {
                    return None;
                }
                DbxType::Decimal {
                    precision: p,
                    scale: s,
                }
            }
            "STRING" | "VARCHAR" | "CHAR" | "TEXT" => DbxType::String,
            "BINARY" => DbxType::Binary,
            "DATE" => DbxType::Date,
            "TIMESTAMP" | "TIMESTAMP_LTZ" => DbxType::Timestamp,
            "TIMESTAMP_NTZ" => DbxType::TimestampNtz,
            "VOID" => DbxType::Void,
            _ => return None,
        })
    }

    /// `type_name` in the Statement Execution manifest and Unity Catalog
    /// (ColumnInfoTypeName in the API reference).
    pub fn type_name(&self) -> &'static str {
        match self {
            DbxType::Boolean => "BOOLEAN",
            DbxType::Byte => "BYTE",
            DbxType::Short => "SHORT",
            DbxType::Int => "INT",
            DbxType::Long => "LONG",
            DbxType::Float => "FLOAT",
            DbxType::Double => "DOUBLE",
            DbxType::Decimal { .. } => "DECIMAL",
            DbxType::String => "STRING",
            DbxType::Binary => "BINARY",
            DbxType::Date => "DATE",
            DbxType::Timestamp => "TIMESTAMP",
            DbxType::TimestampNtz => "TIMESTAMP_NTZ",
            DbxType::Array(_) => "ARRAY",
            DbxType::Map(..) => "MAP",
            DbxType::Void => "NULL",
        }
    }

    /// SQLite column declaration giving the affinity the storage encoding needs.
    pub fn sqlite_decl(&self) -> &'static str {
        match self {
            DbxType::Boolean | DbxType::Byte | DbxType::Short | DbxType::Int | DbxType::Long => {
                "INTEGER"
            }
            DbxType::Float | DbxType::Double => "REAL",
            // No affinity: NUMERIC would turn a wide decimal's exact text
            // into a lossy REAL; `store` already picks REAL or text.
            DbxType::Decimal { .. } => "",
            DbxType::Binary => "BLOB",
            DbxType::Void => "",
            _ => "TEXT",
        }
    }

    pub fn is_integral(&self) -> bool {
        matches!(
            self,
            DbxType::Byte | DbxType::Short | DbxType::Int | DbxType::Long
        )
    }
}

/// `K,V` of a `MAP<K,V>` split at the comma outside nested `<...>`.
fn split_top_level(inner: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => return Some((&inner[..i], &inner[i + 1..])),
            _ => {}
        }
    }
    None
}

impl fmt::Display for DbxType {
    /// Spark's type text, upper case (`DECIMAL(18,4)`, `ARRAY<STRING>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbxType::Boolean => f.write_str("BOOLEAN"),
            DbxType::Byte => f.write_str("TINYINT"),
            DbxType::Short => f.write_str("SMALLINT"),
            DbxType::Int => f.write_str("INT"),
            DbxType::Long => f.write_str("BIGINT"),
            DbxType::Float => f.write_str("FLOAT"),
            DbxType::Double => f.write_str("DOUBLE"),
            DbxType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            DbxType::String => f.write_str("STRING"),
            DbxType::Binary => f.write_str("BINARY"),
            DbxType::Date => f.write_str("DATE"),
            DbxType::Timestamp => f.write_str("TIMESTAMP"),
            DbxType::TimestampNtz => f.write_str("TIMESTAMP_NTZ"),
            DbxType::Array(e) => write!(f, "ARRAY<{e}>"),
            DbxType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            DbxType::Void => f.write_str("VOID"),
        }
    }
}

/// Why a value cannot be stored in a column; the text follows Spark's
/// error classes so clients see familiar messages.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("[CAST_INVALID_INPUT] The value '{value}' of the type \"STRING\" cannot be cast to \"{target}\" because it is malformed. SQLSTATE: 22018")]
    Malformed { value: String, target: String },
    #[error("[NUMERIC_VALUE_OUT_OF_RANGE] The value {value} cannot be represented as {target}. SQLSTATE: 22003")]
    OutOfRange { value: String, target: String },
    #[error("[DATATYPE_MISMATCH] Cannot write a {got} value into a column of type {target}. SQLSTATE: 42804")]
    Mismatch { got: String, target: String },
}

impl StoreError {
    pub fn sql_state(&self) -> &'static str {
        match self {
            StoreError::Malformed { .. } => "22018",
            StoreError::OutOfRange { .. } => "22003",
            StoreError::Mismatch { .. } => "42804",
        }
    }
}

/// Canonical storage text of a timestamp.
pub fn timestamp_text(ts: &NaiveDateTime) -> String {
    ts.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Parses the forms Spark accepts for a timestamp string (date only,
/// space or `T` separator, fractional seconds, trailing `Z` or offset).
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Some(ts) = plain_timestamp(t.as_bytes()) {
        return Some(ts);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.naive_utc());
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    if let Some(d) = plain_date(t.as_bytes()) {
        return Some(d);
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_timestamp(t).map(|ts| ts.date()))
}

/// `n` ASCII digits as a number; `None` if any is not a digit.
fn digits_value(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD` exactly, the form stored values take, without chrono's
/// format interpreter (a result of a million rows converts every value);
/// anything else goes the general way.
fn plain_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits_value(&b[..4])? as i32,
        digits_value(&b[5..7])?,
        digits_value(&b[8..10])?,
    )
}

/// `YYYY-MM-DD HH:MM:SS[.f]` (or `T` between), 1 to 9 fraction digits:
/// the stored form, parsed as `%Y-%m-%d %H:%M:%S%.f` would parse it.
fn plain_timestamp(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = plain_date(&b[..10])?;
    let (h, m, sec) = (
        digits_value(&b[11..13])?,
        digits_value(&b[14..16])?,
        digits_value(&b[17..19])?,
    );
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits_value(frac)? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    Some(date.and_time(NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?))
}

/// Number of significant digits of a plain decimal string.
fn significant_digits(s: &str) -> usize {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let trimmed = digits.trim_start_matches('0');
    trimmed.len().max(1)
}

/// Rounds a decimal string to `scale` digits (half up) and checks precision.
pub fn canonical_decimal(text: &str, precision: u8, scale: u8) -> Option<Result<String, ()>> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    // Scientific notation goes through f64 (only what REAL inputs produce).
    if body.contains(['e', 'E']) {
        let f: f64 = t.parse().ok()?;
        return canonical_decimal(&format!("{:.*}", scale as usize, f), precision, scale);
    }
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let scale = scale as usize;
    let mut digits: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let int_len = digits.len();
    let mut frac: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    let round_up = frac.len() > scale && frac[scale] >= 5;
    frac.resize(scale, 0);
    digits.extend(frac);
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_digits = digits.len() - scale;
    let _ = int_len;
    let int_str: String = digits[..int_digits]
        .iter()
        .map(|d| (b'0' + d) as char)
        .collect();
    let int_str = int_str.trim_start_matches('0');
    if int_str.len() > precision as usize - scale {
        return Some(Err(()));
    }
    let int_str = if int_str.is_empty() { "0" } else { int_str };
    let frac_str: String = digits[int_digits..]
        .iter()
        .map(|d| (b'0' + d) as char)
        .collect();
    let is_zero = int_str == "0" && frac_str.chars().all(|c| c == '0');
    let sign = if neg && !is_zero { "-" } else { "" };
    Some(Ok(if scale == 0 {
        format!("{sign}{int_str}")
    } else {
        format!("{sign}{int_str}.{frac_str}")
    }))
}

/// A value converted for storage in a column of type `ty`.
pub fn store(cell: Cell, ty: &DbxType) -> Result<Cell, StoreError> {
    let malformed = |v: &str| StoreError::Malformed {
        value: v.to_string(),
        target: ty.to_string(),
    };
    let range = |v: String| StoreError::OutOfRange {
        value: v,
        target: ty.to_string(),
    };
    if cell == Cell::Null {
        return Ok(Cell::Null);
    }
    match ty {
        DbxType::Void => Ok(Cell::Null),
        DbxType::Boolean => match &cell {
            Cell::Int(i) => Ok(Cell::Int((*i != 0) as i64)),
            Cell::Real(f) => Ok(Cell::Int((*f != 0.0) as i64)),
            Cell::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" => Ok(Cell::Int(1)),
                "false" | "f" | "0" | "no" | "n" => Ok(Cell::Int(0)),
                _ => Err(malformed(t)),
            },
            Cell::Blob(_) | Cell::Null => Err(StoreError::Mismatch {
                got: "BINARY".into(),
                target: ty.to_string(),
            }),
        },
        DbxType::Byte | DbxType::Short | DbxType::Int | DbxType::Long => {
            let v: i64 = match &cell {
                Cell::Int(i) => *i,
                Cell::Real(f) => {
                    if f.is_finite() && f.trunc() >= i64::MIN as f64 && f.trunc() <= i64::MAX as f64
                    {
                        f.trunc() as i64
                    } else {
                        return Err(range(f.to_string()));
                    }
                }
                Cell::Text(t) => {
                    let s = t.trim();
                    match s.parse::<i64>() {
                        Ok(v) => v,
                        Err(_) => match s.parse::<f64>() {
                            Ok(f) if f.is_finite() => f.trunc() as i64,
                            _ => return Err(malformed(t)),
                        },
                    }
                }
                Cell::Blob(_) | Cell::Null => {
                    return Err(StoreError::Mismatch {
                        got: "BINARY".into(),
                        target: ty.to_string(),
                    })
                }
            };
            let (lo, hi) = match ty {
                DbxType::Byte => (i8::MIN as i64, i8::MAX as i64),
                DbxType::Short => (i16::MIN as i64, i16::MAX as i64),
                DbxType::Int => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if v < lo || v > hi {
                return Err(range(v.to_string()));
            }
            Ok(Cell::Int(v))
        }
        DbxType::Float | DbxType::Double => match &cell {
            Cell::Int(i) => Ok(Cell::Real(*i as f64)),
            Cell::Real(f) => Ok(Cell::Real(*f)),
            Cell::Text(t) => t
                .trim()
                .parse::<f64>()
                .map(Cell::Real)
                .map_err(|_| malformed(t)),
            Cell::Blob(_) | Cell::Null => Err(StoreError::Mismatch {
                got: "BINARY".into(),
                target: ty.to_string(),
            }),
        },
        DbxType::Decimal { precision, scale } => {
            let text = match &cell {
                Cell::Int(i) => i.to_string(),
                Cell::Real(f) => format!("{:.*}", *scale as usize + 2, f),
                Cell::Text(t) => t.clone(),
                Cell::Blob(_) | Cell::Null => {
                    return Err(StoreError::Mismatch {
                        got: "BINARY".into(),
                        target: ty.to_string(),
                    })
                }
            };
            match canonical_decimal(&text, *precision, *scale) {
                None => Err(malformed(&text)),
                Some(Err(())) => Err(range(text)),
                Some(Ok(canon)) => {
                    if significant_digits(&canon) <= 15 {
                        canon
                            .parse::<f64>()
                            .map(Cell::Real)
                            .map_err(|_| malformed(&canon))
                    } else {
                        Ok(Cell::Text(canon))
                    }
                }
            }
        }
        DbxType::String => Ok(match cell {
            Cell::Text(t) => Cell::Text(t),
            Cell::Int(i) => Cell::Text(i.to_string()),
            Cell::Real(f) => Cell::Text(render_double(f)),
            Cell::Blob(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
            Cell::Null => Cell::Null,
        }),
        DbxType::Binary => Ok(match cell {
            Cell::Text(t) => Cell::Blob(t.into_bytes()),
            Cell::Blob(b) => Cell::Blob(b),
            other => Cell::Blob(render_plain(&other).into_bytes()),
        }),
        DbxType::Date => match &cell {
            Cell::Text(t) => parse_date(t)
                .map(|d| Cell::Text(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| malformed(t)),
            other => Err(StoreError::Mismatch {
                got: cell_type_name(other).into(),
                target: ty.to_string(),
            }),
        },
        DbxType::Timestamp | DbxType::TimestampNtz => match &cell {
            Cell::Text(t) => parse_timestamp(t)
                .map(|ts| Cell::Text(timestamp_text(&ts)))
                .ok_or_else(|| malformed(t)),
            other => Err(StoreError::Mismatch {
                got: cell_type_name(other).into(),
                target: ty.to_string(),
            }),
        },
        DbxType::Array(elem) => match &cell {
            Cell::Text(t) => {
                let parsed: serde_json::Value =
                    serde_json::from_str(t).map_err(|_| malformed(t))?;
                let serde_json::Value::Array(items) = parsed else {
                    return Err(malformed(t));
                };
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let c = match item {
                        serde_json::Value::Null => Cell::Null,
                        serde_json::Value::Bool(b) => Cell::Int(b as i64),
                        serde_json::Value::Number(n) => match n.as_i64() {
                            Some(i) => Cell::Int(i),
                            None => Cell::Real(n.as_f64().unwrap_or(0.0)),
                        },
                        serde_json::Value::String(s) => Cell::Text(s),
                        other => Cell::Text(other.to_string()),
                    };
                    out.push(cell_to_json(&store(c, elem)?, elem));
                }
                Ok(Cell::Text(serde_json::Value::Array(out).to_string()))
            }
            other => Err(StoreError::Mismatch {
                got: cell_type_name(other).into(),
                target: ty.to_string(),
            }),
        },
        DbxType::Map(_, value) => match &cell {
            Cell::Text(t) => {
                let parsed: serde_json::Value =
                    serde_json::from_str(t).map_err(|_| malformed(t))?;
                let serde_json::Value::Object(entries) = parsed else {
                    return Err(malformed(t));
                };
                let mut out = serde_json::Map::new();
                for (k, item) in entries {
                    let c = match item {
                        serde_json::Value::Null => Cell::Null,
                        serde_json::Value::String(s) => Cell::Text(s),
                        other => Cell::Text(other.to_string()),
                    };
                    out.insert(k, cell_to_json(&store(c, value)?, value));
                }
                Ok(Cell::Text(serde_json::Value::Object(out).to_string()))
            }
            other => Err(StoreError::Mismatch {
                got: cell_type_name(other).into(),
                target: ty.to_string(),
            }),
        },
    }
}

fn cell_type_name(c: &Cell) -> &'static str {
    match c {
        Cell::Null => "VOID",
        Cell::Int(_) => "BIGINT",
        Cell::Real(_) => "DOUBLE",
        Cell::Text(_) => "STRING",
        Cell::Blob(_) => "BINARY",
    }
}

/// A stored value as a JSON value inside an ARRAY's JSON text.
fn cell_to_json(c: &Cell, ty: &DbxType) -> serde_json::Value {
    match (c, ty) {
        (Cell::Null, _) => serde_json::Value::Null,
        (Cell::Int(i), DbxType::Boolean) => serde_json::Value::Bool(*i != 0),
        (Cell::Int(i), _) => serde_json::Value::from(*i),
        (Cell::Real(f), DbxType::Decimal { scale, .. }) => {
            serde_json::Value::String(format!("{:.*}", *scale as usize, f))
        }
        (Cell::Real(f), _) => serde_json::Value::from(*f),
        (Cell::Text(t), _) => serde_json::Value::String(t.clone()),
        (Cell::Blob(b), _) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// Spark's rendering of a DOUBLE (`1.0`, `2.5`, `1.0E10`).
pub fn render_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        let s = format!("{f:E}");
        // Rust prints `1E10`; Spark prints `1.0E10`.
        match s.split_once('E') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            _ => s,
        }
    } else if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn render_plain(c: &Cell) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Int(i) => i.to_string(),
        Cell::Real(f) => render_double(*f),
        Cell::Text(t) => t.clone(),
        Cell::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The string a JSON_ARRAY or CSV result carries for a value of type `ty`;
/// `None` for NULL.
pub fn render(c: &Cell, ty: &DbxType) -> Option<String> {
    if *c == Cell::Null {
        return None;
    }
    Some(match ty {
        DbxType::Boolean => match c {
            Cell::Int(i) => (*i != 0).to_string(),
            Cell::Real(f) => (*f != 0.0).to_string(),
            other => render_plain(other),
        },
        DbxType::Float | DbxType::Double => match c {
            Cell::Int(i) => render_double(*i as f64),
            Cell::Real(f) => render_double(*f),
            other => render_plain(other),
        },
        DbxType::Decimal { scale, .. } => match c {
            Cell::Real(f) => format!("{:.*}", *scale as usize, f),
            Cell::Int(i) if *scale > 0 => format!("{i}.{}", "0".repeat(*scale as usize)),
            Cell::Text(t) => match canonical_decimal(t, 38, *scale) {
                Some(Ok(s)) => s,
                _ => t.clone(),
            },
            other => render_plain(other),
        },
        DbxType::Timestamp | DbxType::TimestampNtz => match c {
            Cell::Text(t) => match parse_timestamp(t) {
                Some(ts) => {
                    let base = ts.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
                    if *ty == DbxType::Timestamp {
                        format!("{base}Z")
                    } else {
                        base
                    }
                }
                None => t.clone(),
            },
            other => render_plain(other),
        },
        _ => render_plain(c),
    })
}

/// Microseconds since the epoch of a stored timestamp.
pub fn timestamp_micros(c: &Cell) -> Option<i64> {
    match c {
        Cell::Text(t) => parse_timestamp(t).map(|ts| ts.and_utc().timestamp_micros()),
        Cell::Int(i) => Some(*i * 1_000_000),
        _ => None,
    }
}

/// Days since the epoch of a stored date.
pub fn date_days(c: &Cell) -> Option<i32> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    match c {
        Cell::Text(t) => parse_date(t).map(|d| (d - epoch).num_days() as i32),
        _ => None,
    }
}

/// Unscaled i128 of a stored decimal at `scale`.
pub fn decimal_unscaled(c: &Cell, scale: u8) -> Option<i128> {
    if let Cell::Text(t) = c {
        if let Some(v) = plain_unscaled(t.as_bytes(), scale) {
            return Some(v);
        }
    }
    let text = match c {
        Cell::Real(f) => format!("{:.*}", scale as usize, f),
        Cell::Int(i) => i.to_string(),
        Cell::Text(t) => t.clone(),
        _ => return None,
    };
    let canon = match canonical_decimal(&text, 38, scale)? {
        Ok(s) => s,
        Err(()) => return None,
    };
    canon.replace('.', "").parse::<i128>().ok()
}

/// `[-]digits[.digits]` with no more fraction digits than `scale` and at
/// most 38 digits in all once scaled: no rounding and no overflow to
/// decide, so the unscaled value is read straight from the digits (what
/// [`canonical_decimal`] then a parse would give, without their strings).
fn plain_unscaled(b: &[u8], scale: u8) -> Option<i128> {
    let (neg, body) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &body[..0]),
    };
    if int.is_empty()
        || frac.len() > usize::from(scale)
        || int.len() + usize::from(scale) > 38
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut v: i128 = 0;
    for &c in int.iter().chain(frac) {
        v = v * 10 + i128::from(c - b'0');
    }
    for _ in frac.len()..usize::from(scale) {
        v *= 10;
    }
    Some(if neg { -v } else { v })
}

/// Entries of a stored MAP (a JSON object's text), values rendered as
/// strings, in stored order.
pub fn map_entries(c: &Cell) -> Option<Vec<(String, Option<String>)>> {
    let Cell::Text(t) = c else { return None };
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    let serde_json::Value::Object(entries) = v else {
        return None;
    };
    Some(
        entries
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                (k, v)
            })
            .collect(),
    )
}

/// Items of a stored ARRAY (JSON text), rendered as strings.
pub fn array_items(c: &Cell) -> Option<Vec<Option<String>>> {
    let Cell::Text(t) = c else { return None };
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    let serde_json::Value::Array(items) = v else {
        return None;
    };
    Some(
        items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcuts give what the general parsers give, and leave to them
    /// every text they do not take whole.
    #[test]
    fn plain_forms_parse_as_the_general_way() {
        for (t, scale) in [
            ("123.45", 2),
            ("-123.4", 4),
            ("0", 0),
            ("-0.00", 2),
            ("99999999999999999999999999999999999999", 0),
            ("12.345", 2),
            ("+1.5", 1),
            (".5", 1),
            ("007.1", 1),
            (" 1.0", 1),
            ("1e3", 2),
            ("9999999999999999999999999999999999999.9", 2),
        ] {
            let slow = canonical_decimal(t, 38, scale)
                .and_then(|r| r.ok())
                .and_then(|c| c.replace('.', "").parse::<i128>().ok());
            assert_eq!(decimal_unscaled(&Cell::Text(t.into()), scale), slow, "{t}");
            if let Some(v) = plain_unscaled(t.as_bytes(), scale) {
                assert_eq!(Some(v), slow, "{t}");
            }
        }
        for t in [
            "2024-02-29 23:59:59.123456",
            "2024-02-29T23:59:59",
            "2024-02-29 00:00:00.5",
            "0001-01-01 00:00:00.999999999",
            "2023-02-29 10:00:00",
            "2024-01-01 10:00",
            "2024-01-01 10:00:60",
            "2024-01-01",
            "2024-01-01T10:00:00Z",
        ] {
            let general = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok());
            if let Some(ts) = plain_timestamp(t.as_bytes()) {
                assert_eq!(Some(ts), general, "{t}");
            }
        }
        assert_eq!(
            plain_date(b"2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(plain_date(b"2023-02-29"), None);
        assert!(plain_timestamp(b"2024-01-01 10:00:00.123").is_some());
    }

    #[test]
    fn parses_type_text() {
        assert_eq!(
            DbxType::parse("decimal(18, 4)"),
            Some(DbxType::Decimal {
                precision: 18,
                scale: 4
            })
        );
        assert_eq!(
            DbxType::parse("ARRAY<STRING>"),
            Some(DbxType::Array(Box::new(DbxType::String)))
        );
        assert_eq!(DbxType::parse("bigint"), Some(DbxType::Long));
        assert_eq!(DbxType::parse("decimal(3,5)"), None);
    }

    #[test]
    fn decimals_round_and_check_precision() {
        assert_eq!(canonical_decimal("12.345", 5, 2), Some(Ok("12.35".into())));
        assert_eq!(canonical_decimal("-0.004", 5, 2), Some(Ok("0.00".into())));
        assert_eq!(canonical_decimal("9999.995", 6, 2), Some(Err(())));
        assert_eq!(canonical_decimal("abc", 5, 2), None);
    }

    #[test]
    fn renders_like_spark() {
        assert_eq!(render_double(1.0), "1.0");
        assert_eq!(render_double(2.5), "2.5");
        assert_eq!(render_double(1e10), "1.0E10");
        let ts = Cell::Text("2024-01-05 10:30:00.000000".into());
        assert_eq!(
            render(&ts, &DbxType::Timestamp).as_deref(),
            Some("2024-01-05T10:30:00.000Z")
        );
        assert_eq!(
            render(
                &Cell::Real(12.5),
                &DbxType::Decimal {
                    precision: 10,
                    scale: 2
                }
            )
            .as_deref(),
            Some("12.50")
        );
    }
}
