//! SQL Server's system data types by name: the one parser of a type name
//! that both directions read (what `sp_describe_first_result_set` says a
//! result column is, and what `INFORMATION_SCHEMA.COLUMNS` says a target
//! column is).
//! https://learn.microsoft.com/en-us/sql/t-sql/data-types/data-types-transact-sql

/// A system data type, without its length, precision or scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Real,
    Float,
    Decimal,
    Numeric,
    Money,
    SmallMoney,
    Char,
    VarChar,
    NChar,
    NVarChar,
    Text,
    NText,
    SysName,
    Xml,
    Binary,
    VarBinary,
    Image,
    /// `rowversion`, and its deprecated synonym `timestamp`.
    RowVersion,
    UniqueIdentifier,
    Date,
    Time,
    DateTime,
    DateTime2,
    SmallDateTime,
    DateTimeOffset,
}

/// Every name SQL Server gives a system type the bridge knows, in lower case.
pub const NAMES: &[(&str, SqlType)] = &[
    ("bit", SqlType::Bit),
    ("tinyint", SqlType::TinyInt),
    ("smallint", SqlType::SmallInt),
    ("int", SqlType::Int),
    ("bigint", SqlType::BigInt),
    ("real", SqlType::Real),
    ("float", SqlType::Float),
    ("decimal", SqlType::Decimal),
    ("numeric", SqlType::Numeric),
    ("money", SqlType::Money),
    ("smallmoney", SqlType::SmallMoney),
    ("char", SqlType::Char),
    ("varchar", SqlType::VarChar),
    ("nchar", SqlType::NChar),
    ("nvarchar", SqlType::NVarChar),
    ("text", SqlType::Text),
    ("ntext", SqlType::NText),
    ("sysname", SqlType::SysName),
    ("xml", SqlType::Xml),
    ("binary", SqlType::Binary),
    ("varbinary", SqlType::VarBinary),
    ("image", SqlType::Image),
    ("rowversion", SqlType::RowVersion),
    ("timestamp", SqlType::RowVersion),
    ("uniqueidentifier", SqlType::UniqueIdentifier),
    ("date", SqlType::Date),
    ("time", SqlType::Time),
    ("datetime", SqlType::DateTime),
    ("datetime2", SqlType::DateTime2),
    ("smalldatetime", SqlType::SmallDateTime),
    ("datetimeoffset", SqlType::DateTimeOffset),
];

impl SqlType {
    /// The type of a declaration such as `decimal(18,2)` or `NVARCHAR(max)`;
    /// `None` for a type the bridge does not know (geography, sql_variant,
    /// an alias type's own name, ...).
    pub fn parse(declaration: &str) -> Option<SqlType> {
        let base = declaration.split('(').next().unwrap_or("").trim();
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(base))
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_whatever_their_case_and_arguments() {
        assert_eq!(SqlType::parse("decimal(18,2)"), Some(SqlType::Decimal));
        assert_eq!(SqlType::parse(" NVARCHAR(max)"), Some(SqlType::NVarChar));
        assert_eq!(SqlType::parse("timestamp"), Some(SqlType::RowVersion));
        assert_eq!(SqlType::parse("geography"), None);
        assert_eq!(SqlType::parse(""), None);
        for (name, t) in NAMES {
            assert_eq!(SqlType::parse(name), Some(*t), "{name}");
        }
    }
}
