//! Spark types of the landed Parquet columns, and which type changes a
//! Delta table can take in place (type widening,
//! https://docs.databricks.com/en/delta/type-widening.html): byte → short
//! → int → long, float → double, date → timestamp_ntz, a decimal to one
//! with at least as many integer and fraction digits, and an integer to a
//! decimal that holds it.

use arrow_schema::{DataType, TimeUnit};

/// The Spark SQL type Databricks reads an Arrow/Parquet column as.
pub fn spark_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 => "STRING".into(),
        DataType::Binary | DataType::LargeBinary => "BINARY".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP_NTZ".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "TIMESTAMP".into(),
        _ => return None,
    })
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

/// Whether a column of type `old` can be widened in place to `new`.
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
    fn types_and_widening() {
        assert_eq!(
            spark_type(&DataType::Decimal128(19, 4)).as_deref(),
            Some("DECIMAL(19,4)")
        );
        assert_eq!(
            spark_type(&DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
            .as_deref(),
            Some("TIMESTAMP")
        );
        assert!(widens("int", "BIGINT"));
        assert!(widens("decimal(10,2)", "DECIMAL(12,4)"));
        assert!(!widens("DECIMAL(10,2)", "DECIMAL(10,4)"));
        assert!(widens("INT", "DECIMAL(12,2)"));
        assert!(!widens("BIGINT", "INT"));
        assert!(!widens("STRING", "INT"));
        assert!(widens("date", "timestamp_ntz"));
    }
}
