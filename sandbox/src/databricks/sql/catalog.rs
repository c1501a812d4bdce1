//! Unity Catalog metadata (catalogs, schemas, volumes, tables and their
//! declared column types, owners and table properties), kept in SQLite next
//! to the data so SQL DDL and the REST endpoints see one truth. Names are
//! stored lower case: Unity Catalog identifiers are case-insensitive.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::{map_sqlite_error, SqlError};
pub use super::names::{quote_ident, FullName};
use super::privileges::{Securable, SecurableType};
use super::types::DbxType;

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_catalogs (
    name TEXT PRIMARY KEY, comment TEXT, created_at INTEGER NOT NULL, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS __dbx_schemas (
    catalog TEXT NOT NULL, name TEXT NOT NULL, comment TEXT, created_at INTEGER NOT NULL,
    id TEXT NOT NULL, PRIMARY KEY (catalog, name));
CREATE TABLE IF NOT EXISTS __dbx_volumes (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, name TEXT NOT NULL, volume_type TEXT NOT NULL,
    comment TEXT, created_at INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (catalog, schema, name));
CREATE TABLE IF NOT EXISTS __dbx_tables (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, name TEXT NOT NULL, comment TEXT,
    created_at INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (catalog, schema, name));
CREATE TABLE IF NOT EXISTS __dbx_columns (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, position INTEGER NOT NULL,
    name TEXT NOT NULL, type_text TEXT NOT NULL, nullable INTEGER NOT NULL, comment TEXT,
    PRIMARY KEY (catalog, schema, tbl, position));
CREATE TABLE IF NOT EXISTS __dbx_table_props (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, PRIMARY KEY (catalog, schema, tbl, key));
";

/// The metadata tables that record an owner per object.
const OWNED: [&str; 4] = [
    "__dbx_catalogs",
    "__dbx_schemas",
    "__dbx_volumes",
    "__dbx_tables",
];

/// Creates the metadata tables, adding the `owner` column to databases made
/// before objects had owners.
pub fn init(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(SCHEMA_SQL).map_err(db)?;
    for t in OWNED {
        let has: bool = conn
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{t}') WHERE name = 'owner'"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db)?
            > 0;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN owner TEXT"))
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Gives every object without an owner (made before any principal was
/// known, like the `main` catalog of a new workspace) to `owner`.
pub fn adopt_unowned(conn: &Connection, owner: &str) -> Result<(), SqlError> {
    for t in OWNED {
        conn.execute(
            &format!("UPDATE {t} SET owner = ?1 WHERE owner IS NULL"),
            [owner],
        )
        .map_err(db)?;
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct CatalogInfo {
    pub name: String,
    pub comment: Option<String>,
    pub created_at: i64,
    pub id: String,
    pub owner: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SchemaInfo {
    pub catalog: String,
    pub name: String,
    pub comment: Option<String>,
    pub created_at: i64,
    pub id: String,
    pub owner: Option<String>,
}

#[derive(Clone, Debug)]
pub struct VolumeInfo {
    pub name: FullName,
    pub volume_type: String,
    pub comment: Option<String>,
    pub created_at: i64,
    pub id: String,
    pub owner: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: DbxType,
    pub nullable: bool,
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TableInfo {
    pub name: FullName,
    pub comment: Option<String>,
    pub created_at: i64,
    pub id: String,
    pub owner: Option<String>,
    pub columns: Vec<ColumnInfo>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// Creates a catalog owned by `owner` (the principal that creates an object
/// owns it).
pub fn create_catalog(
    conn: &Connection,
    name: &str,
    comment: Option<&str>,
    if_not_exists: bool,
    owner: Option<&str>,
) -> Result<CatalogInfo, SqlError> {
    let name = name.to_lowercase();
    if let Some(c) = get_catalog(conn, &name)? {
        return if if_not_exists {
            Ok(c)
        } else {
            Err(SqlError::catalog_exists(&name))
        };
    }
    let id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO __dbx_catalogs (name, comment, created_at, id, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, comment, now_ms(), id, owner],
    )
    .map_err(db)?;
    get_catalog(conn, &name)?.ok_or_else(|| SqlError::catalog_not_found(&name))
}

pub fn get_catalog(conn: &Connection, name: &str) -> Result<Option<CatalogInfo>, SqlError> {
    conn.query_row(
        "SELECT name, comment, created_at, id, owner FROM __dbx_catalogs WHERE name = ?1",
        [name.to_lowercase()],
        |r| {
            Ok(CatalogInfo {
                name: r.get(0)?,
                comment: r.get(1)?,
                created_at: r.get(2)?,
                id: r.get(3)?,
                owner: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(db)
}

pub fn list_catalogs(conn: &Connection) -> Result<Vec<CatalogInfo>, SqlError> {
    let mut st = conn
        .prepare("SELECT name FROM __dbx_catalogs ORDER BY name")
        .map_err(db)?;
    let names: Vec<String> = st
        .query_map([], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut out = Vec::new();
    for n in names {
        if let Some(c) = get_catalog(conn, &n)? {
            out.push(c);
        }
    }
    Ok(out)
}

pub fn create_schema(
    conn: &Connection,
    catalog: &str,
    name: &str,
    comment: Option<&str>,
    if_not_exists: bool,
    owner: Option<&str>,
) -> Result<SchemaInfo, SqlError> {
    let (catalog, name) = (catalog.to_lowercase(), name.to_lowercase());
    if get_catalog(conn, &catalog)?.is_none() {
        return Err(SqlError::catalog_not_found(&catalog));
    }
    if let Some(s) = get_schema(conn, &catalog, &name)? {
        return if if_not_exists {
            Ok(s)
        } else {
            Err(SqlError::schema_exists(&format!("{catalog}.{name}")))
        };
    }
    conn.execute(
        "INSERT INTO __dbx_schemas (catalog, name, comment, created_at, id, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![catalog, name, comment, now_ms(), uuid::Uuid::new_v4().to_string(), owner],
    )
    .map_err(db)?;
    get_schema(conn, &catalog, &name)?
        .ok_or_else(|| SqlError::schema_not_found(&format!("{catalog}.{name}")))
}

pub fn get_schema(
    conn: &Connection,
    catalog: &str,
    name: &str,
) -> Result<Option<SchemaInfo>, SqlError> {
    conn.query_row(
        "SELECT catalog, name, comment, created_at, id, owner FROM __dbx_schemas WHERE catalog = ?1 AND name = ?2",
        [catalog.to_lowercase(), name.to_lowercase()],
        |r| {
            Ok(SchemaInfo {
                catalog: r.get(0)?,
                name: r.get(1)?,
                comment: r.get(2)?,
                created_at: r.get(3)?,
                id: r.get(4)?,
                owner: r.get(5)?,
            })
        },
    )
    .optional()
    .map_err(db)
}

pub fn list_schemas(conn: &Connection, catalog: &str) -> Result<Vec<SchemaInfo>, SqlError> {
    let mut st = conn
        .prepare("SELECT name FROM __dbx_schemas WHERE catalog = ?1 ORDER BY name")
        .map_err(db)?;
    let names: Vec<String> = st
        .query_map([catalog.to_lowercase()], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut out = Vec::new();
    for n in names {
        if let Some(s) = get_schema(conn, catalog, &n)? {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn create_volume(
    conn: &Connection,
    name: &FullName,
    volume_type: &str,
    comment: Option<&str>,
    if_not_exists: bool,
    owner: Option<&str>,
) -> Result<VolumeInfo, SqlError> {
    if get_schema(conn, &name.catalog, &name.schema)?.is_none() {
        return Err(SqlError::schema_not_found(&format!(
            "{}.{}",
            name.catalog, name.schema
        )));
    }
    if let Some(v) = get_volume(conn, name)? {
        return if if_not_exists {
            Ok(v)
        } else {
            Err(SqlError::volume_exists(&name.dotted()))
        };
    }
    conn.execute(
        "INSERT INTO __dbx_volumes (catalog, schema, name, volume_type, comment, created_at, id, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![name.catalog, name.schema, name.name, volume_type, comment, now_ms(), uuid::Uuid::new_v4().to_string(), owner],
    )
    .map_err(db)?;
    get_volume(conn, name)?.ok_or_else(|| SqlError::volume_not_found(&name.dotted()))
}

pub fn get_volume(conn: &Connection, name: &FullName) -> Result<Option<VolumeInfo>, SqlError> {
    conn.query_row(
        "SELECT volume_type, comment, created_at, id, owner FROM __dbx_volumes WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
        [&name.catalog, &name.schema, &name.name],
        |r| {
            Ok(VolumeInfo {
                name: name.clone(),
                volume_type: r.get(0)?,
                comment: r.get(1)?,
                created_at: r.get(2)?,
                id: r.get(3)?,
                owner: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(db)
}

/// Names of the objects of one catalog table (volumes, tables) in a schema.
fn names_in(
    conn: &Connection,
    table: &str,
    catalog: &str,
    schema: &str,
) -> Result<Vec<String>, SqlError> {
    let mut st = conn
        .prepare(&format!(
            "SELECT name FROM {table} WHERE catalog = ?1 AND schema = ?2 ORDER BY name"
        ))
        .map_err(db)?;
    let names = st
        .query_map([catalog.to_lowercase(), schema.to_lowercase()], |r| {
            r.get(0)
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(names)
}

pub fn list_volumes(
    conn: &Connection,
    catalog: &str,
    schema: &str,
) -> Result<Vec<VolumeInfo>, SqlError> {
    let names = names_in(conn, "__dbx_volumes", catalog, schema)?;
    let mut out = Vec::new();
    for n in names {
        if let Some(v) = get_volume(conn, &FullName::new(catalog, schema, &n))? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Registers a table's metadata (the caller creates the SQLite table).
pub fn register_table(
    conn: &Connection,
    name: &FullName,
    columns: &[ColumnInfo],
    comment: Option<&str>,
    owner: Option<&str>,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT INTO __dbx_tables (catalog, schema, name, comment, created_at, id, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![name.catalog, name.schema, name.name, comment, now_ms(), uuid::Uuid::new_v4().to_string(), owner],
    )
    .map_err(db)?;
    for (i, c) in columns.iter().enumerate() {
        conn.execute(
            "INSERT INTO __dbx_columns (catalog, schema, tbl, position, name, type_text, nullable, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![name.catalog, name.schema, name.name, i as i64, c.name, c.ty.to_string(), c.nullable, c.comment],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Gives a re-registered (replaced) table its earlier id and creation time.
pub fn keep_identity(
    conn: &Connection,
    name: &FullName,
    id: &str,
    created_at: i64,
) -> Result<(), SqlError> {
    conn.execute(
        "UPDATE __dbx_tables SET id = ?4, created_at = ?5 WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
        params![name.catalog, name.schema, name.name, id, created_at],
    )
    .map_err(db)?;
    Ok(())
}

/// Adds columns at the end of a table (ALTER TABLE ADD COLUMNS, schema
/// evolution): to the SQLite table holding its rows and to its metadata.
pub fn add_columns(
    conn: &Connection,
    name: &FullName,
    columns: &[ColumnInfo],
) -> Result<(), SqlError> {
    let next: i64 = conn
        .query_row(
            "SELECT coalesce(max(position) + 1, 0) FROM __dbx_columns WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
            [&name.catalog, &name.schema, &name.name],
            |r| r.get(0),
        )
        .map_err(db)?;
    for (i, c) in columns.iter().enumerate() {
        conn.execute_batch(&format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            name.physical(),
            quote_ident(&c.name),
            c.ty.sqlite_decl()
        ))
        .map_err(db)?;
        conn.execute(
            "INSERT INTO __dbx_columns (catalog, schema, tbl, position, name, type_text, nullable, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![name.catalog, name.schema, name.name, next + i as i64, c.name, c.ty.to_string(), c.nullable, c.comment],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Changes a column's declared type (type widening): the SQLite table is
/// made again with the new column affinity and its rows copied, each value
/// of the column converted to the new type's storage form. Triggers on the
/// old table go with it; the caller makes the change data feed's again.
pub fn change_column_type(
    conn: &Connection,
    table: &TableInfo,
    column: &str,
    ty: &DbxType,
) -> Result<(), SqlError> {
    let name = &table.name;
    let old = quote_ident(&format!("{}$widening", name.dotted()));
    let defs: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let t = if c.name == column { ty } else { &c.ty };
            format!(
                "{} {}{}",
                quote_ident(&c.name),
                t.sqlite_decl(),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let vals: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            if c.name == column {
                format!("__dbx_store({}, '{ty}')", quote_ident(&c.name))
            } else {
                quote_ident(&c.name)
            }
        })
        .collect();
    conn.execute_batch(&format!(
        "ALTER TABLE {t} RENAME TO {old};
         CREATE TABLE {t} ({defs});
         INSERT INTO {t} (rowid, {cols}) SELECT rowid, {vals} FROM {old};
         DROP TABLE {old};",
        t = name.physical(),
        defs = defs.join(", "),
        cols = cols.join(", "),
        vals = vals.join(", "),
    ))
    .map_err(map_sqlite_error)?;
    conn.execute(
        "UPDATE __dbx_columns SET type_text = ?5 WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND name = ?4",
        params![name.catalog, name.schema, name.name, column, ty.to_string()],
    )
    .map_err(db)?;
    Ok(())
}

pub fn get_table(conn: &Connection, name: &FullName) -> Result<Option<TableInfo>, SqlError> {
    let head = conn
        .query_row(
            "SELECT comment, created_at, id, owner FROM __dbx_tables WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
            [&name.catalog, &name.schema, &name.name],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()
        .map_err(db)?;
    let Some((comment, created_at, id, owner)) = head else {
        return Ok(None);
    };
    let mut st = conn
        .prepare("SELECT name, type_text, nullable, comment FROM __dbx_columns WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 ORDER BY position")
        .map_err(db)?;
    let cols = st
        .query_map([&name.catalog, &name.schema, &name.name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    let columns = cols
        .into_iter()
        .map(|(n, t, nullable, comment)| ColumnInfo {
            ty: DbxType::parse(&t).unwrap_or(DbxType::String),
            name: n,
            nullable,
            comment,
        })
        .collect();
    Ok(Some(TableInfo {
        name: name.clone(),
        comment,
        created_at,
        id,
        owner,
        columns,
    }))
}

pub fn list_tables(
    conn: &Connection,
    catalog: &str,
    schema: &str,
) -> Result<Vec<TableInfo>, SqlError> {
    let names = names_in(conn, "__dbx_tables", catalog, schema)?;
    let mut out = Vec::new();
    for n in names {
        if let Some(t) = get_table(conn, &FullName::new(catalog, schema, &n))? {
            out.push(t);
        }
    }
    Ok(out)
}

/// Removes a catalog's own row (its schemas are removed first).
pub fn delete_catalog(conn: &Connection, name: &str) -> Result<(), SqlError> {
    conn.execute("DELETE FROM __dbx_catalogs WHERE name = ?1", [name])
        .map_err(db)?;
    Ok(())
}

/// Removes a schema's row and its volumes' rows (its tables are removed
/// first).
pub fn delete_schema(conn: &Connection, catalog: &str, name: &str) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_volumes WHERE catalog = ?1 AND schema = ?2",
        [catalog, name],
    )
    .map_err(db)?;
    conn.execute(
        "DELETE FROM __dbx_schemas WHERE catalog = ?1 AND name = ?2",
        [catalog, name],
    )
    .map_err(db)?;
    Ok(())
}

/// Removes a volume's row.
pub fn delete_volume(conn: &Connection, name: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_volumes WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
        [&name.catalog, &name.schema, &name.name],
    )
    .map_err(db)?;
    Ok(())
}

/// Removes a table's rows, columns, properties and registration.
pub fn delete_table(conn: &Connection, name: &FullName) -> Result<(), SqlError> {
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", name.physical()))
        .map_err(db)?;
    for t in ["__dbx_columns", "__dbx_table_props"] {
        conn.execute(
            &format!("DELETE FROM {t} WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3"),
            [&name.catalog, &name.schema, &name.name],
        )
        .map_err(db)?;
    }
    conn.execute(
        "DELETE FROM __dbx_tables WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
        [&name.catalog, &name.schema, &name.name],
    )
    .map_err(db)?;
    Ok(())
}

/// The owner of a securable object; `None` when it does not exist (or was
/// made before owners were known).
pub fn owner_of(conn: &Connection, sec: &Securable) -> Result<Option<String>, SqlError> {
    let parts: Vec<&str> = sec.full_name.split('.').collect();
    let (table, cond) = match sec.ty {
        SecurableType::Catalog => ("__dbx_catalogs", "name = ?1"),
        SecurableType::Schema => ("__dbx_schemas", "catalog = ?1 AND name = ?2"),
        SecurableType::Table => ("__dbx_tables", "catalog = ?1 AND schema = ?2 AND name = ?3"),
        SecurableType::Volume => (
            "__dbx_volumes",
            "catalog = ?1 AND schema = ?2 AND name = ?3",
        ),
    };
    conn.query_row(
        &format!("SELECT owner FROM {table} WHERE {cond}"),
        rusqlite::params_from_iter(parts.iter()),
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

/// Whether a securable object exists.
pub fn exists(conn: &Connection, sec: &Securable) -> Result<bool, SqlError> {
    let parts: Vec<&str> = sec.full_name.split('.').collect();
    Ok(match sec.ty {
        SecurableType::Catalog => get_catalog(conn, parts[0])?.is_some(),
        SecurableType::Schema => get_schema(conn, parts[0], parts[1])?.is_some(),
        SecurableType::Table => {
            get_table(conn, &FullName::new(parts[0], parts[1], parts[2]))?.is_some()
        }
        SecurableType::Volume => {
            get_volume(conn, &FullName::new(parts[0], parts[1], parts[2]))?.is_some()
        }
    })
}

/// The error a missing securable object gets.
pub fn not_found(sec: &Securable) -> SqlError {
    match sec.ty {
        SecurableType::Catalog => SqlError::catalog_not_found(&sec.full_name),
        SecurableType::Schema => SqlError::schema_not_found(&sec.full_name),
        SecurableType::Table => SqlError::table_not_found(&sec.full_name),
        SecurableType::Volume => SqlError::volume_not_found(&sec.full_name),
    }
}

/// Transfers ownership (`ALTER ... OWNER TO`).
pub fn set_owner(conn: &Connection, sec: &Securable, owner: &str) -> Result<(), SqlError> {
    let parts: Vec<&str> = sec.full_name.split('.').collect();
    let (table, cond) = match sec.ty {
        SecurableType::Catalog => ("__dbx_catalogs", "name = ?2"),
        SecurableType::Schema => ("__dbx_schemas", "catalog = ?2 AND name = ?3"),
        SecurableType::Table => ("__dbx_tables", "catalog = ?2 AND schema = ?3 AND name = ?4"),
        SecurableType::Volume => (
            "__dbx_volumes",
            "catalog = ?2 AND schema = ?3 AND name = ?4",
        ),
    };
    let mut values = vec![owner];
    values.extend(parts);
    conn.execute(
        &format!("UPDATE {table} SET owner = ?1 WHERE {cond}"),
        rusqlite::params_from_iter(values),
    )
    .map_err(db)?;
    Ok(())
}

/// Delta's spelling of a table property key: `delta.*` keys are matched
/// case-insensitively, the change data feed one keeps its documented case.
fn property_key(key: &str) -> String {
    if key.eq_ignore_ascii_case(CHANGE_DATA_FEED) {
        CHANGE_DATA_FEED.to_string()
    } else {
        key.to_string()
    }
}

/// The table property that turns the change data feed on
/// (https://docs.databricks.com/delta/delta-change-data-feed.html).
pub const CHANGE_DATA_FEED: &str = "delta.enableChangeDataFeed";

/// Sets table properties (values as given; booleans lower case).
pub fn set_properties(
    conn: &Connection,
    name: &FullName,
    props: &[(String, String)],
) -> Result<(), SqlError> {
    for (k, v) in props {
        let v = if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
            v.to_ascii_lowercase()
        } else {
            v.clone()
        };
        conn.execute(
            "INSERT OR REPLACE INTO __dbx_table_props (catalog, schema, tbl, key, value) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name.catalog, name.schema, name.name, property_key(k), v],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Removes table properties; the keys that were not set.
pub fn unset_properties(
    conn: &Connection,
    name: &FullName,
    keys: &[String],
) -> Result<Vec<String>, SqlError> {
    let mut missing = Vec::new();
    for k in keys {
        let n = conn
            .execute(
                "DELETE FROM __dbx_table_props WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND key = ?4",
                params![name.catalog, name.schema, name.name, property_key(k)],
            )
            .map_err(db)?;
        if n == 0 {
            missing.push(k.clone());
        }
    }
    Ok(missing)
}

/// A table's properties, sorted by key.
pub fn properties(conn: &Connection, name: &FullName) -> Result<Vec<(String, String)>, SqlError> {
    let mut st = conn
        .prepare("SELECT key, value FROM __dbx_table_props WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 ORDER BY key")
        .map_err(db)?;
    let rows = st
        .query_map([&name.catalog, &name.schema, &name.name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(rows)
}

/// Whether the change data feed is on for a table.
pub fn change_data_feed(conn: &Connection, name: &FullName) -> Result<bool, SqlError> {
    Ok(properties(conn, name)?
        .iter()
        .any(|(k, v)| k == CHANGE_DATA_FEED && v == "true"))
}

/// Declared type of a column of a SQLite table that holds a catalog table.
pub fn physical_column_type(
    conn: &Connection,
    physical_table: &str,
    column: &str,
) -> Option<DbxType> {
    let name = FullName::parse(physical_table)?;
    conn.query_row(
        "SELECT type_text FROM __dbx_columns WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND name = ?4 COLLATE NOCASE",
        [&name.catalog, &name.schema, &name.name, &column.to_string()],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .ok()
    .flatten()
    .and_then(|t| DbxType::parse(&t))
}

/// A table's column by name, as Spark resolves it (case-insensitively).
pub fn column<'t>(table: &'t TableInfo, name: &str) -> Result<&'t ColumnInfo, SqlError> {
    table
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| SqlError::column_not_found(name))
}
