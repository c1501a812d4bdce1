//! Databricks (Spark) column types against SQL Server column types, by the
//! table [`SPARK_TO_SQLSERVER`]: which pairs a sync accepts (checked before
//! any write), resolved into how each column's values are converted.

use super::{Spark, Write, SPARK_TO_SQLSERVER};
use crate::databricks::types::SparkType;
use crate::sqlserver::types::SqlType;

/// A target column as SQL Server declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    /// Lower-case type name: `int`, `nvarchar`, `decimal`, ...
    pub data_type: String,
    /// Characters (or bytes for binary); -1 for `max`.
    pub max_length: Option<i64>,
    pub precision: Option<u8>,
    pub scale: Option<u8>,
    pub datetime_precision: Option<u8>,
    pub nullable: bool,
    /// The column's collation (string columns), as INFORMATION_SCHEMA
    /// reports it.
    pub collation: Option<String>,
}

impl TargetColumn {
    /// The type as it would be declared (for the session temp table), with
    /// the column's own collation: a temp table lives in tempdb and would
    /// otherwise take the server's collation, so joins on string keys fail
    /// with 468 and characters the target holds may not fit
    /// (https://learn.microsoft.com/en-us/sql/relational-databases/collations/collation-and-unicode-support#tempdb).
    pub fn declaration(&self) -> String {
        let base = self.type_declaration();
        match &self.collation {
            Some(c) if is_collation_name(c) => format!("{base} COLLATE {c}"),
            _ => base,
        }
    }

    fn type_declaration(&self) -> String {
        let len = |l: Option<i64>| match l {
            Some(n) if n > 0 => n.to_string(),
            _ => "max".to_string(),
        };
        let t = self.data_type.as_str();
        match t {
            "char" | "varchar" | "nchar" | "nvarchar" | "binary" | "varbinary" => {
                format!("{t}({})", len(self.max_length))
            }
            "decimal" | "numeric" => format!(
                "{t}({},{})",
                self.precision.unwrap_or(18),
                self.scale.unwrap_or(0)
            ),
            "time" | "datetime2" | "datetimeoffset" => {
                format!("{t}({})", self.datetime_precision.unwrap_or(7))
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn fraction_digits(&self) -> u8 {
        self.datetime_precision.unwrap_or(7).min(7)
    }
}

/// A collation name is letters, digits and underscores
/// (`Latin1_General_100_CI_AS_SC_UTF8`); anything else is not pasted.
fn is_collation_name(c: &str) -> bool {
    !c.is_empty() && c.len() <= 128 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// How one column's values are converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conv {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Real,
    Float,
    /// decimal/numeric/money at this precision and scale.
    Numeric {
        precision: u8,
        scale: u8,
    },
    String {
        max_chars: Option<usize>,
    },
    Binary {
        max_bytes: Option<usize>,
    },
    Guid,
    Date,
    Time {
        digits: u8,
    },
    DateTime,
    SmallDateTime,
    DateTime2 {
        digits: u8,
    },
    DateTimeOffset {
        digits: u8,
    },
}

/// Whether a source column can go into a target column, and how: the
/// pair's row of [`SPARK_TO_SQLSERVER`], resolved against the target's
/// length, precision and scale.
pub fn plan(source: &SparkType, target: &TargetColumn) -> Result<Conv, String> {
    let Some(group) = group(source) else {
        return Err(format!(
            "column {}: Databricks type {source} has no SQL Server equivalent",
            target.name
        ));
    };
    let write = SqlType::parse(&target.data_type).and_then(|t| {
        SPARK_TO_SQLSERVER
            .iter()
            .find(|(from, to, _)| from.contains(&group) && to.contains(&t))
            .map(|(_, _, w)| *w)
    });
    let Some(write) = write else {
        return Err(format!(
            "column {}: Databricks {source} cannot be written to SQL Server {}",
            target.name,
            target.declaration()
        ));
    };
    let numeric = |p: Option<u8>, s: Option<u8>| Conv::Numeric {
        precision: p.unwrap_or(18),
        scale: s.unwrap_or(0),
    };
    let chars = target.max_length.filter(|n| *n > 0).map(|n| n as usize);
    let digits = target.fraction_digits();
    let conv = match write {
        Write::Bit => Conv::Bit,
        Write::TinyInt => Conv::TinyInt,
        Write::SmallInt => Conv::SmallInt,
        Write::Int => Conv::Int,
        Write::BigInt => Conv::BigInt,
        Write::Numeric => numeric(target.precision, target.scale),
        Write::Money => numeric(Some(19), Some(4)),
        Write::SmallMoney => numeric(Some(10), Some(4)),
        Write::Real => Conv::Real,
        Write::Float => Conv::Float,
        Write::String => Conv::String { max_chars: chars },
        Write::Guid => Conv::Guid,
        Write::Time => Conv::Time { digits },
        Write::Binary => Conv::Binary { max_bytes: chars },
        Write::Date => Conv::Date,
        Write::DateTime2 => Conv::DateTime2 { digits },
        Write::DateTime => Conv::DateTime,
        Write::SmallDateTime => Conv::SmallDateTime,
        Write::DateTimeOffset => Conv::DateTimeOffset { digits },
    };
    if let (SparkType::Decimal(p, s), Conv::Numeric { precision, scale }) = (source, &conv) {
        // Every source value must fit: no fewer integer digits, no fewer
        // fraction digits.
        if s > scale || p - s > precision - scale {
            return Err(format!(
                "column {}: DECIMAL({p},{s}) does not fit {} without losing digits",
                target.name,
                target.declaration()
            ));
        }
    }
    Ok(conv)
}

/// The sync's group of a Spark type; none for a type SQL Server cannot hold.
fn group(t: &SparkType) -> Option<Spark> {
    Some(match t {
        SparkType::Boolean => Spark::Boolean,
        SparkType::TinyInt | SparkType::SmallInt | SparkType::Int | SparkType::BigInt => {
            Spark::Integer
        }
        SparkType::Float => Spark::Float,
        SparkType::Double => Spark::Double,
        SparkType::Decimal(..) => Spark::Decimal,
        SparkType::String => Spark::String,
        SparkType::Binary => Spark::Binary,
        SparkType::Date => Spark::Date,
        SparkType::Timestamp | SparkType::TimestampNtz => Spark::Timestamp,
        SparkType::Other(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: &str, p: Option<u8>, s: Option<u8>, len: Option<i64>) -> TargetColumn {
        TargetColumn {
            name: "c".into(),
            data_type: t.into(),
            max_length: len,
            precision: p,
            scale: s,
            datetime_precision: Some(7),
            nullable: true,
            collation: None,
        }
    }

    #[test]
    fn compatible_pairs_and_clear_refusals() {
        assert_eq!(
            plan(
                &SparkType::parse("DECIMAL(18,6)"),
                &col("decimal", Some(38), Some(10), None)
            ),
            Ok(Conv::Numeric {
                precision: 38,
                scale: 10
            })
        );
        let e = plan(
            &SparkType::parse("DECIMAL(38,10)"),
            &col("decimal", Some(18), Some(2), None),
        )
        .unwrap_err();
        assert!(e.contains("without losing digits"), "{e}");
        let e = plan(&SparkType::parse("STRING"), &col("int", None, None, None)).unwrap_err();
        assert!(
            e.contains("STRING cannot be written to SQL Server int"),
            "{e}"
        );
        let e = plan(
            &SparkType::parse("ARRAY<STRING>"),
            &col("nvarchar", None, None, Some(-1)),
        )
        .unwrap_err();
        assert!(e.contains("no SQL Server equivalent"), "{e}");
        assert_eq!(
            plan(&SparkType::parse("BIGINT"), &col("money", None, None, None)),
            Ok(Conv::Numeric {
                precision: 19,
                scale: 4
            })
        );
        assert_eq!(SparkType::parse("TIMESTAMP_NTZ"), SparkType::TimestampNtz);
    }
}
