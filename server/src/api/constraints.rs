//! What the OpenAPI document says the strings of a request may be, and the
//! same rules as Rust checks, side by side: a request the document allows
//! gets past them, one it refuses is refused (422 naming the field). A
//! spec-driven fuzzer (schemathesis, in the test command) holds the two to
//! each other.
//!
//! Patterns are ECMA-262 regular expressions as JSON Schema reads them.
//! Where the checks below and a regex engine could differ on white space
//! (`\s`), the pattern is the stricter one: every character a regex calls
//! non-space is also non-space to Rust.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

use super::error::ApiError;

/// Some character other than white space, and no NUL: a path or a name.
pub const NOT_BLANK: &str = r"^[^\u0000]*[^\s\u0000][^\u0000]*$";

pub fn not_blank(s: &str) -> bool {
    !s.contains('\0') && s.chars().any(|c| !c.is_whitespace())
}

/// Requires [`not_blank`] of a field.
pub fn require_not_blank(field: &str, value: &str) -> Result<(), ApiError> {
    if not_blank(value) {
        Ok(())
    } else if value.contains('\0') {
        Err(ApiError::invalid(
            field,
            format!("{field} contains a NUL character"),
        ))
    } else {
        Err(ApiError::invalid(field, format!("{field} is empty")))
    }
}

/// A page cursor: the positive decimal `next_cursor` the server gave out.
pub const CURSOR: &str = "^[1-9][0-9]{0,17}$";

pub fn cursor(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let ok = (1..=18).contains(&b.len()) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit);
    ok.then(|| s.parse().ok()).flatten()
}

/// Longest column name (SQL Server's `sysname` is 128 characters).
pub const COLUMN_MAX: usize = 128;

/// A column name: a non-space character, none of `` ` [ ] " ' ; `` nor a
/// control character (so it can be quoted on both sides without escapes).
pub const COLUMN: &str = "^[^`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f]*[^\\s`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f][^`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f]*$";

fn column_char(c: char) -> bool {
    !matches!(c, '`' | '[' | ']' | '"' | '\'' | ';') && !c.is_control()
}

/// Requires [`COLUMN`] of each name of `field`.
pub fn require_columns(field: &str, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        let ok = name.chars().count() <= COLUMN_MAX
            && name.chars().all(column_char)
            && name.chars().any(|c| !c.is_whitespace());
        if !ok {
            return Err(ApiError::invalid(
                field,
                format!(
                    "'{name}' is not a usable column name (1 to {COLUMN_MAX} characters, not only spaces, none of ` [ ] \" ' ; or control characters)"
                ),
            ));
        }
    }
    Ok(())
}

/// A Unity Catalog table, `catalog.schema.table`: each part letters,
/// digits, `_`, `$`, `#`, or anything in backticks (a backtick doubled).
pub const UC_TABLE: &str =
    r"^(`([^`]|``)*[^\s`]([^`]|``)*`|[\w$#]+)(\.(`([^`]|``)*[^\s`]([^`]|``)*`|[\w$#]+)){2}$";

/// A SQL Server table, `schema.table` or `database.schema.table`: each
/// part plain, in brackets (`]` doubled) or in double quotes (`"` doubled).
pub const SQL_TABLE: &str = r#"^(\[([^\]]|\]\])*[^\s\]]([^\]]|\]\])*\]|"([^"]|"")*[^\s"]([^"]|"")*"|[^\s.\[\]"]+)(\.(\[([^\]]|\]\])*[^\s\]]([^\]]|\]\])*\]|"([^"]|"")*[^\s"]([^"]|"")*"|[^\s.\[\]"]+)){1,2}$"#;

fn string(pattern: &str, max: Option<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(max)
        .pattern(Some(pattern))
}

/// `queries` of POST /extract: query names (file stems), not blank.
pub fn query_names() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(string(NOT_BLANK, None))
        .description(Some(
            "Only these queries (by name); all of them when empty or absent.",
        ))
}

/// `primary_keys` of POST /sync/events.
pub fn key_columns() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(string(COLUMN, Some(COLUMN_MAX)))
        .description(Some(
            "The columns rows are matched on: at least one for UPDATE, DELETE and UPSERT (a rule the schema does not carry; without them the server answers 422 naming primary_keys).",
        ))
        .examples([serde_json::json!(["id"])])
}

/// `columns` of POST /sync/events (absent or null: all of the source's).
pub fn copied_columns() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(string(COLUMN, Some(COLUMN_MAX)))
        .description(Some(
            "Copy only these columns (all of the source's when absent). Row filters are not accepted over HTTP: nothing a caller sends is run as SQL.",
        ))
}

/// A whole number for a `u32` field: JSON Schema's `integer` is any number
/// with no fraction, so `20.0` is one as much as `20` is (RFC 8259 does not
/// tell them apart either).
pub fn whole_number<'de, D>(d: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    whole_u64_or_none(d)?
        .map(|w| u32::try_from(w).map_err(|_| too_big::<D>(w, u32::MAX as u64)))
        .transpose()
}

/// [`whole_number`] for a `u64` field that may be absent or null.
pub fn whole_u64_or_none<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let v: Option<serde_json::Number> = serde::Deserialize::deserialize(d)?;
    let Some(n) = v else { return Ok(None) };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            // Below 2^64: every f64 there with no fraction is a u64.
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0)
            .map(|f| f as u64)
    });
    whole.map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "expected a whole number between 0 and {}, got {n}",
            u64::MAX
        ))
    })
}

/// [`whole_number`] for a required `u64` field.
pub fn whole_u64<'de, D>(d: D) -> Result<u64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    whole_u64_or_none(d)?.ok_or_else(|| D::Error::custom("expected a whole number, got null"))
}

fn too_big<'de, D: serde::Deserializer<'de>>(got: u64, max: u64) -> D::Error {
    use serde::de::Error;
    D::Error::custom(format!(
        "expected a whole number between 0 and {max}, got {got}"
    ))
}

/// A SQL Server table named in a request ([`SQL_TABLE`]).
pub fn sql_table() -> impl Into<RefOr<Schema>> {
    string(SQL_TABLE, None)
        .description(Some(
            "schema.table or database.schema.table in SQL Server (a part with other characters in [brackets] or \"double quotes\"); without a database, in the bridge's.",
        ))
        .examples([serde_json::json!("dbo.target_table")])
}

/// The Spark type of a column as Spark writes it (`decimal(18,2)`): not
/// blank, at most [`SPARK_TYPE_MAX`] characters.
pub fn spark_type() -> impl Into<RefOr<Schema>> {
    string(NOT_BLANK, Some(SPARK_TYPE_MAX))
        .description(Some(
            "The column's Spark type as DataType.simpleString() writes it: int, decimal(18,2), timestamp, string, ...",
        ))
        .examples([serde_json::json!("decimal(18,2)")])
}

/// Longest Spark type text accepted (a struct's is long; it is refused
/// anyway, SQL Server has no such type).
pub const SPARK_TYPE_MAX: usize = 200;

/// `partition_on` of POST /extract (absent or null: as the queries' files say).
pub fn partition_column() -> impl Into<RefOr<Schema>> {
    string(COLUMN, Some(COLUMN_MAX))
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "Read each chosen query in ranges of this column of its result (an integer, date or date/time column), each range on its own connection, concurrently; overrides partition_on in the queries' <name>.yaml. Every row lands exactly once: the first range also takes NULLs.",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_say_what_the_patterns_say() {
        for (s, ok) in [
            ("./queries", true),
            (" x ", true),
            ("", false),
            ("   ", false),
            ("\t\n", false),
            ("a\0b", false),
        ] {
            assert_eq!(not_blank(s), ok, "{s:?}");
        }
        assert_eq!(cursor("17"), Some(17));
        assert_eq!(cursor("999999999999999999"), Some(999_999_999_999_999_999));
        for bad in [
            "",
            "0",
            "01",
            "+5",
            "-1",
            "1.0",
            "abc",
            "1234567890123456789",
        ] {
            assert_eq!(cursor(bad), None, "{bad}");
        }
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(require_columns("c", &names(&["id", "año", "a b", &"é".repeat(128)])).is_ok());
        for bad in [
            "",
            " ",
            "a;b",
            "a`b",
            "[a]",
            "a\u{7}",
            "it's",
            &"x".repeat(129),
        ] {
            assert!(require_columns("c", &names(&[bad])).is_err(), "{bad:?}");
        }
    }
}
