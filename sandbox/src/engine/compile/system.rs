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
        collation: None,
    }
}

const SYSNAME: SqlType = SqlType::NVarChar(Len::N(128));

/// sys.foreign_keys' `*_referential_action_desc` for an action code.
fn action_desc(code: &str) -> String {
    format!(
        "CASE {code} WHEN 1 THEN 'CASCADE' WHEN 2 THEN 'SET_NULL' WHEN 3 THEN 'SET_DEFAULT' ELSE 'NO_ACTION' END"
    )
}

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
                 COLLATION_NAME \
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
        ("sys", "tables") => (
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
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-objects-transact-sql
        ("sys", "objects") | ("sys", "all_objects") => (
            format!(
                "SELECT o.name, o.object_id, NULL AS principal_id, s.schema_id, o.parent_object_id, o.type, o.type_desc, \
                 o.create_date, o.create_date AS modify_date, 0 AS is_ms_shipped, 0 AS is_published, 0 AS is_schema_published \
                 FROM (SELECT db, schema, name, object_id, 0 AS parent_object_id, 'U ' AS type, 'USER_TABLE' AS type_desc, created AS create_date FROM __sb_tables \
                       UNION ALL SELECT db, schema, name, object_id, 0, 'V ', 'VIEW', NULL FROM __sb_views \
                       UNION ALL SELECT db, schema, name, object_id, 0, 'P ', 'SQL_STORED_PROCEDURE', NULL FROM __sb_procedures \
                       UNION ALL SELECT db, schema, name, object_id, table_id, 'TR', 'SQL_TRIGGER', created FROM __sb_triggers \
                       UNION ALL SELECT db, schema, name, object_id, table_id, CASE kind WHEN 'C' THEN 'C ' ELSE 'F ' END, \
                                 CASE kind WHEN 'C' THEN 'CHECK_CONSTRAINT' ELSE 'FOREIGN_KEY_CONSTRAINT' END, created FROM __sb_constraints) o \
                 JOIN __sb_schemas s ON s.db = o.db AND s.name = o.schema WHERE o.db = {dbq}"
            ),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("principal_id", SqlType::Int, true),
                col("schema_id", SqlType::Int, false),
                col("parent_object_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
                col("create_date", SqlType::DateTime, false),
                col("modify_date", SqlType::DateTime, false),
                col("is_ms_shipped", SqlType::Bit, false),
                col("is_published", SqlType::Bit, false),
                col("is_schema_published", SqlType::Bit, false),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-check-constraints-transact-sql
        ("sys", "check_constraints") => (
            format!(
                "SELECT k.name, k.object_id, NULL AS principal_id, s.schema_id, k.table_id AS parent_object_id, 'C ' AS type, \
                 'CHECK_CONSTRAINT' AS type_desc, k.created AS create_date, k.created AS modify_date, 0 AS is_ms_shipped, \
                 0 AS is_published, 0 AS is_schema_published, k.is_disabled, 0 AS is_not_for_replication, k.is_not_trusted, \
                 coalesce((SELECT c.ordinal FROM __sb_columns c WHERE c.object_id = k.table_id AND c.name = k.column_name), 0) AS parent_column_id, \
                 k.definition, 1 AS uses_database_collation, k.is_system_named \
                 FROM __sb_constraints k JOIN __sb_schemas s ON s.db = k.db AND s.name = k.schema \
                 WHERE k.kind = 'C' AND k.db = {dbq}"
            ),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("principal_id", SqlType::Int, true),
                col("schema_id", SqlType::Int, false),
                col("parent_object_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
                col("create_date", SqlType::DateTime, false),
                col("modify_date", SqlType::DateTime, false),
                col("is_ms_shipped", SqlType::Bit, false),
                col("is_published", SqlType::Bit, false),
                col("is_schema_published", SqlType::Bit, false),
                col("is_disabled", SqlType::Bit, false),
                col("is_not_for_replication", SqlType::Bit, false),
                col("is_not_trusted", SqlType::Bit, false),
                col("parent_column_id", SqlType::Int, false),
                col("definition", SqlType::NVarChar(Len::Max), true),
                col("uses_database_collation", SqlType::Bit, true),
                col("is_system_named", SqlType::Bit, false),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-foreign-keys-transact-sql
        ("sys", "foreign_keys") => (
            format!(
                "SELECT k.name, k.object_id, NULL AS principal_id, s.schema_id, k.table_id AS parent_object_id, 'F ' AS type, \
                 'FOREIGN_KEY_CONSTRAINT' AS type_desc, k.created AS create_date, k.created AS modify_date, 0 AS is_ms_shipped, \
                 0 AS is_published, 0 AS is_schema_published, k.ref_table_id AS referenced_object_id, 1 AS key_index_id, \
                 k.is_disabled, 0 AS is_not_for_replication, k.is_not_trusted, \
                 k.on_delete AS delete_referential_action, {del} AS delete_referential_action_desc, \
                 k.on_update AS update_referential_action, {upd} AS update_referential_action_desc, k.is_system_named \
                 FROM __sb_constraints k JOIN __sb_schemas s ON s.db = k.db AND s.name = k.schema \
                 WHERE k.kind = 'F' AND k.db = {dbq}",
                del = action_desc("k.on_delete"),
                upd = action_desc("k.on_update"),
            ),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("principal_id", SqlType::Int, true),
                col("schema_id", SqlType::Int, false),
                col("parent_object_id", SqlType::Int, false),
                col("type", SqlType::Char(2), true),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
                col("create_date", SqlType::DateTime, false),
                col("modify_date", SqlType::DateTime, false),
                col("is_ms_shipped", SqlType::Bit, false),
                col("is_published", SqlType::Bit, false),
                col("is_schema_published", SqlType::Bit, false),
                col("referenced_object_id", SqlType::Int, true),
                col("key_index_id", SqlType::Int, true),
                col("is_disabled", SqlType::Bit, false),
                col("is_not_for_replication", SqlType::Bit, false),
                col("is_not_trusted", SqlType::Bit, false),
                col("delete_referential_action", SqlType::TinyInt, true),
                col("delete_referential_action_desc", SqlType::NVarChar(Len::N(60)), true),
                col("update_referential_action", SqlType::TinyInt, true),
                col("update_referential_action_desc", SqlType::NVarChar(Len::N(60)), true),
                col("is_system_named", SqlType::Bit, false),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-foreign-key-columns-transact-sql
        ("sys", "foreign_key_columns") => (
            format!(
                "SELECT k.object_id AS constraint_object_id, CAST(p.key AS INTEGER) + 1 AS constraint_column_id, \
                 k.table_id AS parent_object_id, \
                 (SELECT c.ordinal FROM __sb_columns c WHERE c.object_id = k.table_id AND c.name = p.value) AS parent_column_id, \
                 k.ref_table_id AS referenced_object_id, \
                 (SELECT c.ordinal FROM __sb_columns c WHERE c.object_id = k.ref_table_id AND c.name = r.value) AS referenced_column_id \
                 FROM __sb_constraints k, json_each(k.columns) p, json_each(k.ref_columns) r \
                 WHERE k.kind = 'F' AND p.key = r.key AND k.db = {dbq}"
            ),
            vec![
                col("constraint_object_id", SqlType::Int, false),
                col("constraint_column_id", SqlType::Int, false),
                col("parent_object_id", SqlType::Int, false),
                col("parent_column_id", SqlType::Int, false),
                col("referenced_object_id", SqlType::Int, false),
                col("referenced_column_id", SqlType::Int, false),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/change-tracking-catalog-views-sys-change-tracking-tables
        ("sys", "change_tracking_tables") => (
            format!(
                "SELECT object_id, track_columns AS is_track_columns_updated_on, begin_version, cleanup_version, \
                 min_valid_version FROM __sb_ct_tables WHERE db = {dbq}"
            ),
            vec![
                col("object_id", SqlType::Int, false),
                col("is_track_columns_updated_on", SqlType::Bit, false),
                col("begin_version", SqlType::BigInt, true),
                col("cleanup_version", SqlType::BigInt, true),
                col("min_valid_version", SqlType::BigInt, true),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/change-tracking-catalog-views-sys-change-tracking-databases
        ("sys", "change_tracking_databases") => (
            "SELECT d.database_id, c.auto_cleanup AS is_auto_cleanup_on, c.retention AS retention_period, \
             c.retention_units AS retention_period_units, \
             CASE c.retention_units WHEN 1 THEN 'MINUTES' WHEN 2 THEN 'HOURS' ELSE 'DAYS' END AS retention_period_units_desc, \
             c.max_cleanup_version FROM __sb_ct_databases c JOIN __sb_databases d ON d.name = c.db"
                .to_string(),
            vec![
                col("database_id", SqlType::Int, false),
                col("is_auto_cleanup_on", SqlType::Bit, true),
                col("retention_period", SqlType::Int, true),
                col("retention_period_units", SqlType::TinyInt, true),
                col("retention_period_units_desc", SqlType::NVarChar(Len::N(60)), true),
                col("max_cleanup_version", SqlType::BigInt, true),
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-triggers-transact-sql
        ("sys", "triggers") => (
            format!(
                "SELECT name, object_id, 1 AS parent_class, 'OBJECT_OR_COLUMN' AS parent_class_desc, table_id AS parent_id, \
                 'TR' AS type, 'SQL_TRIGGER' AS type_desc, created AS create_date, modified AS modify_date, 0 AS is_ms_shipped, \
                 is_disabled, 0 AS is_not_for_replication, 0 AS is_instead_of_trigger FROM __sb_triggers WHERE db = {dbq}"
            ),
            vec![
                col("name", SYSNAME, false),
                col("object_id", SqlType::Int, false),
                col("parent_class", SqlType::TinyInt, false),
                col("parent_class_desc", SqlType::NVarChar(Len::N(60)), true),
                col("parent_id", SqlType::Int, false),
                col("type", SqlType::Char(2), false),
                col("type_desc", SqlType::NVarChar(Len::N(60)), true),
                col("create_date", SqlType::DateTime, false),
                col("modify_date", SqlType::DateTime, false),
                col("is_ms_shipped", SqlType::Bit, false),
                col("is_disabled", SqlType::Bit, false),
                col("is_not_for_replication", SqlType::Bit, false),
                col("is_instead_of_trigger", SqlType::Bit, false),
            ],
        ),
        ("sys", "columns") | ("sys", "all_columns") => (
            format!("SELECT object_id, name, column_id, max_length, precision, scale, is_nullable, is_identity, type_name, NULL AS graph_type, collation_name FROM __sb_sys_columns WHERE db = {dbq}"),
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
                col("collation_name", SYSNAME, true),
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
            "SELECT name, database_id, create_date, collation_name, state_desc, snapshot_isolation_state, \
             snapshot_isolation_state_desc, is_read_committed_snapshot_on FROM __sb_sys_databases".to_string(),
            vec![
                col("name", SYSNAME, true),
                col("database_id", SqlType::Int, false),
                col("create_date", SqlType::DateTime, false),
                col("collation_name", SYSNAME, true),
                col("state_desc", SqlType::NVarChar(Len::N(60)), true),
                col("snapshot_isolation_state", SqlType::TinyInt, true),
                col("snapshot_isolation_state_desc", SqlType::NVarChar(Len::N(60)), true),
                col("is_read_committed_snapshot_on", SqlType::Bit, true),
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
