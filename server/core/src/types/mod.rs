//! The bridge's three type mappings, each one table a reviewer reads here:
//!
//! 1. [`SQLSERVER_TO_PARQUET`]: a SQL Server result column → the Parquet
//!    (Arrow) column the extraction writes, following Databricks' own SQL
//!    Server mapping so Databricks reads the files exactly.
//! 2. [`spark_type`]: a landed Parquet column → the Spark SQL type of the
//!    Delta table it is loaded into.
//! 3. [`SPARK_TO_SQLSERVER`]: a Databricks source column → the SQL Server
//!    target columns a sync may write it to.
//!
//! Each system's own vocabulary (its type names, how they parse and print)
//! is in `sqlserver::types` and `databricks::types`; applying the tables is
//! in [`to_parquet`] and [`to_sqlserver`]; turning values is left to the
//! extraction's batch builder and the sync's value conversion.

pub(crate) mod to_parquet;
pub(crate) mod to_sqlserver;

use arrow_schema::{DataType, TimeUnit};

use crate::sqlserver::types::SqlType as Sql;
use to_parquet::Target;

/// The groups the tables name more than once.
const INTEGER: &[Spark] = &[Spark::Integer];
const EXACT: &[Spark] = &[Spark::Integer, Spark::Decimal];
const NUMBERS: &[Spark] = &[Spark::Float, Spark::Double, Spark::Integer, Spark::Decimal];
const INSTANTS: &[Spark] = &[Spark::Date, Spark::Timestamp];
const BINARY: &[Sql] = &[Sql::Binary, Sql::VarBinary, Sql::Image];
const TEXT: &[Sql] = &[
    Sql::Char,
    Sql::VarChar,
    Sql::NChar,
    Sql::NVarChar,
    Sql::Text,
    Sql::NText,
    Sql::SysName,
];

/// What a SQL Server column becomes in Parquet: a fixed target, or one
/// that takes its precision or scale from the column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToParquet {
    Fixed(Target),
    /// DECIMAL(p,s) with the column's precision and scale.
    ColumnDecimal,
    /// `HH:MM:SS.fffffff` text with the column's fractional digits.
    ColumnTime,
}

/// Mapping one, SQL Server → Parquet. Databricks reads these files: exact decimals,
/// timestamps in microseconds (Spark cannot read nanosecond Parquet
/// timestamps), datetimeoffset as the instant in UTC, time and
/// uniqueidentifier as text. Any type not listed fails its query with an
/// error naming the column.
/// (Databricks' own table: https://docs.databricks.com/aws/ingestion/lakeflow-connect/sql-server-reference)
#[rustfmt::skip]
pub const SQLSERVER_TO_PARQUET: &[(&[Sql], ToParquet)] = &[
    (&[Sql::Bit],                                  ToParquet::Fixed(Target::Boolean)),
    // tinyint is 0..=255 and Spark has no unsigned byte.
    (&[Sql::TinyInt, Sql::SmallInt],               ToParquet::Fixed(Target::Int16)),
    (&[Sql::Int],                                  ToParquet::Fixed(Target::Int32)),
    (&[Sql::BigInt],                               ToParquet::Fixed(Target::Int64)),
    (&[Sql::Real],                                 ToParquet::Fixed(Target::Float32)),
    (&[Sql::Float],                                ToParquet::Fixed(Target::Float64)),
    (&[Sql::Decimal, Sql::Numeric],                ToParquet::ColumnDecimal),
    (&[Sql::Money],                                ToParquet::Fixed(Target::Money { precision: 19 })),
    (&[Sql::SmallMoney],                           ToParquet::Fixed(Target::Money { precision: 10 })),
    (TEXT,                                         ToParquet::Fixed(Target::Utf8)),
    (&[Sql::Xml],                                  ToParquet::Fixed(Target::Utf8)),
    (BINARY,                                       ToParquet::Fixed(Target::Binary)),
    (&[Sql::RowVersion],                           ToParquet::Fixed(Target::Binary)),
    (&[Sql::UniqueIdentifier],                     ToParquet::Fixed(Target::Guid)),
    (&[Sql::Date],                                 ToParquet::Fixed(Target::Date)),
    (&[Sql::Time],                                 ToParquet::ColumnTime),
    (&[Sql::DateTime, Sql::DateTime2, Sql::SmallDateTime], ToParquet::Fixed(Target::Timestamp)),
    (&[Sql::DateTimeOffset],                       ToParquet::Fixed(Target::TimestampUtc)),
];

/// Mapping two, Parquet → Spark: the type Databricks reads an Arrow/Parquet column
/// as, declared for the Delta table it is loaded into; `None` for a column
/// the extraction never writes.
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

/// A Databricks column type as the sync groups it: integers of any width
/// go to any SQL Server integer (each value is range-checked), both
/// timestamps to any SQL Server date-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spark {
    Boolean,
    Integer,
    Float,
    Double,
    Decimal,
    String,
    Binary,
    Date,
    Timestamp,
}

/// How a sync writes a column; [`to_sqlserver::plan`] resolves it against the
/// target column's length, precision and scale into a [`to_sqlserver::Conv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    /// At the target's precision and scale.
    Numeric,
    Money,
    SmallMoney,
    Real,
    Float,
    String,
    Guid,
    Time,
    Binary,
    Date,
    DateTime2,
    DateTime,
    SmallDateTime,
    DateTimeOffset,
}

/// Mapping three, Databricks → SQL Server: the pairs a sync accepts, checked for every
/// column before anything is written. Nothing is rounded or truncated
/// silently: a decimal must fit the target's digits, and each value that
/// does not fit (range, length, fraction digits) fails the event naming
/// its column and row. Any pair not listed is refused.
#[rustfmt::skip]
pub const SPARK_TO_SQLSERVER: &[(&[Spark], &[Sql], Write)] = &[
    (&[Spark::Boolean],   &[Sql::Bit],                   Write::Bit),
    (INTEGER,             &[Sql::TinyInt],               Write::TinyInt),
    (INTEGER,             &[Sql::SmallInt],              Write::SmallInt),
    (INTEGER,             &[Sql::Int],                   Write::Int),
    (INTEGER,             &[Sql::BigInt],                Write::BigInt),
    (EXACT,               &[Sql::Decimal, Sql::Numeric], Write::Numeric),
    (EXACT,               &[Sql::Money],                 Write::Money),
    (EXACT,               &[Sql::SmallMoney],            Write::SmallMoney),
    (&[Spark::Float],     &[Sql::Real],                  Write::Real),
    (NUMBERS,             &[Sql::Float],                 Write::Float),
    (&[Spark::String],    TEXT,                          Write::String),
    (&[Spark::String],    &[Sql::UniqueIdentifier],      Write::Guid),
    (&[Spark::String],    &[Sql::Time],                  Write::Time),
    (&[Spark::Binary],    BINARY,                        Write::Binary),
    (&[Spark::Date],      &[Sql::Date],                  Write::Date),
    (INSTANTS,            &[Sql::DateTime2],             Write::DateTime2),
    (INSTANTS,            &[Sql::DateTime],              Write::DateTime),
    (INSTANTS,            &[Sql::SmallDateTime],         Write::SmallDateTime),
    (&[Spark::Timestamp], &[Sql::DateTimeOffset],        Write::DateTimeOffset),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlserver::types::NAMES;

    #[test]
    fn each_sql_server_type_has_at_most_one_parquet_row_and_one_row_per_source_group() {
        for (_, t) in NAMES {
            let rows = SQLSERVER_TO_PARQUET
                .iter()
                .filter(|(from, _)| from.contains(t))
                .count();
            assert!(rows <= 1, "{t:?} is in {rows} rows of SQLSERVER_TO_PARQUET");
            for group in [
                Spark::Boolean,
                Spark::Integer,
                Spark::Float,
                Spark::Double,
                Spark::Decimal,
                Spark::String,
                Spark::Binary,
                Spark::Date,
                Spark::Timestamp,
            ] {
                let rows = SPARK_TO_SQLSERVER
                    .iter()
                    .filter(|(from, to, _)| from.contains(&group) && to.contains(t))
                    .count();
                assert!(rows <= 1, "{group:?} → {t:?} is in {rows} rows");
            }
        }
    }

    #[test]
    fn what_the_extraction_writes_has_a_spark_type() {
        for (_, rule) in SQLSERVER_TO_PARQUET {
            let t = match rule {
                ToParquet::Fixed(t) => *t,
                ToParquet::ColumnDecimal => Target::Decimal {
                    precision: 18,
                    scale: 2,
                },
                ToParquet::ColumnTime => Target::Time { scale: 7 },
            };
            assert!(spark_type(&t.data_type()).is_some(), "{t:?}");
        }
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
    }
}
