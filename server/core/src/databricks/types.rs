//! Databricks' (Spark SQL's) data types by name: a column's type as a
//! statement manifest (`type_text`) or `DESCRIBE TABLE` prints it, and which
//! type changes a Delta table takes in place.
//! https://docs.databricks.com/en/sql/language-manual/sql-ref-datatypes.html

use std::fmt;

/// A Spark SQL type, as far as the bridge reads one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SparkType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal(u8, u8),
    String,
    Binary,
    Date,
    /// TIMESTAMP: an instant (shown in the session's time zone, kept in UTC).
    Timestamp,
    /// TIMESTAMP_NTZ: a wall-clock time.
    TimestampNtz,
    /// ARRAY, MAP, STRUCT, INTERVAL, VARIANT, ...: nothing in SQL Server holds them.
    Other(String),
}

impl SparkType {
    /// The type of `type_text` (`DECIMAL(18,2)`, `int`, `ARRAY<STRING>`).
    pub fn parse(type_text: &str) -> SparkType {
        let t = type_text.trim().to_ascii_uppercase();
        let base = t.split(['(', '<']).next().unwrap_or("").trim();
        match base {
            "BOOLEAN" => SparkType::Boolean,
            "TINYINT" | "BYTE" => SparkType::TinyInt,
            "SMALLINT" | "SHORT" => SparkType::SmallInt,
            "INT" | "INTEGER" => SparkType::Int,
            "BIGINT" | "LONG" => SparkType::BigInt,
            "FLOAT" | "REAL" => SparkType::Float,
            "DOUBLE" => SparkType::Double,
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let args: Vec<u8> = t
                    .split_once('(')
                    .map(|(_, r)| r.trim_end_matches(')'))
                    .unwrap_or("10,0")
                    .split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect();
                SparkType::Decimal(
                    args.first().copied().unwrap_or(10),
                    args.get(1).copied().unwrap_or(0),
                )
            }
            "STRING" | "VARCHAR" | "CHAR" => SparkType::String,
            "BINARY" => SparkType::Binary,
            "DATE" => SparkType::Date,
            "TIMESTAMP" => SparkType::Timestamp,
            "TIMESTAMP_NTZ" => SparkType::TimestampNtz,
            _ => SparkType::Other(type_text.trim().to_string()),
        }
    }
}

impl fmt::Display for SparkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SparkType::Boolean => f.write_str("BOOLEAN"),
            SparkType::TinyInt => f.write_str("TINYINT"),
            SparkType::SmallInt => f.write_str("SMALLINT"),
            SparkType::Int => f.write_str("INT"),
            SparkType::BigInt => f.write_str("BIGINT"),
            SparkType::Float => f.write_str("FLOAT"),
            SparkType::Double => f.write_str("DOUBLE"),
            SparkType::Decimal(p, s) => write!(f, "DECIMAL({p},{s})"),
            SparkType::String => f.write_str("STRING"),
            SparkType::Binary => f.write_str("BINARY"),
            SparkType::Date => f.write_str("DATE"),
            SparkType::Timestamp => f.write_str("TIMESTAMP"),
            SparkType::TimestampNtz => f.write_str("TIMESTAMP_NTZ"),
            SparkType::Other(t) => f.write_str(t),
        }
    }
}

/// A type as DESCRIBE TABLE prints it, normalised for comparison.
pub fn normalise(t: &str) -> String {
    let t = t.trim().to_ascii_uppercase().replace(' ', "");
    match t.as_str() {
        "INTEGER" => "INT".into(),
        "LONG" => "BIGINT".into(),
        "SHORT" => "SMALLINT".into(),
        "BYTE" => "TINYINT".into(),
        "REAL" => "FLOAT".into(),
        "DECIMAL" => "DECIMAL(10,0)".into(),
        _ => t,
    }
}

fn decimal(t: &str) -> Option<(u32, u32)> {
    let inner = t.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

fn integer_digits(t: &str) -> Option<u32> {
    Some(match t {
        "TINYINT" => 3,
        "SMALLINT" => 5,
        "INT" => 10,
        "BIGINT" => 20,
        _ => return None,
    })
}

/// Whether a Delta column of type `old` can be widened in place to `new`
/// (type widening, https://docs.databricks.com/en/delta/type-widening.html):
/// byte → short → int → long, float → double, date → timestamp_ntz, a
/// decimal to one with at least as many integer and fraction digits, and an
/// integer to a decimal that holds it.
pub fn widens(old: &str, new: &str) -> bool {
    let (old, new) = (normalise(old), normalise(new));
    if old == new {
        return true;
    }
    let ints = ["TINYINT", "SMALLINT", "INT", "BIGINT"];
    let rank = |t: &str| ints.iter().position(|i| *i == t);
    match (old.as_str(), new.as_str()) {
        (o, n) if rank(o).is_some() && rank(n).is_some() => rank(o) < rank(n),
        ("FLOAT", "DOUBLE") | ("DATE", "TIMESTAMP_NTZ") => true,
        (o, n) => match (decimal(o), decimal(n), integer_digits(o)) {
            (Some((p0, s0)), Some((p1, s1)), _) => s1 >= s0 && p1 - s1 >= p0 - s0,
            (None, Some((p1, s1)), Some(d)) => p1 - s1 >= d,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_texts_parse_and_print_back() {
        assert_eq!(SparkType::parse("TIMESTAMP_NTZ"), SparkType::TimestampNtz);
        assert_eq!(
            SparkType::parse("decimal(18, 6)"),
            SparkType::Decimal(18, 6)
        );
        assert_eq!(SparkType::parse("DECIMAL"), SparkType::Decimal(10, 0));
        assert_eq!(SparkType::parse("long"), SparkType::BigInt);
        assert_eq!(
            SparkType::parse("ARRAY<STRING>"),
            SparkType::Other("ARRAY<STRING>".into())
        );
        assert_eq!(SparkType::Decimal(19, 4).to_string(), "DECIMAL(19,4)");
        assert_eq!(SparkType::parse("short").to_string(), "SMALLINT");
    }

    #[test]
    fn widening() {
        assert!(widens("int", "BIGINT"));
        assert!(widens("decimal(10,2)", "DECIMAL(12,4)"));
        assert!(!widens("DECIMAL(10,2)", "DECIMAL(10,4)"));
        assert!(widens("INT", "DECIMAL(12,2)"));
        assert!(!widens("BIGINT", "INT"));
        assert!(!widens("STRING", "INT"));
        assert!(widens("date", "timestamp_ntz"));
    }
}
