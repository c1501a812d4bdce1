//! SQL Server result columns → Arrow/Parquet types, by the table
//! [`SQLSERVER_TO_PARQUET`]: the Arrow schema of a result and what each
//! column's values are read as.
//!
//! The declared types come from `sp_describe_first_result_set`, because the
//! driver's result metadata does not carry precision, scale or length.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::{ToParquet, SQLSERVER_TO_PARQUET};
use crate::sqlserver::types::SqlType;

/// One column as `sp_describe_first_result_set` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceColumn {
    pub name: String,
    /// e.g. `decimal(18,2)`, `nvarchar(100)`, `datetime2(3)`.
    pub type_name: String,
    pub precision: u8,
    pub scale: u8,
    pub nullable: bool,
}

/// What a column becomes in Parquet, and how its values are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Boolean,
    /// tinyint (0..=255) and smallint: Spark has no unsigned byte.
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// money and smallmoney, which the driver hands over as f64.
    Money {
        precision: u8,
    },
    Utf8,
    /// time(n) as `HH:MM:SS[.fffffff]` with n fractional digits.
    Time {
        scale: u8,
    },
    /// uniqueidentifier as its canonical upper-case text.
    Guid,
    Binary,
    Date,
    /// datetime, datetime2, smalldatetime: a wall-clock time (no zone).
    Timestamp,
    /// datetimeoffset: the instant, in UTC.
    TimestampUtc,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("column '{column}' has type {type_name}, which the bridge cannot write to Parquet")]
    Unsupported { column: String, type_name: String },
    #[error("column {position} has no name; give it an alias in the query")]
    Unnamed { position: usize },
    #[error("two columns are named '{0}'; give one an alias in the query")]
    Duplicate(String),
}

/// The target of one column, by [`SQLSERVER_TO_PARQUET`], or a clear
/// error naming column and type.
pub fn target(c: &SourceColumn) -> Result<Target, SchemaError> {
    let rule = SqlType::parse(&c.type_name).and_then(|t| {
        SQLSERVER_TO_PARQUET
            .iter()
            .find(|(from, _)| from.contains(&t))
            .map(|(_, rule)| *rule)
    });
    Ok(match rule {
        Some(ToParquet::Fixed(t)) => t,
        Some(ToParquet::ColumnDecimal) => Target::Decimal {
            precision: c.precision.clamp(1, 38),
            scale: c.scale,
        },
        Some(ToParquet::ColumnTime) => Target::Time { scale: c.scale },
        None => {
            return Err(SchemaError::Unsupported {
                column: c.name.clone(),
                type_name: c.type_name.clone(),
            })
        }
    })
}

impl Target {
    pub fn data_type(&self) -> DataType {
        match self {
            Target::Boolean => DataType::Boolean,
            Target::Int16 => DataType::Int16,
            Target::Int32 => DataType::Int32,
            Target::Int64 => DataType::Int64,
            Target::Float32 => DataType::Float32,
            Target::Float64 => DataType::Float64,
            Target::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
            Target::Money { precision } => DataType::Decimal128(*precision, 4),
            Target::Utf8 | Target::Time { .. } | Target::Guid => DataType::Utf8,
            Target::Binary => DataType::Binary,
            Target::Date => DataType::Date32,
            Target::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Target::TimestampUtc => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// The Arrow schema (SQL Server column names kept) and each column's target.
pub fn arrow_schema(cols: &[SourceColumn]) -> Result<(Arc<Schema>, Vec<Target>), SchemaError> {
    let mut fields = Vec::with_capacity(cols.len());
    let mut targets = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        if c.name.is_empty() {
            return Err(SchemaError::Unnamed { position: i + 1 });
        }
        if cols[..i]
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&c.name))
        {
            return Err(SchemaError::Duplicate(c.name.clone()));
        }
        let t = target(c)?;
        fields.push(Field::new(&c.name, t.data_type(), c.nullable));
        targets.push(t);
    }
    Ok((Arc::new(Schema::new(fields)), targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, p: u8, s: u8) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            type_name: ty.into(),
            precision: p,
            scale: s,
            nullable: true,
        }
    }

    #[test]
    fn follows_the_databricks_mapping() {
        let cols = [
            col("a", "decimal(38,10)", 38, 10),
            col("b", "money", 19, 4),
            col("c", "smallmoney", 10, 4),
            col("d", "datetime2(7)", 27, 7),
            col("e", "datetimeoffset(3)", 30, 3),
            col("f", "time(7)", 16, 7),
            col("g", "uniqueidentifier", 0, 0),
            col("h", "tinyint", 3, 0),
            col("i", "varbinary(max)", 0, 0),
        ];
        let (schema, _) = arrow_schema(&cols).unwrap();
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "Decimal128(38, 10)",
                "Decimal128(19, 4)",
                "Decimal128(10, 4)",
                "Timestamp(µs)",
                "Timestamp(µs, \"UTC\")",
                "Utf8",
                "Utf8",
                "Int16",
                "Binary"
            ]
        );
    }

    #[test]
    fn unsupported_and_unnamed_are_clear_errors() {
        let e = arrow_schema(&[col("geo", "geography", 0, 0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'geo'") && e.contains("geography"), "{e}");
        let e = arrow_schema(&[col("x", "int", 10, 0), col("", "int", 10, 0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("column 2 has no name"), "{e}");
        let e = arrow_schema(&[col("x", "int", 10, 0), col("X", "int", 10, 0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("two columns are named 'X'"), "{e}");
    }
}
