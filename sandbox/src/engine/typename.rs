//! Parses T-SQL type names (`decimal(38,10)`, `nvarchar(max)`, `float(24)`).

use crate::types::{Len, SqlType};

/// Parses a T-SQL type as written in DDL, CAST or a parameter declaration.
/// Returns `None` for types the sandbox does not hold.
pub fn parse_sql_type(text: &str) -> Option<SqlType> {
    let t = text.trim().trim_matches(|c| c == '[' || c == ']');
    let (name, args) = match t.find('(') {
        Some(i) => {
            let close = t.rfind(')')?;
            (t[..i].trim(), Some(&t[i + 1..close]))
        }
        None => (t, None),
    };
    let name = name
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let nums: Vec<&str> = args
        .map(|a| a.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let num = |i: usize| -> Option<u32> { nums.get(i).and_then(|s| s.parse().ok()) };
    let len = |default: u16, limit: u32| -> Option<Len> {
        match nums.first() {
            None => Some(Len::N(default)),
            Some(s) if s.eq_ignore_ascii_case("max") => Some(Len::Max),
            Some(s) => {
                let n: u32 = s.parse().ok()?;
                if n == 0 || n > limit {
                    None
                } else {
                    Some(Len::N(n as u16))
                }
            }
        }
    };
    let fixed = |default: u16, limit: u32| -> Option<u16> {
        match len(default, limit)? {
            Len::N(n) => Some(n),
            Len::Max => None,
        }
    };
    let scale = |default: u8| -> Option<u8> {
        match num(0) {
            None => Some(default),
            Some(s) if s <= 7 => Some(s as u8),
            _ => None,
        }
    };
    Some(match name.as_str() {
        "bit" => SqlType::Bit,
        "tinyint" => SqlType::TinyInt,
        "smallint" => SqlType::SmallInt,
        "int" | "integer" => SqlType::Int,
        "bigint" => SqlType::BigInt,
        "decimal" | "numeric" | "dec" => {
            let precision = num(0).unwrap_or(18);
            let scale = num(1).unwrap_or(0);
            if !(1..=38).contains(&precision) || scale > precision {
                return None;
            }
            SqlType::Decimal {
                precision: precision as u8,
                scale: scale as u8,
                numeric: name == "numeric",
            }
        }
        "money" => SqlType::Money,
        "smallmoney" => SqlType::SmallMoney,
        "float" | "double precision" => match num(0) {
            Some(n) if (1..=24).contains(&n) => SqlType::Real,
            Some(n) if (25..=53).contains(&n) => SqlType::Float,
            None => SqlType::Float,
            _ => return None,
        },
        "real" => SqlType::Real,
        "char" | "character" => SqlType::Char(fixed(1, 8000)?),
        "varchar" | "char varying" | "character varying" => SqlType::VarChar(len(1, 8000)?),
        "nchar" | "national char" | "national character" => SqlType::NChar(fixed(1, 4000)?),
        "nvarchar" | "national char varying" | "national character varying" => {
            SqlType::NVarChar(len(1, 4000)?)
        }
        "sysname" => SqlType::NVarChar(Len::N(128)),
        "text" => SqlType::VarChar(Len::Max),
        "ntext" => SqlType::NVarChar(Len::Max),
        "image" => SqlType::VarBinary(Len::Max),
        "binary" => SqlType::Binary(fixed(1, 8000)?),
        // rowversion and its synonym timestamp hold binary(8)
        // (https://learn.microsoft.com/en-us/sql/t-sql/data-types/rowversion-transact-sql);
        // a table's column of that type is numbered by the engine
        // (catalog::ColumnDef::rowversion).
        "rowversion" | "timestamp" if args.is_none() => SqlType::Binary(8),
        "varbinary" | "binary varying" => SqlType::VarBinary(len(1, 8000)?),
        "date" => SqlType::Date,
        "time" => SqlType::Time(scale(7)?),
        "datetime" => SqlType::DateTime,
        "smalldatetime" => SqlType::SmallDateTime,
        "datetime2" => SqlType::DateTime2(scale(7)?),
        "datetimeoffset" => SqlType::DateTimeOffset(scale(7)?),
        "uniqueidentifier" => SqlType::UniqueIdentifier,
        "xml" => SqlType::Xml,
        _ => return None,
    })
}

/// Parses a parameter declaration list as sp_executesql takes it:
/// `@P1 int, @P2 nvarchar(4000) OUTPUT`. Returns (name, type, output).
pub fn parse_param_decls(text: &str) -> Option<Vec<(String, SqlType, bool)>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b',' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    for p in pieces {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (name, rest) = p.split_once(char::is_whitespace)?;
        let mut rest = rest.trim();
        let mut output = false;
        for kw in [" output", " out", " readonly"] {
            if rest.len() > kw.len() && rest.to_ascii_lowercase().ends_with(kw) {
                output = kw != " readonly";
                rest = rest[..rest.len() - kw.len()].trim();
            }
        }
        let rest = rest
            .strip_prefix("AS ")
            .or_else(|| rest.strip_prefix("as "))
            .unwrap_or(rest);
        out.push((name.to_string(), parse_sql_type(rest)?, output));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_types_the_sandbox_holds() {
        assert_eq!(
            parse_sql_type("DECIMAL(38, 10)"),
            Some(SqlType::Decimal {
                precision: 38,
                scale: 10,
                numeric: false
            })
        );
        assert_eq!(
            parse_sql_type("[nvarchar](max)"),
            Some(SqlType::NVarChar(Len::Max))
        );
        assert_eq!(parse_sql_type("float(24)"), Some(SqlType::Real));
        assert_eq!(parse_sql_type("datetime2"), Some(SqlType::DateTime2(7)));
        assert_eq!(parse_sql_type("varchar(9000)"), None);
        assert_eq!(parse_sql_type("xml"), Some(SqlType::Xml));
        assert_eq!(parse_sql_type("geography"), None);
    }

    #[test]
    fn parses_parameter_declarations() {
        let d = parse_param_decls("@P1 int, @P2 decimal(10, 2),@P3 nvarchar(max) OUTPUT").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[1].1,
            SqlType::Decimal {
                precision: 10,
                scale: 2,
                numeric: false
            }
        );
        assert!(d[2].2);
    }
}
