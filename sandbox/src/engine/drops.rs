//! DROP TABLE and DROP DATABASE with everything kept about the object:
//! its constraints, triggers and Change Tracking state. Above the catalog
//! and those stores, so the catalog never calls up into them.
//! https://learn.microsoft.com/en-us/sql/t-sql/statements/drop-table-transact-sql
//! https://learn.microsoft.com/en-us/sql/t-sql/statements/drop-database-transact-sql

use rusqlite::Connection;

use super::catalog;
use super::change_tracking;
use super::constraints;
use super::error::SqlError;
use super::triggers;

/// DROP TABLE: refused (3726) while another table's FOREIGN KEY
/// references it.
pub fn drop_table(conn: &Connection, db: &str, schema: &str, name: &str) -> Result<(), SqlError> {
    let Some(meta) = catalog::find_table(conn, db, schema, name)? else {
        return Err(SqlError::new(
            3701,
            5,
            11,
            format!("Cannot drop the table '{name}', because it does not exist or you do not have permission."),
        ));
    };
    if let Some(id) = meta.object_id {
        // DROP TABLE page: a table a FOREIGN KEY references can't be dropped (3726).
        if constraints::referenced_by_other(conn, id)?.is_some() {
            return Err(SqlError::new(
                3726,
                1,
                16,
                format!(
                    "Could not drop object '{}' because it is referenced by a FOREIGN KEY constraint.",
                    meta.full_name()
                ),
            ));
        }
        constraints::delete_for_table(conn, id)?;
        triggers::delete_for_table(conn, id)?;
        change_tracking::forget_table(conn, id)?;
    }
    catalog::delete_table(conn, &meta)
}

/// DROP DATABASE: its constraints, triggers and Change Tracking go with it,
/// whatever references what, then its tables, schemas and itself.
pub fn drop_database(conn: &Connection, name: &str) -> Result<(), SqlError> {
    let Some(name) = catalog::database_name(conn, name)? else {
        return Err(SqlError::new(
            3701,
            1,
            11,
            format!("Cannot drop the database '{name}', because it does not exist or you do not have permission."),
        ));
    };
    constraints::delete_for_database(conn, &name)?;
    triggers::delete_for_database(conn, &name)?;
    change_tracking::forget_database(conn, &name)?;
    for (schema, table) in catalog::table_names(conn, &name)? {
        drop_table(conn, &name, &schema, &table)?;
    }
    catalog::delete_database(conn, &name)
}
