//! SQL Server Change Tracking (filled in below).

use rusqlite::Connection;

use super::error::SqlError;

/// DROP TABLE: the table's change tracking goes with it.
pub fn forget_table(_conn: &Connection, _table_id: i64) -> Result<(), SqlError> {
    Ok(())
}

/// Whether a table's changes are tracked.
pub fn is_tracked(_conn: &Connection, _table_id: i64) -> Result<bool, SqlError> {
    Ok(false)
}

/// TRUNCATE TABLE resets a tracked table's change information.
pub fn truncated(_conn: &Connection, _db: &str, _table_id: i64) -> Result<(), SqlError> {
    Ok(())
}

/// ALTER TABLE ... ENABLE CHANGE_TRACKING.
pub fn enable_table(
    _conn: &Connection,
    _db: &str,
    _meta: &super::catalog::TableMeta,
    _track_columns: bool,
) -> Result<(), SqlError> {
    Err(SqlError::unsupported("CHANGE_TRACKING"))
}

/// ALTER TABLE ... DISABLE CHANGE_TRACKING.
pub fn disable_table(
    _conn: &Connection,
    _meta: &super::catalog::TableMeta,
) -> Result<(), SqlError> {
    Err(SqlError::unsupported("CHANGE_TRACKING"))
}

/// ALTER DATABASE ... SET CHANGE_TRACKING.
pub fn set_database(
    _conn: &Connection,
    _db: &str,
    _on: Option<bool>,
    _retention: Option<&(i64, String)>,
    _auto_cleanup: Option<bool>,
) -> Result<(), SqlError> {
    Err(SqlError::unsupported("CHANGE_TRACKING"))
}
