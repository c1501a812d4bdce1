//! Dropping a catalog, schema, volume or table, with everything kept about
//! it elsewhere: its grants, history, retention marks, row filters and
//! masks, `COPY INTO` log and change data. Above the catalog and those
//! stores, so the catalog never calls up into them.
//! https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-ddl-drop-table.html

use rusqlite::Connection;

use super::catalog::{self, FullName, VolumeInfo};
use super::error::SqlError;
use super::privileges::Securable;
use super::{cdf, copy_log, grants, history, policies, retention};

/// Drops a catalog; with `cascade` its schemas, tables and volumes too.
/// Returns the volumes removed so their files can be deleted.
pub fn drop_catalog(
    conn: &Connection,
    name: &str,
    if_exists: bool,
    cascade: bool,
) -> Result<Vec<VolumeInfo>, SqlError> {
    let name = name.to_lowercase();
    if catalog::get_catalog(conn, &name)?.is_none() {
        return if if_exists {
            Ok(vec![])
        } else {
            Err(SqlError::catalog_not_found(&name))
        };
    }
    let schemas = catalog::list_schemas(conn, &name)?;
    let non_default = schemas
        .iter()
        .any(|s| s.name != "default" && s.name != "information_schema");
    if non_default && !cascade {
        return Err(SqlError::invalid(
            "CATALOG_NOT_EMPTY",
            &format!("Cannot drop catalog '{name}' because it contains schemas. Use CASCADE."),
            "2BP01",
        ));
    }
    let mut volumes = Vec::new();
    for s in schemas {
        volumes.extend(drop_schema(conn, &name, &s.name, true, true)?);
    }
    catalog::delete_catalog(conn, &name)?;
    grants::forget(conn, &Securable::catalog(&name))?;
    Ok(volumes)
}

/// Drops a schema; with `cascade` its tables and volumes too. Returns the
/// volumes removed so their files can be deleted.
pub fn drop_schema(
    conn: &Connection,
    catalog_name: &str,
    name: &str,
    if_exists: bool,
    cascade: bool,
) -> Result<Vec<VolumeInfo>, SqlError> {
    let (catalog_name, name) = (catalog_name.to_lowercase(), name.to_lowercase());
    let full = format!("{catalog_name}.{name}");
    if catalog::get_schema(conn, &catalog_name, &name)?.is_none() {
        return if if_exists {
            Ok(vec![])
        } else {
            Err(SqlError::schema_not_found(&full))
        };
    }
    let tables = catalog::list_tables(conn, &catalog_name, &name)?;
    let volumes = catalog::list_volumes(conn, &catalog_name, &name)?;
    if (!tables.is_empty() || !volumes.is_empty()) && !cascade {
        return Err(SqlError::schema_not_empty(&full));
    }
    for t in &tables {
        drop_table(conn, &t.name, true)?;
    }
    catalog::delete_schema(conn, &catalog_name, &name)?;
    grants::forget(conn, &Securable::schema(&catalog_name, &name))?;
    Ok(volumes)
}

/// Drops a volume's metadata and grants; the caller deletes its files.
pub fn drop_volume(
    conn: &Connection,
    name: &FullName,
    if_exists: bool,
) -> Result<Option<VolumeInfo>, SqlError> {
    let Some(v) = catalog::get_volume(conn, name)? else {
        return if if_exists {
            Ok(None)
        } else {
            Err(SqlError::volume_not_found(&name.dotted()))
        };
    };
    catalog::delete_volume(conn, name)?;
    grants::forget(conn, &Securable::volume(name))?;
    Ok(Some(v))
}

/// Drops a table's rows and metadata with its history, change data,
/// properties and grants; false when it did not exist.
pub fn drop_table(conn: &Connection, name: &FullName, if_exists: bool) -> Result<bool, SqlError> {
    if catalog::get_table(conn, name)?.is_none() {
        return if if_exists {
            Ok(false)
        } else {
            Err(SqlError::table_not_found(&name.dotted()))
        };
    }
    drop_table_data(conn, name)?;
    history::forget(conn, name)?;
    retention::forget(conn, name)?;
    policies::forget(conn, name)?;
    copy_log::forget(conn, name)?;
    grants::forget(conn, &Securable::table(name))?;
    Ok(true)
}

/// Drops what CREATE OR REPLACE TABLE replaces: the rows, columns,
/// properties and change data. The history and grants stay: a replaced
/// Delta table keeps its identity and its log.
pub fn drop_table_data(conn: &Connection, name: &FullName) -> Result<(), SqlError> {
    cdf::forget(conn, name)?;
    catalog::delete_table(conn, name)
}
