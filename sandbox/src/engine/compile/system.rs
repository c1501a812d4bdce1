//! The catalog views a client queries, with the column types their
//! documentation pages give (learn.microsoft.com/sql/relational-databases/
//! system-information-schema-views/ and .../system-catalog-views/), over the
//! sandbox's own catalog tables.

use super::scope::SourceCol;
use super::Compiler;
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

fn col(name: &str, ty: SqlType, nullable: bool) -> SourceCol {
    SourceCol {
        name: name.to_string(),
        ty,
        nullable,
        identity: false,
        base: false,
    }
}

const SYSNAME: SqlType = SqlType::NVarChar(Len::N(128));

/// `(SQL, typed columns)` for `schema.view` or `db.schema.view` when it is
/// a catalog view the sandbox keeps.
pub fn view(
    c: &Compiler<'_, '_>,
    parts: &[String],
) -> Result<Option<(String, Vec<SourceCol>)>, SqlError> {
    let (db, schema, name) = match parts {
        [s, v] => (
            c.ctx.db.to_string(),
            s.to_ascii_lowercase(),
            v.to_ascii_lowercase(),
        ),
        [d, s, v] => (d.clone(), s.to_ascii_lowercase(), v.to_ascii_lowercase()),
        _ => return Ok(None),
    };
    if schema != "information_schema" && schema != "sys" {
        return Ok(None);
    }
    let dbq = quote_str(&db);
    let r = match (schema.as_str(), name.as_str()) {
        ("information_schema", "tables") => (
            format!("SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM __sb_is_tables WHERE TABLE_CATALOG = {dbq}"),
            vec![
                col("TABLE_CATALOG", SYSNAME, true),
                col("TABLE_SCHEMA", SYSNAME, true),
                col("TABLE_NAME", SYSNAME, false),
                col("TABLE_TYPE", SqlType::VarChar(Len::N(10)), true),
            ],
        ),
        ("information_schema", "columns") => (
            format!(
                "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, \
                 IS_NULLABLE, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, \
                 CASE WHEN CHARACTER_MAXIMUM_LENGTH = -1 THEN -1 WHEN DATA_TYPE IN ('nchar', 'nvarchar') THEN CHARACTER_MAXIMUM_LENGTH * 2 ELSE CHARACTER_MAXIMUM_LENGTH END AS CHARACTER_OCTET_LENGTH, \
                 NUMERIC_PRECISION, CASE WHEN NUMERIC_PRECISION IS NULL THEN NULL WHEN DATA_TYPE IN ('float', 'real') THEN 2 ELSE 10 END AS NUMERIC_PRECISION_RADIX, \
                 NUMERIC_SCALE, DATETIME_PRECISION, \
                 CASE WHEN CHARACTER_MAXIMUM_LENGTH IS NOT NULL AND DATA_TYPE NOT IN ('binary', 'varbinary', 'image') THEN 'SQL_Latin1_General_CP1_CI_AS' END AS COLLATION_NAME \
                 FROM __sb_is_columns WHERE TABLE_CATALOG = {dbq}"
            ),
            vec![
                col("TABLE_CATALOG", SYSNAME, true),
                col("TABLE_SCHEMA", SYSNAME, true),
                col("TABLE_NAME", SYSNAME, false),
                col("COLUMN_NAME", SYSNAME, true),
                col("ORDINAL_POSITION", SqlType::Int, true),
                col("COLUMN_DEFAULT", SqlType::NVarChar(Len::N(4000)), true),
                col("IS_NULLABLE", SqlType::VarChar(Len::N(3)), true),
                col("DATA_TYPE", SYSNAME, true),
                col("CHARACTER_MAXIMUM_LENGTH", SqlType::Int, true),
                col("CHARACTER_OCTET_LENGTH", SqlType::Int, true),
                col("NUMERIC_PRECISION", SqlType::TinyInt, true),
                col("NUMERIC_PRECISION_RADIX", SqlType::SmallInt, true),
                col("NUMERIC_SCALE", SqlType::Int, true),
                col("DATETIME_PRECISION", SqlType::SmallInt, true),
                col("COLLATION_NAME", SYSNAME, true),
            ],
        ),
        ("information_schema", "schemata") => (
            format!("SELECT db AS CATALOG_NAME, name AS SCHEMA_NAME, 'dbo' AS SCHEMA_OWNER FROM __sb_schemas WHERE db = {dbq}"),
            vec![
                col("CATALOG_NAME", SYSNAME, true),
                col("SCHEMA_NAME", SYSNAME, false),
                col("SCHEMA_OWNER", SYSNAME, true),
            ],
        ),
        ("information_schema", "routines") => (
            format!("SELECT db AS ROUTINE_CATALOG, schema AS ROUTINE_SCHEMA, name AS ROUTINE_NAME, 'PROCEDURE' AS ROUTINE_TYPE FROM __sb_procedures WHERE db = {dbq}"),
            vec![
                col("ROUTINE_CATALOG", SYSNAME, true),
                col("ROUTINE_SCHEMA", SYSNAME, true),
                col("ROUTINE_NAME", SYSNAME, false),
                col("ROUTINE_TYPE", SqlType::NVarChar(Len::N(20)), true),
            ],
        ),
        ("information_schema", "views") => (
            format!("SELECT db AS TABLE_CATALOG, schema AS TABLE_SCHEMA, name AS TABLE_NAME, definition AS VIEW_DEFINITION FROM __sb_views WHERE db = {dbq}"),
            vec![
                col("TABLE_CATALOG", SYSNAME, true),
                col("TABLE_SCHEMA", SYSNAME, true),
                col("TABLE_NAME", SYSNAME, false),
                col("VIEW_DEFINITION", SqlType::NVarChar(Len::N(4000)), true),
            ],
        ),
        ("sys", "tables") | ("sys", "objects") => (
            format!("SELECT name, object_id, schema_id, type, type_desc, create_date FROM __sb_sys_tables WHERE db = {dbq}"),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("schema_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
                col("create_date", SqlType::DateTime, false),
            ],
        ),
        ("sys", "columns") | ("sys", "all_columns") => (
            format!("SELECT object_id, name, column_id, max_length, precision, scale, is_nullable, is_identity, type_name, NULL AS graph_type FROM __sb_sys_columns WHERE db = {dbq}"),
            vec![
                col("object_id", SqlType::Int, false),
                col("name", SYSNAME, true),
                col("column_id", SqlType::Int, false),
                col("max_length", SqlType::SmallInt, false),
                col("precision", SqlType::TinyInt, false),
                col("scale", SqlType::TinyInt, false),
                col("is_nullable", SqlType::Bit, true),
                col("is_identity", SqlType::Bit, false),
                col("type_name", SYSNAME, true),
                col("graph_type", SqlType::Int, true),
            ],
        ),
        ("sys", "schemas") => (
            format!("SELECT name, schema_id, principal_id FROM __sb_sys_schemas WHERE db = {dbq}"),
            vec![
                col("name", SYSNAME, false),
                col("schema_id", SqlType::Int, false),
                col("principal_id", SqlType::Int, true),
            ],
        ),
        ("sys", "databases") => (
            "SELECT name, database_id, create_date, collation_name, state_desc FROM __sb_sys_databases".to_string(),
            vec![
                col("name", SYSNAME, true),
                col("database_id", SqlType::Int, false),
                col("create_date", SqlType::DateTime, false),
                col("collation_name", SYSNAME, true),
                col("state_desc", SqlType::NVarChar(Len::N(60)), true),
            ],
        ),
        ("sys", "procedures") => (
            format!("SELECT name, object_id, 'P' AS type, 'SQL_STORED_PROCEDURE' AS type_desc FROM __sb_procedures WHERE db = {dbq}"),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
            ],
        ),
        ("sys", "views") => (
            format!("SELECT name, object_id, 'V' AS type, 'VIEW' AS type_desc FROM __sb_views WHERE db = {dbq}"),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
            ],
        ),
        _ => return Ok(None),
    };
    Ok(Some(r))
}
